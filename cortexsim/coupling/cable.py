"""Validation: numerical cable equation for a straight passive fibre in a uniform field.

Compartmental (vertex-centred finite-volume) discretisation of a fibre of length L with N
nodes, sealed ends (half-length end compartments), Crank-Nicolson in time with a sparse
tridiagonal system (scipy.sparse, LU factorised once):

    tau dV_i/dt = -V_i + lambda^2 / (l_i dx) * sum_j [(V_j - V_i) + (phi_j - phi_i)]

where phi is the extracellular potential along the fibre (phi = -E x cos(angle) for a uniform
field); the phi differences are the activating function.  In a uniform field they cancel
inside the fibre and only the end compartments are driven (+-2 lambda^2 E / dx).
The first steps use backward Euler (Rannacher start-up), which damps the stiff high-
frequency modes that a step of the field would otherwise leave ringing under plain CN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.sparse.linalg import splu

from ..errors import InputError, check_number
from .limits import MAX_CABLE_NODES, MAX_CABLE_STEPS, MAX_SD_WIDTHS, check_count
from .membrane import (
    _MV_PER_UM_PER_VPM,
    _params,
    _resolve_waveform,
    _setting,
    cell_params,
    check_cell_type,
    response_peaks,
    spike_filter,
    terminal_response,
)
from .waveforms import Waveform, check_width


@dataclass
class CableResult:
    """Result of :func:`solve_cable`.

    Attributes
    ----------
    t_s : ndarray (n_steps + 1,)
        Time (s) from the pulse onset.
    x_um : ndarray (n_nodes,)
        Node positions along the fibre (um).
    v_end_mV, v_start_mV : ndarray (n_steps + 1,)
        Membrane potential re rest at x = L and x = 0 (mV).
    v_final_mV : ndarray (n_nodes,)
        Potential along the fibre at the last step (mV).
    """
    t_s: np.ndarray        # (n_t,) times at the step boundaries
    x_um: np.ndarray       # (n_x,) node positions
    v_end_mV: np.ndarray   # (n_t,) potential at x = L (the end the field points to)
    v_start_mV: np.ndarray  # (n_t,) potential at x = 0
    v_final_mV: np.ndarray  # (n_x,) profile at the last step


def solve_cable(waveform: Waveform, field_vpm: float, length_um: float, lambda_um: float,
                tau_us: float, dx_um: float | None = None, substeps: int = 1,
                tail_us: float = 1000.0, n_be_start: int = 2) -> CableResult:
    """Membrane potential (mV re rest) of a sealed straight fibre along a uniform field
    ``field_vpm * e(t)`` (field component along the fibre, pointing from x=0 to x=L).

    ``dx_um`` defaults to min(lambda/40, L/40); ``substeps`` divides the waveform step.

    Crank-Nicolson (after ``n_be_start`` backward-Euler steps) finite-difference solution of
    the passive cable equation with sealed ends (Rattay 1986 IEEE Trans Biomed Eng; the field
    enters at the ends), used to validate the reduced model.

    Parameters
    ----------
    waveform : Waveform
        Normalised pulse shape.
    field_vpm : float
        Peak field along the fibre (V/m).
    length_um, lambda_um : float
        Fibre length and length constant (um).
    tau_us : float
        Membrane time constant (us).
    dx_um : float, optional
        Node spacing (um).
    substeps : int
        Time steps per waveform sample.
    tail_us : float
        Time followed after the pulse (us).
    n_be_start : int
        Backward-Euler steps at the start (damp Crank-Nicolson oscillations).

    Returns
    -------
    CableResult

    Raises
    ------
    InputError
        Non-positive sizes, or more nodes or steps than
        :data:`~cortexsim.coupling.limits.MAX_CABLE_NODES` /
        :data:`~cortexsim.coupling.limits.MAX_CABLE_STEPS`.
    """
    L = check_number("length_um", length_um, min=0.0, strict_min=True)
    lam = check_number("lambda_um", lambda_um, min=0.0, strict_min=True)
    tau = check_number("tau_us", tau_us, min=0.0, strict_min=True) * 1e-6
    E = check_number("field_vpm", field_vpm) * _MV_PER_UM_PER_VPM  # mV/um
    if dx_um is None:
        dx_um = min(lam / 40.0, L / 40.0)
    dx_um = check_number("dx_um", dx_um, min=0.0, strict_min=True)
    substeps = check_number("substeps", substeps, min=1, integer=True)
    tail_us = check_number("tail_us", tail_us, min=0.0)
    n_be_start = check_number("n_be_start", n_be_start, min=0, integer=True)
    check_count("dx_um", math.ceil(L / dx_um) + 1, MAX_CABLE_NODES, "compartments")
    if not (math.isfinite(waveform.dt_s) and waveform.dt_s > 0):
        raise InputError("waveform", "needs >= 2 samples on a positive time step")
    check_count("substeps", (len(waveform.e) + math.ceil(tail_us * 1e-6 / waveform.dt_s))
                * substeps, MAX_CABLE_STEPS, "time steps")
    n_int = max(math.ceil(L / dx_um), 2)
    dx = L / n_int
    n = n_int + 1
    x = np.linspace(0.0, L, n)
    seg = np.full(n, dx)
    seg[0] = seg[-1] = dx / 2.0
    # Laplacian-like coupling: (lambda^2 / (seg_i dx)) (V_j - V_i)
    c = lam * lam / dx
    off = np.full(n - 1, c)
    main = np.zeros(n)
    main[:-1] -= c
    main[1:] -= c
    K = sparse.diags([off / seg[1:], main / seg, off / seg[:-1]], [-1, 0, 1], format="csc")
    A = (K - sparse.identity(n, format="csc")) / tau  # dV/dt = A V + b(t)
    # activating function of phi = -E x: sum_j (phi_j - phi_i) lambda^2/(seg_i dx)
    phi_unit = -x  # per unit of E (mV/um) -> mV
    act = np.zeros(n)
    d = np.diff(phi_unit)
    act[:-1] += c * d
    act[1:] -= c * d
    act = act / seg / tau  # b = act * E(t)

    wf_dt = waveform.dt_s
    dt = wf_dt / int(substeps)
    n_tail = math.ceil(tail_us * 1e-6 / wf_dt)
    e = np.concatenate([waveform.e, np.zeros(n_tail)])
    I = sparse.identity(n, format="csc")
    lu_cn = splu((I - 0.5 * dt * A).tocsc())
    M_cn = (I + 0.5 * dt * A).tocsr()
    lu_be = splu((I - dt * A).tocsc())
    V = np.zeros(n)
    n_steps = len(e) * int(substeps)
    v_end = np.zeros(n_steps + 1)
    v_start = np.zeros(n_steps + 1)
    prev_e = 0.0
    be_left = 0
    for k in range(n_steps):
        ek = e[k // int(substeps)]
        if ek != prev_e and (abs(ek - prev_e) > 0.05):
            be_left = n_be_start  # discontinuity in the drive: damp with BE steps
        prev_e = ek
        b = act * (E * ek)
        if be_left > 0:
            V = lu_be.solve(V + dt * b)
            be_left -= 1
        else:
            V = lu_cn.solve(M_cn @ V + dt * b)
        v_end[k + 1] = V[-1]
        v_start[k + 1] = V[0]
    t = np.arange(n_steps + 1) * dt
    return CableResult(t_s=t, x_um=x, v_end_mV=v_end, v_start_mV=v_start, v_final_mV=V)


def cable_threshold_vpm(cell_type: str, waveform="biphasic", pulse_width_us=None, params=None,
                        dx_um=None, substeps: int = 1) -> float:
    """Threshold (V/m) of one terminal aligned with the field (cos = 1, best polarity) from
    the numerical cable: dV_th / peak of the Na-filtered end potential per V/m.

    Parameters
    ----------
    cell_type : str
        A coupling cell type (:func:`~cortexsim.coupling.membrane.cell_types`).
    waveform : str or Waveform
        Pulse shape.
    pulse_width_us : float, optional
        Width (us) for a waveform name (None: its default).
    params : ParamTree or dict, optional
        Coupling parameters (default ``models/coupling.toml``).
    dx_um : float, optional
        Node spacing of the cable solver (um).
    substeps : int
        Solver steps per waveform sample.

    Returns
    -------
    float
        Threshold field (V/m).

    Raises
    ------
    InputError
        Unknown cell type or waveform, a width or parameter out of range.
    """
    p = _params(params)
    check_cell_type(cell_type, p)
    cp = cell_params(cell_type, p)
    wf = _resolve_waveform(waveform, pulse_width_us, p)
    tail = float(_setting(p, "response.tail_us", 1000.0, min=0.0))
    tau_na = float(_setting(p, "response.tau_na_us", 0.0, min=0.0))
    res = solve_cable(wf, 1.0, cp["length_um"], cp["lambda_um"], cp["tau_us"], dx_um=dx_um,
                      substeps=substeps, tail_us=tail)
    dt = res.t_s[1] - res.t_s[0]
    u = spike_filter(res.v_end_mV, dt, tau_na)
    peak = max(u.max(), -u.min())  # V(0) = -V(L) by symmetry: the other polarity
    return cp["dV_th_mV"] / peak


def reduced_terminal_threshold_vpm(cell_type: str, waveform="biphasic", pulse_width_us=None,
                                   params=None) -> float:
    """Same quantity as :func:`cable_threshold_vpm` from the reduced (analytic) model.

    Parameters
    ----------
    cell_type : str
        A coupling cell type.
    waveform : str or Waveform
        Pulse shape.
    pulse_width_us : float, optional
        Width (us) for a waveform name.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float
        Threshold field (V/m).

    Raises
    ------
    InputError
        Unknown cell type or waveform, a width or parameter out of range.
    """
    p = _params(params)
    cp = cell_params(cell_type, p)
    pp, pm = response_peaks(waveform, cp["tau_us"], cp["length_um"] / cp["lambda_um"], p,
                            pulse_width_us=pulse_width_us)
    return cp["dV_th_mV"] / (cp["lambda_um"] * _MV_PER_UM_PER_VPM * max(pp, pm))


def reduced_end_potential(waveform: Waveform, field_vpm: float, length_um: float,
                          lambda_um: float, tau_us: float, tail_us: float = 1000.0,
                          model: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """Reduced-model V_end(t) (mV) for the same set-up as :func:`solve_cable`.

    Parameters
    ----------
    waveform : Waveform
        Normalised pulse shape.
    field_vpm : float
        Peak field along the fibre (V/m).
    length_um, lambda_um : float
        Fibre length and length constant (um).
    tau_us : float
        Membrane time constant (us).
    tail_us : float
        Time followed after the pulse (us).
    model : str
        ``"images"`` or ``"tanh"`` (finite-length model, see :func:`step_response`).

    Returns
    -------
    t_s : ndarray (n + 1,)
        Time (s).
    v_end_mV : ndarray (n + 1,)
        End potential re rest (mV).
    """
    t, r = terminal_response(waveform, tau_us, length_um / lambda_um, tail_us, model)
    return t, r * lambda_um * field_vpm * _MV_PER_UM_PER_VPM


# --------------------------------------------------------------------------- strength-duration
def strength_duration(cell_type: str, widths_us, params=None, method: str = "reduced",
                      dx_um=None) -> np.ndarray:
    """Threshold (V/m) of the cell type's canonical terminal vs rectangular pulse width.

    ``widths_us``: at most :data:`~cortexsim.coupling.limits.MAX_SD_WIDTHS` widths, each within the range of
    ``waveforms.rectangular_width_us``.

    Parameters
    ----------
    cell_type : str
        A coupling cell type.
    widths_us : array_like
        Rectangular pulse widths (us).
    params : ParamTree or dict, optional
        Coupling parameters.
    method : str
        ``"reduced"`` (analytic model) or ``"cable"`` (finite differences).
    dx_um : float, optional
        Node spacing of the cable solver (um).

    Returns
    -------
    ndarray (n_widths,)
        Thresholds (V/m).

    Raises
    ------
    InputError
        Unknown cell type or method, too many widths, a width out of range.
    """
    check_cell_type(cell_type, params)
    if method not in ("reduced", "cable"):
        raise InputError("method", f"unknown value {method!r}", ["reduced", "cable"])
    check_count("widths_us", np.size(widths_us), MAX_SD_WIDTHS, "widths")
    widths = [check_width("rectangular", w, params) for w in np.ravel(widths_us)]
    f = reduced_terminal_threshold_vpm if method == "reduced" else (
        lambda *a, **k: cable_threshold_vpm(*a, dx_um=dx_um, **k))
    return np.array([f(cell_type, "rectangular", pulse_width_us=float(w), params=params)
                     for w in widths])


def fit_sd_time_constant(widths_us, thresholds) -> tuple[float, float]:
    """Fit the first-order (exponential) strength-duration model used for cTMS data,
    ``E_th(W) = E_rh / (1 - exp(-W / tau_sd))``; returns (rheobase V/m, tau_sd in us).

    Parameters
    ----------
    widths_us : array_like (n,)
        Pulse widths (us).
    thresholds : array_like (n,)
        Thresholds (V/m) at those widths.

    Returns
    -------
    rheobase_vpm : float
        Threshold for an infinitely long pulse (V/m).
    tau_sd_us : float
        Strength-duration time constant (us; Peterchev et al. 2013 cTMS).
    """
    w = np.asarray(widths_us, dtype=float)
    th = np.asarray(thresholds, dtype=float)

    def model(ww, rh, tsd):
        return rh / -np.expm1(-ww / tsd)

    (rh, tsd), _ = optimize.curve_fit(model, w, th, p0=[th.min() * 0.8, 150.0],
                                      bounds=([0, 1.0], [np.inf, 1e5]))
    return float(rh), float(tsd)


def plot_strength_duration(path, cell_types=("PT_L5", "IT_L23", "PV", "afferent"),
                           widths_us=(20, 30, 40, 60, 80, 100, 150, 200, 300, 400, 500),
                           params=None) -> dict:
    """Figure of threshold vs rectangular pulse width (reduced model lines, cable solver
    markers, first-order fit) saved to ``path``; returns the fitted values per cell type.

    Parameters
    ----------
    path : str or Path
        Output image file.
    cell_types : sequence of str
        Coupling cell types to draw.
    widths_us : sequence of float
        Rectangular pulse widths (us).
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    dict
        cell type -> ``{"rheobase_vpm", "tau_sd_us"}`` of the first-order fit.
    """
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = np.asarray(widths_us, dtype=float)
    wf = np.geomspace(w.min(), w.max(), 200)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    out = {}
    for ct in cell_types:
        th = strength_duration(ct, w, params)
        thc = strength_duration(ct, w[::2], params, method="cable")
        rh, tsd = fit_sd_time_constant(w, th)
        out[ct] = {"rheobase_vpm": rh, "tau_sd_us": tsd}
        (line,) = ax.plot(w, th, "o-", ms=3, label=f"{ct}: tau_SD = {tsd:.0f} us")
        ax.plot(w[::2], thc, "x", color=line.get_color(), ms=7)
        ax.plot(wf, rh / -np.expm1(-wf / tsd), ":", color=line.get_color(), lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rectangular pulse width (us)")
    ax.set_ylabel("terminal threshold, cell-level field (V/m)")
    ax.set_title("Strength-duration: reduced model (o), cable solver (x), fit (:)", fontsize=9)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([20, 50, 100, 200, 500], ["20", "50", "100", "200", "500"])
    ax.set_yticks([50, 100, 200, 500], ["50", "100", "200", "500"])
    ax.text(0.98, 0.62, "human TMS tau_SD: ~150 us (Barker 1991),\n~200 us (Peterchev 2013),"
            "\n231 +- 97 us PA (D'Ostilio 2016)", transform=ax.transAxes, ha="right", fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return out
