"""The runner: circuits, the three passes over the conditions, worker processes, progress.

Pass 1 measures the resting statistics of every network configuration, pass 2 runs each
condition's timeline (:class:`cortexsim.experiment.phases.ConditionRun`, checkpointed in a
:class:`cortexsim.experiment.store.CheckpointStore`), pass 3 measures the network read-outs from
the spine snapshots (shared through a :class:`cortexsim.experiment.store.ReadoutStore`).  Each
condition's results are an ``xarray.Dataset`` (:meth:`Recorder.dataset`), joined by
:meth:`cortexsim.results.Results.from_conditions`.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ..errors import check_number
from ..populations import excitatory
from ..rng import SeedSchedule
from .phases import (  # noqa: F401  (rho_after_session, _simulated_session_s: public helpers)
    ConditionRun,
    _simulated_session_s,
    ltp_time_per_cell,
    nmda_calcium_per_cell,
    rho_after_session,
)
from .progress import Progress, draw_worker_progress
from .recorder import by_population
from .spec import MODEL_NAMES, _model_trees
from .store import CheckpointStore, ReadoutStore, code_version, condition_key, digest


class _Runner:
    """Runs the conditions of one resolved config (see :meth:`Experiment.run`)."""

    def __init__(self, cfg: dict, progress: bool = True, checkpoint_dir=None, workers: int = 1):
        self.cfg = cfg
        self.progress = progress
        self.workers = int(check_number("workers", workers, min=1, integer=True))
        self.settings = cfg["settings"]
        self.seed = cfg["experiment"]["seed"]
        #: every seed of the run, by named stream (what is shared between conditions, and why:
        #: cortexsim.rng.STREAMS)
        self.streams = SeedSchedule(self.seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoints = CheckpointStore(self.checkpoint_dir) if self.checkpoint_dir else None
        self.shared_readouts = ReadoutStore(
            self.checkpoint_dir / "readouts" if self.checkpoint_dir else None)
        # the sessions' rest references (ConditionRun._set_session_references), shared alike
        self.shared_references = ReadoutStore(
            self.checkpoint_dir / "references" if self.checkpoint_dir else None)
        self.version = code_version()
        self._circuit = None
        self._circuit_key = None

    def condition_key(self, cname: str) -> str:
        """Checkpoint key of a condition: its config (no criteria) and the code version."""
        return condition_key(self.cfg, cname, self.version)

    # ----------------------------------------------------------------- circuit cache
    def _get_circuit(self, key: str, trees: dict, duration_s: float, slot_s: float = 0.02,
                     light: bool = False):
        """One compiled circuit at a time (Brian2 standalone keeps one device per process); a
        build is identified by the network configuration, its phase length and its pulse grid
        ``slot_s`` (chosen from the protocol: :func:`cortexsim.circuit.network.pulse_slot_s`),
        and for a light-driven build (``light``) by the opto model's values."""
        key = (key, round(float(duration_s), 6), round(float(slot_s), 9)) \
            + ((digest(trees["opto"].values()),) if light else ())
        if self._circuit_key == key:
            return self._circuit
        from ..circuit.network import Circuit
        self._circuit = Circuit(self.settings["scale"], duration_s=duration_s, seed=self.seed,
                                slot_s=slot_s, params=trees["circuit"],
                                cell_params=trees["cells"], syn_params=trees["synaptic"],
                                coupling_params=trees["coupling"], light=light,
                                opto_params=trees["opto"] if light else None)
        self._circuit_key = key
        return self._circuit

    def _trees(self, cond: dict) -> dict:
        ov = dict(self.cfg["overrides"])
        ov.update(cond["overrides"])
        return _model_trees(ov, list(self.cfg["ablations"]) + cond["ablations"])

    def _network_key(self, trees) -> str:
        return digest({m: trees[m].values()
                       for m in ("circuit", "cells", "synaptic", "coupling")})

    # ----------------------------------------------------------------- main
    def run(self):
        from ..results import Results
        conds = list(self.cfg["conditions"])
        if self.workers > 1 and len(conds) > 1:
            out = self._run_parallel(conds)
        else:
            out = self.run_subset(conds)
        return Results.from_conditions(self.cfg, {c: out[c][0] for c in conds},
                                       {c: out[c][1] for c in conds})

    def _run_parallel(self, conds):
        """One process per condition (Brian2 standalone holds one device per process); the
        longest (stimulated) conditions start first.  Results are identical to a serial run:
        every random stream depends on the seed only."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from ..errors import quiet_interrupt_in_worker
        cost = {c: self.cfg["conditions"][c]["protocol"] != "none" for c in conds}
        order = sorted(conds, key=lambda c: not cost[c])
        out = {}
        ctx = mp.get_context("spawn")
        queue = drawer = None
        if self.progress:
            import threading
            manager = ctx.Manager()
            queue = manager.Queue()
            drawer = threading.Thread(target=draw_worker_progress, args=(queue,), daemon=True)
            drawer.start()
        try:
            ex = ProcessPoolExecutor(self.workers, mp_context=ctx,
                                     initializer=quiet_interrupt_in_worker)
            try:
                futs = {ex.submit(_run_subset_worker, self.cfg, [c], self.checkpoint_dir,
                                  queue): c for c in order}
                for f in as_completed(futs):
                    out.update(f.result())
            except BaseException:
                ex.shutdown(wait=True)
                raise
            # every result is in: the workers exit (and remove their build folders) while the
            # caller goes on (the interpreter joins them at exit)
            ex.shutdown(wait=False)
        finally:
            if drawer is not None:
                queue.put(None)
                drawer.join()
                manager.shutdown()
        return out

    def run_subset(self, conds) -> dict:
        """All three passes for the conditions ``conds``; returns condition -> (Dataset, model
        values used)."""
        allc = self.cfg["conditions"]
        trees = {c: self._trees(allc[c]) for c in conds}
        keys = {c: self._network_key(trees[c]) for c in conds}
        # pass 1: resting activity statistics per network configuration (short build)
        rkey = {c: self._rest_key(keys[c], allc[c], trees[c]) for c in conds}
        rest = {}
        for c in conds:
            if rkey[c] not in rest:
                rest[rkey[c]] = self._rest_stats(keys[c], allc[c], trees[c])
        # pass 2: the timelines (session builds), conditions grouped by network configuration
        recs, runs = {}, {}
        for c in sorted(conds, key=lambda c: (keys[c], conds.index(c))):
            a0, rates, nmda0 = rest[rkey[c]]
            runs[c] = ConditionRun(self, c, allc[c], trees[c], keys[c], a0, nmda0,
                                   rest_rates=rates)
            recs[c] = runs[c].run()
        # pass 3: network read-outs from the spine snapshots (short build)
        readouts = self._readouts(recs, runs, trees, keys)
        labels = [ph["readout"] for ph in self.cfg["timeline"] if ph["readout"]]
        out = {}
        for c in conds:
            a0, rates, _ = rest[rkey[c]]
            ds = recs[c].dataset(c, labels, readouts[c], rates,
                                 by_population(a0, runs[c].layout.pop_index,
                                               len(runs[c].populations)))
            out[c] = (ds, {m: trees[c][m].values() for m in MODEL_NAMES})
        return out

    def _layout_circuit(self, key, trees):
        """A build of network configuration ``key``: the one at hand if it is one (builds of
        any phase length share the layout -- cells, sites, thresholds, initial efficacies --
        drawn from the seed), else the short build."""
        if self._circuit_key is not None and self._circuit_key[0] == key:
            return self._circuit
        return self._short_circuit(key, trees)

    def _short_circuit(self, key, trees):
        return self._get_circuit(key, trees, self.settings["baseline_fast_s"])

    def _initial_spines(self, n_sites, trees):
        """Every condition starts from the same spine state (paired comparison): stream
        ``initial_spines``."""
        from ..plasticity import structural as SP
        return SP.SpineState.initial(n_sites, self.streams.generator("initial_spines"),
                                     params=trees["structural"])

    def _rest_key(self, key: str, cond: dict, trees: dict) -> tuple:
        """What the pass-1 statistics depend on besides the seed: the network configuration,
        whether the TMS thresholds are pooled (:meth:`_thresholds`) and the structural model
        (the initial spine state)."""
        return (key, "coupling" in list(self.cfg["ablations"]) + cond["ablations"],
                digest(trees["structural"].values()))

    def _rest_stats(self, key: str, cond: dict, trees: dict) -> tuple:
        """Pass 1: :meth:`_baseline_stats` with the initial spine state, measured once per
        :meth:`_rest_key` and shared with the other worker processes through
        :attr:`shared_references`; ``(a0, rates, nmda0)``, the same numbers either way."""
        circuit = self._short_circuit(key, trees)
        return self.shared_rest_stats(
            ["pass1_rest", self.version, *self._rest_key(key, cond, trees),
             circuit.config_hash(), self.seed], circuit, cond, trees)

    def shared_rest_stats(self, identity: list, circuit, cond, trees,
                          spines: dict | None = None, post_overrides: dict | None = None):
        """:meth:`_baseline_stats`, measured once per ``identity`` (code version, network,
        spine state, seed, overrides) and shared with the other worker processes and a resumed
        run through :attr:`shared_references`; ``(a0, rates, nmda0)``."""
        def measure():
            a0, rates, nmda0 = self._baseline_stats(circuit, cond, trees, spines,
                                                    post_overrides)
            return {"a0": a0.tolist(), "rates": rates, "nmda0": nmda0.tolist()}
        ref = self.shared_references.get(identity, measure)
        return (np.asarray(ref["a0"], dtype=float), ref["rates"],
                np.asarray(ref["nmda0"], dtype=float))

    def _baseline_stats(self, circuit, cond, trees, spines: dict | None = None,
                        post_overrides: dict | None = None):
        """LTP-calcium time per cell, population rates and presynaptic NMDA calcium per cell
        of the network at rest (short build, noise stream ``rest``) with the spine state
        ``spines`` (``on``, ``rho``; default the initial one) and the sessions' run-time values
        of the rule's postsynaptic variables ``post_overrides`` (default none): the references
        of the activity drive and of the dopamine release."""
        if spines is None:
            state = self._initial_spines(circuit.n_sites, trees)
            spines = {"on": (state.state > 0).astype(float), "rho": circuit.initial_rho}
        over = {**(self._thresholds(circuit, cond) or {}), **(post_overrides or {})}
        res = circuit.run(None, spines=spines,
                          run_seed=self.streams.noise_seed("rest"), overrides=over or None,
                          results_name=f"res_{os.getpid()}")
        site_post = circuit.conn["ee"]["j"].astype(np.int64)
        a0 = ltp_time_per_cell(res, site_post, circuit.N, res.duration_s)
        nmda0 = nmda_calcium_per_cell(res, circuit.site_rule, site_post, circuit.N)
        return a0, {p: res.mean_rate(p) for p in circuit.slices}, nmda0

    def _thresholds(self, circuit, cond):
        """Run-time TMS thresholds: as built, or pooled across excitatory cells (ablation;
        permuted by stream ``coupling_ablation``, the same in every condition)."""
        abl = list(self.cfg["ablations"]) + cond["ablations"]
        if "coupling" not in abl:
            return None
        thr = np.array(circuit.tms_threshold_vpm, dtype=float)
        idx = np.concatenate([np.arange(circuit.slices[p].start, circuit.slices[p].stop)
                              for p in excitatory(circuit.params)])
        thr[idx] = self.streams.generator("coupling_ablation").permutation(thr[idx])
        return {"cells.thr_tms": thr}

    def _site_groups(self, circuit):
        """Post cell of every plastic site, and its population index."""
        post = circuit.conn["ee"]["j"].astype(np.int64)
        pop_of_cell = circuit.pop_index
        return post, pop_of_cell[post]

    # ----------------------------------------------------------------- read-outs
    def _readouts(self, recs: dict, runs: dict, trees: dict, keys: dict) -> dict:
        """Population rates and an evoked-response proxy at every read-out of every condition,
        from the spine snapshots, with the short compiled circuit; condition -> label -> dict."""
        from ..coupling import cell_field_vpm
        st = self.settings
        res_all = {c: {} for c in recs}
        bar = Progress(sum(len(r.snapshots) for r in recs.values()), self.progress,
                        "read-outs" + ("" if len(recs) > 1 else f" {next(iter(recs), '')}"))
        for cname in sorted(recs, key=lambda c: keys[c]):
            circuit = self._short_circuit(keys[cname], trees[cname])
            pulse_t = readout_pulse_times(st["baseline_fast_s"], circuit.slot_s,
                                       st["evoked_interval_s"])
            field = cell_field_vpm(st["evoked_pct_rmt"], trees[cname]["coupling"])
            thr = runs[cname].thr_override
            todo = []
            for label, snap in recs[cname].snapshots.items():
                sp = {"on": snap.on.astype(float), "rho": snap.rho}
                # conditions that share a history share read-outs (every condition's baseline,
                # the stressed ones' end of stress): measured once, also across worker processes
                ident = [self.version, keys[cname], circuit.config_hash(), snap.on, snap.rho,
                         None if thr is None else thr["cells.thr_tms"], self.seed, field,
                         pulse_t.tolist(), st["evoked_window_s"]]
                todo.append((label, ident, functools.partial(
                    self._measure_readout, circuit, sp, thr, pulse_t, field)))
            # first the read-outs no other process is measuring now, then wait for the rest
            for wait in (False, True):
                for label, ident, measure in todo:
                    if label in res_all[cname]:
                        continue
                    got = self.shared_readouts.get(ident, measure, wait=wait)
                    if got is not None:
                        res_all[cname][label] = got
                        bar.update(1, f"{cname} {label}")
            res_all[cname] = {label: res_all[cname][label] for label, _, _ in todo}
        bar.close()
        return res_all

    def _readout_rest_run(self, circuit, spines, thr):
        """The read-outs' run without stimulation with the spine state ``spines`` (``on``,
        ``rho``) and the TMS-threshold override ``thr``."""
        return self._readout_run(circuit, None, spines, thr)

    def _readout_run(self, circuit, stimulus, spines, thr):
        """A read-out run (noise stream ``readout``: every read-out of every condition)."""
        return circuit.run(stimulus, spines=spines, run_seed=self.streams.noise_seed("readout"),
                           overrides=thr, results_name=f"res_{os.getpid()}")

    def cell_rates(self, key, trees, snapshot, thr) -> np.ndarray:
        """Rate of every cell (Hz) with the spine state of a read-out ``snapshot``, measured
        as the read-outs measure the population rates (short build, noise stream ``readout``).

        Parameters
        ----------
        key : str
            Network-configuration key.
        trees : dict
            Model trees of the condition.
        snapshot : cortexsim.experiment.recorder.Snapshot
            Spine state (``on``, ``rho``).
        thr : dict or None
            TMS-threshold override of the condition.

        Returns
        -------
        ndarray (n_cells,)
        """
        circuit = self._short_circuit(key, trees)
        res = self._readout_rest_run(circuit, {"on": snapshot.on.astype(float),
                                               "rho": snapshot.rho}, thr)
        return res.spike_counts / res.duration_s

    def _measure_readout(self, circuit, spines, thr, pulse_t, field) -> dict:
        """Rates without stimulation, and the evoked response to test pulses at ``pulse_t``:
        extra spikes per cell and pulse in the window after each pulse vs the same window
        without it (same noise seed), not counting the spike of each directly activated cell
        (:func:`evoked_spikes`)."""
        from ..circuit.network import Stimulus
        r0 = self._readout_rest_run(circuit, spines, thr)
        r1 = self._readout_run(circuit, Stimulus(list(pulse_t), [field] * len(pulse_t)), spines,
                               thr)
        thresholds = circuit.tms_threshold_vpm if thr is None else thr["cells.thr_tms"]
        evoked = evoked_spikes(r0, r1, circuit.slices, thresholds <= field, pulse_t,
                               self.settings["evoked_window_s"])
        return {"rates": {p: r0.mean_rate(p) for p in circuit.slices}, "evoked": evoked}


#: a directly activated cell fires in the time step of the pulse; its spike is looked for this
#: long after the pulse (longer than any step the circuit allows, circuit.sim.dt)
DIRECT_SPIKE_S = 0.5e-3


def readout_pulse_times(duration_s: float, slot_s: float, interval_s: float) -> np.ndarray:
    """Times (s) of the read-outs' test pulses: every ``interval_s`` (rounded to the pulse grid
    ``slot_s``) from half an interval after the start, the last one a whole interval before the
    end of the run (a response has room to finish).

    Parameters
    ----------
    duration_s : float
        Length of the read-out run (s).
    slot_s : float
        The circuit's pulse grid (s): every pulse lies on it.
    interval_s : float
        Wanted interval between test pulses (s; ``settings.evoked_interval_s``).

    Returns
    -------
    ndarray (n_pulses,)
        Pulse times (s), at least one.
    """
    n_step = max(round(interval_s / slot_s), 1)
    start = max(n_step // 2, 1)
    k = np.arange(start, round(duration_s / slot_s) - n_step + 1, n_step)
    if k.size == 0:                       # a run shorter than two intervals: one pulse, mid-run
        k = np.array([round(duration_s / 2 / slot_s)])
    return k * slot_s


def evoked_spikes(rest, stim, slices: dict, direct, pulse_t, window_s: float) -> dict:
    """The synaptic response to test pulses: extra spikes per cell and pulse of each population in
    ``[t, t + window_s)`` after every pulse ``t`` of the stimulated run ``stim``, over the same
    windows of the unstimulated run ``rest`` (same noise), without the spike that a pulse itself
    fires in each directly activated cell (its first spike within :data:`DIRECT_SPIKE_S`).

    What is left is carried by synapses: the afferent volley the pulse releases and the
    recurrent synapses of the directly activated cells (spine sites included), minus the spikes
    that the evoked inhibition removes; it changes with spine density and efficacy.  Averaging
    over pulses (as MEPs are averaged over trials) keeps the network's own fluctuations from
    dominating one 50-ms window.  (Until this stop the proxy counted the direct spikes of one
    pulse, which made it a measure of the threshold draw alone: the same in every condition.)

    Parameters
    ----------
    rest, stim : RunResult
        The read-out runs without and with the pulses (``spike_i``, ``spike_t``).
    slices : dict
        Population -> slice of cell indices.
    direct : ndarray of bool (n_cells,)
        Cells whose TMS threshold the pulses' field reaches.
    pulse_t : float or array_like
        Pulse times (s).
    window_s : float
        Counting window after each pulse (s).

    Returns
    -------
    dict
        Population -> extra spikes per cell and pulse (negative: evoked inhibition wins).
    """
    pulses = np.atleast_1d(np.asarray(pulse_t, dtype=float))
    direct = np.asarray(direct, dtype=bool)
    out = {p: 0.0 for p in slices}
    for t0 in pulses:
        win = (t0, t0 + window_s)
        at_pulse = (stim.spike_t >= t0) & (stim.spike_t < t0 + DIRECT_SPIKE_S)
        fired = np.zeros(direct.size, dtype=bool)
        fired[np.unique(stim.spike_i[at_pulse])] = True
        fired &= direct
        for p, s in slices.items():
            extra = _count(stim, s, win) - _count(rest, s, win) - float(fired[s].sum())
            out[p] += extra / (s.stop - s.start) / pulses.size
    return out


def _run_subset_worker(cfg, conds, checkpoint_dir, queue=None):
    return _Runner(cfg, progress=queue or False, checkpoint_dir=checkpoint_dir).run_subset(conds)


def _count(res, s: slice, win) -> float:
    sel = (res.spike_i >= s.start) & (res.spike_i < s.stop) & (res.spike_t >= win[0]) \
        & (res.spike_t < win[1])
    return float(sel.sum())
