"""Membrane response of each cell type to a TMS pulse: thresholds, recruitment, polarisation.

Reduced model (derivation in docs/coupling.md).  TMS fires cortical neurons at axon terminals
(Aberra et al. 2018 J Neural Eng; 2020 Brain Stimul).  A terminal is a straight passive cable
(length constant lambda, time constant tau) with sealed ends in a uniform field whose
component along the fibre is E(t) cos(phi).  In a uniform field the activating function
vanishes inside the fibre; the field enters only at the sealed ends (dV/dx = E cos(phi)).
For a semi-infinite cable the end potential in Laplace space is
``V(s) = lambda E(s) cos(phi) / sqrt(1 + s tau)``, i.e. ``V_end = lambda cos(phi) (h * E)(t)``
with ``h(t) = exp(-t/tau) / sqrt(pi t tau)`` (step response ``erf(sqrt(t/tau))``).  A finite
cable of length L sealed at both ends has ``lambda tanh(k L / 2 lambda) / k`` with
``k = sqrt(1 + s tau)``; expanding tanh gives the method-of-images kernel
``h_L(t) = h(t) [1 + 2 sum_n (-1)^n exp(-n^2 L^2 tau / (4 lambda^2 t))]`` whose step response
is closed-form (erf/erfc, :func:`step_response`).  Its DC limit is ``tanh(L / 2 lambda)``;
``response.finite_length_model = "tanh"`` uses that approximation instead.

A terminal fires when its peak depolarisation reaches ``dV_th``:
``E_th = dV_th / (lambda * g)``, ``g = c p+`` for ``c = cos(phi) > 0`` and ``|c| p-`` for
``c < 0`` where ``p+ = max r(t)``, ``p- = max(-r(t))`` of the normalised response ``r``:
both field polarities count (terminals point both ways).  A population has terminal
directions spread around the somato-dendritic axis (polar angle ~ truncated normal, azimuth
uniform), lambda lognormal, and each cell fires when the first of its ``n_terminals``
independent terminals fires:  ``P_cell(E) = 1 - (1 - P_term(E))^n``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, signal, special, stats

from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, _shipped, load_model
from .limits import (
    FIELD_CHUNK,
    MAX_RECRUITMENT_EVALS,
    MAX_RESPONSE_SAMPLES,
    MAX_TERMINAL_DRAWS,
    check_count,
    check_in_range,
    default_params,
    finite_nonneg_array,
    param_range,
    params_or_default,
)
from .limits import (
    angle_deg as _check_angle,
)
from .waveforms import WAVEFORMS, Waveform, _pv, get_waveform


_MV_PER_UM_PER_VPM = 1e-3  # 1 V/m = 1e-3 mV/um
#: up to this many multiply-adds the pulse response is a direct convolution (every default
#: pulse), beyond it an FFT convolution (same result to ~1e-15 of its peak, far faster)
_DIRECT_CONVOLVE_MAX = 20_000_000


# --------------------------------------------------------------------------- parameters
_params = params_or_default


def _default_params() -> ParamTree:
    return default_params()


def cell_types(params=None) -> tuple[str, ...]:
    """Cell types with a coupling model: the tables ``[cells.<name>]`` of the coupling file.

    Parameters
    ----------
    params : ParamTree or dict, optional
        Coupling parameters (default: the active ``models/coupling.toml``, which a user's model
        folder may extend by a ``[cells.VIP]`` table).

    Returns
    -------
    tuple of str
        In file order; for the shipped file the five populations and ``"afferent"`` (long-range
        afferent terminals).
    """
    node = _params(params).get("cells", {})
    return (
        tuple(k for k, v in node.items() if isinstance(v, dict)) if isinstance(node, dict) else ()
    )


def check_cell_type(cell_type: str, params=None) -> str:
    """``cell_type`` if the coupling parameters declare it (:func:`cell_types`).

    Parameters
    ----------
    cell_type : str
        Name of a ``[cells.<name>]`` table.
    params : ParamTree or dict, optional
        Coupling parameters (default: the active ``models/coupling.toml``).

    Returns
    -------
    str
        ``cell_type``.

    Raises
    ------
    InputError
        Unknown name (field ``cell_type``; the message lists the declared ones).
    """
    return check_choice("cell_type", cell_type, cell_types(params))


def cell_params(cell_type: str, params=None) -> dict:
    """Numbers of one cell type's coupling model (plain dict of floats).

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`cell_types` of ``params``).
    params : ParamTree or dict, optional
        Coupling parameters (default ``models/coupling.toml``).

    Returns
    -------
    dict
        ``lambda_um``, ``tau_us``, ``length_um``, ``dV_th_mV``, ``axon_angle_mean_deg``,
        ``axon_angle_sd_deg``, ``isotropic_fraction``, ``lambda_sd_ln``, ``n_terminals`` (int),
        ``soma_sensitivity_mV_per_Vpm``, ``tau_m_ms``.

    Raises
    ------
    InputError
        Unknown cell type, or a value missing, non-numeric or out of its range.
    """
    p = _params(params)
    check_cell_type(cell_type, p)
    keys = (
        "lambda_um",
        "tau_us",
        "length_um",
        "dV_th_mV",
        "axon_angle_mean_deg",
        "axon_angle_sd_deg",
        "isotropic_fraction",
        "lambda_sd_ln",
        "n_terminals",
        "soma_sensitivity_mV_per_Vpm",
        "tau_m_ms",
    )
    out = {
        k: float(check_number(f"cells.{cell_type}.{k}", _pv(p, f"cells.{cell_type}.{k}")))
        for k in keys
    }
    for k in ("lambda_um", "tau_us", "length_um", "dV_th_mV", "tau_m_ms"):
        check_number(f"cells.{cell_type}.{k}", out[k], min=0.0, strict_min=True)
    for k in ("axon_angle_sd_deg", "lambda_sd_ln", "soma_sensitivity_mV_per_Vpm"):
        check_number(f"cells.{cell_type}.{k}", out[k], min=0.0)
    check_number(
        f"cells.{cell_type}.isotropic_fraction", out["isotropic_fraction"], min=0.0, max=1.0
    )
    out["n_terminals"] = check_number(
        f"cells.{cell_type}.n_terminals", out["n_terminals"], min=1, integer=True
    )
    for k in keys:  # ranges stated in the model file
        rng = param_range(p, f"cells.{cell_type}.{k}")
        if rng is not None:
            check_in_range(f"cells.{cell_type}.{k}", out[k], *rng)
    return out


def _setting(p, path: str, default, **check):
    """A model setting (``default`` where the parameters lack it); with ``check`` keywords
    (those of :func:`check_number`) it must be such a number, else :class:`InputError`."""
    try:
        value = _pv(p, path)
        rng = param_range(p, path)
    except InputError:
        value, rng = default, None
    if rng is not None:
        return check_in_range(path, value, *rng, integer=check.get("integer", False))
    return check_number(path, value, **check) if check else value


# --------------------------------------------------------------------------- kernel
def _image_term(a: float, s: np.ndarray) -> np.ndarray:
    """J(a, s) = int_0^s exp(-v - a^2/v) / sqrt(pi v) dv  (closed form, overflow-safe)."""
    out = np.zeros_like(s)
    pos = s > 0
    sp = s[pos]
    rs = np.sqrt(sp)
    y = a / rs - rs
    x = a / rs + rs
    damp = np.exp(-(a * a / sp + sp))
    t2 = special.erfcx(x) * damp  # e^{2a} erfc(x)
    t1 = np.where(
        y >= 0,
        special.erfcx(np.maximum(y, 0)) * damp,
        math.exp(-2 * a) * special.erfc(np.minimum(y, 0)),
    )  # e^{-2a} erfc(y)
    out[pos] = 0.5 * (t1 - t2)
    return out


def step_response(s, length_ratio: float | None, model: str = "images") -> np.ndarray:
    """End potential of a sealed cable for a unit step of field, in units of ``lambda*E``.

    ``s`` = t / tau (array), ``length_ratio`` = L / lambda (None or inf: semi-infinite).

    Parameters
    ----------
    s : array_like
        Time in units of tau (>= 0).
    length_ratio : float or None
        L / lambda.
    model : str
        ``"images"`` (exact, method of images) or ``"tanh"`` (DC-scaled approximation).

    Returns
    -------
    ndarray
        Same shape as ``s``.

    Raises
    ------
    InputError
        Unknown ``model`` (field ``response.finite_length_model``).
    """
    s = np.asarray(s, dtype=float)
    base = special.erf(np.sqrt(np.maximum(s, 0.0)))
    if length_ratio is None or not math.isfinite(length_ratio):
        return base
    ell = 0.5 * length_ratio
    if model == "tanh":
        return base * math.tanh(ell)
    if model != "images":
        raise InputError(
            "response.finite_length_model", f"unknown value {model!r}", ["images", "tanh"]
        )
    out = base.copy()
    # terms fall like exp(-2 n ell) at long times and exp(-n^2 ell^2 / s) at short times
    n_max = int(min(400, max(4, math.ceil(20.0 / max(ell, 1e-6)))))
    for n in range(1, n_max + 1):
        term = _image_term(n * ell, s)
        out += 2.0 * (-1) ** n * term
        if np.max(np.abs(term)) < 1e-13:
            break
    return out


def terminal_response(
    waveform: Waveform,
    tau_us: float,
    length_ratio: float | None,
    tail_us: float = 1000.0,
    model: str = "images",
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised terminal response r(t) = V_end / (lambda * E_peak) to a waveform.

    Exact for the zero-order-hold waveform: r[n] = sum_k e[k] (S(t_n - t_k) - S(t_n - t_k - dt)).
    Returns (t_s at interval boundaries, r).

    Parameters
    ----------
    waveform : Waveform
        Normalised pulse (>= 2 samples).
    tau_us : float
        Terminal membrane time constant (us, > 0).
    length_ratio : float or None
        L / lambda (None: semi-infinite).
    tail_us : float
        Time followed after the pulse (us).
    model : str
        Finite-length model (:func:`step_response`).

    Returns
    -------
    t_s : ndarray (n + 1,)
        Time (s).
    r : ndarray (n + 1,)
        Normalised end potential (dimensionless).

    Raises
    ------
    InputError
        Bad time step or constants, or more samples than
        :data:`~cortexsim.coupling.limits.MAX_RESPONSE_SAMPLES`.
    """
    dt = waveform.dt_s
    if not (math.isfinite(dt) and dt > 0):
        raise InputError("waveform", "needs >= 2 samples on a positive time step")
    tail_us = check_number("response.tail_us", tail_us, min=0.0)
    n_tail = math.ceil(tail_us * 1e-6 / dt)
    n = len(waveform.e) + n_tail
    check_count(
        "response.tail_us",
        n,
        MAX_RESPONSE_SAMPLES,
        f"samples (pulse and response tail) of a {dt * 1e6:g} us step",
    )
    tau = check_number("tau_us", tau_us, min=0.0, strict_min=True) * 1e-6
    s = np.arange(n + 1) * dt / tau
    S = step_response(s, length_ratio, model)
    w = np.diff(S)  # w[j] = S((j+1)dt) - S(j dt)
    e = np.concatenate([waveform.e, np.zeros(n_tail)])
    r = np.zeros(n + 1)
    if len(e) * len(w) <= _DIRECT_CONVOLVE_MAX:
        r[1:] = np.convolve(e, w)[:n]
    else:  # long pulses on a fine grid: O(n log n) instead of O(n^2)
        r[1:] = signal.fftconvolve(e, w)[:n]
    return np.arange(n + 1) * dt, r


