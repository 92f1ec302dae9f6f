"""What one condition's timeline records, and its results as an ``xarray.Dataset``.

The recorder keeps, per condition: the spine-density / weight trace and the spines formed and
eliminated between its time points, per-session numbers (rates, change of GB efficacy,
LTP-calcium time, dopamine, dopamine gate, NMDA-calcium excess, drive increment) and the spine
snapshots at the read-outs (measured on the network after the
timeline).  :meth:`Recorder.dataset` turns it into the condition's Dataset; the conditions are
joined by :meth:`cortexsim.results.Results.from_conditions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def by_population(x: np.ndarray, groups: np.ndarray, n_pop: int, where=None) -> np.ndarray:
    """Mean of ``x`` over the members of each of ``n_pop`` populations (``groups``: population
    index per member), or over those members where ``where`` holds; 0 for a population without
    (such) members.

    Parameters
    ----------
    x : ndarray (n,)
        Values per member.
    groups : ndarray of int (n,)
        Population index per member.
    n_pop : int
        Number of populations.
    where : ndarray of bool (n,), optional
        Members to average over (default: all).

    Returns
    -------
    ndarray (n_pop,)
    """
    w = np.ones(len(groups)) if where is None else np.asarray(where, dtype=float)
    n = np.bincount(groups, weights=w, minlength=n_pop)
    return np.bincount(
        groups, weights=np.asarray(x, dtype=float) * w, minlength=n_pop
    ) / np.maximum(n, 1)


def mean_efficacy(rho: np.ndarray, on: np.ndarray, site_pop: np.ndarray, n_pop: int):
    """Mean GB efficacy of present synapses per population (NaN where none).

    Parameters
    ----------
    rho : ndarray (n_sites,)
        Efficacies.
    on : ndarray (n_sites,)
        Presence.
    site_pop : ndarray of int (n_sites,)
        Population of each site's postsynaptic cell.
    n_pop : int
        Number of populations.

    Returns
    -------
    ndarray (n_pop,)
    """
    num = np.bincount(site_pop, weights=rho * on, minlength=n_pop)
    den = np.bincount(site_pop, weights=on, minlength=n_pop)
    return np.where(den > 0, num / np.maximum(den, 1), np.nan)


@dataclass
class Snapshot:
    """Spine state at a read-out: time (d), occupancy (int8) and the rule's per-site state.

    Attributes
    ----------
    t_d : float
        Time (days).
    on : ndarray of int8 (n_sites,)
        Occupancy.
    sites : dict of str -> ndarray (n_sites,)
        The spine sites' rule's per-site state (Graupner-Brunel: the efficacy ``rho``).
    """

    t_d: float
    on: np.ndarray
    sites: dict


@dataclass
class Recorder:
    """Records of one condition (lists grow along the timeline; per-population arrays are in
    the order of ``populations``).

    Attributes
    ----------
    populations : tuple of str
        The circuit's populations, in cell-index order.
    site_pop : ndarray of int (n_sites,)
        Population index of every spine site's postsynaptic cell.
    t_d, density, weight, formed, eliminated : lists
        Trace: time (d); occupied fraction and mean relative weight of present spines per
        population; spines formed / eliminated since the previous time point.
    session_rate, session_dw, session_ltp_time : lists of (n_pop,) arrays
        Per stimulation session: population rates (Hz); change of mean GB efficacy of present
        synapses; mean time per second that a cell's synapses' calcium spent above the GB
        potentiation threshold (the activity drive's input).
    session_dopamine : list of float
        Per stimulation session: its dopamine DA in [0, 1)
        (:func:`cortexsim.plasticity.structural.session_dopamine`).
    session_da_gate, session_nmda_excess, session_drive : lists of (n_pop,) arrays
        Per stimulation session, population means: the dopamine gate of the cells' session
        drive; the relative excess of their presynaptic NMDA calcium over the unstimulated
        reference (``nmda / nmda_rest - 1``, over cells with NMDA calcium at rest); the
        increment of their activity drive (:func:`cortexsim.plasticity.structural.session_drive`).
    session_reference_rate : list of (n_pop,) arrays
        Per stimulation session: the unstimulated population rates (Hz) its drive and dopamine
        are counted against (``settings.session_reference``: the network with the spine state
        before the sessions, or the session's own run without its stimulation).
    snapshots : dict label -> Snapshot
        Spine state at every read-out so far.
    """

    populations: tuple
    site_pop: np.ndarray
    t_d: list = field(default_factory=list)
    density: list = field(default_factory=list)
    weight: list = field(default_factory=list)
    formed: list = field(default_factory=list)
    eliminated: list = field(default_factory=list)
    session_rate: list = field(default_factory=list)
    session_dw: list = field(default_factory=list)
    session_ltp_time: list = field(default_factory=list)
    session_dopamine: list = field(default_factory=list)
    session_da_gate: list = field(default_factory=list)
    session_nmda_excess: list = field(default_factory=list)
    session_drive: list = field(default_factory=list)
    session_reference_rate: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)

    _TRACE = (
        "density",
        "weight",
        "session_rate",
        "session_dw",
        "session_ltp_time",
        "session_da_gate",
        "session_nmda_excess",
        "session_drive",
        "session_reference_rate",
    )
    #: per-session, per-population records that are NaN for populations without spine sites
    _SITE_ONLY = ("session_ltp_time", "session_da_gate", "session_nmda_excess", "session_drive")

    @property
    def n_pop(self) -> int:
        """Number of populations."""
        return len(self.populations)

    # ----------------------------------------------------------------- recording
    def sample(self, state) -> None:
        """A time point of the trace from ``state`` (a ConditionState); takes its counts of
        formed and eliminated spines since the previous time point.

        Parameters
        ----------
        state : ConditionState
            The condition's state now; its ``formed`` and ``eliminated`` are reset to 0.
        """
        occ = state.spines.state > 0
        sp, npop = self.site_pop, self.n_pop
        n = np.bincount(sp, minlength=npop).astype(float)
        cnt = np.bincount(sp, weights=occ, minlength=npop)
        wsum = np.bincount(sp, weights=state.spines.weight * occ, minlength=npop)
        self.t_d.append(float(state.t_d))
        self.density.append(cnt / np.maximum(n, 1))
        self.weight.append(np.where(cnt > 0, wsum / np.maximum(cnt, 1), np.nan))
        self.formed.append(int(state.formed))
        self.eliminated.append(int(state.eliminated))
        state.formed = state.eliminated = 0

    def session(
        self, rates, dw, ltp_time, *, dopamine, gate, nmda_excess, drive, reference_rate
    ) -> None:
        """Numbers of one stimulation session: ``dopamine`` a float, the others per population
        (see the attributes).

        Parameters
        ----------
        rates : array (n_pop,)
            Population rates during the session (Hz).
        dw : array (n_pop,)
            Change of mean GB efficacy of present synapses.
        ltp_time : array (n_pop,)
            Mean time per second above the GB potentiation threshold (s/s).
        dopamine : float
            The session's dopamine, in [0, 1).
        gate, nmda_excess, drive : array (n_pop,)
            Dopamine gate, relative NMDA-calcium excess and activity-drive increment
            (population means; NaN without spine sites).
        reference_rate : array (n_pop,)
            The unstimulated rates the session is counted against (Hz).
        """
        self.session_rate.append(np.asarray(rates, dtype=float))
        self.session_dw.append(np.asarray(dw, dtype=float))
        self.session_ltp_time.append(np.asarray(ltp_time, dtype=float))
        self.session_dopamine.append(float(dopamine))
        self.session_da_gate.append(np.asarray(gate, dtype=float))
        self.session_nmda_excess.append(np.asarray(nmda_excess, dtype=float))
        self.session_drive.append(np.asarray(drive, dtype=float))
        self.session_reference_rate.append(np.asarray(reference_rate, dtype=float))

    def snapshot(self, label: str, state) -> None:
        """The spine state at read-out ``label``.

        Parameters
        ----------
        label : str
            The read-out's label.
        state : ConditionState
            The condition's state (time, occupancy and efficacy are copied).
        """
        self.snapshots[label] = Snapshot(
            float(state.t_d),
            state.on.astype(np.int8),
            {k: v.copy() for k, v in state.sites.items()},
        )

    # ----------------------------------------------------------------- checkpoints
    def to_arrays(self) -> tuple[dict, dict]:
        """``(arrays, meta)`` for a checkpoint."""
        arrays = {
            "rec_t_d": np.asarray(self.t_d, dtype=float),
            "rec_formed": np.asarray(self.formed, dtype=np.int64),
            "rec_eliminated": np.asarray(self.eliminated, dtype=np.int64),
            "rec_session_dopamine": np.asarray(self.session_dopamine, dtype=float),
        }
        for k in self._TRACE:
            arrays[f"rec_{k}"] = np.asarray(getattr(self, k), dtype=float).reshape(-1, self.n_pop)
        labels = list(self.snapshots)
        for i, lab in enumerate(labels):
            arrays[f"snap{i}_on"] = self.snapshots[lab].on
            for k, v in self.snapshots[lab].sites.items():
                arrays[f"snap{i}_site_{k}"] = v
        meta = {"snapshots": [[lab, self.snapshots[lab].t_d] for lab in labels]}
        return arrays, meta

    @classmethod
    def from_arrays(cls, populations, site_pop, arrays: dict, meta: dict) -> Recorder:
        """The recorder a checkpoint holds (the inverse of :meth:`to_arrays`).

        Parameters
        ----------
        populations : sequence of str
            The circuit's populations.
        site_pop : ndarray of int (n_sites,)
            Population index of every site.
        arrays : dict
            The checkpoint's arrays (``rec_*``, ``snap<i>_on``, ``snap<i>_rho``).
        meta : dict
            The checkpoint's meta (``snapshots``: (label, t_d) in order).

        Returns
        -------
        Recorder

        Raises
        ------
        KeyError
            An array the checkpoint lacks.
        """
        rec = cls(
            tuple(populations),
            site_pop,
            t_d=[float(t) for t in arrays["rec_t_d"]],
            formed=[int(x) for x in arrays["rec_formed"]],
            eliminated=[int(x) for x in arrays["rec_eliminated"]],
            session_dopamine=[float(x) for x in arrays["rec_session_dopamine"]],
        )
        for k in cls._TRACE:
            setattr(rec, k, list(arrays[f"rec_{k}"]))
        for i, (lab, t_d) in enumerate(meta["snapshots"]):
            pre = f"snap{i}_site_"
            rec.snapshots[lab] = Snapshot(
                float(t_d),
                arrays[f"snap{i}_on"],
                {k[len(pre) :]: v for k, v in arrays.items() if k.startswith(pre)},
            )
        return rec

    # ----------------------------------------------------------------- results
    def _readout_turnover(self, labels: list) -> np.ndarray:
        """Spine turnover between consecutive read-outs, as two imaging sessions measure it
        (Zuo et al. 2005; Holtmaat et al. 2005): (spines gained + spines lost) / 2 between the
        previous read-out's snapshot and this one's, per spine present at the previous one, per
        day; spines born and lost in between are not seen.  NaN at the first read-out and for
        populations without spine sites.

        Returns
        -------
        ndarray (n_readouts, n_pop)
            Fraction of spines per day.
        """
        out = np.full((len(labels), self.n_pop), np.nan)
        prev = None
        for li, lab in enumerate(labels):
            snap = self.snapshots.get(lab)
            if snap is None:
                continue
            if prev is not None and snap.t_d > prev.t_d:
                a, b = prev.on.astype(bool), snap.on.astype(bool)
                gained = np.bincount(self.site_pop, weights=b & ~a, minlength=self.n_pop)
                lost = np.bincount(self.site_pop, weights=a & ~b, minlength=self.n_pop)
                present = np.bincount(self.site_pop, weights=a, minlength=self.n_pop)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[li] = (gained + lost) / 2 / present / (snap.t_d - prev.t_d)
            prev = snap
        return out

    def dataset(
        self,
        name: str,
        labels: list,
        readouts: dict,
        baseline_rate: dict,
        baseline_ltp_time: np.ndarray,
    ):
        """The condition's results (an ``xarray.Dataset`` with a ``condition`` dimension of
        length 1); variables as described in :mod:`cortexsim.results`.

        Parameters
        ----------
        name : str
            Condition name.
        labels : list of str
            Read-out labels of the timeline, in order.
        readouts : dict label -> {"rates": {pop: Hz}, "evoked": {pop: spikes/cell}}
            Network read-outs measured from the snapshots.
        baseline_rate : dict pop -> Hz
            Resting population rates with the initial spine state.
        baseline_ltp_time : (n_pop,) array
            Resting LTP-calcium time per population (the activity drive's reference).
        """
        import xarray as xr

        pops, npop = list(self.populations), self.n_pop
        has_sites = np.bincount(self.site_pop, minlength=npop) > 0
        dens = np.asarray(self.density, dtype=float).reshape(-1, self.n_pop).T
        wgt = np.asarray(self.weight, dtype=float).reshape(-1, self.n_pop).T
        dens[~has_sites] = np.nan
        wgt[~has_sites] = np.nan
        nan_ro = np.full((len(labels), npop), np.nan)
        ro_rate, ro_ev = nan_ro.copy(), nan_ro.copy()
        ro_t = np.full(len(labels), np.nan)
        for li, lab in enumerate(labels):
            if lab in readouts:
                ro_rate[li] = [readouts[lab]["rates"][p] for p in pops]
                ro_ev[li] = [readouts[lab]["evoked"][p] for p in pops]
            if lab in self.snapshots:
                ro_t[li] = self.snapshots[lab].t_d
        ro_turn = self._readout_turnover(labels)
        per_session = {
            k: np.asarray(getattr(self, k), dtype=float).reshape(-1, self.n_pop)
            for k in self._TRACE
            if k.startswith("session_")
        }
        for k in self._SITE_ONLY:
            per_session[k][:, ~has_sites] = np.nan
        ltp0 = np.where(has_sites, baseline_ltp_time, np.nan)
        P, T, R, S = "population", "time_d", "readout", "session"
        ds = xr.Dataset(
            {
                "spine_density": ((P, T), dens),
                "mean_weight": ((P, T), wgt),
                "formed": ((T,), np.asarray(self.formed, dtype=float)),
                "eliminated": ((T,), np.asarray(self.eliminated, dtype=float)),
                "rate_readout": ((R, P), ro_rate),
                "evoked_response": ((R, P), ro_ev),
                "turnover_readout": ((R, P), ro_turn),
                "readout_time_d": ((R,), ro_t),
                "session_rate": ((S, P), per_session["session_rate"]),
                "session_dw": ((S, P), per_session["session_dw"]),
                "session_ltp_time": ((S, P), per_session["session_ltp_time"]),
                "session_dopamine": ((S,), np.asarray(self.session_dopamine, dtype=float)),
                "session_da_gate": ((S, P), per_session["session_da_gate"]),
                "session_nmda_excess": ((S, P), per_session["session_nmda_excess"]),
                "session_drive": ((S, P), per_session["session_drive"]),
                "session_reference_rate": ((S, P), per_session["session_reference_rate"]),
                "baseline_rate": ((P,), np.array([baseline_rate[p] for p in pops])),
                "baseline_ltp_time": ((P,), ltp0),
                "n_sites": ((P,), np.bincount(self.site_pop, minlength=npop).astype(float)),
            },
            coords={
                P: pops,
                T: np.round(np.asarray(self.t_d, dtype=float), 6),
                R: list(labels),
                S: np.arange(1, len(self.session_rate) + 1),
            },
        )
        # time points closer than the rounding (a phase of < 1e-6 d): the later one stands
        return ds.drop_duplicates(T, keep="last").expand_dims(condition=[name])
