"""Pass 3 of the runner: the network read-outs from the spine snapshots.

At every read-out of every condition, the population rates without stimulation and an
evoked-response proxy to test pulses (:func:`evoked_spikes`), measured with the short compiled
circuit (:meth:`cortexsim.experiment.shared.Builds.short`) and shared between conditions and
worker processes through a :class:`cortexsim.experiment.store.ReadoutStore`
(:attr:`cortexsim.experiment.shared.SharedStats.readouts`).
"""

from __future__ import annotations

import functools

import numpy as np

from .progress import Progress
from .shared import snapshot_spines


class ReadoutPass:
    """The read-out pass of one runner (:class:`cortexsim.experiment.runner._Runner`).

    Parameters
    ----------
    settings : dict
        The run's settings (``baseline_fast_s``, ``evoked_interval_s``, ``evoked_pct_rmt``,
        ``evoked_window_s``).
    shared : SharedStats
        The statistics the conditions share (the read-out runs and their store).
    builds : Builds
        The compiled circuits (the short build of each network configuration).
    version : str
        Code version (part of every read-out's identity).
    seed : int
        The run's seed (part of every read-out's identity).
    progress : bool or queue
        Whether (and where) to show progress.
    """

    def __init__(
        self,
        settings: dict,
        shared,
        builds,
        version: str,
        seed: int,
        progress=True,
        needed: dict | None = None,
    ):
        self.settings = settings
        self.shared = shared
        self.builds = builds
        self.version = version
        self.seed = seed
        self.progress = progress
        self.needed = needed

    def _kind(self, cname: str, label: str) -> str | None:
        """What read-out ``label`` of condition ``cname`` measures: ``"evoked"`` (rates and the
        evoked response: every read-out without :attr:`needed`), ``"rates"`` or None."""
        if self.needed is None:
            return EVOKED
        return self.needed.get(cname, {}).get(label)

    def run(self, recs: dict, runs: dict, trees: dict, keys: dict) -> dict:
        """Population rates and an evoked-response proxy at every read-out of every condition,
        from the spine snapshots, with the short compiled circuit.

        Parameters
        ----------
        recs : dict
            Condition -> its :class:`cortexsim.experiment.recorder.Recorder` (the snapshots).
        runs : dict
            Condition -> its :class:`cortexsim.experiment.phases.ConditionRun` (the
            TMS-threshold override ``thr_override``).
        trees : dict
            Condition -> model trees.
        keys : dict
            Condition -> network key.

        Returns
        -------
        dict
            Condition -> read-out label -> ``{"rates": {pop: Hz}, "evoked": {pop: extra spikes
            per cell and pulse}}``.
        """
        from ..coupling import cell_field_vpm

        st = self.settings
        res_all = {c: {} for c in recs}
        bar = Progress(
            sum(1 for c, r in recs.items() for lab in r.snapshots if self._kind(c, lab)),
            self.progress,
            "read-outs" + ("" if len(recs) > 1 else f" {next(iter(recs), '')}"),
        )
        for cname in sorted(recs, key=lambda c: keys[c]):
            if not any(self._kind(cname, lab) for lab in recs[cname].snapshots):
                continue  # no build either
            circuit = self.builds.short(keys[cname], trees[cname])
            pulse_t = readout_pulse_times(
                st["baseline_fast_s"], circuit.slot_s, st["evoked_interval_s"]
            )
            field = cell_field_vpm(st["evoked_pct_rmt"], trees[cname]["coupling"])
            thr = runs[cname].thr_override
            todo = []
            for label, snap in recs[cname].snapshots.items():
                kind = self._kind(cname, label)
                if kind is None:  # nothing reads it: not measured (NaN in the results)
                    continue
                sp = snapshot_spines(circuit.site_rule, snap)
                # conditions that share a history share read-outs (every condition's baseline,
                # the stressed ones' end of stress): measured once, also across worker processes
                ident = [
                    self.version,
                    keys[cname],
                    circuit.config_hash(),
                    snap.on,
                    *[snap.sites[k] for k in sorted(snap.sites)],
                    None if thr is None else thr["cells.thr_tms"],
                    self.seed,
                    field,
                    pulse_t.tolist(),
                    st["evoked_window_s"],
                ]
                measure = functools.partial(self._measure_readout, circuit, sp, thr, pulse_t, field)
                if kind == RATES:
                    # the rates alone (the evoked response NaN, wherever it was measured): from
                    # the whole read-out if one was measured before, else from its run without
                    # pulses (the same run, so the same rates)
                    whole = self.shared.readouts.peek(ident)
                    ident = [*ident, RATES]
                    measure = (
                        functools.partial(_rates_only, whole["rates"], circuit.slices)
                        if whole is not None
                        else functools.partial(self._measure_rates, circuit, sp, thr)
                    )
                todo.append((label, ident, measure))
            # first the read-outs no other process is measuring now, then wait for the rest
            for wait in (False, True):
                for label, ident, measure in todo:
                    if label in res_all[cname]:
                        continue
                    got = self.shared.readouts.get(ident, measure, wait=wait)
                    if got is not None:
                        res_all[cname][label] = got
                        bar.update(1, f"{cname} {label}")
            res_all[cname] = {label: res_all[cname][label] for label, _, _ in todo}
        bar.close()
        return res_all

    def _measure_rates(self, circuit, spines, thr) -> dict:
        """The rates of a read-out without its evoked response (NaN)."""
        r0 = self._readout_rest_run(circuit, spines, thr)
        return _rates_only({p: r0.mean_rate(p) for p in circuit.slices}, circuit.slices)

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
        r1 = self._readout_run(
            circuit, Stimulus(list(pulse_t), [field] * len(pulse_t)), spines, thr
        )
        thresholds = circuit.tms_threshold_vpm if thr is None else thr["cells.thr_tms"]
        evoked = evoked_spikes(
            r0, r1, circuit.slices, thresholds <= field, pulse_t, self.settings["evoked_window_s"]
        )
        return {"rates": {p: r0.mean_rate(p) for p in circuit.slices}, "evoked": evoked}


