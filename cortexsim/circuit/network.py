"""The Brian2 network, built from the populations and projections declared in
``models/circuit.toml`` and driven pulse by pulse by TMS, or by light (channelrhodopsin-2 in
chosen populations; a light-driven build, ``Circuit(..., light=True)``).

One ``NeuronGroup`` holds every cell (populations are contiguous index ranges with per-neuron
intrinsic parameters: :mod:`.layout`, :mod:`.cells`).  The declared projections are drawn
(:mod:`.connectivity`) and run as one ``Synapses`` group per receptor set, plasticity rule
(:mod:`cortexsim.plasticity.rules`), short-term dynamics and delay; with the shipped model that
is three groups: plastic excitatory -> excitatory spine synapses (Graupner-Brunel), static
excitatory -> interneuron and static inhibitory synapses.  The Brian2 code strings live in
:mod:`.equations`, the per-cell TMS properties in :mod:`.tms`, the compiled-build cache in
:mod:`.build_cache`.

A :class:`Circuit` is built (and, for ``cpp_standalone``, compiled) once for a phase length and
pulse-slot grid; :meth:`Circuit.run` then re-runs it with new run-time values -- TMS field per
pulse, silencing, spine on/off states and weights, noise seed -- through Brian2's ``run_args``
without recompiling.  Connectivity is drawn by a seeded numpy generator (explicit i, j), and
background noise comes from a counter-based hash of (run seed, cell, step), so runs are
reproducible and each run's seed is a run-time value.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import rng
from ..errors import InputError, check_choice, check_number
from ..params import ParamTree, load_model
from ..plasticity.rules import PlasticityRule
from . import cells
from . import equations as eq
from .build_cache import cache_dir, code_version, compile_network
from .connectivity import SynapseGroup
from .drawn import DrawnCircuit, draw_circuit, rule_params  # noqa: F401 (rule_params: public)
from .stimulus import Stimulus, pulse_slot_s
from .tms import Coupling

__all__ = [
    "Circuit",
    "DrawnCircuit",
    "PhaseResult",
    "Stimulus",
    "draw_circuit",
    "fresh_standalone_device",
    "pulse_slot_s",
]

TARGETS = ("cpp_standalone", "runtime")
#: per-synapse variables of the plastic synapses returned after each phase (Graupner-Brunel)
SYN_VARS = ("on", "rho", "c", "t_last", "n_pre_spikes", "n_post_spikes", "t_above_p", "t_above_d")
#: run-time overrides of per-cell values (``Circuit.run(overrides=...)``); ``<group>.g0`` too,
#: and ``cells.<name>`` for the rules' postsynaptic variables (:attr:`Circuit.post_variables`)
CELL_OVERRIDES = ("cells.g_bg", "cells.thr_tms", "cells.pol_gain")


# --------------------------------------------------------------------------- results
@dataclass
class PhaseResult:
    """What one fast phase produced (everything as numpy; experiment.py labels it).

    Attributes
    ----------
    duration_s : float
        Length of the phase (s).
    pop_slices : dict
        Population -> slice of cell indices.
    spike_counts : ndarray (N,)
        Spikes per neuron.
    rate_t_s : ndarray (n_bins,)
        Bin centres of the population rates (s).
    pop_rates_hz : dict
        Population -> ndarray (n_bins,) of rates (Hz) over all its cells.
    spike_i, spike_t : ndarray (n_spikes,)
        Recorded spikes of the sampled cells: neuron index and time (s).
    syn : dict
        Per-synapse results of the spine sites (:attr:`Circuit.site_group`).
    groups : dict
        Group name -> per-synapse results of every group whose rule returns any.
    """

    duration_s: float
    pop_slices: dict
    spike_counts: np.ndarray  # per neuron
    rate_t_s: np.ndarray  # bin centres of the population rates
    pop_rates_hz: dict  # pop -> rate per bin (Hz), from all cells of the pop
    spike_i: np.ndarray  # spikes of the recorded sample (neuron index)
    spike_t: np.ndarray  # (s)
    syn: dict = field(default_factory=dict)  # per spine site (see Circuit.site_group)
    #: per-synapse results of every group whose rule returns any (group name -> dict)
    groups: dict = field(default_factory=dict)

    def mean_rate(self, pop: str) -> float:
        """Mean firing rate of population ``pop`` over the phase, from every cell's spike count.

        Parameters
        ----------
        pop : str
            Population name (a key of :attr:`pop_slices`).

        Returns
        -------
        float
            Spikes per cell and second (Hz).
        """
        s = self.pop_slices[pop]
        return float(self.spike_counts[s].mean() / self.duration_s)


# --------------------------------------------------------------------------- circuit
def fresh_standalone_device(b2, threads: int = 1):
    """Brian2's cpp_standalone device, reset for a new build in this process (built and run
    explicitly, ``make -j2``), with ``threads`` OpenMP threads (1: no OpenMP).

    Parameters
    ----------
    b2 : module
        ``brian2``.
    threads : int
        OpenMP threads.
    """
    b2.set_device("cpp_standalone", build_on_run=False)
    # the previous standalone circuit of this process cannot run after the reinit: release its
    # Brian2 objects and collect them (with their code objects in reference cycles), so this
    # build gets the same object names, hence the same code, and a rebuild of a network built
    # before in this process is a copy of the cache, not a compile
    last = _LAST_STANDALONE[0]() if _LAST_STANDALONE[0] is not None else None
    if last is not None:
        last._release_brian2()
    b2.device.reinit()
    gc.collect()
    b2.device.activate(build_on_run=False)
    b2.prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    b2.prefs.devices.cpp_standalone.openmp_threads = 0 if threads == 1 else int(threads)
    # one Ctrl+C stops cortexsim: Brian2's own handler would turn a Ctrl+C that falls while it
    # sets up a run into "stop requested" and carry on
    b2.prefs.core.stop_on_keyboard_interrupt = False


#: weak reference to the last cpp_standalone Circuit built in this process (see
#: :func:`fresh_standalone_device`)
_LAST_STANDALONE: list = [None]


class Circuit:
    """The prefrontal slab network, built once for a phase length, re-run many times.

    Parameters
    ----------
    scale : str or int
        A named scale of ``models/circuit.toml`` (``"small"``, ``"default"``, ``"large"``) or a
        total neuron count (>= 50).
    duration_s : float
        Length of every run of this build (phase length, s).
    slot_s : float
        The pulse grid (s, a multiple of dt); pulses of every later ``Stimulus`` must lie on it.
    seed : int
        Experiment seed: connectivity, TMS thresholds and the initial plasticity state are
        drawn from its named streams ``connectivity``, ``thresholds`` and
        ``initial_efficacies`` (:class:`cortexsim.rng.SeedSchedule`).
    params, cell_params, syn_params : ParamTree, optional
        Trees replacing ``models/circuit.toml`` (populations, projections...),
        ``models/cells.toml`` and ``models/synaptic.toml``.
    coupling_params : ParamTree, optional
        Tree replacing ``models/coupling.toml`` (TMS thresholds, polarisation, afferent
        recruitment; a spec's ``coupling.*`` overrides reach the circuit through it).
    target : str
        ``"cpp_standalone"`` (default, compiled once, re-run with run_args) or ``"runtime"``.
    build_dir : path, optional
        Folder of the compiled-build cache (default: :func:`.build_cache.cache_dir`).
    record_per_pop : int
        Above 5000 cells, spikes are recorded from this many cells per population.
    rate_bin_s : float
        Bin of the population rates (s).
    waveform, angle_deg, pulse_width_us
        TMS pulse as the coupling model sees it (angle default: ``tms.angle_deg``).
    plastic : bool
        False: no spine sites (plastic synapses all present, no occupancy draw).
    threads : int
        OpenMP threads of the compiled binary (``cpp_standalone``; 1: no OpenMP).  Brian2
        parallelises the neuron update, the background input and the synapse pathways that
        touch only per-synapse variables (the Graupner-Brunel post-spike pathway); pathways
        that write to or read from the cells run on one thread.  Spikes do not depend on it;
        per-synapse values may differ in the last bits (the OpenMP build vectorises the
        Graupner-Brunel exp/log differently).  On a shared 2-core machine 2 threads were
        slower than 1 (benchmarks/results/threads.md).
    light : bool
        True: a light-driven build, whose cells carry the channelrhodopsin-2 photocurrent
        (:data:`.equations.OPTO_EQS`); light pulses (``Stimulus.light``) then open it in the
        cells of the populations ``run(light_populations=...)`` names.  False (default): the
        TMS build, without any opsin equation.
    opto_params : ParamTree, optional
        Tree replacing ``models/opto.toml`` (ChR2 kinetics, irradiance, pulse width).

    Attributes
    ----------
    populations : tuple of str
        Declared populations, in cell-index order.
    sizes, slices, N, pop_index
        Cells per population, their index ranges, total, population position of each cell.
    groups : dict
        Synapse group name -> :class:`~.connectivity.SynapseGroup`.
    conn : dict
        Group name -> arrays ``i``, ``j``, ``g_nS``, ``on``; ``conn["ee"]``: the spine sites.
    site_group : str or None
        Name of the group whose synapses are the spine sites (the structural rule's group).
    rules : dict
        Rule name -> :class:`~cortexsim.plasticity.rules.PlasticityRule` of the projections.
    initial_rho : ndarray
        Initial efficacy of the spine sites (Graupner-Brunel).
    tms_threshold_vpm, polarization_mV_per_vpm : ndarray (N,)
        Per-cell TMS threshold (V/m) and somatic polarisation (mV per V/m).

    Raises
    ------
    InputError
        Bad arguments or a malformed population / projection declaration, before any build.
    """

    def __init__(
        self,
        scale="small",
        *,
        duration_s: float = 1.0,
        slot_s: float = 0.02,
        seed: int = 0,
        params: ParamTree | None = None,
        cell_params=None,
        syn_params=None,
        coupling_params=None,
        target: str = "cpp_standalone",
        build_dir=None,
        record_per_pop: int = 50,
        rate_bin_s: float = 0.1,
        waveform: str = "biphasic",
        angle_deg: float | None = None,
        pulse_width_us: float | None = None,
        plastic: bool = True,
        threads: int = 1,
        light: bool = False,
        opto_params: ParamTree | None = None,
    ):
        from ..plasticity import synaptic

        self.params = params if params is not None else load_model("circuit")
        self.cell_params = cell_params
        self.syn_params = syn_params
        self.coupling_params = coupling_params
        self.target = check_choice("target", target, TARGETS)
        self.seed = int(check_number("seed", seed, min=0, integer=True))
        self.duration_s = float(check_number("duration_s", duration_s, min=0, strict_min=True))
        pv = self.params.values()
        self.dt_s = self.params.to("sim.dt", "s")
        self.slot_s = float(check_number("slot_s", slot_s, min=self.dt_s))
        if abs(round(self.slot_s / self.dt_s) * self.dt_s - self.slot_s) > 1e-12:
            raise InputError("slot_s", f"must be a multiple of dt = {self.dt_s} s")
        self.rate_bin_s = rate_bin_s
        self.threads = int(check_number("threads", threads, min=1, integer=True))
        self.cache_hit = False
        self.record_per_pop = record_per_pop
        self.plastic = plastic
        self.light = bool(light)
        self.opto_params = (
            (opto_params if opto_params is not None else load_model("opto")) if self.light else None
        )
        self.coupling = Coupling(
            waveform,
            pv["tms"]["angle_deg"] if angle_deg is None else angle_deg,
            pulse_width_us,
            coupling_params,
        )
        self.waveform, self.angle_deg = self.coupling.waveform, self.coupling.angle_deg
        self.pulse_width_us = pulse_width_us
        #: the network as drawn from the seed (numpy; :mod:`.drawn`), then built
        self.drawn = draw_circuit(
            scale,
            seed=self.seed,
            params=self.params,
            cell_params=cell_params,
            syn_params=syn_params,
            coupling=self.coupling,
            plastic=self.plastic,
        )
        d = self.drawn
        self.n_total, self.layout, self.dendrite = d.n_total, d.layout, d.dendrite
        self.populations = d.populations
        self.sizes, self.N = self.layout.sizes, self.layout.N
        self.slices, self.pop_index = self.layout.slices, self.layout.pop_index
        # NMDA Mg2+ unblock of the cells: the same Jahr & Stevens constants as the GB rule
        self.gb_params = synaptic.get_params(d.syn_tree)
        self.rules: dict[str, PlasticityRule] = d.rules
        self.groups: dict[str, SynapseGroup] = d.groups
        self.site_group, self.conn, self.state = d.site_group, d.conn, d.state
        self.tms_threshold_vpm = d.tms_threshold_vpm
        self.polarization_mV_per_vpm = d.polarization_mV_per_vpm
        self.initial_rho = d.initial_rho
        self._build(pv, build_dir)

    # ----------------------------------------------------------------- structure
    def afferent_fraction(self, field_vpm: np.ndarray) -> np.ndarray:
        """Fraction of afferent terminals recruited by each pulse's cell-level field
        (:meth:`cortexsim.circuit.tms.Coupling.afferent_fraction` of this circuit's coupling).

        Parameters
        ----------
        field_vpm : array_like
            Cell-level peak field of each pulse (V/m, >= 0).

        Returns
        -------
        ndarray
            Same shape as ``field_vpm``, in [0, 1] (0 where the field is 0).
        """
        return self.coupling.afferent_fraction(field_vpm)

    def _syn_overrides(self):
        """Synaptic rule parameters of this circuit (:func:`.drawn.rule_params`)."""
        return self.drawn.syn_tree

    @property
    def n_sites(self) -> int:
        """Number of spine sites (synapses of :attr:`site_group`; 0 without one)."""
        return int(self.conn[self.site_group]["i"].size) if self.site_group else 0

    @property
    def site_rule(self) -> PlasticityRule | None:
        """The plasticity rule of the spine sites (its :meth:`carry_over` and
        :meth:`structural_signals` serve the structural model); None without sites."""
        return self.rules[self.groups[self.site_group].rule] if self.site_group else None

    @property
    def post_variables(self) -> dict:
        """Per-cell variables the plasticity rules read from the postsynaptic cell, name ->
        neutral value (:meth:`~cortexsim.plasticity.rules.PlasticityRule.post_variables`);
        settable per run as ``overrides["cells.<name>"]``."""
        out = {}
        for rule in self.rules.values():
            out.update(rule.post_variables())
        return out

    @property
    def S_ee(self):
        """Brian2 ``Synapses`` of the spine sites (old name)."""
        return self.synapses[self.site_group]

    # ----------------------------------------------------------------- build
    def config_hash(self) -> str:
        """Hash of everything that goes into the compiled network: model values, size, seed,
        phase length, pulse grid, waveform and the code that generates the network."""
        blob = json.dumps(
            {
                "code": code_version(),
                "circuit": self.params.values(),
                "n": self.n_total,
                "seed": self.seed,
                "dur": self.duration_s,
                "slot": self.slot_s,
                "plastic": self.plastic,
                "cells": self.cell_params.values() if self.cell_params else None,
                # the sliding threshold's constants are run-time values: only
                # whether its variable exists (post_vars) changes the build
                "syn": {k: v for k, v in self.syn_params.values().items() if k != "metaplasticity"}
                if self.syn_params
                else None,
                "post_vars": sorted(self.post_variables),
                "coupling": self.coupling_params.values() if self.coupling_params else None,
                "wf": [self.waveform, self.angle_deg, self.pulse_width_us],
                **({"light": self.opto_params.values()} if self.light else {}),
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def _build(self, pv, build_dir):
        import brian2 as b2

        hash_poisson = rng.brian2_functions()["hash_poisson"]

        if self.target == "cpp_standalone":
            fresh_standalone_device(b2, self.threads)
        else:
            # no reinit: the runtime device keeps each variable's data per object, so earlier
            # runtime circuits stay usable; reinit would drop their arrays
            b2.set_device("runtime")
            b2.prefs.codegen.target = "numpy"
        b2.start_scope()
        b2.defaultclock.dt = self.dt_s * b2.second

        pops = self.layout.populations
        model = cells.population_model(
            [(p.cell, self.sizes[n]) for n, p in pops.items()], params=self.cell_params
        )
        n_slots = round(self.duration_s / self.slot_s) + 2
        self.n_slots = n_slots
        self._tms_E = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="tms_E")
        self._aff_f = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="tms_aff")
        self._sil_t = b2.TimedArray(np.zeros(n_slots), dt=self.slot_s * b2.second, name="sil_t")
        ns = dict(model.namespace)
        ns.update(
            eq.cell_namespace(pv, self.dt_s, self.gb_params.mg_k, self.gb_params.mg_slope),
            tms_E=self._tms_E,
            tms_aff=self._aff_f,
            sil_t=self._sil_t,
            hash_poisson=hash_poisson,
        )
        if self.light:
            self._light_I = b2.TimedArray(
                np.zeros(n_slots), dt=self.slot_s * b2.second, name="light_I"
            )
            ns.update(eq.opto_namespace(self.opto_params.values()), light_I=self._light_I)
        post_vars = self.post_variables
        # per-cell state the rules keep on the cells (e.g. a fast sliding threshold's trace)
        post_code = [c for c in (r.post_code() for r in self.rules.values()) if c]
        for c in post_code:
            ns.update(c["namespace"])
        G = b2.NeuronGroup(
            self.N,
            model.eqs
            + eq.cell_eqs(self.light, model.dendrite)
            + "".join(f"\n{n} : 1 (constant)" for n in post_vars)
            + "".join("\n" + c["model"] for c in post_code),
            threshold=model.threshold,
            reset=model.reset + eq.COUNT_SPIKES + "".join("\n" + c["reset"] for c in post_code),
            refractory=model.refractory,
            method=model.method,
            namespace=ns,
            name="cells",
        )
        for var, val in [*model.init.items(), *(i for c in post_code for i in c["init"].items())]:
            setattr(G, var, val)
        for var, arr in model.per_neuron.items():
            setattr(G, var, arr)
        G.g_bg = self.layout.per_cell({n: p.g_background_nS for n, p in pops.items()}) * b2.nS
        G.thr_tms = self.tms_threshold_vpm
        G.pol_gain = self.polarization_mV_per_vpm * b2.mV
        for n, neutral in post_vars.items():
            setattr(G, n, neutral)
        G.run_regularly(eq.BACKGROUND, dt=self.dt_s * b2.second, when="start", name="background")
        G.run_regularly(eq.TMS_PULSE, dt=self.slot_s * b2.second, when="start", name="tms")
        if self.light:
            G.t_light_end = -1.0 * b2.second
            G.run_regularly(eq.LIGHT_PULSE, dt=self.slot_s * b2.second, when="start", name="light")
        self.G = G

        objs = [G]
        self.synapses = {}
        for name, grp in self.groups.items():
            S = self._synapses(b2, G, name, grp, pv)
            self.synapses[name] = S
            objs.append(S)

        # recording: every spike (small nets) or the first record_per_pop cells of each population
        if self.N <= 5000:
            self.monitors = [(0, b2.SpikeMonitor(G, name="spikes"))]
        else:
            self.monitors = [
                (
                    self.slices[p].start,
                    b2.SpikeMonitor(
                        G[
                            self.slices[p].start : self.slices[p].start
                            + min(self.sizes[p], self.record_per_pop)
                        ],
                        name=f"spikes_{p}",
                    ),
                )
                for p in self.populations
            ]
        objs += [m for _, m in self.monitors]
        self.net = b2.Network(*objs)
        if self.target == "cpp_standalone":
            # standalone: this run() only generates code; the binary runs in self.run()
            self.net.run(
                self.duration_s * b2.second,
                namespace={},
                profile=bool(os.environ.get("CORTEXSIM_PROFILE")),
            )
            base = Path(build_dir) if build_dir else cache_dir()
            # the thread count changes the build, not the model (not in config_hash)
            key = self.config_hash() + (f"_omp{self.threads}" if self.threads > 1 else "")
            self.directory, self.cache_hit = compile_network(
                b2, base, key, label=f"network ({self.N} neurons)"
            )
            # the device that holds this build; a later standalone build in this process
            # reinitialises it (new arrays dict), after which this circuit cannot run
            self._device = b2.get_device()  # the object (b2.device is a proxy to the active one)
            self._device_arrays = self._device.arrays
            _LAST_STANDALONE[0] = weakref.ref(self)
        else:
            # runtime: store the state at t = 0 (running first would start every run at
            # t = duration with the spike counters and monitors already filled)
            self.net.store("initial")
        self._b2 = b2

    def _release_brian2(self) -> None:
        """Drop the Brian2 objects of a superseded standalone build (it can no longer run;
        :meth:`run` says so)."""
        for attr in ("G", "net", "synapses", "monitors", "_tms_E", "_aff_f", "_sil_t", "_light_I"):
            self.__dict__.pop(attr, None)

    def _synapses(self, b2, G, name: str, grp: SynapseGroup, pv):
        """The Brian2 ``Synapses`` of one group: the rule's model and event code, the
        receptors' conductance update (scaled by the rule and short-term depression)."""
        rule = self.rules[grp.rule]
        code = rule.synapse_code()
        state = self.state[name]
        # on a point-neuron build, a dendritic target is the cells' one compartment
        model, trans = eq.transmission(
            grp.receptors,
            grp.short_term,
            rule,
            pv["synapse"]["nmda_ratio"],
            dendrite=self.dendrite and grp.target == "dendrite",
        )
        ns = dict(code.namespace, **rule.transmission_namespace(state))
        dep = grp.short_term == "depression"
        if dep:
            ns.update(eq.depression_namespace(pv))
        delay = eq.quantity(grp.delay_ms, "ms")
        S = b2.Synapses(
            G,
            G,
            model=code.model + "\n" + model if code.model else model,
            on_pre=code.with_transmission(trans),
            on_post=code.on_post,
            namespace=ns,
            name=name,
            **rule.synapses_kwargs(delay),
        )
        S.connect(i=grp.conn["i"], j=grp.conn["j"])
        S.g0 = grp.conn["g_nS"] * b2.nS
        if dep:
            S.t_rel = -1e3 * b2.second
        rule.setup(S, state, delay)
        return S

    # ----------------------------------------------------------------- run
    def _slot_values(self, stim: Stimulus):
        E = np.zeros(self.n_slots)
        aff = np.zeros(self.n_slots)
        light = np.zeros(self.n_slots)
        if stim.is_light and not self.light:
            raise InputError(
                "stimulus", "light pulses need a light-driven build (Circuit(..., light=True))"
            )
        if stim.pulse_times_s.size:
            # pulses are delivered at the nearest time step (see pulse_slot_s)
            t = np.round(stim.pulse_times_s / self.dt_s) * self.dt_s
            k = np.round(t / self.slot_s).astype(np.int64)
            if np.max(np.abs(k * self.slot_s - t)) > 1e-9:
                raise InputError(
                    "stimulus.pulse_times_s",
                    f"pulses must lie on this build's {self.slot_s * 1e3:g} ms grid",
                )
            # the phase covers [0, duration): a pulse at t >= duration would never be delivered
            if stim.pulse_times_s.max() >= self.duration_s - 0.5 * self.dt_s:
                raise InputError(
                    "stimulus.pulse_times_s",
                    f"pulses at or beyond the phase length {self.duration_s} s",
                )
            E[k] = stim.field_vpm
            aff[k] = self.afferent_fraction(stim.field_vpm)
            if stim.is_light:
                light[k] = stim.irradiance_mw_mm2
        return E, aff, light

    def run(
        self,
        stimulus: Stimulus | None = None,
        *,
        silence=None,
        silence_windows=None,
        spines: dict | None = None,
        run_seed: int = 0,
        results_name: str = "results",
        overrides: dict | None = None,
        light_populations=None,
    ) -> PhaseResult:
        """Run one phase with new run-time values (no recompilation).

        Parameters
        ----------
        stimulus : Stimulus, optional
            TMS pulses of the phase (default: none).
        silence : list of str, optional
            Populations to silence (chemogenetic conductance) during ``silence_windows``
            [(t0, t1) s] (default: the whole phase).
        spines : dict, optional
            Per-site values the spine-site rule accepts (Graupner-Brunel: ``on``, ``rho``),
            arrays of length :attr:`n_sites`.
        run_seed : int
            Seed of the counter-based noise of this run (background and afferent TMS input),
            in [0, 2**52): carried losslessly by a float64 run-time variable.  An experiment's
            runs take theirs from :meth:`cortexsim.rng.SeedSchedule.noise_seed`.
        overrides : dict, optional
            ``"cells.g_bg"``, ``"cells.thr_tms"``, ``"cells.pol_gain"``, ``"<group>.g0"`` or
            ``"cells.<name>"`` of a rule's postsynaptic variable (:attr:`post_variables`, e.g.
            ``"cells.theta_scale"``) -> per-cell / per-synapse values in SI units.
        light_populations : list of str, optional
            Populations whose cells express channelrhodopsin-2 (conductance ``chr2.g_max`` of
            the opto model; every other cell none).  Light-driven builds only.

        Returns
        -------
        PhaseResult

        Raises
        ------
        InputError
            Unknown population, spine variable or override; wrong array lengths; pulses off
            the build's grid or beyond the phase; a ``run_seed`` out of range.
        """
        run_seed = int(
            check_number("run_seed", run_seed, min=0, max=2**rng.NOISE_SEED_BITS - 1, integer=True)
        )
        if self.target == "cpp_standalone" and (
            "G" not in self.__dict__ or self._device.arrays is not self._device_arrays
        ):
            raise RuntimeError(
                "this cpp_standalone circuit was superseded by a later "
                "standalone build in this process; build it again"
            )
        b2 = self._b2
        stim = stimulus if stimulus is not None else Stimulus.none()
        E, aff, light = self._slot_values(stim)
        sil, sil_t = self._silence_values(silence, silence_windows)
        values = {
            self.G.run_seed: np.full(self.N, float(run_seed)),
            self.G.sil: sil,
            self._tms_E: E,
            self._aff_f: aff,
            self._sil_t: sil_t,
        }
        values.update(self._light_values(light, light_populations))
        values.update(self._spine_values(spines))
        for name, v in (overrides or {}).items():
            var = self._override_target(name)
            values[var] = b2.Quantity(np.asarray(v, dtype=float), dim=var.dim)  # SI values
        self._run_with(values, results_name)
        return self._collect()

    def _silence_values(self, silence, silence_windows) -> tuple[np.ndarray, np.ndarray]:
        """Per cell, 1 in the silenced populations; per slot, 1 in the silence windows (default:
        the whole phase)."""
        sil = np.zeros(self.N)
        for p in silence or []:
            check_choice("silence", p, self.populations)
            sil[self.slices[p]] = 1.0
        sil_t = np.zeros(self.n_slots)
        if silence:
            windows = silence_windows or [(0.0, self.duration_s + self.slot_s)]
            tt = np.arange(self.n_slots) * self.slot_s
            for t0, t1 in windows:
                sil_t[(tt >= t0) & (tt < t1)] = 1.0
        return sil, sil_t

    def _light_values(self, light, light_populations) -> dict:
        """The light's slot values and the ChR2 conductance per cell (a light-driven build);
        none otherwise, where ``light_populations`` is an error."""
        if light_populations and not self.light:
            raise InputError(
                "light_populations", "needs a light-driven build (Circuit(..., light=True))"
            )
        if not self.light:
            return {}
        b2 = self._b2
        g = np.zeros(self.N)
        for p in light_populations or []:
            check_choice("light_populations", p, self.populations)
            g[self.slices[p]] = self.opto_params.to("chr2.g_max", "S")
        return {self._light_I: light, self.G.g_chr2: b2.Quantity(g, dim=b2.siemens.dim)}

    def _spine_values(self, spines) -> dict:
        """The spine-site rule's run-time values for ``spines`` (arrays of :attr:`n_sites`)."""
        values = {}
        if not spines:
            return values
        if self.site_group is None:
            raise InputError("spines", "this circuit has no spine sites")
        for k, v in spines.items():
            v = np.asarray(v, dtype=float)
            if v.shape != (self.n_sites,):
                raise InputError(f"spines.{k}", f"needs {self.n_sites} values, got {v.shape}")
            values.update(self.site_rule.run_values(self.S_ee, {k: v}))
        return values

    def _run_with(self, values: dict, results_name: str) -> None:
        """Run the built network once with the run-time ``values`` (Brian2 variable or
        TimedArray -> array)."""
        b2 = self._b2
        if self.target == "cpp_standalone":
            # this build's device, not whatever device is active now (a runtime build since
            # would make b2.device the runtime device, which ignores run() -> stale results)
            self._device.run(
                directory=self.directory,
                with_output=False,
                run_args=values,
                results_directory=results_name,
            )
            return
        b2.set_device("runtime")
        b2.prefs.codegen.target = "numpy"
        self.net.restore("initial")
        for key, val in values.items():
            if isinstance(key, b2.TimedArray):
                key.values[:] = val
            else:
                key[:] = val
        self.net.run(self.duration_s * b2.second, namespace={})

    def _override_target(self, name: str):
        """'cells.g_bg', 'cells.thr_tms', 'cells.pol_gain', 'cells.<post variable>' or
        '<group>.g0' ('ee.g0': the spine sites) -> the Brian2 variable to set per run."""
        groups = list(self.synapses) + (
            ["ee"] if self.site_group and "ee" not in self.synapses else []
        )
        check_choice(
            "overrides",
            name,
            list(CELL_OVERRIDES)
            + [f"cells.{n}" for n in self.post_variables]
            + [f"{g}.g0" for g in groups],
        )
        grp, var = name.split(".")
        obj = self.G if grp == "cells" else self.synapses.get(grp) or self.S_ee
        return getattr(obj, var)

    def _collect(self) -> PhaseResult:
        counts = np.asarray(self.G.n_spk[:], dtype=float)
        nb = math.ceil(self.duration_s / self.rate_bin_s)
        edges = np.arange(nb + 1) * self.rate_bin_s
        si = np.concatenate([np.asarray(m.i[:]) + off for off, m in self.monitors])
        st = np.concatenate([np.asarray(m.t[:] / self._b2.second) for _, m in self.monitors])
        rates = {}
        for p in self.populations:
            s = self.slices[p]
            sel = (si >= s.start) & (si < s.stop)
            n = self.sizes[p] if self.N <= 5000 else min(self.sizes[p], self.record_per_pop)
            h, _ = np.histogram(st[sel], edges)
            rates[p] = h / (n * self.rate_bin_s)
        groups = {}
        for name, grp in self.groups.items():
            res = self.rules[grp.rule].collect(
                self.synapses[name], self.duration_s, grp.conn["i"], grp.conn["j"], counts
            )
            if res:
                groups[name] = res
        syn = groups.get(self.site_group, {})
        return PhaseResult(
            self.duration_s,
            dict(self.slices),
            counts,
            (edges[:-1] + edges[1:]) / 2,
            rates,
            si,
            st,
            syn,
            groups,
        )
