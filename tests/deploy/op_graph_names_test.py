"""Op-group names read from tensor names (deploy.convert.op_graph._readable): TF/Keras scopes and
litert-torch scopes (-> the PyTorch module path, as net.named_modules() names it)."""
from deploy.convert.op_graph import _readable

W = "litert_torch._convert.to_channel_last_io.ChannelLastIOWrapper"
SEQ = "torch.nn.modules.container.Sequential_body"


def test_litert_torch_names_are_module_paths():
    names = [f"{W}/__main__.ESPCN_wrapped/{SEQ}/torch.nn.modules.conv.Conv2d_0;2",
             f"{W}/__main__.ESPCN_wrapped/{SEQ}/torch.nn.modules.conv.Conv2d_2;2",
             f"__main__.Net/my.blocks.Res_block_1/torch.nn.modules.conv.Conv2d_conv_a;3",
             "__main__.Net;5"]  # an op in the root module's own forward: nothing to name it by
    assert _readable(names) == ["body.0", "body.2", "block_1.conv_a", ""]


def test_tf_names_unchanged():
    assert _readable(["functional_1/conv_1/Relu;functional_1/conv_1/convolution",
                      "functional_1/up_1/convolution", "serving_default_lr:0"]) == ["conv_1", "up_1",
                                                                                     "serving_default_lr"]
