"""The Brian2 network: IT_L23, IT_L5, PT_L5, PV and SST cells driven pulse by pulse by TMS.

One ``NeuronGroup`` holds every cell (populations are contiguous index ranges with per-neuron
intrinsic parameters), so the compiled network has three ``Synapses`` objects: plastic
excitatory -> excitatory spine synapses (Graupner-Brunel calcium rule), static excitatory ->
interneuron and static inhibitory synapses.  That keeps compile time and per-step overhead low.

A :class:`Circuit` is built (and, for ``cpp_standalone``, compiled) once for a phase length and
pulse-slot grid; :meth:`Circuit.run` then re-runs it with new run-time values -- TMS field per
pulse, silencing, spine on/off states and weights, noise seed -- through Brian2's ``run_args``
without recompiling.  Connectivity is drawn by a seeded numpy generator (explicit i, j), and
background noise comes from a counter-based hash of (run seed, cell, step), so runs are
reproducible and each run's seed is a run-time value.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import rng
from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, load_model
from ..populations import EXCITATORY, POPULATIONS
from .build_cache import cache_dir, code_version, compile_network

TARGETS = ("cpp_standalone", "runtime")
#: per-synapse variables of the plastic synapses returned after each phase
SYN_VARS = ("on", "rho", "c", "t_last", "n_pre_spikes", "n_post_spikes", "t_above_p", "t_above_d")


# --------------------------------------------------------------------------- stimulus
@dataclass
class Stimulus:
    """TMS drive of one fast phase: pulse times (s from phase start) and the cell-level field
    (V/m, peak of the waveform at the target, after the macroscopic-to-cell scaling) per pulse."""

    pulse_times_s: np.ndarray
    field_vpm: np.ndarray
    waveform: str = "biphasic"
    angle_deg: float = 0.0
    pulse_width_us: float | None = None

    def __post_init__(self):
        self.pulse_times_s = np.asarray(self.pulse_times_s, dtype=float)
        self.field_vpm = np.broadcast_to(np.asarray(self.field_vpm, dtype=float),
                                         self.pulse_times_s.shape).copy()
        if np.any(~np.isfinite(self.field_vpm)) or np.any(self.field_vpm < 0):
            raise InputError("stimulus.field_vpm", "must be finite and >= 0")
        if np.any(~np.isfinite(self.pulse_times_s)) or np.any(self.pulse_times_s < 0):
            raise InputError("stimulus.pulse_times_s", "must be finite and >= 0")

    @classmethod
    def from_protocol(cls, protocol, cell_field_vpm: float, offset_s: float = 0.0, **kw):
        """Pulses of one session of ``protocol`` (a Protocol or name), starting at ``offset_s``."""
        from ..protocols import get_protocol
        p = get_protocol(protocol)
        check_number("cell_field_vpm", cell_field_vpm, min=0)
        return cls(p.pulse_times() + offset_s, p.intensities() * cell_field_vpm, **kw)

    @classmethod
    def none(cls):
        return cls(np.zeros(0), np.zeros(0))

    def until(self, t_end_s: float, dt_s: float) -> "Stimulus":
        """The pulses that a phase of length ``t_end_s`` (step ``dt_s``) delivers."""
        keep = self.pulse_times_s < t_end_s - 0.5 * dt_s
        return Stimulus(self.pulse_times_s[keep], self.field_vpm[keep], self.waveform,
                        self.angle_deg, self.pulse_width_us)


def pulse_slot_s(times_s: np.ndarray, dt_s: float, max_slot_s: float = 0.02) -> float:
    """Largest grid (a multiple of dt, <= ``max_slot_s``) on which every pulse time, rounded to
    the nearest time step, lies.  Any protocol can be simulated: a pulse off the dt grid is
    delivered at the nearest step (at most dt/2 early or late, as in every clock-driven
    simulator); a protocol whose pulses share no coarser grid runs on the dt grid itself."""
    steps = np.round(np.asarray(times_s, dtype=float) / dt_s).astype(np.int64)
    g = int(np.gcd.reduce(steps)) if steps.size and steps.any() else int(round(max_slot_s / dt_s))
    best = 1
    for d in range(1, int(round(max_slot_s / dt_s)) + 1):
        if g % d == 0:
            best = d
    return best * dt_s


# --------------------------------------------------------------------------- results
@dataclass
class PhaseResult:
    """What one fast phase produced (everything as numpy; experiment.py labels it)."""

    duration_s: float
    pop_slices: dict
    spike_counts: np.ndarray          # per neuron
    rate_t_s: np.ndarray              # bin centres of the population rates
    pop_rates_hz: dict                # pop -> rate per bin (Hz), from all cells of the pop
    spike_i: np.ndarray               # spikes of the recorded sample (neuron index)
    spike_t: np.ndarray               # (s)
    syn: dict = field(default_factory=dict)   # per plastic synapse: rho, w, on, stats

    def mean_rate(self, pop: str) -> float:
        s = self.pop_slices[pop]
        return float(self.spike_counts[s].mean() / self.duration_s)


# --------------------------------------------------------------------------- circuit
# Tsodyks-Markram short-term depression, event-driven (no per-synapse ODE): resources x_rel
# recover toward 1 between presynaptic spikes; each spike transmits x_rel (x rested conductance)
# and then uses a fraction U_dep of it.
_DEP_VARS = "x_rel : 1\nt_rel : second\n"
_DEPRESSION = "x_rel = 1 - (1 - x_rel)*exp(-(t - t_rel)/tau_rec)\nt_rel = t"
_DEPLETE = "\nx_rel -= U_dep*x_rel"


def _q(value, unit: str):
    """Number from a model file -> Brian2 quantity."""
    import brian2 as b2
    units = {"ms": b2.ms, "mV": b2.mV, "nS": b2.nS, "nA": b2.nA, "pA": b2.pA, "pF": b2.pF,
             "Hz": b2.Hz, "s": b2.second, "mM": 1.0, "1": 1.0}
    return value * units[unit]


def fresh_standalone_device(b2):
    """Brian2's cpp_standalone device, reset for a new build in this process (built and run
    explicitly, ``make -j2``)."""
    b2.set_device("cpp_standalone", build_on_run=False)
    b2.device.reinit()
    b2.device.activate(build_on_run=False)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]


class Circuit:
    """The prefrontal slab network, built once for a phase length, re-run many times.

    Parameters
    ----------
    scale: "small", "default", "large" or an int neuron count.
    duration_s: length of every run of this build (phase length).
    slot_s: the pulse grid (s); pulses of every later ``Stimulus`` must lie on it.
    params / cell_params / syn_params: ParamTrees overriding ``models/circuit.toml``,
        ``models/cells.toml``, ``models/synaptic.toml``.
    target: "cpp_standalone" (default, compiled once, re-run with run_args) or "runtime".
    """

    def __init__(self, scale="small", *, duration_s: float = 1.0, slot_s: float = 0.02,
                 seed: int = 0, params: ParamTree | None = None, cell_params=None,
                 syn_params=None, target: str = "cpp_standalone", build_dir=None,
                 record_per_pop: int = 50, rate_bin_s: float = 0.1, waveform: str = "biphasic",
                 angle_deg: float | None = None, pulse_width_us: float | None = None,
                 plastic: bool = True):
        self.params = params if params is not None else load_model("circuit")
        self.cell_params = cell_params
        self.syn_params = syn_params
        self.target = check_choice("target", target, TARGETS)
        self.seed = int(check_number("seed", seed, min=0, integer=True))
        self.duration_s = float(check_number("duration_s", duration_s, min=0, strict_min=True))
        pv = self.params.values()
        self.dt_s = pv["sim"]["dt"] * 1e-3
        self.slot_s = float(check_number("slot_s", slot_s, min=self.dt_s))
        if abs(round(self.slot_s / self.dt_s) * self.dt_s - self.slot_s) > 1e-12:
            raise InputError("slot_s", f"must be a multiple of dt = {self.dt_s} s")
        self.rate_bin_s = rate_bin_s
        self.cache_hit = False
        self.record_per_pop = record_per_pop
        self.plastic = plastic
        self.waveform = waveform
        self.angle_deg = pv["tms"]["angle_deg"] if angle_deg is None else angle_deg
        self.pulse_width_us = pulse_width_us
        self.n_total = self._resolve_scale(scale, pv)
        self.rng = np.random.default_rng(self.seed)
        self._layout(pv)
        self._connect(pv)
        self._tms_properties()
        self._build(pv, build_dir)

    # ----------------------------------------------------------------- structure
    @staticmethod
    def _resolve_scale(scale, pv) -> int:
        if isinstance(scale, str):
            check_choice("scale", scale, list(pv["scale"].keys() - {"reference"}))
            return int(pv["scale"][scale])
        return int(check_number("scale", scale, min=50, integer=True))

    def _layout(self, pv):
        fr = pv["fraction"]
        tot = sum(fr[p] for p in POPULATIONS)
        sizes = {p: max(1, int(round(self.n_total * fr[p] / tot))) for p in POPULATIONS}
        self.sizes = sizes
        self.N = sum(sizes.values())
        self.slices, a = {}, 0
        for p in POPULATIONS:
            self.slices[p] = slice(a, a + sizes[p])
            a += sizes[p]
        self.pop_index = np.concatenate([np.full(sizes[p], k) for k, p in enumerate(POPULATIONS)])

    def _draw(self, pre: str, post: str, p: float):
        """Explicit i, j (global indices) for a pre -> post projection with probability p."""
        n_pre, n_post = self.sizes[pre], self.sizes[post]
        k = self.rng.binomial(n_pre, min(p, 1.0), size=n_post)
        if pre == post:
            k = np.minimum(k, n_pre - 1)
        ii, jj = [], []
        for jpost in range(n_post):
            cand = self.rng.choice(n_pre, size=k[jpost], replace=False) if pre != post else None
            if pre == post:
                c = self.rng.choice(n_pre - 1, size=k[jpost], replace=False)
                cand = np.where(c >= jpost, c + 1, c)
            ii.append(cand)
            jj.append(np.full(k[jpost], jpost))
        i = np.concatenate(ii).astype(np.int32) + self.slices[pre].start
        j = np.concatenate(jj).astype(np.int32) + self.slices[post].start
        return i, j

    def _connect(self, pv):
        ref = pv["scale"]["reference"]
        f = ref / self.n_total
        occ = pv["plasticity"]["site_occupancy"]
        plastic_targets = set(pv["plasticity"]["plastic_targets"]) if self.plastic else set()
        groups = {"ee": ([], [], [], []), "ei": ([], [], [], []), "ii": ([], [], [], [])}
        for pre, posts in pv["conn"].items():
            for post, c in posts.items():
                # probabilities as published at the reference size; other sizes keep each
                # cell's in-degree (p * N_ref / N); where that exceeds 1 the conductance makes
                # up the rest, so the mean input per cell is the same at every size
                g = c["g"]
                key = ("ee" if post in EXCITATORY else "ei") if pre in EXCITATORY else "ii"
                sites = key == "ee" and post in plastic_targets
                p_draw = c["p"] * f / (occ if sites else 1.0)
                if p_draw > 1.0:
                    g = g * p_draw
                    p_draw = 1.0
                i, j = self._draw(pre, post, p_draw)
                on = (self.rng.random(i.size) < occ) if sites else np.ones(i.size, bool)
                for lst, val in zip(groups[key], (i, j, np.full(i.size, g), on)):
                    lst.append(val)
        self.conn = {}
        for key, (i, j, g, on) in groups.items():
            i, j = np.concatenate(i), np.concatenate(j)
            # synapses stored in presynaptic order: the arrays a presynaptic spike touches (the
            # transmission and the delayed calcium pathway) are then contiguous in memory
            # instead of one cache miss per synapse and variable
            o = np.lexsort((j, i))
            self.conn[key] = dict(i=i[o], j=j[o], g_nS=np.concatenate(g)[o],
                                  on=np.concatenate(on).astype(float)[o])

    def _tms_properties(self):
        """Per-cell TMS thresholds (V/m) and somatic polarisation gains from the coupling model."""
        from .. import coupling
        thr = np.empty(self.N)
        pol = np.empty(self.N)
        for p in POPULATIONS:
            s = self.slices[p]
            thr[s] = coupling.sample_thresholds(p, self.sizes[p], self.rng, waveform=self.waveform,
                                                angle_deg=self.angle_deg,
                                                pulse_width_us=self.pulse_width_us)
            pol[s] = coupling.somatic_polarization_mV(p, 1.0, waveform=self.waveform,
                                                      angle_deg=self.angle_deg,
                                                      pulse_width_us=self.pulse_width_us)
        self.tms_threshold_vpm = thr
        self.polarization_mV_per_vpm = pol

    def afferent_fraction(self, field_vpm: np.ndarray) -> np.ndarray:
        from .. import coupling
        field_vpm = np.asarray(field_vpm, dtype=float)
        out = np.zeros_like(field_vpm)
        nz = field_vpm > 0
        if nz.any():
            out[nz] = coupling.recruitment("afferent", field_vpm[nz], waveform=self.waveform,
                                           angle_deg=self.angle_deg,
                                           pulse_width_us=self.pulse_width_us)
        return out

    def _syn_overrides(self):
        """Synaptic rule parameters: models/synaptic.toml (or the user's tree) with the
        network's NMDA-dependent calcium switched on as models/circuit.toml says."""
        tree = self.syn_params if self.syn_params is not None else load_model("synaptic")
        tree = ParamTree.from_dict(dict(tree), name="synaptic")
        tree.set("nmda.enabled", bool(self.params.value("plasticity.nmda_calcium")))
        return tree

    # ----------------------------------------------------------------- build
    def config_hash(self) -> str:
        """Hash of everything that goes into the compiled network: model values, size, seed,
        phase length, pulse grid, waveform and the code that generates the network."""
        blob = json.dumps({"code": code_version(), "circuit": self.params.values(),
                           "n": self.n_total, "seed": self.seed, "dur": self.duration_s,
                           "slot": self.slot_s, "plastic": self.plastic,
                           "cells": self.cell_params.values() if self.cell_params else None,
                           "syn": self.syn_params.values() if self.syn_params else None,
                           "wf": [self.waveform, self.angle_deg, self.pulse_width_us]},
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def _build(self, pv, build_dir):
        import brian2 as b2
        from . import cells
        hash_poisson = rng.brian2_functions()["hash_poisson"]
        from ..plasticity import synaptic

        if self.target == "cpp_standalone":
            fresh_standalone_device(b2)
        else:
            # no reinit: the runtime device keeps each variable's data per object, so earlier
            # runtime circuits stay usable; reinit would drop their arrays
            b2.set_device("runtime")
            b2.prefs.codegen.target = "numpy"
        b2.start_scope()
        b2.defaultclock.dt = self.dt_s * b2.second

        model = cells.population_model(self.sizes, params=self.cell_params)
        # NMDA Mg2+ unblock: the same Jahr & Stevens constants as the plasticity rule
        self.gb_params = synaptic.get_params(self._syn_overrides())
        syn = pv["synapse"]
        sil = pv["silencing"]
        tms = pv["tms"]
        bg = pv["background"]
        n_slots = int(round(self.duration_s / self.slot_s)) + 2
        self.n_slots = n_slots
        self._tms_E = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="tms_E")
        self._aff_f = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="tms_aff")
        self._sil_t = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="sil_t")
        # NMDA dual exponential normalised to a unit peak
        tr, td = syn["tau_nmda_rise"], syn["tau_nmda_decay"]
        tpk = tr * td / (td - tr) * math.log(td / tr)
        nmda_norm = 1.0 / (math.exp(-tpk / td) - math.exp(-tpk / tr))
        eqs = model.eqs + """
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
        ns = dict(model.namespace)
        ns.update(E_exc=_q(syn["E_exc"], "mV"), g_sat=_q(syn["g_sat"], "nS"), E_inh=_q(syn["E_inh"], "mV"), Mg=syn["Mg"],
                  mg_k=self.gb_params.mg_k, mg_slope=self.gb_params.mg_slope,
                  tau_ampa=_q(syn["tau_ampa"], "ms"), tau_nmda_r=_q(tr, "ms"),
                  tau_nmda_d=_q(td, "ms"), tau_gaba=_q(syn["tau_gaba"], "ms"),
                  nmda_norm=nmda_norm,
                  g_sil=_q(sil["g"], "nS"), E_sil=_q(sil["E"], "mV"), tms_E=self._tms_E,
                  tms_aff=self._aff_f, sil_t=self._sil_t, hash_poisson=hash_poisson,
                  lam_bg=bg["k_aff"] * bg["rate"] * self.dt_s,
                  n_tms_aff=float(tms["afferent_terminals"]), aff_release=tms["afferent_release"],
                  g_tms_aff=_q(tms["afferent_g"], "nS"),
                  direct_margin=_q(tms["direct_margin"], "mV"))
        G = b2.NeuronGroup(self.N, eqs, threshold=model.threshold,
                           reset=model.reset + "\nn_spk += 1", refractory=model.refractory,
                           method=model.method, namespace=ns, name="cells")
        for var, val in model.init.items():
            setattr(G, var, val)
        for var, arr in model.per_neuron.items():
            setattr(G, var, arr)
        G.g_bg = np.concatenate([np.full(self.sizes[p], bg[f"g_{p}"]) for p in POPULATIONS]) * b2.nS
        G.thr_tms = self.tms_threshold_vpm
        G.pol_gain = self.polarization_mV_per_vpm * b2.mV
        # background: Poisson afferent events from a counter-based hash (run seed, cell, step)
        G.run_regularly("g_ampa += g_bg*hash_poisson(lam_bg, i, timestep(t, dt), run_seed, 0)",
                        dt=self.dt_s * b2.second, when="start", name="background")
        # TMS pulse: direct activation, afferent terminal release, somatic polarisation.
        # tms_E is the cell-level field of the pulse in this slot (V/m).  Direct activation:
        # a cell whose own threshold is exceeded fires in this time step (v is put well above
        # the spike cut, so the threshold test fires it whatever its synaptic conductances),
        # unless it is refractory (the axonal spike collides with the one just fired).  An
        # injected somatic current (the former "antidromic invasion current", 10 nA x 0.5 ms)
        # was shunted by the in-network GABA conductance and fired few PT_L5 cells whose
        # thresholds were exceeded, so recruitment depended on the moment of the pulse.
        G.run_regularly(
            """
            fire = int(tms_E(t) > 0 and tms_E(t) >= thr_tms)*not_ref
            v = fire*(V_T + spike_cut*Delta_T + direct_margin) + (1 - fire)*v
            g_ampa += g_tms_aff*hash_poisson(n_tms_aff*tms_aff(t)*aff_release, i, timestep(t, dt), run_seed, 1)
            v += pol_gain*tms_E(t)
            """, dt=self.slot_s * b2.second, when="start", name="tms")
        self.G = G

        delay_e = _q(syn["delay_exc"], "ms")
        delay_i = _q(syn["delay_inh"], "ms")
        nr = syn["nmda_ratio"]
        objs = [G]
        # plastic E -> E (spine sites): Graupner-Brunel calcium rule, NMDA-dependent calcium
        c = self.conn["ee"]
        gbp = self.gb_params
        sm = synaptic.synapse_model(params=gbp, counters=False)
        rho0 = synaptic.initial_rho(c["i"].size, self.rng, params=gbp)
        self.initial_rho = rho0
        # conductance per unit w, so that the mean initial unitary conductance is the published g
        w_ref = float(np.mean(gbp.w_down + rho0 * (gbp.w_up - gbp.w_down))) if rho0.size else 1.0
        dep_ns = dict(U_dep=syn["U_dep"], tau_rec=_q(syn["tau_rec"], "ms"))
        ns_ee = dict(sm.namespace, w_ref=w_ref, **dep_ns)
        S_ee = b2.Synapses(
            G, G, model=sm.model + "\ng0 : siemens (constant)\n" + _DEP_VARS, name="ee",
            namespace=ns_ee,
            on_pre=sm.with_transmission(_DEPRESSION + f"\ng_ampa_post += x_rel*w*g0/w_ref"
                                        f"\nx_nmda_post += x_rel*on*{nr}*g0" + _DEPLETE),
            on_post=sm.on_post)
        S_ee.connect(i=c["i"], j=c["j"])
        S_ee.g0 = c["g_nS"] * b2.nS
        S_ee.on = c["on"]
        S_ee.rho = rho0
        S_ee.t_last = 0 * b2.second
        S_ee.t_rel = -1e3 * b2.second
        synaptic.set_delays(S_ee, delay_e, params=gbp)
        self.S_ee = S_ee
        objs.append(S_ee)
        c = self.conn["ei"]
        S_ei = b2.Synapses(G, G, "g0 : siemens (constant)\n" + _DEP_VARS,
                           on_pre=_DEPRESSION + f"\ng_ampa_post += x_rel*g0"
                                  f"\nx_nmda_post += x_rel*{nr}*g0" + _DEPLETE,
                           delay=delay_e, name="ei", namespace=dep_ns)
        S_ei.connect(i=c["i"], j=c["j"])
        S_ei.g0 = c["g_nS"] * b2.nS
        S_ei.t_rel = -1e3 * b2.second
        objs.append(S_ei)
        self.S_ei = S_ei
        c = self.conn["ii"]
        S_ii = b2.Synapses(G, G, "g0 : siemens (constant)", on_pre="g_gaba_post += g0",
                           delay=delay_i, name="ii")
        S_ii.connect(i=c["i"], j=c["j"])
        S_ii.g0 = c["g_nS"] * b2.nS
        objs.append(S_ii)
        self.S_ii = S_ii

        # recording: every spike (small nets) or the first record_per_pop cells of each population
        if self.N <= 5000:
            self.monitors = [(0, b2.SpikeMonitor(G, name="spikes"))]
        else:
            self.monitors = [(self.slices[p].start,
                              b2.SpikeMonitor(G[self.slices[p].start:self.slices[p].start
                                                + min(self.sizes[p], self.record_per_pop)],
                                              name=f"spikes_{p}"))
                             for p in POPULATIONS]
        objs += [m for _, m in self.monitors]
        self.net = b2.Network(*objs)
        if self.target == "cpp_standalone":
            # standalone: this run() only generates code; the binary runs in self.run()
            self.net.run(self.duration_s * b2.second, namespace={},
                         profile=bool(os.environ.get("CORTEXSIM_PROFILE")))
            base = Path(build_dir) if build_dir else cache_dir()
            self.directory, self.cache_hit = compile_network(
                b2, base, self.config_hash(), label=f"network ({self.N} neurons)")
            # the device that holds this build; a later standalone build in this process
            # reinitialises it (new arrays dict), after which this circuit cannot run
            self._device = b2.get_device()  # the object (b2.device is a proxy to the active one)
            self._device_arrays = self._device.arrays
        else:
            # runtime: store the state at t = 0 (running first would start every run at
            # t = duration with the spike counters and monitors already filled)
            self.net.store("initial")
        self._b2 = b2

    # ----------------------------------------------------------------- run
    def _slot_values(self, stim: Stimulus):
        E = np.zeros(self.n_slots)
        aff = np.zeros(self.n_slots)
        if stim.pulse_times_s.size:
            # pulses are delivered at the nearest time step (see pulse_slot_s)
            t = np.round(stim.pulse_times_s / self.dt_s) * self.dt_s
            k = np.round(t / self.slot_s).astype(np.int64)
            if np.max(np.abs(k * self.slot_s - t)) > 1e-9:
                raise InputError("stimulus.pulse_times_s",
                                 f"pulses must lie on this build's {self.slot_s * 1e3:g} ms grid")
            # the phase covers [0, duration): a pulse at t >= duration would never be delivered
            if stim.pulse_times_s.max() >= self.duration_s - 0.5 * self.dt_s:
                raise InputError("stimulus.pulse_times_s",
                                 f"pulses at or beyond the phase length {self.duration_s} s")
            E[k] = stim.field_vpm
            aff[k] = self.afferent_fraction(stim.field_vpm)
        return E, aff

    def run(self, stimulus: Stimulus | None = None, *, silence=None, silence_windows=None,
            spines: dict | None = None, run_seed: int = 0, results_name: str = "results",
            overrides: dict | None = None) -> PhaseResult:
        """Run one phase.  ``silence``: populations to silence (chemogenetic conductance) during
        ``silence_windows`` [(t0, t1) s] (default: the whole phase).  ``spines``: dict with
        arrays ``on`` and/or ``rho`` for the plastic synapses (length ``n_sites``)."""
        b2 = self._b2
        stim = stimulus if stimulus is not None else Stimulus.none()
        E, aff = self._slot_values(stim)
        sil = np.zeros(self.N)
        for p in (silence or []):
            check_choice("silence", p, POPULATIONS)
            sil[self.slices[p]] = 1.0
        sil_t = np.zeros(self.n_slots)
        if silence:
            windows = silence_windows or [(0.0, self.duration_s + self.slot_s)]
            tt = np.arange(self.n_slots) * self.slot_s
            for t0, t1 in windows:
                sil_t[(tt >= t0) & (tt < t1)] = 1.0
        values = {self.G.run_seed: np.full(self.N, float(run_seed)), self.G.sil: sil,
                  self._tms_E: E, self._aff_f: aff, self._sil_t: sil_t}
        if spines:
            for k, v in spines.items():
                check_choice("spines", k, ("on", "rho"))
                v = np.asarray(v, dtype=float)
                if v.shape != (self.n_sites,):
                    raise InputError(f"spines.{k}", f"needs {self.n_sites} values, got {v.shape}")
                values[getattr(self.S_ee, k)] = v
        for name, v in (overrides or {}).items():
            var = self._override_target(name)
            values[var] = b2.Quantity(np.asarray(v, dtype=float), dim=var.dim)  # SI values
        if self.target == "cpp_standalone":
            if self._device.arrays is not self._device_arrays:
                raise RuntimeError("this cpp_standalone circuit was superseded by a later "
                                   "standalone build in this process; build it again")
            # this build's device, not whatever device is active now (a runtime build since
            # would make b2.device the runtime device, which ignores run() -> stale results)
            self._device.run(directory=self.directory, with_output=False,
                             run_args=values, results_directory=results_name)
        else:
            b2.set_device("runtime")
            b2.prefs.codegen.target = "numpy"
            self.net.restore("initial")
            for key, val in values.items():
                if isinstance(key, b2.TimedArray):
                    key.values[:] = val
                else:
                    key[:] = val
            self.net.run(self.duration_s * b2.second, namespace={})
        return self._collect()

    def _override_target(self, name: str):
        """'cells.g_bg', 'ee.g0', 'ei.g0', 'ii.g0' -> the Brian2 variable to set per run."""
        allowed = ["cells.g_bg", "cells.thr_tms", "cells.pol_gain", "ee.g0", "ei.g0", "ii.g0"]
        check_choice("overrides", name, allowed)
        grp, var = name.split(".")
        obj = {"cells": self.G, "ee": self.S_ee, "ei": self.S_ei, "ii": self.S_ii}[grp]
        return getattr(obj, var)

    @property
    def n_sites(self) -> int:
        return int(self.conn["ee"]["i"].size)

    def _collect(self) -> PhaseResult:
        counts = np.asarray(self.G.n_spk[:], dtype=float)
        nb = int(math.ceil(self.duration_s / self.rate_bin_s))
        edges = np.arange(nb + 1) * self.rate_bin_s
        si = np.concatenate([np.asarray(m.i[:]) + off for off, m in self.monitors])
        st = np.concatenate([np.asarray(m.t[:] / self._b2.second) for _, m in self.monitors])
        rates = {}
        for p in POPULATIONS:
            s = self.slices[p]
            sel = (si >= s.start) & (si < s.stop)
            n = self.sizes[p] if self.N <= 5000 else min(self.sizes[p], self.record_per_pop)
            h, _ = np.histogram(st[sel], edges)
            rates[p] = h / (n * self.rate_bin_s)
        from ..plasticity import synaptic
        S = self.S_ee
        syn = {name: np.asarray(getattr(S, name + "_")[:], dtype=float) for name in SYN_VARS
               if not name.startswith("n_")}
        # spike counts per synapse while present ("on" is fixed during a run)
        syn["n_pre_spikes"] = syn["on"] * counts[self.conn["ee"]["i"]]
        syn["n_post_spikes"] = syn["on"] * counts[self.conn["ee"]["j"]]
        # bring rho and the threshold statistics to the end of the phase (same update as at events)
        on = syn["on"]
        c_, r_, tp, td = synaptic.advance(syn["c"], syn["rho"],
                                          np.maximum(self.duration_s - syn["t_last"], 0.0),
                                          self.gb_params)
        syn["rho"] = on * r_ + (1 - on) * syn["rho"]
        syn["t_above_p"] += on * tp
        syn["t_above_d"] += on * td
        syn["c"] = c_
        return PhaseResult(self.duration_s, dict(self.slices), counts,
                           (edges[:-1] + edges[1:]) / 2, rates, si, st, syn)
