"""The same model's quality on the CPU interpreter and as a phone NPU computes it, side by side.

`compare_npu` compiles the model for the target once, scores the LiteRT CPU run and the emulated
NPU run (NPU partitions in QNN HTP emulation, CPU ops on LiteRT) on the same images with the same
tiling, and keeps the per-image difference (NPU minus CPU): the NPU's integer kernels round
differently from LiteRT's reference/XNNPACK kernels, so the two need not agree to the bit.

JSON (`NpuComparison.to_json`): the CPU result's evaluation contract unchanged (`mean`, `bicubic`,
`images`, ...) plus an `npu_emulated` block: {"target", "soc", "model", "mean", "images",
"seconds", "placement" (ops on the NPU, partitions, CPU ops), "difference": {"mean": {"psnr_y",
"ssim_y"}, "images": [{"name", "psnr_y", "ssim_y"}]}}.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from deploy._files import atomic_write
from deploy.convert.api import QuantizedModel
from deploy.convert.sources import ModelSource
from deploy.data.io_convention import IOConvention
from deploy.evaluation import api
from deploy.evaluation.evaluator import EvalResult, evaluate as _score


#: |mean emulated - CPU PSNR_Y| above which evaluate --npu_emulate warns (int8/a16w8 zoo models agree
#: within 0.003 dB where their kernels match; FSRCNN's PReLU +0.5 dB, float ESPCN -8 dB: bench/npu.py)
WARN_DB = 0.1
FLOAT_HINT = ("; float models run in fp16 on the HTP (e.g. float ESPCN's conv-tanh-conv chain ends 0.035 low there "
              "although each op alone agrees with the CPU: python bench/npu_float_probe.py)")


@dataclasses.dataclass(frozen=True)
class NpuComparison:
    cpu: EvalResult
    npu: EvalResult
    target: str                       # e.g. "qualcomm:SM8650"
    placement: Optional[Mapping[str, Any]] = None  # the SoC's placement_summary entry (None: given compiled)
    float_model: bool = False          # float activations: the HTP runs them in fp16

    @property
    def soc(self) -> str:
        return self.target.split(":")[-1]

    def differences(self) -> list[dict[str, Any]]:
        """Per image: NPU minus CPU PSNR_Y (dB) and SSIM_Y."""
        return [{"name": c.name, "psnr_y": n.psnr_y - c.psnr_y, "ssim_y": n.ssim_y - c.ssim_y}
                for c, n in zip(self.cpu.images, self.npu.images)]

    @property
    def mean_difference(self) -> dict[str, float]:
        return {k: self.npu.mean[k] - self.cpu.mean[k] for k in ("psnr_y", "ssim_y")}

    def warning(self, threshold_db: Optional[float] = None) -> Optional[str]:
        """One line when the NPU's own arithmetic moves PSNR_Y by more than `threshold_db` on average
        (default WARN_DB): the phone shows the emulated figure, not the CPU's."""
        limit = WARN_DB if threshold_db is None else threshold_db
        d = self.mean_difference["psnr_y"]
        if abs(d) <= limit:
            return None
        worst = max(self.differences(), key=lambda x: abs(x["psnr_y"]))
        return (f"warning: on {self.soc} (emulated) PSNR_Y is {d:+.2f} dB from the CPU's on average ({worst['psnr_y']:+.2f} "
                f"on {worst['name']}): the NPU's own arithmetic, which the phone shows; judge this target on the emulated "
                f"figure{FLOAT_HINT if self.float_model else ''}")

    def to_json(self) -> dict[str, Any]:
        npu = self.npu.to_json()
        block = {"target": self.target, "soc": self.soc,
                 **{k: npu[k] for k in ("model", "mean", "images", "seconds", "output_megapixels_per_s")},
                 "placement": dict(self.placement) if self.placement is not None else None,
                 "difference": {"mean": {k: round(v, 4) for k, v in self.mean_difference.items()},
                                "images": [{"name": d["name"], "psnr_y": round(d["psnr_y"], 4),
                                            "ssim_y": round(d["ssim_y"], 5)} for d in self.differences()]},
                 **({"warning": warning} if (warning := self.warning()) else {})}
        return {**self.cpu.to_json(), "npu_emulated": block}

    def table(self) -> str:
        head = (f"{'image':<24}{'CPU PSNR':>9}{f'{self.soc} NPU':>11}{'diff':>8}"
                f"{'CPU SSIM':>10}{'NPU SSIM':>10}{'diff':>9}")
        rows = [head]
        for c, n in zip(self.cpu.images, self.npu.images):
            rows.append(f"{c.name:<24}{c.psnr_y:9.2f}{n.psnr_y:11.2f}{n.psnr_y - c.psnr_y:+8.3f}"
                        f"{c.ssim_y:10.4f}{n.ssim_y:10.4f}{n.ssim_y - c.ssim_y:+9.5f}")
        mc, mn, d = self.cpu.mean, self.npu.mean, self.mean_difference
        rows.append(f"{'mean':<24}{mc['psnr_y']:9.2f}{mn['psnr_y']:11.2f}{d['psnr_y']:+8.3f}"
                    f"{mc['ssim_y']:10.4f}{mn['ssim_y']:10.4f}{d['ssim_y']:+9.5f}")
        p = self.placement
        if p is not None and "ops_on_npu" in p:
            rows.append(f"{self.soc}: {p['ops_on_npu']}/{p['ops_total']} ops on the NPU in {p['partitions']} "
                        f"partition(s)" + ("" if p["whole"] else f"; CPU ops: {', '.join(c['op'] for c in p['cpu_ops'])}"))
        return "\n".join(rows)


