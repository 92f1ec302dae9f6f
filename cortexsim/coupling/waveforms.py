"""Normalised TMS pulse waveforms: the time course of the induced E-field, peak |E| = 1.

Each waveform is a :class:`Waveform` (name, ``t_s`` sample times in seconds, ``e`` the
normalised field, ``pulse_width_us``) on a uniform grid (``waveforms.dt_us`` in
``models/coupling.toml``, default 1 us, shortened to ``width / ceil(width / dt_us)`` so that
any width, e.g. 37.5 us, or a monophasic rise time of 62.5 us, is exact).
Convention (used by the reduced model and the cable solver alike): ``e[k]`` holds on
``[t_s[k], t_s[k] + dt)`` (zero-order hold); smooth shapes are sampled at the interval
midpoints, so a rectangular pulse of n samples lasts exactly n dt.

The induced field is proportional to dI/dt of the coil current, so

* ``biphasic``   one full cosine cycle, E(t) = cos(2 pi t / T): the coil current of a
  biphasic stimulator is one sine cycle (period T ~ 290 us, Magstim Rapid / MagVenture-like).
  Its integral is zero.
* ``monophasic`` the RLC model of a monophasic stimulator: the current rises as a quarter
  sine cycle of the LC circuit (rise time t_r ~ 75 us) until the diode/resistor branch takes
  over, then decays exponentially (L/R time constant tau_d).  E = dI/dt is therefore a fast
  positive quarter-cosine phase followed by a long negative phase of relative amplitude
  2 t_r / (pi tau_d) (~0.2).  ``pulse_width_us`` sets t_r.
* ``half_sine``  E(t) = sin(pi t / W) on [0, W].
* ``rectangular`` E = 1 on [0, W) (controllable-pulse-parameter TMS, cTMS).
* :func:`from_samples` user-supplied samples (e.g. a measured pulse), resampled to the grid
  and normalised.

All shape parameters live in ``models/coupling.toml`` (``waveforms.*``); the ``range`` of each
width parameter bounds the widths a user may give (:func:`check_width`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, check_choice, check_number
from .limits import (
    MAX_RESPONSE_SAMPLES,
    MAX_USER_SAMPLES,
    check_count,
    check_in_range,
    check_limit,
    checked_param,
    param_range,
    param_value,
    params_or_default,
)

WAVEFORMS = ("biphasic", "monophasic", "half_sine", "rectangular")


@dataclass(frozen=True, eq=False)
class Waveform:
    """A normalised E-field pulse: ``e`` (peak |e| = 1) sampled at ``t_s`` (seconds).

    Attributes
    ----------
    name : str
        Waveform name (``biphasic``, ``monophasic``, ``rectangular``... or a user's).
    t_s : ndarray (n,)
        Sample times (s, uniform step).
    e : ndarray (n,)
        Normalised field (dimensionless, peak |e| = 1).
    pulse_width_us : float
        Width (us).
    meta : dict
        Where the shape came from.

    Waveforms compare equal (and hash) by name, width, step and samples.
    """

    name: str
    t_s: np.ndarray
    e: np.ndarray
    pulse_width_us: float
    meta: dict = field(default_factory=dict)

    @property
    def dt_s(self) -> float:
        """Sample step (s); 0 for a single sample."""
        return float(self.t_s[1] - self.t_s[0]) if len(self.t_s) > 1 else 0.0

    @property
    def duration_us(self) -> float:
        """Length of the sampled pulse (us): samples x step."""
        return len(self.e) * self.dt_s * 1e6

    def key(self) -> tuple:
        """Hashable identity (for caching responses)."""
        return (
            self.name,
            round(self.pulse_width_us, 9),
            round(self.dt_s, 15),
            len(self.e),
            hash(self.e.tobytes()),
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Waveform) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


#: the parameter (in ``[waveforms]``) holding each waveform's default width; its ``range`` is the
#: range of any width given for that waveform
WIDTH_PARAMS = {
    "biphasic": "waveforms.biphasic_period_us",
    "monophasic": "waveforms.monophasic_rise_us",
    "half_sine": "waveforms.half_sine_width_us",
    "rectangular": "waveforms.rectangular_width_us",
}

# kept for the modules that import it from here
_pv = param_value


def default_width_us(name: str, params=None) -> float:
    """The default width of waveform ``name`` (``models/coupling.toml``), range-checked.

    Parameters
    ----------
    name : str
        A waveform of :data:`WAVEFORMS`.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float
        Width (us).

    Raises
    ------
    InputError
        Unknown waveform or a default outside its range.
    """
    check_choice("waveform", name, WAVEFORMS)
    return float(checked_param(params_or_default(params), WIDTH_PARAMS[name], positive=True))


def check_width(name: str, pulse_width_us, params=None) -> float:
    """``pulse_width_us`` (a user's width for waveform ``name``; ``None``: the default) checked
    against the ``range`` of the waveform's width parameter.

    Parameters
    ----------
    name : str
        A waveform of :data:`WAVEFORMS`.
    pulse_width_us : float or None
        The user's width (us).
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float
        Width (us).

    Raises
    ------
    InputError
        Naming ``pulse_width_us`` and the allowed range: not a number, NaN/inf, or out of range.
    """
    check_choice("waveform", name, WAVEFORMS)
    p = params_or_default(params)
    if pulse_width_us is None:
        return default_width_us(name, p)
    rng = param_range(p, WIDTH_PARAMS[name])
    if rng is None:
        return float(check_number("pulse_width_us", pulse_width_us, min=0.0, strict_min=True))
    return float(
        check_in_range(
            "pulse_width_us", pulse_width_us, *rng, where=f"{name} waveform, {WIDTH_PARAMS[name]}"
        )
    )


def get_waveform(name: str, pulse_width_us: float | None = None, params=None) -> Waveform:
    """Return the normalised waveform ``name`` (see module doc) on the parameter-file grid.

    Parameters
    ----------
    name : str
        One of :data:`WAVEFORMS` (a :class:`Waveform` is returned as it is).
    pulse_width_us : float, optional
        Period (biphasic), rise time (monophasic) or width (half_sine, rectangular) in us,
        within the ``range`` of the waveform's width parameter in ``models/coupling.toml``;
        ``None`` takes the default from that file.
    params : ParamTree or dict, optional
        Coupling parameters (default ``models/coupling.toml``).

    Raises
    ------
    InputError
        Unknown name, a width out of range, or more samples than
        :data:`~cortexsim.coupling.limits.MAX_RESPONSE_SAMPLES`.
    """
    if isinstance(name, Waveform):
        return name
    check_choice("waveform", name, WAVEFORMS)
    p = params_or_default(params)
    width = check_width(name, pulse_width_us, p)
    dt_us = float(checked_param(p, "waveforms.dt_us", positive=True))
    meta: dict = {}
    # a whole number of samples spans exactly `width` (the step shrinks slightly if needed)
    n = max(math.ceil(width / dt_us - 1e-9), 2)
    dt_us = width / n
    n_tail = 0
    if name == "monophasic":  # rise phase of n samples, then the decay tail
        tau_d = float(checked_param(p, "waveforms.monophasic_decay_tau_us", positive=True))
        n_tau = float(checked_param(p, "waveforms.monophasic_tail_taus", positive=True))
        n_tail = max(round(n_tau * tau_d / dt_us), 1)
    check_count(
        "pulse_width_us" if pulse_width_us is not None else "waveforms.dt_us",
        n + n_tail,
        MAX_RESPONSE_SAMPLES,
        f"samples of a {dt_us:g} us step",
    )
    n += n_tail
    t_us = np.arange(n) * dt_us  # start of each hold interval
    tm = t_us + 0.5 * dt_us  # smooth shapes are sampled at interval midpoints
    if name == "biphasic":
        e = np.cos(2.0 * math.pi * tm / width)
    elif name == "half_sine":
        e = np.sin(math.pi * tm / width)
    elif name == "rectangular":
        e = np.ones(n)
    else:  # monophasic RLC
        w = math.pi / (2.0 * width)  # quarter period of the LC ring = rise time
        rise = tm < width
        e = np.empty_like(tm)
        e[rise] = w * np.cos(w * tm[rise])  # dI/dt of I = sin(w t)
        e[~rise] = -(1.0 / tau_d) * np.exp(-(tm[~rise] - width) / tau_d)  # I = exp(-(t-tr)/tau_d)
        meta = {"reverse_phase_ratio": 2.0 * width / (math.pi * tau_d), "decay_tau_us": tau_d}
    e = e / np.max(np.abs(e))
    return Waveform(name=name, t_s=t_us * 1e-6, e=e, pulse_width_us=float(width), meta=meta)


def from_samples(t_s, e, name: str = "custom", params=None) -> Waveform:
    """Waveform from user samples: resampled by linear interpolation to the parameter-file
    grid (step shortened so that whole samples span the samples' duration) and normalised to
    peak |E| = 1.

    Parameters
    ----------
    t_s : array_like
        Sample times in seconds, strictly increasing; at most
        :data:`~cortexsim.coupling.limits.MAX_USER_SAMPLES` of them, spanning a duration within
        ``[limits] custom_duration_us`` of ``models/coupling.toml``.
    e : array_like
        The field at those times (any unit, finite, not all zero).
    name : str
        Name of the waveform.
    params : ParamTree or dict, optional
        Coupling parameters (default ``models/coupling.toml``).

    Returns
    -------
    Waveform
        Its ``pulse_width_us`` is the duration of the samples.
    """
    n_t, n_e = np.size(t_s), np.size(e)
    check_count("t_s", n_t, MAX_USER_SAMPLES, "samples")
    check_count("e", n_e, MAX_USER_SAMPLES, "samples")
    try:
        t = np.asarray(t_s, dtype=float).ravel()
        y = np.asarray(e, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InputError("t_s", "times and field samples must be numbers") from None
    if t.size < 2 or t.size != y.size:
        raise InputError(
            "t_s", f"need >= 2 times and as many field samples (got {t.size}, {y.size})"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise InputError("e", "samples must be finite numbers (no NaN/inf)")
    if np.any(np.diff(t) <= 0):
        raise InputError("t_s", "times must be strictly increasing")
    peak = np.max(np.abs(y))
    if peak == 0:
        raise InputError("e", "all samples are zero")
    p = params_or_default(params)
    span = t[-1] - t[0]
    check_limit("custom_duration_us", span * 1e6, p, field="t_s (duration, us)")
    dt_us = float(checked_param(p, "waveforms.dt_us", positive=True))
    n = max(math.ceil(span / (dt_us * 1e-6) - 1e-9), 2)
    check_count("t_s", n, MAX_RESPONSE_SAMPLES, f"samples of a {dt_us:g} us step")
    dt = span / n  # whole samples spanning exactly the samples' duration
    mid = t[0] + (np.arange(n) + 0.5) * dt
    yy = np.interp(mid, t, y)
    if np.max(np.abs(yy)) == 0:
        raise InputError("e", "resampled samples are all zero")
    yy = yy / np.max(np.abs(yy))
    return Waveform(
        name=name, t_s=np.arange(n) * dt, e=yy, pulse_width_us=float((t[-1] - t[0]) * 1e6)
    )
