"""Calcium-based synaptic plasticity (Graupner & Brunel 2012 PNAS 109:3991), event-driven.

Model (parameters in ``models/synaptic.toml``, "cortical slices" set fit to Sjostrom et al. 2001)::

    dc/dt       = -c/tau_ca + c_pre sum_i delta(t - t_pre_i - D) + c_post sum_j delta(t - t_post_j)
    tau drho/dt = -rho(1-rho)(rho_star-rho) + gamma_p (1-rho) H(c-theta_p) - gamma_d rho H(c-theta_d)
                  + sigma sqrt(tau) sqrt(H(c-theta_d) + H(c-theta_p)) eta(t)

Note that ``tau`` multiplies every term: the drift rates are ``gamma/tau`` (~1-2 per second).

Event-driven scheme (what :func:`synapse_model` gives Brian2 and :func:`event_driven_rho` runs in
numpy): between two calcium events ``c`` decays as ``c0 exp(-s/tau_ca)``, so it stays above a
threshold ``theta`` for ``min(Dt, tau_ca ln(c0/theta))``.  During that time rho follows a linear
ODE (an Ornstein-Uhlenbeck process when noise is on) that is integrated exactly:

* above theta_p:  rho -> rho_bar + (rho - rho_bar) exp(-(gamma_p+gamma_d) s/tau),
  rho_bar = gamma_p/(gamma_p+gamma_d);
* between theta_d and theta_p:  rho -> rho exp(-gamma_d s/tau);

then the slow cubic term is applied over the whole interval Dt: exactly for rho_star = 0.5
(``u = (rho-1/2)^2`` obeys a logistic equation) and by ``cubic_substeps`` RK4 substeps otherwise.
The splitting error is O(t_above * Dt * gamma/tau^2), ~1e-6 per event here.  The time spent above
each threshold is accumulated per synapse (``t_above_p``, ``t_above_d``) together with spike counts
for the structural model.  :func:`simulate_pair_protocol` integrates the original ODEs with a small
clock-driven step (numba) as ground truth.

Sliding thresholds (off by default): both thresholds of a synapse are multiplied by its
postsynaptic cell's slow scale (:func:`bcm_theta_scale`, rates at read-outs) and/or its fast
scale (:func:`fast_theta_scale`: a spike trace of the cell over ``fast_metaplasticity.tau``,
~7 s, relative to rest; Kadak et al. 2025), read at each calcium event and applied to the
interval that ends there.

Readout: ``mode = "linear"`` gives ``w = on * (w_down + rho (w_up - w_down))``, ``"two_state"`` gives
GB's readout ``w_down`` / ``w_up = b w_down`` by ``rho`` vs ``rho_star``.  :func:`gb_synaptic_change`
is GB's population readout (transition probabilities of the noisy rho, fraction ``beta`` initially
DOWN, strength ratio ``b``), used for the reproduction of GB 2012 Fig. 4B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit

from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, dotted_items, load_model

__all__ = [
    "GBParams",
    "get_params",
    "mg_unblock",
    "simulate_pair_protocol",
    "Trajectory",
    "event_driven_rho",
    "EventResult",
    "event_driven_batch",
    "advance",
    "advance_to",
    "TransmissionPathway",
    "SynapseModelParts",
    "synapse_model",
    "set_delays",
    "flush_synapses",
    "initial_rho",
    "pairing_protocol",
    "gb_transition",
    "gb_synaptic_change",
    "frequency_stdp_curves",
    "bcm_theta_scale",
    "sliding_threshold",
    "THETA_SCALE",
    "protocol_strength_change",
    "fast_sliding",
    "effective_calcium",
    "fast_trace",
    "fast_theta_scale",
    "fast_increment",
    "FAST_TRACE",
    "FAST_TIME",
    "FAST_INC",
    "post_theta_scale",
    "fast_cell_code",
]


# --------------------------------------------------------------------------------------------
# parameters
@dataclass(frozen=True)
class GBParams:
    """Parameters in SI-like base units (seconds, mM, volts) derived from ``models/synaptic.toml``.

    Attributes
    ----------
    tau_ca : float
        Calcium decay (s).
    c_pre, c_post : float
        Calcium transient per pre / post spike at the extracellular calcium
        ``extracellular.ca`` (:func:`calcium_factors` applied).
    D : float
        Delay of the presynaptic transient (s).
    theta_d, theta_p : float
        Depression and potentiation thresholds.
    gamma_d, gamma_p : float
        Depression and potentiation rates.
    tau : float
        Time constant of rho (s).
    rho_star : float
        Boundary of the basins of attraction.
    sigma : float
        Noise amplitude.
    beta : float
        Fraction initially DOWN.
    b : float
        UP/DOWN strength ratio.
    w_down : float
        Efficacy of the DOWN state.
    mode : str
        Rule variant.
    nmda : bool
        Presynaptic calcium scaled by the NMDA Mg2+ unblock.
    v_name : str
        Postsynaptic voltage variable.
    mg, mg_k : float
        [Mg2+] and unblock constant (mM).
    mg_slope : float
        Unblock slope (1/mV).
    v_ref : float
        Reference voltage (mV).
    noise : bool
        Noise term on.
    cubic_substeps : int
        Substeps of the cubic term.
    reference_dt : float
        Step of the clock-driven reference (s).
    bcm_exponent : float
        Exponent of the sliding-threshold scale (``metaplasticity.exponent``; 0: none).
    bcm_scale_min, bcm_scale_max : float
        Bounds of the threshold scale (:func:`bcm_theta_scale`).
    fm_exponent : float
        Exponent of the fast sliding threshold (``fast_metaplasticity.exponent``; 0: none).
    fm_tau : float
        Time constant of each cell's spike trace (s, ``fast_metaplasticity.tau``).
    fm_scale_min, fm_scale_max : float
        Bounds of the fast threshold scale (:func:`fast_theta_scale`).
    """

    tau_ca: float  # s
    c_pre: float
    c_post: float
    D: float  # s
    theta_d: float
    theta_p: float
    gamma_d: float
    gamma_p: float
    tau: float  # s
    rho_star: float
    sigma: float
    beta: float
    b: float
    w_down: float
    mode: str
    nmda: bool
    v_name: str
    mg: float  # mM
    mg_k: float  # mM
    mg_slope: float  # 1/mV
    v_ref: float  # mV
    noise: bool
    cubic_substeps: int
    reference_dt: float  # s
    bcm_exponent: float
    bcm_scale_min: float
    bcm_scale_max: float
    fm_exponent: float
    fm_tau: float  # s
    fm_scale_min: float
    fm_scale_max: float

    @property
    def w_up(self) -> float:
        """Weight of the UP state: ``b`` times :attr:`w_down` (Graupner & Brunel 2012)."""
        return self.b * self.w_down


def get_params(params=None) -> GBParams:
    """Parameters from ``models/synaptic.toml``.

    ``params`` may be ``None`` (file defaults), a full :class:`ParamTree` of that file, a
    :class:`GBParams`, or a dict of overrides applied on top of the file, either by dotted path
    (``{"efficacy.gamma_p": 700, "nmda.enabled": True}``) or nested like ``ParamTree.values()``.

    Parameters
    ----------
    params : None, ParamTree, GBParams or dict
        See above.

    Returns
    -------
    GBParams

    Raises
    ------
    InputError
        An unknown path, a value of the wrong type or out of range.
    """
    if isinstance(params, GBParams):
        return params
    if isinstance(params, ParamTree):
        tree = params
    else:
        tree = load_model("synaptic")
        if params is not None:
            if not isinstance(params, dict):
                raise InputError(
                    "params",
                    f"expected None, ParamTree, GBParams or dict, got {type(params).__name__}",
                )
            for path, v in dotted_items(params):
                tree.set(path, v)  # a {value, unit} leaf is converted to the file's unit
    v = tree.value
    mode = check_choice("readout.mode", v("readout.mode"), ["linear", "two_state"])
    pre_f, post_f = calcium_factors(tree)
    p = GBParams(
        tau_ca=check_number(
            "calcium.tau_ca", tree.to("calcium.tau_ca", "s"), min=0, strict_min=True
        ),
        c_pre=check_number("calcium.c_pre", v("calcium.c_pre"), min=0) * pre_f,
        c_post=check_number("calcium.c_post", v("calcium.c_post"), min=0) * post_f,
        D=check_number("calcium.delay_D", tree.to("calcium.delay_D", "s"), min=0),
        theta_d=check_number("efficacy.theta_d", v("efficacy.theta_d"), min=0, strict_min=True),
        theta_p=check_number("efficacy.theta_p", v("efficacy.theta_p"), min=0, strict_min=True),
        gamma_d=check_number("efficacy.gamma_d", v("efficacy.gamma_d"), min=0),
        gamma_p=check_number("efficacy.gamma_p", v("efficacy.gamma_p"), min=0),
        tau=check_number("efficacy.tau", v("efficacy.tau"), min=0, strict_min=True),
        rho_star=check_number("efficacy.rho_star", v("efficacy.rho_star"), min=0, max=1),
        sigma=check_number("efficacy.sigma", v("efficacy.sigma"), min=0),
        beta=check_number("readout.beta", v("readout.beta"), min=0, max=1),
        b=check_number("readout.b", v("readout.b"), min=0),
        w_down=check_number("readout.w_down", v("readout.w_down"), min=0),
        mode=mode,
        nmda=bool(v("nmda.enabled")),
        v_name=str(v("nmda.v_name")),
        mg=check_number("nmda.mg", v("nmda.mg"), min=0),
        mg_k=check_number("nmda.mg_k", v("nmda.mg_k"), min=0, strict_min=True),
        mg_slope=check_number("nmda.mg_slope", v("nmda.mg_slope")),
        v_ref=check_number("nmda.v_ref", v("nmda.v_ref")),
        noise=bool(v("numerics.noise")),
        cubic_substeps=check_number(
            "numerics.cubic_substeps", v("numerics.cubic_substeps"), min=1, integer=True
        ),
        reference_dt=check_number(
            "numerics.reference_dt", tree.to("numerics.reference_dt", "s"), min=0, strict_min=True
        ),
        bcm_exponent=check_number("metaplasticity.exponent", v("metaplasticity.exponent"), min=0),
        bcm_scale_min=check_number(
            "metaplasticity.scale_min", v("metaplasticity.scale_min"), min=0, max=1, strict_min=True
        ),
        bcm_scale_max=check_number(
            "metaplasticity.scale_max", v("metaplasticity.scale_max"), min=1
        ),
        fm_exponent=check_number(
            "fast_metaplasticity.exponent", v("fast_metaplasticity.exponent"), min=0
        ),
        fm_tau=check_number(
            "fast_metaplasticity.tau",
            tree.to("fast_metaplasticity.tau", "s"),
            min=0,
            strict_min=True,
        ),
        fm_scale_min=check_number(
            "fast_metaplasticity.scale_min",
            v("fast_metaplasticity.scale_min"),
            min=0,
            max=1,
            strict_min=True,
        ),
        fm_scale_max=check_number(
            "fast_metaplasticity.scale_max", v("fast_metaplasticity.scale_max"), min=1
        ),
    )
    p = _effective_calcium(tree, p)
    if p.theta_p < p.theta_d:
        raise InputError(
            "efficacy.theta_p",
            "must be >= theta_d (the scheme orders the phases "
            "above theta_p, then between the thresholds)",
        )
    return p


def effective_calcium(params=None) -> bool:
    """Whether the effective-calcium readout is on (``effective_calcium.tau_eff`` > 0 in
    ``models/synaptic.toml``; mechanism ``effective_calcium``).

    Parameters
    ----------
    params : ParamTree, dict or None
        The synaptic model tree or overrides (as :func:`get_params`).

    Returns
    -------
    bool
    """
    tree = params if isinstance(params, ParamTree) else load_model("synaptic")
    if isinstance(params, dict):
        for path, v in dotted_items(params):
            tree.set(path, v)
    return tree.to("effective_calcium.tau_eff", "s") > 0


def _effective_calcium(tree, p: GBParams) -> GBParams:
    """Chindemi et al. 2022's readout of the GB rule (their GluSynapse): rho reads an effective
    calcium that integrates the calcium transients over ``tau_eff`` (~280 ms) instead of the
    fast transient itself, and each threshold is a fixed combination of the synapse's own
    single-event peaks at the fit conditions (``[extracellular] ca_fit``, postsynaptic cell at
    rest): ``theta_d = a_d_pre c_pre_fit + a_d_post c_post_fit``, ``theta_p = a_p_pre c_pre_fit
    + a_p_post c_post_fit``.  In the limit of transients short against ``tau_eff`` (GB's 23 ms
    vs 280 ms) each transient adds its integral to the effective calcium at once, so in units
    of c x tau_ca the readout is GB's event-driven rule with ``tau_ca`` replaced by ``tau_eff``
    and the amplitudes unchanged (the same jump per event; at in vivo [Ca]o the amplitudes
    shrink, the thresholds do not).  ``tau_eff`` = 0: GB's rule, ``p`` returned unchanged.
    """
    tau_eff = check_number(
        "effective_calcium.tau_eff", tree.to("effective_calcium.tau_eff", "s"), min=0
    )
    if tau_eff == 0:
        return p
    v = tree.value
    a = {
        k: check_number(f"effective_calcium.{k}", v(f"effective_calcium.{k}"), min=0)
        for k in ("a_d_pre", "a_d_post", "a_p_pre", "a_p_post")
    }
    c_pre_fit = check_number("calcium.c_pre", v("calcium.c_pre"), min=0)
    c_post_fit = check_number("calcium.c_post", v("calcium.c_post"), min=0)
    theta_d = a["a_d_pre"] * c_pre_fit + a["a_d_post"] * c_post_fit
    theta_p = a["a_p_pre"] * c_pre_fit + a["a_p_post"] * c_post_fit
    if theta_d <= 0:
        raise InputError("effective_calcium", "the depression threshold must be > 0")
    return replace(p, tau_ca=tau_eff, theta_d=theta_d, theta_p=theta_p)


def calcium_factors(tree) -> tuple[float, float]:
    """Factors on ``c_pre`` and ``c_post`` at the extracellular calcium ``extracellular.ca``
    relative to the fit conditions ``extracellular.ca_fit`` (``models/synaptic.toml``).

    ``c_post`` scales as ``ca / ca_fit`` (influx linear in [Ca]o, assumption), ``c_pre`` as
    ``ca / ca_fit * H(ca) / H(ca_fit)`` with the release-probability Hill function
    ``H(x) = x**n / (x**n + k_half**n)`` (Dodge & Rahamimoff 1967; Markram et al. 2015).

    Parameters
    ----------
    tree : ParamTree
        The synaptic model tree (``models/synaptic.toml`` with overrides).

    Returns
    -------
    (float, float)
        Factor on ``c_pre``, factor on ``c_post`` (both 1 at ``ca == ca_fit``).
    """
    ca, fit = tree.to("extracellular.ca", "mM"), tree.to("extracellular.ca_fit", "mM")
    n, k = tree.value("extracellular.release_hill_n"), tree.to("extracellular.release_k_half", "mM")

    def hill(x):
        return x**n / (x**n + k**n)

    return ca / fit * hill(ca) / hill(fit), ca / fit


def mg_unblock(v_mV, p: GBParams | None = None):
    """Jahr & Stevens 1990 Mg2+ unblock B(v) = 1/(1 + [Mg]/mg_k exp(-mg_slope v)).

    Parameters
    ----------
    v_mV : float or ndarray
        Membrane potential (mV).
    p : GBParams, optional
        Constants (default: the file's).

    Returns
    -------
    float or ndarray
        B in (0, 1], same shape.
    """
    p = p or get_params()
    return 1.0 / (1.0 + p.mg / p.mg_k * np.exp(-p.mg_slope * np.asarray(v_mV, dtype=float)))


def _exact_cubic(p: GBParams) -> bool:
    return abs(p.rho_star - 0.5) < 1e-12


# --------------------------------------------------------------------------------------------
# event update (numpy, vectorised over synapses); the Brian2 strings below mirror it line by line
def _cubic(r, Dt, p: GBParams):
    if _exact_cubic(p):
        x = r - 0.5
        u = x * x
        u = 0.25 * u / (u + (0.25 - u) * np.exp(-Dt / (2.0 * p.tau)))
        return 0.5 + np.sign(x) * np.sqrt(u)
    h = Dt / p.cubic_substeps

    def f(y):
        return y * (1.0 - y) * (y - p.rho_star) / p.tau

    for _ in range(p.cubic_substeps):
        k1 = f(r)
        k2 = f(r + 0.5 * h * k1)
        k3 = f(r + 0.5 * h * k2)
        k4 = f(r + h * k3)
        r = r + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return r


def advance(c, rho, Dt, p: GBParams, rng: np.random.Generator | None = None, theta_scale=None):
    """Advance (c, rho) over an interval ``Dt`` (s) without events.

    Returns ``(c_new, rho_new, t_above_p, t_above_d)``; arrays broadcast.  Noise is applied when
    ``p.noise`` is true (``rng`` required).  ``theta_scale`` multiplies both thresholds (per
    synapse: the sliding threshold of its postsynaptic cell, :func:`bcm_theta_scale`).

    Parameters
    ----------
    c, rho : float or ndarray
        Calcium and efficacy at the start.
    Dt : float or ndarray
        Interval (s).
    p : GBParams
        Rule parameters.
    rng : numpy.random.Generator, optional
        Noise source.
    theta_scale : float or ndarray, optional
        Factor on theta_d and theta_p (default: none, 1).

    Returns
    -------
    c_new, rho_new, t_above_p, t_above_d : ndarray
        Times in s.
    """
    c = np.asarray(c, dtype=float)
    rho = np.asarray(rho, dtype=float)
    Dt = np.asarray(Dt, dtype=float)
    theta_p, theta_d = _thresholds(p, theta_scale)
    with np.errstate(divide="ignore"):
        tp = np.clip(p.tau_ca * np.log(np.clip(c / theta_p, 1.0, None)), 0.0, Dt)
        td = np.clip(p.tau_ca * np.log(np.clip(c / theta_d, 1.0, None)), 0.0, Dt)
    g = p.gamma_p + p.gamma_d
    kp = g / p.tau
    kd = p.gamma_d / p.tau
    rbar = p.gamma_p / g if g > 0 else 0.0
    r = rbar + (rho - rbar) * np.exp(-kp * tp)
    if p.noise:
        if rng is None:
            raise InputError("rng", "noise is on: pass a seeded numpy Generator")
        r = r + np.sqrt(p.sigma**2 / g * (1 - np.exp(-2 * kp * tp))) * rng.standard_normal(r.shape)
    r = r * np.exp(-kd * (td - tp))
    if p.noise and p.gamma_d > 0:
        r = r + np.sqrt(
            p.sigma**2 / (2 * p.gamma_d) * (1 - np.exp(-2 * kd * (td - tp)))
        ) * rng.standard_normal(r.shape)
    r = _cubic(r, Dt, p)
    return c * np.exp(-Dt / p.tau_ca), r, tp, td


def _thresholds(p: GBParams, theta_scale):
    """``(theta_p, theta_d)``, times ``theta_scale`` unless it is None."""
    if theta_scale is None:
        return p.theta_p, p.theta_d
    s = np.asarray(theta_scale, dtype=float)
    return p.theta_p * s, p.theta_d * s


def bcm_theta_scale(rate, rate_ref, params=None) -> np.ndarray:
    """Sliding-threshold factor of each cell (BCM; Bienenstock, Cooper & Munro 1982):
    ``clip((rate / rate_ref) ** exponent, scale_min, scale_max)`` with the constants of
    ``metaplasticity`` in ``models/synaptic.toml``; 1 where ``rate_ref`` is 0 (no reference)
    and everywhere when ``exponent`` is 0 (no metaplasticity).

    Both thresholds of every synapse onto the cell are multiplied by it: a cell whose slow
    activity fell below its reference gets lower thresholds, so the same calcium transients
    potentiate more (Shouval et al. 2002 PNAS; Yeung et al. 2004 PNAS).

    Parameters
    ----------
    rate, rate_ref : array_like (n_cells,)
        Slow-average rate of each cell and its reference (Hz, >= 0, same shape).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.

    Returns
    -------
    ndarray (n_cells,)

    Raises
    ------
    InputError
        Rates of different shapes, negative or not finite.
    """
    p = params if isinstance(params, GBParams) else get_params(params)
    r = np.asarray(rate, dtype=float)
    r0 = np.asarray(rate_ref, dtype=float)
    if r.shape != r0.shape:
        raise InputError("rate", f"needs the shape of rate_ref {r0.shape}, got {r.shape}")
    for name, x in (("rate", r), ("rate_ref", r0)):
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise InputError(name, "rates must be finite and >= 0 (Hz)")
    if p.bcm_exponent == 0:
        return np.ones(r.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip(
            (r / np.where(r0 > 0, r0, 1.0)) ** p.bcm_exponent, p.bcm_scale_min, p.bcm_scale_max
        )
    return np.where(r0 > 0, s, 1.0)


def fast_sliding(p: GBParams) -> bool:
    """Whether the fast sliding threshold is on (``fast_metaplasticity.exponent`` != 0).

    Parameters
    ----------
    p : GBParams
        Rule parameters.

    Returns
    -------
    bool
    """
    return p.fm_exponent != 0


def fast_increment(rate_ref, params=None) -> np.ndarray:
    """Jump of each cell's spike trace at one of its spikes, ``1 / (rate_ref * tau)``, in units
    of the trace's resting value (``fast_metaplasticity`` in ``models/synaptic.toml``); 0 where
    the cell has no reference rate (its thresholds then stay put).

    Parameters
    ----------
    rate_ref : array_like (n_cells,)
        Resting rate of each cell (Hz, >= 0).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.

    Returns
    -------
    ndarray (n_cells,)

    Raises
    ------
    InputError
        Negative or non-finite rates.
    """
    p = params if isinstance(params, GBParams) else get_params(params)
    r = np.asarray(rate_ref, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise InputError("rate_ref", "rates must be finite and >= 0 (Hz)")
    with np.errstate(divide="ignore"):
        return np.where(r > 0, 1.0 / (np.where(r > 0, r, 1.0) * p.fm_tau), 0.0)


def fast_trace(spike_times, t_eval, inc, params=None) -> np.ndarray:
    """A cell's spike trace in units of its resting value at the times ``t_eval`` (s):
    ``x(t) = exp(-t/tau) + inc * sum_{t_k < t} exp(-(t - t_k)/tau)`` (1 at t = 0; spikes at
    ``t`` itself not yet counted, as the synapse code reads it before the cell's reset),
    computed as the network does: updated at each spike, decayed to the read time.

    Parameters
    ----------
    spike_times : array_like
        The cell's spike times (s, sorted).
    t_eval : array_like
        Read times (s).
    inc : float
        Jump per spike (:func:`fast_increment`).
    params : GBParams, ParamTree or dict, optional
        Rule parameters (``fm_tau``).

    Returns
    -------
    ndarray, shaped like ``t_eval``
    """
    p = params if isinstance(params, GBParams) else get_params(params)
    sp = np.sort(np.atleast_1d(np.asarray(spike_times, dtype=float)))
    te = np.asarray(t_eval, dtype=float)
    # state right after each spike (x_k, at t_k), as the cells' reset computes it
    x_after = np.empty(sp.size)
    x, tl = 1.0, 0.0
    for k, tk in enumerate(sp):
        x = x * np.exp(-(tk - tl) / p.fm_tau) + inc
        tl = tk
        x_after[k] = x
    n = np.searchsorted(sp, te, side="left")  # spikes strictly before each read time
    x_last = np.where(n > 0, x_after[np.maximum(n - 1, 0)] if sp.size else 1.0, 1.0)
    t_last = np.where(n > 0, sp[np.maximum(n - 1, 0)] if sp.size else 0.0, 0.0)
    return x_last * np.exp(-(te - t_last) / p.fm_tau)


def fast_theta_scale(x, inc, params=None) -> np.ndarray:
    """Fast sliding-threshold factor from a cell's spike trace ``x`` (:func:`fast_trace`):
    ``clip(x ** exponent, scale_min, scale_max)`` (``fast_metaplasticity``), 1 where the cell has
    no reference (``inc`` = 0) and everywhere when ``exponent`` is 0.

    Parameters
    ----------
    x : array_like
        Trace in units of its resting value.
    inc : array_like
        Jump per spike of the cell (:func:`fast_increment`), broadcast with ``x``.
    params : GBParams, ParamTree or dict, optional
        Rule parameters.

    Returns
    -------
    ndarray
    """
    p = params if isinstance(params, GBParams) else get_params(params)
    x = np.asarray(x, dtype=float)
    if not fast_sliding(p):
        return np.ones(x.shape)
    s = np.clip(x**p.fm_exponent, p.fm_scale_min, p.fm_scale_max)
    return np.where(np.asarray(inc, dtype=float) > 0, s, 1.0)


def post_theta_scale(target, j, t: float, p: GBParams):
    """Factor on both thresholds of each synapse (postsynaptic cells ``j``) at time ``t`` (s)
    from the Brian2 group ``target`` of its postsynaptic cells: the slow scale
    (:data:`THETA_SCALE`) times the fast one (the cells' spike traces decayed to ``t``); None
    when neither is on.

    Parameters
    ----------
    target : brian2.NeuronGroup
        Postsynaptic group (with the variables :func:`synapse_model` reads).
    j : ndarray (n_synapses,)
        Postsynaptic cell of each synapse.
    t : float
        Read time (s).
    p : GBParams
        Rule parameters.

    Returns
    -------
    ndarray (n_synapses,) or None
    """
    if not (sliding_threshold(p) or fast_sliding(p)):
        return None
    s = np.ones(np.asarray(j).size)
    if sliding_threshold(p):
        s = s * np.asarray(getattr(target, THETA_SCALE)[:], float)[j]
    if fast_sliding(p):
        x = np.asarray(getattr(target, FAST_TRACE)[:], float) * np.exp(
            -(t - np.asarray(getattr(target, FAST_TIME + "_")[:], float)) / p.fm_tau
        )
        s = s * fast_theta_scale(x, np.asarray(getattr(target, FAST_INC)[:], float), p)[j]
    return s


def advance_fractions(
    rho, frac_p, frac_d, duration_s, params=None, step_s: float = 1.0, backend: str = "numba"
):
    """Advance rho over ``duration_s`` (s) of a stationary, periodic activity pattern in which
    each synapse's calcium spends a fraction ``frac_p`` (``frac_d``) of the time above theta_p
    (theta_d), e.g. measured in a simulated sample of a protocol.

    This is the mean-field limit GB 2012 (SI) use for long protocols: calcium varies on the
    scale of tau_ca (~23 ms), rho on the scale of tau (~346 s), so over many protocol periods rho
    follows the drift averaged over the period.  The thresholds enter only through the
    fractions: with a sliding threshold (:func:`bcm_theta_scale`) they must be measured with
    the same per-synapse scale, as a session's simulated sample is.  Integrated with the same splitting as
    :func:`advance` (potentiation, depression, then the cubic term) in steps of ``step_s``.
    The noise term is not extrapolated (drift only).

    Parameters
    ----------
    rho : float or ndarray
        Efficacy at the start.
    frac_p, frac_d : float or ndarray
        Fractions of time above theta_p / theta_d (in [0, 1]).
    duration_s : float
        Time to advance (s).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.
    step_s : float
        Integration step (s).
    backend : {"numba", "numpy"}
        ``"numba"``: one fused loop per synapse when rho_star = 0.5 (~15x faster); ``"numpy"``:
        the split-step loop over all synapses (reference; the same numbers bit for bit).

    Returns
    -------
    ndarray or numpy scalar
        rho after ``duration_s``.

    Raises
    ------
    InputError
        Negative ``duration_s``, ``step_s`` <= 0, unknown ``backend``.
    """
    check_choice("backend", backend, ("numba", "numpy"))
    p = params if isinstance(params, GBParams) else get_params(params)
    rho = np.asarray(rho, dtype=float)
    fp = np.clip(np.asarray(frac_p, dtype=float), 0.0, 1.0)
    fd = np.maximum(np.clip(np.asarray(frac_d, dtype=float), 0.0, 1.0), fp)
    check_number("duration_s", duration_s, min=0)
    check_number("step_s", step_s, min=0, strict_min=True)
    n = int(math.ceil(duration_s / step_s - 1e-9))
    if n == 0:
        return rho.copy()
    h = duration_s / n
    g = p.gamma_p + p.gamma_d
    rbar = p.gamma_p / g if g > 0 else 0.0
    ep = np.exp(-g / p.tau * fp * h)
    ed = np.exp(-p.gamma_d / p.tau * (fd - fp) * h)
    if _exact_cubic(p) and backend == "numba":
        # the same arithmetic as the loop below with _cubic's exact branch, fused per synapse
        # (numba): ~15x faster than the numpy loop, bit-identical (tests/test_synaptic.py)
        shape = np.broadcast_shapes(rho.shape, ep.shape, ed.shape)
        flat = [
            np.ascontiguousarray(np.broadcast_to(a, shape), dtype=float).ravel()
            for a in (rho, ep, ed)
        ]
        return _fractions_exact_kernel(
            *flat, float(rbar), float(np.exp(-h / (2.0 * p.tau))), n
        ).reshape(shape)[()]  # 0-d: a numpy scalar
    r = rho
    for _ in range(n):
        r = (rbar + (r - rbar) * ep) * ed
        r = _cubic(r, h, p)
    return r


@njit(cache=True, error_model="numpy")
def _fractions_exact_kernel(rho, ep, ed, rbar, decay, n):
    """``n`` steps of :func:`advance_fractions` for rho_star = 0.5: per step the linear drifts
    (factors ``ep``, ``ed``) then the exact cubic term (``decay`` = exp(-h / (2 tau))), each
    line as :func:`_cubic` computes it."""
    r = rho.copy()
    for _ in range(n):
        for k in range(r.size):
            y = (rbar + (r[k] - rbar) * ep[k]) * ed[k]
            x = y - 0.5
            u = x * x
            u = 0.25 * u / (u + (0.25 - u) * decay)
            r[k] = 0.5 + math.copysign(math.sqrt(u), x)
    return r


@dataclass
class EventResult:
    """Result of :func:`event_driven_rho` / :func:`event_driven_batch`.

    Attributes
    ----------
    t_events, rho_events : ndarray (K,) or (S, K)
        Calcium-event times (s) and rho right after each.
    rho_final : float or ndarray (S,)
        rho at ``t_end``.
    t_end : float or ndarray (S,)
        Read-out time (s).
    n_pre, n_post : int or ndarray (S,)
        Event counts.
    t_above_p, t_above_d : float or ndarray (S,)
        Time with calcium above theta_p / theta_d (s).
    """

    t_events: np.ndarray  # (K,) or (S, K): event times (s), calcium arrival times
    rho_events: np.ndarray  # rho right after each event
    rho_final: np.ndarray | float
    t_end: np.ndarray | float
    n_pre: np.ndarray | int
    n_post: np.ndarray | int
    t_above_p: np.ndarray | float  # s, total time c > theta_p
    t_above_d: np.ndarray | float  # s, total time c > theta_d


def _events(pre_times, post_times, p: GBParams, c_pre_scale=None):
    pre = np.atleast_1d(np.asarray(pre_times, dtype=float))
    post = np.atleast_1d(np.asarray(post_times, dtype=float))
    inc_pre = (
        np.full(pre.shape, p.c_pre)
        if c_pre_scale is None
        else p.c_pre * np.broadcast_to(np.asarray(c_pre_scale, float), pre.shape)
    )
    t = np.concatenate([pre + p.D, post])
    inc = np.concatenate([inc_pre, np.full(post.shape, p.c_post)])
    is_pre = np.concatenate([np.ones(pre.shape, bool), np.zeros(post.shape, bool)])
    o = np.argsort(t, kind="stable")
    return t[o], inc[o], is_pre[o]


def event_driven_batch(
    ev_t, ev_inc, p: GBParams, rho0=0.5, t_end=None, seed=None, theta_scale=None
):
    """Event-driven rho for S synapses with K events each (``ev_t``, ``ev_inc``: (S, K), each row
    sorted; an increment of 0 is a no-op event).  Returns an :class:`EventResult` with arrays.

    Parameters
    ----------
    ev_t, ev_inc : ndarray (S, K)
        Event times (s) and calcium increments.
    p : GBParams
        Rule parameters.
    rho0 : float or ndarray (S,)
        Initial efficacy.
    t_end : float or ndarray (S,), optional
        Read-out time (s).
    seed : int, optional
        Noise seed.
    theta_scale : float or ndarray (S,) or (S, K + 1), optional
        Factor on both thresholds per synapse (default: none); (S, K + 1): a time-varying
        threshold, column k for the interval that ends at event k, column K for the last
        interval to ``t_end`` (a sliding threshold read at the end of each interval, as the
        Brian2 code reads it at each event).

    Returns
    -------
    EventResult
    """
    ev_t = np.atleast_2d(np.asarray(ev_t, float))
    ev_inc = np.atleast_2d(np.asarray(ev_inc, float))
    S, K = ev_t.shape
    rng = np.random.default_rng(seed) if p.noise else None
    if p.noise and seed is None:
        raise InputError("seed", "noise is on: pass an explicit seed")
    c = np.zeros(S)
    rho = np.broadcast_to(np.asarray(rho0, float), (S,)).copy()
    tl = np.zeros(S)
    tp_sum = np.zeros(S)
    td_sum = np.zeros(S)
    rho_ev = np.empty((S, K))
    ts = None if theta_scale is None else np.asarray(theta_scale, float)
    per_interval = ts is not None and ts.ndim == 2
    if per_interval and ts.shape != (S, K + 1):
        raise InputError(
            "theta_scale", f"a time-varying scale needs shape {(S, K + 1)}, got {ts.shape}"
        )
    for k in range(K):
        c, rho, tp, td = advance(
            c, rho, ev_t[:, k] - tl, p, rng, ts[:, k] if per_interval else theta_scale
        )
        tp_sum += tp
        td_sum += td
        c = c + ev_inc[:, k]
        tl = ev_t[:, k]
        rho_ev[:, k] = rho
    t_end = ev_t[:, -1] if t_end is None else np.broadcast_to(np.asarray(t_end, float), (S,))
    c, rho, tp, td = advance(
        c, rho, np.maximum(t_end - tl, 0.0), p, rng, ts[:, K] if per_interval else theta_scale
    )
    return EventResult(ev_t, rho_ev, rho, t_end, None, None, tp_sum + tp, td_sum + td)


def event_driven_rho(
    pre_times,
    post_times,
    params=None,
    rho0=0.5,
    t_end=None,
    seed=None,
    c_pre_scale=None,
    theta_scale=None,
    rate_ref=None,
) -> EventResult:
    """Event-driven rho for one synapse (same update as the Brian2 code).

    ``pre_times`` / ``post_times`` in seconds (presynaptic spike times at the synapse; calcium
    arrives ``D`` later).  ``t_end`` (default: last calcium event) is where rho is read.
    ``c_pre_scale`` optionally scales each presynaptic transient (e.g. NMDA unblock factors).

    Parameters
    ----------
    pre_times, post_times : array_like
        Spike times (s).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.
    rho0 : float
        Initial efficacy.
    t_end : float, optional
        Read-out time (s).
    seed : int, optional
        Noise seed.
    c_pre_scale : array_like, optional
        Factor per presynaptic spike.
    theta_scale : float, optional
        Factor on both thresholds (the postsynaptic cell's slow sliding threshold; default
        none).
    rate_ref : float, optional
        Resting rate of the postsynaptic cell (Hz): with the fast sliding threshold on
        (``fast_metaplasticity.exponent`` != 0) the thresholds of each interval between calcium
        events are also multiplied by the fast scale of the cell's spike trace
        (:func:`fast_trace` of ``post_times``, :func:`fast_theta_scale`) read at the interval's
        end, as the Brian2 code does.  None: no fast scale.

    Returns
    -------
    EventResult
    """
    p = get_params(params)
    t, inc, is_pre = _events(pre_times, post_times, p, c_pre_scale)
    if t.size == 0:
        t, inc = np.zeros(1), np.zeros(1)
    if rate_ref is not None and fast_sliding(p):
        t_read = np.append(t, t[-1] if t_end is None else t_end)
        jump = float(fast_increment(rate_ref, p))
        fs = fast_theta_scale(fast_trace(post_times, t_read, jump, p), jump, p)
        theta_scale = (fs * (1.0 if theta_scale is None else float(theta_scale)))[None, :]
    r = event_driven_batch(t[None, :], inc[None, :], p, rho0, t_end, seed, theta_scale)
    return EventResult(
        r.t_events[0],
        r.rho_events[0],
        float(r.rho_final[0]),
        float(r.t_end[0]),
        int(np.sum(is_pre)),
        int(np.sum(~is_pre)),
        float(r.t_above_p[0]),
        float(r.t_above_d[0]),
    )


# --------------------------------------------------------------------------------------------
# clock-driven reference (ground truth)
@njit(cache=True)
def _ref_kernel(
    ev_step,
    ev_inc,
    n_steps,
    dt,
    rec_every,
    rho0,
    tau_ca,
    theta_d,
    theta_p,
    gamma_d,
    gamma_p,
    tau,
    rho_star,
    sigma,
    noise,
    seed,
):
    if noise:
        np.random.seed(seed)
    n_rec = n_steps // rec_every + 1
    rec = np.empty(n_rec)
    c = 0.0
    rho = rho0
    tp = 0.0
    td = 0.0
    j = 0
    decay = math.exp(-dt / tau_ca)
    half = math.exp(-0.5 * dt / tau_ca)
    sq = sigma * math.sqrt(dt / tau)
    ir = 0
    for n in range(n_steps):
        if n % rec_every == 0:
            rec[ir] = rho
            ir += 1
        while j < ev_step.size and ev_step[j] == n:
            c += ev_inc[j]
            j += 1
        cm = c * half  # c at the middle of the step (midpoint rule for the threshold terms)
        hp = 1.0 if cm > theta_p else 0.0
        hd = 1.0 if cm > theta_d else 0.0
        tp += hp * dt
        td += hd * dt
        drho = (
            (-rho * (1 - rho) * (rho_star - rho) + gamma_p * (1 - rho) * hp - gamma_d * rho * hd)
            / tau
            * dt
        )
        if noise and hp + hd > 0:
            drho += sq * math.sqrt(hp + hd) * np.random.standard_normal()
        rho += drho
        c *= decay
    if ir < n_rec:
        rec[ir] = rho
        ir += 1
    return rec[:ir], rho, tp, td


@dataclass
class Trajectory:
    """Result of :func:`simulate_pair_protocol`.

    Attributes
    ----------
    t : ndarray
        Recorded times (s).
    rho : ndarray
        rho at ``t``.
    rho_final : float
        rho at ``t_end``.
    t_above_p, t_above_d : float
        Time with calcium above theta_p / theta_d (s).
    dt : float
        Integration step (s).
    extra : dict
        Further recorded values.
    """

    t: np.ndarray  # s, recorded times
    rho: np.ndarray  # rho at t
    rho_final: float  # rho at t_end
    t_above_p: float = 0.0  # s
    t_above_d: float = 0.0  # s
    dt: float = 0.0
    extra: dict = field(default_factory=dict)


def simulate_pair_protocol(
    pre_times,
    post_times,
    params=None,
    rho0=0.5,
    dt=None,
    t_end=None,
    record_dt=1e-3,
    seed=None,
    c_pre_scale=None,
    theta_scale=None,
) -> Trajectory:
    """Clock-driven integration of the original GB ODEs (forward Euler in rho, exact decay of c,
    Euler-Maruyama noise when ``numerics.noise`` is on), the ground truth for the event scheme.

    Times in seconds; ``dt`` defaults to ``numerics.reference_dt`` (0.02 ms).  Events are put on
    the nearest grid step.

    Parameters
    ----------
    pre_times, post_times : array_like
        Spike times (s).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.
    rho0 : float
        Initial efficacy.
    dt : float, optional
        Step (s).
    t_end : float, optional
        End (s).
    record_dt : float
        Recording interval (s).
    seed : int, optional
        Noise seed.
    c_pre_scale : array_like, optional
        Factor per presynaptic spike.
    theta_scale : float, optional
        Factor on both thresholds (default none).

    Returns
    -------
    Trajectory
    """
    p = get_params(params)
    dt = p.reference_dt if dt is None else check_number("dt", dt, min=0, strict_min=True)
    t, inc, _ = _events(pre_times, post_times, p, c_pre_scale)
    if t_end is None:
        t_end = float(t[-1]) if t.size else 0.0
    if t.size and t.min() < 0:
        raise InputError("pre_times/post_times", "spike times must be >= 0 (and >= -D for pre)")
    n_steps = int(round(t_end / dt))
    steps = np.rint(t / dt).astype(np.int64)
    rec_every = max(1, int(round(record_dt / dt)))
    if p.noise and seed is None:
        raise InputError("seed", "noise is on: pass an explicit seed")
    theta_p, theta_d = _thresholds(p, theta_scale)
    rec, rho, tp, td = _ref_kernel(
        steps,
        inc,
        n_steps,
        dt,
        rec_every,
        float(rho0),
        p.tau_ca,
        float(theta_d),
        float(theta_p),
        p.gamma_d,
        p.gamma_p,
        p.tau,
        p.rho_star,
        p.sigma,
        bool(p.noise),
        int(seed or 0),
    )
    tr = np.arange(rec.size) * rec_every * dt
    tr[-1] = min(tr[-1], n_steps * dt)
    return Trajectory(tr, rec, float(rho), tp, td, dt)


# --------------------------------------------------------------------------------------------
# Brian2
class TransmissionPathway:
    """Mixin of the Brian2 code pieces of a rule (:class:`SynapseModelParts`,
    :class:`cortexsim.plasticity.rules.SynapseCode`): the circuit's conductance update joins
    the transmission pathway.  Field-less; the class using it has ``on_pre`` (pathway name ->
    code) and ``transmission_pathway``."""

    def with_transmission(self, code: str) -> dict:
        """``on_pre`` with ``code`` (the conductance update) appended to the transmission.

        Parameters
        ----------
        code : str
            Brian2 statements (e.g. ``"g_ampa_post += w * g_max"``).

        Returns
        -------
        dict
            Pathway name -> code (a new dict; this object is not changed).
        """
        d = dict(self.on_pre)
        d[self.transmission_pathway] = (d[self.transmission_pathway] + "\n" + code).strip()
        return d


@dataclass
class SynapseModelParts(TransmissionPathway):
    """Brian2 pieces of the plasticity rule for ``Synapses(src, tgt, model=..., on_pre=...,
    on_post=..., namespace=...)``.

    Pathways: ``on_pre[transmission_pathway]`` ("pre") carries synaptic transmission and is empty
    here: the network builder puts its conductance update there, using ``w`` (e.g.
    ``parts.with_transmission("g_ampa_post += w * g_max")``).  ``on_pre["ca"]`` is the delayed
    presynaptic calcium transient; its delay must be transmission delay + D (:func:`set_delays`).
    ``on_post["post"]`` is the postsynaptic (back-propagating spike) transient.
    Call :func:`flush_synapses` after a run to bring rho and the statistics to the end time.

    Attributes
    ----------
    model : str
        Brian2 synapse equations.
    on_pre, on_post : dict
        Pathway name -> code.
    namespace : dict
        Constants.
    transmission_pathway, calcium_pathway : str
        Pathway names.
    delay_D : float
        Calcium delay D (s).
    variables : dict
        Initial values of the per-synapse variables.
    flush_code : str
        Code that brings the state to the end of a run.
    """

    model: str
    on_pre: dict
    on_post: dict
    namespace: dict
    transmission_pathway: str = "pre"
    calcium_pathway: str = "ca"
    delay_D: float = 0.0  # seconds (float), add to the transmission delay for 'ca'
    variables: dict = field(default_factory=dict)
    flush_code: str = ""  # advance to t without an event (run_regularly if wanted)


VARIABLES_DOC = {
    "c": "calcium at this synapse (normalised, theta_d = 1), value right after the last event",
    "rho": "efficacy variable of GB 2012 (0 = DOWN, 1 = UP), value at t_last",
    "t_last": "time of the last event update of c and rho (s)",
    "on": "1 if the spine/synapse is present; 0: transmits nothing (w = 0) and does not change",
    "w": "effective weight (subexpression): on * (w_down + rho (w_up - w_down)) or two-state",
    "n_pre_spikes": "number of presynaptic spikes (calcium events) while on",
    "n_post_spikes": "number of postsynaptic spikes while on",
    "t_above_p": "total time c > theta_p while on (s), analytic, up to t_last",
    "t_above_d": "total time c > theta_d while on (s), analytic, up to t_last (includes > theta_p)",
    "nmda_ca": "sum of the presynaptic (NMDA-receptor) calcium increments while on, each c_pre "
    "times the Mg2+ unblock at the postsynaptic voltage (normalised calcium; times "
    "tau_ca it is the time integral of those transients, in s)",
}


#: postsynaptic cell variable read by the synapse code when the thresholds slide
#: (``metaplasticity.exponent`` != 0): the factor on both thresholds (:func:`bcm_theta_scale`)
THETA_SCALE = "theta_scale"
#: per-cell variables of the fast sliding threshold (``fast_metaplasticity.exponent`` != 0):
#: the spike trace right after the cell's last spike (units of its resting value), the time of
#: that spike (s), and the run-time jump per spike (:func:`fast_increment`; 0: no reference)
FAST_TRACE, FAST_TIME, FAST_INC = "fm_x", "fm_t", "fm_inc"


def fast_cell_code(p: GBParams) -> dict:
    """Brian2 pieces the postsynaptic cells need for the fast sliding threshold: ``model``
    (state declarations), ``reset`` (code appended to the cells' reset: the trace decays to the
    spike and jumps by ``fm_inc``), ``init`` (values at the start of every run: trace 1 at
    t = 0, i.e. at rest) and ``namespace``; empty without the mechanism.  The run-time jump
    ``fm_inc`` is a postsynaptic variable of the rule (set per run from the cells' resting
    rates).  Event-driven: nothing is integrated per time step.

    Parameters
    ----------
    p : GBParams
        Rule parameters.

    Returns
    -------
    dict
    """
    if not fast_sliding(p):
        return {}
    import brian2 as b2

    return {
        "model": f"{FAST_TRACE} : 1\n{FAST_TIME} : second",
        "reset": f"{FAST_TRACE} = {FAST_TRACE}*exp(-(t - {FAST_TIME})/gb_fm_tau) + "
        f"{FAST_INC}\n{FAST_TIME} = t",
        "init": {FAST_TRACE: 1.0, FAST_TIME: 0 * b2.second},
        "namespace": {"gb_fm_tau": p.fm_tau * b2.second},
    }


def sliding_threshold(p: GBParams) -> bool:
    """Whether the synapse code reads the postsynaptic :data:`THETA_SCALE` (BCM sliding
    threshold, ``metaplasticity.exponent`` != 0).

    Parameters
    ----------
    p : GBParams
        Rule parameters.

    Returns
    -------
    bool
    """
    return p.bcm_exponent != 0


def _scale_code(p: GBParams) -> tuple[list, str | None]:
    """Lines that compute the fast threshold scale ``gb_fs`` at the event and the expression
    of the factor on both thresholds (None: no sliding threshold)."""
    lines, factors = [], []
    if sliding_threshold(p):
        factors.append(f"{THETA_SCALE}_post")
    if fast_sliding(p):
        x = f"{FAST_TRACE}_post*exp(-(t - {FAST_TIME}_post)/gb_fm_tau)"
        if p.fm_exponent != 1:
            x = f"({x})**gb_fm_exp"
        lines.append(f"gb_fs = 1 + int({FAST_INC}_post > 0)*(clip({x}, gb_fm_min, gb_fm_max) - 1)")
        factors.append("gb_fs")
    return lines, "*".join(factors) or None


def _advance_code(p: GBParams) -> str:
    scale_lines, scale = _scale_code(p)
    th_p, th_d = (
        (f"(gb_theta_p*{scale})", f"(gb_theta_d*{scale})")
        if scale
        else ("gb_theta_p", "gb_theta_d")
    )
    L = scale_lines + ["gb_Dt = t - t_last"]
    if p.theta_p >= p.theta_d:
        # one log for both crossing times: log(c/theta_p) = log(c/theta_d) - log(theta_p/theta_d)
        # (both thresholds carry the same scale), and c < theta_d implies c < theta_p (GB 2012
        # cortical set: theta_p 1.3 > theta_d 1); ~10 % of the GB event cost, same values up to
        # rounding (benchmarks/results/gb_event_cost.md)
        L += [
            f"gb_lc = log(clip(c/{th_d}, 1, inf))",
            "gb_td = clip(gb_tau_ca*gb_lc, 0*second, gb_Dt)",
            f"gb_tp = clip(gb_tau_ca*(gb_lc - {float(np.log(p.theta_p / p.theta_d))!r}), "
            "0*second, gb_Dt)",
        ]
    else:
        L += [
            f"gb_tp = clip(gb_tau_ca*log(clip(c/{th_p}, 1, inf)), 0*second, gb_Dt)",
            f"gb_td = clip(gb_tau_ca*log(clip(c/{th_d}, 1, inf)), 0*second, gb_Dt)",
        ]
    L.append("gb_r = gb_rho_bar + (rho - gb_rho_bar)*exp(-gb_kp*gb_tp)")
    if p.noise:
        L.append("gb_r = gb_r + sqrt(gb_var_p*(1 - exp(-2*gb_kp*gb_tp)))*randn()")
    L.append("gb_r = gb_r*exp(-gb_kd*(gb_td - gb_tp))")
    if p.noise and p.gamma_d > 0:
        L.append("gb_r = gb_r + sqrt(gb_var_d*(1 - exp(-2*gb_kd*(gb_td - gb_tp))))*randn()")
    if _exact_cubic(p):
        L += [
            "gb_x = gb_r - 0.5",
            "gb_u = gb_x**2",
            "gb_u = 0.25*gb_u/(gb_u + (0.25 - gb_u)*exp(-gb_Dt/(2*gb_tau)))",
            "gb_r = 0.5 + sign(gb_x)*sqrt(gb_u)",
        ]
    else:
        L.append(f"gb_h = gb_Dt/{p.cubic_substeps}")
        f = "({y})*(1 - ({y}))*(({y}) - gb_rho_star)/gb_tau"
        for _ in range(p.cubic_substeps):
            L += [
                f"gb_k1 = {f.format(y='gb_r')}",
                f"gb_k2 = {f.format(y='gb_r + 0.5*gb_h*gb_k1')}",
                f"gb_k3 = {f.format(y='gb_r + 0.5*gb_h*gb_k2')}",
                f"gb_k4 = {f.format(y='gb_r + gb_h*gb_k3')}",
                "gb_r = gb_r + gb_h/6*(gb_k1 + 2*gb_k2 + 2*gb_k3 + gb_k4)",
            ]
    L += [
        "rho = on*gb_r + (1 - on)*rho",
        "t_above_p += on*gb_tp",
        "t_above_d += on*gb_td",
        "c = c*exp(-gb_Dt/gb_tau_ca)",
        "t_last = t",
    ]
    return "\n".join(L)


def synapse_model(params=None, counters: bool = True) -> SynapseModelParts:
    """Brian2 model strings of the event-driven GB rule (no per-synapse clock-driven ODE).
    ``counters``: per-synapse pre/post spike counters (a network whose on-states are fixed during
    a run derives them from its per-neuron spike counts instead: one array less to touch per
    event).  With a sliding threshold (``metaplasticity.exponent`` != 0) the code multiplies
    both thresholds by the postsynaptic group's variable :data:`THETA_SCALE` (dimensionless,
    1: none), which the target group must declare; with the fast sliding threshold
    (``fast_metaplasticity.exponent`` != 0) also by the fast scale of the postsynaptic cell's
    spike trace at the event (:data:`FAST_TRACE`, :data:`FAST_TIME`, :data:`FAST_INC`, declared
    and updated by the cells: :func:`fast_cell_code`), read once per event and applied to the
    whole interval since the synapse's previous event; otherwise the code is that of GB 2012.

    Parameters
    ----------
    params : GBParams, ParamTree or dict, optional
        Rule parameters.
    counters : bool
        Keep per-synapse spike counters.

    Returns
    -------
    SynapseModelParts
    """
    import brian2 as b2

    p = get_params(params)
    if p.mode == "linear":
        w_expr = "on*(gb_w_down + rho*(gb_w_up - gb_w_down))"
    else:
        w_expr = "on*(gb_w_down + (gb_w_up - gb_w_down)*int(rho > gb_rho_star))"
    model = "\n".join(
        [
            "c : 1",
            "rho : 1",
            "t_last : second",
            "on : 1",
        ]
        + (["n_pre_spikes : 1", "n_post_spikes : 1"] if counters else [])
        + [
            "t_above_p : second",
            "t_above_d : second",
            "nmda_ca : 1",
            f"w = {w_expr} : 1",
        ]
    )
    adv = _advance_code(p)
    # the presynaptic (NMDA) calcium increment, added to c and to its running sum nmda_ca
    if p.nmda:
        vn = p.v_name
        ca_inc = (
            f"gb_inc = on*gb_c_pre*(1 + gb_mg_ratio*exp(-gb_mg_slope*gb_v_ref))"
            f"/(1 + gb_mg_ratio*exp(-gb_mg_slope*{vn}_post))"
        )
    else:
        ca_inc = "gb_inc = on*gb_c_pre"
    ca_inc += "\nc += gb_inc\nnmda_ca += gb_inc"
    count_pre = "\nn_pre_spikes += on" if counters else ""
    count_post = "\nn_post_spikes += on" if counters else ""
    on_pre = {"pre": "", "ca": adv + "\n" + ca_inc + count_pre}
    on_post = {"post": adv + "\nc += on*gb_c_post" + count_post}
    g = p.gamma_p + p.gamma_d
    ns = {
        "gb_tau_ca": p.tau_ca * b2.second,
        "gb_theta_p": p.theta_p,
        "gb_theta_d": p.theta_d,
        "gb_rho_bar": p.gamma_p / g if g > 0 else 0.0,
        "gb_kp": g / p.tau / b2.second,
        "gb_kd": p.gamma_d / p.tau / b2.second,
        "gb_tau": p.tau * b2.second,
        "gb_rho_star": p.rho_star,
        "gb_c_pre": p.c_pre,
        "gb_c_post": p.c_post,
        "gb_w_down": p.w_down,
        "gb_w_up": p.w_up,
    }
    if p.noise:
        ns["gb_var_p"] = p.sigma**2 / g if g > 0 else 0.0
        ns["gb_var_d"] = p.sigma**2 / (2 * p.gamma_d) if p.gamma_d > 0 else 0.0
    if p.nmda:
        ns.update(
            gb_mg_ratio=p.mg / p.mg_k, gb_mg_slope=p.mg_slope / b2.mV, gb_v_ref=p.v_ref * b2.mV
        )
    if fast_sliding(p):
        ns.update(
            gb_fm_tau=p.fm_tau * b2.second,
            gb_fm_min=p.fm_scale_min,
            gb_fm_max=p.fm_scale_max,
            gb_fm_exp=p.fm_exponent,
        )
    return SynapseModelParts(
        model=model,
        on_pre=on_pre,
        on_post=on_post,
        namespace=ns,
        delay_D=p.D,
        variables=dict(VARIABLES_DOC),
        flush_code=adv,
    )


def set_delays(S, transmission_delay=None, params=None):
    """Set ``S.pre.delay`` (transmission) and ``S.ca.delay = transmission + D`` (Brian2 rounds
    delays to the clock step: D = 4.6098 ms becomes 4.6 ms at dt = 0.1 ms).

    Parameters
    ----------
    S : brian2.Synapses
        Built from :func:`synapse_model`.
    transmission_delay : brian2.Quantity, optional
        Axonal delay.
    params : GBParams, ParamTree or dict, optional
        Rule parameters (D).
    """
    import brian2 as b2

    p = get_params(params)
    d = 0 * b2.ms if transmission_delay is None else transmission_delay
    S.pre.delay = d
    S.ca.delay = d + p.D * b2.second


def flush_synapses(S, t=None, params=None, seed=None):
    """Bring rho, c and the statistics of every synapse of ``S`` to time ``t`` (default: the
    current time of ``S``), with the same update as at events.  Run after ``run()``.

    Parameters
    ----------
    S : brian2.Synapses
        Built from :func:`synapse_model`.
    t : brian2.Quantity, optional
        Target time.
    params : GBParams, ParamTree or dict, optional
        Rule parameters.
    seed : int, optional
        Noise seed.
    """
    p = get_params(params)
    t = float(S.t_[:] if t is None else t)  # underscore: values in base SI units, no Quantity
    scale = post_theta_scale(S.target, np.asarray(S.j[:]), t, p)
    tl = np.asarray(S.t_last_[:], float)
    on = np.asarray(S.on[:], float)
    rng = np.random.default_rng(seed) if p.noise else None
    if p.noise and seed is None:
        raise InputError("seed", "noise is on: pass an explicit seed")
    c, rho, above_p, above_d = advance_to(
        t,
        np.asarray(S.c[:]),
        np.asarray(S.rho[:]),
        tl,
        on,
        np.asarray(S.t_above_p_[:]),
        np.asarray(S.t_above_d_[:]),
        p,
        scale,
        rng,
    )
    S.rho[:] = rho
    S.t_above_p_[:] = above_p
    S.t_above_d_[:] = above_d
    S.c[:] = c
    S.t_last_[:] = t


def advance_to(
    t,
    c,
    rho,
    t_last,
    on,
    t_above_p,
    t_above_d,
    p: GBParams,
    theta_scale=None,
    rng: np.random.Generator | None = None,
) -> tuple:
    """Bring every synapse's calcium, rho and threshold statistics from its last event
    ``t_last`` to time ``t`` without events (:func:`advance`), as at events: a synapse that is
    off (``on`` 0) keeps its rho and adds no time above the thresholds.  The numerics of
    :func:`flush_synapses` and of :meth:`cortexsim.plasticity.rules.GraupnerBrunel.collect`.

    Parameters
    ----------
    t : float
        Target time (s).
    c, rho, t_last, on, t_above_p, t_above_d : ndarray (n_synapses,)
        Calcium, efficacy, time of the last event (s), presence (0 or 1) and the times above
        theta_p / theta_d so far (s).
    p : GBParams
        Rule parameters.
    theta_scale : ndarray (n_synapses,), optional
        Factor on both thresholds (:func:`post_theta_scale`).
    rng : numpy.random.Generator, optional
        Source of the noise when ``p.noise`` is on.

    Returns
    -------
    c, rho, t_above_p, t_above_d : ndarray (n_synapses,)
        At ``t`` (new arrays).
    """
    c_, r_, tp, td = advance(c, rho, np.maximum(t - t_last, 0.0), p, rng, theta_scale)
    return c_, on * r_ + (1 - on) * rho, t_above_p + on * tp, t_above_d + on * td


def initial_rho(n, rng: np.random.Generator, params=None):
    """GB's initial condition: each synapse DOWN (rho = 0) with probability beta, else UP (1).

    Parameters
    ----------
    n : int
        Number of synapses.
    rng : numpy.random.Generator
        Source of the draws.
    params : GBParams, ParamTree or dict, optional
        Rule parameters (beta).

    Returns
    -------
    ndarray (n,)
        0 or 1.
    """
    p = get_params(params)
    return (rng.random(int(n)) >= p.beta).astype(float)


# --------------------------------------------------------------------------------------------
# paper readout and protocols
def pairing_protocol(delta_t, n_pairs, freq, t0=0.1):
    """Spike pairs: pre at ``t0 + k/freq``, post at pre + ``delta_t`` (s; > 0 is pre-before-post).

    Parameters
    ----------
    delta_t : float
        Post - pre offset (s).
    n_pairs : int
        Number of pairs.
    freq : float
        Pair frequency (Hz).
    t0 : float
        First presynaptic spike (s).

    Returns
    -------
    pre, post : ndarray (n_pairs,)
        Spike times (s).
    """
    k = np.arange(int(n_pairs))
    pre = t0 + k / float(freq)
    return pre, pre + float(delta_t)


def gb_transition(alpha_d, alpha_p, T, params=None):
    """GB 2012 (SI) mean-field readout for a protocol of duration ``T`` (s) in which calcium is a
    fraction ``alpha_d`` (``alpha_p``) of the time above theta_d (theta_p): returns
    ``(rho_bar, sigma_rho2, tau_eff, P_up, P_down)`` (P_up: DOWN->UP, P_down: UP->DOWN).

    Parameters
    ----------
    alpha_d, alpha_p : float or ndarray
        Fractions of time above theta_d / theta_p.
    T : float or ndarray
        Protocol duration (s).
    params : GBParams, ParamTree or dict, optional
        Rule parameters.

    Returns
    -------
    rho_bar, sigma_rho2, tau_eff, P_up, P_down : ndarray
        tau_eff in s.
    """
    from scipy.special import erf

    p = get_params(params)
    ad, ap = np.asarray(alpha_d, float), np.asarray(alpha_p, float)
    Gp, Gd = p.gamma_p * ap, p.gamma_d * ad
    G = Gp + Gd
    with np.errstate(divide="ignore", invalid="ignore"):
        rbar = np.where(G > 0, Gp / G, 0.0)
        s2 = np.where(G > 0, (ap + ad) * p.sigma**2 / G, 0.0)
        teff = np.where(G > 0, p.tau / G, np.inf)
        e1 = np.exp(-T / teff)
        den = np.sqrt(s2 * (1 - np.exp(-2 * T / teff)))

        def x(r0):
            return -(p.rho_star - rbar + (rbar - r0) * e1) / den

        p_up = np.where(G > 0, (1 + erf(x(0.0))) / 2, 0.0)
        p_down = np.where(G > 0, (1 - erf(x(1.0))) / 2, 0.0)
    return rbar, s2, teff, p_up, p_down


def gb_synaptic_change(p_up, p_down, params=None):
    """GB 2012 change in synaptic strength (after/before) for a population with a fraction beta
    initially DOWN (strength 1) and 1-beta UP (strength b).

    Parameters
    ----------
    p_up, p_down : float or ndarray
        Transition probabilities (:func:`gb_transition`).
    params : GBParams, ParamTree or dict, optional
        Rule parameters (beta, b).

    Returns
    -------
    float or ndarray
        Ratio after/before.
    """
    p = get_params(params)
    be, b = p.beta, p.b
    after = (be * (1 - p_up) + (1 - be) * p_down) + (be * p_up + (1 - be) * (1 - p_down)) * b
    return after / (be + (1 - be) * b)


def frequency_stdp_curves(delta_ts, freqs, n_pairs=75, params=None):
    """GB 2012 Fig. 4B protocol: ``n_pairs`` pre-post pairs at each frequency and offset.

    Times above the thresholds come from the event-driven accumulators (:func:`event_driven_batch`)
    over ``T = n_pairs / f`` from the first calcium event (or to the decay after the last one,
    whichever is later); the change in strength is GB's readout (:func:`gb_transition`,
    :func:`gb_synaptic_change`) with fractions ``alpha = t_above / T``.  Returns a dict of arrays
    shaped (len(freqs), len(delta_ts)): ``change``, ``alpha_d``, ``alpha_p``, ``rho_bar``,
    ``p_up``, ``p_down`` and the deterministic ``rho_from_down`` / ``rho_from_up`` at the end.

    Parameters
    ----------
    delta_ts : array_like
        Post - pre offsets (s).
    freqs : array_like
        Pair frequencies (Hz).
    n_pairs : int
        Pairs per protocol.
    params : GBParams, ParamTree or dict, optional
        Rule parameters.

    Returns
    -------
    dict
    """
    p = replace(get_params(params), noise=False)
    dts = np.asarray(delta_ts, float)
    keys = (
        "change",
        "alpha_d",
        "alpha_p",
        "rho_bar",
        "p_up",
        "p_down",
        "rho_from_down",
        "rho_from_up",
    )
    out = {k: np.empty((len(freqs), dts.size)) for k in keys}
    for i, f in enumerate(freqs):
        T = n_pairs / float(f)
        ev_t, ev_inc = [], []
        for dt_ in dts:
            pre, post = pairing_protocol(dt_, n_pairs, f, t0=1.0)
            t, inc, _ = _events(pre, post, p)
            ev_t.append(t)
            ev_inc.append(inc)
        ev_t, ev_inc = np.array(ev_t), np.array(ev_inc)
        t_end = np.maximum(ev_t[:, 0] + T, ev_t[:, -1] + 10 * p.tau_ca)
        r0 = event_driven_batch(ev_t, ev_inc, p, 0.0, t_end=t_end)
        r1 = event_driven_batch(ev_t, ev_inc, p, 1.0, t_end=t_end)
        ap, ad = r0.t_above_p / T, r0.t_above_d / T
        rbar, _, _, pu, pd = gb_transition(ad, ap, T, p)
        out["change"][i] = gb_synaptic_change(pu, pd, p)
        out["alpha_d"][i], out["alpha_p"][i], out["rho_bar"][i] = ad, ap, rbar
        out["p_up"][i], out["p_down"][i] = pu, pd
        out["rho_from_down"][i], out["rho_from_up"][i] = r0.rho_final, r1.rho_final
    return out


def protocol_strength_change(pre_times, post_times, params=None) -> float:
    """Relative change of synaptic strength that a spike protocol causes at one synapse, read
    out as in Graupner & Brunel 2012 (PNAS 109:3991, Fig. 4B and SI): the fractions of time the
    calcium spends above theta_d and theta_p over the protocol give the DOWN->UP and UP->DOWN
    transition probabilities (:func:`gb_transition`), and the population of synapses (a
    fraction ``beta`` initially DOWN) changes its mean strength by :func:`gb_synaptic_change`.

    The protocol runs from the first calcium event to ten calcium time constants after the
    last one; the result does not depend on that span (the transition depends only on the
    times above the thresholds).

    Parameters
    ----------
    pre_times, post_times : array_like
        Pre- and postsynaptic spike times (s); either may be empty.
    params : GBParams, ParamTree or dict, optional
        Rule parameters (noise is switched off: the readout is the mean-field one).

    Returns
    -------
    float
        after / before - 1 (e.g. +0.3 = 30 % potentiation; 0 = no change).
    """
    p = replace(get_params(params), noise=False)
    t, inc, _ = _events(pre_times, post_times, p)
    if t.size == 0:
        return 0.0
    t_end = t[-1] + 10 * p.tau_ca
    r = event_driven_batch(t[None, :], inc[None, :], p, 0.0, t_end=t_end)
    T = float(t_end - t[0])
    _, _, _, pu, pd = gb_transition(r.t_above_d[0] / T, r.t_above_p[0] / T, T, p)
    return float(gb_synaptic_change(pu, pd, p)) - 1.0
