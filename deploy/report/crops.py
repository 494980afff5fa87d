"""Visual crops: where quantization hurts most, side by side, with an amplified error map.

Gathering picks, per image, the window with the highest mean |Y(int8) - Y(float)| (the most
difficult crop for quantization) and saves each model's crop as a lossless PNG plus
`crops.json` (position, per-crop PSNR_Y); rendering only reads those files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from deploy.data import metrics
from deploy.data.images import Sample
from deploy.data.imresize import bicubic_upscale

PANELS = ("bicubic", "int8", "policy", "float", "hr")
PANEL_TITLES = {"bicubic": "bicubic", "int8": "int8", "policy": "policy", "float": "float", "hr": "ground truth"}
#: Error maps saturate at the 99.5th percentile of the crop's error (at least 1 level of Y), so
#: sub-level int8 noise and multi-level artefacts both show; the colour bar gives the levels.
SATURATE_PERCENTILE = 99.5


def hardest_window(a: np.ndarray, b: np.ndarray, size: int, border: int) -> tuple[int, int]:
    """Top-left (y, x) of the size x size window with the largest mean |Y(a) - Y(b)|."""
    err = np.abs(metrics.rgb_to_y(a) - metrics.rgb_to_y(b))
    h, w = err.shape
    if h - 2 * border < size or w - 2 * border < size:
        border = 0
    size = min(size, h, w)
    ii = np.pad(err, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    sums = sums[border:h - size - border + 1, border:w - size - border + 1]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y + border), int(x + border)


def gather(samples: Sequence[Sample], runners: Mapping[str, Callable[[np.ndarray], np.ndarray]],
           names: Sequence[str], out_dir: Path, scale: int, rel_dir: str = "crops", size: int = 48) -> dict:
    """Run the models on the chosen images, save the hardest crop of each; returns crops.json."""
    (out_dir / rel_dir).mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in samples}
    entries = []
    for name in names:
        s = by_name[name]
        outs = {v: np.asarray(r(s.lr)) for v, r in runners.items()}
        outs["bicubic"], outs["hr"] = bicubic_upscale(s.lr, scale), s.hr
        y, x = hardest_window(outs["int8"], outs["float"], size, border=scale)
        files, psnr, dy = {}, {}, {}
        for v in PANELS:
            if v not in outs:
                continue
            crop = outs[v][y:y + size, x:x + size]
            rel = f"{rel_dir}/{name}_{v}.png"
            Image.fromarray(crop).save(out_dir / rel)
            files[v] = rel
            if v != "hr":
                psnr[v] = round(metrics.psnr(crop, outs["hr"][y:y + size, x:x + size], crop_border=0), 2)
            if v in ("int8", "policy"):
                dy[v] = round(float(np.abs(metrics.rgb_to_y(crop) - metrics.rgb_to_y(
                    outs["float"][y:y + size, x:x + size])).mean()), 3)
        entries.append({"image": name, "y": y, "x": x, "files": files, "psnr_y": psnr,
                        "mean_abs_dy_vs_float": dy})
    return {"size": size, "selected_by": f"largest mean |Y(int8) - Y(float)| over "
            f"{size}x{size} windows (border of {scale} px excluded)", "images": entries}


def figure(entry: Mapping, root: Path, out_dir: Path) -> str:
    """One row of crops and, under int8 and policy, their amplified |Y - Y(float)| maps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imgs = {v: np.asarray(Image.open(root / rel).convert("RGB")) for v, rel in entry["files"].items()}
    panels = [v for v in PANELS if v in imgs]
    errs = [v for v in ("int8", "policy") if v in imgs and "float" in imgs]
    diffs = {v: np.abs(metrics.rgb_to_y(imgs[v]) - metrics.rgb_to_y(imgs["float"])) for v in errs}
    vmax = max([1.0] + [float(np.percentile(d, SATURATE_PERCENTILE)) for d in diffs.values()])
    fig, axes = plt.subplots(2 if errs else 1, len(panels), figsize=(1.9 * len(panels), 4.5 if errs else 2.5),
                             squeeze=False, layout="constrained")
    for ax, v in zip(axes[0], panels):
        ax.imshow(imgs[v], interpolation="nearest")
        p = entry["psnr_y"].get(v)
        ax.set_title(PANEL_TITLES[v] + (f"\n{p:.2f} dB" if p is not None else "\n(reference)"), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    im = None
    for ax, v in zip(axes[1] if errs else [], panels):
        if v not in errs:
            ax.axis("off")
            continue
        im = ax.imshow(diffs[v], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        mean = entry.get("mean_abs_dy_vs_float", {}).get(v)
        ax.set_title(f"|Y({v}) − Y(float)|" + (f"\nmean {mean:.2f} levels" if mean is not None else ""), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        bar = fig.colorbar(im, ax=list(axes[1]), shrink=0.9, aspect=12)
        bar.set_label(f"|ΔY| in 8-bit levels\n(colour saturates at {vmax:.1f})", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{entry['image']}: hardest {imgs[panels[0]].shape[1]}×{imgs[panels[0]].shape[0]} px "
                 f"crop at x={entry['x']}, y={entry['y']} (HR pixels, enlarged)", fontsize=9)
    name = f"crop_{entry['image']}.png"
    fig.savefig(out_dir / name, dpi=100)
    plt.close(fig)
    return name
