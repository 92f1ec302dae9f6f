"""The validation scorecard: a model against published experiments (``cortexsim validate``).

The suite (``validation/*.toml``, :mod:`.suite`) declares published findings, each with the
model observable that stands for it, the published value or sign, a tolerance and its reason,
and the source.  :func:`run_validation` scores a model (:mod:`.model`: the default or a
what-if spec) against it:

1. every entry is checked before anything runs;
2. the experiments the selected entries read are run once per seed on the sweep engine
   (:func:`cortexsim.sweep.run_tasks`: local worker processes, resumable store keyed by
   resolved spec, seed, scale and code version), each with only the conditions the entries
   need and with the model laid over it;
3. cell, threshold and synapse observables are computed from the model trees;
4. each entry is judged on the mean over seeds (:func:`judge`) and marked **fitted** (the
   model's fit provenance targets it) or **predicted**.

Output (``--out``): ``scorecard.json`` (stable keys), ``scorecard.md`` and ``scorecard.png``
(:mod:`.report`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, check_number
from .model import Model, fitted_entries, load_model
from .observe import experiment_value, static_value, trees_for
from .suite import Suite, load_suite, suite_dir

__all__ = [
    "run_validation",
    "judge",
    "load_suite",
    "load_model",
    "Model",
    "Suite",
    "fitted_entries",
    "run_cli",
]

#: scale and seeds of ``--quick`` (the CI subset: one entry of every kind at 100 neurons)
QUICK_SCALE = 100
QUICK_SEEDS = (1,)


def judge(entry: dict, value: float) -> dict:
    """Verdict of one entry for the model's value.

    Parameters
    ----------
    entry : dict
        A suite entry (``compare``, ``published``, ``tolerance``).
    value : float
        The model's value (mean over seeds), in the observable's unit.

    Returns
    -------
    dict
        ``verdict`` ("pass", "fail" or "not measured"), ``deviation`` (the value in units of
        the tolerance, placed so that the entry passes when ``deviation`` lies in ``band``)
        and ``band`` (``[lo, hi]``).
    """
    tol, pub, cmp = entry["tolerance"], entry["published"], entry["compare"]
    if value is None or not np.isfinite(value):
        return {"verdict": "not measured", "deviation": None, "band": None}
    if cmp == "value":
        dev, band = (value - pub["value"]) / tol, [-1.0, 1.0]
    elif cmp == "none":
        dev, band = value / tol, [-1.0, 1.0]
    elif cmp == "range":
        mid, half = (pub["low"] + pub["high"]) / 2, (pub["high"] - pub["low"]) / 2
        if half == 0:
            dev = 0.0 if value == mid else math.copysign(math.inf, value - mid)
        else:
            dev = (value - mid) / half
        band = [-1.0, 1.0]
    else:  # sign: effect of the published sign above tol
        sgn = 1.0 if pub["sign"] == "+" else -1.0
        dev, band = sgn * value / tol, [1.0, math.inf]
    ok = band[0] <= dev <= band[1] if cmp != "sign" else dev > 1.0
    return {"verdict": "pass" if ok else "fail", "deviation": float(dev), "band": band}


def _check_run_args(scale, seeds, workers):
    from ..experiment.spec import check_scale

    if scale is not None:
        check_scale(scale, "--scale")
    if not seeds:
        raise InputError("--seeds", "give at least one seed")
    from ..experiment import check_seed

    seeds = [check_seed(s, "--seeds") for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise InputError("--seeds", f"repeated seed in {seeds}")
    check_number("--workers", workers, min=1, max=256, integer=True)
    return seeds


def experiment_tasks(
    model: Model, suite: Suite, entries: list[dict], seeds, scale, store: Path
) -> dict:
    """Sweep-engine tasks of the experiments the entries read: experiment name -> tasks (one
    per seed), each spec with the model laid over it and only the conditions needed.

    Parameters
    ----------
    model : Model
        The model laid over each experiment spec (:meth:`Model.apply`).
    suite : Suite
        The suite (its experiments: name -> spec path).
    entries : list of dict
        The entries to score; only their ``experiment`` observables count.
    seeds : sequence of int
        Replicate seeds (one task each).
    scale : str or int
        Network scale.
    store : Path
        Folder of the sweep engine's point store.

    Returns
    -------
    dict
        Experiment name -> list of tasks (:func:`cortexsim.sweep.build_runs`).

    Raises
    ------
    InputError
        An experiment that does not validate with the model, naming both.
    """
    from ..experiment import read_spec
    from ..sweep import build_runs
    from ..sweep.spec import needed_conditions

    out = {}
    for name, path in suite.experiments.items():
        mine = [
            e["observable"]
            for e in entries
            if e["observable"]["kind"] == "experiment" and e["observable"]["experiment"] == name
        ]
        if not mine:
            continue
        needs = [
            dict(condition=o["condition"], minus_condition=o.get("other_condition")) for o in mine
        ]
        raw = needed_conditions(model.apply(read_spec(path)), needs)
        try:
            out[name] = build_runs(raw, [{}], seeds, scale, [], store)
        except InputError as exc:
            raise exc.within(f"experiment {name} with model {model.name}: ") from None
    return out


def run_validation(
    model_spec=None,
    *,
    scale="small",
    seeds=(1, 2, 3),
    workers: int = 1,
    quick: bool = False,
    out=None,
    suite_folder=None,
    entry_ids=None,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Score a model against the suite and write the scorecard.

    Parameters
    ----------
    model_spec : str or Path, optional
        A what-if spec (path or shipped name); ``None``: the default model.
    scale : str or int
        Network scale of the experiments (``--quick``: 100 neurons).
    seeds : sequence of int
        Replicate seeds (``--quick``: seed 1 only).
    workers : int
        Local worker processes.
    quick : bool
        Only the entries marked ``quick`` (one of every kind), at 100 neurons, one seed.
    out : str or Path, optional
        Output folder (default ``out/validation_<model>``).
    suite_folder : str or Path, optional
        Suite folder (default: the shipped suite).
    entry_ids : iterable of str, optional
        Score only these entries.
    progress : bool
        Progress bars.
    force : bool
        Run even if the estimated peak memory of the experiment runs exceeds the memory
        available (as ``cortexsim run --force``).

    Returns
    -------
    dict
        The scorecard (as written to ``scorecard.json``).

    Raises
    ------
    InputError
        A bad suite entry, model spec, scale, seed, worker count or output folder, or runs
        that will not fit in memory (without ``force``); before anything runs.
    """
    from ..outdir import claim_out_dir

    t0 = time.perf_counter()
    suite = load_suite(suite_folder)
    entries = suite.select(quick=quick, ids=entry_ids)
    if not entries:
        raise InputError("--entries", "no entry selected")
    if quick:
        scale, seeds = QUICK_SCALE, QUICK_SEEDS
    seeds = _check_run_args(scale, list(seeds), workers)
    model = load_model(model_spec)
    if not force:
        guard_memory(model, suite, entries, seeds, scale, workers)
    with claim_out_dir(out or f"out/validation_{model.name}") as folder:
        return _score(model, suite, entries, scale, seeds, workers, quick, folder, progress, t0)


