"""Candidate models measured in other processes: every core here (`--workers`) or a Dask cluster
(`--cluster ADDRESS`).

Why: the sensitivity pass measures 2·groups + 2 candidates that do not depend on each other, and
one candidate is mostly single-threaded Python (the quantizer's export) plus LiteRT's int16
reference kernels, so one process leaves cores idle, and a big model outgrows one machine.

How: `plan(workers, cluster)` checks the request (and reaches the scheduler) before any model
work; `evaluator(oracle, plan)` makes the `Evaluator` that `oracle.image_psnrs_many` is handed, so
its cache stays where it is and nothing of the oracle is replaced. Each worker process builds its own oracle once from
an `OracleSpec` (the prepared float TFLite without its Keras model, the calibration's min/max,
validation set, I/O convention, model, scale, oracle class) and runs the same code on the same
bytes as this process, so the values are identical to a single-process run (tested).

Why Dask and not Ray: pure Python wheels (~5 MB with its dependencies), a `LocalCluster` starts
in a test in seconds, and a user needs only `dask scheduler` + `dask worker ADDRESS` on machines
that have this package; Ray brings a large native runtime and its own object store for a job
that sends one spec per worker and gets back a few floats per task.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
import socket
import threading
import uuid
import weakref
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Optional, Sequence

import numpy as np

from deploy.convert import per_layer as hybrid
from deploy.errors import UserInputError
from deploy.evaluation.runners import available_cores
from deploy.policy_search.oracle import Assignment, QualityOracle

#: seconds to reach a Dask scheduler, and to wait for its first worker
CONNECT_S = 10
WORKERS_S = 30


@dataclasses.dataclass(frozen=True)
class OracleSpec:
    """Everything a worker needs to build the same oracle (picklable; no Keras model)."""
    token: str  # one per attached oracle: workers cache the oracle they built under it
    cls: type
    prep: hybrid.Prepared
    kwargs: dict

    @classmethod
    def of(cls, oracle: QualityOracle) -> "OracleSpec":
        kw = {"model": oracle.model, "scale": oracle.scale, "calib": oracle.calib, "val": oracle.val,
              "convention": oracle.convention, "budget_on": oracle.budget_on, "reference": oracle.reference}
        if "qsv" in inspect.signature(type(oracle).__init__).parameters:
            kw["qsv"] = oracle.qsv  # calibrated once, here (an oracle without the argument recalibrates)
            kw["qsv_narrow"] = oracle.qsv_narrow  # search PTQ's int8 ranges (None: plain min/max)
            kw["ptq"] = oracle.ptq
        kw.update(getattr(oracle, "spec_extra", {}))  # e.g. an emulated judge's SoC and cache
        return cls(uuid.uuid4().hex, type(oracle), dataclasses.replace(oracle.prep, model=None), kw)

    def build(self) -> QualityOracle:
        return self.cls(self.prep, **self.kwargs)


@dataclasses.dataclass
class Plan:
    """How candidates run: "none" (this process), "local" (a process pool) or "dask"."""
    backend: str
    workers: int
    client: Any = None  # distributed.Client with "dask"
    address: Optional[str] = None
    pool: Optional[ProcessPoolExecutor] = None  # with "local"; shared by every attached oracle

    def to_json(self) -> dict:
        return {"backend": self.backend, "workers": self.workers}

    def start(self) -> "Plan":
        """Local: spawn the workers now and let them import TensorFlow while this process
        prepares and calibrates the model."""
        if self.backend == "local" and self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
            for _ in range(self.workers):
                self.pool.submit(_warm)
        return self

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        if self.client is not None:
            self.client.close()
            self.client = None


def plan(workers: int = 1, cluster: Optional[str] = None) -> Plan:
    """`workers`: processes on this machine (0 = one per core, 1 = this process only);
    `cluster`: a Dask scheduler address (e.g. tcp://10.0.0.5:8786). Not both. Connects now, so a
    wrong address fails before minutes of preparation."""
    cluster = check(workers, cluster)
    if cluster is not None:
        return _connect(cluster)
    n = available_cores() if workers == 0 else int(workers)
    return Plan("none", 1) if n == 1 else Plan("local", n).start()


def check(workers: int = 1, cluster: Optional[str] = None) -> Optional[str]:
    """The request's values alone (no connection; SearchConfig's rules); returns the address or None."""
    from deploy.policy_search.config import SearchConfig
    return SearchConfig(workers=workers, cluster=cluster).cluster


def _connect(address: str) -> Plan:
    try:
        from distributed import Client
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError:
        raise UserInputError("--cluster needs Dask distributed: pip install 'srdeploy[cluster]' "
                             "(here and on every worker machine)") from None
    try:
        scheme, loc = parse_address(address if "://" in address else f"tcp://{address}")
        host, port = parse_host_port(loc) if scheme in ("tcp", "tls") else (None, None)
    except ValueError as e:
        raise UserInputError(f"--cluster '{address}' is not a Dask scheduler address ({e}); "
                             "e.g. tcp://10.0.0.5:8786") from None
    if host is not None:  # fail in one line, at once (Client retries until its timeout)
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
        except OSError as e:
            raise UserInputError(f"--cluster {address}: no Dask scheduler reachable there ({e.strerror or e}); "
                                 "start one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
    try:
        client = Client(address, timeout=f"{CONNECT_S}s", set_as_default=False)
    except (OSError, ValueError) as e:
        raise UserInputError(f"--cluster {address}: cannot connect to a Dask scheduler there ({e})") from None
    try:
        client.wait_for_workers(1, timeout=WORKERS_S)
        client.run(_worker_ready)  # every worker can import this package
    except (TimeoutError, OSError) as e:
        client.close()
        raise UserInputError(f"--cluster {address}: no Dask worker joined within {WORKERS_S} s ({e}); "
                             f"start them with `dask worker {address} --nthreads 1`") from None
    except ImportError as e:
        client.close()
        raise UserInputError(f"--cluster {address}: a Dask worker cannot import srdeploy ({e}); install "
                             "the same srdeploy on every worker machine") from None
    return Plan("dask", _dask_slots(client), client, address)


def _dask_slots(client) -> int:
    return max(1, sum(client.nthreads().values()))


def _worker_ready() -> bool:
    return True


def evaluator(oracle: QualityOracle, p: Plan) -> Optional["Evaluator"]:
    """Where `oracle`'s independent candidates are measured under `p`: an `Evaluator` handed to
    `oracle.image_psnrs_many` (None for "none": this process). The oracle itself is not changed."""
    if p.backend == "none":
        return None
    ev = Evaluator(OracleSpec.of(oracle), p)
    weakref.finalize(ev, ev.close)
    return ev


def chunk_size(ev: Optional["Evaluator"]) -> int:
    """How many independent candidates to hand `image_psnrs_many` at once: one per worker."""
    return ev.workers if ev is not None else 1


class Evaluator:
    """One oracle's candidates on a process pool (started at first use) or a Dask cluster."""

    def __init__(self, spec: OracleSpec, p: Plan):
        self.spec, self.plan = spec, p
        self._remote_spec = None  # the spec broadcast to every Dask worker, once
        self._pickled: Optional[bytes] = None  # the spec for local workers (built once there)

    @property
    def workers(self) -> int:
        return _dask_slots(self.plan.client) if self.plan.backend == "dask" and self.plan.client else self.plan.workers

    def measure(self, assignments: Sequence[Assignment]) -> list[np.ndarray]:
        """Per-image PSNRs of each assignment, in order (one task per assignment)."""
        items = [dict(a) for a in assignments]
        if not items:
            return []
        if self.plan.backend == "dask":
            client = self.plan.client
            if self._remote_spec is None:
                self._remote_spec = client.scatter(self.spec, broadcast=True, hash=False)
            futures = [client.submit(_measure_remote, self._remote_spec, a, pure=False) for a in items]
            return [np.asarray(v) for v in client.gather(futures)]
        if self._pickled is None:
            self._pickled = pickle.dumps(self.spec, protocol=pickle.HIGHEST_PROTOCOL)
        pool = self.plan.start().pool
        return [np.asarray(v) for v in pool.map(_measure_local, [self.spec.token] * len(items),
                                                [self._pickled] * len(items), items)]

    def close(self) -> None:
        """Forget the spec on the cluster (a local pool belongs to the plan: `Plan.close`)."""
        if self._remote_spec is not None:
            try:
                self._remote_spec.release()
            except Exception:  # noqa: BLE001 - the client may be closed already
                pass
            self._remote_spec = None


# -- worker side ---------------------------------------------------------------------------------
_BUILT: dict[tuple[str, int], QualityOracle] = {}  # (spec token, thread) -> oracle, in a worker
_KEEP = 4  # oracles a worker thread keeps (one per attached oracle of recent runs)


def _oracle(token: str, spec) -> QualityOracle:
    """One oracle per spec and worker thread (oracles are not shared by threads), built at its
    first task; `spec` is an OracleSpec or its pickle (unpickled only then)."""
    key = (token, threading.get_ident())
    if key not in _BUILT:
        while len(_BUILT) >= _KEEP:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = (pickle.loads(spec) if isinstance(spec, bytes) else spec).build()
    return _BUILT[key]


def _warm() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import deploy.policy_search.fast_oracle  # noqa: F401 - TensorFlow, LiteRT, the quantizer


def _measure_local(token: str, spec: bytes, a: dict) -> np.ndarray:
    return _oracle(token, spec).measure_uncached([a])[0]


def _measure_remote(spec: OracleSpec, a: dict) -> np.ndarray:
    return _oracle(spec.token, spec).measure_uncached([a])[0]
