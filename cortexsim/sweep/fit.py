"""Calibration: which parameter values make the simulation meet its targets?

A fit spec (TOML)::

    [fit]
    name = "fit_stress_gain"
    base = "aitbs_study.toml"     # experiment spec, relative to this file
    n_trials = 40                 # total trials of the study (a resumed fit runs the rest)
    sampler = "tpe"               # tpe | cmaes (Optuna)
    sampler_seed = 0
    seeds = [1]                   # seeds of every trial (the loss is averaged over them)
    validation_seeds = [11, 12]   # the best point re-run on new seeds
    batch = 2                     # trials asked at once and run in parallel

    [[parameters]]                # bounds; log = true searches in log space
    path = "structural.stable.stress_gain_elim"
    low = 3.0
    high = 100.0
    log = true

    [[metrics]]                   # as in sweep specs
    name = "loss_end_stress"
    var = "spine_density_rel"
    condition = "stress"
    readout = "end_stress"
    population = "IT_L5"

    [[targets]]                   # loss += ((metric - value) / tolerance)^2
    metric = "loss_end_stress"
    value = 0.79
    tolerance = 0.02
    # or a criterion: [[targets]] criterion = "1. chronic stress ..." (hinge loss on its
    # observed values, scaled by tolerance)

    [[start]]                     # optional: points tried first (e.g. an earlier fit's best),
    "structural.stable.stress_gain_elim" = 30.0   # fit parameters within their bounds; a
                                  # parameter not named is sampled

A fit spec may start from another with ``extends = "other_fit.toml"`` (see :func:`load_fit`).

The study lives in ``<out>/study.log`` (Optuna's journal storage): a stopped fit resumes where
it stopped (a trial it was running, a start point too, is asked again with its parameters), and
finished runs come from the sweep store.  A trial without a finite loss (a run failed, a target
metric is NaN) fails with its reason and counts toward ``n_trials``.  Trials run on the sweep
executor (local processes or Dask).  The evaluation is pluggable: :func:`run_fit` takes any
``evaluate(points, seeds) -> list[list[dict]]`` (metrics per point and seed), e.g. a cheap
model in tests.  Output in ``--out``: ``best.toml`` (an ``extends`` spec of the base with the best
values), ``trials.csv``, ``importance.png``, ``fit.json`` (best value, parameters, validation).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, StrictInt, StrictStr, model_validator

from ..errors import InputError
from ..specs import StrictModel
from .command import Engine, command
from .spec import Metric, Number, Parameter, Scalar, resolve_base, validate


class FitTable(StrictModel):
    name: StrictStr = Field(min_length=1)
    base: StrictStr = Field(min_length=1)
    n_trials: StrictInt = Field(default=40, ge=1)
    sampler: Literal["tpe", "cmaes"] = "tpe"
    sampler_seed: StrictInt = Field(default=0, ge=0)
    seeds: list[StrictInt] = Field(default_factory=lambda: [1], min_length=1)
    validation_seeds: list[StrictInt] = Field(default_factory=list)
    batch: StrictInt = Field(default=1, ge=1)
    description: StrictStr = ""


class Target(StrictModel):
    """``metric`` near ``value`` (within ``tolerance``), or the criterion ``criterion`` met."""

    metric: StrictStr | None = None
    criterion: StrictStr | None = None
    value: Number | None = None
    tolerance: Number = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check(self):
        if (self.metric is None) == (self.criterion is None):
            raise ValueError("give exactly one of metric or criterion")
        if self.metric is not None and self.value is None:
            raise ValueError("a metric target needs a value")
        return self


class FitSpec(StrictModel):
    fit: FitTable
    #: fixed values for every trial (dotted path -> value, as a parameter's path), e.g. the
    #: mechanisms switched on in this fit; written into best.toml with the fitted values
    overrides: dict[str, Scalar] = Field(default_factory=dict)
    parameters: list[Parameter] = Field(min_length=1)
    metrics: list[Metric] = Field(default_factory=list)
    targets: list[Target] = Field(min_length=1)
    #: points the study tries first (Optuna ``enqueue_trial``), e.g. an earlier fit's best
    start: list[dict[str, Number]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self):
        for p in self.parameters:
            if not p.is_range:
                raise ValueError(f"parameters ({p.path}): a fit needs low/high bounds")
        bounds = {p.path: (p.low, p.high) for p in self.parameters}
        for k, point in enumerate(self.start):
            for path, v in point.items():
                if path not in bounds:
                    raise ValueError(
                        f"start.{k}: {path!r} is not a fitted parameter "
                        f"(allowed: {', '.join(bounds)})"
                    )
                lo, hi = bounds[path]
                if not lo <= v <= hi:
                    raise ValueError(f"start.{k}: {path} = {v} outside its bounds [{lo}, {hi}]")
        names = [m.name for m in self.metrics]
        for t in self.targets:
            if t.metric is not None and t.metric not in names:
                raise ValueError(
                    f"targets: unknown metric {t.metric!r} (allowed: "
                    f"{', '.join(names) or 'none defined in [[metrics]]'})"
                )
        return self


def loss(targets: list[Target], metrics: dict, criteria: dict | None = None) -> float:
    """Sum of squared, tolerance-scaled misses.  A metric target misses by
    ``(metric - value) / tolerance``; a criterion target by how far each observed value lies on
    the wrong side of its threshold (``criteria[name] = (op, threshold, observed values)``).

    Parameters
    ----------
    targets : list of Target
        The fit's targets.
    metrics : dict
        Metric name -> value of one point.
    criteria : dict, optional
        Criterion name -> ``(op, threshold, observed values)``.

    Returns
    -------
    float
    """
    total = 0.0
    for t in targets:
        if t.metric is not None:
            v = metrics.get(t.metric, math.nan)
            total += ((v - t.value) / t.tolerance) ** 2
        elif t.criterion not in (criteria or {}):  # a run that failed: no criteria judged
            return math.inf
        else:
            op, thr, observed = criteria[t.criterion]
            for v in observed:
                miss = (v - thr) if op in ("<", "<=") else (thr - v)
                total += (max(miss, 0.0) / t.tolerance) ** 2
    return total if math.isfinite(total) else math.inf


# --------------------------------------------------------------------------- study
def _storage(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _sampler(name: str, seed: int):
    import optuna

    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _suggest(trial, params: list[Parameter]) -> dict:
    return {
        p.path: trial.suggest_float(p.path, float(p.low), float(p.high), log=p.log) for p in params
    }


def run_fit(spec: FitSpec, evaluate: Callable, out, n_trials: int | None = None) -> dict:
    """Run (or resume) the study until it has ``n_trials`` finished trials, failed ones
    included.

    A trial fails where its loss is not finite (a run failed, a target metric is NaN); the
    reason is kept with the trial (user attribute ``failure``).  A fit none of whose first
    :data:`MAX_FAILURES_BEFORE_SUCCESS` trials succeeds stops there.  A trial left running by
    a fit that was stopped (Ctrl-C, ``kill``) is closed and asked again with the same
    parameters (start points included); it does not count.

    Parameters
    ----------
    spec : FitSpec
        The validated fit spec.
    evaluate : callable
        ``evaluate(points, seeds)`` -> for each point (dict path -> value) a list (one per seed)
        of metric dicts; for criterion targets each metric dict carries
        ``"__criteria__": {name: (op, threshold, observed values)}``; a failed run's dict
        carries ``"__error__"`` (its error).
    out : path
        Folder of the study journal and outputs.
    n_trials : int, optional
        Total trials (default ``spec.fit.n_trials``).

    Returns
    -------
    dict
        ``best_params``, ``best_loss`` (None and NaN when no trial succeeded), ``n_trials``
        (finished trials), ``n_failed``, ``failures`` (reason -> number of trials) and the
        study object under ``study``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(spec, Path(out))
    total = n_trials or spec.fit.n_trials
    while (left := total - len(_finished(study))) > 0 and not _hopeless(study):
        trials = [study.ask() for _ in range(min(spec.fit.batch, left))]
        points = [_suggest(t, spec.parameters) for t in trials]
        results = evaluate(points, list(spec.fit.seeds))
        for t, per_seed in zip(trials, results):
            losses = [loss(spec.targets, m, m.get("__criteria__")) for m in per_seed]
            value = float(sum(losses) / len(losses)) if losses else math.inf
            if math.isfinite(value):
                study.tell(t, value)
            else:
                t.set_user_attr("failure", failure_reason(spec.targets, per_seed))
                study.tell(t, state=optuna.trial.TrialState.FAIL)
    return _outcome(study)


