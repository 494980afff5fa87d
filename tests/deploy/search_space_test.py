"""The MILP is exact for its own model: it matches brute force over every assignment."""
import itertools

import numpy as np
import pytest

from deploy.policy_search.pareto import non_dominated
from deploy.policy_search.space import Group, Problem, make_groups, solve
from models._keras import keras


def _random_problem(seed: int, n: int = 7) -> Problem:
    rng = np.random.default_rng(seed)
    c8 = rng.uniform(0.1, 1.0, n)
    cost = tuple((float(a), float(a * rng.uniform(1.2, 4.0))) for a in c8)
    edges = tuple((i, i + 1, float(rng.uniform(0.0, 0.3))) for i in range(n - 1)) + ((0, n - 1, 0.2),)
    fixed = ((0, "a16w8", 0.15), (n - 1, "float", 0.1))
    return Problem(tuple(Group((f"l{i}",)) for i in range(n)), cost, edges, fixed,
                   tuple(float(d) for d in rng.uniform(0.0, 0.1, n)), base_ms=1.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("budget", [0.0, 0.05, 0.15, 1.0])
def test_milp_matches_brute_force(seed, budget):
    prob = _random_problem(seed)
    feasible = [x for x in itertools.product((0, 1), repeat=prob.n) if prob.predicted_loss(x) <= budget + 1e-9]
    best = min(prob.latency_ms(x) for x in feasible)
    x = solve(prob, budget)
    assert prob.predicted_loss(x) <= budget + 1e-9
    assert prob.latency_ms(x) == pytest.approx(best, abs=1e-7)


def test_no_good_cuts_exclude_assignments():
    prob = _random_problem(0)
    first = solve(prob, 1.0)
    second = solve(prob, 1.0, exclude=[first])
    assert second != first and prob.latency_ms(second) >= prob.latency_ms(first) - 1e-9
    assert solve(prob, -1.0) is None  # negative loss budget: nothing fits


def test_groups_tie_activations_and_shuffle_to_their_layer():
    x_in = keras.Input((8, 8, 3), batch_size=1)
    a = keras.layers.Conv2D(4, 3, padding="same", name="c1")(x_in)
    a = keras.layers.PReLU(shared_axes=[1, 2], name="c1_act")(a)
    b = keras.layers.Conv2D(4, 3, padding="same", name="c2")(a)
    s = keras.layers.Add(name="skip")([a, b])  # c1_act has two readers: skip is its own group
    y = keras.layers.Conv2D(12, 3, padding="same", name="tail")(s)
    y = keras.layers.Reshape((8, 8, 12), name="shuffle")(y)
    y = keras.layers.ReLU(name="clip")(y)
    m = keras.Model(x_in, y)
    names = [l.name for l in m.layers[1:]]
    assert [g.layers for g in make_groups(m, names)] == [
        ("c1", "c1_act"), ("c2",), ("skip",), ("tail", "shuffle", "clip")]
    assert len(make_groups(m, names, fuse=False)) == len(names)


def test_front_is_non_dominated():
    pts = [(1.0, 30.0), (2.0, 31.0), (1.5, 29.0), (3.0, 31.0), (0.5, 28.0)]
    assert non_dominated(pts) == [True, True, False, False, True]
