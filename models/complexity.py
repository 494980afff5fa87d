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
