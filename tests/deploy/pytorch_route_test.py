"""The PyTorch route end to end (README 'Your own model'): a real PyTorch ESPCN (nn.Conv2d, nn.Tanh,
nn.PixelShuffle; NCHW inside) -> litert-torch with channels-last I/O -> float TFLite ->
tools/convert.py --float_tflite (--list_layers, --write_policy, --policy with int16 and int8 convs
mixed, read back) -> tools/evaluate.py. The NCHW export without to_channel_last_io is refused in
one line. Needs the `.[torch]` extra (litert-torch 0.10.0 + torch)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="the .[torch] extra (litert-torch) is not installed: "
                    'pip install torch==2.13.0 -e ".[torch]"')
torch = pytest.importorskip("torch", reason="the .[torch] extra (torch) is not installed")

from deploy.convert.tflite_io import make_interpreter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HW = 32


class ESPCN(torch.nn.Module):
    def __init__(self, scale=3, channels=3):
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(
            nn.Conv2d(channels, 64, 5, padding=2), nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1), nn.Tanh(),
            nn.Conv2d(32, channels * scale ** 2, 3, padding=1))
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.body(x))


def _cli(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.mark.slow
def test_pytorch_espcn_float_tflite_route(tmp_path, hr_dir):
    import litert_torch
    torch.manual_seed(0)
    net = ESPCN(3).eval()
    nhwc = litert_torch.to_channel_last_io(net, args=[0], outputs=[0])
    litert_torch.convert(nhwc, (torch.rand(1, HW, HW, 3),)).export(str(tmp_path / "espcn_torch.tflite"))
    litert_torch.convert(net, (torch.rand(1, 3, HW, HW),)).export(str(tmp_path / "espcn_nchw.tflite"))
    m = str(tmp_path / "espcn_torch.tflite")

    # the exported float model computes what the PyTorch module does (NHWC in and out)
    x = np.random.default_rng(0).random((1, HW, HW, 3), dtype=np.float32)
    interp = make_interpreter(m, delegates=False)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    y = interp.get_tensor(interp.get_output_details()[0]["index"])
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert y.shape == (1, 3 * HW, 3 * HW, 3) and np.abs(y - ref).max() < 1e-4

    # without to_channel_last_io: NCHW, refused in one line, exit 2
    bad = _cli("tools/convert.py", "--float_tflite", str(tmp_path / "espcn_nchw.tflite"), "--scale", "3",
               "--list_layers", check=False)
    assert bad.returncode == 2
    err = [l for l in bad.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and "NCHW input [1, 3, 32, 32]" in err[0] and "to_channel_last_io" in err[0]

    # policy keys are the PyTorch module names (net.named_modules()), pixel shuffle in the last group
    table = _cli("tools/convert.py", "--float_tflite", m, "--scale", "3", "--list_layers").stdout
    rows = {l.split()[0]: l.split()[1] for l in table.splitlines()[2:] if l.strip()}
    assert rows == {"body.0": "CONV_2D,TANH", "body.2": "CONV_2D,TANH",
                    "body.4": "CONV_2D,TRANSPOSE,RESHAPE"}, table
    assert set(rows) <= {n for n, _ in net.named_modules()}
    pol = json.loads(_cli("tools/convert.py", "--float_tflite", m, "--scale", "3",
                          "--write_policy", "a8w8").stdout)
    assert pol["layers"] == {"body.0": "a8w8", "body.2": "a8w8", "body.4": "a8w8"}
    pol["layers"]["body.4"] = "a16w8"
    (tmp_path / "mixed.json").write_text(json.dumps(pol))
    out = tmp_path / "hybrid.tflite"
    _cli("tools/convert.py", "--float_tflite", m, "--scale", "3", "--policy", str(tmp_path / "mixed.json"),
         "--out", str(out), "--calib_dir", str(hr_dir), "--calib_images", "2")
    rep = json.loads(out.with_suffix(".json").read_text())
    by = {l["layer"]: l["actual"] for l in rep["layers"]}
    assert by == {"body.0": "a8w8", "body.2": "a8w8", "body.4": "a16w8"} and rep["verified"]
    # read back from the file: int8 and int16 conv outputs side by side, nothing left float
    q = make_interpreter(str(out), delegates=False)
    tensors = {t["index"]: t for t in q.get_tensor_details()}
    conv = [np.dtype(tensors[o["outputs"][0]]["dtype"]).name for o in q._get_ops_details()
            if o["op_name"] == "CONV_2D"]
    assert conv == ["int8", "int8", "int16"]

    ev = tmp_path / "ev.json"
    _cli("tools/evaluate.py", "--tflite", str(out), "--data", str(hr_dir), "--json", str(ev))
    res = json.loads(ev.read_text())
    assert np.isfinite(res["mean"]["psnr_y"]) and res["scale"] == 3
