"""Current-step characterisation of the cell models (``cortexsim celltypes``).

All populations are simulated together in ONE Brian2 NeuronGroup (numpy target, no
compilation): the equations of :mod:`cells` with per-neuron ``(constant)`` parameters, one
neuron per (population, protocol, amplitude).  Protocols (settings in ``[protocol]`` of
models/cells.toml):

* rest: ``v_rest_mV`` = membrane potential at the end of ``t_settle`` without input.
* ``input_resistance_MOhm``: (V_ss - V_rest) / I_rin for a small hyperpolarising step; V_ss is
  the mean over the last ``t_ss`` of the step.
* ``sag_ratio``: on the hyperpolarising step whose steady state is nearest ``V_sag`` (-90 mV),
  (V_ss - V_peak) / (V_rest - V_peak), i.e. the fraction of the peak deflection that the
  membrane recovers during the step (0 = no sag).
* ``rheobase_pA``: smallest step of the grid 0, dI, ... I_max that fires within ``t_step``.
* ``fi_slope_Hz_per_nA``: least-squares slope of the mean rate (spikes / t_step) against the
  step amplitude, over rheobase ... rheobase + ``fi_range``.
* ``adaptation_ratio``: first ISI / last ISI of the spike train on the first step >=
  ``adapt_factor`` x rheobase with at least ``adapt_min_spikes`` spikes (1 = no adaptation;
  Hattox & Nelson 2007 report 0.96 for PT-type and 0.33-0.43 for IT-type L5 cells).
* ``resonance_Hz``: frequency (1 Hz grid, parabolic peak interpolation) of the largest
  impedance |Z(f)| = |V(f)| / |I(f)| for small sinusoidal currents at rest (1 ... f_sin_max
  Hz); None where the impedance is largest at the lowest frequency sampled (a low-pass cell:
  no resonance; ``cortexsim celltypes`` prints "none", ``--json`` gives null).
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np

from ..errors import InputError, check_choice
from ..params import ParamTree, number_in
from . import cells

#: Keys of ``simulated`` / ``target``, plus the optional resonance.
KEYS = (
    "v_rest_mV",
    "input_resistance_MOhm",
    "sag_ratio",
    "rheobase_pA",
    "adaptation_ratio",
    "fi_slope_Hz_per_nA",
)
EXTRA_KEYS = ("resonance_Hz",)
#: the unit each key names
TARGET_UNITS = {
    "v_rest_mV": "mV",
    "input_resistance_MOhm": "MOhm",
    "sag_ratio": "1",
    "rheobase_pA": "pA",
    "adaptation_ratio": "1",
    "fi_slope_Hz_per_nA": "Hz/nA",
    "resonance_Hz": "Hz",
}
#: What a simulated None means, per key (text output); other Nones: the cell never fires
ABSENT = {"resonance_Hz": "none"}


def _tree(params):
    if params is None:
        return cells.default_cells()
    if isinstance(params, ParamTree):
        return params
    if isinstance(params, dict):
        return params
    raise InputError("params", f"expected a ParamTree or dict, got {type(params).__name__}")


def _protocol(params) -> dict:
    default = cells.default_cells()
    over = _tree(params).get("protocol", {})
    p = dict(default.values()["protocol"])
    for k, v in over.items():
        if k in p:
            path = f"protocol.{k}"
            p[k] = float(number_in(path, v, default.meta(path)["unit"]))
    return p


def _layout(pops, proto):
    """Per-neuron table: population index, protocol kind, amplitude / frequency."""
    steps = np.arange(0.0, proto["I_max"] + 1e-9, proto["dI"])
    sags = np.arange(-proto["dI_sag"], proto["I_sag_min"] - 1e-9, -proto["dI_sag"])
    freqs = np.arange(1.0, proto["f_sin_max"] + 1e-9, 1.0)
    pop_idx, kind, amp, freq = [], [], [], []
    for ip, _ in enumerate(pops):
        for arr, k in ((steps, 0), (np.array([proto["I_rin"]]), 1), (sags, 2)):
            pop_idx += [ip] * arr.size
            kind += [k] * arr.size
            amp += list(arr)
            freq += [0.0] * arr.size
        pop_idx += [ip] * freqs.size
        kind += [3] * freqs.size
        amp += [proto["I_sin"]] * freqs.size
        freq += list(freqs)
    return (np.array(pop_idx), np.array(kind), np.array(amp), np.array(freq), steps)


def _check_model(name, params) -> str:
    """``name`` if it is a cell model of ``params`` (or of the active cells file), else
    InputError naming ``cell_type``."""
    return check_choice(
        "cell_type", name, list(dict.fromkeys(cells.cell_models(params) + cells.cell_models()))
    )


def simulate(pops=None, params=None) -> dict:
    """Run all protocols for ``pops`` in one NeuronGroup; return {pop: measured properties}.

    Parameters
    ----------
    pops : sequence of str, optional
        Cell models (tables of ``models/cells.toml``); default: every cell model of ``params``
        (:func:`cortexsim.circuit.cells.cell_models`).
    params : ParamTree or dict, optional
        Cell parameters, as for :func:`cortexsim.circuit.cells.pop_values`; a ``[protocol]``
        table overrides the protocol settings.

    Returns
    -------
    dict
        cell model -> {property: value}: the keys :data:`KEYS` (mV, MOhm, 1, pA, 1, Hz/nA; None
        where the cell never fires on the step grid), ``resonance_Hz`` and ``impedance_MOhm``
        ({frequency (Hz): |Z| (MOhm)}).

    Raises
    ------
    InputError
        An unknown cell model or a bad parameter (see :func:`cells.pop_values`).
    """
    import brian2 as b2

    pops = [_check_model(p, params) for p in (cells.cell_models(params) if pops is None else pops)]
    proto = _protocol(params)
    vals = {p: cells.pop_values(p, params) for p in pops}
    rest = {p: cells.resting_state(p, params) for p in pops}
    pop_idx, kind, amp, freq, steps = _layout(pops, proto)
    n = pop_idx.size

    # a runtime (numpy) simulation of its own, whatever device a circuit build left active
    # (a standalone build earlier in this process would otherwise take these objects)
    b2.set_device("runtime")
    b2.start_scope()
    prev_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        eqs, thr, reset = cells.equations_template("")
        eqs += cells.parameter_declarations()
        eqs += """
