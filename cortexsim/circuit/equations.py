"""Brian2 code of the circuit: synaptic currents and conductances of the cells, background
input, the TMS pulse, silencing, the channelrhodopsin-2 photocurrent of light-driven builds, and
the transmission code of each receptor.

Every number comes from ``models/circuit.toml`` (via :func:`cell_namespace`) or
``models/opto.toml`` (via :func:`opto_namespace`); the strings here
hold only the model's form.
"""
from __future__ import annotations

import math

#: synaptic and external currents, conductances and per-cell run-time values of every cell
#: (appended to the intrinsic model of :func:`cortexsim.circuit.cells.population_model`)
CELL_EQS = """
I_syn = g_ampa/(1 + g_ampa/g_sat)*(E_exc - v) + g_nmda/(1 + g_nmda/g_sat)*(E_exc - v)/(1 + Mg/mg_k*exp(-mg_slope*v/mV)) + g_gaba/(1 + g_gaba/g_sat)*(E_inh - v) : amp
I_ext = g_sil*sil*sil_t(t)*(E_sil - v) : amp
dg_ampa/dt = -g_ampa/tau_ampa : siemens
dg_nmda/dt = (nmda_norm*x_nmda - g_nmda)/tau_nmda_d : siemens
dx_nmda/dt = -x_nmda/tau_nmda_r : siemens
dg_gaba/dt = -g_gaba/tau_gaba : siemens
thr_tms : 1 (constant)
pol_gain : volt (constant)
sil : 1 (constant)
g_bg : siemens (constant)
run_seed : 1 (constant)
n_spk : 1
"""
#: the voltage at the excitatory (AMPA/NMDA) synapses of a two-compartment group: the dendrite's
#: for a cell with one (``dend`` = 1), the soma's otherwise; the Graupner-Brunel rule's NMDA
#: Mg2+ unblock reads it (``nmda.v_name``)
V_EXC = "v_exc"
#: two-compartment groups (:data:`cortexsim.circuit.cells.DENDRITE_EQS`): excitatory currents and
#: the GABA_A conductance of projections that target the dendrite (``g_gaba_d``) at
#: :data:`V_EXC`, into the dendrite (``I_syn_d``; the soma of a point neuron of the group);
#: somatic inhibition at the soma; replaces the ``I_syn`` line of :data:`CELL_EQS`
I_SYN_DENDRITE = f"""
{V_EXC} = v + dend*(v_d - v) : volt
I_exc = g_ampa/(1 + g_ampa/g_sat)*(E_exc - {V_EXC}) + g_nmda/(1 + g_nmda/g_sat)*(E_exc - {V_EXC})/(1 + Mg/mg_k*exp(-mg_slope*{V_EXC}/mV)) + g_gaba_d/(1 + g_gaba_d/g_sat)*(E_inh - {V_EXC}) : amp
I_syn = (1 - dend)*I_exc + g_gaba/(1 + g_gaba/g_sat)*(E_inh - v) : amp
I_syn_d = dend*I_exc : amp
dg_gaba_d/dt = -g_gaba_d/tau_gaba : siemens
"""
#: light-driven builds: the channelrhodopsin-2 photocurrent joins the external current
#: (:data:`OPTO_EQS`); a build without light keeps :data:`CELL_EQS` as it is
I_EXT_LIGHT = "I_ext = g_sil*sil*sil_t(t)*(E_sil - v) + I_chr2 : amp"

# Channelrhodopsin-2, three-state model (closed -> open -> desensitised -> closed; Nikolic et al.
# 2009, PyRhO form of Evans et al. 2016; parameters in models/opto.toml).  g_chr2 is the cell's
# conductance (0: the cell does not express the opsin).  The light is on while t < t_light_end;
# irr_light is the irradiance (mW/mm^2) of the current pulse.
OPTO_EQS = """
I_chr2 = g_chr2*o_chr2*(E_chr2 - v) : amp
do_chr2/dt = ga_chr2*(1 - o_chr2 - d_chr2) - o_chr2/tau_chr2_off : 1
dd_chr2/dt = o_chr2/tau_chr2_off - (1/tau_chr2_rec + k_chr2_rec_light*light_on)*d_chr2 : 1
ga_chr2 = k_chr2_a*light_on*irr_light**p_chr2/(irr_light**p_chr2 + phi_chr2_half**p_chr2) : hertz
light_on = int(t < t_light_end) : 1
g_chr2 : siemens (constant)
t_light_end : second (shared)
irr_light : 1 (shared)
"""
# A light pulse starts in its slot (light_I: irradiance of the pulse starting in each slot, 0:
# none) and lasts light_width (half a step less, so that it covers exactly width/dt steps).
LIGHT_PULSE = """
            t_light_end = int(light_I(t) > 0)*(t + light_width - 0.5*dt) + int(light_I(t) <= 0)*t_light_end
            irr_light = light_I(t) + int(light_I(t) <= 0)*irr_light
            """