def guard_memory(
    model: Model, suite: Suite, entries: list[dict], seeds, scale, workers: int
) -> dict | None:
    """Refuse experiment runs whose estimated peak memory (:mod:`cortexsim.cost`) exceeds the
    memory available now, as ``cortexsim run`` does, before anything runs.

    Parameters
    ----------
    model, suite, entries, seeds, scale, workers
        As for :func:`experiment_tasks` and :func:`run_validation`.

    Returns
    -------
    dict or None
        The estimate (None when no entry reads an experiment).

    Raises
    ------
    InputError
        The estimate exceeds the available memory (field ``--scale``; ``--force`` runs anyway).
    """
    import tempfile

    from ..cost import _tasks_estimate, check_memory

    with tempfile.TemporaryDirectory() as tmp:
        tasks = experiment_tasks(model, suite, entries, seeds, scale, Path(tmp))
    all_tasks = [t for ts in tasks.values() for t in ts]
    if not all_tasks:
        return None
    est = _tasks_estimate(all_tasks, workers)
    check_memory(est, what=f"this validation (scale {scale}, --workers {workers})")
    return est


def _score(model, suite, entries, scale, seeds, workers, quick, out: Path, progress, t0):
    """:func:`run_validation` once everything is checked and ``out`` is claimed."""
    from ..sweep import run_tasks
    from ..sweep.store import PointStore
    from .report import write_scorecard

    store = out / "store"
    tasks = experiment_tasks(model, suite, entries, seeds, scale, store)
    exp_names = {n: _experiment_name(p) for n, p in suite.experiments.items()}
    fitted = fitted_entries(model, entries, exp_names)
    trees = trees_for(model)
    rows = []
    for e in [e for e in entries if e["observable"]["kind"] != "experiment"]:
        rows.append(_row(e, [static_value(e["observable"], trees)], fitted, static=True))
    all_tasks = [t for ts in tasks.values() for t in ts]
    records = (
        run_tasks(all_tasks, workers=workers, progress=progress, desc=f"validate {model.name}")
        if all_tasks
        else {}
    )
    datasets = _load_datasets(tasks, records, PointStore(store))
    for e in [e for e in entries if e["observable"]["kind"] == "experiment"]:
        o = e["observable"]
        vals = [
            experiment_value(o, ds) if ds is not None else math.nan
            for ds in datasets[o["experiment"]]
        ]
        errors = [
            records[t["key"]].get("error")
            for t in tasks[o["experiment"]]
            if records.get(t["key"]) and records[t["key"]].get("status") != "ok"
        ]
        rows.append(_row(e, vals, fitted, static=False, errors=errors))
    order = {e["id"]: k for k, e in enumerate(entries)}
    rows.sort(key=lambda r: order[r["id"]])
    apply_requires(rows, {e["id"]: e["requires"] for e in entries})
    card = dict(
        model=model.as_dict(),
        scale=scale,
        seeds=list(seeds),
        quick=quick,
        suite="shipped (validation/)"
        if suite.folder.resolve() == suite_dir().resolve()
        else str(suite.folder),
        entries=rows,
        summary=summarise(rows),
        wall_s=round(time.perf_counter() - t0, 1),
        versions=_versions(),
    )
    write_scorecard(card, out)
    return card


