"""Policy-aware quantization-aware training (QAT) with TF-MOT, and `finetune_source`.

`finetune_source` (convert.py --qat_steps) runs the QAT whose learned ranges and weights reach
the exported model (deploy/experimental/lsq.py). The TF-MOT fine-tuning below is kept for
bench/hybrid.py's record: it trains float weights under moving-average ranges that the export
re-calibrates away, which is why it gained at most 0.03 dB (issue 29).

TF-MOT's converter cannot emit mixed int8/int16 models (DESIGN.md), so QAT here only fine-tunes
the FLOAT weights while every layer is simulated at its policy precision; the caller exports
the returned plain float model through the per-layer AI Edge Quantizer path as usual.

Flow: plan (deploy.qat_configs.plan) -> annotate each simulated layer with its SRQuantizeConfig
-> `quantize_apply` with a scheme that keeps the graph -> calibrate activation ranges on a few
training batches -> validate (= simulated PTQ) -> L1 + Adam fine-tuning on real-photo patches
-> validate again -> copy the fine-tuned kernels/biases back into a clone of the input model.
"""
from __future__ import annotations

from deploy.errors import UserInputError

import dataclasses
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from tqdm import tqdm

from deploy.data import images

from deploy.data import metrics
from deploy.convert.precisions import LAYER as LAYER_PRECISIONS
from deploy.experimental.qat_configs import CUSTOM_OBJECTS, LayerPlan, PolicyScheme, plan, tfq
from deploy.data.io_convention import IOConvention
from deploy.training.trainer import _load_photos, _shrink, sample_batch
from models._keras import keras, require_tf_keras_model, tf

#: Training-mode passes (no weight update) that set activation ranges before validation.
CALIBRATION_BATCHES = 4


@dataclasses.dataclass(frozen=True)
class QATResult:
    """`model` is a plain float tf_keras model (input architecture and layer names, fine-tuned
    weights); `simulated`/`skipped` map layer names to what was simulated or why not; PSNRs are
    PSNR_Y (BT.601, `scale` border shaved) of the fake-quant model on the validation photos."""
    model: keras.Model
    simulated: dict[str, str]
    skipped: dict[str, str]
    steps: int
    seconds: float
    val_psnr_y_before: float
    val_psnr_y_after: float

    @property
    def unsimulated(self) -> dict[str, str]:
        """The real gaps: layers whose quantized op was not simulated (TF-op, Lambda, custom
        layers), without float-by-policy, data-movement layers and the model input."""
        fine = ("float by policy", "data movement", "model input")
        return {n: v for n, v in self.skipped.items() if not v.startswith(fine)}


def check_precision(model: keras.Model, layer_precision: Mapping[str, str]) -> None:
    """Fail before any work: bad precision strings and names that are not layers of `model`."""
    for name, p in layer_precision.items():
        if p not in LAYER_PRECISIONS:
            raise UserInputError(f"layer '{name}': unknown precision {p!r}; expected one of "
                             f"{', '.join(LAYER_PRECISIONS)}")
    names = [ly.name for ly in model.layers]
    unknown = sorted(set(layer_precision) - set(names))
    if unknown:
        raise UserInputError(f"{', '.join(map(repr, unknown))} not layers of model '{model.name}'; "
                         f"its layers: {', '.join(names)}")


def build_qat_model(model: keras.Model, layer_precision: Mapping[str, str]
                    ) -> tuple[keras.Model, dict[str, LayerPlan]]:
    """The fake-quant model (TF-MOT QuantizeWrapperV2 around each planned layer) and the plan.

    The input model is not modified: layers are cloned, then weights copied by layer name.
    """
    require_tf_keras_model(model)
    if not getattr(model, "_is_graph_network", False):
        raise UserInputError(f"model '{model.name}' is a subclassed Model; QAT needs a functional "
                         "tf_keras model (TF-MOT rewrites the layer graph)")
    check_precision(model, layer_precision)
    plans = plan(model, layer_precision)

    def annotate(layer: keras.layers.Layer) -> keras.layers.Layer:
        clone = layer.__class__.from_config(layer.get_config())
        cfg = plans[layer.name].config
        return tfq.quantize_annotate_layer(clone, cfg) if cfg is not None else clone

    shape = model.input_shape
    if isinstance(shape, list):
        raise UserInputError(f"model '{model.name}' has {len(shape)} inputs; QAT trains "
                         "single-input SR nets")
    any_size = None  # fixed-shape export models train through an any-size clone
    if shape[:3] != (None, None, None):
        any_size = keras.Input((None, None, shape[-1]), name=model.input_names[0])
    try:
        annotated = keras.models.clone_model(model, input_tensors=any_size, clone_function=annotate)
    except (ValueError, TypeError) as e:
        raise UserInputError(f"model '{model.name}' cannot be rebuilt for training with input "
                         f"(None, None, {shape[-1]}): {e}; pass its any-size version") from None
    for layer in annotated.layers:
        inner = getattr(layer, "layer", layer)
        if inner.weights:
            inner.set_weights(model.get_layer(inner.name).get_weights())
    if not any(p.config for p in plans.values()):
        return annotated, plans  # all float / unsupported: nothing for TF-MOT to wrap
    with tfq.quantize_scope(CUSTOM_OBJECTS):
        return tfq.quantize_apply(annotated, scheme=PolicyScheme()), plans


