"""The runner: the three passes over the conditions and the worker processes.

Pass 1 measures the resting statistics of every network configuration, pass 2 runs each
condition's timeline (:class:`cortexsim.experiment.phases.ConditionRun`, given its
:class:`cortexsim.experiment.context.ConditionContext` and the run's
:class:`cortexsim.experiment.shared.SharedStats`, checkpointed in a
:class:`cortexsim.experiment.store.CheckpointStore`), pass 3 measures the network read-outs from
the spine snapshots (shared through a :class:`cortexsim.experiment.store.ReadoutStore`).  Each
condition's results are an ``xarray.Dataset`` (:meth:`Recorder.dataset`), joined by
:meth:`cortexsim.results.Results.from_conditions`.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import check_number
from ..rng import SeedSchedule
from .context import ConditionContext
from .phases import ConditionRun
from .progress import Progress, draw_worker_progress
from .recorder import by_population
from .shared import Builds, SharedStats, snapshot_spines
from .spec import MODEL_NAMES, _model_trees
from .store import CheckpointStore, code_version, condition_key, digest


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
        self.version = code_version()
        #: one compiled circuit at a time, and the drawn circuits
        self.builds = Builds(self.settings, self.seed)
        #: the statistics the conditions share (pass 1, the sessions' references, read-outs)
        self.shared = SharedStats(self.settings, self.streams, self.version, self.builds,
                                  self.checkpoint_dir)
        self.shared_readouts = self.shared.readouts

    def condition_key(self, cname: str) -> str:
        """Checkpoint key of a condition: its config (no criteria) and the code version."""
        return condition_key(self.cfg, cname, self.version)

    def _short_circuit(self, key, trees):
        """The short build of network configuration ``key`` (:meth:`Builds.short`)."""
        return self.builds.short(key, trees)

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
            runs[c] = ConditionRun(self._context(c, trees[c], keys[c]), self.shared, a0, nmda0,
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

    def _context(self, cname: str, trees: dict, key: str) -> ConditionContext:
        """What condition ``cname``'s timeline is given: its drawn circuit (no build), site
        maps, initial spines, thresholds and checkpoint store."""
        cond = self.cfg["conditions"][cname]
        drawn = self.builds.drawn(key, trees)
        post = drawn.site_post
        return ConditionContext(
            cname, cond, trees, key, drawn, post, drawn.pop_index[post],
            self.shared.initial_spines(drawn.n_sites, trees),
            self.shared.thresholds(drawn, self._ablations(cond)), self.cfg["timeline"],
            self.settings, self.checkpoints, self.condition_key(cname), self.progress)

    def _ablations(self, cond: dict) -> list:
        return list(self.cfg["ablations"]) + cond["ablations"]

    def _rest_key(self, key: str, cond: dict, trees: dict) -> tuple:
        """What the pass-1 statistics depend on besides the seed: the network configuration,
        whether the TMS thresholds are pooled (:meth:`SharedStats.thresholds`) and the
        structural model (the initial spine state)."""
        return (key, "coupling" in self._ablations(cond), digest(trees["structural"].values()))

    def _rest_stats(self, key: str, cond: dict, trees: dict) -> tuple:
        """Pass 1: :meth:`SharedStats.baseline_stats` with the initial spine state, measured
        once per :meth:`_rest_key` and shared with the other worker processes;
        ``(a0, rates, nmda0)``."""
        circuit = self._short_circuit(key, trees)
        return self.shared.rest_stats(
            ["pass1_rest", self.version, *self._rest_key(key, cond, trees),
             circuit.config_hash(), self.seed], circuit, trees,
            self.shared.thresholds(circuit, self._ablations(cond)))

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
                sp = snapshot_spines(circuit.site_rule, snap)
                # conditions that share a history share read-outs (every condition's baseline,
                # the stressed ones' end of stress): measured once, also across worker processes
                ident = [self.version, keys[cname], circuit.config_hash(), snap.on,
                         *[snap.sites[k] for k in sorted(snap.sites)],
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
        """A read-out run (:meth:`SharedStats.readout_run`)."""
        return self.shared.readout_run(circuit, stimulus, spines, thr)

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