def cell_eqs(light: bool = False, dendrite: bool = False) -> str:
    """The cells' synaptic and external currents: :data:`CELL_EQS`, with the ChR2 photocurrent
    (:data:`OPTO_EQS`) in the external current when ``light``, and the excitatory currents at
    the dendrite (:data:`I_SYN_DENDRITE`) when ``dendrite``.

    Parameters
    ----------
    light : bool
        Include the channelrhodopsin-2 photocurrent.
    dendrite : bool
        The group has the dendritic compartment of :mod:`cortexsim.circuit.cells`.

    Returns
    -------
    str
        Brian2 equations.
    """
    if not light and not dendrite:
        return CELL_EQS
    drop = ("I_ext =",) * light + ("I_syn =",) * dendrite
    base = [ln for ln in CELL_EQS.splitlines() if not ln.startswith(drop)]
    return ("\n".join(base) + "\n" + (I_EXT_LIGHT + "\n" + OPTO_EQS if light else "")
            + (I_SYN_DENDRITE if dendrite else ""))


def opto_namespace(ov: dict) -> dict:
    """Constants of :data:`OPTO_EQS` and :data:`LIGHT_PULSE` from the values ``ov`` of
    ``models/opto.toml`` (in its units).

    Parameters
    ----------
    ov : dict
        Values of ``models/opto.toml`` (``chr2`` and ``light`` tables).

    Returns
    -------
    dict
        Name -> Brian2 quantity or number.
    """
    import brian2 as b2
    c, light = ov["chr2"], ov["light"]
    return {"E_chr2": quantity(c["E"], "mV"), "tau_chr2_off": quantity(c["tau_off"], "ms"),
            "tau_chr2_rec": quantity(c["tau_rec_dark"], "ms"),
            "k_chr2_a": c["k_a"] / b2.ms, "k_chr2_rec_light": c["k_rec_light"] / b2.ms,
            "phi_chr2_half": c["phi_half"], "p_chr2": c["p"],
            "light_width": quantity(light["pulse_width"], "ms")}


#: spike counter added to the cells' reset
COUNT_SPIKES = "\nn_spk += 1"

#: background: Poisson afferent events from a counter-based hash (run seed, cell, step)
BACKGROUND = "g_ampa += g_bg*hash_poisson(lam_bg, i, timestep(t, dt), run_seed, 0)"

# TMS pulse: direct activation, afferent terminal release, somatic polarisation.  tms_E is the
# cell-level field of the pulse in this slot (V/m).  Direct activation: a cell whose own threshold
# is exceeded fires in this time step (v is put well above the spike cut, so the threshold test
# fires it whatever its synaptic conductances), unless it is refractory (the axonal spike
# collides with the one just fired).  An injected somatic current (the former "antidromic
# invasion current", 10 nA x 0.5 ms) was shunted by the in-network GABA conductance and fired few
# PT_L5 cells whose thresholds were exceeded, so recruitment depended on the moment of the pulse.
TMS_PULSE = """
            fire = int(tms_E(t) > 0 and tms_E(t) >= thr_tms)*not_ref
            v = fire*(V_T + spike_cut*Delta_T + direct_margin) + (1 - fire)*v
            g_ampa += g_tms_aff*hash_poisson(n_tms_aff*tms_aff(t)*aff_release, i, timestep(t, dt), run_seed, 1)
            v += pol_gain*tms_E(t)
            """

# Tsodyks-Markram short-term depression, event-driven (no per-synapse ODE): resources x_rel
# recover toward 1 between presynaptic spikes; each spike transmits x_rel (x rested conductance)
# and then uses a fraction U_dep of it.
DEP_VARS = "x_rel : 1\nt_rel : second\n"
DEPRESSION = "x_rel = 1 - (1 - x_rel)*exp(-(t - t_rel)/tau_rec)\nt_rel = t"
DEPLETE = "\nx_rel -= U_dep*x_rel"
#: per-synapse conductance of a rested synapse
G0_VAR = "g0 : siemens (constant)"

#: conductance update of each receptor at a presynaptic spike; {dep} is the short-term factor,
#: {before}/{after} the plasticity rule's scaling around g0, {nmda_ratio} the NMDA/AMPA ratio
RECEPTOR_CODE = {
    "AMPA": "g_ampa_post += {dep}{before}g0{after}",
    "NMDA": "x_nmda_post += {dep}{before}{nmda_ratio}*g0{after}",
    "GABA_A": "g_gaba_post += {dep}{before}g0{after}",
}
#: the same for synapses on the dendrite of a two-compartment group (receptors whose conductance
#: there differs from the somatic one; AMPA/NMDA act at :data:`V_EXC` in either case)
RECEPTOR_CODE_DENDRITE = {"GABA_A": "g_gaba_d_post += {dep}{before}g0{after}"}


