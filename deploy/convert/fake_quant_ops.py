"""The float kernels of the fake-quantization simulator (deploy/convert/fake_quant.py): one
TensorFlow call per TFLite builtin op that SR graphs use, fused activation included."""
from __future__ import annotations

import numpy as np

from deploy.errors import UserInputError


class SimulationUnsupported(UserInputError):
    """The float graph has an op this simulator does not implement (use the LiteRT oracle)."""


def _act(tf, y, code: int):
    if code == 1:
        return tf.nn.relu(y)
    if code == 2:
        return tf.clip_by_value(y, -1.0, 1.0)
    if code == 3:
        return tf.nn.relu6(y)
    if code == 4:
        return tf.tanh(y)
    return y


def _pad(opts) -> str:
    return "VALID" if opts.get("padding") == 1 else "SAME"


def apply(tf, op, ins: list):
    """TFLite op `op` (its kind and options) on float inputs `ins`, as TensorFlow computes it."""
    k, o = op.kind, op.options
    act = int(o.get("fusedActivationFunction", 0) or 0)
    if k == "CONV_2D":
        w = tf.transpose(ins[1], (1, 2, 3, 0))  # OHWI -> HWIO
        y = tf.nn.conv2d(ins[0], w, (1, o["strideH"], o["strideW"], 1), _pad(o),
                         dilations=(1, o.get("dilationHFactor", 1) or 1, o.get("dilationWFactor", 1) or 1, 1))
        return _act(tf, y + ins[2] if len(ins) > 2 and ins[2] is not None else y, act)
    if k == "DEPTHWISE_CONV_2D":
        cin = ins[0].shape[-1]
        w = tf.reshape(ins[1], (ins[1].shape[1], ins[1].shape[2], cin, -1))  # 1HW(C*M) -> HWCM
        y = tf.nn.depthwise_conv2d(ins[0], w, (1, o["strideH"], o["strideW"], 1), _pad(o),
                                   dilations=(o.get("dilationHFactor", 1) or 1, o.get("dilationWFactor", 1) or 1))
        return _act(tf, y + ins[2] if len(ins) > 2 and ins[2] is not None else y, act)
    if k == "TRANSPOSE_CONV":
        shape = tf.concat([tf.shape(ins[2])[:1], tf.constant(np.asarray(ins[0]).reshape(-1)[1:], tf.int32)], 0)
        w = tf.transpose(ins[1], (1, 2, 0, 3))  # OHWI -> HWOI
        y = tf.nn.conv2d_transpose(ins[2], w, shape, (1, o["strideH"], o["strideW"], 1), _pad(o))
        return _act(tf, y + ins[3] if len(ins) > 3 and ins[3] is not None else y, act)
    if k in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM"):
        f = {"ADD": tf.add, "SUB": tf.subtract, "MUL": tf.multiply, "MAXIMUM": tf.maximum,
             "MINIMUM": tf.minimum}[k]
        return _act(tf, f(ins[0], ins[1]), act)
    if k == "CONCATENATION":
        return _act(tf, tf.concat(ins, int(o["axis"])), act)
    if k == "STRIDED_SLICE":
        return tf.strided_slice(ins[0], np.asarray(ins[1]), np.asarray(ins[2]), np.asarray(ins[3]),
                                # the batch axis (1 in the model) always whole: patches are batched here
                                begin_mask=o.get("beginMask", 0) | 1, end_mask=o.get("endMask", 0) | 1,
                                ellipsis_mask=o.get("ellipsisMask", 0), new_axis_mask=o.get("newAxisMask", 0),
                                shrink_axis_mask=o.get("shrinkAxisMask", 0))
    if k == "RESHAPE":
        shape = np.asarray(ins[1]).reshape(-1) if len(ins) > 1 and ins[1] is not None else np.asarray(o["newShape"])
        shape = [int(d) for d in shape]
        return tf.reshape(ins[0], [-1 if i == 0 else d for i, d in enumerate(shape)])  # batch may grow
    if k == "TRANSPOSE":
        return tf.transpose(ins[0], [int(d) for d in np.asarray(ins[1]).reshape(-1)])
    if k == "RELU":
        return tf.nn.relu(ins[0])
    if k == "RELU6":
        return tf.nn.relu6(ins[0])
    if k == "RELU_N1_TO_1":
        return tf.clip_by_value(ins[0], -1.0, 1.0)
    if k == "TANH":
        return tf.tanh(ins[0])
    if k == "LOGISTIC":
        return tf.sigmoid(ins[0])
    if k == "HARD_SWISH":
        return ins[0] * tf.nn.relu6(ins[0] + 3.0) / 6.0
    if k == "LEAKY_RELU":
        return tf.nn.leaky_relu(ins[0], float(o.get("alpha", 0.2)))
    if k == "PRELU":
        return tf.maximum(ins[0], 0.0) + ins[1] * tf.minimum(ins[0], 0.0)
    if k == "DEPTH_TO_SPACE":
        return tf.nn.depth_to_space(ins[0], int(o["blockSize"]))
    if k == "SPACE_TO_DEPTH":
        return tf.nn.space_to_depth(ins[0], int(o["blockSize"]))
    if k == "PAD":
        return tf.pad(ins[0], np.asarray(ins[1]))
    raise SimulationUnsupported(f"the fast oracle cannot simulate {k}")