#: a fit whose first this many trials all failed stops (its targets cannot be computed)
MAX_FAILURES_BEFORE_SUCCESS = 10


def _open_study(spec: FitSpec, out: Path):
    """The study in ``out/study.log`` (new: the start points queued first); trials left
    running by a stopped fit closed and queued again with their parameters."""
    import optuna

    study = optuna.create_study(
        study_name=spec.fit.name,
        storage=_storage(out / "study.log"),
        sampler=_sampler(spec.fit.sampler, spec.fit.sampler_seed),
        direction="minimize",
        load_if_exists=True,
    )
    if not study.trials:  # a new study: the start points first (not again on resume)
        for point in spec.start:
            study.enqueue_trial({k: float(v) for k, v in point.items()})
    bounds = {p.path: (p.low, p.high) for p in spec.parameters}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        params = {**t.system_attrs.get("fixed_params", {}), **t.params}
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # no "failure": not counted
        if params and all(
            k in bounds and bounds[k][0] <= v <= bounds[k][1] for k, v in params.items()
        ):
            study.enqueue_trial(params)
    return study


def _finished(study) -> list:
    """Trials that count toward the budget: complete ones, and failed ones with a reason (not
    those closed because their fit was stopped)."""
    import optuna

    state = optuna.trial.TrialState
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(state.COMPLETE, state.FAIL))
        if t.state == state.COMPLETE or "failure" in t.user_attrs
    ]


