"""Chronic stress schedule -> glucocorticoid signal S(t) >= 0 for the structural kernel.

A schedule is ``days`` daily sessions of ``hours_per_day`` hours (restraint, or corticosterone
in drinking water with hours_per_day = 24), starting on ``onset_day`` at ``start_hour``, with
relative glucocorticoid ``amplitude``.  Exposure e(t) drives plasma corticosterone C
(first order, tau_cort) which drives an allostatic load L (first order, tau_load in days);
``S = L / (reference_hours / 24)`` so that S ~ 1 at steady state of 6 h/day restraint.
Parameters: ``models/stress.toml``.  Units: t in days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, load_model

KINDS = ("restraint", "corticosterone", "custom")


@dataclass(frozen=True)
class StressSchedule:
    """Daily stress sessions (restraint or chronic corticosterone) over days.

    Attributes
    ----------
    days : int
        Number of stress days (>= 0).
    hours_per_day : float
        Session length (h, in (0, 24]).
    onset_day : float
        Day of the first session (>= 0).
    start_hour : float or None
        Hour of day the session starts (``start_hour + hours_per_day <= 24``).
    amplitude : float
        Exposure inside a session (>= 0; 1 = the calibrated stressor).
    kind : str
        One of ``KINDS``.

    Raises
    ------
    InputError
        Any field out of its range (named ``stress.<field>``).
    """

    days: int
    hours_per_day: float
    onset_day: float = 0.0
    start_hour: float | None = None
    amplitude: float = 1.0
    kind: str = "restraint"

    def __post_init__(self):
        check_number("stress.days", self.days, min=0, integer=True)
        check_number("stress.hours_per_day", self.hours_per_day, min=0, max=24, strict_min=True)
        check_number("stress.onset_day", self.onset_day, min=0)
        check_number("stress.amplitude", self.amplitude, min=0)
        check_choice("stress.kind", self.kind, KINDS)
        if self.start_hour is not None:
            check_number("stress.start_hour", self.start_hour, min=0, max=24)
            if self.start_hour + self.hours_per_day > 24:
                raise InputError(
                    "stress.start_hour",
                    "start_hour + hours_per_day must be <= 24 (one session a day)",
                )

    @classmethod
    def from_dict(cls, d: dict) -> "StressSchedule":
        """A schedule from a table with the fields of the class (``days`` and
        ``hours_per_day`` required); a schedule is returned as it is.

        Parameters
        ----------
        d : dict or StressSchedule
            The table.

        Returns
        -------
        StressSchedule

        Raises
        ------
        InputError
            Not a table, an unknown or missing key, a field out of range.
        """
        if isinstance(d, StressSchedule):
            return d
        if not isinstance(d, dict):
            raise InputError("stress", f"expected a table/dict, got {type(d).__name__}")
        allowed = ("days", "hours_per_day", "onset_day", "start_hour", "amplitude", "kind")
        for k in d:
            if k not in allowed:
                raise InputError(f"stress.{k}", "unknown schedule key", allowed)
        for k in ("days", "hours_per_day"):
            if k not in d:
                raise InputError(f"stress.{k}", "missing required key", allowed)
        return cls(**d)

    @property
    def end_day(self) -> float:
        """The day the schedule ends (d): onset plus its days."""
        return float(self.onset_day) + int(self.days)


def _params(params) -> dict:
    if params is None:
        return load_model("stress").values()
    if isinstance(params, ParamTree):
        return params.values()
    if isinstance(params, dict):
        base = load_model("stress")
        for k, v in params.items():
            base.set(k, v)  # a {value, unit} leaf is converted to the file's unit
        return base.values()
    raise InputError("params", f"expected ParamTree, dict or None, got {type(params).__name__}")


def exposure(t_days, schedule: StressSchedule, params=None) -> np.ndarray:
    """Stress exposure e(t) (amplitude inside a session, else 0).

    Parameters
    ----------
    t_days : array_like
        Times (days).
    schedule : StressSchedule
        The schedule.
    params : ParamTree or dict, optional
        Stress model (``models/stress.toml``).

    Returns
    -------
    ndarray
        Same shape as ``t_days`` (dimensionless).
    """
    P = _params(params)
    t = np.asarray(t_days, dtype=np.float64)
    start = P["default_start_hour"] if schedule.start_hour is None else schedule.start_hour
    if schedule.hours_per_day >= 24:
        start = 0.0
    rel = t - schedule.onset_day
    day = np.floor(rel)
    hod = (rel - day) * 24.0
    on = (
        (day >= 0) & (day < schedule.days) & (hod >= start) & (hod < start + schedule.hours_per_day)
    )
    return np.where(on, float(schedule.amplitude), 0.0)


def stress_signal(t_days, schedule, params=None) -> np.ndarray:
    """Glucocorticoid signal S(t) >= 0 at times ``t_days`` (days; any order).
    ``schedule``: dict / StressSchedule, or None (no stress: zeros).  The system is at rest
    (S = 0) at min(0, min(t)).

    Parameters
    ----------
    t_days : array_like
        Times (days).
    schedule : dict, StressSchedule or None
        The schedule.
    params : ParamTree or dict, optional
        Stress model (``models/stress.toml``: kinetics of the glucocorticoid signal).

    Returns
    -------
    ndarray
        S at ``t_days`` (dimensionless, same shape).

    Raises
    ------
    InputError
        A malformed schedule.
    """
    t = np.asarray(t_days, dtype=np.float64)
    if t.size and not np.all(np.isfinite(t)):
        raise InputError("t_days", "must be finite")
    if schedule is None or t.size == 0:
        return np.zeros(t.shape)
    sch = StressSchedule.from_dict(schedule)
    P = _params(params)
    dt_h = check_number("stress.integration_step", P["integration_step"], min=0, strict_min=True)
    tau_c = check_number("stress.tau_cort", P["tau_cort"], min=0, strict_min=True)
    tau_l = check_number("stress.tau_load", P["tau_load"], min=0, strict_min=True)
    ref = check_number("stress.reference_hours", P["reference_hours"], min=0, strict_min=True)
    t0 = min(0.0, float(t.min()))
    t1 = float(t.max())
    dt = dt_h / 24.0
    n = int(math.ceil((t1 - t0) / dt)) + 1
    grid = t0 + dt * np.arange(n + 1)
    e = exposure(grid[:-1] + 0.5 * dt, sch, P)  # mean exposure over each interval
    a = math.exp(-dt_h / tau_c)
    c = lfilter([1.0 - a], [1.0, -a], e)  # C at the end of each interval
    b = math.exp(-dt / tau_l)
    c_mid = np.concatenate(([0.0], c[:-1])) * 0.5 + c * 0.5
    load = lfilter([1.0 - b], [1.0, -b], c_mid)
    L = np.concatenate(([0.0], load))
    S = L / (ref / 24.0)
    return np.maximum(np.interp(t, grid, S), 0.0)


def stress_per_step(schedule, t0_days: float, dt_h: float, n_steps: int, params=None):
    """S sampled at the midpoint of each slow-phase step starting at ``t0_days``.

    Parameters
    ----------
    schedule : dict, StressSchedule or None
        The schedule.
    t0_days : float
        Start of the slow phase (days).
    dt_h : float
        Step (h, > 0).
    n_steps : int
        Number of steps (>= 0).
    params : ParamTree or dict, optional
        Stress model.

    Returns
    -------
    ndarray (n_steps,)

    Raises
    ------
    InputError
        ``dt_h`` or ``n_steps`` out of range, or a malformed schedule.
    """
    dt_h = check_number("dt_h", dt_h, min=0, strict_min=True)
    n_steps = check_number("n_steps", n_steps, min=0, integer=True)
    t = t0_days + (np.arange(n_steps) + 0.5) * dt_h / 24.0
    return stress_signal(t, schedule, params)
