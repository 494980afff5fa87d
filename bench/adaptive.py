"""Run-time patch-adaptive precision: which per-tile criterion, and what it buys.

  python bench/adaptive.py                         # xlsr, fsrcnn, espcn, abpn at x3
  python bench/adaptive.py --models xlsr --policy hybrid_{model}.json --device_profiles htp_npu
  python bench/adaptive.py --policy a8w8       # fast path = uniform int8 (wider gap to close)

Per model: the fast hybrid model (--policy, default a hand policy: layers reading the input and
the last conv onwards a16w8, the rest a8w8, as bench/hybrid.py) and the all-a16w8 model, both
from one calibration at a fixed LR tile. Every tile of every evaluation image runs through both
once; then, per tile, the true gain of the wide path (window-weighted change of squared Y error
against HR: the quantity that decides whole-image PSNR) is compared with the candidate criteria:
  - cheap, on the LR tile: flatness, gradient energy, local variance, near-black/white pixels,
    brightness (deploy.runtime.adaptive.CRITERIA);
  - int8 range overflow: fraction of saturated int8 activations of the hybrid model's first and
    last int8 layer (needs a hybrid run first, so it costs a whole fast inference per tile).
References: `oracle` routes by the true gain (needs HR), `noise_oracle` by |hybrid - a16w8|^2
(needs both models: the best any HR-free criterion could do), `random` (expected value).
Prints Spearman rank correlations, the share of the oracle's gain each routing captures, then
PSNR_Y and modeled latency (deploy.latency, per device profile: per-tile prediction x tiles on
each path + the criterion's cost, one fused float elementwise pass) of adaptive routing at
several wide fractions vs both fixed models.
Writes bench/results/adaptive.json and adaptive.png (adaptive_<policy>.* for other policies).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from ai_edge_litert.interpreter import Interpreter
from scipy import stats

from deploy.runtime import adaptive

from deploy.runtime import pair as adaptive_pair

from deploy import provenance
from deploy.data import calibration
from deploy.data import images as image_io

from deploy.convert import per_layer as hybrid

from deploy.latency import cost_model

from deploy.data import metrics

from deploy.convert import sources
from deploy.convert.policy import Policy
from deploy.evaluation.runners import TFLiteRunner, pad_to_tile
from models.complexity import receptive_radius

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["xlsr", "fsrcnn", "espcn", "abpn"], "zoo models (shipped weights)")
flags.DEFINE_integer("scale", 3, "scale")
flags.DEFINE_string("policy", "hand", "fast model's policy: 'hand', 'a8w8' (uniform) or a policy JSON per model "
                    "('{model}' in the path is replaced by the model name)")
flags.DEFINE_integer("tile", 32, "LR tile side (model input)")
flags.DEFINE_integer("blend", 4, "seam cross-fade width, LR pixels")
flags.DEFINE_list("fractions", ["0.1", "0.25", "0.5", "0.75"], "wide fractions to evaluate")
flags.DEFINE_string("criterion", adaptive.DEFAULT_CRITERION, "the shipped criterion (reported in the table)")
flags.DEFINE_list("device_profiles", ["htp_npu", "nnapi_npu_int16_cpu"], "deploy/profiles names for modeled latency")

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "results"
SATURATION = ["sat_first", "sat_last"]
CHEAP = list(adaptive.CRITERIA)


class Saturation:
    """Fraction of saturated int8 activations of the first and last int8 layer, per tile."""

    def __init__(self, tflite: bytes):
        self.interp = Interpreter(model_content=tflite, num_threads=2, experimental_preserve_all_tensors=True)
        self.interp.allocate_tensors()
        tensors = {t["index"]: t for t in self.interp.get_tensor_details()}
        outs = [tensors[o["outputs"][0]] for o in self.interp._get_ops_details()  # noqa: SLF001
                if o["op_name"] not in ("QUANTIZE", "DEQUANTIZE") and o["outputs"]
                and tensors[o["outputs"][0]]["dtype"] == np.int8]
        self.watch = (outs[0], outs[-1]) if outs else ()
        self.input = self.interp.get_input_details()[0]

    def __call__(self, lr_tile: np.ndarray) -> tuple[float, float]:
        if not self.watch:
            return 0.0, 0.0
        self.interp.set_tensor(self.input["index"], (lr_tile[None] / 255.0).astype(np.float32))
        self.interp.invoke()
        fr = []
        for t in self.watch:
            q = self.interp.get_tensor(t["index"])
            zero = t["quantization"][1]
            fr.append(float(((q == 127) | ((q == -128) & (zero > -128))).mean()))  # -128 = 0 after ReLU
        return fr[0], fr[1]


def tile_gains(grid: adaptive.TileGrid, fast_sr: np.ndarray, wide_sr: np.ndarray, hr: np.ndarray,
               scale: int) -> dict[str, np.ndarray]:
    """Per tile (window share, border shaved): drop in summed squared Y error against HR (what
    decides whole-image PSNR), PSNR gain in dB, and the energy of hybrid - a16w8 (the
    quantization noise the wide path removes: the part of the gain a criterion can know
    without HR)."""
    wsum = np.zeros(hr.shape[:2])
    for ij in grid.indices():
        y, x = grid.origin(ij)
        wsum[y * scale:(y + grid.tile[0]) * scale, x * scale:(x + grid.tile[1]) * scale] += grid.window(ij, scale)
    mask = np.zeros(hr.shape[:2])
    mask[scale:-scale, scale:-scale] = 1.0
    yf, yw, yh = (metrics.rgb_to_y(a) for a in (fast_sr, wide_sr, hr))
    ef, ew, en = (yf - yh) ** 2, (yw - yh) ** 2, (yf - yw) ** 2
    out = {k: np.zeros(grid.shape) for k in ("d_sse", "d_psnr", "noise")}
    for ij in grid.indices():
        w = grid.window(ij, scale) / grid.crop(wsum, ij, scale) * grid.crop(mask, ij, scale)
        sf, sw = (float((w * grid.crop(e, ij, scale)).sum()) for e in (ef, ew))
        out["d_sse"][ij], out["d_psnr"][ij] = sf - sw, 10 * math.log10(max(sf, 1e-9) / max(sw, 1e-9))
        out["noise"][ij] = float((w * grid.crop(en, ij, scale)).sum())
    return out


def measure_tiles(src, fast_tfl: bytes, wide_tfl: bytes, tile: tuple[int, int], margin: int) -> tuple[list, dict]:
    """Every tile of every evaluation image through both models once, with every score."""
    scale = src.scale
    fast, wide, sat = TFLiteRunner(fast_tfl, scale), TFLiteRunner(wide_tfl, scale), Saturation(fast_tfl)
    images, secs = [], {"fast": 0.0, "wide": 0.0, "criterion": 0.0, "tiles": 0}
    for s in image_io.eval_samples(scale):
        lr = pad_to_tile(s.lr, tile)
        grid = adaptive.plan(lr.shape[0], lr.shape[1], tile, margin, FLAGS.blend)
        outs = {}
        for key, runner in (("fast", fast), ("wide", wide)):
            t = time.perf_counter()
            outs[key] = adaptive.run_tiles(lr, grid, runner.invoke)
            secs[key] += time.perf_counter() - t
        scores = {}
        for c in CHEAP:
            t = time.perf_counter()
            scores[c] = adaptive.score_tiles(lr, grid, c)
            secs["criterion"] += (time.perf_counter() - t) if c == FLAGS.criterion else 0.0
        sats = np.array([[sat(grid.crop(lr, (i, j))) for j in range(grid.shape[1])] for i in range(grid.shape[0])])
        scores.update({key: sats[..., k] for k, key in enumerate(SATURATION)})
        srs = {k: adaptive.finish(adaptive.blend_tiles(grid, outs[k], scale), lr, s.lr.shape[:2], scale)
               for k in outs}
        gains = tile_gains(grid, srs["fast"], srs["wide"], s.hr, scale)
        scores["oracle"], scores["noise_oracle"] = gains["d_sse"], gains["noise"]
        secs["tiles"] += grid.shape[0] * grid.shape[1]
        images.append(dict(s=s, lr=lr, grid=grid, outs=outs, scores=scores, gains=gains, srs=srs))
    return images, secs


def correlations(images: list[dict]) -> dict:
    """Spearman rho of every criterion with each per-tile target, all tiles pooled."""
    targets = {k: np.concatenate([im["gains"][k].ravel() for im in images]) for k in ("d_sse", "d_psnr", "noise")}
    out = {}
    for c in CHEAP + SATURATION:
        v = np.concatenate([im["scores"][c].ravel() for im in images])
        out[c] = {k: _rho(v, t) for k, t in targets.items()}
    return out


def tile_costs(prep, policy: Policy, name: str, scale: int, tile: tuple[int, int], fast_only: bool = False) -> dict:
    """Modeled ms per tile for each device profile: fast, wide, int8 and each criterion."""
    out = {}
    for pname in FLAGS.device_profiles:
        cost = cost_model.from_device_profile(prep, pname, model=name, scale=scale)
        prof = cost_model.load_profile(pname)
        fast_ms = cost.predict_ms(policy.resolved(prep.layers))
        crit = {c: prof.op_ms("add_mul", "float", adaptive.CRITERIA[c][1] * tile[0] * tile[1]) for c in CHEAP}
        crit.update({c: fast_ms for c in SATURATION})  # a whole hybrid inference first
        crit.update({"oracle": 0.0, "noise_oracle": 0.0})  # references, not run-time options
        out[pname] = {"fast": fast_ms, "wide": cost.predict_ms({l: "a16w8" for l in prep.layers}),
                      "int8": cost.predict_ms({l: "a8w8" for l in prep.layers}), "criterion": crit}
    return out


def sweep(images: list[dict], costs: dict, criterion: str, f: float, scale: int, scored: bool = True) -> dict:
    """Route every image's tiles by `criterion` at wide fraction `f`: mean PSNR_Y and modeled ms
    per image (fast tiles x fast ms + wide tiles x wide ms + every tile's criterion cost)."""
    psnrs, k_all, n_all = [], 0, 0
    ms = {p: 0.0 for p in costs}
    for im in images:
        r = adaptive.route(im["scores"][criterion], wide_fraction=f)
        sr = adaptive.finish(adaptive.compose(im["grid"], im["outs"]["fast"], im["outs"]["wide"], r, scale),
                             im["lr"], im["s"].lr.shape[:2], scale)
        psnrs.append(metrics.psnr(sr, im["s"].hr, crop_border=scale))
        k, n = int(r.sum()), r.size
        for p, c in costs.items():
            # saturation: the criterion pass IS the hybrid run (charged as criterion), fast tiles reuse it
            fast_runs = 0 if criterion in SATURATION else n - k
            ms[p] += fast_runs * c["fast"] + k * c["wide"] + scored * n * c["criterion"][criterion]
        k_all, n_all = k_all + k, n_all + n
    return {"criterion": criterion, "fraction": f, "psnr_y": round(float(np.mean(psnrs)), 4),
            "modeled_ms": {p: round(v / len(images), 4) for p, v in ms.items()},
            "wide_tiles": k_all, "tiles": n_all, "wide_share": round(k_all / n_all, 4)}


def expected_random(images: list[dict], f: float, scale: int) -> float:
    """PSNR_Y if a random `f` of the tiles went wide: each image's MSE moves f of the way."""
    out = []
    for im in images:
        hr = metrics.rgb_to_y(im["s"].hr)[scale:-scale, scale:-scale]
        ef, ew = (np.mean((metrics.rgb_to_y(im["srs"][k])[scale:-scale, scale:-scale] - hr) ** 2) for k in ("fast", "wide"))
        out.append(10 * math.log10(255.0 ** 2 / (ef - f * (ef - ew))))
    return round(float(np.mean(out)), 4)


def run_model(name: str, scale: int, fractions: list[float]) -> dict:
    src = sources.resolve(name, scale)
    tile = (FLAGS.tile, FLAGS.tile)
    prep = hybrid.prepare(src.fixed(tile))
    if FLAGS.policy == "hand":
        policy = hybrid.hand_policy(prep, name, scale)
    elif FLAGS.policy == "a8w8":
        policy = Policy(name, scale, "a8w8")
    else:
        policy = Policy.load(FLAGS.policy.replace("{model}", name))
    fast_tfl, wide_tfl, _, _ = adaptive_pair.quantize_pair(prep, src, policy)
    margin = math.ceil(receptive_radius(prep.model))
    images, secs = measure_tiles(src, fast_tfl, wide_tfl, tile, margin)
    costs = tile_costs(prep, policy, name, scale, tile)
    order = [FLAGS.criterion, "oracle", "noise_oracle"] + [c for c in CHEAP + SATURATION if c != FLAGS.criterion]
    n = secs["tiles"]
    prov = provenance.collect({"calibration": calibration.calibration_set(scale, tile, convention=src.convention).to_json(),
                               "evaluation": provenance.dataset_json("default", [(im["s"].name, im["s"].hr) for im in images])})
    return {"provenance": prov, "model": name, "scale": scale, "policy": policy.to_json(), "tile_lr": list(tile),
            "margin_lr": margin, "blend_lr": FLAGS.blend, "tiles": n, "images": len(images),
            "per_tile_ms": costs,
            "desktop_per_tile_ms": {"fast": round(1e3 * secs["fast"] / n, 3), "wide": round(1e3 * secs["wide"] / n, 3),
                                    FLAGS.criterion: round(1e3 * secs["criterion"] / n, 4)},
            "fixed": {"fast": sweep(images, costs, FLAGS.criterion, 0.0, scale, scored=False),
                      "wide": sweep(images, costs, FLAGS.criterion, 1.0, scale, scored=False)},
            "correlation": correlations(images),
            "adaptive": [sweep(images, costs, c, f, scale) for c in order for f in fractions],
            "random_expected_psnr_y": {str(f): expected_random(images, f, scale) for f in fractions}}


def _captured(r: dict, criterion: str) -> list[float]:
    """Share of the oracle's gain captured by `criterion`, per fraction (skipping no-gain cases)."""
    fast = r["fixed"]["fast"]["psnr_y"]
    by = {(a["criterion"], a["fraction"]): a["psnr_y"] for a in r["adaptive"]}
    out = []
    for f in sorted({a["fraction"] for a in r["adaptive"]}):
        best = by[("oracle", f)] - fast
        v = r["random_expected_psnr_y"][str(f)] if criterion == "random" else by[(criterion, f)]
        if best > 1e-6:
            out.append((v - fast) / best)
    return out


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return round(float(stats.spearmanr(a, b).statistic), 3)


def tables(results: list[dict]) -> str:
    cands = list(results[0]["correlation"])
    lines = ["Spearman rank correlation of each criterion with the true per-tile effect of a16w8 over the hybrid",
             "(d_sse: drop in squared Y error, decides image PSNR; d_psnr: tile PSNR gain; noise: |hybrid - a16w8|^2)",
             f"{'model':<8}{'target':<8}" + "".join(f"{c:>16}" for c in cands)]
    for r in results:
        for t in ("d_sse", "d_psnr", "noise"):
            lines.append(f"{r['model']:<8}{t:<8}" + "".join(f"{r['correlation'][c][t]:>+16.2f}" for c in cands))
    cols = ["oracle", "noise_oracle"] + cands + ["random"]
    lines += ["", "Share of the oracle's PSNR_Y gain over the hybrid captured by routing on each criterion "
              "(oracle: true d_sse; random: expected)", f"{'model':<8}{'wide':>6}" + "".join(f"{c:>16}" for c in cols[1:])]
    for r in results:
        fast = r["fixed"]["fast"]["psnr_y"]
        by = {(a["criterion"], a["fraction"]): a["psnr_y"] for a in r["adaptive"]}
        for f in sorted({a["fraction"] for a in r["adaptive"]}):
            best = by[("oracle", f)] - fast
            vals = [by[(c, f)] for c in cols[1:-1]] + [r["random_expected_psnr_y"][str(f)]]
            lines.append(f"{r['model']:<8}{f:>6.0%}" + "".join(
                f"{(v - fast) / best:>16.0%}" if best > 1e-6 else f"{'-':>16}" for v in vals))
    means = [np.mean([s for r in results for s in _captured(r, c)]) for c in cols[1:]]
    lines.append(f"{'mean':<14}" + "".join(f"{m:>16.0%}" for m in means))
    profs = list(results[0]["per_tile_ms"])
    lines += ["", f"PSNR_Y (dB) on the default evaluation set and modeled latency per image (ms) on each device "
              f"profile, x{FLAGS.scale}, {FLAGS.tile}x{FLAGS.tile} LR tiles",
              f"{'model':<8}{'path':<22}{'wide':>6}{'PSNR_Y':>9}" + "".join(f"{p:>22}" for p in profs)]
    for r in results:
        fast, wide = r["fixed"]["fast"], r["fixed"]["wide"]
        show = [("hybrid (fixed)", fast), ("a16w8 (fixed)", wide)] + [
            (f"{a['criterion']} @{a['fraction']:g}", a) for a in r["adaptive"]
            if a["criterion"] in (FLAGS.criterion, "oracle")]
        for label, a in show:
            lines.append(f"{r['model']:<8}{label:<22}{a['wide_share']:>6.0%}{a['psnr_y']:>9.3f}" + "".join(
                f"{a['modeled_ms'][p]:>13.3f} ({a['modeled_ms'][p] / fast['modeled_ms'][p]:.2f}x)" for p in profs))
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results):
        fast, wide = r["fixed"]["fast"], r["fixed"]["wide"]
        prof = FLAGS.device_profiles[0]
        for crit, style in ((FLAGS.criterion, "o-"), ("oracle", "s--"), ("noise_oracle", "v-."), ("sat_last", "^:")):
            pts = [fast] + [a for a in r["adaptive"] if a["criterion"] == crit] + [wide]
            ax.plot([p["modeled_ms"][prof] for p in pts], [p["psnr_y"] for p in pts], style, label=crit)
        ax.plot([fast["modeled_ms"][prof]], [fast["psnr_y"]], "k*", ms=11, label="hybrid (fixed)")
        ax.plot([wide["modeled_ms"][prof]], [wide["psnr_y"]], "kD", ms=8, label="a16w8 (fixed)")
        ax.set_title(f"{r['model']} x{r['scale']}")
        ax.set_xlabel(f"modeled latency per image (ms, {prof})")
        ax.set_ylabel("PSNR_Y (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv):
    del argv
    adaptive.criterion(FLAGS.criterion)
    fractions = [float(f) for f in FLAGS.fractions]
    t0, results = time.time(), []
    for name in FLAGS.models:
        t = time.time()
        results.append(run_model(name, FLAGS.scale, fractions))
        print(f"{name}: {results[-1]['tiles']} tiles in {time.time() - t:.0f} s", flush=True)
    print("\n" + tables(results))
    print(f"\nbench/adaptive.py took {(time.time() - t0) / 60:.1f} min")
    OUT.mkdir(exist_ok=True)
    stem = "adaptive" if FLAGS.policy == "hand" else f"adaptive_{Path(FLAGS.policy).stem.replace('{model}', 'model')}"
    (OUT / f"{stem}.json").write_text(json.dumps(
        {"rows": results, "policy": FLAGS.policy, "device_profiles": FLAGS.device_profiles, "criterion": FLAGS.criterion,
         "eval_set": list(image_io.EVAL_IMAGES), "fractions": fractions}, indent=2) + "\n")
    plot(results, OUT / f"{stem}.png")
    print(f"wrote {OUT / (stem + '.json')} and {OUT / (stem + '.png')}")


if __name__ == "__main__":
    app.run(main)