def _hopeless(study) -> bool:
    done = _finished(study)
    return len(done) >= MAX_FAILURES_BEFORE_SUCCESS and all(t.value is None for t in done)


def _outcome(study) -> dict:
    from collections import Counter

    done = _finished(study)
    failures = Counter(t.user_attrs["failure"] for t in done if t.value is None)
    ok = [t for t in done if t.value is not None]
    best = min(ok, key=lambda t: t.value) if ok else None
    return {
        "best_params": dict(best.params) if best else None,
        "best_loss": float(best.value) if best else math.nan,
        "n_trials": len(done),
        "n_failed": sum(failures.values()),
        "failures": dict(failures.most_common()),
        "study": study,
    }


def failure_reason(targets: list[Target], per_seed: list[dict]) -> str:
    """Why a trial has no finite loss: the first failed run's error, else the first target
    without a value (a metric that is NaN, a criterion with no finite observation).

    Parameters
    ----------
    targets : list of Target
        The fit's targets.
    per_seed : list of dict
        The trial's metric dicts, one per seed (``__error__`` for a failed run).

    Returns
    -------
    str
    """
    if not per_seed:
        return "no run of the trial gave a result"
    for m in per_seed:
        if m.get("__error__"):
            return f"run failed: {m['__error__']}"
    for t in targets:
        for m in per_seed:
            if t.metric is not None and not math.isfinite(m.get(t.metric, math.nan)):
                return f"metric {t.metric!r} is NaN"
            crit = (m.get("__criteria__") or {}).get(t.criterion)
            if t.criterion is not None and (
                crit is None or not all(math.isfinite(v) for v in crit[2])
            ):
                return f"criterion {t.criterion!r} has no value"
    return "loss is not finite"


