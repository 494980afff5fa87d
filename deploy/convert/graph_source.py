"""Models that are not tf_keras: Keras 3 models, SavedModels from `model.export()`, float TFLite
files from any framework (PyTorch through litert-torch, ONNX converters, Keras' own export).

All of them become one thing: a float TFLite at a fixed input size (`float_tflite`). Per-layer
quantization, calibration, evaluation and the search work on that, as they do on the float
TFLite the tf_keras route makes. Keras 3 models keep their layer names as policy keys: they are
exported by replaying the functional graph with each layer call inside a name scope of its own
(`srdL<k>`), so every op's tensor name says exactly which layer made it (Keras 3's own scopes
get `_1`, `_2` suffixes that collide with layer names such as `conv_1`). Other sources get op
groups named from the graph (`deploy.convert.op_graph`).
"""
from __future__ import annotations

import contextlib
import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from deploy.convert.tflite_io import TFLiteError, make_interpreter
from deploy.errors import UserInputError

TOKEN = "srdL"
_TOKEN_RE = re.compile(rf"^{TOKEN}(\d+)(_\d+)?$")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl")
_QUANT_DTYPES = ("int8", "uint8", "int16")


class ForeignModelError(UserInputError):
    """A non-tf_keras model (Keras 3, SavedModel, float TFLite) that cannot be used as given."""


# ---------------------------------------------------------------- PyTorch checkpoints

def is_torch_checkpoint(path: str | Path) -> bool:
    """A PyTorch checkpoint (torch.save): by suffix, or a zip with `*/data.pkl`, or a bare pickle."""
    path = Path(path)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return True
    if not path.is_file():
        return False
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
        with open(path, "rb") as f:
            return f.read(2) in (b"\x80\x02", b"\x80\x04", b"\x80\x05")
    except OSError:
        return False


def refuse_torch(path: str | Path) -> None:
    if is_torch_checkpoint(path):
        raise ForeignModelError(
            f"{path} is a PyTorch checkpoint, not a model srdeploy can read; convert the network to a "
            "float TFLite with litert-torch (README 'Your own model') and pass it with --float_tflite")


# ---------------------------------------------------------------- float TFLite files

def check_float_tflite(data: bytes, label: str, scale: int, n_channels: int) -> tuple[int, int]:
    """Check a float TFLite is one float NHWC image in, one `scale`x image out, batch 1, fixed
    size, not quantized; return its LR (H, W). One line saying what was found otherwise."""
    interp = make_interpreter(data, name=label, delegates=False)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise ForeignModelError(f"{label} takes {len(ins)} input(s) and gives {len(outs)} output(s); "
                                "expected 1 image in, 1 image out")
    tensors = interp.get_tensor_details()
    quant = sorted({np.dtype(t["dtype"]).name for t in tensors
                    if np.dtype(t["dtype"]).name in _QUANT_DTYPES and t["quantization"][0] != 0.0})
    ops = {o["op_name"] for o in interp._get_ops_details()}  # noqa: SLF001
    if quant or np.dtype(ins[0]["dtype"]).name != "float32" or {"QUANTIZE", "DEQUANTIZE"} & ops:
        found = ", ".join(quant) or np.dtype(ins[0]["dtype"]).name
        if not quant and "DEQUANTIZE" in ops:
            found = "float16 or compressed weights (DEQUANTIZE ops)"
        raise ForeignModelError(f"{label} is already quantized ({found} tensors); srdeploy needs the "
                                "float32 model it was made from: export it without quantization")
    sig = [int(d) for d in ins[0]["shape_signature"]]
    shape = [int(d) for d in ins[0]["shape"]]
    oshape = [int(d) for d in outs[0]["shape"]]
    if len(shape) != 4 or len(oshape) != 4:
        raise ForeignModelError(f"{label} takes input shape {shape} and gives {oshape}; expected one "
                                "NHWC image (1, H, W, C) in and one out")
    if shape[0] != 1 or oshape[0] != 1:
        raise ForeignModelError(f"{label} has batch {shape[0]}; expected batch 1 (export it with a "
                                "(1, H, W, C) example input)")
    if any(d < 0 for d in sig[1:3]):
        raise ForeignModelError(f"{label} has a dynamic input size {sig}; export it at a fixed size, "
                                "e.g. 64x64 (litert_torch.convert(model, (torch.randn(1, 64, 64, 3),)))")
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        raise ForeignModelError(
            f"{label} takes NCHW input {shape}; srdeploy needs NHWC: convert with "
            "litert_torch.to_channel_last_io(model, args=[0], outputs=[0]) before litert_torch.convert")
    if shape[3] != n_channels:
        raise ForeignModelError(f"{label} takes {shape[3]} channel(s) but --channels means {n_channels}; "
                                "pass the right --channels")
    want = [1, shape[1] * scale, shape[2] * scale, shape[3]]
    if oshape != want:
        raise ForeignModelError(f"{label} maps {'x'.join(map(str, shape[1:]))} to "
                                f"{'x'.join(map(str, oshape[1:]))}, not x{scale} "
                                f"({'x'.join(map(str, want[1:]))}); pass the model's --scale")
    return shape[1], shape[2]


