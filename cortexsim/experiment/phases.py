"""One condition's timeline: a handler per phase kind over a :class:`ConditionState`.

``baseline`` / ``stress`` / ``rest`` are slow phases (:meth:`ConditionRun.slow_phase`); a
``stimulation`` phase runs the condition's sessions as fast phases with slow gaps between them
(:meth:`ConditionRun.stimulation`); a phase with a ``readout`` label ends with a spine snapshot
(:meth:`ConditionRun.readout`).  The state is checkpointed after every phase and every session;
a run resumed from a checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..plasticity.spines import (  # noqa: F401  (the GB helpers' old home)
    ltp_time_per_cell,
    mean_per_cell,
    nmda_calcium_per_cell,
    reset_new_spines,
    rho_after_session,
)
from .progress import Progress
from .recorder import Recorder, by_population, mean_efficacy
from .state import ConditionState


# --------------------------------------------------------------------------- session physics
def _simulated_session_s(proto, sess_len: float, sample_s) -> float:
    """Length of a session's fast phase: the whole session, or its start -- whole train periods
    (as many as fit in ``sample_s``, at least one), or ``sample_s`` of a train that is longer
    than that (continuous stimulation)."""
    if proto is None or sample_s == "all" or sample_s >= sess_len:
        return sess_len
    per = proto.train_period_s
    if per > sample_s and proto.train_duration_s >= sample_s:
        return float(sample_s)
    return min(sess_len, max(1, math.floor(sample_s / per + 1e-9)) * per)


def _carry_of(out: dict) -> dict:
    """What a simulated session's outcome leaves for the unsimulated sessions after it
    (``settings.session_stride``): its activity signals, rates, references and per-synapse
    statistics, as arrays (checkpointed with the state)."""
    carry = {
        "a": np.asarray(out["a"]),
        "nm": np.asarray(out["nm"]),
        "rates": np.asarray(out["rates"], dtype=float),
    }
    if "a0" in out:
        carry.update(
            a0=np.asarray(out["a0"]),
            nmda0=np.asarray(out["nmda0"]),
            ref_rates=np.asarray(out["ref_rates"], dtype=float),
        )
    carry.update({f"sig_{k}": np.asarray(v) for k, v in out.get("signals", {}).items()})
    return carry


def stimulation_days(proto) -> float:
    """Span of the stimulation phase: its whole days (1 day for one accelerated day).

    Parameters
    ----------
    proto : Protocol
        The protocol.

    Returns
    -------
    float
        Days.
    """
    return float(proto.days) if proto is not None else 1.0


def phase_days(ph: dict, proto) -> float:
    """Length of a timeline phase (days): its ``days``, or for a stimulation phase the span of
    its protocol (:func:`stimulation_days`).

    Parameters
    ----------
    ph : dict
        A validated timeline phase.
    proto : Protocol or None
        The condition's protocol.

    Returns
    -------
    float
    """
    return stimulation_days(proto) if ph["kind"] == "stimulation" else ph["days"]


# --------------------------------------------------------------------------- one condition
class ConditionRun:
    """The timeline of one condition on its network.

    Parameters
    ----------
    ctx : cortexsim.experiment.context.ConditionContext
        The condition: name, spec, model trees, network key, drawn circuit, site maps,
        initial spines, thresholds, timeline, settings, checkpoint store and key.
    shared : cortexsim.experiment.shared.SharedStats
        Network statistics shared with the other conditions (and its compiled circuits,
        ``shared.builds``).
    a0 : ndarray (n_cells,)
        Resting LTP activity signal per cell with the initial spine state (pass 1; the spine
        sites' rule's :meth:`~cortexsim.plasticity.spines.SpineContract.activity_signals`).
    nmda0 : ndarray (n_cells,), optional
        Resting NMDA activity signal per cell with the initial spine state (pass 1); None:
        zeros (no NMDA drive).
    rest_rates : dict population -> Hz
        Resting population rates with the initial spine state (pass 1, the same run as ``a0``).
        These three are the references of the sessions' activity drive and dopamine release
        when no read-out precedes the sessions; otherwise the same measured with the spine
        state of the latest read-out before them (:meth:`_set_session_references`), or, with
        ``settings.session_reference = "each_session"``, each session's own run without its
        stimulation (:meth:`_set_paired_references`).
    """

    def __init__(self, ctx, shared, a0, nmda0=None, *, rest_rates: dict):
        from ..protocols import get_protocol

        self.ctx, self.shared = ctx, shared
        self.cname, self.cond, self.trees = ctx.cname, ctx.cond, ctx.trees
        self.seed = shared.seed
        # the named streams of the seed (cortexsim.rng.SeedSchedule): the structural kernel's
        # (shared by all conditions) and the sessions' (this condition's own, by name)
        self.streams = shared.streams
        self.kernel_seed = self.streams.kernel_seed("spine_kernel")
        st = self.settings = ctx.settings
        self.structural = self.trees["structural"].values()
        self.proto = (
            get_protocol(self.cond["protocol"]) if self.cond["protocol"] != "none" else None
        )
        self.key = ctx.key
        self.sess_len = (self.proto.duration_s if self.proto is not None else 0.0) + st[
            "session_tail_s"
        ]
        self.sim_len = _simulated_session_s(self.proto, self.sess_len, st["session_sample_s"])
        # the drawn circuit (cells, sites, thresholds, initial efficacies) is that of every
        # build of this network configuration; the session build is made when a session runs
        self.layout = ctx.drawn
        #: the spine sites' rule: the fast-to-slow contract (plasticity.spines.SpineContract)
        self.rule = ctx.rule
        self.thr_override = ctx.thresholds
        self.site_post, self.site_pop = ctx.site_post, ctx.site_pop
        self.populations = ctx.populations
        self.a0 = a0
        self.nmda0 = np.zeros_like(a0) if nmda0 is None else nmda0
        # the dopamine release's reference rates (reset before the sessions:
        # _set_session_references)
        self.release_ref = np.array([rest_rates[p] for p in self.populations], dtype=float)
        self.stress_schedule = self._stress_schedule()
        self.light = self.cond.get("modality", "tms") == "light"
        self.stimulus = self._stimulus()
        # dopamine from the pulses alone is the same every session (computed once here); from
        # the evoked activity it is computed after each session's run (ConditionRun.session)
        self.da_from_activity = self.structural["dopamine"]["spike_weight"] != 0
        self.da = self._session_dopamine()
        self.receptors = self._draw_receptors()
        self.gate = self._dopamine_gate(self.da)
        self.post_overrides = {}
        self.handlers = {
            "baseline": self.slow_phase,
            "stress": self.slow_phase,
            "rest": self.slow_phase,
            "stimulation": self.stimulation,
        }

    def _stress_schedule(self):
        """The condition's stress phase in absolute days (None without stress)."""
        from ..plasticity.stress import StressSchedule

        t, sched = 0.0, None
        for ph in self.ctx.timeline:
            if ph["kind"] == "stress" and self.cond["stress"]:
                sched = StressSchedule(
                    days=round(ph["days"]), hours_per_day=ph["hours_per_day"], onset_day=t
                )
            t += phase_days(ph, self.proto)
        return sched

    def _stimulus(self):
        if self.proto is None:
            return None
        from ..circuit.network import Stimulus
        from ..coupling import cell_field_vpm

        # the session build's pulse grid: the coarsest (<= 20 ms) on which every pulse lies, so
        # that any protocol that validates can be simulated (20 Hz rTMS: 10 ms; 30 Hz bursts:
        # pulses rounded to the nearest time step, grid dt)
        from ..circuit.network import pulse_slot_s

        self.slot_s = pulse_slot_s(self.proto.pulse_times(), self.layout.dt_s)
        if self.light:  # light pulses at the protocol's pulse times, opto.light.irradiance
            irr = self.trees["opto"].value("light.irradiance")
            return Stimulus.light(self.proto, irr, offset_s=self.slot_s).until(
                self.sim_len, self.layout.dt_s
            )
        field = cell_field_vpm(self._pct_rmt(), self.trees["coupling"])
        return Stimulus.from_protocol(self.proto, field, offset_s=self.slot_s).until(
            self.sim_len, self.layout.dt_s
        )

    def _pct_rmt(self) -> float:
        """The sessions' TMS intensity (% RMT): :func:`cortexsim.protocols.session_intensity`."""
        from ..protocols import session_intensity

        return session_intensity(self.proto, self.cond["intensity_pct_rmt"])[0]

    def _session_dopamine(self, rates=None) -> float:
        """Dopamine of one of the condition's sessions (:func:`structural.session_dopamine`):
        from its pulses (TMS: relative intensities x %RMT / 100; light: x
        ``structural.dopamine.light_pulse_equivalent``) and, given the session's population
        ``rates`` (Hz, in population order), from the excess spikes of the release populations
        over their rest rates.  0 without a protocol."""
        from ..plasticity import structural as SP

        tree = self.trees["structural"]
        if self.proto is None:
            return 0.0
        scale = (
            self.structural["dopamine"]["light_pulse_equivalent"]
            if self.light
            else self._pct_rmt() / 100.0
        )
        spikes = (
            0.0
            if rates is None
            else SP.excess_release_spikes(
                rates, self.release_ref, self.sess_len, self.populations, tree
            )
        )
        return SP.session_dopamine(self.proto.intensities(), scale, tree, spikes)

    def _draw_receptors(self):
        """The cells' D1 / D2 receptors (:func:`structural.draw_receptors`), from the seed's
        stream ``"receptors"``: the same cells in every condition.  None when the dopamine
        gains are 0 (no gate, no receptor table read)."""
        from ..plasticity import structural as SP

        tree = self.trees["structural"]
        if not SP.dopamine_gains_on(tree):
            return None
        return SP.draw_receptors(
            self.populations, self.layout.pop_index, self.streams.generator("receptors"), tree
        )

    def _dopamine_gate(self, da: float):
        """Dopamine gate of the session drive per cell for dopamine ``da`` (1.0 without the
        third factor; :func:`structural.dopamine_gate` with the cells' receptors)."""
        from ..plasticity import structural as SP

        return SP.dopamine_gate(da, self.receptors, self.trees["structural"])

    # ----------------------------------------------------------------- state and checkpoints
    def initial_state(self) -> ConditionState:
        """The state at the start of the timeline: the initial spines and the rule's initial
        per-site state (:meth:`~cortexsim.plasticity.spines.SpineContract.initial_sites`), no
        activity drive."""
        spines = self.ctx.initial_spines.copy()
        sites = self.rule.initial_sites(self.layout.state[self.layout.site_group])
        return ConditionState(
            spines,
            sites=sites,
            prev_on=(spines.state > 0).astype(float),
            drive=np.zeros(self.layout.N),
        )

    def save(self, state: ConditionState, rec: Recorder) -> None:
        """Checkpoint ``state`` and ``rec`` (nothing without a checkpoint store).

        Parameters
        ----------
        state : ConditionState
            The condition's state.
        rec : Recorder
            Its records.
        """
        store = self.ctx.checkpoints
        if store is None:
            return
        arrays, scalars = state.to_arrays()
        rec_arrays, rec_meta = rec.to_arrays()
        store.save(
            self.cname,
            self.ctx.checkpoint_key,
            {**arrays, **rec_arrays},
            {"condition": self.cname, "state": scalars, "recorder": rec_meta},
        )

    def load(self):
        """``(state, recorder)`` from this condition's checkpoint, or None."""
        store = self.ctx.checkpoints
        got = store.load(self.cname, self.ctx.checkpoint_key) if store else None
        if got is None:
            return None
        arrays, meta = got
        if arrays["prev_on"].shape != (self.layout.n_sites,):
            return None
        return (
            ConditionState.from_arrays(arrays, meta["state"]),
            Recorder.from_arrays(self.populations, self.site_pop, arrays, meta["recorder"]),
        )

    # ----------------------------------------------------------------- shared history
    def _phase_key(self, k: int) -> str:
        from .phase_states import phase_key

        return phase_key(self.ctx, k, self.shared.version, self.seed, self.stress_schedule)

    def _load_phase_state(self):
        """``(state, recorder)`` after the latest phase before the sessions whose state another
        condition, trial point or process stored under the same inputs
        (:mod:`cortexsim.experiment.phase_states`), or None."""
        from .phase_states import prefix_length

        store = getattr(self.shared, "phase_states", None)
        if store is None:
            return None
        for k in reversed(range(prefix_length(self.ctx.timeline))):
            got = store.load(self._phase_key(k))
            if got is None:
                continue
            arrays, meta = got
            if arrays["prev_on"].shape != (self.layout.n_sites,) or meta["state"]["phase"] != k + 1:
                continue
            return (
                ConditionState.from_arrays(arrays, meta["state"]),
                Recorder.from_arrays(self.populations, self.site_pop, arrays, meta["recorder"]),
            )
        return None

    def _save_phase_state(self, k: int, state: ConditionState, rec: Recorder) -> None:
        """Store the state after phase ``k`` if it lies before the sessions."""
        from .phase_states import prefix_length

        store = getattr(self.shared, "phase_states", None)
        if store is None or k >= prefix_length(self.ctx.timeline):
            return
        key = self._phase_key(k)
        if store.has(key):
            return
        arrays, scalars = state.to_arrays()
        rec_arrays, rec_meta = rec.to_arrays()
        store.save(key, {**arrays, **rec_arrays}, {"state": scalars, "recorder": rec_meta})

    # ----------------------------------------------------------------- the timeline
    def run(self) -> Recorder:
        """Run (or resume) the whole timeline; returns the condition's recorder."""
        timeline = self.ctx.timeline
        loaded = self.load()
        if loaded is None:
            loaded = self._load_phase_state()
        if loaded is not None:
            state, rec = loaded
        else:
            state, rec = self.initial_state(), Recorder(self.populations, self.site_pop)
            rec.sample(state)
        from .phase_states import prefix_length

        #: whether the state is still free of the drive's parameters (no session with a drive
        #: yet): its sessions' outcomes are worth storing for other sweep points
        self._sessions_shareable = state.session == 0 and state.phase <= prefix_length(timeline)
        self.bar = Progress(len(timeline), self.ctx.progress, self.cname)
        self.bar.update(min(state.phase, len(timeline)))
        for k in range(state.phase, len(timeline)):
            ph = timeline[k]
            self.handlers[ph["kind"]](ph, state, rec)
            if ph["readout"]:
                self.readout(ph["readout"], state, rec)
            state.phase, state.session = k + 1, 0
            self.save(state, rec)
            self._save_phase_state(k, state, rec)
            self.bar.update(1, ph["label"])
        self.bar.close()
        return rec

    # ----------------------------------------------------------------- handlers
    def slow_phase(self, ph: dict, state: ConditionState, rec: Recorder) -> None:
        """``baseline`` / ``stress`` / ``rest``: the structural core for ``days``, traced.

        Parameters
        ----------
        ph : dict
            The phase (``days``).
        state : ConditionState
            The condition's state (changed in place).
        rec : Recorder
            The condition's records (appended to).
        """
        self.advance(state, rec, ph["days"] * 24.0, record=True)

    def stimulation(self, ph: dict, state: ConditionState, rec: Recorder) -> None:
        """The protocol's sessions (fast phases) with slow gaps, to the end of its last day; a
        condition without stimulation spends that time as a slow phase.

        Parameters
        ----------
        ph : dict
            The phase.
        state : ConditionState
            The condition's state (changed in place).
        rec : Recorder
            The condition's records (appended to).
        """
        proto = self.proto
        if proto is None:
            self.advance(state, rec, stimulation_days(None) * 24.0, record=False)
            rec.sample(state)
            return
        starts_h = proto.session_starts_s() / 3600.0
        self.post_overrides = self._post_overrides(rec)
        if self.settings["session_reference"] == "before_sessions":
            self._set_session_references(rec)
        for s_i in range(state.session, proto.n_sessions):
            if s_i > 0:
                gap_h = starts_h[s_i] - starts_h[s_i - 1] - self.sess_len / 3600.0
                if gap_h > 0:
                    self.advance(state, rec, gap_h, record=False)
            self.session(s_i, state, rec)
            state.session = s_i + 1
            self.save(state, rec)
            self.bar.update(0, f"session {s_i + 1}/{proto.n_sessions}")
        state.carry = {}
        rest_h = stimulation_days(proto) * 24.0 - (starts_h[-1] + self.sess_len / 3600.0)
        if rest_h > 1e-9:
            self.advance(state, rec, rest_h, record=False)
        rec.sample(state)

    def _set_session_references(self, rec: Recorder) -> None:
        """The references the sessions' activity drive and dopamine are counted against: the
        network at rest with the spine state at the most recent read-out before the sessions
        (after chronic stress, the stressed network) and the sessions' run-time values of the
        rule's postsynaptic variables (sliding thresholds), measured as pass 1 measures the
        initial state (:meth:`cortexsim.experiment.shared.SharedStats.baseline_stats`, same noise seed;
        from a checkpointed snapshot, so a resumed run gets the same values).  A session whose
        activity equals what the unstimulated network does then (sham) drives nothing, as the
        same activity in unsimulated time drives nothing.  Without a read-out before the
        sessions, the pass-1 references (initial spine state) stay."""
        if not rec.snapshots:
            return
        from .shared import snapshot_spines

        snap = rec.snapshots[list(rec.snapshots)[-1]]
        circuit = self.shared.builds.short(self.key, self.trees)
        # conditions with the same history up to the sessions (sham, aiTBS, silenced after the
        # same stress) share it: measured once, also across worker processes
        thr = self.thr_override or {}
        ident = [
            "session_reference",
            self.shared.version,
            self.key,
            circuit.config_hash(),
            snap.on,
            *[snap.sites[k] for k in sorted(snap.sites)],
            self.seed,
            *[x for k in sorted(thr) for x in (k, np.asarray(thr[k], dtype=float))],
            *[
                x
                for k in sorted(self.post_overrides)
                for x in (k, np.asarray(self.post_overrides[k], dtype=float))
            ],
        ]
        self.a0, rates, self.nmda0 = self.shared.rest_stats(
            ident,
            circuit,
            self.trees,
            self.thr_override,
            snapshot_spines(self.rule, snap),
            self.post_overrides,
        )
        self.release_ref = np.array([rates[p] for p in self.populations], dtype=float)

    def _session_is_rest(self) -> bool:
        """Whether a session's run is the network at rest: no pulse with a field or light
        (a sham protocol) and nothing silenced."""
        st = self.stimulus
        return not self.cond["silence"] and (
            st is None
            or (
                not np.any(st.field_vpm > 0)
                and (st.irradiance_mw_mm2 is None or not np.any(st.irradiance_mw_mm2 > 0))
            )
        )

    def _set_paired_references(self, ref, circuit) -> None:
        """``settings.session_reference = "each_session"``: the references of this session's
        activity drive and dopamine release from ``ref``, the session's run without its
        stimulation (pulses, light, silencing) -- same build, spine state, noise seed and
        thresholds --, i.e. what the network does in that time without the session.  A sham
        session is its own reference, so it drives nothing."""
        self.a0, self.nmda0 = self.rule.activity_signals(ref, self.site_post, circuit.N)
        self.release_ref = np.array([ref.mean_rate(p) for p in self.populations], dtype=float)

    def _post_overrides(self, rec: Recorder) -> dict:
        """Run-time values of the spine-site rule's postsynaptic variables for the sessions
        (the sliding threshold's scale, ``metaplasticity`` in ``models/synaptic.toml``): from
        each cell's rate at the most recent read-out before the sessions (its slow activity
        average) and at the first read-out (its reference), measured alike
        (:meth:`cortexsim.experiment.shared.SharedStats.cell_rates`); both from checkpointed
        snapshots, so a resumed run gets the same values.  {} without such variables (the
        default model) or without a read-out."""
        rule = self.rule
        if rule is None or not rule.post_variables() or not rec.snapshots:
            return {}
        labels = list(rec.snapshots)
        ref = self.shared.cell_rates(
            self.key, self.trees, rec.snapshots[labels[0]], self.thr_override
        )
        now = (
            ref
            if len(labels) == 1
            else self.shared.cell_rates(
                self.key, self.trees, rec.snapshots[labels[-1]], self.thr_override
            )
        )
        return {f"cells.{n}": v for n, v in rule.post_values(now, ref).items()}

    def readout(self, label: str, state: ConditionState, rec: Recorder) -> None:
        """Snapshot of the spine state (new spines' synapses at their start) for the network
        read-out ``label``.

        Parameters
        ----------
        label : str
            The read-out's label.
        Parameters
        ----------
        state : ConditionState
            The condition's state (changed in place).
        rec : Recorder
            The condition's records (appended to).
        """
        self._start_new_spines(state)
        rec.snapshot(label, state)

    def _start_new_spines(self, state: ConditionState) -> np.ndarray:
        """The synapses of spines formed since the latest fast phase or read-out start as the
        rule says (:meth:`~cortexsim.plasticity.spines.SpineContract.new_spine_sites`);
        returns the occupancy now, which becomes ``state.prev_on``."""
        on = state.on
        state.sites = self.rule.new_spine_sites(state.sites, (on > 0) & (state.prev_on == 0))
        state.prev_on = on
        return on

    # ----------------------------------------------------------------- steps
    def advance(self, state: ConditionState, rec: Recorder, hours: float, record: bool):
        """The structural core for ``hours`` in chunks of at most the homeostatic update
        interval and the trace interval (a trace point after each chunk if ``record``).

        Parameters
        ----------
        state : ConditionState
            The condition's state (changed in place).
        rec : Recorder
            The condition's records (appended to).
        hours : float
            Time to advance (h).
        record : bool
            Add a trace point after each chunk.
        """
        from ..plasticity import structural as SP
        from ..plasticity.stress import stress_per_step

        st, P, tree = self.settings, self.structural, self.trees["structural"]
        act, ui = P["activity"], P["homeostasis"]["update_interval"]
        remaining = hours
        while remaining > 1e-9:
            chunk = min(remaining, ui, st["record_every_h"])
            n = max(1, math.ceil(chunk / st["slow_dt_h"] - 1e-9))
            dt = chunk / n
            S = (
                stress_per_step(self.stress_schedule, state.t_d, dt, n, self.trees["stress"])
                if self.stress_schedule is not None
                else np.zeros(n)
            )
            hd = (
                SP.homeostatic_drive(state.spines, self.site_post, None, tree)
                if P["homeostasis"]["gain"] > 0
                else 0.0
            )
            # activity drive decays exponentially; use its mean over the chunk
            decay = math.exp(-chunk / act["tau_h"])
            mean_fac = act["tau_h"] / chunk * (1 - decay)
            cell_drive = np.clip(state.drive * mean_fac, -act["drive_max"], act["drive_max"])
            state.spines, cnt = SP.advance(
                state.spines,
                self.rule.plasticity_signal(state.sites),
                hd + cell_drive[self.site_post],
                S,
                dt,
                n,
                self.kernel_seed,
                state.k_step,
                tree,
                st["backend"],
            )
            state.formed += cnt["totals"]["formed"]
            state.eliminated += cnt["totals"]["eliminated"]
            state.k_step += n
            state.drive = state.drive * decay
            remaining -= chunk
            state.t_d += chunk / 24.0
            if record:
                rec.sample(state)

    def _carried_outcome(self, on: np.ndarray, sites: dict, carry: dict) -> dict:
        """``settings.session_stride`` > 1 (an approximation, off by default): the outcome of a
        session that is not simulated: the activity signals, rates and references of the
        latest simulated session (``carry``, :func:`_carry_of`), and the rule's per-site state
        carried over the whole session with that session's statistics (Graupner-Brunel: its
        mean field with the fractions of time above the thresholds), as the unsimulated rest
        of every session is."""
        sig = {k[4:]: v for k, v in carry.items() if k.startswith("sig_")}
        carried = self.rule.carry_over(dict(sites), sig, self.sess_len)
        out = {
            "sites": {
                k: np.where(on > 0, np.asarray(carried[k], dtype=float), v)
                for k, v in sites.items()
            },
            "a": carry["a"],
            "nm": carry["nm"],
            "rates": [float(x) for x in carry["rates"]],
        }
        if "a0" in carry:
            out.update(a0=carry["a0"], nmda0=carry["nmda0"], ref_rates=carry["ref_rates"])
        return out

    def _session_outcome(self, s_i: int, on: np.ndarray, sites: dict) -> dict:
        """The network outcome of session ``s_i`` with the spine sites ``on`` / ``sites``: the
        rule's per-site state after it (``sites``), its activity signals per cell (``a``,
        ``nm``) and population rates (``rates``), and with ``settings.session_reference =
        "each_session"`` those of its reference run (``a0``, ``nmda0``, ``ref_rates``).

        In a sweep (:func:`cortexsim.experiment.phase_states.sweep_dir`) the outcome is stored
        under the content of everything its runs read
        (:func:`cortexsim.experiment.phase_states.session_key`) while the condition's state
        does not depend on the drive's parameters yet (a sham condition's sessions, every
        condition's first), and later points with the same key load it instead of running
        the network: the same numbers, bit for bit."""
        from .phase_states import session_key

        paired = self.settings["session_reference"] == "each_session"
        thr = self.thr_override or {}
        overrides = {**thr, **self.post_overrides}
        run_seed = self.streams.noise_seed("session", condition=self.cname, session=s_i)
        store = getattr(self.shared, "sessions", None)
        key = None
        if store is not None:
            st = self.stimulus
            inputs = {
                "run_seed": int(run_seed),
                "sim_len": float(self.sim_len),
                "sess_len": float(self.sess_len),
                "slot_s": float(getattr(self, "slot_s", 0.0)),
                "paired": paired,
                "on": np.asarray(on, dtype=float),
                **{f"site_{k}": np.asarray(v) for k, v in sites.items()},
                **{f"override_{k}": np.asarray(v, dtype=float) for k, v in overrides.items()},
            }
            if st is not None:
                inputs.update(
                    pulse_t=np.asarray(st.pulse_times_s, dtype=float),
                    field=np.asarray(st.field_vpm, dtype=float),
                    irradiance=None
                    if st.irradiance_mw_mm2 is None
                    else np.asarray(st.irradiance_mw_mm2, dtype=float),
                )
            key = session_key(self.ctx, self.shared.version, self.seed, inputs)
            got = store.load(key)
            if got is not None:
                arrays, _ = got
                out = {
                    "sites": {
                        k[len("site_") :]: v for k, v in arrays.items() if k.startswith("site_")
                    },
                    "a": arrays["a"],
                    "nm": arrays["nm"],
                    "rates": [float(x) for x in arrays["rates"]],
                }
                if paired:
                    out.update(
                        a0=arrays["a0"], nmda0=arrays["nmda0"], ref_rates=arrays["ref_rates"]
                    )
                sig = {k[4:]: v for k, v in arrays.items() if k.startswith("sig_")}
                if sig:
                    out["signals"] = sig
                return out
        c = self.shared.builds.get(
            self.key,
            self.trees,
            self.sim_len,  # the session build
            self.slot_s,
            light=self.light,
        )
        run = functools.partial(
            c.run,
            spines=self.rule.run_spines(on, sites),
            run_seed=run_seed,
            overrides=overrides or None,
            results_name=f"res_{os.getpid()}",
        )
        res = run(
            self.stimulus,
            silence=self.cond["silence"] or None,
            light_populations=self.cond.get("light_populations") or None,
        )
        out = {}
        if paired:
            # a sham session is its own reference
            self._set_paired_references(res if self._session_is_rest() else run(None), c)
            out.update(a0=self.a0, nmda0=self.nmda0, ref_rates=self.release_ref)
        if int(self.settings.get("session_stride", 1)) > 1:
            # what the following unsimulated sessions carry the per-site state with
            out["signals"] = self.rule.structural_signals(res.syn, res.duration_s)
        out["sites"] = self.rule.after_session(res, sites, on, self.sess_len)
        # the rule's activity signals (GB: LTP-calcium time, NMDA calcium) per cell
        out["a"], out["nm"] = self.rule.activity_signals(res, self.site_post, c.N)
        out["rates"] = [res.mean_rate(p) for p in self.populations]
        if key is not None and self._sessions_shareable:
            arrays = {f"site_{k}": np.asarray(v) for k, v in out["sites"].items()}
            arrays.update(
                a=np.asarray(out["a"]),
                nm=np.asarray(out["nm"]),
                rates=np.asarray(out["rates"], dtype=float),
            )
            if paired:
                arrays.update(
                    a0=np.asarray(out["a0"]),
                    nmda0=np.asarray(out["nmda0"]),
                    ref_rates=out["ref_rates"],
                )
            arrays.update({f"sig_{k}": np.asarray(v) for k, v in out.get("signals", {}).items()})
            store.save(key, arrays, {"condition": self.cname, "session": s_i})
        return out

    def session(self, s_i: int, state: ConditionState, rec: Recorder) -> None:
        """Stimulation session ``s_i`` on the network: the rule's per-site state (GB
        efficacies) and the activity drive change; the session's rates, efficacy change, LTP
        signal, dopamine, dopamine gate, relative NMDA excess and drive increment are recorded.

        Parameters
        ----------
        s_i : int
            Session index (from 0).
        Parameters
        ----------
        state : ConditionState
            The condition's state (changed in place).
        rec : Recorder
            The condition's records (appended to).
        """
        from ..plasticity import structural as SP

        on = self._start_new_spines(state)
        w_before = mean_efficacy(
            self.rule.efficacy(state.sites), on, self.site_pop, len(self.populations)
        )
        stride = int(self.settings.get("session_stride", 1))
        if stride > 1 and s_i % stride and state.carry:
            out = self._carried_outcome(on, state.sites, state.carry)
        else:
            out = self._session_outcome(s_i, on, state.sites)
            if stride > 1:
                state.carry = _carry_of(out)
        if self.settings["session_reference"] == "each_session":
            self.a0, self.nmda0 = out["a0"], out["nmda0"]
            self.release_ref = out["ref_rates"]
        sites, a, nm, rates = out["sites"], out["a"], out["nm"], out["rates"]
        npop = len(self.populations)
        # the session's dopamine: from its pulses (the same every session), or also from the
        # release populations' evoked spikes (after this run)
        da, gate = self.da, self.gate
        if self.da_from_activity:
            da = self._session_dopamine(rates)
            gate = self._dopamine_gate(da)
        # LTP-calcium excess and NMDA-calcium excess over rest, dopamine-gated, integrated over
        # the session into the cell's activity drive (structural.session_drive)
        d_drive = SP.session_drive(
            a, self.a0, nm, self.nmda0, self.sess_len, gate, self.trees["structural"]
        )
        state.drive = state.drive + d_drive
        state.sites = sites
        if np.any(d_drive != 0):
            # the state now depends on the drive's parameters (not in the session key)
            self._sessions_shareable = False
        pop = self.layout.pop_index
        rec.session(
            rates,
            mean_efficacy(self.rule.efficacy(sites), on, self.site_pop, npop) - w_before,
            by_population(a, pop, npop),
            dopamine=da,
            gate=by_population(np.broadcast_to(gate, (self.layout.N,)), pop, npop),
            nmda_excess=by_population(
                SP.relative_excess(nm, self.nmda0), pop, npop, where=self.nmda0 > 0
            ),
            drive=by_population(d_drive, pop, npop),
            reference_rate=self.release_ref,
        )
        state.t_d += self.sess_len / 86400.0