def write_outputs(
    spec: FitSpec, result: dict, out, base_path: Path, evaluate=None, base_raw: dict | None = None
) -> dict:
    """best.toml, trials.csv, importance.png and fit.json (with the validation re-run).

    Parameters
    ----------
    spec : FitSpec
        The fit spec.
    result : dict
        The study's outcome (best point, trials).
    out : str or Path
        Output folder.
    base_path : Path
        The base experiment spec.
    evaluate : callable, optional
        ``evaluate(points, seeds)`` for the validation re-run.
    base_raw : dict, optional
        The base spec (raw), whose criteria name the criterion targets recorded in best.toml's
        ``[provenance]`` (default: read from ``base_path``).

    Returns
    -------
    dict
        The summary written to fit.json (with ``n_failed`` and ``failures``, reason -> number
        of trials, where trials failed).

    Raises
    ------
    InputError
        No trial succeeded (field ``fit``): the reasons, after trials.csv is written.
    """
    import optuna

    from .plots import plot_bars
    from .store import atomic_write

    out = Path(out)
    study = result["study"]
    df = study.trials_dataframe()
    atomic_write(out / "trials.csv", lambda t: df.to_csv(t, index=False))
    best = result["best_params"]
    if best is None:
        reasons = "; ".join(
            f"{r} ({n} trial{'s' if n > 1 else ''})" for r, n in result["failures"].items()
        )
        raise InputError(
            "fit",
            f"no trial succeeded ({result['n_failed']} failed, trials in "
            f"{out / 'trials.csv'}): {reasons}",
        )
    if base_raw is None:
        from ..experiment import read_spec

        base_raw = read_spec(base_path) if Path(base_path).is_file() else {}
    text = best_spec_text({**spec.overrides, **best}, base_path, out, spec_targets(spec, base_raw))
    atomic_write(out / "best.toml", lambda t: t.write_text(text))
    summary = {
        "out": str(out),
        "best_params": best,
        "best_loss": result["best_loss"],
        "n_trials": result["n_trials"],
        "best_spec": str(out / "best.toml"),
    }
    if result.get("n_failed"):
        summary.update(n_failed=result["n_failed"], failures=result["failures"])
    summary["search"] = search_record(spec, best)
    if len(spec.parameters) > 1 and result["n_trials"] > 1:
        imp = optuna.importance.get_param_importances(study)
        plot_bars(
            list(imp),
            {"importance": (list(imp.values()), None)},
            out / "importance.png",
            "parameter importance (fANOVA)",
            "importance",
        )
        summary["importance"] = imp
    if evaluate is not None and spec.fit.validation_seeds:
        per_seed = evaluate([best], list(spec.fit.validation_seeds))[0]
        losses = [loss(spec.targets, m, m.get("__criteria__")) for m in per_seed]
        summary["validation"] = {
            "seeds": list(spec.fit.validation_seeds),
            "losses": losses,
            "metrics": [{k: v for k, v in m.items() if not k.startswith("__")} for m in per_seed],
        }
    text = json.dumps(summary, indent=2, default=float)
    atomic_write(out / "fit.json", lambda t: t.write_text(text))
    return summary


def search_record(spec, best: dict) -> dict:
    """What a fit searched and with what budget, for ``fit.json``: the sampler and its seed,
    the seeds every trial averaged over, and per parameter its box, scale, the reason given for
    the box and where the best value lies in it (``position``: 0 = low edge, 1 = high edge, in
    the search's own scale; ``at_edge`` when within 2 % of an edge, i.e. the box, not the data,
    may have set it).

    Parameters
    ----------
    spec : FitSpec
        The fit spec.
    best : dict
        Dotted path -> best value.

    Returns
    -------
    dict
    """
    params = []
    for p in spec.parameters:
        rec = {"path": p.path, "low": p.low, "high": p.high, "log": p.log, "reason": p.reason}
        v = best.get(p.path)
        if v is not None and p.low is not None and p.high is not None:
            f = math.log if p.log else float
            pos = (f(v) - f(p.low)) / (f(p.high) - f(p.low))
            rec.update(best=v, position=pos, at_edge=bool(pos < 0.02 or pos > 0.98))
        params.append(rec)
    return {
        "sampler": spec.fit.sampler,
        "sampler_seed": spec.fit.sampler_seed,
        "seeds": list(spec.fit.seeds),
        "n_trials": spec.fit.n_trials,
        "batch": spec.fit.batch,
        "parameters": params,
    }