#: what a read-out measures (:func:`needed_readouts`): its rates only, or rates and the evoked
#: response
RATES, EVOKED = "rates", "evoked"
#: result variables that the read-out pass measures, and what each needs
READOUT_PASS_VARIABLES = {"rate_readout": RATES, "evoked_response": EVOKED}


def _rates_only(rates: dict, slices) -> dict:
    return {"rates": dict(rates), "evoked": {p: float("nan") for p in slices}}


def needed_readouts(items, conditions, labels) -> dict:
    """The network read-outs that ``items`` (metrics or criteria: dicts with ``var``,
    ``condition``, ``minus_condition``, ``readout``, or a metric's ``criterion``, which
    ``items`` must then also hold) read: condition -> read-out label -> ``"rates"`` or
    ``"evoked"``.  A read-out that no item reads is not measured by a run given this
    (:meth:`cortexsim.experiment.Experiment.run` ``readouts``): the read-outs are observations
    (nothing in a condition's timeline reads them), so every other number is the same.

    Parameters
    ----------
    items : iterable of dict
        Metrics and criteria.
    conditions : iterable of str
        The run's conditions.
    labels : iterable of str
        The timeline's read-out labels.

    Returns
    -------
    dict
    """
    conditions, labels = list(conditions), list(labels)
    out: dict = {}
    for it in items:
        kind = READOUT_PASS_VARIABLES.get(it.get("var"))
        if kind is None:
            continue
        conds = [it.get(k) for k in ("condition", "minus_condition") if it.get(k)]
        labs = [it["readout"]] if it.get("readout") else labels
        for c in conds or conditions:
            for lab in labs:
                have = out.setdefault(c, {}).get(lab)
                out[c][lab] = EVOKED if EVOKED in (have, kind) else kind
    return out


def covers(measured, needed) -> bool:
    """Whether the read-outs ``measured`` (as :func:`needed_readouts` gives them; None: all)
    hold everything ``needed`` reads.

    Parameters
    ----------
    measured : dict or None
        What a run measured.
    needed : dict or None
        What is read now (None: everything).

    Returns
    -------
    bool
    """
    if measured is None:
        return True
    if needed is None:
        return False
    for c, labs in needed.items():
        for lab, kind in labs.items():
            have = measured.get(c, {}).get(lab)
            if have is None or (kind == EVOKED and have != EVOKED):
                return False
    return True


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
    if k.size == 0:  # a run shorter than two intervals: one pulse, mid-run
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


def _count(res, s: slice, win) -> float:
    sel = (
        (res.spike_i >= s.start)
        & (res.spike_i < s.stop)
        & (res.spike_t >= win[0])
        & (res.spike_t < win[1])
    )
    return float(sel.sum())
