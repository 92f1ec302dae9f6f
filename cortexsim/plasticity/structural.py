"""Structural plasticity: spine sites that form, stabilise and vanish over hours to days.

Each spine site is EMPTY (0), NASCENT (1, transient) or STABLE (2) and carries a relative
weight (float32).  Per slow-phase step of ``dt_h`` hours each site makes at most one
transition, with probability ``1 - exp(-rate * dt)``; rates are set per site by the synapse's
plasticity signal ``plast`` in [0, 1], the postsynaptic cell's drive ``cell_drive`` (> 0 means
below set point: more formation/stabilisation, less elimination) and per step by the stress
signal S (see :mod:`cortexsim.plasticity.stress`).  The kernel knows no cell types: only arrays.
Rate laws and every number: ``models/structural.toml``.

Algorithm (identical in distribution to drawing a Bernoulli(1 - exp(-h_k)) per step): each site
holds a residual hazard ``r ~ Exp(1)``; per step ``r -= h_k`` (h_k = rate * dt at step k);
the site jumps in the step where ``r`` drops to <= 0, then draws a fresh ``r`` (memoryless
exponential, so redrawing at the start of every call is also exact).  A nascent spine has two
competing exits; at its event it stabilises with probability h_stab / (h_stab + h_elim).  This
needs one uniform draw per *event*, not per step, and no transcendental function in the step
loop.  Weights of occupied spines relax toward a target (stable: set by ``plast``; nascent:
``w_nascent``) with factor ``q = exp(-dt/tau_w)`` per step, evaluated in closed form at events
and at the end of the call from a shared table of ``q**j``.

Both backends (numba ``parallel=True`` over blocks of sites, and a vectorised numpy reference
stepping all sites together) use the counter-based RNG of :mod:`cortexsim.plasticity.rng` and
the same floating-point operations, so they agree bit for bit for any thread count.
Drawing depends on (seed, step0 + k, site): splitting one advance into several calls gives a
different (equally valid) realisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, dotted_items, load_model
from .. import rng as R

EMPTY, NASCENT, STABLE = 0, 1, 2
_N_COUNT = 4  # formed, stabilised, eliminated nascent, eliminated stable
BACKENDS = ("numba", "numpy")


# ----------------------------------------------------------------------------- parameters
def _params(params) -> dict:
    """Plain nested dict of values from a ParamTree / dict override / None (model file)."""
    if params is None:
        return load_model("structural").values()
    if isinstance(params, ParamTree):
        return params.values()
    if isinstance(params, dict):
        base = load_model("structural")
        for path, v in dotted_items(params):
            base.set(path, v)
        return base.values()
    raise InputError("params", f"expected ParamTree, dict or None, got {type(params).__name__}")


def _rate_vector(P: dict) -> np.ndarray:
    """Scalar coefficients passed to both backends (rates per hour)."""
    f, n, s, w = P["formation"], P["nascent"], P["stable"], P["weight"]
    per_h = 1.0 / 24.0
    return np.array(
        [
            f["k_form"] * per_h,
            f["drive_gain"],  # 0, 1
            n["k_stab_p0"] * per_h,
            n["k_stab_p1"] * per_h,
            n["drive_gain_stab"],  # 2, 3, 4
            n["k_elim_p0"] * per_h,
            n["k_elim_p1"] * per_h,
            n["drive_gain_elim"],  # 5, 6, 7
            s["k_elim_p0"] * per_h,
            s["k_elim_p1"] * per_h,
            s["drive_gain_elim"],  # 8, 9, 10
            w["w_nascent"],
            w["w_stable_p0"],
            w["w_stable_p1"],  # 11, 12, 13
        ],
        dtype=np.float64,
    )


def stress_multipliers(S: np.ndarray, dt_h: float, P: dict) -> np.ndarray:
    """(4, n_steps) per-step factors incl. dt: formation, stabilisation, elim nascent, elim stable.

    Parameters
    ----------
    S : ndarray (n_steps,)
        Glucocorticoid signal per step.
    dt_h : float
        Step (h).
    P : dict
        Resolved structural parameters.

    Returns
    -------
    ndarray (4, n_steps)
    """
    sat = P["stress"]["saturation"]
    Se = S / (1.0 + S / sat)
    f, n, s = P["formation"], P["nascent"], P["stable"]
    m = np.empty((4, S.size), dtype=np.float64)
    m[0] = dt_h / (1.0 + f["stress_gain"] * Se)
    m[1] = dt_h / (1.0 + n["stress_gain_stab"] * Se)
    m[2] = dt_h * (1.0 + n["stress_gain_elim"] * Se)
    m[3] = dt_h * (1.0 + s["stress_gain_elim"] * Se)
    return m


def site_rates_per_day(plast, cell_drive, params=None) -> dict:
    """Per-site rates (1/day) without stress: form, stab, elim_nascent, elim_stable.

    Parameters
    ----------
    plast : float or ndarray
        Plasticity signal per site, in [0, 1].
    cell_drive : float or ndarray
        Drive of the postsynaptic cell per site.
    params : ParamTree or dict, optional
        Structural model (``models/structural.toml``).

    Returns
    -------
    dict
        ``form``, ``stab``, ``elim_nascent``, ``elim_stable`` -> rates (1/day), broadcast shape.
    """
    c = _rate_vector(_params(params))
    p = np.asarray(plast, dtype=np.float64)
    d = np.asarray(cell_drive, dtype=np.float64)
    kf, kst, ken, kes, _ = _site_rates_np(c, p, d)
    return {
        k: v * 24.0 for k, v in dict(form=kf, stab=kst, elim_nascent=ken, elim_stable=kes).items()
    }


def _site_rates_np(c, p, d):
    kf = c[0] * np.maximum(0.0, 1.0 + c[1] * d)
    kst = (c[2] + (c[3] - c[2]) * p) * np.maximum(0.0, 1.0 + c[4] * d)
    ken = (c[5] + (c[6] - c[5]) * p) * np.maximum(0.0, 1.0 - c[7] * d)
    kes = (c[8] + (c[9] - c[8]) * p) * np.maximum(0.0, 1.0 - c[10] * d)
    wt = c[12] + (c[13] - c[12]) * p
    return kf, kst, ken, kes, wt


def equilibrium_fractions(params=None, plast=None) -> dict:
    """Stationary fractions (empty, nascent, stable) at ``plast`` (default plast_ref), no
    drive, no stress, of the continuous-time chain.

    Parameters
    ----------
    params : ParamTree or dict, optional
        Structural model.
    plast : float, optional
        Plasticity signal in [0, 1].

    Returns
    -------
    dict
        ``empty``, ``nascent``, ``stable`` -> fraction (sum 1).
    """
    P = _params(params)
    p = P["baseline"]["plast_ref"] if plast is None else float(plast)
    r = site_rates_per_day(p, 0.0, P)
    kf, kst, ken, kes = (float(r[k]) for k in ("form", "stab", "elim_nascent", "elim_stable"))
    # E*kf = N*(ken+kst) ; N*kst = S*kes ; E+N+S = 1
    n_over_e = kf / (ken + kst)
    s_over_e = n_over_e * kst / kes if kes > 0 else np.inf
    e = 1.0 / (1.0 + n_over_e + s_over_e)
    return {"empty": e, "nascent": e * n_over_e, "stable": e * s_over_e}


# ----------------------------------------------------------------------------- state
@dataclass
class SpineState:
    """Spine sites: ``state`` int8 (0 empty, 1 nascent, 2 stable), ``weight`` float32 relative
    weight (0 for empty sites), optional ``age`` float32 hours since formation (0 if empty).

    Attributes
    ----------
    state : ndarray of int8 (n_sites,)
    weight : ndarray of float32 (n_sites,)
    age : ndarray of float32 (n_sites,) or None
    """

    state: np.ndarray
    weight: np.ndarray
    age: np.ndarray | None = field(default=None)

    def __post_init__(self):
        self.state = np.ascontiguousarray(self.state, dtype=np.int8)
        self.weight = np.ascontiguousarray(self.weight, dtype=np.float32)
        if self.state.ndim != 1 or self.weight.shape != self.state.shape:
            raise InputError("state", "state and weight must be 1-D arrays of equal length")
        if self.state.size and (self.state.min() < 0 or self.state.max() > 2):
            raise InputError("state", "spine states must be 0 (empty), 1 (nascent), 2 (stable)")
        if self.age is not None:
            self.age = np.ascontiguousarray(self.age, dtype=np.float32)
            if self.age.shape != self.state.shape:
                raise InputError("age", "age must have the same length as state")

    @property
    def n_sites(self) -> int:
        """Number of spine sites."""
        return int(self.state.size)

    def copy(self) -> "SpineState":
        """A copy with its own arrays."""
        return SpineState(
            self.state.copy(), self.weight.copy(), None if self.age is None else self.age.copy()
        )

    @classmethod
    def initial(cls, n_sites: int, rng_or_seed=0, params=None, track_age: bool = False):
        """Sites drawn independently from the stationary fractions at plast_ref (no drive, no
        stress); weights at their targets (stable: plast_ref target, nascent: w_nascent).

        Parameters
        ----------
        n_sites : int
            Number of sites (>= 0).
        rng_or_seed : numpy.random.Generator or int
            Source of the draws, or its seed (>= 0).
        params : ParamTree or dict, optional
            Structural model (default ``models/structural.toml``).
        track_age : bool
            Keep spine ages (h; all 0 at the start).

        Returns
        -------
        SpineState

        Raises
        ------
        InputError
            A negative or non-integer number of sites or seed.
        """
        n = check_number("n_sites", n_sites, min=0, integer=True)
        rng = (
            rng_or_seed
            if isinstance(rng_or_seed, np.random.Generator)
            else np.random.default_rng(check_number("seed", rng_or_seed, min=0, integer=True))
        )
        P = _params(params)
        fr = equilibrium_fractions(P)
        u = rng.random(n)
        st = np.where(
            u < fr["stable"], STABLE, np.where(u < fr["stable"] + fr["nascent"], NASCENT, EMPTY)
        ).astype(np.int8)
        c = _rate_vector(P)
        wt = c[12] + (c[13] - c[12]) * P["baseline"]["plast_ref"]
        w = np.where(st == STABLE, wt, np.where(st == NASCENT, c[11], 0.0)).astype(np.float32)
        return cls(st, w, np.zeros(n, np.float32) if track_age else None)


def density(state: SpineState | np.ndarray, groups=None, n_groups: int | None = None):
    """Occupied (nascent + stable) fraction of sites, overall (groups None) or per group id
    (``groups``: non-negative int per site); groups without sites give NaN.

    Parameters
    ----------
    state : SpineState or ndarray of int8
        Site states.
    groups : ndarray of int, optional
        Group id per site.
    n_groups : int, optional
        Number of groups (default: ``groups.max() + 1``).

    Returns
    -------
    float or ndarray (n_groups,)
    """
    st = state.state if isinstance(state, SpineState) else np.asarray(state)
    occ = st > 0
    if groups is None:
        return float(occ.mean()) if occ.size else float("nan")
    g = np.asarray(groups)
    if g.shape != st.shape or not np.issubdtype(g.dtype, np.integer) or (g.size and g.min() < 0):
        raise InputError("groups", "must be non-negative integers, one per site")
    ng = int(n_groups) if n_groups is not None else (int(g.max()) + 1 if g.size else 0)
    tot = np.bincount(g, minlength=ng).astype(np.float64)
    num = np.bincount(g, weights=occ, minlength=ng)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, num / np.maximum(tot, 1), np.nan)


def homeostatic_drive(state: SpineState, groups=None, target_density=None, params=None):
    """Per-site cell_drive from each group's spine deficit:
    ``clip(gain * (target - density) / target, -drive_max, drive_max)``.  ``groups`` is the
    postsynaptic cell (or population) id per site; target defaults to the equilibrium
    occupancy of the model (scalar or one value per group).

    Parameters
    ----------
    state : SpineState
        Site states.
    groups : ndarray of int, optional
        Group id per site.
    target_density : float or ndarray, optional
        Set point (occupied fraction).
    params : ParamTree or dict, optional
        Structural model (``[homeostasis]`` gain, drive_max).

    Returns
    -------
    ndarray (n_sites,)
    """
    P = _params(params)
    h = P["homeostasis"]
    if target_density is None:
        target_density = 1.0 - equilibrium_fractions(P)["empty"]
    dens = density(state, groups)
    tgt = np.asarray(target_density, dtype=np.float64)
    if np.any(tgt <= 0) or np.any(tgt > 1):
        raise InputError("target_density", "must be in (0, 1]")
    d = np.clip(h["gain"] * (tgt - dens) / tgt, -h["drive_max"], h["drive_max"])
    if groups is None:
        return np.full(state.n_sites, float(d))
    return np.asarray(d, dtype=np.float64)[np.asarray(groups)]


# ----------------------------------------------------------------------------- activity drive
def relative_excess(x, x_rest) -> np.ndarray:
    """``x / x_rest - 1`` per cell, 0 where the rest reference is 0 (no signal at rest).

    Parameters
    ----------
    x, x_rest : ndarray (n_cells,)
        A per-cell signal in a session and the same cell's value at rest.

    Returns
    -------
    ndarray (n_cells,)
    """
    x = np.asarray(x, dtype=np.float64)
    x0 = np.broadcast_to(np.asarray(x_rest, dtype=np.float64), x.shape)
    return np.where(x0 > 0, x / np.where(x0 > 0, x0, 1.0) - 1.0, 0.0)


def session_drive(
    ltp, ltp_rest, nmda, nmda_rest, session_s: float, gate=1.0, params=None
) -> np.ndarray:
    """Increment of the activity drive ``D`` of each cell over one stimulation session
    (``[activity]`` of ``models/structural.toml``; ``dD/dt = (u - D) / tau_h`` integrated over
    the session, the decay between sessions is the caller's)::

        x = ltp_gain * (ltp - ltp_rest) / ltp_ref + nmda_gain * (nmda / nmda_rest - 1)
        u = gate * (x if x >= 0 else deficit_weight * x)
        dD = u * session_s / tau_h

    The first term is the excess time the cell's plasticity calcium spent above the GB
    potentiation threshold; the second (mechanism ``nmda_spinogenesis``) the relative excess of
    its presynaptic NMDA-receptor calcium over rest: glutamate with NMDA-receptor activation
    forms new spines within minutes (Kwon & Sabatini 2011 Nature 474:100) and NMDA-receptor
    dependent potentiation stabilises nascent ones (Hill & Zito 2013 J Neurosci 33:678); a
    positive drive raises formation and stabilisation and lowers elimination (rate laws above).
    ``gate`` is the dopamine third factor (:func:`dopamine_gate`; 1 without it).  A session
    below rest (``x < 0``, e.g. cells silenced during it) counts with ``deficit_weight``
    (1: as much as an excess of the same size, the default; 0: only an excess drives).

    Parameters
    ----------
    ltp, ltp_rest : ndarray (n_cells,)
        Time per second above theta_p (s/s) in the session and at rest.
    nmda, nmda_rest : ndarray (n_cells,)
        Mean presynaptic NMDA calcium per synapse (normalised, per second) in the session and
        at rest.
    session_s : float
        Session length (s).
    gate : float or ndarray (n_cells,)
        Dopamine gate.
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    ndarray (n_cells,)
        Increment of ``D``.
    """
    act = _params(params)["activity"]
    ltp = np.asarray(ltp, dtype=np.float64)
    u = act["ltp_gain"] * ((ltp - ltp_rest) / act["ltp_ref"])
    if act["nmda_gain"] != 0:
        u = u + act["nmda_gain"] * relative_excess(nmda, nmda_rest)
    w = act.get("deficit_weight", 1.0)
    if w != 1.0:
        u = np.where(u < 0, w * u, u)
    return u * gate * (session_s / 3600.0) / act["tau_h"]


def session_dopamine(
    pulse_intensities, scale: float, params=None, excess_spikes: float = 0.0
) -> float:
    """Dopamine released by one stimulation session, in [0, 1) (``[dopamine]`` of
    ``models/structural.toml``)::

        E = pulse_weight * scale * sum(pulse_intensities) + spike_weight * excess_spikes
        DA = E / (E + e_half)        (0 when E <= 0)

    The first term counts the session's pulse-equivalents at 100 % RMT (0 for a session
    without pulses or with zero intensity, e.g. sham); the second the excess spikes per cell
    that the release populations fired over their rest (:func:`excess_release_spikes`).  rTMS
    of prefrontal cortex releases dopamine (Strafella et al. 2001 J Neurosci 21:RC157; Cho &
    Strafella 2009 PLoS One 4:e6725), and prefrontal activity does so through the projections
    of prefrontal pyramidal cells to the VTA (Karreman & Moghaddam 1996 J Neurochem 66:589;
    Carr & Sesack 2000 J Neurosci 20:3864).  Release lasts longer than a session, so the
    session's activity and the dopamine overlap whole (eligibility traces of seconds:
    Yagishita et al. 2014 Science 345:1616; He et al. 2015 Neuron 88:528).  With the defaults
    (``pulse_weight`` 1, ``spike_weight`` 0) ``E`` is the pulse-equivalents alone, bit for bit.

    Parameters
    ----------
    pulse_intensities : array_like
        Relative intensity of each pulse of the session (the protocol's).
    scale : float
        Pulse-equivalents per unit relative intensity: the session's intensity in %RMT / 100
        for TMS, ``dopamine.light_pulse_equivalent`` for light.
    params : ParamTree or dict, optional
        Structural model.
    excess_spikes : float, optional
        Weighted excess spikes per cell of the release populations in the session
        (:func:`excess_release_spikes`); 0: none counted.

    Returns
    -------
    float
    """
    d = _params(params)["dopamine"]
    e = d["pulse_weight"] * (
        float(scale) * float(np.sum(np.asarray(pulse_intensities, dtype=np.float64)))
    )
    if d["spike_weight"] != 0:
        e = e + d["spike_weight"] * float(excess_spikes)
    if e <= 0:
        return 0.0
    return e / (e + d["e_half"])


def release_weights(populations, params=None) -> np.ndarray:
    """Weight of each population's excess spikes in the session's dopamine release
    (``[dopamine.release.<population>].weight``; 0 for a population without a table).

    Parameters
    ----------
    populations : sequence of str
        The circuit's populations.
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    ndarray (n_pop,)
        In the order of ``populations``.

    Raises
    ------
    InputError
        A release table names no population of the circuit.
    """
    rel = _params(params)["dopamine"].get("release", {})
    pops = list(populations)
    for p in rel:
        if p not in pops:
            raise InputError(
                f"structural.dopamine.release.{p}", "not a population of the circuit", pops
            )
    return np.array([rel[p]["weight"] if p in rel else 0.0 for p in pops], dtype=np.float64)


def excess_release_spikes(rates, rest_rates, session_s: float, populations, params=None) -> float:
    """Excess spikes per cell that the release populations fire in one session over their
    rest, weighted: ``S = sum_p w_p * (r_p - r0_p) * session_s`` (negative when they fire less
    than at rest, e.g. silenced; :func:`release_weights` gives ``w_p``).

    Parameters
    ----------
    rates, rest_rates : array_like (n_pop,)
        Mean rate of each population in the session and at rest (Hz), in the order of
        ``populations``.
    session_s : float
        Session length (s).
    populations : sequence of str
        The circuit's populations.
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    float
        Spikes per cell.
    """
    w = release_weights(populations, params)
    excess = np.asarray(rates, dtype=np.float64) - np.asarray(rest_rates, dtype=np.float64)
    return float(np.dot(w, excess)) * float(session_s)


def dopamine_gains_on(params=None) -> bool:
    """Whether the dopamine third factor acts (``dopamine.gain_d1`` or ``gain_d2`` non-zero).

    Parameters
    ----------
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    bool
    """
    d = _params(params)["dopamine"]
    return d["gain_d1"] != 0 or d["gain_d2"] != 0


class Receptors(NamedTuple):
    """Which cells express dopamine receptors (:func:`draw_receptors`).

    Attributes
    ----------
    d1, d2 : ndarray of bool (n_cells,)
        The cell expresses D1 / D2 receptors (never both: see :func:`draw_receptors`).
    """

    d1: np.ndarray
    d2: np.ndarray


def receptor_probabilities(populations, params=None) -> tuple[np.ndarray, np.ndarray]:
    """Probability that a cell of each population expresses D1 / D2 receptors
    (``[dopamine.receptors.<population>]`` ``d1_probability`` / ``d2_probability``; their
    sources and which numbers are inferences: ``models/structural.toml``).

    Parameters
    ----------
    populations : sequence of str
        Population names.
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    p1, p2 : ndarray (n_pop,)
        In the order of ``populations``.

    Raises
    ------
    InputError
        A population without a receptor table, or ``p1 + p2 > 1`` (the two are drawn as
        exclusive).
    """
    rec = _params(params)["dopamine"].get("receptors", {})
    pops = list(populations)
    missing = [p for p in pops if p not in rec]
    if missing:
        raise InputError(
            f"structural.dopamine.receptors.{missing[0]}",
            "no D1/D2 receptor probabilities for this population (needed when "
            "dopamine.gain_d1 or gain_d2 is non-zero)",
            sorted(rec),
        )
    p1 = np.array([rec[p]["d1_probability"] for p in pops], dtype=np.float64)
    p2 = np.array([rec[p]["d2_probability"] for p in pops], dtype=np.float64)
    over = np.flatnonzero(p1 + p2 > 1.0)
    if over.size:
        p = pops[over[0]]
        raise InputError(
            f"structural.dopamine.receptors.{p}",
            f"d1_probability + d2_probability = {p1[over[0]] + p2[over[0]]:g} > 1 "
            "(a cell expresses D1 or D2, not both)",
            "a sum <= 1",
        )
    return p1, p2


def draw_receptors(populations, pop_of_cell, rng: np.random.Generator, params=None) -> Receptors:
    """Draw which cells express D1 / D2 receptors, each cell with its population's
    probabilities (:func:`receptor_probabilities`).

    One uniform ``u`` per cell (in cell order): D1 if ``u < p1``, D2 if ``u >= 1 - p2``.  So
    no cell expresses both (Santana et al. 2009 Cereb Cortex 19:849 find "little overlap" of D1
    and D2 mRNA in layer V pyramidal cells; none is an approximation), the D1 cells depend on
    ``p1`` alone and the D2 cells on ``p2`` alone, and a larger probability only adds cells.
    The runner draws once per seed from the named stream ``"receptors"``
    (:data:`cortexsim.rng.STREAMS`), so every condition of a run has the same cells' receptors.

    Parameters
    ----------
    populations : sequence of str
        Population names, in the order of the indices in ``pop_of_cell``.
    pop_of_cell : ndarray of int (n_cells,)
        Population index of each cell.
    rng : numpy.random.Generator
        Source of the draws (one ``random(n_cells)`` call).
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    Receptors
    """
    p1, p2 = receptor_probabilities(populations, params)
    idx = np.asarray(pop_of_cell)
    u = rng.random(idx.shape[0])
    return Receptors(d1=u < p1[idx], d2=u >= 1.0 - p2[idx])


def dopamine_gate(da: float, receptors: Receptors | None, params=None) -> np.ndarray | float:
    """Third-factor gate of each cell's session drive (mechanism ``dopamine_d1``)::

        G_i = 1 + DA * (gain_d1 * D1_i + gain_d2 * D2_i),    gain_d1, gain_d2 >= 0

    ``D1_i``, ``D2_i`` in {0, 1}: cell ``i`` expresses the receptor (:func:`draw_receptors`).
    Both receptors raise the calcium-driven drive of the cells that carry them, the signs
    measured in prefrontal cortex: D1 receptors (Gs, PKA) enhance the firing of the L5 cells
    that express them (Seong & Carter 2012 J Neurosci 32:10516), and new spines need PKA with
    NMDA receptors (Kwon & Sabatini 2011 Nature 474:100; Yagishita et al. 2014 Science
    345:1616); a D2 agonist evokes in thick-tufted, subcortically projecting (PT-type) L5 cells
    an afterdepolarisation that needs NMDA receptors and L-type Ca2+ channels, and enhances
    their Ca2+ potentials (Gee et al. 2012 J Neurosci 32:4959).  The gate multiplies the
    session's calcium excess over rest (:func:`session_drive`), so, as in Gee et al., it acts
    only with synaptic (NMDA) activity.  ``G_i >= 1``: no cell's drive is shut.  A cell
    without receptors, or a session without dopamine, has ``G_i = 1``; with both gains 0 (the
    default) the gate is 1 and no receptor is needed.

    Parameters
    ----------
    da : float
        Dopamine of the session (:func:`session_dopamine`), in [0, 1).
    receptors : Receptors or None
        The cells' receptors (:func:`draw_receptors`); may be None when both gains are 0.
    params : ParamTree or dict, optional
        Structural model.

    Returns
    -------
    float or ndarray (n_cells,)
        1.0 when the gains are 0, else the gate per cell.

    Raises
    ------
    ValueError
        A gain is non-zero and ``receptors`` is None.
    """
    if not dopamine_gains_on(params):
        return 1.0
    d = _params(params)["dopamine"]
    if receptors is None:
        raise ValueError(
            "dopamine_gate: gain_d1 or gain_d2 is non-zero but no receptors were "
            "drawn (draw_receptors)"
        )
    return 1.0 + da * (d["gain_d1"] * receptors.d1 + d["gain_d2"] * receptors.d2)


# ----------------------------------------------------------------------------- numba kernel
@njit(cache=True, inline="always")
def _site_rates(c, p, d):
    """Hazards of one site (1/step before the stress multipliers): formation ``kf``,
    stabilisation ``kst``, elimination of a nascent ``ken`` and of a stable spine ``kes``;
    the stable target weight ``wt``."""
    kf = c[0] * max(0.0, 1.0 + c[1] * d)
    kst = (c[2] + (c[3] - c[2]) * p) * max(0.0, 1.0 + c[4] * d)
    ken = (c[5] + (c[6] - c[5]) * p) * max(0.0, 1.0 - c[7] * d)
    kes = (c[8] + (c[9] - c[8]) * p) * max(0.0, 1.0 - c[10] * d)
    wt = c[12] + (c[13] - c[12]) * p
    return kf, kst, ken, kes, wt


@njit(cache=True, inline="always")
def _next_event(s, r, k, n_steps, kf, kst, ken, kes, m):
    """From step ``k``, spend the residual hazard ``r`` in state ``s`` until it is used up:
    ``(k, r)`` with ``k`` the event's step, or ``n_steps`` when none comes."""
    if s == 0:
        while k < n_steps:
            r = r - kf * m[0, k]
            if r <= 0.0:
                break
            k += 1
    elif s == 1:
        while k < n_steps:
            r = r - (ken * m[2, k] + kst * m[1, k])
            if r <= 0.0:
                break
            k += 1
    else:
        while k < n_steps:
            r = r - kes * m[3, k]
            if r <= 0.0:
                break
            k += 1
    return k, r


@njit(cache=True, inline="always")
def _event(s, wa, ka, k, i, kst, ken, wn, m, qpow, keys_fate, counts_b):
    """The event of site ``i`` at step ``k`` in state ``s``: formation, stabilisation or
    elimination of a nascent spine (drawn from ``keys_fate``), elimination of a stable one.
    Counted in ``counts_b``; returns the new ``(s, wa)``."""
    if s == 0:
        counts_b[0, k] += 1
        return 1, wn
    if s == 1:
        hs = kst * m[1, k]
        h = ken * m[2, k] + hs
        u2 = R.uniform(keys_fate[k], i)
        if u2 * h < hs:
            counts_b[1, k] += 1
            return 2, wn + (wa - wn) * qpow[k - ka]
        counts_b[2, k] += 1
        return 0, 0.0
    counts_b[3, k] += 1
    return 0, 0.0


@njit(cache=True, inline="always")
def _final_weight(s, wa, ka, wt, wn, qpow, n_steps):
    """The weight at the end: relaxed from ``wa`` (at step ``ka``) towards the state's
    target."""
    if s == 2:
        return np.float32(wt + (wa - wt) * qpow[n_steps - ka])
    if s == 1:
        return np.float32(wn + (wa - wn) * qpow[n_steps - ka])
    return np.float32(0.0)


@njit(cache=True, inline="always")
def _final_age(s, age_i, last_form, n_steps, dt_h):
    """The spine's age at the end (h): 0 without a spine, from its latest formation, or the
    previous age plus the run."""
    if s == 0:
        return np.float32(0.0)
    if last_form >= 0:
        return np.float32((n_steps - last_form) * dt_h)
    return np.float32(np.float64(age_i) + n_steps * dt_h)


@njit(parallel=True, cache=True)
def _kernel(
    state,
    weight,
    age,
    has_age,
    plast,
    drive,
    c,
    m,
    qpow,
    key_init,
    keys_next,
    keys_fate,
    dt_h,
    block,
    counts,
):
    n = state.size
    n_steps = m.shape[1]
    nb = (n + block - 1) // block
    wn = c[11]
    for b in prange(nb):
        lo = b * block
        hi = min(n, lo + block)
        for i in range(lo, hi):
            kf, kst, ken, kes, wt = _site_rates(c, np.float64(plast[i]), np.float64(drive[i]))
            s = state[i]
            wa = np.float64(weight[i])  # weight at anchor step ka (before its relaxation)
            ka = 0
            last_form = -1
            r = R.neg_log(R.uniform_open(key_init, i))
            k = 0
            while k < n_steps:
                k, r = _next_event(s, r, k, n_steps, kf, kst, ken, kes, m)
                if k >= n_steps:
                    break
                if s == 0:
                    last_form = k
                s, wa = _event(s, wa, ka, k, i, kst, ken, wn, m, qpow, keys_fate, counts[b])
                ka = k
                r = R.neg_log(R.uniform_open(keys_next[k], i))
                k += 1
            state[i] = s
            weight[i] = _final_weight(s, wa, ka, wt, wn, qpow, n_steps)
            if has_age:
                age[i] = _final_age(s, age[i], last_form, n_steps, dt_h)


# ----------------------------------------------------------------------------- numpy reference
def _advance_numpy(
    state, weight, age, plast, drive, c, m, qpow, key_init, keys_next, keys_fate, dt_h
):
    n = state.size
    n_steps = m.shape[1]
    sites = np.arange(n, dtype=np.int64)
    p = plast.astype(np.float64)
    d = drive.astype(np.float64)
    kf, kst, ken, kes, wt = _site_rates_np(c, p, d)
    wn = c[11]
    s = state.astype(np.int8).copy()
    wa = weight.astype(np.float64)
    ka = np.zeros(n, np.int64)
    last_form = np.full(n, -1, np.int64)
    r = R.neg_log_np(R.uniform_open_np(key_init, sites))
    counts = np.zeros((_N_COUNT, n_steps), np.int64)
    for k in range(n_steps):
        h = np.where(
            s == 0, kf * m[0, k], np.where(s == 1, ken * m[2, k] + kst * m[1, k], kes * m[3, k])
        )
        r = r - h
        ev = np.flatnonzero(r <= 0.0)
        if ev.size == 0:
            continue
        se = s[ev]
        # formation
        f = ev[se == 0]
        s[f] = 1
        wa[f] = wn
        ka[f] = k
        last_form[f] = k
        counts[0, k] = f.size
        # nascent: stabilise or eliminate
        nn = ev[se == 1]
        if nn.size:
            hs = kst[nn] * m[1, k]
            hh = ken[nn] * m[2, k] + hs
            u2 = R.uniform_np(keys_fate[k], nn)
            stab = u2 * hh < hs
            ns, ne = nn[stab], nn[~stab]
            wa[ns] = wn + (wa[ns] - wn) * qpow[k - ka[ns]]
            s[ns] = 2
            s[ne] = 0
            wa[ne] = 0.0
            ka[nn] = k
            counts[1, k] = ns.size
            counts[2, k] = ne.size
        # stable elimination
        se2 = ev[se == 2]
        s[se2] = 0
        wa[se2] = 0.0
        ka[se2] = k
        counts[3, k] = se2.size
        r[ev] = R.neg_log_np(R.uniform_open_np(keys_next[k], ev))
    q_end = qpow[n_steps - ka]
    w_new = np.where(
        s == 2, wt + (wa - wt) * q_end, np.where(s == 1, wn + (wa - wn) * q_end, 0.0)
    ).astype(np.float32)
    age_new = None
    if age is not None:
        age_new = np.where(
            s == 0,
            0.0,
            np.where(
                last_form >= 0,
                (n_steps - last_form) * dt_h,
                age.astype(np.float64) + n_steps * dt_h,
            ),
        ).astype(np.float32)
    return s, w_new, age_new, counts


# ----------------------------------------------------------------------------- public API
def _as_site_array(name, x, n, lo=None, hi=None):
    """float32 contiguous per-site array (scalars broadcast); checks finiteness and range
    with two reductions (NaN and inf propagate into min/max)."""
    if np.ndim(x) == 0:
        a = np.full(n, x, dtype=np.float32)
    else:
        a = np.ascontiguousarray(x, dtype=np.float32)
        if a.shape != (n,):
            raise InputError(
                name, f"expected a scalar or an array of length {n}, got shape {a.shape}"
            )
    if n:
        mn, mx = float(a.min()), float(a.max())
        if not (np.isfinite(mn) and np.isfinite(mx)):
            raise InputError(name, "must be finite")
        if lo is not None and (mn < lo or mx > hi):
            raise InputError(name, f"values must lie in [{lo}, {hi}]")
    return a


def advance(
    state: SpineState,
    plast,
    cell_drive,
    stress,
    dt_h: float,
    n_steps: int,
    seed: int,
    step0: int = 0,
    params=None,
    backend: str = "numba",
):
    """Advance all spine sites by ``n_steps`` steps of ``dt_h`` hours.

    plast: per-site plasticity signal in [0, 1] (scalar broadcasts); cell_drive: per-site drive
    of the postsynaptic cell (finite; > 0 = below set point); stress: S >= 0, scalar or one
    value per step; seed/step0: counter-based RNG coordinates (use distinct step0 for
    consecutive calls).  Returns ``(new_state, counts)``; counts holds per-step int64 arrays
    ``formed``, ``stabilised``, ``eliminated`` (= ``eliminated_nascent`` +
    ``eliminated_stable``) and their totals under ``totals``.  The input state is not modified.

    Parameters
    ----------
    state : SpineState
        Sites at the start.
    plast : float or ndarray (n_sites,)
        Plasticity signal.
    cell_drive : float or ndarray (n_sites,)
        Postsynaptic drive.
    stress : float or ndarray (n_steps,)
        Glucocorticoid signal.
    dt_h : float
        Step (h).
    n_steps : int
        Number of steps.
    seed, step0 : int
        RNG coordinates.
    params : ParamTree or dict, optional
        Structural model.
    backend : str
        ``"numba"`` (kernel) or ``"numpy"`` (reference; same numbers).

    Returns
    -------
    new_state : SpineState
    counts : dict

    Raises
    ------
    InputError
        Shapes that do not match, non-finite or out-of-range inputs, an unknown backend.
    """
    if not isinstance(state, SpineState):
        raise InputError("state", "expected a SpineState")
    check_choice("backend", backend, BACKENDS)
    dt_h = check_number("dt_h", dt_h, min=0, strict_min=True)
    n_steps = check_number("n_steps", n_steps, min=0, integer=True)
    seed = check_number("seed", seed, min=0, integer=True)
    step0 = check_number("step0", step0, min=0, integer=True)
    n = state.n_sites
    plast = _as_site_array("plast", plast, n, 0.0, 1.0)
    drive = _as_site_array("cell_drive", cell_drive, n)
    S = np.asarray(stress, dtype=np.float64)
    S = np.full(n_steps, float(S)) if S.ndim == 0 else S
    if S.shape != (n_steps,):
        raise InputError(
            "stress", f"expected a scalar or {n_steps} values (one per step), got shape {S.shape}"
        )
    if not np.all(np.isfinite(S)) or (S.size and S.min() < 0):
        raise InputError("stress", "must be finite and >= 0")
    P = _params(params)
    tau_w = check_number("weight.tau_w", P["weight"]["tau_w"], min=0, strict_min=True)
    c = _rate_vector(P)
    if np.any(c[[0, 2, 3, 5, 6, 8, 9]] < 0):
        raise InputError("params", "rates must be >= 0")
    m = stress_multipliers(S, dt_h, P)
    qpow = np.exp(-dt_h / tau_w) ** np.arange(n_steps + 1, dtype=np.float64)
    steps = step0 + np.arange(n_steps, dtype=np.int64)
    key_init = R.step_keys(seed, R.STREAM_INIT, [step0])[0]
    keys_next = R.step_keys(seed, R.STREAM_NEXT, steps)
    keys_fate = R.step_keys(seed, R.STREAM_FATE, steps)
    new = state.copy()
    if backend == "numba":
        block = max(1024, -(-n // 256))
        nb = max(1, -(-n // block))
        cnt = np.zeros((nb, _N_COUNT, n_steps), np.int32)
        has_age = new.age is not None
        age = new.age if has_age else np.zeros(1, np.float32)
        if n and n_steps:
            _kernel(
                new.state,
                new.weight,
                age,
                has_age,
                plast,
                drive,
                c,
                m,
                qpow,
                key_init,
                keys_next,
                keys_fate,
                float(dt_h),
                block,
                cnt,
            )
        counts = cnt.sum(axis=0, dtype=np.int64)
    else:
        s, w, a, counts = _advance_numpy(
            new.state,
            new.weight,
            new.age,
            plast,
            drive,
            c,
            m,
            qpow,
            key_init,
            keys_next,
            keys_fate,
            float(dt_h),
        )
        new = SpineState(s, w, a)
    out = {
        "formed": counts[0],
        "stabilised": counts[1],
        "eliminated_nascent": counts[2],
        "eliminated_stable": counts[3],
        "eliminated": counts[2] + counts[3],
    }
    out["totals"] = {k: int(v.sum()) for k, v in out.items()}
    return new, out


def run_slow_phase(
    state: SpineState,
    plast,
    stress,
    dt_h: float,
    n_steps: int,
    seed: int,
    groups=None,
    activity_drive=0.0,
    target_density=None,
    step0: int = 0,
    params=None,
    backend: str = "numba",
    record_every: int | None = None,
):
    """Advance with homeostatic feedback: every ``homeostasis.update_interval`` hours the
    per-group spine deficit is turned into cell_drive (:func:`homeostatic_drive`) and added
    to ``activity_drive``.  Returns ``(state, counts, trace)``: per-step counts as in
    :func:`advance`; trace: dict of ``t_h`` and ``density`` (n_records x n_groups, or
    n_records) sampled at the start and after every update interval.

    Parameters
    ----------
    state : SpineState
        Sites at the start.
    plast : float or ndarray (n_sites,)
        Plasticity signal.
    stress : float or ndarray (n_steps,)
        Glucocorticoid signal.
    dt_h : float
        Step (h).
    n_steps : int
        Number of steps.
    seed : int
        RNG seed.
    groups : ndarray of int, optional
        Homeostatic group (postsynaptic cell) per site.
    activity_drive : float or ndarray (n_sites,)
        Activity-dependent drive added to the homeostatic one.
    target_density : float or ndarray, optional
        Homeostatic set point.
    step0 : int
        First step index (RNG coordinate).
    params : ParamTree or dict, optional
        Structural model.
    backend : str
        ``"numba"`` or ``"numpy"``.
    record_every : int, optional
        Steps between density records (default: the update interval).

    Returns
    -------
    state : SpineState
    counts : dict
    trace : dict

    Raises
    ------
    InputError
        As :func:`advance`.
    """
    P = _params(params)
    dt_h = check_number("dt_h", dt_h, min=0, strict_min=True)
    n_steps = check_number("n_steps", n_steps, min=0, integer=True)
    ui = P["homeostasis"]["update_interval"]
    chunk = ui / dt_h
    if abs(chunk - round(chunk)) > 1e-9 or round(chunk) < 1:
        raise InputError(
            "dt_h", f"homeostasis.update_interval ({ui} h) must be a multiple of dt_h ({dt_h} h)"
        )
    chunk = int(round(chunk))
    S = np.asarray(stress, dtype=np.float64)
    S = np.full(n_steps, float(S)) if S.ndim == 0 else S
    if S.shape != (n_steps,):
        raise InputError("stress", f"expected a scalar or {n_steps} values")
    act = _as_site_array("activity_drive", activity_drive, state.n_sites).astype(np.float64)
    tot = {k: [] for k in ("formed", "stabilised", "eliminated_nascent", "eliminated_stable")}
    t_rec, d_rec = [0.0], [density(state, groups)]
    k = 0
    while k < n_steps:
        nk = min(chunk, n_steps - k)
        drive = act + homeostatic_drive(state, groups, target_density, P)
        state, cnt = advance(
            state, plast, drive, S[k : k + nk], dt_h, nk, seed, step0 + k, P, backend
        )
        for key in tot:
            tot[key].append(cnt[key])
        k += nk
        t_rec.append(k * dt_h)
        d_rec.append(density(state, groups))
    out = {key: (np.concatenate(v) if v else np.zeros(0, np.int64)) for key, v in tot.items()}
    out["eliminated"] = out["eliminated_nascent"] + out["eliminated_stable"]
    out["totals"] = {key: int(v.sum()) for key, v in out.items()}
    return state, out, {"t_h": np.asarray(t_rec), "density": np.asarray(d_rec)}


def mean_field(
    stress, dt_h: float, params=None, plast=None, homeostasis: bool = True, fractions0=None
):
    """Expected fractions (empty, nascent, stable) per step for one homogeneous group of
    infinitely many sites: the same discrete-time chain as :func:`advance` (per-step
    probabilities 1 - exp(-h)), with the homeostatic drive refreshed every update interval.
    Returns an (n_steps + 1, 3) array.  Used for calibration and as a test oracle.

    Parameters
    ----------
    stress : float or ndarray (n_steps,)
        Glucocorticoid signal per step.
    dt_h : float
        Step (h).
    params : ParamTree or dict, optional
        Structural model.
    plast : float, optional
        Plasticity signal (default ``plast_ref``).
    homeostasis : bool
        Include the homeostatic feedback.
    fractions0 : array_like (3,), optional
        Start (default: the equilibrium).

    Returns
    -------
    ndarray (n_steps + 1, 3)
    """
    P = _params(params)
    S = np.asarray(stress, dtype=np.float64)
    p = P["baseline"]["plast_ref"] if plast is None else float(plast)
    fr = (
        equilibrium_fractions(P)
        if fractions0 is None
        else dict(zip(("empty", "nascent", "stable"), fractions0))
    )
    x = np.array([fr["empty"], fr["nascent"], fr["stable"]])
    target = 1.0 - equilibrium_fractions(P)["empty"]
    m = stress_multipliers(S, dt_h, P)
    c = _rate_vector(P)
    h = P["homeostasis"]
    chunk = int(round(h["update_interval"] / dt_h))
    out = np.empty((S.size + 1, 3))
    out[0] = x
    d = 0.0
    for k in range(S.size):
        if homeostasis and k % chunk == 0:
            dens = x[1] + x[2]
            d = float(
                np.clip(h["gain"] * (target - dens) / target, -h["drive_max"], h["drive_max"])
            )
        kf, kst, ken, kes, _ = (float(v) for v in _site_rates_np(c, p, d))
        pf = 1 - math.exp(-kf * m[0, k])
        hn = ken * m[2, k] + kst * m[1, k]
        pn = 1 - math.exp(-hn)
        fst = kst * m[1, k] / hn if hn > 0 else 0.0
        pe = 1 - math.exp(-kes * m[3, k])
        e, n_, s_ = x
        x = np.array(
            [
                e - e * pf + n_ * pn * (1 - fst) + s_ * pe,
                n_ + e * pf - n_ * pn,
                s_ + n_ * pn * fst - s_ * pe,
            ]
        )
        out[k + 1] = x
    return out