def best_spec_text(best: dict, base_path: Path, out: Path, targets=None) -> str:
    """An experiment spec that extends the base with the best values (model paths in
    ``[overrides]``, other paths as nested tables) and, with ``targets``, records them as its
    ``[provenance]`` (``cortexsim validate`` then counts the suite entries they match as fitted,
    not predicted: :mod:`cortexsim.validation.model`).

    Parameters
    ----------
    best : dict
        Dotted path -> best value.
    base_path : Path
        The base experiment spec.
    out : Path
        Folder of the written spec (``extends`` is relative to it).
    targets : list of dict, optional
        The fit's targets as observables (:func:`spec_targets`).

    Returns
    -------
    str
        TOML text.
    """
    import os
    from ..experiment import MODEL_NAMES

    rel = os.path.relpath(Path(base_path).resolve(), Path(out).resolve())
    lines = ["# best parameters of a cortexsim fit", f'extends = "{rel}"', ""]
    if targets:
        lines += [
            "# what these values were fitted to (read by `cortexsim validate`)",
            "[provenance]",
            "targets = [",
        ]
        lines += [
            "    { " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in t.items()) + " },"
            for t in targets
        ]
        lines += ["]", ""]
    model = {p: v for p, v in best.items() if p.split(".", 1)[0] in MODEL_NAMES}
    other = {p: v for p, v in best.items() if p not in model}
    tables: dict[str, dict] = {}
    for p, v in other.items():
        head, _, leaf = p.rpartition(".")
        tables.setdefault(head, {})[leaf] = v
    for head, kv in tables.items():
        lines.append(f"[{head}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in kv.items()]
        lines.append("")
    if model:
        lines.append("[overrides]")
        lines += [f'"{p}" = {_toml_value(v)}' for p, v in model.items()]
    return "\n".join(lines) + "\n"


def spec_targets(spec, base_raw: dict) -> list[dict]:
    """The targets of a validated fit spec as observables of its base experiment.

    Parameters
    ----------
    spec : cortexsim.sweep.fit.FitSpec
        The fit spec.
    base_raw : dict
        Its base experiment spec (raw).

    Returns
    -------
    list of dict
        ``experiment``, ``var``, ``condition``, ``minus_condition``, ``readout`` (absent keys
        omitted) and ``populations`` per target.
    """
    exp_name = base_raw.get("experiment", {}).get("name")
    metrics = {m.name: m for m in spec.metrics}
    crits = {c.get("name"): c for c in base_raw.get("criteria", [])}
    out = []
    for t in spec.targets:
        if t.metric is not None:
            m = metrics[t.metric]
            obs = dict(
                var=m.var,
                condition=m.condition,
                minus_condition=m.minus_condition,
                readout=m.readout,
                populations=[m.population] if m.population else [],
            )
        else:
            c = crits.get(t.criterion)
            if c is None:  # a base spec that could not be read: no observable to record
                continue
            obs = dict(
                var=c["var"],
                condition=c["condition"],
                minus_condition=c.get("minus_condition"),
                readout=c.get("readout"),
                populations=list(c.get("populations", [])),
            )
        out.append({k: v for k, v in dict(obs, experiment=exp_name).items() if v is not None})
    return out


def _toml_value(v) -> str:
    """A TOML literal of a spec value (booleans lower case, strings quoted)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


# --------------------------------------------------------------------------- on the engine
def engine_evaluator(
    base_raw: dict,
    metrics: list[dict],
    crit_names: list[str],
    scale,
    store: Path,
    engine: Engine | None = None,
) -> Callable:
    """``evaluate(points, seeds)`` running experiment runs on the sweep executor (and its
    store: a resumed fit re-uses finished runs).

    Parameters
    ----------
    base_raw : dict
        The raw base experiment spec.
    metrics : list of dict
        Metrics to compute per run.
    crit_names : list of str
        Criteria whose observed values a target needs.
    scale : str or int or None
        Scale of every run.
    store : Path
        The point store's folder.
    engine : Engine, optional
        Where the runs go (default: one local worker, no progress bar).

    Returns
    -------
    callable
        ``evaluate(points, seeds)``: per point, per seed, the run's metrics (with
        ``__criteria__`` for criterion targets), or ``{"__error__": error}`` for a failed run.
    """
    from . import build_runs

    engine = engine or Engine(progress=False)

    def evaluate(points, seeds):
        tasks = build_runs(base_raw, points, seeds, scale, metrics, store, crit_names)
        by_point = engine.records_by_point(tasks, len(points), "trials")
        tasks_by_point = [[t for t in tasks if t["point"] == i] for i in range(len(points))]
        return [
            [_trial_metrics(store, t, rec, crit_names) for t, rec in zip(ts, recs)]
            for ts, recs in zip(tasks_by_point, by_point)
        ]

    return evaluate


def _trial_metrics(store: Path, task: dict, rec: dict, crit_names: list[str]) -> dict:
    """One run's metrics for the loss: its metrics and the criteria a target needs (judged on
    its stored results as the criteria read now), or its error."""
    if rec.get("status") != "ok":
        return {"__error__": rec.get("error") or f"no result (status {rec.get('status')})"}
    m = dict(rec.get("metrics", {}))
    if crit_names:
        import xarray as xr

        from .store import PointStore

        ds = xr.load_dataset(PointStore(store).results_path(task["key"]))
        m["__criteria__"] = criteria_values(ds, task["criteria"], crit_names)
    return m


def criteria_values(ds, criteria: list[dict], names) -> dict:
    """``(op, threshold, observed values)`` of the criteria ``names`` of one run, judged with
    every criterion of its config (a named criterion may ``require`` another one).

    Parameters
    ----------
    ds : xarray.Dataset
        The run's results.
    criteria : list of dict
        The criteria of the run's config, in order.
    names : iterable of str
        The criteria wanted.

    Returns
    -------
    dict
        Criterion name -> ``(op, threshold, list of observed values)``.
    """
    from ..criteria import evaluate

    rows = {r["name"]: r for r in evaluate(ds, criteria)}
    mag = {c["name"]: (abs if c.get("abs") else float) for c in criteria}  # two-sided: |v|
    return {
        c["name"]: (
            c["op"],
            c["value"],
            [mag[c["name"]](v) for v in rows[c["name"]]["observed"].values()],
        )
        for c in criteria
        if c["name"] in set(names)
    }


def read_fit(path) -> dict:
    """The raw fit spec in ``path`` merged over what it ``extends`` (a path relative to it),
    with :func:`cortexsim.specs.read_extending`: tables merge key by key, lists (parameters,
    metrics, targets) and values replace.  Each ``fit.base`` is made absolute relative to the
    file that declares it.

    Parameters
    ----------
    path : str or Path
        The fit spec.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Missing or malformed file; ``extends`` not a string, missing or circular.
    """
    from ..specs import read_extending

    return read_extending(path, _read_one_fit, "fit spec")


def _read_one_fit(p: Path) -> dict:
    from ..params import read_toml

    raw = read_toml(p, field="fit spec")
    fit = raw.get("fit")
    if isinstance(fit, dict) and isinstance(fit.get("base"), str) and fit["base"]:
        try:
            fit["base"] = str(resolve_base(p, fit["base"], field="fit.base"))
        except InputError:  # reported by load_fit unless replaced
            fit["base"] = str((p.parent / fit["base"]).resolve())
    return raw


def load_fit(path) -> tuple[FitSpec, Path, dict]:
    """Validated fit spec, its base spec's path and raw base spec.

    A fit spec may start from another: ``extends = "other_fit.toml"`` (relative to the
    extending file); tables merge key by key, lists (``parameters``, ``metrics``,
    ``targets``) replace (see :func:`read_fit`).  ``fit.base`` is relative to the file that
    declares it.

    Parameters
    ----------
    path : str or Path
        The fit spec.

    Returns
    -------
    spec : FitSpec
    base_path : Path
    base_raw : dict

    Raises
    ------
    InputError
        Missing or malformed file, an invalid spec or base, ``extends`` missing or circular.
    """
    from ..experiment import read_spec

    path = Path(path)
    spec = validate(FitSpec, read_fit(path), "fit spec")
    base_path = resolve_base(path, spec.fit.base, field="fit.base")
    return spec, base_path, read_spec(base_path)


def prepare(spec_path, scale=None, out=None):
    """Validate a fit spec and everything it refers to (base spec, both corners of the
    parameter box, metrics, criterion targets) before any run; returns
    ``(spec, base_path, base_raw, criterion names, out)``.

    Parameters
    ----------
    spec_path : str or Path
        The fit spec.
    scale : str or int, optional
        Replaces the scale of every run.
    out : str or Path, optional
        Output folder.

    Raises
    ------
    InputError
        Any bad input, before any run.
    """
    from ..experiment import Experiment
    from . import build_runs, check_metrics
    from .spec import apply_params

    spec, base_path, base_raw = load_fit(spec_path)
    out = Path(out) if out is not None else Path("out") / spec.fit.name
    fixed = [p for p in spec.overrides if p in {q.path for q in spec.parameters}]
    if fixed:
        raise InputError(f"overrides.{fixed[0]}", "is also a fitted parameter: fix it or fit it")
    try:
        base_raw = apply_params(base_raw, spec.overrides)  # every trial starts from these
    except InputError as exc:
        raise exc.within("overrides: ") from None
    parsed = Experiment.from_dict(apply_params(base_raw, {})).spec
    check_metrics(spec.metrics, parsed)
    crit_names = [t.criterion for t in spec.targets if t.criterion is not None]
    known = [c["name"] for c in parsed["criteria"]]
    for k, c in enumerate(crit_names):
        if c not in known:
            raise InputError(f"targets[{k}].criterion", f"unknown criterion {c!r}", known)
    metrics = [m.model_dump() for m in spec.metrics]
    for corner in (
        {p.path: p.low for p in spec.parameters},
        {p.path: p.high for p in spec.parameters},
    ):
        build_runs(
            base_raw, [corner], [spec.fit.seeds[0]], scale, metrics, out / "store", crit_names
        )
    return spec, base_path, base_raw, crit_names, out


def _fit_command(spec_path, engine: Engine, out=None, scale=None, n_trials=None) -> dict:
    """``cortexsim fit``: validate everything, then run or resume the study and write the
    outputs.

    Parameters
    ----------
    n_trials : int, optional
        Replaces the spec's number of trials.
    """
    from ..errors import check_number

    if n_trials is not None:
        n_trials = check_number("--n-trials", n_trials, min=1, integer=True)
    from ..outdir import claim_out_dir

    spec, base_path, base_raw, crit_names, out = prepare(spec_path, scale, out)
    evaluate = engine_evaluator(
        base_raw, [m.model_dump() for m in spec.metrics], crit_names, scale, out / "store", engine
    )
    with claim_out_dir(out):  # one writer at a time (exit 2 naming it)
        result = run_fit(spec, evaluate, out, n_trials=n_trials)
        return write_outputs(spec, result, out, base_path, evaluate, base_raw)


run_cli = command(_fit_command)
