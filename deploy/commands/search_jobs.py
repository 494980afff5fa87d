"""`tools/search_policy.py`'s glue: outputs checked before any work, the library's workflow
called (deploy/policy_search: api.search_with_setup, dual_with_setup, workflows), its frozen
result written whole (JSON + PNG) or not at all, and the tables printed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from deploy._files import atomic_write, check_outputs
from deploy.provenance import with_provenance
from deploy.policy_search import workflows
from deploy.policy_search.api import BudgetImpossible, dual_with_setup, search_with_setup
from deploy.policy_search.config import SearchConfig  # noqa: F401 - tools/search_policy.py
from deploy.policy_search.session import DEFAULT_PROFILE, Setup, read_sensitivity_file, setup  # noqa: F401
from deploy.policy_search.space import NARROW, WIDE



def parse_budget(text: str) -> float | str:
    """--budget_db's text as the number SearchConfig takes. SearchConfig alone checks it: a text
    that is no number is passed on as it is and refused there (`--budget_db must be a number,
    not str 'abc'`, worded by cli.wording from the error's `option`)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _check_out(out: Path, overwrite: bool, *extra: Path, inputs: Sequence[Any] = ()) -> None:
    check_outputs((out, *extra), inputs, overwrite=overwrite)


def outputs_of(mode: str, out: str | Path) -> tuple[Path, ...]:
    """Every file a `mode` run (sensitivity, pareto, search) writes for `--out`."""
    out = Path(out)
    return (out, search_report_path(out) if mode == "search" else out.with_suffix(".png"))


def check_before_setup(mode: str, out: str | Path, *, overwrite: bool = False,
                       sens_file: Optional[str | Path] = None, inputs: Sequence[Any] = ()) -> None:
    """The checks a user should not wait minutes of calibration for: the output rule on every
    file the run writes (every input, data folders included, protected) and the sensitivity
    file's kind."""
    check_outputs(outputs_of(mode, out), (*inputs, sens_file), overwrite=overwrite)
    if sens_file is not None:
        read_sensitivity_file(sens_file)


def run_sensitivity(s: Setup, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    """`workflows.sensitivity_with_setup`, written at `out` (+ .png); measurements kept in
    `s.config.sens_cache` while it runs (the CLI sets it to `sens_cache_path(out)`)."""
    out = Path(out)
    _check_out(out, overwrite, out.with_suffix(".png"))
    r = workflows.sensitivity_with_setup(s, progress=progress)
    r.save(out, overwrite=overwrite)
    return {"report": dict(r.report), "table": r.table(), "png": str(out.with_suffix(".png"))}


def sens_cache_path(out: str | Path) -> Path:
    """Measured sensitivity PSNRs of an interrupted run of this command (removed on success)."""
    out = Path(out)
    return out.with_name(f".{out.name}.measured.jsonl")


def search_report_path(out: Path) -> Path:
    return out.with_name(out.stem + ".search.json")


def run_search(s: Setup, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Writes the policy at `out` (tools/convert.py --policy takes it unchanged) and the search
    record beside it; raises BudgetImpossible after writing the best found when none meets it."""
    out = Path(out)
    c = s.config
    _check_out(out, overwrite, search_report_path(out), inputs=(c.sensitivity_file,))
    outcome = search_with_setup(s, progress=progress)
    policy, report, result = outcome.policy, dict(outcome.report), outcome
    atomic_write(out, policy.dumps(), overwrite=overwrite)
    report = with_provenance(report)  # its calibration and validation entries
    atomic_write(search_report_path(out), json.dumps(report, indent=2) + "\n")
    if s.sens_cache is not None:
        s.sens_cache.unlink(missing_ok=True)
    if not result.feasible:
        raise BudgetImpossible(
            f"budget impossible: even all-a16w8 reaches {report['psnr_y']:.3f} dB < target "
            f"{report['target_psnr_y']:.3f} dB ({c.reference} {report['reference_psnr_y']:.3f} − {c.budget_db} dB); "
            f"wrote the best found (all a16w8) to {out}", file=out, value=c.budget_db)
    return report


def run_dual(s: Setup, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    """`--latency_budget_ms`: the best PSNR_Y within the budget; policy at `out`, record beside it."""
    out = Path(out)
    _check_out(out, overwrite, search_report_path(out), inputs=(s.config.sensitivity_file,))
    outcome = dual_with_setup(s, progress=progress)
    atomic_write(out, outcome.policy.dumps(), overwrite=overwrite)
    report = with_provenance(dict(outcome.report))
    atomic_write(search_report_path(out), json.dumps(report, indent=2) + "\n")
    if s.sens_cache is not None:
        s.sens_cache.unlink(missing_ok=True)
    return report


def _judge_name(r: dict) -> str:
    """Who measured a report's answer, as the tables name it: LiteRT or e.g. "SM8650 NPU"."""
    return "LiteRT" if str(r.get("numerics", "CPU")).startswith("CPU") else r["numerics"].split(" (")[0]


def dual_table(r: dict) -> str:
    judge = _judge_name(r)
    rows = [f"{'':<26}{'PSNR_Y val':>11}{'pred. ms':>10}",
            f"{'reference ' + r['reference']:<26}{r['reference_psnr_y']:>11.3f}{r['predicted_ms_uniform'][WIDE]:>10.3f}",
            f"{'latency budget':<26}{'':>11}{r['latency_budget_ms']:>10.3f}",
            f"{'uniform a8w8':<26}{'':>11}{r['predicted_ms_uniform'][NARROW]:>10.3f}",
            f"{'best within the budget':<26}{r['psnr_y']:>11.3f}{r['predicted_ms']:>10.3f}",
            f"a16w8 groups {r['a16w8_fraction']:.0%} of {r['groups']}; {r['loss_db']:.3f} dB below {r['reference']}; "
            f"{r['evaluations'] + r['sensitivity_evaluations']} candidate models measured in {r['seconds']:.0f} s "
            f"+ sensitivity ({r['device_profile']})",
            f"the best {len(r['judged'])} candidates judged on {judge}: " + "; ".join(
                f"{j['judge_psnr_y']:.3f} dB at {j['predicted_ms']:.3f} ms" for j in r["judged"]),
            f"PSNRs above: {r.get('numerics', 'CPU (LiteRT kernels)')}"]
    if r.get("npu"):
        rows += npu_lines(r["npu"])
        if not r["within_latency_budget_placed"]:
            rows.append(f"  warning: on the real placement the policy is predicted at {r['predicted_ms']:.3f} ms, "
                        f"over the {r['latency_budget_ms']:g} ms budget")
    return "\n".join(rows)


def run_pareto(s: Setup, out: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    """`workflows.pareto_with_setup`, written at `out` (+ .png)."""
    out = Path(out)
    _check_out(out, overwrite, out.with_suffix(".png"), inputs=(s.config.sensitivity_file,))
    front = workflows.pareto_with_setup(s, progress=progress)
    front.save(out, overwrite=overwrite)
    return dict(front.report)


def search_table(r: dict) -> str:
    judge = _judge_name(r)
    rows = [f"{'':<26}{'PSNR_Y val':>11}{'pred. ms':>10}",
            f"{'reference ' + r['reference']:<26}{r['reference_psnr_y']:>11.3f}{'':>10}",
            f"{'target':<26}{r['target_psnr_y']:>11.3f}{'':>10}",
            f"{'uniform a8w8':<26}{'':>11}{r['predicted_ms_uniform'][NARROW]:>10.3f}",
            f"{'uniform a16w8':<26}{'':>11}{r['predicted_ms_uniform'][WIDE]:>10.3f}",
            f"{'searched hybrid':<26}{r['psnr_y']:>11.3f}{r['predicted_ms']:>10.3f}",
            f"a16w8 groups {r['a16w8_fraction']:.0%} of {r['groups']}; x{r['ratio_to_int8']:.2f} int8 latency, "
            f"x{r['ratio_to_a16w8']:.2f} a16w8; {r['evaluations'] + r['sensitivity_evaluations']} candidate "
            f"models measured in {r['seconds']:.0f} s + sensitivity ({r['device_profile']})"]
    if r.get("skipped_below_min_gain"):
        rows.append(f"{r['skipped_below_min_gain']} candidate policies not measured: each would save under "
                    f"{r['min_gain']:.1%} of predicted latency")
    if r.get("worst_image"):
        w = r["worst_image"]
        rows.append(f"worst validation image {w['image']}: {w['loss_db']:.3f} dB below {r['reference']} "
                    f"(mean {w['mean_loss_db']:.3f} dB; budget on {r.get('budget_on', 'mean')}, {judge})")
    if r.get("litert_check"):
        c = r["litert_check"]
        rows.append(f"oracle fast, answer confirmed on {judge}: " + "; ".join(
            f"{a['model']} fast {a['fast_psnr_y']:.3f} vs {judge} {a['litert_psnr_y']:.3f} dB" for a in c["agreement"])
            + (f" -- {c['fallback']}" if c.get("fallback") else ""))
    rows.append(f"PSNRs above: {r.get('numerics', 'CPU (LiteRT kernels)')}")
    if r.get("npu"):
        rows += npu_lines(r["npu"])
    return "\n".join(rows)


def npu_lines(n: dict) -> list[str]:
    """The chosen policy's real NPU placement, under the search table."""
    pl = n["placement"]
    rows = [f"{n['target']} placement of the searched hybrid: {pl['ops_on_npu']}/{pl['ops_total']} ops on the NPU, "
            f"{pl['partitions']} partition(s), {pl['npu_cpu_switches']} NPU<->CPU switch(es)"
            + (" (whole)" if pl["whole"] else "")]
    rows += [f"  CPU op #{c['index']} {c['op']} (layer {c['layer'] or '-'}): {c['reason']}" for c in pl["cpu_ops"]]
    if n["matches_linear_model"]:
        rows.append(f"  placement as the search's linear model assumed; predicted {n['predicted_ms_placed']:.3f} ms")
    else:
        rows.append(f"  placement DIFFERS from the search's linear model ({'; '.join(n['differences'])}): "
                    f"predicted {n['predicted_ms_placed']:.3f} ms on the real placement "
                    f"(linear model {n['predicted_ms_linear']:.3f} ms)")
    rows.append(f"  note: {n['note']}")
    return rows


def npu_cache_dir(out: str | Path) -> Path:
    """Compile reports of an --npu run are cached beside its output, by model sha256."""
    out = Path(out)
    return out.with_name(out.stem + ".npu_cache")
