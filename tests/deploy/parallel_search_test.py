"""Sensitivity drops measured in this process, on a local process pool (--workers 2) and on a
Dask LocalCluster started here (--cluster): identical per-image values, LiteRT and fast oracles."""
import time

import numpy as np
import pytest

import deploy
from deploy.errors import UserInputError
from deploy.policy_search import parallel, sensitivity, session
from deploy.policy_search.config import SearchConfig
from tests.conftest import run_tool

HW = (12, 12)


def _setup(hr_dir, oracle: str, plan=None, **kw) -> session.Setup:
    src = deploy.load_model("espcn", scale=3)
    return session.setup(src, SearchConfig(input_size=HW, calib_dir=str(hr_dir), calib_images=2,
                                           val_dir=str(hr_dir), val_images=2, oracle=oracle, **kw), plan=plan)


def _drops(s: session.Setup) -> tuple[sensitivity.Sensitivity, list[np.ndarray]]:
    """The drops (rest a16w8) and every measured candidate's per-image PSNRs, in order."""
    sens = sensitivity.measure(s.oracle, s.groups, s.macs, both_directions=False, progress=False,
                               evaluator=s.evaluator)
    wide = s.oracle.uniform("a16w8")
    cands = [wide, s.oracle.uniform("a8w8")] + [{**wide, **{l: "a8w8" for l in g.layers}} for g in s.groups]
    return sens, s.oracle.image_psnrs_many(cands)  # all cached by now: what was measured


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def pool():
    p = parallel.plan(workers=2)  # the workers import TensorFlow while the cluster starts
    yield p
    p.close()


@pytest.mark.slow
@pytest.mark.parametrize("oracle", ["litert", "fast"])
def test_workers_and_cluster_measure_what_one_process_measures(hr_dir, pool, cluster, oracle):
    seconds = {}
    t = time.perf_counter()
    one = _setup(hr_dir, oracle)  # the single-process run
    assert one.parallel.backend == "none" and one.evaluator is None and parallel.chunk_size(one.evaluator) == 1
    sens0, images0 = _drops(one)
    seconds["none"] = time.perf_counter() - t
    assert len(images0) == len(sens0.groups) + 2

    t = time.perf_counter()  # --workers 2: the same oracle rebuilt in the pool's processes
    local = _setup(hr_dir, oracle, plan=pool)  # the pool passed in: an Evaluator, the oracle not patched
    assert parallel.chunk_size(local.evaluator) == 2 and "measure_uncached" not in vars(local.oracle)
    runs = {"local": _drops(local)}
    local.close()
    assert pool.pool is not None  # the caller's pool stays open for the caller
    seconds["local"] = time.perf_counter() - t

    t = time.perf_counter()  # --cluster: through the session, as the CLI and deploy.search do
    remote = _setup(hr_dir, oracle, cluster=cluster)
    try:
        assert session.provenance(remote)["parallel"] == {"backend": "dask", "workers": 2}
        runs["dask"] = _drops(remote)
    finally:
        remote.close()
    seconds["dask"] = time.perf_counter() - t
    for how, (sens, images) in runs.items():
        assert sens.drop_db == sens0.drop_db and sens.baseline == sens0.baseline, how
        assert all(np.array_equal(a, b) for a, b in zip(images, images0)), how
    print({how: round(v, 1) for how, v in seconds.items()})


def test_bad_requests_are_one_line_before_any_work(tmp_path):
    with pytest.raises(UserInputError, match="not both"):
        parallel.plan(2, "tcp://127.0.0.1:8786")
    with pytest.raises(UserInputError, match=">= 0"):
        parallel.plan(-1)
    with pytest.raises(UserInputError, match="no Dask scheduler reachable"):
        parallel.plan(1, "tcp://127.0.0.1:1")  # nothing listens on port 1
    assert parallel.plan(1).to_json() == {"backend": "none", "workers": 1}
    r = run_tool("search_policy", "--model", "espcn", "--sensitivity", "--workers", "2", "--cluster", "x",
                 "--out", str(tmp_path / "s.json"))
    assert r.returncode == 2 and "not both" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