def _resolve_waveform(waveform, pulse_width_us, params) -> Waveform:
    if isinstance(waveform, Waveform):
        if pulse_width_us is not None:
            raise InputError("pulse_width_us", "give a width only with a waveform name")
        return waveform
    return get_waveform(waveform, pulse_width_us, params=params)


def spike_filter(r: np.ndarray, dt_s: float, tau_na_us: float) -> np.ndarray:
    """Sodium-activation filter of the terminal depolarisation: u' = (V_end - u) / tau_na.

    Spike initiation needs the Na activation gate to follow the depolarisation; modelled as a
    first-order filter with the activation time constant (unit DC gain), integrated exactly
    for V piecewise linear between samples; ``r[0]`` must be 0 (rest before the pulse).
    ``tau_na_us = 0`` returns ``r`` unchanged (instantaneous voltage threshold).

    Parameters
    ----------
    r : ndarray (n,)
        Terminal depolarisation samples.
    dt_s : float
        Sample interval (s).
    tau_na_us : float
        Na activation time constant (us, >= 0).

    Returns
    -------
    ndarray (n,)
        Filtered depolarisation (same units as ``r``).
    """
    if tau_na_us <= 0:
        return r
    a = math.exp(-dt_s / (tau_na_us * 1e-6))
    b = tau_na_us * 1e-6 / dt_s
    c1 = 1.0 - (1.0 - a) * b
    c0 = (1.0 - a) * b - a
    return signal.lfilter([c1, c0], [1.0, -a], r)


