"""Pass/fail criteria of an experiment, judged by the simulation's own numbers.

A criterion (``[[criteria]]`` in a spec) compares a read-out value with a threshold::

    name = "stress lowers spines"
    expected = "relative spine density < 0.9 at end of stress (IT_L5, PT_L5)"
    var = "spine_density_rel"        # any (condition, population, time_d) or
                                     # (condition, readout, population) variable, or
                                     # session_rate (mean over the condition's sessions)
    condition = "stress"
    readout = "end_stress"           # read-out label (its time for time_d variables)
    populations = ["IT_L5", "PT_L5"]
    minus_condition = "stress_sham"  # optional: observed = value - value in that condition
    op = "<"                         # <, <=, >, >=
    value = 0.9
    all = true                       # every population must pass (false: any)
    abs = true                       # optional: judge |observed| (two-sided: "within 0.02")
    requires = "2a. aiTBS restores IT spines"   # optional: judged only if that criterion passed

Observed values are reported per population.  A criterion that is judged relative to an effect
(e.g. "PT spines stay unchanged by aiTBS", "silencing IT abolishes the restoration") names the
criterion that establishes the effect in ``requires``: when that one fails there is nothing to
keep or abolish, and the result is ``status = "not applicable"`` (``passed = null``), not a
pass that only says there was no effect.
"""

from __future__ import annotations

import operator

import numpy as np

from .errors import InputError, check_choice

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
KEYS = (
    "name",
    "expected",
    "var",
    "condition",
    "readout",
    "populations",
    "minus_condition",
    "op",
    "value",
    "all",
    "abs",
    "requires",
)


def check(crit: list, conditions, readouts, variables) -> None:
    """Check a spec's criteria against what the experiment can produce.

    Parameters
    ----------
    crit : list of dict
        The spec's ``[[criteria]]`` tables.
    conditions : iterable of str
        Condition names of the spec.
    readouts : iterable of str
        Read-out labels of the timeline.
    variables : iterable of str
        Result variables a criterion may judge.

    Raises
    ------
    InputError
        Naming ``criteria[k].<key>``: not a table, an unknown or missing key, or an unknown
        variable, condition, read-out or operator.
    """
    for k, c in enumerate(crit):
        where = f"criteria[{k}]"
        if not isinstance(c, dict):
            raise InputError(where, "must be a table")
        for key in c:
            check_choice(f"{where}.{key}", key, KEYS)
        for key in ("name", "var", "condition", "op", "value"):
            if key not in c:
                raise InputError(f"{where}.{key}", "missing", KEYS)
        check_choice(f"{where}.var", c["var"], variables)
        check_choice(f"{where}.condition", c["condition"], conditions)
        if "minus_condition" in c:
            check_choice(f"{where}.minus_condition", c["minus_condition"], conditions)
        if "readout" in c:
            check_choice(f"{where}.readout", c["readout"], readouts)
        check_choice(f"{where}.op", c["op"], OPS)


def value_at(ds, var, cond, readout, pop):
    """One number of a result variable: condition, population and read-out (its time for
    time_d variables; the mean over sessions for session variables).

    Parameters
    ----------
    ds : xarray.Dataset
        Results (:attr:`cortexsim.results.Results.data`).
    var : str
        Result variable.
    cond : str
        Condition.
    readout : str or None
        Read-out label (for ``time_d`` variables).
    pop : str
        Population.

    Returns
    -------
    float
        In the variable's unit (NaN where it was not measured).
    """
    da = ds[var].sel(condition=cond)
    if "time_d" in da.dims:
        t = float(ds.readout_time_d.sel(condition=cond, readout=readout))
        da = da.sel(time_d=round(t, 6), method="nearest")
    elif "readout" in da.dims:
        da = da.sel(readout=readout)
    elif "session" in da.dims:
        da = da.mean("session", skipna=True)
    if "population" in da.dims:
        da = da.sel(population=pop)
    return float(da)


def evaluate(ds, crit: list) -> list[dict]:
    """Judge every criterion on the result dataset ``ds``.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (:attr:`cortexsim.results.Results.data`).
    crit : list of dict
        Validated criteria of the spec.

    Returns
    -------
    list of dict
        One per criterion, in order: ``name``, ``expected``, ``observed`` (per population),
        ``status`` ("pass", "fail" or "not applicable") and ``passed`` (True, False, or None when
        not applicable), plus ``reason`` when not applicable.
    """
    out, by_name = [], {}
    for c in crit:
        pops = c.get("populations", [None])
        obs = {}
        for p in pops:
            v = value_at(ds, c["var"], c["condition"], c.get("readout"), p)
            if "minus_condition" in c:
                v -= value_at(ds, c["var"], c["minus_condition"], c.get("readout"), p)
            obs[p or "all"] = round(v, 6)
        mag = abs if c.get("abs") else float
        ok = [bool(np.isfinite(v) and OPS[c["op"]](mag(v), c["value"])) for v in obs.values()]
        passed = all(ok) if c.get("all", True) else any(ok)
        row = {
            "name": c["name"],
            "expected": c.get("expected", f"{c['var']} {c['op']} {c['value']}"),
            "observed": obs,
            "status": "pass" if passed else "fail",
            "passed": passed,
        }
        req = c.get("requires")
        if req is not None and by_name[req]["status"] != "pass":
            row.update(
                status="not applicable",
                passed=None,
                reason=f"requires {req!r}, which did not pass: no effect to judge",
            )
        by_name[c["name"]] = row
        out.append(row)
    return out