def quantity(value, unit: str):
    """Number from a model file (in ``unit``) -> Brian2 quantity.

    Parameters
    ----------
    value : float or ndarray
        Number(s) in ``unit``.
    unit : str
        One of ``ms, mV, nS, nA, pA, pF, Hz, s, mM, 1``.

    Returns
    -------
    brian2.Quantity or float
    """
    import brian2 as b2
    units = {"ms": b2.ms, "mV": b2.mV, "nS": b2.nS, "nA": b2.nA, "pA": b2.pA, "pF": b2.pF,
             "Hz": b2.Hz, "s": b2.second, "mM": 1.0, "1": 1.0}
    return value * units[unit]


def nmda_norm(tau_rise_ms: float, tau_decay_ms: float) -> float:
    """Factor that gives the NMDA dual exponential a unit peak.

    Parameters
    ----------
    tau_rise_ms, tau_decay_ms : float
        Rise and decay time constants (ms).

    Returns
    -------
    float
        1 / peak of ``exp(-t/tau_decay) - exp(-t/tau_rise)``.
    """
    tr, td = tau_rise_ms, tau_decay_ms
    tpk = tr * td / (td - tr) * math.log(td / tr)
    return 1.0 / (math.exp(-tpk / td) - math.exp(-tpk / tr))


def transmission(receptors, short_term: str, rule, nmda_ratio: float,
                 dendrite: bool = False) -> tuple[str, str]:
    """(model, on_pre code) of the conductance update of a synapse group.

    Parameters
    ----------
    receptors : sequence of str
        Keys of :data:`RECEPTOR_CODE`.
    short_term : str
        ``"depression"`` or ``"none"``.
    rule : PlasticityRule
        Supplies the weight scaling per receptor (:meth:`receptor_scale`).
    nmda_ratio : float
        NMDA/AMPA peak-conductance ratio.
    dendrite : bool
        The synapses sit on the dendrite of a two-compartment group
        (:data:`RECEPTOR_CODE_DENDRITE`).
    """
    dep = short_term == "depression"
    lines = []
    for r in receptors:
        before, after = rule.receptor_scale(r)
        fmt = RECEPTOR_CODE_DENDRITE.get(r, RECEPTOR_CODE[r]) if dendrite else RECEPTOR_CODE[r]
        lines.append(fmt.format(dep="x_rel*" if dep else "", before=before, after=after,
                                nmda_ratio=nmda_ratio))
    code = "\n".join(lines)
    model = G0_VAR + ("\n" + DEP_VARS if dep else "")
    if dep:
        code = DEPRESSION + "\n" + code + DEPLETE
    return model, code


def cell_namespace(pv: dict, dt_s: float, mg_k: float, mg_slope: float) -> dict:
    """Constants of :data:`CELL_EQS`, :data:`BACKGROUND`, :data:`TMS_PULSE` and the transmission
    code, from the circuit model's values ``pv`` (and the NMDA Mg2+ unblock constants).

    Parameters
    ----------
    pv : dict
        ``ParamTree.values()`` of the circuit model.
    dt_s : float
        Time step (s).
    mg_k, mg_slope : float
        Mg2+ unblock constants (Jahr & Stevens 1990; :func:`cortexsim.plasticity.synaptic.mg_unblock`).

    Returns
    -------
    dict
        Name -> Brian2 quantity or number.
    """
    syn, sil, tms, bg = pv["synapse"], pv["silencing"], pv["tms"], pv["background"]
    return {
        "E_exc": quantity(syn["E_exc"], "mV"), "g_sat": quantity(syn["g_sat"], "nS"),
        "E_inh": quantity(syn["E_inh"], "mV"), "Mg": syn["Mg"], "mg_k": mg_k, "mg_slope": mg_slope,
        "tau_ampa": quantity(syn["tau_ampa"], "ms"),
        "tau_nmda_r": quantity(syn["tau_nmda_rise"], "ms"),
        "tau_nmda_d": quantity(syn["tau_nmda_decay"], "ms"),
        "tau_gaba": quantity(syn["tau_gaba"], "ms"),
        "nmda_norm": nmda_norm(syn["tau_nmda_rise"], syn["tau_nmda_decay"]),
        "g_sil": quantity(sil["g"], "nS"), "E_sil": quantity(sil["E"], "mV"),
        "lam_bg": bg["k_aff"] * bg["rate"] * dt_s,
        "n_tms_aff": float(tms["afferent_terminals"]), "aff_release": tms["afferent_release"],
        "g_tms_aff": quantity(tms["afferent_g"], "nS"),
        "direct_margin": quantity(tms["direct_margin"], "mV")}


def depression_namespace(pv: dict) -> dict:
    """Constants of the short-term depression code.

    Parameters
    ----------
    pv : dict
        ``ParamTree.values()`` of the circuit model (``[synapse]`` U_dep, tau_rec).

    Returns
    -------
    dict
        ``{"U_dep", "tau_rec"}``.
    """
    syn = pv["synapse"]
    return {"U_dep": syn["U_dep"], "tau_rec": quantity(syn["tau_rec"], "ms")}