@functools.lru_cache(maxsize=256)
def _peaks(
    wf: Waveform, tau_us: float, length_ratio: float | None, tail: float, model: str, tau_na: float
) -> tuple[float, float]:
    """(p+, p-) of :func:`response_peaks` (waveforms compare and hash by their samples)."""
    _, r = terminal_response(wf, tau_us, length_ratio, tail, model)
    u = spike_filter(r, wf.dt_s, tau_na)
    return float(max(u.max(), 0.0)), float(max(-u.min(), 0.0))


def response_peaks(
    waveform, tau_us: float, length_ratio: float | None, params=None, pulse_width_us=None
) -> tuple[float, float]:
    """(p+, p-): peak of the Na-filtered terminal depolarisation per unit ``lambda*E`` for the
    field along / against the fibre.

    Parameters
    ----------
    waveform : str or Waveform
        Pulse shape.
    tau_us : float
        Terminal membrane time constant (us).
    length_ratio : float or None
        L / lambda.
    params : ParamTree or dict, optional
        Coupling parameters (``[response]`` settings).
    pulse_width_us : float, optional
        Width (us) for a waveform name.

    Returns
    -------
    p_plus, p_minus : float
        Peaks (>= 0, dimensionless).

    Raises
    ------
    InputError
        Unknown waveform, a width or setting out of range.
    """
    p = _params(params)
    wf = _resolve_waveform(waveform, pulse_width_us, p)
    tail = float(_setting(p, "response.tail_us", 1000.0, min=0.0))
    model = str(_setting(p, "response.finite_length_model", "images"))
    tau_na = float(_setting(p, "response.tau_na_us", 0.0, min=0.0))
    return _peaks(
        wf,
        float(tau_us),
        None if length_ratio is None else float(length_ratio),
        tail,
        model,
        tau_na,
    )