def float_weights_from(qat_model: keras.Model, model: keras.Model) -> keras.Model:
    """A clone of `model` (same classes, names, graph) holding `qat_model`'s trained weights.

    Only the wrapped layers' own variables (kernel, bias, PReLU alpha) are copied; quantizer
    ranges belong to the TF-MOT wrappers and are dropped: AEQ calibrates its own at export.
    """
    src: dict[str, list[np.ndarray]] = {}
    for ly in qat_model.layers:
        if isinstance(ly, tfq.QuantizeWrapper):  # its layer.kernel is now the quantized tensor:
            by_name = {_base(v.name): v for v in ly.weights}  # find the variable by name
            src[ly.layer.name] = [by_name[_base(w.name)].numpy()
                                  for w in model.get_layer(ly.layer.name).weights]
        else:
            src[ly.name] = ly.get_weights()
    out = keras.models.clone_model(model)
    for layer in out.layers:
        try:
            layer.set_weights(src[layer.name] if layer.weights else [])
        except (KeyError, ValueError) as e:
            raise RuntimeError(f"cannot copy QAT weights back into layer {layer.name}: "
                               f"{e}") from None
    return out


def _base(var_name: str) -> str:
    """'quant_conv1/kernel:0' -> 'kernel' (wrapper and clone name their variables differently)."""
    return var_name.split(":")[0].split("/")[-1]


def _photos(train_dir: Optional[str], scale: int, patch: int):
    """Training pairs and validation samples exactly as deploy/train.py builds them."""
    train_files, val_files, _ = images.training_photos(train_dir)
    pairs = _load_photos(train_files, scale)
    small = [p for p, (_, lr) in zip(train_files, pairs) if min(lr.shape[:2]) < patch]
    if small:
        raise images.DataError(f"{small[0]} is smaller than one LR patch ({patch}px at x{scale})")
    val = images.make_samples([(p.stem, images.textured_crop(_shrink(images.load_image(p)), 240))
                             for p in val_files], scale)
    return pairs, val


def _val_psnr(model: keras.Model, val, scale: int, conv: IOConvention) -> float:
    """PSNR_Y of the final RGB image, as deploy/train.py and deploy/evaluate.py compute it."""
    scores = []
    for s in val:
        lr01 = s.lr.astype(np.float32) / 255.0
        y = model(conv.model_input(lr01)[None], training=False)[0].numpy()
        sr = np.clip(np.round(conv.to_rgb01(y, lr01, scale) * 255.0), 0, 255).astype(np.uint8)
        scores.append(metrics.psnr(sr, s.hr, crop_border=scale))
    return float(np.mean(scores))


