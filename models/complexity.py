"""Parameters and multiply-accumulates of a zoo model, counted from its Keras layers."""
from __future__ import annotations

from models._keras import keras


def macs_per_lr_pixel(model: keras.Model) -> int:
    """MACs per LR input pixel (conv layers only; adds/activations are negligible).

    Conv2D: k*k*cin*cout per output pixel, at the resolution of its output relative to the
    input. Conv2DTranspose with stride s: k*k*cin*cout per *input* pixel (each input pixel is
    scattered to k*k outputs per channel pair).
    """
    total = 0.0
    in_h = model.input_shape[1] or 1
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            cin = layer.input_shape[-1]
            total += k * cin * layer.filters * _rel_area(layer.input_shape, in_h)
        elif isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            cin = layer.input_shape[-1] // layer.groups
            total += k * cin * layer.filters * _rel_area(layer.output_shape, in_h)
    return int(round(total))


def _rel_area(shape, in_h) -> float:
    h = shape[1]
    return 1.0 if h is None or in_h is None else (h / in_h) ** 2


def receptive_radius(model: keras.Model) -> float:
    """How many LR pixels of context one output pixel depends on (each side).

    Tiled inference is exact when tiles overlap by at least this much. Convolutions after an
    upsampling layer count in LR pixels (their reach divided by the upsampling so far).
    """
    radius: dict[str, tuple[float, float]] = {}  # layer -> (radius in LR px, upsampling so far)
    for layer in model.layers:
        inbound = [l for node in layer.inbound_nodes for l in _as_list(node.inbound_layers)]
        r, up = max((radius[l.name] for l in inbound if l.name in radius), default=(0.0, 1.0))
        if isinstance(layer, keras.layers.Conv2DTranspose):
            r += (layer.kernel_size[0] - 1) / 2 / layer.strides[0] / up
            up *= layer.strides[0]
        elif isinstance(layer, keras.layers.Conv2D):
            r += (layer.kernel_size[0] - 1) / 2 * layer.dilation_rate[0] / up
        elif hasattr(layer, "scale") and layer.__class__.__name__.startswith("PixelShuffle"):
            up *= layer.scale
        radius[layer.name] = (r, up)
    return max((r for r, _ in radius.values()), default=0.0)


def _as_list(x):
    return x if isinstance(x, (list, tuple)) else [x]