def read_float_tflite(path: str | Path) -> bytes:
    path = Path(path)
    refuse_torch(path)
    if not path.is_file():
        raise ForeignModelError(f"float TFLite {path} does not exist")
    data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise ForeignModelError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)")
    return data


# ---------------------------------------------------------------- Keras 3 and SavedModels

def _tf():
    from models._keras import tf
    return tf


def _depth_to_space_nhwc(x, block_size, data_format="NHWC", name=None):
    """tf.nn.depth_to_space as RESHAPE/TRANSPOSE (same maths): LiteRT has no int16
    DEPTH_TO_SPACE and the quantizer none at all, so exports trace this instead."""
    tf = _tf()
    if data_format != "NHWC":
        return _ORIG_D2S[0](x, block_size, data_format=data_format, name=name)
    _, h, w, c = x.shape
    r = int(block_size)
    y = tf.reshape(x, (-1, h, w, r, r, c // (r * r)))
    y = tf.transpose(y, (0, 1, 3, 2, 4, 5))
    return tf.reshape(y, (-1, h * r, w * r, c // (r * r)))


_ORIG_D2S: list = []


@contextlib.contextmanager
def _pixel_shuffle_as_reshape():
    tf = _tf()
    _ORIG_D2S[:] = [tf.nn.depth_to_space]
    tf.nn.depth_to_space = _depth_to_space_nhwc
    try:
        yield
    finally:
        tf.nn.depth_to_space = _ORIG_D2S[0]


def _graph_model(model) -> Any:
    import keras
    from keras.src.models.functional import Functional
    if isinstance(model, Functional):
        return model
    inner = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else None
    return inner if isinstance(inner, Functional) else None


def _convert_saved_model(build: Callable[[str], None], label: str) -> bytes:
    tf = _tf()
    with tempfile.TemporaryDirectory() as d:
        try:
            with contextlib.redirect_stdout(io.StringIO()), _pixel_shuffle_as_reshape():
                build(d)
            return tf.lite.TFLiteConverter.from_saved_model(d).convert()
        except ForeignModelError:
            raise
        except Exception as e:  # tracing and the converter raise many types; cause chained
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ForeignModelError(f"cannot convert {label} to a float TFLite: {first}") from e


def keras3_float_tflite(model, hw: tuple[int, int]) -> tuple[bytes, Optional[Callable[[str], Optional[str]]]]:
    """A Keras 3 model at a fixed (1, H, W, C) input -> float TFLite bytes and `assign`
    (tensor name -> Keras layer name), or None for subclassed models (op groups then)."""
    import keras
    tf = _tf()
    c = model.input_shape[-1]
    graph = _graph_model(model)
    names: dict[str, str] = {}

    def wrap(op):
        tok = f"{TOKEN}{len(names)}"
        names[tok] = op.name

        def call(*args, **kwargs):
            if getattr(op, "_call_has_training_arg", False):
                kwargs.setdefault("training", False)
            with tf.name_scope(tok):
                return op(*args, **kwargs)
        return call

    def fn(x):
        if graph is None:
            return model(x, training=False)
        return graph._run_through_graph([x], operation_fn=wrap)  # noqa: SLF001

    def build(d):
        arch = keras.export.ExportArchive()
        arch.track(model)
        arch.add_endpoint("serve", fn, [tf.TensorSpec([1, hw[0], hw[1], c], tf.float32, name="lr")])
        arch.write_out(d, verbose=False)

    data = _convert_saved_model(build, model.name)
    if graph is None:
        return data, None

    def assign(tensor: str) -> Optional[str]:
        for part in reversed([p for p in tensor.split(";") if p]):
            for comp in part.split("/"):
                m = _TOKEN_RE.match(comp)
                if m and f"{TOKEN}{m.group(1)}" in names:
                    return names[f"{TOKEN}{m.group(1)}"]
        return None
    return data, assign


def saved_model_float_tflite(path: str | Path, hw: tuple[int, int], channels: int) -> bytes:
    """A (non-Keras) SavedModel, e.g. from Keras 3 `model.export()`, at a fixed input size."""
    tf = _tf()
    loaded = tf.saved_model.load(str(path))
    fn = getattr(loaded, "serve", None)
    if fn is None:
        sigs = dict(getattr(loaded, "signatures", {}))
        if len(sigs) != 1 and "serving_default" not in sigs:
            raise ForeignModelError(f"{path} has no 'serve' endpoint and {len(sigs)} signatures; "
                                    "export it with model.export()")
        sig = sigs.get("serving_default") or next(iter(sigs.values()))
        kw = list(sig.structured_input_signature[1])
        if len(kw) != 1:
            raise ForeignModelError(f"{path} takes {len(kw)} inputs; expected 1 image in")
        fn = lambda x: sig(**{kw[0]: x})  # noqa: E731

    def call(x):
        y = fn(x)
        if isinstance(y, dict):
            if len(y) != 1:
                raise ForeignModelError(f"{path} gives {len(y)} outputs; expected 1 image out")
            y = next(iter(y.values()))
        return y

    def build(d):
        f = tf.function(call, input_signature=[tf.TensorSpec([1, hw[0], hw[1], channels], tf.float32)])
        mod = tf.Module()
        mod.loaded = loaded
        mod.f = f
        tf.saved_model.save(mod, d, signatures=f.get_concrete_function())

    return _convert_saved_model(build, str(path))


def is_keras_saved_model(path: Path) -> bool:
    """A tf_keras SavedModel (has keras_metadata.pb), as opposed to a plain/exported one."""
    return (path / "keras_metadata.pb").is_file()


def keras_version_of(path: str | Path) -> Optional[str]:
    """The `keras_version` a .keras archive was saved with (None when unreadable)."""
    import json
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("metadata.json")).get("keras_version")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def check_keras_file(path: str | Path, unsafe: bool) -> None:
    """Before loading a Keras 3 .keras: name unregistered custom classes and refuse Lambda layers
    in safe mode, in one line (Keras' own errors quote the whole config)."""
    import json

    import keras
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    missing, lambdas = [], []

    def walk(o):
        if isinstance(o, dict):
            cls, module = o.get("class_name"), o.get("module")
            if isinstance(cls, str) and "config" in o and "module" in o and not cls.startswith("__"):
                if cls == "Lambda":
                    lambdas.append((o.get("config") or {}).get("name", "?"))
                reg = o.get("registered_name") or cls
                builtin = isinstance(module, str) and module.split(".")[0] == "keras"
                if not builtin and keras.saving.get_registered_object(reg) is None:
                    missing.append(reg)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(config)
    if missing:
        raise ForeignModelError(
            f"{path} needs custom classes that are not registered: {', '.join(dict.fromkeys(missing))}; "
            "pass --custom_objects my_layers.py (a module that defines them with "
            "@keras.saving.register_keras_serializable())")
    if lambdas and not unsafe:
        raise ForeignModelError(f"{path} contains Lambda layer(s) {', '.join(lambdas)} (code that runs on "
                                "load); pass --unsafe_deserialization if you trust the file")


def import_custom_objects(module: Optional[str]) -> None:
    """Import the user's module (a .py path or a dotted name) so its classes register."""
    if not module:
        return
    import importlib
    import importlib.util
    import sys
    path = Path(module)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise ForeignModelError(f"--custom_objects {module} does not exist")
            spec = importlib.util.spec_from_file_location(f"srdeploy_user_{path.stem}", path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
        else:
            importlib.import_module(module)
    except ForeignModelError:
        raise
    except Exception as e:  # the user's module may raise anything on import; cause chained
        raise ForeignModelError(f"cannot import --custom_objects {module}: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


def check_keras3_io(model, label: str) -> None:
    """One NHWC image in, one out, batch 1 or dynamic."""
    ins, outs = list(model.inputs or []), list(model.outputs or [])
    if len(ins) != 1 or len(outs) != 1:
        raise ForeignModelError(f"{label} takes {len(ins)} input(s) and gives {len(outs)} output(s); "
                                "expected 1 image in, 1 image out")
    shape = tuple(ins[0].shape)
    if len(shape) != 4:
        raise ForeignModelError(f"{label}: expected one NHWC image input, got input shape {shape}")
    if shape[0] not in (None, 1):
        raise ForeignModelError(f"{label} has batch {shape[0]}; expected batch 1 or unset (None)")


__all__ = ["ForeignModelError", "TFLiteError", "check_float_tflite", "keras3_float_tflite",
           "read_float_tflite", "refuse_torch", "saved_model_float_tflite"]
