"""What the precision search decides and the exact model it optimises (pure: no TFLite, no I/O).

Decision units ("groups"): a layer without a kernel (no conv/dense) that reads one tensor, produced by a layer
with no other reader (an activation, a pixel shuffle, the output clip), runs at its producer's
precision. Splitting such a pair could only add a requantize op, so tying them loses no good
policy and shrinks the space (FSRCNN: 15 layers, 8 groups). `fuse=False` keeps every layer free.

The MILP (scipy.optimize.milp, HiGHS): binary x_g = 1 when group g runs a16w8, else a8w8;
continuous y_e >= |x_u - x_v| for each edge between groups (a requantize op is paid);
minimise  sum_g c8_g + x_g (c16_g - c8_g) + sum_e w_e y_e   (the cost model's predict_ms)
subject to sum_g (1 - x_g) drop_g <= loss budget          (additive PSNR-loss model)
and no-good cuts excluding assignments already found to miss the budget.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

WIDE, NARROW = "a16w8", "a8w8"


@dataclasses.dataclass(frozen=True)
class Group:
    layers: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.layers)


def _inbound(layer) -> list[str]:
    names = []
    for node in layer._inbound_nodes:  # noqa: SLF001 - tf_keras exposes no public graph walk
        inbound = node.inbound_layers
        names += [l.name for l in (inbound if isinstance(inbound, (list, tuple)) else [inbound])]
    return names


def make_groups(model, layers: Sequence[str], fuse: bool = True) -> list[Group]:
    """Decision units in graph order (see module docstring). `model`: a tf_keras model or a
    `LayerGraph` (`Prepared.graph`: Keras 3 layers or float-TFLite op groups)."""
    if not fuse:
        return [Group((n,)) for n in layers]
    graph = model if hasattr(model, "units") else None
    inbound = graph.inbound if graph is not None else {l.name: _inbound(l) for l in model.layers}
    readers: dict[str, int] = {}
    for srcs in inbound.values():
        for s in srcs:
            readers[s] = readers.get(s, 0) + 1
    owner: dict[str, int] = {}
    groups: list[list[str]] = []
    for n in layers:
        srcs = inbound.get(n, [])
        no_kernel = (not graph.unit(n).has_kernel) if graph is not None else \
            getattr(model.get_layer(n), "kernel", None) is None
        if no_kernel and len(srcs) == 1 and srcs[0] in owner and readers.get(srcs[0], 0) == 1:
            owner[n] = owner[srcs[0]]
            groups[owner[n]].append(n)
        else:
            owner[n] = len(groups)
            groups.append([n])
    return [Group(tuple(g)) for g in groups]


@dataclasses.dataclass(frozen=True)
class Problem:
    """Costs per group and precision, requantize edges, and the additive loss model."""
    groups: tuple[Group, ...]
    cost_ms: tuple[tuple[float, float], ...]  # per group: (a8w8, a16w8)
    edges: tuple[tuple[int, int, float], ...]  # (group u, group v, ms paid when they differ)
    fixed_edges: tuple[tuple[int, str, float], ...]  # (group, pseudo-node precision, ms if differ)
    drop_db: tuple[float, ...]  # predicted PSNR loss of running the group a8w8 (>= 0)
    base_ms: float = 0.0  # everything that does not depend on the assignment

    @property
    def n(self) -> int:
        return len(self.groups)

    def assignment(self, x: Sequence[int]) -> dict[str, str]:
        return {l: (WIDE if xi else NARROW) for g, xi in zip(self.groups, x) for l in g.layers}

    def vector(self, a: Mapping[str, str]) -> tuple[int, ...]:
        return tuple(int(a[g.layers[0]] == WIDE) for g in self.groups)

    def latency_ms(self, x: Sequence[int]) -> float:
        t = self.base_ms + sum(c[xi] for c, xi in zip(self.cost_ms, x))
        t += sum(w for u, v, w in self.edges if x[u] != x[v])
        t += sum(w for g, p, w in self.fixed_edges if (WIDE if x[g] else NARROW) != p)
        return t

    def predicted_loss(self, x: Sequence[int]) -> float:
        return sum(d for d, xi in zip(self.drop_db, x) if not xi)


def solve(problem: Problem, loss_budget: float, *, exclude: Iterable[Sequence[int]] = (),
          fixed: Optional[Mapping[int, int]] = None) -> Optional[tuple[int, ...]]:
    """Minimum-latency assignment within the loss budget; None when none exists."""
    n, m = problem.n, len(problem.edges)
    c = np.zeros(n + m)
    for g, (c8, c16) in enumerate(problem.cost_ms):
        c[g] += c16 - c8
    for g, p, w in problem.fixed_edges:  # differs when x_g=1 and p!=WIDE, or x_g=0 and p!=NARROW
        c[g] += w * ((p != WIDE) - (p != NARROW))
    for k, (_, _, w) in enumerate(problem.edges):
        c[n + k] = w
    rows, lo, hi = [], [], []
    for k, (u, v, _) in enumerate(problem.edges):
        for a, b in ((u, v), (v, u)):  # y_k - x_a + x_b >= 0
            r = np.zeros(n + m)
            r[n + k], r[a], r[b] = 1, -1, 1
            rows.append(r), lo.append(0), hi.append(np.inf)
    # sum (1 - x_g) d_g <= B   <=>   -sum d_g x_g <= B - sum d_g
    r = np.zeros(n + m)
    r[:n] = -np.asarray(problem.drop_db)
    rows.append(r), lo.append(-np.inf), hi.append(loss_budget - sum(problem.drop_db))
    for x in exclude:  # no-good cut: sum_{x_i=1} (1 - x) + sum_{x_i=0} x >= 1
        r = np.zeros(n + m)
        r[:n] = [(-1 if xi else 1) for xi in x]
        rows.append(r), lo.append(1 - sum(x)), hi.append(np.inf)
    lb, ub = np.zeros(n + m), np.ones(n + m)
    for g, v in (fixed or {}).items():
        lb[g] = ub[g] = v
    integrality = np.r_[np.ones(n), np.zeros(m)]
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integrality,
               bounds=Bounds(lb, ub))
    if res.status != 0 or res.x is None:
        return None
    return tuple(int(round(v)) for v in res.x[:n])


def solve_dual(problem: Problem, latency_budget_ms: float, *, exclude: Iterable[Sequence[int]] = ()
               ) -> Optional[tuple[int, ...]]:
    """The dual: least predicted loss (additive model) with predicted latency <= the budget,
    ties broken toward lower latency; None when even all-a8w8 is over the budget.

    Same variables as `solve`; objective  min sum_g (1 - x_g) d_g  (+ a latency tie-break far
    below any drop difference), subject to  latency_ms(x) <= latency_budget_ms."""
    n, m = problem.n, len(problem.edges)
    lat = np.zeros(n + m)  # latency_ms(x) = const + lat @ [x, y]
    const = problem.base_ms + sum(c8 for c8, _ in problem.cost_ms)
    for g, (c8, c16) in enumerate(problem.cost_ms):
        lat[g] += c16 - c8
    for g, p, w in problem.fixed_edges:
        lat[g] += w * ((p != WIDE) - (p != NARROW))
        const += w * (p != NARROW)
    for k, (_, _, w) in enumerate(problem.edges):
        lat[n + k] = w
    drops = np.asarray(problem.drop_db, np.float64)
    scale = max(1e-12, float(np.abs(lat).sum()))
    tie = 1e-6 * (float(drops[drops > 0].min()) if np.any(drops > 0) else 1.0) / scale
    c = np.zeros(n + m)
    c[:n] = -drops
    c += tie * lat
    rows, lo, hi = [], [], []
    for k, (u, v, _) in enumerate(problem.edges):
        for a, b in ((u, v), (v, u)):
            r = np.zeros(n + m)
            r[n + k], r[a], r[b] = 1, -1, 1
            rows.append(r), lo.append(0), hi.append(np.inf)
    rows.append(lat), lo.append(-np.inf), hi.append(latency_budget_ms - const)
    for x in exclude:
        r = np.zeros(n + m)
        r[:n] = [(-1 if xi else 1) for xi in x]
        rows.append(r), lo.append(1 - sum(x)), hi.append(np.inf)
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi),
               integrality=np.r_[np.ones(n), np.zeros(m)], bounds=Bounds(np.zeros(n + m), np.ones(n + m)))
    if res.status != 0 or res.x is None:
        return None
    x = tuple(int(round(v)) for v in res.x[:n])
    return x if problem.latency_ms(x) <= latency_budget_ms + 1e-9 else None