I_syn = 0*amp : amp
I_ext = I_amp*int(t >= t_on)*int(t < t_off) + I_sin_amp*sin(2*pi*f_sin*t) : amp
I_amp : amp (constant)
I_sin_amp : amp (constant)
f_sin : Hz (constant)
t_on : second (constant)
t_off : second (constant)
"""
        dt = proto["dt"] * b2.ms
        G = b2.NeuronGroup(
            n,
            eqs,
            threshold=thr,
            reset=reset,
            refractory=cells.REFRACTORY,
            method="euler",
            dt=dt,
            name="celltypes",
        )
        G.t_spike = -1.0 * b2.second
        for name in list(cells.MODEL_PARAMS) + list(cells.NUMERIC_PARAMS):
            arr = np.array([vals[pops[i]][name] for i in pop_idx])
            unit = {**cells.MODEL_PARAMS, **cells.NUMERIC_PARAMS}[name]
            setattr(G, name, arr * cells._brian_unit(unit))
        G.v = np.array([rest[pops[i]]["v"] for i in pop_idx]) * b2.volt
        G.w_ad = np.array([rest[pops[i]]["w_ad"] for i in pop_idx]) * b2.amp
        G.m_h = np.array([rest[pops[i]]["m_h"] for i in pop_idx])
        is_step = kind <= 2
        G.I_amp = np.where(is_step, amp, 0.0) * b2.pA
        G.I_sin_amp = np.where(kind == 3, amp, 0.0) * b2.pA
        G.f_sin = freq * b2.Hz
        t_settle = proto["t_settle"] * b2.ms
        t_step = proto["t_step"] * b2.ms
        G.t_on = t_settle
        G.t_off = t_settle + t_step
        rec = np.nonzero(kind >= 1)[0]
        M = b2.StateMonitor(G, "v", record=rec, dt=dt)
        S = b2.SpikeMonitor(G)
        net = b2.Network(G, M, S)
        net.run(t_settle, namespace={})
        v_settled = np.asarray(G.v[:] / b2.mV).copy()
        net.run(t_step, namespace={})
        trains = S.spike_trains()
        vm = np.asarray(M.v / b2.mV)
        tm = np.asarray(M.t / b2.ms)
    finally:
        b2.prefs.codegen.target = prev_target

    row = {j: r for r, j in enumerate(rec)}
    t0, t1 = proto["t_settle"], proto["t_settle"] + proto["t_step"]
    in_step = (tm >= t0) & (tm < t1)
    ss = (tm >= t1 - proto["t_ss"]) & (tm < t1)
    out = {}
    for ip, pop in enumerate(pops):
        sel = pop_idx == ip
        res = {}
        i_step = np.nonzero(sel & (kind == 0))[0]
        i0 = i_step[0]
        v_rest = float(v_settled[i0])
        res["v_rest_mV"] = v_rest
        i_rin = np.nonzero(sel & (kind == 1))[0][0]
        v_ss = vm[row[i_rin]][ss].mean()
        res["input_resistance_MOhm"] = float((v_ss - v_rest) / proto["I_rin"] * 1e3)
        i_sag = np.nonzero(sel & (kind == 2))[0]
        vss_sag = np.array([vm[row[j]][ss].mean() for j in i_sag])
        j = i_sag[int(np.argmin(np.abs(vss_sag - proto["V_sag"])))]
        trace = vm[row[j]][in_step]
        v_peak = trace.min()
        vss = vm[row[j]][ss].mean()
        res["sag_ratio"] = float((vss - v_peak) / (v_rest - v_peak)) if v_rest > v_peak else 0.0
        counts = np.array(
            [
                np.sum((np.asarray(trains[k] / b2.ms) >= t0) & (np.asarray(trains[k] / b2.ms) < t1))
                for k in i_step
            ]
        )
        firing = np.nonzero(counts > 0)[0]
        if firing.size == 0:
            res["rheobase_pA"] = None
            res["fi_slope_Hz_per_nA"] = None
            res["adaptation_ratio"] = None
        else:
            ir = firing[0]
            rheo = float(steps[ir])
            res["rheobase_pA"] = rheo
            fit = (steps >= rheo) & (steps <= rheo + proto["fi_range"] + 1e-9)
            rate = counts / (proto["t_step"] * 1e-3)
            slope = np.polyfit(steps[fit] * 1e-3, rate[fit], 1)[0] if fit.sum() >= 2 else None
            res["fi_slope_Hz_per_nA"] = None if slope is None else float(slope)
            ar = None
            for k in range(ir, steps.size):
                if (
                    steps[k] >= proto["adapt_factor"] * rheo - 1e-9
                    and counts[k] >= proto["adapt_min_spikes"]
                ):
                    st = np.asarray(trains[i_step[k]] / b2.ms)
                    st = st[(st >= t0) & (st < t1)]
                    isi = np.diff(st)
                    ar = float(isi[0] / isi[-1])
                    break
            res["adaptation_ratio"] = ar
        # impedance profile
        i_sin = np.nonzero(sel & (kind == 3))[0]
        zs = []
        for k in i_sin:
            x = vm[row[k]][in_step]
            tt = tm[in_step] * 1e-3
            ph = np.exp(-2j * np.pi * freq[k] * tt)
            zs.append(np.abs(2 * np.mean((x - x.mean()) * ph)) / proto["I_sin"])
        zs = np.array(zs)
        fr = freq[i_sin]
        kmax = int(np.argmax(zs))
        if kmax == 0:  # largest at the lowest frequency: low-pass, no resonance
            f_res = None
        elif kmax < zs.size - 1:
            y0, y1, y2 = zs[kmax - 1], zs[kmax], zs[kmax + 1]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den != 0 else 0.0
            f_res = float(fr[kmax] + off)
        else:
            f_res = float(fr[kmax])
        res["resonance_Hz"] = f_res
        res["impedance_MOhm"] = {float(f): float(z * 1e3) for f, z in zip(fr, zs)}
        out[pop] = res
    return out


@functools.lru_cache(maxsize=1)
def _simulate_json(raw: str | None, tree: bool) -> dict:
    """:func:`simulate` of every cell model for parameters given as JSON (hashable: the cache
    key), rebuilt as a ParamTree when ``tree``."""
    if raw is None:
        return simulate(None, None)
    params = json.loads(raw)
    return simulate(None, ParamTree.from_dict(params, name="cells") if tree else params)


def _simulate_cached(params):
    """:func:`simulate` of every cell model, the last parameter set's result kept."""
    _tree(params)
    raw = (
        None
        if params is None
        else json.dumps(
            params, sort_keys=True, default=lambda o: o.item() if hasattr(o, "item") else str(o)
        )
    )
    return _simulate_json(raw, isinstance(params, ParamTree))