def qat_finetune(model: keras.Model, layer_precision: Mapping[str, str], *, steps: int,
                 train_dir: Optional[str] = None, scale: int, batch: int = 16, patch: int = 48,
                 lr: float = 1e-4, val_every: int = 250, seed: int = 0,
                 progress: bool = True, convention: Optional[IOConvention] = None) -> QATResult:
    """Fine-tune `model` under fake-quant that simulates `layer_precision` per layer.

    Args:
      model: float functional tf_keras SR model, not modified. A fixed-shape export model
        trains through an any-size clone and comes back fixed-shape.
      layer_precision: Keras layer name -> "a8w8" | "a16w8" | "float"; missing layers: a8w8.
      steps: optimizer steps (L1 loss, Adam, cosine decay from `lr`); 0 only calibrates.
      train_dir: folder of HR photos (last one held out for validation); default: the
        shipped photos (deploy.data.images.training_photos).
      convention: the model's I/O (RGB or Y, [0, 1] or [0, 255]); default RGB [0, 1] for
        3-channel models, Y [0, 1] for 1-channel ones. Patches are fed in it; validation
        PSNR_Y is measured on the final RGB image as deploy.evaluate does.
    Returns:
      QATResult with a plain float model to export through the per-layer quantizer.
    Raises:
      ValueError: bad precision strings or layer names, non-functional models.
      deploy.data.DataError: missing or too small photos.
    """
    if steps < 0 or val_every < 1:
        raise UserInputError(f"need steps >= 0 and val_every >= 1, got {steps} and {val_every}")
    qmodel, plans = build_qat_model(model, layer_precision)
    channels = model.input_shape[-1]
    conv = convention or IOConvention("y" if channels == 1 else "rgb")
    if channels != conv.n_channels:
        raise UserInputError(f"model '{model.name}' takes {channels} channel(s), its convention "
                         f"'{conv.channels}' means {conv.n_channels}")
    pairs, val = _photos(train_dir, scale, patch)
    t0 = time.time()
    calib = tf.function(lambda x: qmodel(x, training=True), reduce_retracing=True)
    for i in range(CALIBRATION_BATCHES):
        rng = np.random.default_rng([seed, 1 << 30, i])  # never a training step's batch
        calib(conv.model_input(sample_batch(pairs, batch, patch, scale, rng)[0]))

    schedule = keras.optimizers.schedules.CosineDecay(lr, max(steps, 1), alpha=0.01)
    opt = keras.optimizers.Adam(schedule)

    @tf.function(reduce_retracing=True)
    def train_step(lr_b, hr_b):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(qmodel(lr_b, training=True) - hr_b))
        grads = tape.gradient(loss, qmodel.trainable_variables)
        opt.apply_gradients(zip(grads, qmodel.trainable_variables))
        return loss

    before = val_psnr = _val_psnr(qmodel, val, scale, conv)
    bar = tqdm(total=steps, desc=f"QAT {model.name}", unit="step", disable=not progress)
    bar.set_postfix(val_psnr_y=f"{val_psnr:.2f}")
    losses: list[float] = []
    for step in range(steps):
        rng = np.random.default_rng([seed, step])
        lr_b, hr_b = sample_batch(pairs, batch, patch, scale, rng)
        losses.append(float(train_step(conv.model_input(lr_b), conv.model_input(hr_b))))
        bar.update(1)
        if (step + 1) % val_every == 0 or step + 1 == steps:
            val_psnr = _val_psnr(qmodel, val, scale, conv)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", val_psnr_y=f"{val_psnr:.2f}")
    bar.close()
    simulated = {n: p.note for n, p in plans.items()
                 if p.config is not None and p.precision != "float"}
    skipped = {n: p.note for n, p in plans.items() if n not in simulated}
    return QATResult(float_weights_from(qmodel, model), simulated, skipped, steps,
                     time.time() - t0, before, val_psnr)


def finetune_source(src: "ModelSource", policy: "Policy", input_hw: tuple[int, int], *, steps: int,
                    train_dir: Optional[str] = None, calib_dir: Optional[str] = None, calib_images: int = 8,
                    ptq=None, progress: bool = False, init: str = "minmax") -> tuple[Any, dict]:
    """QAT for `deploy.quantize(src, policy, deploy.QuantizeConfig(ptq=<returned options>))`, and its report entry.

    The QAT that reaches the exported model (deploy/experimental/lsq.py: learned ranges and
    weights on the quantized graph, distilled from the float model), for every source the
    per-layer route takes (tf_keras, Keras 3, SavedModel, float TFLite). `calib_dir` /
    `calib_images` must be those the export uses; `ptq` options cannot be combined with it.
    `init`: where the int8 ranges start (lsq.QatSettings.init: minmax, mse, p<percent>).
    """
    from deploy.convert.ptq import PtqOptions
    from deploy.experimental import lsq
    if ptq is not None and not PtqOptions.parse(ptq).is_default:
        raise lsq.QatError("QAT learns the ranges and weights the PTQ options would set: give --qat_steps or --ptq, not both")
    if not isinstance(steps, int) or steps < 1:
        raise lsq.QatError(f"QAT needs steps >= 1, got {steps!r}")
    opts, report = lsq.qat_options(src, policy, input_hw, lsq.QatSettings(steps=steps, init=init), calib_dir=calib_dir,
                                   calib_images=calib_images, train_dir=train_dir, progress=progress)
    return opts, {**report, "method": "learned ranges + weights on the quantized graph, distilled from float "
                  "(deploy/experimental/lsq.py)", "simulated_layers": report["learned_ranges"],
                  "not_simulated": {}}