def check_suite_file(path, scale=None, workers: int = 1) -> dict:
    """``cortexsim check`` of a suite file (``[suite]`` table): the whole suite folder is
    checked as ``cortexsim validate`` checks it, and the default model's runs of the entries
    of this file (seeds 1, 2, 3) are estimated.

    Parameters
    ----------
    path : str or Path
        A suite file (``validation/*.toml``).
    scale : str or int, optional
        Scale of the experiments (default small).
    workers : int
        Worker processes.

    Returns
    -------
    dict
        ``kind`` ("suite"), ``spec``, ``group``, ``entries`` (number per observable kind),
        ``experiments`` (those the file's entries read) and ``estimate``.

    Raises
    ------
    InputError
        A bad entry anywhere in the suite folder (as ``cortexsim validate``).
    """
    import tempfile

    from ..cost import _tasks_estimate

    path = Path(path)
    suite = load_suite(path.parent)
    mine = [e for e in suite.entries if e["file"] == path.name]
    scale = scale or "small"
    seeds = _check_run_args(scale, [1, 2, 3], workers)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = experiment_tasks(load_model(None), suite, mine, seeds, scale, Path(tmp))
    kinds: dict[str, int] = {}
    for e in mine:
        kinds[e["observable"]["kind"]] = kinds.get(e["observable"]["kind"], 0) + 1
    rep = {
        "kind": "suite",
        "spec": str(path),
        "group": mine[0]["group"] if mine else None,
        "entries": kinds,
        "experiments": sorted(tasks),
        "seeds": list(seeds),
    }
    all_tasks = [t for ts in tasks.values() for t in ts]
    if all_tasks:
        rep["estimate"] = _tasks_estimate(all_tasks, workers)
    return rep


def _experiment_name(path) -> str:
    from ..experiment import load_experiment

    return load_experiment(path).spec["experiment"]["name"]


def _load_datasets(tasks: dict, records: dict, store) -> dict:
    import xarray as xr

    out = {}
    for name, ts in tasks.items():
        out[name] = []
        for t in ts:
            rec = records.get(t["key"])
            ok = rec is not None and rec.get("status") == "ok"
            out[name].append(xr.load_dataset(store.results_path(t["key"])) if ok else None)
    return out


