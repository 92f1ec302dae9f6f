"""Parameter sweeps on the experiment runner, and calibration (:mod:`.fit`) and sensitivity
analysis (:mod:`.sensitivity`) on top of them.

``cortexsim sweep SPEC`` (see :mod:`.spec` for the spec format) runs every point of the design
with every replicate seed, on local worker processes (``--workers N``) or a Dask cluster
(``--scheduler ADDRESS``).  Every point's spec is built and validated before anything runs.
Finished runs are kept in a store keyed by resolved spec, seed, scale and code version
(:mod:`.store`): a re-run skips them, a failing run is recorded with its error and the others
go on.  Output in ``--out`` (default ``out/<sweep name>``):

* ``sweep.nc``: xarray Dataset, one variable per metric; a grid's parameters are dimensions,
  samples and lists have a ``point`` dimension with the parameters as coordinates; ``seed`` is
  the replicate dimension; attributes hold the sweep spec, the base spec and the versions;
* ``points.parquet``: one row per run (point, seed, parameters, metrics, status, error,
  builds, wall time);
* ``plot_<metric>.png`` with ``--plot METRIC``;
* ``store/``: the per-run records and results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, check_choice, check_number
from .command import Engine, command
from .design import design_points
from .spec import Metric, SweepSpec, apply_params, needed_conditions, resolve_base, validate

__all__ = ["Sweep", "load_sweep", "run_cli", "check_metrics", "build_runs"]


def check_metrics(metrics: list[Metric], exp_spec: dict) -> None:
    """Every metric names a known variable, condition, read-out, population or criterion.

    Parameters
    ----------
    metrics : list of Metric
        The sweep's metrics.
    exp_spec : dict
        The validated base experiment spec.

    Raises
    ------
    InputError
        Naming ``metrics[k].<field>`` and the allowed values.
    """
    from ..experiment import RESULT_VARIABLES
    from ..populations import populations

    pops = list(populations())  # as declared by the active circuit model
    conds = list(exp_spec["conditions"])
    readouts = [p["readout"] for p in exp_spec["timeline"] if p["readout"]]
    crits = [c["name"] for c in exp_spec["criteria"]]
    for k, m in enumerate(metrics):
        where = f"metrics[{k}]"
        if m.population is not None:
            check_choice(f"{where}.population", m.population, pops)
        if m.criterion is not None:
            check_choice(f"{where}.criterion", m.criterion, crits)
            continue
        check_choice(f"{where}.var", m.var, RESULT_VARIABLES)
        check_choice(f"{where}.condition", m.condition, conds)
        if m.minus_condition is not None:
            check_choice(f"{where}.minus_condition", m.minus_condition, conds)
        if m.readout is not None:
            check_choice(f"{where}.readout", m.readout, readouts)
        elif m.var != "session_rate":
            raise InputError(f"{where}.readout", "missing", readouts)
        if m.population is None and m.var != "session_rate":
            raise InputError(f"{where}.population", "missing", pops)


def build_runs(
    base_raw: dict, points: list[dict], seeds, scale, metrics: list[dict], store: Path, criteria=()
) -> list[dict]:
    """Tasks for the executor: one per point and seed; every point's spec validated first
    (an InputError names the point and the field).  A point's spec keeps only the conditions
    that the metrics and ``criteria`` need (:func:`.spec.needed_conditions`), so a run simulates
    only those and its key in the store says so.

    Parameters
    ----------
    base_raw : dict
        The raw base experiment spec.
    points : list of dict
        ``{dotted path: value}`` per point.
    seeds : sequence of int
        Replicate seeds.
    scale : str or int or None
        Scale of every run.
    metrics : list of dict
        Metrics to compute per run.
    store : Path
        The point store's folder.
    criteria : iterable of str
        Criteria whose observed values are needed besides the metrics' (a fit's criterion
        targets).

    Returns
    -------
    list of dict
        One task per point and seed: ``key`` (in the store), ``code``, ``point`` (index),
        ``params``, ``raw`` (the point's spec), ``seed``, ``scale``, ``store``, ``metrics``,
        ``criteria`` (the point's validated criteria, judged on its stored results).

    Raises
    ------
    InputError
        A point whose spec is invalid.
    """
    from ..experiment import Experiment
    from .store import code_version, point_key

    code = code_version()
    tasks = []
    for i, params in enumerate(points):
        raw = needed_conditions(apply_params(base_raw, params), metrics, criteria)
        try:
            judged = Experiment.from_dict(raw).spec["criteria"]
        except InputError as exc:
            raise exc.within(f"point {i} {params}: ") from None
        for s in seeds:
            tasks.append(
                dict(
                    key=point_key(raw, s, scale, code),
                    code=code,
                    point=i,
                    params=params,
                    raw=raw,
                    seed=int(s),
                    scale=scale,
                    store=str(store),
                    metrics=metrics,
                    criteria=judged,
                )
            )
    return tasks


@dataclass
class Sweep:
    """A validated sweep spec with its base experiment and the design's points.

    Attributes
    ----------
    spec : SweepSpec
        The validated sweep spec.
    path, base_path : Path
        The sweep spec and its base experiment spec.
    base_raw : dict
        The raw base experiment spec.
    points : list of dict
        ``{dotted path: value}`` per point, in design order.
    """

    spec: SweepSpec
    path: Path
    base_path: Path
    base_raw: dict
    points: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """The sweep's name (``sweep.name``)."""
        return self.spec.sweep.name

    def tasks(self, scale, store: Path) -> list[dict]:
        """Every run of the sweep (:func:`build_runs`), its metrics checked against the base.

        Parameters
        ----------
        scale : str or int or None
            Scale of every run.
        store : Path
            The point store's folder.

        Returns
        -------
        list of dict
        """
        check_metrics(self.spec.metrics, _parsed(self.base_raw))
        return build_runs(
            self.base_raw,
            self.points,
            self.spec.sweep.seeds,
            scale,
            [m.model_dump() for m in self.spec.metrics],
            store,
        )

    def run(
        self, workers: int = 1, scheduler=None, scale=None, out=None, progress: bool = True
    ) -> dict:
        """Run (or resume) the sweep; write its outputs into ``out``; return a summary dict.

        Parameters
        ----------
        workers : int
            Local worker processes (default 1).
        scheduler : str or distributed.Client, optional
            Run on this Dask cluster instead.
        scale : str or int, optional
            Network scale of every run (default: the base spec's).
        out : path, optional
            Output folder (default ``out/<sweep name>``).
        progress : bool
            A progress bar over runs with an ETA.
        """
        from ..outdir import claim_out_dir

        out = Path(out) if out is not None else Path("out") / self.name
        tasks = self.tasks(scale, out / "store")
        with claim_out_dir(out):  # one writer at a time (exit 2 naming it)
            records = run_tasks(
                tasks, workers=workers, scheduler=scheduler, progress=progress, desc=self.name
            )
            return write_outputs(self, tasks, records, out)


def _parsed(raw: dict) -> dict:
    from ..experiment import Experiment

    return Experiment.from_dict(raw).spec


def load_sweep(path) -> Sweep:
    """Read and validate a sweep spec (TOML) and every point it makes.

    Parameters
    ----------
    path : str or Path
        The sweep spec.

    Returns
    -------
    Sweep

    Raises
    ------
    InputError
        Missing or malformed file, an invalid spec, base or point.
    """
    from ..experiment import read_spec
    from ..params import read_toml

    path = Path(path)
    raw = read_toml(path, field="sweep spec")
    spec = validate(SweepSpec, raw, "sweep spec")
    base_path = resolve_base(path, spec.sweep.base)
    base_raw = read_spec(base_path)
    sw = Sweep(
        spec=spec, path=path, base_path=base_path, base_raw=base_raw, points=design_points(spec)
    )
    return sw


def run_tasks(tasks: list[dict], workers=1, scheduler=None, progress=True, desc="sweep") -> dict:
    """Run the tasks not yet in the store; return every task's record by key.

    Parameters
    ----------
    tasks : list of dict
        From :func:`build_runs`.
    workers : int
        Local worker processes.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``) instead of local processes.
    progress : bool
        Draw a progress bar.
    desc : str
        Its label.

    Returns
    -------
    dict
        Task key -> record (metrics, status).
    """
    from .executor import execute
    from .store import PointStore, stale_metrics

    if scheduler is None:
        check_number("--workers", workers, min=1, integer=True)
    if not tasks:
        return {}
    store = PointStore(tasks[0]["store"])
    todo, seen = [], set()
    for t in tasks:
        if not store.reusable(t) and t["key"] not in seen:
            todo.append(t)
            seen.add(t["key"])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, unit="run")
    for rec in execute(todo, workers=workers, scheduler=scheduler):
        if bar is not None:
            bar.update(1)
            if rec.get("status") != "ok":
                bar.set_postfix_str(f"failed: point {rec['point']}")
    if bar is not None:
        bar.close()
    records = {t["key"]: store.get(t["key"]) for t in tasks}
    for t in tasks:
        rec = records[t["key"]]
        if rec and rec["status"] == "ok" and stale_metrics(rec, t):
            records[t["key"]] = _recompute(store, rec, t)
    return records


def stored_results(store, task: dict):
    """The stored results of a finished run, with the task's criteria judged on them (not the
    criteria of the spec that ran it: a criterion edited since is judged as it reads now).

    Parameters
    ----------
    store : PointStore
        The point store.
    task : dict
        The run's task (:func:`build_runs`).

    Returns
    -------
    cortexsim.results.Results
    """
    import xarray as xr

    from ..criteria import evaluate
    from ..results import Results

    ds = xr.load_dataset(store.results_path(task["key"]))
    return Results(ds, evaluate(ds, task["criteria"]))


def _recompute(store, record: dict, task: dict) -> dict:
    """The record of a finished run with the task's metrics recomputed from its stored results
    (a metric added, or redefined under the same name, since the run); written back."""
    from .executor import compute_metrics
    from .store import metric_defs

    new = compute_metrics(stored_results(store, task), task["metrics"])
    record = {
        **record,
        "metrics": {**record.get("metrics", {}), **new},
        "metric_defs": {
            **(record.get("metric_defs") or {}),
            **metric_defs(task["metrics"], task["criteria"]),
        },
    }
    store.put(task["key"], record)
    return record


def _table(tasks: list[dict], records: dict, metric_names: list[str]):
    import pandas as pd

    rows = []
    for t in tasks:
        rec = records.get(t["key"]) or {"status": "missing", "metrics": {}}
        row = {"point": t["point"], "seed": t["seed"]}
        row.update({p: v for p, v in t["params"].items()})
        for m in metric_names:
            row[m] = rec.get("metrics", {}).get(m, float("nan"))
        row.update(
            status=rec.get("status"),
            error=rec.get("error", ""),
            builds=rec.get("builds", 0),
            cache_hits=rec.get("cache_hits", 0),
            wall_s=rec.get("wall_s", float("nan")),
            key=t["key"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _coord(values):
    import numpy as np

    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float)
    return np.asarray([str(v) for v in values])


def to_dataset(sweep: Sweep, df):
    """The sweep's xarray Dataset from its run table (see the module docstring).

    Parameters
    ----------
    sweep : Sweep
        The sweep.
    df : pandas.DataFrame
        One row per run (point, seed, metrics).

    Returns
    -------
    xarray.Dataset
    """
    import numpy as np
    import xarray as xr
    from .design import grid_values

    metrics = [m.name for m in sweep.spec.metrics]
    seeds = list(sweep.spec.sweep.seeds)
    paths = list(dict.fromkeys(p for pt in sweep.points for p in pt))
    n_pts = len(sweep.points)
    vals = {m: np.full((n_pts, len(seeds)), np.nan) for m in metrics}
    for row in df[["point", "seed"] + metrics].itertuples(index=False):
        for j, m in enumerate(metrics):
            vals[m][row[0], seeds.index(row[1])] = row[2 + j]
    if sweep.spec.sweep.design == "grid":
        axes = [grid_values(p) for p in sweep.spec.parameters]
        shape = [len(a) for a in axes] + [len(seeds)]
        ds = xr.Dataset(
            {m: (paths + ["seed"], vals[m].reshape(shape)) for m in metrics},
            coords={**{p: _coord(a) for p, a in zip(paths, axes)}, "seed": seeds},
        )
    else:
        coords = {"point": np.arange(n_pts), "seed": seeds}
        for p in paths:
            coords[p] = ("point", _coord([pt.get(p, float("nan")) for pt in sweep.points]))
        ds = xr.Dataset({m: (("point", "seed"), vals[m]) for m in metrics}, coords=coords)
    return ds


def write_outputs(sweep: Sweep, tasks: list[dict], records: dict, out: Path) -> dict:
    """Write ``points.parquet`` and ``sweep.nc``; return the summary.

    Parameters
    ----------
    sweep : Sweep
        The sweep.
    tasks : list of dict
        Its tasks.
    records : dict
        Task key -> record.
    out : Path
        Output folder.

    Returns
    -------
    dict
    """
    import brian2
    import numpy as np
    import scipy
    import xarray as xr

    from .. import __version__
    from .plots import constant_value
    from .store import atomic_write, code_version

    metric_names = [m.name for m in sweep.spec.metrics]
    df = _table(tasks, records, metric_names)
    ds = to_dataset(sweep, df)
    ds.attrs.update(
        sweep_spec=json.dumps(sweep.spec.model_dump(), sort_keys=True),
        base_spec=json.dumps(sweep.base_raw, sort_keys=True, default=str),
        base_path=str(sweep.base_path),
        code_version=code_version(),
        cortexsim_version=__version__,
        versions=json.dumps(
            {
                "brian2": brian2.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "xarray": xr.__version__,
            }
        ),
        scale=str(tasks[0]["scale"]) if tasks else "",
        builds=int(df.builds.sum()),
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "points.parquet", lambda t: df.to_parquet(t, index=False))
    atomic_write(out / "sweep.nc", lambda t: ds.to_netcdf(t))
    n_ok = int((df.status == "ok").sum())
    summary = {
        "out": str(out),
        "points": len(sweep.points),
        "runs": len(df),
        "finished": n_ok,
        "failed": int((df.status == "error").sum()),
        "builds": int(df.builds.sum()),
        "cache_hits": int(df.cache_hits.sum()),
        "errors": sorted(set(df.error[df.status == "error"])),
    }
    constant = {m: constant_value(df[m]) for m in metric_names}
    remarks = [
        f"metric {m!r} is {v:.6g} at every run: constant over this sweep"
        for m, v in constant.items()
        if v is not None
    ]
    if remarks:
        summary["remarks"] = remarks
    return summary


def _sweep_command(spec, engine: Engine, out=None, scale=None, plot=None) -> dict:
    """``cortexsim sweep``: load, validate, run (or resume), write outputs and plots.

    Parameters
    ----------
    plot : str, optional
        A metric to plot (``plot_<metric>.png``).
    """
    sw = load_sweep(spec)
    if plot is not None:
        check_choice("--plot", plot, [m.name for m in sw.spec.metrics])
    summary = sw.run(
        workers=engine.workers,
        scheduler=engine.scheduler,
        scale=scale,
        out=out,
        progress=engine.progress,
    )
    if plot is not None:
        import xarray as xr
        from .plots import plot_metric

        ds = xr.load_dataset(Path(summary["out"]) / "sweep.nc")
        summary["plot"] = str(plot_metric(ds, plot, Path(summary["out"]) / f"plot_{plot}.png"))
    return summary


run_cli = command(_sweep_command)