# --------------------------------------------------------------------------- populations
def _orientation_quadrature(cp: dict, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (alpha, beta) and weights of the terminal-direction distribution."""
    p = _params(params)
    n_a = _setting(p, "response.quadrature_polar", 96, min=1, integer=True)
    n_b = _setting(p, "response.quadrature_azimuth", 48, min=1, integer=True)
    mu = math.radians(cp["axon_angle_mean_deg"])
    sd = math.radians(cp["axon_angle_sd_deg"])
    x, wx = np.polynomial.legendre.leggauss(n_a)
    alpha = 0.5 * math.pi * (x + 1.0)
    f_iso = cp["isotropic_fraction"]
    if sd == 0:
        # the directed terminals on one node (mu), the isotropic ones on the Legendre nodes
        w_iso = wx * np.sin(alpha)
        alpha = np.concatenate([[mu], alpha])
        wa = np.concatenate([[1.0 - f_iso], f_iso * w_iso / w_iso.sum()])
    else:
        w_dir = wx * np.exp(-0.5 * ((alpha - mu) / sd) ** 2)
        w_iso = wx * np.sin(alpha)  # uniform on the sphere: density sin(alpha) / 2
        wa = (1.0 - f_iso) * w_dir / w_dir.sum() + f_iso * w_iso / w_iso.sum()
    beta = (np.arange(n_b) + 0.5) * math.pi / n_b
    wb = np.full(n_b, 1.0 / n_b)
    A, B = np.meshgrid(alpha, beta, indexing="ij")
    W = np.outer(wa, wb)
    return A.ravel(), B.ravel(), W.ravel()


def _direction_cosine(alpha, beta, theta):
    return np.cos(theta) * np.cos(alpha) + np.sin(theta) * np.sin(alpha) * np.cos(beta)


def _coupling_gain(c, p_plus, p_minus):
    """Peak depolarisation per lambda*E of a terminal with direction cosine c."""
    return np.where(c > 0, c * p_plus, -c * p_minus)


def _terminal_median_thresholds(cell_type, waveform, angle_deg, pulse_width_us, params):
    """Per-quadrature-node median thresholds (V/m) and weights, plus the cell parameters."""
    p = _params(params)
    cp = cell_params(cell_type, p)
    wf = _resolve_waveform(waveform, pulse_width_us, p)
    ratio = cp["length_um"] / cp["lambda_um"]
    pp, pm = response_peaks(wf, cp["tau_us"], ratio, p)
    a, b, w = _orientation_quadrature(cp, p)
    g = _coupling_gain(_direction_cosine(a, b, math.radians(angle_deg)), pp, pm)
    with np.errstate(divide="ignore"):
        t0 = np.where(g > 0, cp["dV_th_mV"] / (cp["lambda_um"] * _MV_PER_UM_PER_VPM * g), np.inf)
    return t0, w, cp, wf


def _check_field(field_vpm):
    return np.asarray(finite_nonneg_array("field_vpm", field_vpm, "field_vpm"), dtype=float)


def recruitment(
    cell_type: str,
    field_vpm,
    waveform="biphasic",
    angle_deg: float = 0.0,
    pulse_width_us=None,
    params=None,
):
    """Fraction of the ``cell_type`` population fired by a pulse of peak cell-level field
    ``field_vpm`` (V/m; scalar or array), given its spread of terminal orientations and
    morphologies.  Monotone from 0 to 1.

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`cell_types` of ``params``).
    field_vpm : float or array_like
        Peak cell-level field (V/m, >= 0).
    waveform : str or Waveform
        Pulse shape.
    angle_deg : float
        Field direction re the somato-dendritic axis (deg).
    pulse_width_us : float, optional
        Width (us) for a waveform name.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float or ndarray
        Fraction fired, same shape as ``field_vpm``.

    Raises
    ------
    InputError
        Unknown cell type or waveform, a value out of its limits, or too many evaluations.
    """
    check_cell_type(cell_type, params)
    angle = _check_angle(angle_deg)
    E = _check_field(field_vpm)
    t0, w, cp, _ = _terminal_median_thresholds(cell_type, waveform, angle, pulse_width_us, params)
    # evaluated once per distinct field (a pulse train repeats a few intensities)
    u, inv = np.unique(E, return_inverse=True)
    check_count(
        "field_vpm",
        u.size * int(np.isfinite(t0).sum()),
        MAX_RECRUITMENT_EVALS,
        "evaluations (distinct field values x orientation-quadrature nodes)",
    )
    frac = _recruit_from_nodes(u, t0, w, cp)[inv].reshape(E.shape)
    return float(frac) if np.ndim(field_vpm) == 0 else frac


def _recruit_from_nodes(E, t0, w, cp):
    Ef = np.atleast_1d(E).astype(float)
    sig = cp["lambda_sd_ln"]
    finite = np.isfinite(t0)
    lt = np.log(t0[finite])
    wf = w[finite]
    p_term = np.empty(Ef.size)
    for i in range(0, Ef.size, FIELD_CHUNK):  # bounded memory: chunk x quadrature nodes
        with np.errstate(divide="ignore"):
            lE = np.log(Ef.ravel()[i : i + FIELD_CHUNK])[:, None]
        if sig > 0:
            P = special.ndtr((lE - lt[None, :]) / sig)
        else:
            P = (lE >= lt[None, :]).astype(float)
        p_term[i : i + FIELD_CHUNK] = P @ wf
    p_cell = -np.expm1(cp["n_terminals"] * np.log1p(-np.clip(p_term, 0.0, 1.0)))
    p_cell = np.clip(p_cell, 0.0, 1.0)
    return p_cell.reshape(np.shape(E))


def threshold_vpm(
    cell_type: str, waveform="biphasic", angle_deg: float = 0.0, pulse_width_us=None, params=None
) -> float:
    """Cell-level field (V/m) that fires half of the ``cell_type`` population (the median
    per-cell threshold) for this waveform and field direction (relative to the
    somato-dendritic axis).

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`cell_types` of ``params``).
    waveform : str or Waveform
        Pulse shape.
    angle_deg : float
        Field direction (deg).
    pulse_width_us : float, optional
        Width (us) for a waveform name.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float
        Median threshold (V/m; inf where no field fires half of the population).

    Raises
    ------
    InputError
        Unknown cell type or waveform, or a value out of its limits.
    """
    check_cell_type(cell_type, params)
    angle = _check_angle(angle_deg)
    t0, w, cp, _ = _terminal_median_thresholds(cell_type, waveform, angle, pulse_width_us, params)
    if not np.any(np.isfinite(t0)):
        return math.inf

    def f(logE):
        return float(_recruit_from_nodes(np.array(math.exp(logE)), t0, w, cp)) - 0.5

    lo = float(np.log(np.min(t0[np.isfinite(t0)]))) - 8 * cp["lambda_sd_ln"] - 1.0
    hi = lo + 2.0
    while f(hi) < 0:
        hi += 2.0
        if hi > lo + 60:
            return math.inf
    return float(math.exp(optimize.brentq(f, lo, hi, xtol=1e-10)))


def sample_thresholds(
    cell_type: str,
    n: int,
    rng: np.random.Generator,
    waveform="biphasic",
    angle_deg: float = 0.0,
    pulse_width_us=None,
    params=None,
) -> np.ndarray:
    """Per-cell thresholds (V/m) of ``n`` cells drawn from the population model (terminal
    directions, lambda spread, n_terminals per cell); ``np.mean(samples <= E)`` converges to
    ``recruitment(E)``.  Cells with no terminal able to fire get ``inf``.

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`cell_types` of ``params``).
    n : int
        Number of cells.
    rng : numpy.random.Generator
        Source of the draws.
    waveform : str or Waveform
        Pulse shape.
    angle_deg : float
        Field direction (deg).
    pulse_width_us : float, optional
        Width (us) for a waveform name.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    ndarray (n,)
        Thresholds (V/m).

    Raises
    ------
    InputError
        Unknown cell type, bad ``n`` or ``rng``, a value out of its limits, or more than
        :data:`~cortexsim.coupling.limits.MAX_TERMINAL_DRAWS` terminal draws.
    """
    check_cell_type(cell_type, params)
    n = check_number("n", n, min=0, integer=True)
    if not isinstance(rng, np.random.Generator):
        raise InputError("rng", "pass a numpy Generator (np.random.default_rng(seed))")
    angle = _check_angle(angle_deg)
    p = _params(params)
    cp = cell_params(cell_type, p)
    m = cp["n_terminals"]
    check_count("n", n * m, MAX_TERMINAL_DRAWS, f"terminal draws ({n:,} cells x {m} terminals)")
    wf = _resolve_waveform(waveform, pulse_width_us, p)
    pp, pm = response_peaks(wf, cp["tau_us"], cp["length_um"] / cp["lambda_um"], p)
    mu, sd = math.radians(cp["axon_angle_mean_deg"]), math.radians(cp["axon_angle_sd_deg"])
    if sd > 0:
        alpha = stats.truncnorm.rvs(
            (0 - mu) / sd, (math.pi - mu) / sd, loc=mu, scale=sd, size=(n, m), random_state=rng
        )
    else:
        alpha = np.full((n, m), mu)
    beta = rng.uniform(0.0, 2 * math.pi, size=(n, m))
    lam = cp["lambda_um"] * np.exp(cp["lambda_sd_ln"] * rng.standard_normal((n, m)))
    if cp["isotropic_fraction"] > 0:
        # collateral terminals: direction uniform on the sphere (cos alpha uniform in [-1, 1])
        iso = rng.random((n, m)) < cp["isotropic_fraction"]
        alpha = np.where(iso, np.arccos(rng.uniform(-1.0, 1.0, size=(n, m))), alpha)
    g = _coupling_gain(_direction_cosine(alpha, beta, math.radians(angle)), pp, pm)
    with np.errstate(divide="ignore"):
        th = np.where(g > 0, cp["dV_th_mV"] / (lam * _MV_PER_UM_PER_VPM * g), np.inf)
    return th.min(axis=1)


def somatic_polarization_mV(
    cell_type: str,
    field_vpm,
    waveform="biphasic",
    angle_deg: float = 0.0,
    pulse_width_us=None,
    params=None,
):
    """Peak subthreshold somatic polarisation (mV, signed: + depolarising) during the pulse.

    Steady-state sensitivity G (Radman et al. 2009; mV per V/m along the somato-dendritic
    axis) times cos(angle) times the pulse filtered by the somatic membrane
    (first order, tau_m, unit DC gain).  A biphasic pulse nets ~0 because its integral is 0.
    Returns a float for scalar ``field_vpm``, an array otherwise.

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`cell_types` of ``params``).
    field_vpm : float or array_like
        Peak cell-level field (V/m, >= 0).
    waveform : str or Waveform
        Pulse shape.
    angle_deg : float
        Field direction (deg).
    pulse_width_us : float, optional
        Width (us) for a waveform name.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float or ndarray
        Polarisation (mV), same shape as ``field_vpm``.

    Raises
    ------
    InputError
        Unknown cell type or waveform, or a value out of its limits.
    """
    check_cell_type(cell_type, params)
    angle = _check_angle(angle_deg)
    E = _check_field(field_vpm)
    p = _params(params)
    cp = cell_params(cell_type, p)
    wf = _resolve_waveform(waveform, pulse_width_us, p)
    a = math.exp(-wf.dt_s / (cp["tau_m_ms"] * 1e-3))
    # exact update for zero-order-hold input: v[k+1] = a v[k] + (1 - a) e[k]
    v = signal.lfilter([0.0, 1.0 - a], [1.0, -a], np.concatenate([wf.e, [0.0]]))
    k = int(np.argmax(np.abs(v)))
    peak = float(v[k])
    out = cp["soma_sensitivity_mV_per_Vpm"] * math.cos(math.radians(angle)) * peak * E
    return float(out) if np.ndim(field_vpm) == 0 else out


def threshold_report(
    cell_type: str,
    waveform: str = "biphasic",
    angle_deg: float = 0.0,
    pulse_width_us=None,
    params=None,
) -> dict:
    """Dict for ``cortexsim threshold``.

    Parameters
    ----------
    cell_type : str
        A declared coupling cell type (:func:`cell_types` of ``params``).
    waveform : str
        One of :data:`~cortexsim.coupling.WAVEFORMS`.
    angle_deg : float
        Field direction relative to the somato-dendritic axis, within ``[limits] angle_deg``.
    pulse_width_us : float, optional
        Within the range of the waveform's width parameter (``None``: its default).
    params : ParamTree or dict, optional
        Coupling parameters (default ``models/coupling.toml``).

    Returns
    -------
    dict
        ``cell_type``, ``waveform``, ``pulse_width_us``, ``angle_deg`` and ``threshold_vpm``
        (cell-level field, V/m; ``None`` where no field fires half of the population, which
        needs a cell type without collateral terminals, ``isotropic_fraction = 0``, and a
        unipolar pulse against its main axon; strict JSON has no Infinity).

    Raises
    ------
    InputError
        Any input unknown or out of its range, before anything is computed.
    """
    check_cell_type(cell_type, params)
    check_choice("waveform", waveform, WAVEFORMS)
    p = _params(params)
    angle = _check_angle(angle_deg, p)
    wf = get_waveform(waveform, pulse_width_us, params=p)
    th = threshold_vpm(cell_type, wf, angle_deg=angle, params=p)
    return {
        "cell_type": cell_type,
        "waveform": waveform,
        "pulse_width_us": wf.pulse_width_us,
        "angle_deg": angle,
        "threshold_vpm": th if math.isfinite(th) else None,
    }


#: Cell types of the shipped coupling model (``models/coupling.toml`` of the package, whatever
#: ``CORTEXSIM_MODELS`` says); code that checks a name asks :func:`cell_types` of its parameters.
CELL_TYPES: tuple[str, ...] = cell_types(load_model(_shipped("models") / "coupling.toml"))