def characterize(pop: str, params=None) -> dict:
    """Simulated intrinsic properties of one cell model.

    Parameters
    ----------
    pop : str
        A cell model (table of ``models/cells.toml``; for the shipped model the population
        names ``IT_L23`` ... ``SST``).
    params : ParamTree or dict, optional
        Cell parameters (see :func:`simulate`).

    Returns
    -------
    dict
        The keys :data:`KEYS` and ``resonance_Hz`` (units in the key names).

    Raises
    ------
    InputError
        Unknown ``pop`` (field ``cell_type``) or bad parameters.
    """
    _check_model(pop, params)
    res = _simulate_cached(params)[pop]
    return {k: res[k] for k in KEYS + EXTRA_KEYS}


def targets(pop: str, params=None) -> tuple[dict, str]:
    """Published targets of one cell model and their sources.

    Parameters
    ----------
    pop : str
        A cell model (table of ``models/cells.toml``).
    params : ParamTree or dict, optional
        Cell parameters; a ``<pop>.target`` table there replaces the file's.

    Returns
    -------
    target : dict
        The keys :data:`KEYS` and ``resonance_Hz``; None where no source gives a value (all
        None for a cell model without a ``target`` table).
    source : str
        ``"<key>: <source>"`` joined by ``"; "``, or ``"no published target found"``.

    Raises
    ------
    InputError
        Unknown ``pop`` (field ``cell_type``).
    """
    _check_model(pop, params)
    tree = _tree(params)
    vals = tree if isinstance(tree, dict) else {}
    own = vals.get(pop) if isinstance(vals.get(pop), dict) else {}
    node = own.get("target") or cells.default_cells().get(pop, {}).get("target") or {}
    tgt, src = {}, []
    for k in KEYS + EXTRA_KEYS:
        leaf = node.get(k)
        if isinstance(leaf, dict):
            tgt[k] = float(number_in(f"{pop}.target.{k}", leaf, TARGET_UNITS[k]))
            src.append(f"{k}: {leaf['source']}")
        elif isinstance(leaf, (int, float)):
            tgt[k] = float(leaf)
        else:
            tgt[k] = None
    return tgt, "; ".join(src) if src else "no published target found"


