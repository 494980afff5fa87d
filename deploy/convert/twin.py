"""Frame-sized per-layer models take their activation ranges from a small twin.

Why: activation ranges are a property of the image content, not of the input size, but
calibrating at a video frame's size is costly or impossible here: Real-ESRGAN-General x4's
calibration at 960x540 outgrew 24 GiB (the process was killed), and EDSR-baseline x4 at 960x540
cannot even run on LiteRT's CPU kernels (a conv's im2col buffer passes 2^32 elements). So above
TWIN_ABOVE_PX LR pixels the per-layer route calibrates, runs its PTQ options and its smoke invoke
on the *twin*: the same graph and weights at TWIN_HW. The frame model is then the frame-size
graph quantized with the twin's ranges (AI Edge Quantizer reads ranges by tensor name, and the
two graphs name their tensors alike) and the twin's PTQ'd float weights (`weights_from`). Its ops
and quantization parameters are the twin's, so the twin's invoke checks its kernels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from deploy.data.io_convention import DEFAULT_INPUT_HW

#: The twin's LR input (H, W): the default conversion size, so a frame model's ranges are those of
#: the model `convert.py` makes by default.
TWIN_HW: tuple[int, int] = DEFAULT_INPUT_HW
#: Inputs with more LR pixels than this calibrate on the twin (128x128 still calibrates itself;
#: 640x360 does not): the threshold above which a search judges quality on TWIN_HW patches
#: (deploy/policy_search/session.py), so a searched policy converts as the search measured it.
TWIN_ABOVE_PX = 128 * 128


class TwinMismatch(RuntimeError):
    """The twin's graph is not the frame graph at another size: our bug, shown with its traceback."""


def applies(input_hw: Optional[tuple[int, int]], framework: str = "tf_keras") -> bool:
    """Whether a per-layer model at `input_hw` takes its ranges from the twin. A float TFLite
    source has one size (its own), so it has no twin."""
    return input_hw is not None and framework != "tflite" and int(input_hw[0]) * int(input_hw[1]) > TWIN_ABOVE_PX


def describe(input_hw) -> str:
    return f"{TWIN_HW[1]}x{TWIN_HW[0]} twin (the same graph and weights; the model is {input_hw[1]}x{input_hw[0]})"


def weights_from(twin_float: bytes, frame_float: bytes) -> bytes:
    """`frame_float` with every float constant replaced by the twin's same tensor (PTQ may have
    changed the twin's weights: CLE, AdaRound, bias correction, QAT's learned values). Constants
    that depend on the size (RESHAPE shapes, int32) are the frame's own."""
    if twin_float == frame_float:
        return frame_float
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils
    twin = flatbuffer_utils.read_model_from_bytearray(bytearray(twin_float))
    frame = flatbuffer_utils.read_model_from_bytearray(bytearray(frame_float))
    if len(twin.subgraphs) != len(frame.subgraphs):
        raise TwinMismatch(f"twin has {len(twin.subgraphs)} subgraphs, frame {len(frame.subgraphs)}")
    changed = False
    for tg, fg in zip(twin.subgraphs, frame.subgraphs):
        if [t.name for t in tg.tensors] != [t.name for t in fg.tensors]:
            raise TwinMismatch("the twin's tensors are not the frame graph's (names or order differ)")
        for tt, ft in zip(tg.tensors, fg.tensors):
            if ft.type != schema.TensorType.FLOAT32:
                continue
            tdata, fdata = twin.buffers[tt.buffer].data, frame.buffers[ft.buffer].data
            if tdata is None or fdata is None or len(tdata) == 0 or len(fdata) == 0:
                continue  # activations: no data
            if len(tdata) != len(fdata):
                raise TwinMismatch(f"constant {ft.name!r}: {len(tdata)} bytes in the twin, {len(fdata)} in the frame graph")
            if np.array_equal(np.asarray(tdata), np.asarray(fdata)):
                continue
            frame.buffers.append(schema.BufferT())  # never write through a buffer other tensors share
            frame.buffers[-1].data = np.asarray(tdata, np.uint8).copy()
            ft.buffer = len(frame.buffers) - 1
            changed = True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(frame)) if changed else frame_float
