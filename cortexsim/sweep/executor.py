"""Run sweep points: local worker processes by default, a Dask cluster when given a scheduler.

A *task* is one run (point x seed): a dict with ``key``, ``point``, ``params``, ``raw`` (the
resolved experiment spec), ``seed``, ``scale``, ``metrics``, ``criteria`` (the spec's validated
criteria) and ``store`` (the point store's folder).  :func:`run_point` runs it in a worker,
writes its record to the store (atomically; with a hash of each metric's definition) and
returns the record; an exception inside the run is recorded (status ``"error"``) and the sweep
goes on.

Local workers are long-lived ``spawn``-ed processes (Brian2's standalone device is one per
process; a worker's first build of a network starts from the build cache, its later builds of
the same network from its own build folder); a worker that dies (``kill -9``) breaks the pool:
the pool is started again and the runs without a record are submitted again (finished runs are
in the store).  On Dask, the scheduler itself
re-runs the tasks of a lost worker; :class:`Preload` imports Brian2 on every worker before it
runs a task.  Workers must run one task at a time per process (``--nthreads 1``); a lock
enforces it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import check_number
from .store import PointStore, metric_defs

_LOCK = threading.Lock()
_BUILDS = {"builds": 0, "cache_hits": 0}
_OWN_BUILDS: set = set()
#: a pool broken by a dead worker is started again at most this many times per sweep
MAX_POOL_RESTARTS = 3


# --------------------------------------------------------------------------- worker side
def prepare_worker() -> None:
    """Import Brian2 and count this process's compiled-network builds: cache misses
    (``builds``) and builds served from the build cache (``cache_hits``)."""
    import brian2  # noqa: F401
    from ..circuit.network import Circuit

    if getattr(Circuit.__init__, "_counted", False):
        return
    original = Circuit.__init__

    def counted(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if getattr(self, "target", None) != "cpp_standalone":
            return
        # a rebuild of a network this process already built reuses its own build folder
        # (nothing is compiled again) and reports no cache hit: counted as a hit here
        compiled = not self.cache_hit and self.directory not in _OWN_BUILDS
        _OWN_BUILDS.add(self.directory)
        _BUILDS["builds" if compiled else "cache_hits"] += 1

    counted._counted = True
    Circuit.__init__ = counted


def _init_worker() -> None:
    """Initializer of a local worker process: SIGINT and SIGTERM end it quietly
    (:func:`cortexsim.errors.quiet_interrupt_in_worker`, set before Brian2 is imported, so Brian2
    never wraps a SIGINT handler it cannot call, such as the ``SIG_IGN`` a run started in the
    background of a script inherits), then :func:`prepare_worker`."""
    from ..errors import quiet_interrupt_in_worker

    quiet_interrupt_in_worker()
    prepare_worker()


def compute_metrics(res, metrics: list[dict]) -> dict:
    """The metrics of one run from its :class:`~cortexsim.results.Results`.

    Parameters
    ----------
    res : Results
        One run.
    metrics : list of dict
        The metrics to compute.

    Returns
    -------
    dict
        Metric name -> float.
    """
    from ..criteria import value_at

    out = {}
    for m in metrics:
        if m.get("criterion") is not None:
            crit = next(c for c in res.criteria if c["name"] == m["criterion"])
            obs = crit["observed"]
            out[m["name"]] = float(
                obs[m["population"]] if m.get("population") else next(iter(obs.values()))
            )
            continue
        ds = res.data
        v = value_at(ds, m["var"], m["condition"], m.get("readout"), m.get("population"))
        if m.get("minus_condition"):
            v -= value_at(ds, m["var"], m["minus_condition"], m.get("readout"), m.get("population"))
        out[m["name"]] = float(v)
    return out


def task_readouts(task: dict) -> dict:
    """The network read-outs that a task's metrics and criteria read
    (:func:`cortexsim.experiment.readouts.needed_readouts`; the fit judges every criterion of
    the task on the stored results, so all of them count).

    Parameters
    ----------
    task : dict
        From :func:`cortexsim.sweep.build_runs`.

    Returns
    -------
    dict
        Condition -> read-out label -> ``"rates"`` or ``"evoked"``.
    """
    from ..experiment.readouts import needed_readouts

    raw = task["raw"]
    labels = [ph.get("readout") for ph in raw.get("timeline", []) if ph.get("readout")]
    return needed_readouts(
        list(task.get("metrics") or []) + list(task.get("criteria") or []),
        list(raw.get("conditions", {})),
        labels,
    )


def readouts_cover(record: dict, task: dict) -> bool:
    """Whether a finished run's stored results hold every read-out that ``task`` reads now (a
    run that measured only what its metrics read then records them as ``readouts``).

    Parameters
    ----------
    record : dict
        The run's record.
    task : dict
        The task.

    Returns
    -------
    bool
    """
    from ..experiment.readouts import covers

    return "readouts" not in record or covers(record["readouts"], task_readouts(task))


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished child processes (the network binaries)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_point(task: dict) -> dict:
    """Run one task in this process (one at a time), write its record and return it.

    Parameters
    ----------
    task : dict
        From :func:`cortexsim.sweep.build_runs`.

    Returns
    -------
    dict
        The record: the task's key, code version, point, parameters, seed and scale, the
        host and process, ``status`` and (when ``"ok"``) ``metrics``.
    """
    from ..experiment import Experiment

    prepare_worker()
    with _LOCK:
        store = PointStore(task["store"])
        if store.reusable(task):
            return store.get(task["key"])
        b0 = dict(_BUILDS)
        t0, c0 = time.perf_counter(), _cpu_s()
        rec = {k: task.get(k) for k in ("key", "code", "point", "params", "seed", "scale")}
        rec.update(host=socket.gethostname(), pid=os.getpid())
        data = None
        try:
            from ..experiment.phase_states import enabled, shared_dir

            # only the read-outs that the metrics and criteria read (the others are NaN in the
            # stored results; the record says which were measured)
            readouts = task_readouts(task) if enabled() else None
            if readouts is not None:
                rec["readouts"] = readouts
            # every point of the store shares the history it has in common with the others
            # (states before the sessions, sessions, read-outs, rest references: phase_states)
            with shared_dir(Path(task["store"]) / ".shared"):
                res = Experiment.from_dict(task["raw"]).run(
                    seed=task["seed"], scale=task["scale"], progress=False, readouts=readouts
                )
            rec["metrics"] = compute_metrics(res, task["metrics"])
            rec["metric_defs"] = metric_defs(task["metrics"], task.get("criteria", []))
            rec["status"] = "ok"
            data = res.data
        except Exception as exc:  # recorded; the sweep goes on with the other points
            rec["metrics"] = {}
            rec["status"] = "error"
            rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["wall_s"] = time.perf_counter() - t0
        # this process's and its network binaries' CPU time: the run's cost whatever the load
        rec["cpu_s"] = _cpu_s() - c0
        rec["builds"] = _BUILDS["builds"] - b0["builds"]
        rec["cache_hits"] = _BUILDS["cache_hits"] - b0["cache_hits"]
        store.put(task["key"], rec, data)
        return rec


# --------------------------------------------------------------------------- Dask
try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # the dask extra is not installed: local workers only
    _WorkerPlugin = object


class Preload(_WorkerPlugin):
    """Dask worker plugin: Brian2 imported (and builds counted) before any task runs."""

    name = "cortexsim-preload"

    def setup(self, worker=None):
        """Prepare the worker (:func:`prepare_worker`).

        Parameters
        ----------
        worker : distributed.Worker, optional
            The Dask worker (unused).
        """
        prepare_worker()


def _dask_client(scheduler):
    try:
        from distributed import Client
    except ImportError:
        from ..errors import InputError

        raise InputError(
            "--scheduler", "needs dask.distributed: pip install 'cortexsim[dask]'"
        ) from None
    if isinstance(scheduler, str):
        return Client(scheduler), True
    return scheduler, False  # a Client (or anything with its interface)


def _run_dask(tasks: list[dict], scheduler) -> Iterator[dict]:
    from distributed import as_completed

    client, own = _dask_client(scheduler)
    try:
        client.register_plugin(Preload())
        futs = client.map(
            run_point, tasks, key=[f"cortexsim-run-{t['key']}" for t in tasks], pure=False
        )
        by_key = {f.key: t for f, t in zip(futs, tasks)}
        for f in as_completed(futs):
            try:
                yield f.result()
            except Exception as exc:  # e.g. KilledWorker: the task lost too many workers
                t = by_key[f.key]
                yield _lost(t, exc)
    finally:
        if own:
            client.close()


# --------------------------------------------------------------------------- local
def _run_local(tasks: list[dict], workers: int) -> Iterator[dict]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pending = list(tasks)
    restarts = 0
    while pending:
        ctx = mp.get_context("spawn")
        broken = False
        # long-lived workers: a worker's later runs rebuild their networks in its own build
        # folders (same object names, make finds them up to date: nothing recompiled), without
        # a new process, Brian2 import and cache copy per run
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as ex:
            futs = {ex.submit(run_point, t): t for t in pending}
            done = set()
            for f in as_completed(futs):
                t = futs[f]
                try:
                    rec = f.result()
                except BrokenProcessPool:
                    broken = True
                    break
                except Exception as exc:
                    rec = _lost(t, exc)
                done.add(t["key"])
                yield rec
        if not broken:
            return
        restarts += 1
        store = PointStore(tasks[0]["store"])
        pending = [t for t in pending if t["key"] not in done and not store.reusable(t)]
        if restarts > MAX_POOL_RESTARTS:
            for t in pending:
                yield _lost(t, RuntimeError("worker processes kept dying"))
            return


def _lost(task: dict, exc) -> dict:
    """Record of a run whose worker failed outside the simulation (written to the store)."""
    rec = {k: task[k] for k in ("key", "point", "params", "seed", "scale")}
    rec.update(
        status="error",
        error=f"{type(exc).__name__}: {exc}",
        metrics={},
        wall_s=0.0,
        builds=0,
        cache_hits=0,
    )
    PointStore(task["store"]).put(task["key"], rec)
    return rec


def execute(tasks: Iterable[dict], workers: int = 1, scheduler=None) -> Iterator[dict]:
    """Run ``tasks`` and yield their records as they finish (any order).

    Parameters
    ----------
    tasks : iterable of dict
        Runs as described in this module's docstring.
    workers : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``tcp://host:8786``) or a client: run the tasks there.
    """
    tasks = list(tasks)
    if not tasks:
        return iter(())
    if scheduler is not None:
        return _run_dask(tasks, scheduler)
    workers = check_number("--workers", workers, min=1, integer=True)
    return _run_local(tasks, min(workers, len(tasks)))
