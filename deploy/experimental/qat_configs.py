"""TF-MOT pieces for policy-aware QAT: quantizers, one QuantizeConfig, a no-transform scheme,
and the per-layer plan (what each Keras layer simulates, at how many bits).

What is simulated matches what AI Edge Quantizer exports (DESIGN.md):
  - weights: int8, symmetric, per output channel, narrow range [-127, 127], range = the current
    weights (TF-MOT's `LastValueQuantizer`), for a8w8 and a16w8 alike (LiteRT has no int16
    weights); biases stay float (int32 in TFLite, error negligible);
  - layer outputs: 8-bit asymmetric for a8w8, 16-bit symmetric (zero point 0, [-32767, 32767])
    for a16w8, with moving-average min/max ranges (TF-MOT's `MovingAverageQuantizer`);
  - a tensor read by a lower-precision layer is simulated at that precision, because AEQ
    requantizes it for that reader (an a16w8 conv feeding an a8w8 add is rounded to 8 bits);
  - data-movement layers (pixel shuffle, channel slices, reshapes) move already-quantized values
    and keep their scale in TFLite, so they need no quantizer of their own.
TF-MOT's default 8-bit scheme is not used: its layout transforms hard-code 8 bits and rewrite
the graph (concat, BN folding), which would break the one-to-one layer naming we copy back by.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import math
from typing import Mapping, Optional

from models._keras import import_tfmot, keras, tf

tfmot = import_tfmot()  # without TF-MOT's process-wide TF_USE_LEGACY_KERAS (models/_keras.py)
from tensorflow_model_optimization.python.core.quantization.keras import quant_ops  # noqa: E402 - after it

from models.layers import AddConstant, ChannelSlice, PixelShuffle, SubPixelConv2DTranspose

tfq = tfmot.quantization.keras
L = keras.layers
ACT_BITS = {"a8w8": 8, "a16w8": 16, "float": None}
WEIGHT_BITS = 8

#: Layers with a kernel: class -> (weight attribute, axis of the output channel in the kernel).
KERNEL_LAYERS = {L.Conv1D: ("kernel", -1), L.Conv2D: ("kernel", -1), L.Dense: ("kernel", -1),
                 L.Conv2DTranspose: ("kernel", -2), L.DepthwiseConv2D: ("depthwise_kernel", None),
                 SubPixelConv2DTranspose: ("kernel", -2)}  # FSRCNN's deconv (same kernel layout)
#: Layers whose output values change (requantized in TFLite): output fake-quant only.
OUTPUT_LAYERS = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate,
                 L.ReLU, L.LeakyReLU, L.PReLU, L.ELU, L.Softmax, L.Activation, L.UpSampling2D,
                 L.AveragePooling2D, L.MaxPooling2D, L.GlobalAveragePooling2D, AddConstant)
#: Data movement: same values, same scale in TFLite.
PASS_LAYERS = (PixelShuffle, ChannelSlice, L.Reshape, L.Permute, L.Flatten, L.Cropping2D,
               L.ZeroPadding2D, L.Dropout, L.InputLayer)
PASS_TF_OPS = {"nn.depth_to_space", "nn.space_to_depth", "reshape", "transpose", "identity",
               "__operators__.getitem", "squeeze", "expand_dims", "compat.v1.transpose"}
#: Activations TFLite runs as their own op: the conv output before them is quantized as well.
_PRE_QUANT_ACTIVATIONS = {"tanh", "sigmoid", "softmax"}


class PerChannelWeightQuantizer(tfq.quantizers.LastValueQuantizer):
    """int8 symmetric per-channel weights along any kernel axis (TF-MOT's own only supports the
    last axis, which is wrong for Conv2DTranspose and DepthwiseConv2D kernels)."""

    def __init__(self, axis: Optional[int] = -1, num_bits: int = WEIGHT_BITS, **_):
        super().__init__(num_bits=num_bits, per_axis=True, symmetric=True, narrow_range=True)
        self.axis = axis  # None: depthwise (channels = in * multiplier, the last two axes)

    def _to_2d(self, w: tf.Tensor) -> tf.Tensor:
        if self.axis is None:
            return tf.reshape(w, [-1, w.shape[-2] * w.shape[-1]])
        moved = tf.experimental.numpy.moveaxis(w, self.axis, -1)
        return tf.reshape(moved, [-1, w.shape[self.axis]])

    def build(self, tensor_shape, name, layer):
        return self._add_range_weights(layer, name, True, self._to_2d(tf.zeros(tensor_shape)).shape)

    def __call__(self, inputs, training, weights, **kwargs):
        q = quant_ops.LastValueQuantize(
            self._to_2d(inputs), weights["min_var"], weights["max_var"], per_channel=True,
            is_training=training, num_bits=self.num_bits, narrow_range=True, symmetric=True)
        if self.axis is None:
            return tf.reshape(q, tf.shape(inputs))
        moved = list(inputs.shape)
        moved.append(moved.pop(self.axis))
        return tf.experimental.numpy.moveaxis(tf.reshape(q, moved), -1, self.axis)

    def get_config(self):
        return {"axis": self.axis, "num_bits": self.num_bits}


class EmaRangeQuantizer(tfq.quantizers.MovingAverageQuantizer):
    """TF-MOT's moving-average activation quantizer, with a warm start.

    TF-MOT starts ranges at [-6, 6] with decay 0.999, so a few hundred fine-tuning steps never
    reach the real range (an 8-bit step of 0.047 on [0, 1] images). Here the first training
    batch sets the range, and the decay ramps up as in `tf.train.ExponentialMovingAverage`
    with `num_updates`: min(0.999, (1 + n) / (10 + n)).
    """

    def __init__(self, num_bits: int, **_):
        sym = num_bits > 8  # TFLite int16 activations: symmetric, zero point 0
        super().__init__(num_bits=num_bits, per_axis=False, symmetric=sym, narrow_range=sym)

    def build(self, tensor_shape, name, layer):
        w = self._add_range_weights(layer, name)
        w["count"] = layer.add_weight(name + "_count", shape=(), trainable=False,
                                      initializer=keras.initializers.Zeros())
        return w

    def __call__(self, inputs, training, weights, **kwargs):
        n = weights["count"]
        decay = 1.0  # unused at inference
        if training:
            decay = tf.where(n > 0, tf.minimum(0.999, (1.0 + n) / (10.0 + n)), 0.0)
        q = quant_ops.MovingAvgQuantize(
            inputs, weights["min_var"], weights["max_var"], ema_decay=decay,
            is_training=training, num_bits=self.num_bits, symmetric=self.symmetric,
            narrow_range=self.narrow_range)
        if training:
            with tf.control_dependencies([q]):
                n.assign_add(1.0)
        return q

    def get_config(self):
        return {"num_bits": self.num_bits}


class SRQuantizeConfig(tfq.QuantizeConfig):
    """One config for every simulated layer: optional per-channel kernel, optional
    pre-activation quantizer (tanh/sigmoid run as separate TFLite ops), optional output one."""

    def __init__(self, weight_attr: Optional[str] = None, weight_axis: Optional[int] = -1,
                 pre_bits: Optional[int] = None, out_bits: Optional[int] = None):
        self.weight_attr, self.weight_axis = weight_attr, weight_axis
        self.pre_bits, self.out_bits = pre_bits, out_bits

    def get_weights_and_quantizers(self, layer):
        if not self.weight_attr:
            return []
        return [(getattr(layer, self.weight_attr), PerChannelWeightQuantizer(self.weight_axis))]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, EmaRangeQuantizer(self.pre_bits))] if self.pre_bits else []

    def set_quantize_weights(self, layer, quantize_weights):
        if self.weight_attr:
            setattr(layer, self.weight_attr, quantize_weights[0])

    def set_quantize_activations(self, layer, quantize_activations):
        if self.pre_bits:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return [EmaRangeQuantizer(self.out_bits)] if self.out_bits else []

    def get_config(self):
        return {"weight_attr": self.weight_attr, "weight_axis": self.weight_axis,
                "pre_bits": self.pre_bits, "out_bits": self.out_bits}


class _KeepLayout(tfq.QuantizeLayoutTransform):
    def apply(self, model, layer_quantize_map):
        return model, layer_quantize_map


class _NothingByDefault(tfq.QuantizeRegistry):
    """Every simulated layer carries its own SRQuantizeConfig; nothing is added implicitly."""

    def get_quantize_config(self, layer):
        raise UserInputError(f"layer {layer.name} has no SRQuantizeConfig")

    def supports(self, layer):
        return False


class PolicyScheme(tfq.QuantizeScheme):
    """A scheme that wraps exactly the annotated layers and leaves the graph as it is."""

    def get_layout_transformer(self):
        return _KeepLayout()

    def get_quantize_registry(self):
        return _NothingByDefault()


CUSTOM_OBJECTS = {c.__name__: c for c in (SRQuantizeConfig, PerChannelWeightQuantizer,
                                          EmaRangeQuantizer)}


# ----------------------------------------------------------------------------- the plan
@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """What one layer simulates: `config` is None for layers left unwrapped."""
    precision: str
    config: Optional[SRQuantizeConfig]
    note: str  # human-readable: what is simulated, or why not


def kind_of(layer: keras.layers.Layer) -> tuple[str, str]:
    """('kernel' | 'output' | 'pass' | 'unsupported', reason for unsupported)."""
    cls = type(layer)
    if cls in KERNEL_LAYERS:
        return "kernel", ""
    if cls in OUTPUT_LAYERS:
        return "output", ""
    if isinstance(layer, PASS_LAYERS):
        return "pass", ""
    symbol = getattr(layer, "symbol", None)
    if symbol is not None:  # TFOpLambda: tf.* called on Keras tensors
        if symbol in PASS_TF_OPS:
            return "pass", ""
        return "unsupported", (f"TF-op layer tf.{symbol}: TF-MOT cannot wrap TF-op layers, its "
                               "output is not fake-quantized (use the keras.layers equivalent)")
    if isinstance(layer, L.Lambda):
        return "unsupported", "Lambda layer: arbitrary Python, not simulated"
    return "unsupported", (f"{cls.__name__} has no QuantizeConfig here (TF-MOT needs one per "
                           "layer class); not simulated")


def _fused_relu(layer: keras.layers.Layer) -> bool:
    """A plain ReLU that TFLite fuses into its producer (CONV_2D/ADD fused activation)."""
    if isinstance(layer, L.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0 and layer.max_value in (None, 6.0)
    return isinstance(layer, L.Activation) and layer.get_config()["activation"] in ("relu", "relu6")


def plan(model: keras.Model, precision: Mapping[str, str]) -> dict[str, LayerPlan]:
    """Per-layer plan for `model` under `precision` (missing layers: a8w8)."""
    layers = {ly.name: ly for ly in model.layers}
    consumers = {n: [node.outbound_layer for node in ly.outbound_nodes  # this graph only
                     if layers.get(node.outbound_layer.name) is node.outbound_layer]
                 for n, ly in layers.items()}
    prec = {n: precision.get(n, "a8w8") for n in layers}
    bits = {n: ACT_BITS[p] or math.inf for n, p in prec.items()}
    kinds = {n: kind_of(ly) for n, ly in layers.items()}

    def reads(name: str) -> float:
        """Bits at which `name`'s input is read: data movement looks through to its readers."""
        if kinds[name][0] != "pass":
            return bits[name]
        return min([bits[name], *(reads(c.name) for c in consumers[name])])

    out: dict[str, LayerPlan] = {}
    for name, ly in layers.items():
        kind, reason = kinds[name]
        p = prec[name]
        if isinstance(ly, L.InputLayer):
            out[name] = LayerPlan(p, None, "model input: not fake-quantized (photos / 255 are "
                                  "exact at int8 scale 1/255, within 1.5e-5 at int16)")
            continue
        if kind == "pass":
            out[name] = LayerPlan(p, None, "data movement: keeps its input's quantized values")
            continue
        cons = consumers[name]
        linear = getattr(ly, "activation", None) in (None, keras.activations.linear)
        fused = (kind != "unsupported" and linear and len(cons) == 1 and _fused_relu(cons[0])
                 and prec[cons[0].name] == p)
        own = math.inf if (p == "float" or kind == "unsupported" or fused) else bits[name]
        read = min([reads(c.name) for c in cons if not (fused and c is cons[0])], default=math.inf)
        ob = min(own, read)
        out_bits = None if ob == math.inf else int(ob)
        if kind == "unsupported":
            out[name] = LayerPlan(p, None, reason)
            continue
        act = getattr(ly, "activation", None)
        act_name = getattr(act, "__name__", "")
        pre = bits[name] if (p != "float" and act_name in _PRE_QUANT_ACTIVATIONS) else None
        w_attr, w_axis = KERNEL_LAYERS.get(type(ly), (None, -1))
        if p == "float":
            cfg = SRQuantizeConfig(out_bits=out_bits) if out_bits else None
            note = "float by policy" + (f"; output rounded to {out_bits} bits where an int layer "
                                        "reads it (AEQ quantizes it there)" if out_bits else "")
            out[name] = LayerPlan(p, cfg, note)
            continue
        note = p
        if fused:
            note += f" (ReLU {cons[0].name} fused: quantized after it)"
        elif out_bits is not None and out_bits < bits[name]:
            note += f" (output at {out_bits} bits: read by a lower-precision layer)"
        out[name] = LayerPlan(p, SRQuantizeConfig(w_attr, w_axis, pre, out_bits), note)
    return out