def characterize_all(params=None) -> list[dict]:
    """Simulated properties beside published targets of every cell model (one simulation).

    Parameters
    ----------
    params : ParamTree or dict, optional
        Cell parameters (default: the active ``models/cells.toml``, whose tables include any
        cell model a user's model folder adds).

    Returns
    -------
    list of dict
        One ``{"name", "simulated", "target", "source"}`` per cell model, in file order
        (``cortexsim celltypes --json``; non-finite values as None).
    """
    res = _simulate_cached(params)
    out = []
    for pop in cells.cell_models(params):
        tgt, src = targets(pop, params)
        sim = {k: res[pop][k] for k in KEYS + EXTRA_KEYS}
        out.append(
            {
                "name": pop,
                "simulated": {
                    k: (None if v is None or not math.isfinite(v) else v) for k, v in sim.items()
                },
                "target": tgt,
                "source": src,
            }
        )
    return out


def synaptic_train(
    pops,
    params=None,
    *,
    times_ms,
    g_nS: float,
    duration_ms: float,
    circuit_params=None,
    syn_params=None,
) -> dict:
    """Voltage response and NMDA calcium of one cell per population to one excitatory
    (AMPA + NMDA) synapse activated at ``times_ms``, as wired in the network: the synapse has
    the circuit's receptor kinetics, NMDA/AMPA ratio and excitatory delay, no short-term
    depression, and the Graupner-Brunel rule with the network's NMDA calcium
    (:func:`cortexsim.circuit.network.rule_params`).  Cells with a coupled dendrite
    (``[<pop>.dendrite]``) receive it on the dendrite.  No background input; the cells start at
    rest (numpy target, no compilation).

    Parameters
    ----------
    pops : sequence of str
        Cell models.
    params : ParamTree or dict, optional
        Cell parameters (see :func:`cortexsim.circuit.cells.population_model`).
    times_ms : sequence of float
        Presynaptic spike times (ms), in [0, duration_ms).
    g_nS : float
        Peak AMPA conductance of the synapse (nS; NMDA: nmda_ratio times it).
    duration_ms : float
        Length of the simulation (ms).
    circuit_params, syn_params : ParamTree, optional
        Trees replacing ``models/circuit.toml`` and ``models/synaptic.toml``.

    Returns
    -------
    dict
        cell model -> ``{"t_ms", "v_mV", "v_exc_mV"}`` (arrays: time, somatic voltage, voltage
        at the excitatory synapse, recorded at every step) and ``"nmda_ca"`` (the synapse's
        summed presynaptic NMDA calcium, :class:`~cortexsim.plasticity.rules.GraupnerBrunel`).

    Raises
    ------
    InputError
        Unknown cell model, bad parameters, a negative conductance or spike times outside the
        run.
    """
    import brian2 as b2

    from ..params import load_model
    from ..plasticity.rules import get_rule
    from . import equations as eq
    from .network import rule_params

    pops = [_check_model(p, params) for p in pops]
    if isinstance(g_nS, bool) or not isinstance(g_nS, (int, float)) or not g_nS >= 0:
        raise InputError("g_nS", f"must be a number >= 0, got {g_nS!r}")
    times = np.asarray(times_ms, dtype=float)
    if times.size == 0 or times.min() < 0 or times.max() >= duration_ms:
        raise InputError("times_ms", f"needs spike times in [0, {duration_ms}) ms")
    circ = circuit_params if circuit_params is not None else load_model("circuit")
    pv = circ.values()
    dt_s = circ.to("sim.dt", "s")
    model = cells.population_model([(p, 1) for p in pops], params)
    rule = get_rule("graupner_brunel", rule_params(circ, syn_params, model.dendrite))
    gb = rule.params

    # a runtime (numpy) simulation of its own, whatever device a circuit build left active
    # (a standalone build earlier in this process would otherwise take these objects)
    b2.set_device("runtime")
    b2.start_scope()
    prev_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    try:
        ns = eq.cell_namespace(pv, dt_s, gb.mg_k, gb.mg_slope)
        ns["sil_t"] = b2.TimedArray(np.zeros(1), dt=dt_s * b2.second)  # no silencing
        G = b2.NeuronGroup(
            len(pops),
            model.eqs + eq.cell_eqs(False, model.dendrite),
            threshold=model.threshold,
            reset=model.reset,
            refractory=model.refractory,
            method=model.method,
            namespace=ns,
            dt=dt_s * b2.second,
            name="train_cells",
        )
        for var, val in {**model.init, **model.per_neuron}.items():
            setattr(G, var, val)
        n = len(pops)
        src = b2.SpikeGeneratorGroup(
            n,
            np.repeat(np.arange(n), times.size),
            np.tile(times, n) * b2.ms,
            dt=dt_s * b2.second,
            name="train_input",
        )
        code = rule.synapse_code()
        state = {"on": np.ones(n), "rho": np.zeros(n)}
        syn_model, trans = eq.transmission(
            ("AMPA", "NMDA"), "none", rule, pv["synapse"]["nmda_ratio"]
        )
        S = b2.Synapses(
            src,
            G,
            model=code.model + "\n" + syn_model,
            on_pre=code.with_transmission(trans),
            on_post=code.on_post,
            namespace=dict(code.namespace, **rule.transmission_namespace(state)),
            dt=dt_s * b2.second,
            name="train_synapses",
        )
        S.connect(j="i")
        S.g0 = g_nS * b2.nS
        rule.setup(S, state, eq.quantity(pv["synapse"]["delay_exc"], "ms"))
        rec = ["v", eq.V_EXC] if model.dendrite else ["v"]
        M = b2.StateMonitor(G, rec, record=True, dt=dt_s * b2.second)
        b2.Network(G, src, S, M).run(duration_ms * b2.ms, namespace={})
        t_ms = np.asarray(M.t / b2.ms)
        v = np.asarray(M.v / b2.mV)
        v_exc = np.asarray(getattr(M, eq.V_EXC) / b2.mV) if model.dendrite else v
        nmda_ca = np.asarray(S.nmda_ca[:], dtype=float)
    finally:
        b2.prefs.codegen.target = prev_target
    return {
        p: {"t_ms": t_ms, "v_mV": v[k], "v_exc_mV": v_exc[k], "nmda_ca": float(nmda_ca[k])}
        for k, p in enumerate(pops)
    }
