"""Intrinsic cell models of the circuit's populations (IT_L23, IT_L5, PT_L5, PV, SST).

Every population is an adaptive exponential integrate-and-fire neuron (AdEx; Brette & Gerstner
2005 J Neurophysiol) with one extra slow variable: the gating ``m_h`` of a hyperpolarisation-
activated cation current (h-current, HCN channels)::

    C dv/dt   = -g_L (v - E_L) + g_L Delta_T exp((v - V_T)/Delta_T) - w_ad - I_h + I_syn + I_ext
    tau_w dw_ad/dt = a (v - E_L) - w_ad            ; at a spike: v -> V_reset, w_ad -> w_ad + b
    tau_h dm_h/dt = m_inf(v) - m_h,  m_inf = 1/(1 + exp((v - V_half_h)/k_h))
    I_h = g_h m_h (v - E_h)

The equation form is the same for all populations; cell-type differences come only from the
parameter values in ``models/cells.toml`` (each with unit and source).  PT_L5 carries a large
h-conductance (sag, theta resonance), IT_L5 a small one, PV none.

``neuron_model(pop)`` returns the Brian2 pieces for one population; the caller appends the
definitions of ``I_syn`` and ``I_ext`` (amp), which the equations reference but never declare.
Parameter names carry the population as suffix (``g_L_PT_L5``) and live in the namespace.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, check_choice
from ..params import ParamTree, convert, load_model, models_dir, number_in

#: Model parameters of every population: name -> (file unit, Brian2 dimension name).
MODEL_PARAMS = {
    "C": "pF",
    "g_L": "nS",
    "E_L": "mV",
    "V_T": "mV",
    "Delta_T": "mV",
    "V_reset": "mV",
    "t_ref": "ms",
    "a": "nS",
    "b": "pA",
    "tau_w": "ms",
    "g_h": "nS",
    "E_h": "mV",
    "V_half_h": "mV",
    "k_h": "mV",
    "tau_h": "ms",
}
#: Numerical settings shared by all populations (top-level table ``[numerics]``).
NUMERIC_PARAMS = {"spike_cut": "1", "exp_clip": "1"}
#: Dendritic compartment of a population (optional table ``[<pop>.dendrite]``): soma-dendrite
#: coupling conductance (0, the neutral value: no dendrite, a point neuron), the share of the
#: cell's membrane (capacitance and leak) in the dendrite and the dendrite's h-channel density
#: relative to the soma's (see :func:`compartments`).
DENDRITE_PARAMS = {"g_c": "nS", "membrane_fraction": "1", "h_density_ratio": "1"}
#: the per-neuron constants of a two-compartment group (name -> unit, see :func:`compartments`);
#: ``dend`` is 1 for a cell with a dendrite, 0 for a point neuron in the same group
DENDRITE_CONSTANTS = {
    "g_c": "nS",
    "C_d": "pF",
    "g_Ld": "nS",
    "g_hd": "nS",
    "g_T": "nS",
    "dend": "1",
}


def default_cells() -> ParamTree:
    """The cells file of the active model folder (``models/cells.toml`` or
    ``$CORTEXSIM_MODELS/cells.toml``), in the shipped units.

    Read when first needed (never at import) and again when the folder or the file changes;
    the tree returned is shared: read it, do not change it (``load_model("cells")`` gives a
    copy of one's own).

    Returns
    -------
    ParamTree

    Raises
    ------
    InputError
        A missing or malformed file, or a bad unit (see :func:`cortexsim.params.load_model`).
    """
    p = models_dir() / "cells.toml"
    return _cells_file(str(p), p.stat().st_mtime_ns if p.is_file() else None)


@functools.lru_cache(maxsize=4)
def _cells_file(path: str, mtime_ns: int | None) -> ParamTree:
    return load_model(Path(path)) if mtime_ns is not None else load_model("cells")


def cell_models(params=None) -> tuple[str, ...]:
    """Names of the cell models declared in a cells file, in file order.

    A cell model is a table of ``models/cells.toml`` that holds every parameter of
    :data:`MODEL_PARAMS` (``[numerics]`` and ``[protocol]`` are not cell models).  Populations
    name theirs in ``models/circuit.toml`` (``cell = "<table>"``).

    Parameters
    ----------
    params : ParamTree, optional
        A whole cells file (e.g. a user's, with a ``[VIP]`` table).  Default, and for any other
        value (a plain dict of overrides): :func:`default_cells`.

    Returns
    -------
    tuple of str
        Table names, e.g. ``("IT_L23", "IT_L5", "PT_L5", "PV", "SST")`` for the shipped file.
    """
    tree = params if isinstance(params, ParamTree) else default_cells()
    return tuple(
        k for k, v in tree.values().items() if isinstance(v, dict) and set(MODEL_PARAMS) <= set(v)
    )


def _brian_unit(unit: str):
    import brian2 as b2

    return {"pF": b2.pF, "nS": b2.nS, "mV": b2.mV, "ms": b2.ms, "pA": b2.pA, "1": 1}[unit]


def pop_values(pop: str, params=None) -> dict:
    """Plain numbers (file units) of one population's model + numeric parameters.

    ``params`` may be None (use models/cells.toml), a ParamTree/dict of the whole cells file
    (e.g. ``load_model("cells")`` after ``.set("PT_L5.g_h", 0)``), or a dict of this
    population's parameters only (numbers or {value, unit, source} leaves); missing names fall
    back to the file.  ``pop`` names a table of the cells file (a whole-file ParamTree that
    declares a cell model of its own, e.g. a user's VIP table, is read for it).

    Parameters
    ----------
    pop : str
        A cell model (:func:`cell_models`).
    params : ParamTree or dict, optional
        See above.

    Returns
    -------
    dict
        :data:`MODEL_PARAMS` and :data:`NUMERIC_PARAMS` -> float, in the file units (pF, nS, mV,
        ms, pA; numerics dimensionless).

    Raises
    ------
    InputError
        Unknown cell model (field ``cell_type``), a non-finite or non-numeric value, a
        non-positive capacitance/conductance/time constant/slope, or a negative ``t_ref``/``g_h``.
    """
    base = (params if isinstance(params, ParamTree) and pop in params else default_cells()).values()
    # a table the given file lacks falls back to the active model folder's
    check_choice("cell_type", pop, list(dict.fromkeys(cell_models(params) + cell_models())))
    vals = {k: base[pop][k] for k in MODEL_PARAMS}
    vals.update({k: base["numerics"][k] for k in NUMERIC_PARAMS})
    if params is None:
        return vals
    if not isinstance(params, dict):
        raise InputError("params", f"expected a ParamTree or dict, got {type(params).__name__}")
    tree = dict(params)  # leaves keep their units: number_in converts them
    # this population's table, or ``params`` itself when it holds parameters, not tables
    own = tree.get(pop, tree if set(tree) & set(MODEL_PARAMS) else {})
    num = tree.get("numerics", {})
    for src in (num, own):
        if not isinstance(src, dict):
            raise InputError(f"params.{pop}", "expected a table of parameters")
        for k, v in src.items():
            if k in vals:
                v = number_in(f"params.{pop}.{k}", v, {**MODEL_PARAMS, **NUMERIC_PARAMS}[k])
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"params.{pop}.{k}", f"expected a finite number, got {v!r}")
                vals[k] = float(v)
    for k in ("C", "g_L", "Delta_T", "tau_w", "tau_h", "k_h"):
        if vals[k] <= 0:
            raise InputError(f"params.{pop}.{k}", f"must be > 0, got {vals[k]!r}")
    for k in ("t_ref", "g_h"):
        if vals[k] < 0:
            raise InputError(f"params.{pop}.{k}", f"must be >= 0, got {vals[k]!r}")
    return vals


def si_values(vals: dict) -> dict:
    """File-unit numbers -> SI floats.

    Parameters
    ----------
    vals : dict
        Output of :func:`pop_values`.

    Returns
    -------
    dict
        Same keys, SI floats (F, S, V, s, A).
    """
    units = {**MODEL_PARAMS, **NUMERIC_PARAMS}
    return {k: convert(f"cells.{k}", v, units[k]) for k, v in vals.items()}


def dendrite_values(pop: str, params=None) -> dict:
    """Dendritic compartment of one population (file units), neutral when it declares none.

    Parameters
    ----------
    pop : str
        A cell model (:func:`cell_models`).
    params : ParamTree or dict, optional
        The whole cells file (default :func:`default_cells`); its ``[<pop>.dendrite]`` table
        is read.

    Returns
    -------
    dict
        :data:`DENDRITE_PARAMS` -> float (``g_c`` nS; fractions dimensionless); all 0 when the
        population has no ``dendrite`` table.  ``g_c == 0`` means a point neuron.

    Raises
    ------
    InputError
        A negative or non-numeric value, a fraction outside [0, 1), or a coupled dendrite
        (``g_c > 0``) without membrane (``membrane_fraction == 0``).
    """
    tree = params if isinstance(params, dict) and pop in params else default_cells()
    table = tree[pop].get("dendrite", {}) if isinstance(tree[pop], dict) else {}
    if not isinstance(table, dict):
        raise InputError(
            f"params.{pop}.dendrite", "expected a table of parameters", list(DENDRITE_PARAMS)
        )
    out = {}
    for k in DENDRITE_PARAMS:
        v = number_in(f"params.{pop}.dendrite.{k}", table.get(k, 0.0), DENDRITE_PARAMS[k])
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(
                f"params.{pop}.dendrite.{k}", f"expected a finite number >= 0, got {v!r}"
            )
        out[k] = float(v)
    if out["membrane_fraction"] >= 1:
        raise InputError(
            f"params.{pop}.dendrite.membrane_fraction",
            f"must be < 1 (the soma keeps part of the cell), got {out['membrane_fraction']!r}",
            "[0, 1)",
        )
    if out["g_c"] > 0 and out["membrane_fraction"] == 0:
        raise InputError(
            f"params.{pop}.dendrite.membrane_fraction",
            "must be > 0 when the dendrite is coupled (g_c > 0)",
            "(0, 1)",
        )
    return out


# --------------------------------------------------------------------------- steady state
def _m_inf(v, p):
    return 1.0 / (1.0 + np.exp((v - p["V_half_h"]) / p["k_h"]))


def _i_ion(v, p):
    """Net steady-state membrane current (A) at voltage v (V), w and m_h at their steady state."""
    x = np.minimum((v - p["V_T"]) / p["Delta_T"], p["exp_clip"])
    return (
        -p["g_L"] * (v - p["E_L"])
        + p["g_L"] * p["Delta_T"] * np.exp(x)
        - p["a"] * (v - p["E_L"])
        - p["g_h"] * _m_inf(v, p) * (v - p["E_h"])
    )


def resting_state(pop: str, params=None) -> dict:
    """Resting potential (V) and steady-state w_ad (A), m_h of one population (no input).

    Found as the lowest zero of the steady-state current below V_T (stable fixed point).

    Parameters
    ----------
    pop : str
        A cell model.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`pop_values`).

    Returns
    -------
    dict
        ``{"v": V, "w_ad": A, "m_h": 1}``.

    Raises
    ------
    InputError
        Bad parameters, or no stable rest below V_T (the cell fires without input).
    """
    p = si_values(pop_values(pop, params))
    v = np.linspace(p["E_L"] - 0.06, p["V_T"], 4001)
    f = _i_ion(v, p)
    idx = np.nonzero((f[:-1] > 0) & (f[1:] <= 0))[0]
    if idx.size == 0:
        raise InputError(
            f"params.{pop}", "no stable resting potential below V_T (the cell fires without input)"
        )
    i = idx[0]
    lo, hi = v[i], v[i + 1]
    for _ in range(60):  # bisection
        mid = 0.5 * (lo + hi)
        if _i_ion(mid, p) > 0:
            lo = mid
        else:
            hi = mid
    v0 = 0.5 * (lo + hi)
    return {"v": v0, "w_ad": p["a"] * (v0 - p["E_L"]), "m_h": float(_m_inf(v0, p))}


def compartments(pop: str, params=None) -> dict:
    """Membrane parameters of both compartments of one population's cell (file units).

    With a coupled dendrite (``g_c > 0``) the soma keeps ``1 - membrane_fraction`` of the
    cell's C, g_L and g_h (the point neuron's values, fitted to somatic recordings) and the
    dendrite has ``membrane_fraction`` of C and g_L and ``h_density_ratio`` times the soma's
    h-channel density; both share E_L and the h-channel kinetics.  Without one the soma is the
    point neuron and the dendrite is inert (no conductance; ``C_d`` = C keeps it finite).

    Parameters
    ----------
    pop : str
        A cell model.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`pop_values`, :func:`dendrite_values`).

    Returns
    -------
    dict
        :func:`pop_values` with the soma's ``C``, ``g_L``, ``g_h``, plus ``g_c``, ``C_d``,
        ``g_Ld``, ``g_hd``, ``g_T`` (the spike current's conductance: the whole cell's g_L)
        (pF, nS) and ``dend`` (1: coupled dendrite, 0: point neuron).
    """
    vals = pop_values(pop, params)
    d = dendrite_values(pop, params)
    if d["g_c"] == 0:
        return dict(vals, g_c=0.0, C_d=vals["C"], g_Ld=0.0, g_hd=0.0, g_T=vals["g_L"], dend=0.0)
    f, r = d["membrane_fraction"], d["h_density_ratio"]
    return dict(
        vals,
        C=(1 - f) * vals["C"],
        g_L=(1 - f) * vals["g_L"],
        g_h=(1 - f) * vals["g_h"],
        g_c=d["g_c"],
        C_d=f * vals["C"],
        g_Ld=f * vals["g_L"],
        g_hd=r * f * vals["g_h"],
        g_T=vals["g_L"],
        dend=1.0,
    )


def two_compartment_rest(pop: str, params=None) -> dict:
    """Resting state of one population's two-compartment cell (its ``[<pop>.dendrite]``).

    Compartments as :func:`compartments`, coupled by ``g_c``.  Found from the point neuron's rest
    (:func:`resting_state`) by solving both compartments' steady-state current balance
    (scipy.optimize.fsolve).

    Parameters
    ----------
    pop : str
        A cell model.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`pop_values`, :func:`dendrite_values`).

    Returns
    -------
    dict
        ``{"v", "v_d": V, "w_ad": A, "m_h", "m_hd": 1}``; for a point neuron (``g_c == 0``)
        ``v_d`` and ``m_hd`` equal ``v`` and ``m_h``.

    Raises
    ------
    InputError
        Bad parameters, or no steady state near the point neuron's rest.
    """
    from scipy.optimize import fsolve

    rest = resting_state(pop, params)
    c = compartments(pop, params)
    if c["dend"] == 0:
        return {**rest, "v_d": rest["v"], "m_hd": rest["m_h"]}
    p = si_values(pop_values(pop, params))
    s = {k: c[k] * 1e-9 for k in ("g_L", "g_h", "g_c", "g_Ld", "g_hd")}  # nS -> S

    def balance(x):
        v, vd = x
        ex = np.minimum((v - p["V_T"]) / p["Delta_T"], p["exp_clip"])
        soma = (
            -s["g_L"] * (v - p["E_L"])
            + p["g_L"] * p["Delta_T"] * np.exp(ex)
            - p["a"] * (v - p["E_L"])
            - s["g_h"] * _m_inf(v, p) * (v - p["E_h"])
            + s["g_c"] * (vd - v)
        )
        dend = (
            -s["g_Ld"] * (vd - p["E_L"])
            - s["g_hd"] * _m_inf(vd, p) * (vd - p["E_h"])
            + s["g_c"] * (v - vd)
        )
        return [soma * 1e12, dend * 1e12]  # pA: well scaled for the solver

    sol, _, ok, _ = fsolve(balance, [rest["v"], rest["v"]], full_output=True)
    if ok != 1 or not np.all(np.abs(balance(sol)) < 1e-6) or sol[0] >= p["V_T"]:
        raise InputError(
            f"params.{pop}.dendrite", "no resting state of the two-compartment cell below V_T"
        )
    v, vd = float(sol[0]), float(sol[1])
    return {
        "v": v,
        "v_d": vd,
        "w_ad": p["a"] * (v - p["E_L"]),
        "m_h": float(_m_inf(v, p)),
        "m_hd": float(_m_inf(vd, p)),
    }


# --------------------------------------------------------------------------- Brian2 pieces
@dataclass
class NeuronModel:
    """Brian2 pieces of one population's neuron model (see module docstring).

    Attributes
    ----------
    eqs, threshold, reset : str
        Brian2 code strings.
    refractory : object
        ``refractory`` argument of the NeuronGroup.
    method : str
        Integration method.
    namespace : dict
        Parameter name -> Brian2 quantity.
    init : dict
        Initial values (resting state) of the state variables.
    """

    eqs: str
    threshold: str
    reset: str
    refractory: object
    method: str
    namespace: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)


# Refractoriness: v is held for t_ref after a spike (``not_ref`` = 0), written as a factor
# rather than Brian2's ``(unless refractory)``: the same dynamics (the comparison is on the step
# grid, like Brian2's), but the generated state-update loop has no branch, so the compiler can
# vectorise it (exp included) -- 3-4x faster neuron updates in cpp_standalone.
_EQS = """
dv/dt = not_ref*(-{g_L}*(v - {E_L}) + {g_spike}*{Delta_T}*exp(clip((v - {V_T})/{Delta_T}, -inf, {exp_clip})) - w_ad - I_h + I_syn + I_ext{coupling})/{C} : volt
not_ref = int(t - t_spike > {t_ref} - 0.5*dt) : 1
t_spike : second
dw_ad/dt = ({a}*(v - {E_L}) - w_ad)/{tau_w} : amp
dm_h/dt = (1/(1 + exp((v - {V_half_h})/{k_h})) - m_h)/{tau_h} : 1
I_h = {g_h}*m_h*(v - {E_h}) : amp
"""
# The dendritic compartment of a two-compartment group (per-neuron DENDRITE_CONSTANTS; the
# h-channel kinetics and E_L are the cell's).  The soma receives the coupling
# current I_c; the dendrite the excitatory synaptic current I_syn_d (declared by the caller,
# :func:`cortexsim.circuit.equations.cell_eqs`).  A point neuron of the group has g_c = g_Ld =
# g_hd = 0 and dend = 0: its v_d stays where it starts.
DENDRITE_EQS = """
I_c = g_c*(v_d - v) : amp
dv_d/dt = (-g_Ld*(v_d - E_L) - I_hd - I_c + I_syn_d)/C_d : volt
dm_hd/dt = (1/(1 + exp((v_d - V_half_h)/k_h)) - m_hd)/tau_h : 1
I_hd = g_hd*m_hd*(v_d - E_h) : amp
"""
_THRESHOLD = "v > {V_T} + {spike_cut}*{Delta_T}"
_RESET = "v = {V_reset}; w_ad += {b}; t_spike = t"
#: no refractory argument for the NeuronGroup: the equations above implement it
REFRACTORY = False


def _names(suffix: str) -> dict:
    keys = list(MODEL_PARAMS) + list(NUMERIC_PARAMS)
    return {k: f"{k}{suffix}" for k in keys}


def equations_template(suffix: str = "", dendrite: bool = False) -> tuple[str, str, str]:
    """(eqs, threshold, reset) strings with parameter names ``<name><suffix>``.

    Parameters
    ----------
    suffix : str
        Appended to every parameter name (``""``: per-neuron constants).
    dendrite : bool
        Add the dendritic compartment (:data:`DENDRITE_EQS`, per-neuron constants only): the
        soma receives its coupling current ``I_c``.

    Returns
    -------
    eqs, threshold, reset : str
    """
    n = _names(suffix)
    if dendrite and suffix:
        raise InputError("suffix", "a dendritic compartment needs per-neuron constants")
    # the spike current of a two-compartment soma keeps the whole cell's g_L (``g_T``): the
    # spike threshold and f-I fits are the whole cell's, the soma only has less membrane
    eqs = _EQS.format(
        **n, coupling=" + I_c" if dendrite else "", g_spike="g_T" if dendrite else n["g_L"]
    )
    return eqs + (DENDRITE_EQS if dendrite else ""), _THRESHOLD.format(**n), _RESET.format(**n)


def parameter_declarations(dendrite: bool = False) -> str:
    """Per-neuron ``(constant)`` declarations of all parameters (for a mixed-type group).

    Parameters
    ----------
    dendrite : bool
        Also declare those of the dendritic compartment (:data:`DENDRITE_EQS`).

    Returns
    -------
    str
        Brian2 equation lines.
    """
    dims = {"pF": "farad", "nS": "siemens", "mV": "volt", "ms": "second", "pA": "amp", "1": "1"}
    units = {**MODEL_PARAMS, **NUMERIC_PARAMS, **(DENDRITE_CONSTANTS if dendrite else {})}
    return "\n".join(f"{k} : {dims[u]} (constant)" for k, u in units.items()) + "\n"


def brian_values(vals: dict) -> dict:
    """File-unit numbers -> Brian2 quantities, keyed by parameter name.

    Parameters
    ----------
    vals : dict
        Output of :func:`pop_values`.

    Returns
    -------
    dict
        Name -> Brian2 quantity.
    """
    units = {**MODEL_PARAMS, **NUMERIC_PARAMS}
    return {k: v * _brian_unit(units[k]) for k, v in vals.items()}


def neuron_model(pop: str, params=None) -> NeuronModel:
    """Brian2 model of population ``pop`` (parameters from models/cells.toml or ``params``).

    The equations reference ``I_syn`` and ``I_ext`` (amp) without declaring them; namespace
    names are suffixed with the population (``g_h_PT_L5``) so several groups can coexist.
    ``init`` holds the resting state (v, w_ad, m_h) as Brian2 quantities.

    Parameters
    ----------
    pop : str
        A cell model.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`pop_values`).

    Returns
    -------
    NeuronModel

    Raises
    ------
    InputError
        Unknown cell model or bad parameters (see :func:`pop_values`, :func:`resting_state`).
    """
    import brian2 as b2

    vals = pop_values(pop, params)
    suffix = f"_{pop}"
    eqs, thr, reset = equations_template(suffix)
    ns = {f"{k}{suffix}": q for k, q in brian_values(vals).items()}
    rest = resting_state(pop, params)
    init = {
        "v": rest["v"] * b2.volt,
        "w_ad": rest["w_ad"] * b2.amp,
        "m_h": rest["m_h"],
        "t_spike": -1.0 * b2.second,
    }
    return NeuronModel(
        eqs=eqs,
        threshold=thr,
        reset=reset,
        refractory=REFRACTORY,
        method="euler",
        namespace=ns,
        init=init,
    )


@dataclass
class PopulationModel:
    """All populations in one NeuronGroup: same equations, per-neuron parameter arrays.

    Attributes
    ----------
    eqs, threshold, reset : str
        Brian2 code strings (parameters declared as per-neuron constants).
    refractory : object
        ``refractory`` argument of the NeuronGroup.
    method : str
        Integration method.
    namespace : dict
        Shared constants (empty: every parameter is per neuron).
    init : dict
        Initial values: ``v`` (volt), ``w_ad`` (amp), ``m_h``, arrays of the group size, and
        ``t_spike``.
    per_neuron : dict
        Parameter name -> Brian2 quantity array (group size,).
    dendrite : bool
        The group has the dendritic compartment (``v_d``, ``m_hd``; :data:`DENDRITE_EQS`).
    """

    eqs: str
    threshold: str
    reset: str
    refractory: object
    method: str
    namespace: dict
    init: dict
    per_neuron: dict
    dendrite: bool = False


def has_dendrite(cells_used, params=None) -> bool:
    """Whether any of the cell models ``cells_used`` has a coupled dendrite (``g_c > 0``).

    Parameters
    ----------
    cells_used : iterable of str
        Cell models.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`dendrite_values`).

    Returns
    -------
    bool
    """
    return any(dendrite_values(c, params)["g_c"] > 0 for c in cells_used)


def population_model(sizes: dict, params=None) -> PopulationModel:
    """One model for a group holding ``sizes[pop]`` neurons of each population, in the order of
    ``sizes`` (a dict or a sequence of (cell model, count) pairs): every population has the
    same equations (AdEx + h-current), so the parameters become per-neuron constants and the
    network needs a single NeuronGroup.

    When a population has a coupled dendrite (``[<pop>.dendrite]`` with ``g_c > 0``), the
    group gets the dendritic compartment (:data:`DENDRITE_EQS`; compartments as
    :func:`compartments`); every other cell of the group stays a point neuron (``dend = 0``).
    Without any, the model is the point-neuron model, unchanged.

    Parameters
    ----------
    sizes : dict or sequence of (str, int)
        Cell model -> number of neurons, in group order.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`pop_values`, :func:`dendrite_values`).

    Returns
    -------
    PopulationModel
        ``dendrite`` says whether the group has the dendritic compartment.

    Raises
    ------
    InputError
        Unknown cell model or bad parameters.
    """
    import brian2 as b2
    import numpy as np

    items = list(sizes.items() if isinstance(sizes, dict) else sizes)
    dendrite = has_dendrite([pop for pop, _ in items], params)
    eqs, thr, reset = equations_template("", dendrite=dendrite)
    eqs = eqs + parameter_declarations(dendrite)
    units = {**MODEL_PARAMS, **NUMERIC_PARAMS, **(DENDRITE_CONSTANTS if dendrite else {})}
    per = {k: [] for k in units}
    init = {"v": [], "w_ad": [], "m_h": []} | ({"v_d": [], "m_hd": []} if dendrite else {})
    for pop, n in items:
        if dendrite:
            vals = compartments(pop, params)
            rest = two_compartment_rest(pop, params)
        else:
            vals = pop_values(pop, params)
            rest = resting_state(pop, params)
        for k in units:
            per[k].append(np.full(int(n), float(vals[k])))
        for k in init:
            init[k].append(np.full(int(n), float(rest[k])))
    per_neuron = {k: np.concatenate(v) * _brian_unit(units[k]) for k, v in per.items()}
    init_q = {
        k: np.concatenate(v) * (b2.volt if k in ("v", "v_d") else b2.amp if k == "w_ad" else 1)
        for k, v in init.items()
    }
    init_q["t_spike"] = -1.0 * b2.second
    return PopulationModel(
        eqs=eqs,
        threshold=thr,
        reset=reset,
        refractory=REFRACTORY,
        method="euler",
        namespace={},
        init=init_q,
        per_neuron=per_neuron,
        dendrite=dendrite,
    )
