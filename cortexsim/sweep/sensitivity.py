"""Which parameters matter?  First- and total-order Sobol indices (SALib) of sweep metrics.

A sensitivity spec (TOML)::

    [sensitivity]
    name = "sensitivity_study"
    base = "aitbs_study.toml"
    n_base = 8                # SALib base samples N: N * (d + 2) runs per seed
    sample_seed = 0
    seeds = [1]               # each point's metric is the mean over these seeds
    conf_level = 0.95

    [[parameters]]            # bounds (log = true: sampled uniformly in log space)
    path = "structural.activity.ltp_gain"
    low = 0.0
    high = 2.0

    [[metrics]]               # as in sweep specs
    ...

The points come from SALib's Sobol sampler (Saltelli's scheme) and run on the sweep engine
(local processes or Dask, resumable store).  Output in ``--out``: ``sobol.json`` and
``sobol.csv`` (S1, S1_conf, ST, ST_conf per metric and parameter) and ``sobol_<metric>.png``
(bars with confidence intervals).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import Field, StrictFloat, StrictInt, StrictStr, model_validator

from ..specs import StrictModel
from .command import Engine, command
from .spec import Metric, Parameter, resolve_base, validate


class SensitivityTable(StrictModel):
    name: StrictStr = Field(min_length=1)
    base: StrictStr = Field(min_length=1)
    n_base: StrictInt = Field(default=8, ge=2)
    sample_seed: StrictInt = Field(default=0, ge=0)
    seeds: list[StrictInt] = Field(default_factory=lambda: [1], min_length=1)
    conf_level: StrictFloat = Field(default=0.95, gt=0, lt=1)
    description: StrictStr = ""


class SensitivitySpec(StrictModel):
    sensitivity: SensitivityTable
    parameters: list[Parameter] = Field(min_length=2)
    metrics: list[Metric] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        for p in self.parameters:
            if not p.is_range:
                raise ValueError(f"parameters ({p.path}): needs low/high bounds")
        return self


def problem(params: list[Parameter]) -> dict:
    """SALib problem (log parameters are sampled in log space).

    Parameters
    ----------
    params : list of Parameter
        The parameter box.

    Returns
    -------
    dict
        ``num_vars``, ``names``, ``bounds``.
    """
    return {
        "num_vars": len(params),
        "names": [p.path for p in params],
        "bounds": [
            [float(np.log(p.low)), float(np.log(p.high))]
            if p.log
            else [float(p.low), float(p.high)]
            for p in params
        ],
    }


def sample_points(spec: SensitivitySpec) -> list[dict]:
    """Saltelli's sample of the parameter box: N * (d + 2) points, reproducible from
    ``sample_seed``.

    Parameters
    ----------
    spec : SensitivitySpec
        The validated spec.

    Returns
    -------
    list of dict
        ``{dotted path: value}`` per point.
    """
    from SALib.sample import sobol as sobol_sample

    prob = problem(spec.parameters)
    x = sobol_sample.sample(
        prob, spec.sensitivity.n_base, calc_second_order=False, seed=spec.sensitivity.sample_seed
    )
    for j, p in enumerate(spec.parameters):
        if p.log:
            x[:, j] = np.exp(x[:, j])
    return [
        {p.path: float(x[i, j]) for j, p in enumerate(spec.parameters)} for i in range(x.shape[0])
    ]


def analyze(spec: SensitivitySpec, points: list[dict], evaluate: Callable) -> dict:
    """Sobol indices of every metric: ``{metric: {S1, S1_conf, ST, ST_conf}}`` (lists in the
    order of the parameters).  ``evaluate(points, seeds)`` as in :func:`.fit.run_fit`; a
    point's metric is its mean over the seeds.

    Parameters
    ----------
    spec : SensitivitySpec
        The validated spec.
    points : list of dict
        From :func:`sample_points`.
    evaluate : callable
        ``evaluate(points, seeds)`` -> metrics per point and seed.

    Returns
    -------
    dict
    """
    from SALib.analyze import sobol as sobol_analyze

    from .plots import constant_value

    prob = problem(spec.parameters)
    per_point = evaluate(points, list(spec.sensitivity.seeds))
    out = {}
    for m in spec.metrics:
        y = np.array(
            [np.mean([r.get(m.name, np.nan) for r in rs]) if rs else np.nan for rs in per_point]
        )
        if not np.all(np.isfinite(y)):
            out[m.name] = {"error": f"{int((~np.isfinite(y)).sum())} runs without a value"}
            continue
        if constant_value(y) is not None:
            out[m.name] = {
                "error": f"constant ({y[0]:.6g}) at every point: it depends on "
                "none of the parameters in this box"
            }
            continue
        si = sobol_analyze.analyze(
            prob,
            y,
            calc_second_order=False,
            conf_level=spec.sensitivity.conf_level,
            seed=spec.sensitivity.sample_seed,
        )
        out[m.name] = {k: [float(v) for v in si[k]] for k in ("S1", "S1_conf", "ST", "ST_conf")}
    return out


def write_outputs(spec: SensitivitySpec, indices: dict, out) -> dict:
    """sobol.json, sobol.csv and one bar chart per metric.

    Parameters
    ----------
    spec : SensitivitySpec
        The validated spec.
    indices : dict
        From :func:`analyze`.
    out : str or Path
        Output folder.

    Returns
    -------
    dict
        The summary.
    """
    import pandas as pd

    from .plots import plot_bars
    from .store import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [p.path for p in spec.parameters]
    rows, figs = [], []
    for metric, si in indices.items():
        if "error" in si:
            continue
        for j, n in enumerate(names):
            rows.append(
                {
                    "metric": metric,
                    "parameter": n,
                    **{k: si[k][j] for k in ("S1", "S1_conf", "ST", "ST_conf")},
                }
            )
        figs.append(
            str(
                plot_bars(
                    names,
                    {
                        "first order S1": (si["S1"], si["S1_conf"]),
                        "total order ST": (si["ST"], si["ST_conf"]),
                    },
                    out / f"sobol_{metric}.png",
                    f"Sobol indices of {metric} ({spec.sensitivity.conf_level:.0%} CI)",
                    "index",
                )
            )
        )
    df = pd.DataFrame(rows)
    atomic_write(out / "sobol.csv", lambda t: df.to_csv(t, index=False))
    summary = {"out": str(out), "parameters": names, "indices": indices, "figures": figs}
    text = json.dumps(summary, indent=2)
    atomic_write(out / "sobol.json", lambda t: t.write_text(text))
    return summary


def prepare(spec_path, scale=None, out=None):
    """Validate a sensitivity spec, sample its points and validate every point's spec before
    any run; returns ``(spec, points, tasks, out)``.

    Parameters
    ----------
    spec_path : str or Path
        The sensitivity spec.
    scale : str or int, optional
        Replaces the scale of every run.
    out : str or Path, optional
        Output folder.

    Raises
    ------
    InputError
        Any bad input, before any run.
    """
    from ..experiment import Experiment, read_spec
    from ..params import read_toml
    from . import build_runs, check_metrics
    from .spec import apply_params

    spec_path = Path(spec_path)
    spec = validate(
        SensitivitySpec, read_toml(spec_path, field="sensitivity spec"), "sensitivity spec"
    )
    base_raw = read_spec(resolve_base(spec_path, spec.sensitivity.base))
    out = Path(out) if out is not None else Path("out") / spec.sensitivity.name
    check_metrics(spec.metrics, Experiment.from_dict(apply_params(base_raw, {})).spec)
    points = sample_points(spec)
    tasks = build_runs(
        base_raw,
        points,
        spec.sensitivity.seeds,
        scale,
        [m.model_dump() for m in spec.metrics],
        out / "store",
    )
    return spec, points, tasks, out


def _sensitivity_command(spec_path, engine: Engine, out=None, scale=None) -> dict:
    """``cortexsim sensitivity``: sample, validate, run on the sweep engine, analyse and write
    the outputs."""
    from ..outdir import claim_out_dir

    spec, points, tasks, out = prepare(spec_path, scale, out)

    def evaluate(pts, seeds):
        return [
            [r["metrics"] for r in recs if r.get("status") == "ok"]
            for recs in engine.records_by_point(tasks, len(pts), spec.sensitivity.name)
        ]

    with claim_out_dir(out):  # one writer at a time (exit 2 naming it)
        return write_outputs(spec, analyze(spec, points, evaluate), out)


run_cli = command(_sensitivity_command)