def _row(e: dict, values: list, fitted: dict, static: bool, errors=()) -> dict:
    v = np.asarray(values, dtype=float)
    fin = v[np.isfinite(v)]
    mean = float(fin.mean()) if fin.size == len(v) and fin.size else math.nan
    sd = float(fin.std(ddof=1)) if fin.size > 1 else 0.0
    row = {
        k: e[k]
        for k in (
            "id",
            "group",
            "finding",
            "compare",
            "published",
            "tolerance",
            "tolerance_reason",
            "source",
            "observable",
            "note",
        )
    }
    row.update(judge(e, mean))
    row.update(
        status="fitted" if e["id"] in fitted else "predicted",
        fitted_by=fitted.get(e["id"], []),
        model_mean=None if math.isnan(mean) else mean,
        model_sd=sd,
        model_values=[None if not np.isfinite(x) else float(x) for x in v],
        deterministic=static,
    )
    if errors:
        row["errors"] = sorted(set(errors))
    return row


def apply_requires(rows: list[dict], requires: dict) -> None:
    """An entry whose required entry did not pass is "not applicable" (nothing to keep or
    abolish), in place; its own numbers stay in the row.

    Parameters
    ----------
    rows : list of dict
        Scored entries (``id``, ``verdict``); changed in place (``verdict``, ``reason``).
    requires : dict
        Entry id -> the id of the entry it requires (or None).
    """
    by_id, done = {r["id"]: r for r in rows}, set()

    def settle(r):
        if r["id"] in done:
            return
        done.add(r["id"])
        req = requires.get(r["id"])
        if req is None or req not in by_id:
            return
        settle(by_id[req])  # the required entry's own verdict first
        if by_id[req]["verdict"] != "pass":
            r.update(
                verdict="not applicable",
                reason=f"requires {req}, which did not pass: no effect to judge",
            )

    for r in rows:
        settle(r)


def summarise(rows: list[dict]) -> dict:
    """Counts per status (fitted, predicted) and the one-line summary.

    Parameters
    ----------
    rows : list of dict
        Scored entries (``status``, ``verdict``).

    Returns
    -------
    dict
        ``predicted`` / ``fitted``: ``{"pass", "fail", "not_measured", "total"}``; ``line``.
    """
    out = {}
    for st in ("predicted", "fitted"):
        rs = [r for r in rows if r["status"] == st]
        out[st] = {
            "pass": sum(r["verdict"] == "pass" for r in rs),
            "fail": sum(r["verdict"] == "fail" for r in rs),
            "not_measured": sum(r["verdict"] == "not measured" for r in rs),
            "not_applicable": sum(r["verdict"] == "not applicable" for r in rs),
            "total": len(rs),
        }
    p, f = out["predicted"], out["fitted"]
    na = p["not_applicable"] + f["not_applicable"]
    out["line"] = (
        f"predicted: {p['pass']} of {p['total']} within tolerance; "
        f"fitted: {f['pass']} of {f['total']}"
        + (f" ({na} not applicable: no effect to judge)" if na else "")
    )
    return out


def _versions() -> dict:
    import platform

    from .. import __version__
    from ..experiment.store import code_version

    return {"cortexsim": __version__, "code": code_version(), "python": platform.python_version()}


def run_cli(
    spec=None,
    scale=None,
    seeds=None,
    workers: int = 1,
    quick: bool = False,
    out=None,
    entries=None,
    suite=None,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """``cortexsim validate``: :func:`run_validation` with the command's defaults (scale small,
    seeds 1, 2, 3).

    Parameters
    ----------
    spec : str or Path, optional
        The what-if spec that defines the model (``model_spec`` of :func:`run_validation`).
    scale : str or int, optional
        Default small.
    seeds : sequence of int, optional
        Default 1, 2, 3.
    workers, quick, out, progress, force
        As for :func:`run_validation`.
    entries : iterable of str, optional
        ``entry_ids`` of :func:`run_validation`.
    suite : str or Path, optional
        ``suite_folder`` of :func:`run_validation`.

    Returns
    -------
    dict
        The scorecard.
    """
    if quick and (scale is not None or seeds is not None):
        raise InputError(
            "--scale" if scale is not None else "--seeds",
            f"--quick runs at {QUICK_SCALE} neurons with seed(s) "
            f"{','.join(map(str, QUICK_SEEDS))}: give no --scale or --seeds with "
            "it (or use --entries to choose entries at another scale)",
        )
    return run_validation(
        spec,
        scale=scale or "small",
        seeds=seeds or (1, 2, 3),
        workers=workers,
        quick=quick,
        out=out,
        entry_ids=entries,
        suite_folder=suite,
        progress=progress,
        force=force,
    )