def compare_npu(model: str | Path | QuantizedModel | ModelSource, target: str, data: Optional[str | Path] = None, *,
                precision: str = "int8", scale: Optional[int] = None, convention: Optional[IOConvention] = None,
                num_threads: int = 2, input_size: Optional[tuple[int, int]] = api.DEFAULT_INPUT_HW,
                overlap: Optional[int] = None) -> NpuComparison:
    """CPU and emulated-NPU quality of one model on the same images (see the module doc).

    Args: as `deploy.evaluate`; `target` e.g. `qualcomm:SM8650` (`precision`, `input_size`: for a
        `ModelSource`, converted in memory first).
    Raises:
        deploy.errors.SrdeployError: what `deploy.evaluate` raises, an unknown target, the NPU
            extra missing, or a model the compiler rejects.
    """
    from deploy.evaluation.runners import TFLiteRunner
    from deploy.npu import placement_summary, resolve_soc
    soc = resolve_soc(target)  # fail before any conversion or evaluation
    if isinstance(model, ModelSource):
        model = api._quantize_for_npu(model, precision, input_size, target)
    if isinstance(model, QuantizedModel):
        tflite, report, label = model.tflite_bytes, dict(model.report), str(model.report.get("model", "model"))
    else:
        tflite = api._existing(model)
        report, label = api.read_report(tflite), tflite.name
    factory, _, compiled = api.npu_interpreter_factory(tflite, soc.target)
    st = api._setup(tflite, report, label=label, data_dir=data, scale=scale, convention=convention, overlap=overlap)
    results = []
    for name, fac in ((label, None), (api.npu_label(label, soc.name), factory)):
        runner = TFLiteRunner(tflite, st.scale, num_threads=num_threads, overlap=st.overlap,
                              convention=st.convention, interpreter_factory=fac)
        results.append(_score(runner, st.samples, model=name, dataset=st.dataset))
    placement = placement_summary([compiled])[soc.name] if compiled is not None else None
    return NpuComparison(results[0], results[1], soc.target, placement, _is_float(tflite))


def _is_float(tflite) -> bool:
    """Whether the model computes in float (no integer activations): the HTP runs it in fp16."""
    from deploy.convert.tflite_io import make_interpreter
    interp = make_interpreter(tflite, delegates=False)
    return not any(np.dtype(t["dtype"]) in (np.int8, np.int16, np.uint8) for t in interp.get_tensor_details()
                   if t["name"] and len(t["shape"]) == 4)


def write_comparison_json(result: NpuComparison, path: str | Path, *, overwrite: bool = True) -> None:
    atomic_write(Path(path), json.dumps(result.to_json(), indent=2) + "\n", overwrite=overwrite)
