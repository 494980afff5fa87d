"""Set5 / Set14 / B100 / Urban100 PSNR_Y of every shipped weight at float / int8 / a16w8, beside the
papers' figures: `python bench/zoo.py --benchmarks DIR` (DIR laid out as deploy/data/benchmarks.py says).

Every model x precision x set is one cell, cached as its own JSON under bench/results/benchmarks/
and valid while the weight file and the set's manifest (per-image sha256) are unchanged, so a run
cut off at any moment (or stopped by --max_minutes) continues where it stopped, and cells nobody
had time to measure are shown as pending, never guessed. Cheap cells run first: Set5 and Set14 of
every model before B100, Urban100 last; small models before large; float, int8, then a16w8
(int16 reference kernels are slow on a desktop CPU).
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
from PIL import Image

from deploy import provenance
from deploy._files import atomic_write, replace_marked
from deploy.data import benchmarks as bm
from deploy.data import metrics
from deploy.data.imresize import bicubic_upscale
from deploy.evaluation.evaluator import evaluate

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results" / "benchmarks"
SUMMARY = REPO / "bench" / "results" / "benchmarks.json"
CARD = REPO / "models" / "README.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
COMMAND = "python bench/zoo.py --benchmarks data_cache/benchmarks"

#: (model, precision) -> (runner, extra JSON fields, e.g. which int8 route made the model)
MakeRunner = Callable[[str, int, str], tuple[Any, dict]]

#: Where each published figure comes from. Only figures with a source are shown; "–" otherwise.
SOURCES = {
    "edsr_t6": "Lim et al., EDSR, CVPRW 2017, Table 6 (Bicubic row; public benchmark results)",
    "fsrcnn_91": "Dong et al., FSRCNN, ECCV 2016: FSRCNN trained on the 91 images (the figure issue #32 sets as "
                 "the bar; our x3 run trains on T91 as well)",
    "fsrcnn_g100": "Dong et al., FSRCNN, ECCV 2016, Table 4: trained on 91 + General-100 images",
    "espcn_91": "Shi et al., ESPCN, CVPR 2016: trained on the 91 images (relu/tanh comparison table; issue #32)",
    "edsr_base": "Lim et al., EDSR, CVPRW 2017: EDSR-baseline, trained on DIV2K",
}
#: (model, scale) -> {set: (PSNR_Y dB, source key)}. Figures as quoted in issue #32 and the earlier
#: card; the papers' table numbers were not re-read in the PDFs when they were entered.
PAPERS: dict[tuple[str, int], dict[str, tuple[float, str]]] = {
    **{("bicubic", s): {k: (v, "edsr_t6") for k, v in zip(bm.SETS, vals)}
       for s, vals in ((2, (33.66, 30.24, 29.56, 26.88)), (3, (30.39, 27.55, 27.21, 24.46)),
                       (4, (28.42, 26.00, 25.96, 23.14)))},
    ("fsrcnn", 2): {"Set5": (37.00, "fsrcnn_g100"), "Set14": (32.63, "fsrcnn_g100")},
    ("fsrcnn", 3): {"Set5": (33.06, "fsrcnn_91"), "Set14": (29.37, "fsrcnn_91")},
    ("fsrcnn", 4): {"Set5": (30.71, "fsrcnn_g100"), "Set14": (27.59, "fsrcnn_g100")},
    ("espcn", 3): {"Set5": (32.55, "espcn_91"), "Set14": (29.08, "espcn_91")},
    **{("edsr_baseline", s): {"Set5": (a, "edsr_base"), "Set14": (b, "edsr_base")}
       for s, a, b in ((2, 37.99, 33.57), (3, 34.37, 30.28), (4, 32.09, 28.58))},
}


def cell_path(model: str, scale: int, precision: str, set_name: str, results_dir: Path = RESULTS_DIR) -> Path:
    return results_dir / f"{model}_x{scale}" / f"{precision}-{set_name}.json"


def cached(path: Path, weights: Optional[str], manifest: str,
           made_by: Optional[Callable[[], dict]] = None) -> Optional[dict]:
    """The cell measured earlier on the same weight file, the same images and (`made_by()`: fields
    the row must carry, e.g. int8's chosen route) the same way of making the model, else None."""
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    if row.get("weights") != weights or row.get("set_manifest_sha256") != manifest:
        return None
    return row if made_by is None or all(row.get(k) == v for k, v in made_by().items()) else None


def _bicubic_row(bset: bm.BenchmarkSet, scale: int, samples) -> dict:
    t0 = time.time()
    scores = [(s.name, metrics.psnr(bicubic_upscale(s.lr, scale), s.hr, crop_border=scale),
               metrics.ssim(bicubic_upscale(s.lr, scale), s.hr, crop_border=scale)) for s in samples]
    return _row("bicubic", scale, "bicubic", bset, None, scores, time.time() - t0, {})


def _row(model: str, scale: int, precision: str, bset: bm.BenchmarkSet, weights: Optional[str],
         scores: Sequence[tuple[str, float, float]], seconds: float, extra: dict) -> dict:
    return {"model": model, "scale": scale, "precision": precision, "set": bset.name, "weights": weights,
            "set_manifest_sha256": bset.manifest_sha256, "standard_set": bset.standard,
            "psnr_y": round(float(np.mean([p for _, p, _ in scores])), 4),
            "ssim_y": round(float(np.mean([s for _, _, s in scores])), 5),
            "images": [[n, round(p, 4), round(s, 5)] for n, p, s in scores],
            "seconds": round(seconds, 1), "measured": time.strftime("%Y-%m-%d %H:%M"),
            "convention": {**metrics.CONVENTION, "crop_border": scale},
            "git": provenance.git_state(), **extra}  # dirty: measured with uncommitted code in the tree


def run(root: str | Path, pairs: Sequence[tuple[str, int, str]], precisions: Sequence[str],
        make_runner: MakeRunner, *, set_names: Sequence[str] = bm.SETS, max_minutes: Optional[float] = None,
        macs: Optional[dict[tuple[str, int], float]] = None, results_dir: Path = RESULTS_DIR,
        summary: Path = SUMMARY, card: Optional[Path] = CARD,
        measure_only: Optional[set[tuple[str, int]]] = None,
        made_by: Optional[Callable[[str, int, str], dict]] = None) -> dict:
    """Measure every uncached cell of `pairs` ((model, scale, weight file name)) x `precisions` x
    sets, until done or `max_minutes`, cheapest first by `macs` (per output pixel) x the set's pixels
    x the precision's desktop slowness, so a time-limited run covers the most cells; write each cell,
    the summary JSON and the card as it goes. `measure_only`: (model, scale) pairs whose cells may
    be measured; the others' are read from the cache (pending if absent), so the summary and the
    card keep every model (`bench/zoo.py --models M --benchmarks ...`). `made_by(model, scale,
    precision)`: the fields a cached cell of a measurable pair must match (int8's chosen route: a
    route that changed re-measures the cells it changed), asked once per triple."""
    sets = bm.read_sets(root, set_names)
    started = time.time()
    measured, runners, errors = 0, {}, {}
    rows: dict[tuple, Optional[dict]] = {}

    def publish() -> dict:
        out = {"sets": [s.to_json() for s in sets], "command": COMMAND, "precisions": list(precisions),
               "models": [[m, s, w] for m, s, w in pairs],
               "rows": [r for r in rows.values() if r is not None],
               "pending": [list(k) for k, r in rows.items() if r is None],
               "errors": [[*k, msg] for k, msg in errors.items()],
               "provenance": provenance.collect()}
        atomic_write(summary, json.dumps(out, indent=1) + "\n")
        if card is not None:
            write_card(card, out)
        return out

    cells = []  # (key, weights) in measuring order; key = (model, scale, precision, set)
    for bset in sets:
        for scale in sorted({s for _, s, _ in pairs}):
            cells.append((("bicubic", scale, "bicubic", bset.name), None))
            cells += [((m, scale, p, bset.name), w) for m, s, w in pairs if s == scale for p in precisions]
    by_name = {s.name: s for s in sets}
    pixels = {s.name: float(sum(np.prod(Image.open(p).size) for p in s.files)) for s in sets}
    order = {k: i for i, (k, _) in enumerate(cells)}
    cells.sort(key=lambda c: (c[0][0] != "bicubic", _cost(c[0], pixels, macs), order[c[0]]))
    made_by_once = functools.cache(made_by) if made_by is not None else None

    def tag_of(key: tuple) -> Optional[Callable[[], dict]]:
        if made_by_once is None or key[0] == "bicubic" or (measure_only is not None and key[:2] not in measure_only):
            return None  # a pair not measured this run keeps its cells as they are
        return lambda: made_by_once(*key[:3])
    rows.update({k: cached(cell_path(*k, results_dir), w, by_name[k[3]].manifest_sha256, tag_of(k)) for k, w in cells})
    samples: dict[tuple[str, int], list] = {}
    for key, weights in cells:
        model, scale, precision, set_name = key
        if rows[key] is not None or (model != "bicubic" and max_minutes is not None
                                     and time.time() - started > max_minutes * 60) or (
                model != "bicubic" and measure_only is not None and (model, scale) not in measure_only):
            continue  # cached, or pending: the next run measures it
        bset = by_name[set_name]
        if (set_name, scale) not in samples:  # all kept: cells of one set come in cost order (< 1 GB)
            samples[(set_name, scale)] = bset.samples(scale)
        if model == "bicubic":
            rows[key] = _bicubic_row(bset, scale, samples[(set_name, scale)])
        else:
            if (model, scale, precision) not in runners:  # kept for the next set: quantize once
                runners[(model, scale, precision)] = _try(make_runner, (model, scale, precision), errors)
            if runners[(model, scale, precision)] is None:
                continue  # its model could not be made: pending, the error is in the summary
            runner, extra = runners[(model, scale, precision)]
            res = _try(lambda *_: evaluate(runner, samples[(set_name, scale)], model=model, dataset=set_name,
                                           progress=False), (model, scale, precision), errors)
            if res is None:
                runners[(model, scale, precision)] = None
                continue
            scores = [(i.name, i.psnr_y, i.ssim_y) for i in res.images]
            rows[key] = _row(model, scale, precision, bset, weights, scores, res.seconds, extra)
            measured += 1
            print(f"{set_name} {model} x{scale} {precision}: {rows[key]['psnr_y']:.2f} dB ({res.seconds:.0f} s)",
                  flush=True)
        _save(cell_path(*key, results_dir), rows[key])
        publish()
    out = publish()
    print(f"benchmarks: measured {measured} cells in {(time.time() - started) / 60:.1f} min; "
          f"{len(out['pending'])} pending")
    return out


#: How much slower than float a precision evaluates on a desktop CPU (int16 runs LiteRT's reference
#: kernels: DESIGN.md measured 44 ms vs 1.3 ms on a tiny model); only orders the cells.
SLOWNESS = {"float": 1.0, "int8": 1.0, "a16w8": 30.0}


def _cost(key: tuple, pixels: dict[str, float], macs: Optional[dict]) -> float:
    model, scale, precision, set_name = key
    if macs is None:
        return 0.0  # the given order
    return pixels[set_name] * macs.get((model, scale), 1.0) * SLOWNESS.get(precision, 1.0)


def _try(make_runner: Callable, key: tuple[str, int, str], errors: dict) -> Any:
    """make_runner(*key), or None with a one-line error kept for the summary and the card: one model
    that cannot be converted (e.g. a converter change in progress) must not stop the other cells."""
    try:
        return make_runner(*key)
    except Exception as e:  # noqa: BLE001 - recorded and shown, never swallowed silently
        errors[key] = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
        print(f"{key[0]} x{key[1]} {key[2]}: failed ({errors[key]}); its cells stay pending",
              flush=True)
        return None


def _save(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(row, indent=1) + "\n")


def _paper(model: str, scale: int, set_name: str, used: dict[str, int]) -> str:
    fig = PAPERS.get((model, scale), {}).get(set_name)
    if fig is None:
        return "–"
    used.setdefault(fig[1], len(used) + 1)
    return f"{fig[0]:.2f} [{used[fig[1]]}]"


def _gap(row: Optional[dict], model: str, scale: int, set_name: str) -> str:
    """Ours (float) minus the paper's figure, where both exist: how far a weight is from its paper."""
    fig = PAPERS.get((model, scale), {}).get(set_name)
    return "" if row is None or fig is None else f"{row['psnr_y'] - fig[0]:+.2f}"


def card_body(out: dict) -> str:
    """The card's benchmark section: one table per set, ours beside the papers', pending marked."""
    by = {(r["model"], r["scale"], r["precision"], r["set"]): r for r in out["rows"]}
    pending = {tuple(k) for k in out["pending"]}
    used: dict[str, int] = {}
    parts = []
    for s in out["sets"]:
        name = s["name"]
        note = "" if s["standard"] else f" (NOT the standard set: {s['n_images']} images)"
        lines = [f"**{name}**{note} — PSNR_Y (dB)", "",
                 "| model | scale | ours float | ours int8 | ours a16w8 | paper | ours float − paper |",
                 "|---|---|---|---|---|---|---|"]
        for scale in sorted({m[1] for m in out["models"]}):
            bic = by.get(("bicubic", scale, "bicubic", name))
            lines.append(f"| bicubic | x{scale} | {bic['psnr_y']:.2f} | | | {_paper('bicubic', scale, name, used)} | "
                         f"{_gap(bic, 'bicubic', scale, name)} |" if bic else f"| bicubic | x{scale} | pending | | | | |")
        for model, scale, _ in sorted(out["models"]):
            cells = []
            for p in ("float", "int8", "a16w8"):
                r = by.get((model, scale, p, name))
                cells.append(f"{r['psnr_y']:.2f}" if r else "pending" if (model, scale, p, name) in pending else "–")
            lines.append(f"| {model} | x{scale} | {' | '.join(cells)} | {_paper(model, scale, name, used)} | "
                         f"{_gap(by.get((model, scale, 'float', name)), model, scale, name)} |")
        parts.append("\n".join(lines))
    sources = "\n".join(f"[{i}] {SOURCES[k]}" for k, i in sorted(used.items(), key=lambda kv: kv[1]))
    manifests = ", ".join(f"{s['name']} {s['manifest_sha256'][:12]}" for s in out["sets"])
    n_pending = len(pending)
    a16 = [r for r in out["rows"] if r["precision"] == "a16w8"]
    n_integer = sum(r.get("interpreter") == "integer" for r in a16)
    ran = (f"a16w8 cells: {len(a16) - n_integer} run by LiteRT's own (single-threaded reference) int16 kernels, "
           f"{n_integer} by deploy/evaluation/integer_interpreter.py (the same arithmetic on all cores, bit-identical "
           "to LiteRT: tests/deploy/integer_interpreter_test.py; each cell's `interpreter` field says which). ")
    return (f"{BEGIN}\nThe standard test sets, read from a local folder (not shipped; models/DATA.md says where "
            "to get them and how to lay them out), with the standard protocol: HR cropped to a multiple of the "
            "scale, MATLAB bicubic LR, PSNR on Y (BT.601) with `scale` pixels shaved. Float: the Keras model on "
            "whole images; int8 (`convert.py --precision int8`'s route) and a16w8 (TFLiteConverter): fixed 64x64 "
            "input, tiled with the receptive radius as overlap, default calibration. SSIM and per-image values: "
            "bench/results/benchmarks/. Set manifests (sha256 of `sha256  file` lines): "
            f"{manifests}. Set14 reads about 0.09 dB above the literature for every model and bicubic alike: "
            "one of its images (`bridge`) is greyscale, which our metric scores as the Y of (g, g, g) and MATLAB "
            "scripts as raw grey (models/DATA.md). The weights are the shipped ones: the table above's training "
            "column says how each was trained. " + ran + "\n\n" + "\n\n".join(parts) + f"\n\nPaper figures (their training data and "
            f"schedules; figures as quoted in issue #32 and the earlier card, table numbers not re-read in "
            f"the PDFs):\n{sources}\n\n"
            + (f"{n_pending} cells are pending (not yet measured on this machine's 2 shared cores): "
               f"`{COMMAND}` measures them and keeps the measured ones (cached per cell).\n" if n_pending else "")
            + "".join(f"- {m} x{sc} {p}: the model could not be made or run in the last run ({msg})\n"
                      for m, sc, p, msg in out.get("errors", []))
            + f"Generated by `{COMMAND}`.\n{END}")


def write_card(card: Path, out: dict) -> None:
    if BEGIN not in card.read_text():
        card.write_text(card.read_text().rstrip("\n") + f"\n\n## Standard benchmarks\n\n{BEGIN}\n{END}\n")
    replace_marked(card, BEGIN, END, card_body(out))
