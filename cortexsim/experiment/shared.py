"""What the conditions of a run share: the compiled circuits and the network statistics.

:class:`Builds` keeps one compiled circuit at a time (Brian2 standalone keeps one device per
process) and the drawn circuits (:class:`cortexsim.circuit.drawn.DrawnCircuit`) of the network
configurations.  :class:`SharedStats` measures what several conditions (and worker processes,
and a resumed run) share, each measured once: the network at rest (pass 1 and the sessions'
references), the cells' rates at a read-out, the read-out runs.  The fast-to-slow quantities
come from the spine sites' rule (:class:`cortexsim.plasticity.spines.SpineContract`).
"""

from __future__ import annotations

import os

import numpy as np

from ..populations import excitatory
from .store import ReadoutStore, digest

__all__ = ["Builds", "SharedStats", "snapshot_spines"]


def snapshot_spines(rule, snap) -> dict:
    """Run-time spine values of a read-out snapshot (presence and the rule's per-site state).

    Parameters
    ----------
    rule : PlasticityRule
        The spine sites' rule.
    snap : cortexsim.experiment.recorder.Snapshot
        The snapshot.

    Returns
    -------
    dict
    """
    return rule.run_spines(snap.on.astype(float), snap.sites)


#: the latest compiled circuit of this process, by (scale, seed, build key): later runs in the
#: same process (sweep points, a worker's next condition) re-run it instead of building again
_PROCESS_BUILD: dict = {}


def _reuse_builds() -> bool:
    from .phase_states import enabled

    return enabled()


def _still_current(circuit) -> bool:
    """Whether ``circuit`` can still run: a runtime build, or the latest standalone build of
    this process (a later standalone build replaces Brian2's device arrays)."""
    if getattr(circuit, "target", None) != "cpp_standalone":
        return False
    try:
        return "G" in circuit.__dict__ and circuit._device.arrays is circuit._device_arrays
    except AttributeError:
        return False


class Builds:
    """The compiled circuits of a run, one at a time, and the drawn circuits.

    Parameters
    ----------
    settings : dict
        The run's settings (``scale``, ``baseline_fast_s``).
    seed : int
        Experiment seed.
    """

    def __init__(self, settings: dict, seed: int):
        self.settings = settings
        self.seed = seed
        self._circuit = None
        self._circuit_key = None
        self._drawn = {}

    def get(
        self, key: str, trees: dict, duration_s: float, slot_s: float = 0.02, light: bool = False
    ):
        """One compiled circuit at a time; a build is identified by the network configuration
        ``key``, its phase length and its pulse grid ``slot_s`` (chosen from the protocol:
        :func:`cortexsim.circuit.network.pulse_slot_s`), and for a light-driven build
        (``light``) by the opto model's values.

        Parameters
        ----------
        key : str
            Network-configuration key.
        trees : dict
            Model trees of the condition.
        duration_s, slot_s : float
            Phase length and pulse grid (s).
        light : bool
            A light-driven build.

        Returns
        -------
        cortexsim.circuit.network.Circuit
        """
        bkey = (key, round(float(duration_s), 6), round(float(slot_s), 9)) + (
            (digest(trees["opto"].values()),) if light else ()
        )
        if self._circuit_key == bkey:
            return self._circuit
        from ..circuit.network import Circuit

        pkey = (str(self.settings["scale"]), self.seed, bkey)
        last = _PROCESS_BUILD.get(pkey)
        if last is not None and _still_current(last):
            # the latest build of this process, made by an earlier run (sweep point, condition
            # of a worker): the same network, re-run with new run-time values as within a run
            self._circuit, self._circuit_key = last, bkey
            self._drawn[key] = last.drawn
            return last
        self._circuit = Circuit(
            self.settings["scale"],
            duration_s=duration_s,
            seed=self.seed,
            slot_s=slot_s,
            params=trees["circuit"],
            cell_params=trees["cells"],
            syn_params=trees["synaptic"],
            coupling_params=trees["coupling"],
            light=light,
            opto_params=trees["opto"] if light else None,
        )
        self._circuit_key = bkey
        self._drawn[key] = self._circuit.drawn
        _PROCESS_BUILD.clear()
        if _reuse_builds():
            _PROCESS_BUILD[pkey] = self._circuit
        return self._circuit

    def short(self, key: str, trees: dict):
        """The short build (``settings.baseline_fast_s``) of network configuration ``key``.

        Parameters
        ----------
        key : str
            Network-configuration key.
        trees : dict
            Model trees of the condition.

        Returns
        -------
        cortexsim.circuit.network.Circuit
        """
        return self.get(key, trees, self.settings["baseline_fast_s"])

    def drawn(self, key: str, trees: dict):
        """The drawn circuit of network configuration ``key`` (that of a build made before,
        else drawn now, without a build: every build of a configuration has the same).

        Parameters
        ----------
        key : str
            Network-configuration key.
        trees : dict
            Model trees of the condition.

        Returns
        -------
        cortexsim.circuit.drawn.DrawnCircuit
        """
        if key not in self._drawn:
            from ..circuit.drawn import draw_circuit

            self._drawn[key] = draw_circuit(
                self.settings["scale"],
                seed=self.seed,
                params=trees["circuit"],
                cell_params=trees["cells"],
                syn_params=trees["synaptic"],
                coupling_params=trees["coupling"],
            )
        return self._drawn[key]


class SharedStats:
    """Network statistics shared by the conditions of a run (see the module docstring).

    Parameters
    ----------
    settings : dict
        The run's settings.
    streams : cortexsim.rng.SeedSchedule
        The run's named random streams.
    version : str
        Code version (part of every identity of a shared measurement).
    builds : Builds
        The run's circuits.
    checkpoint_dir : Path or None
        Folder of the shared stores (``references``, ``readouts``); None: kept in memory.
    """

    def __init__(self, settings: dict, streams, version: str, builds: Builds, checkpoint_dir=None):
        self.settings = settings
        self.streams = streams
        self.seed = streams.seed
        self.version = version
        self.builds = builds
        from .phase_states import PhaseStateStore, active_dir, enabled, sweep_dir

        #: the network outcomes of stimulation sessions, keyed by their inputs
        #: (phase_states.session_key): only among the points of a sweep, whose conditions
        #: repeat sessions (a sham condition's, every point's first)
        self.sessions = (
            PhaseStateStore(sweep_dir() / "sessions")
            if checkpoint_dir is None and sweep_dir() is not None
            else None
        )
        # a run with checkpoints shares in its checkpoint folder; a sweep point in the folder
        # the engine set (phase_states.shared_dir): every point, process and Dask worker
        checkpoint_dir = active_dir(checkpoint_dir)
        self.readouts = ReadoutStore(checkpoint_dir / "readouts" if checkpoint_dir else None)
        #: the sessions' rest references and pass 1, shared alike
        self.references = ReadoutStore(checkpoint_dir / "references" if checkpoint_dir else None)
        #: conditions' states after the phases before the sessions, keyed by what they read
        #: (cortexsim.experiment.phase_states)
        self.phase_states = (
            PhaseStateStore(checkpoint_dir / "phase_states")
            if checkpoint_dir is not None and enabled()
            else None
        )

    # ----------------------------------------------------------------- conditions' setup
    def initial_spines(self, n_sites: int, trees: dict):
        """Every condition starts from the same spine state (paired comparison): stream
        ``initial_spines``.

        Parameters
        ----------
        n_sites : int
            Number of spine sites.
        trees : dict
            Model trees (the structural model).

        Returns
        -------
        SpineState
        """
        from ..plasticity import structural as SP

        return SP.SpineState.initial(
            n_sites, self.streams.generator("initial_spines"), params=trees["structural"]
        )

    def thresholds(self, circuit, ablations) -> dict | None:
        """Run-time TMS thresholds: as built, or pooled across excitatory cells (ablation
        ``coupling``; permuted by stream ``coupling_ablation``, the same in every condition).

        Parameters
        ----------
        circuit : Circuit or DrawnCircuit
            Its thresholds, slices and circuit model.
        ablations : list of str
            The condition's ablations.

        Returns
        -------
        dict or None
            ``{"cells.thr_tms": thresholds}``, or None without the ablation.
        """
        if "coupling" not in ablations:
            return None
        thr = np.array(circuit.tms_threshold_vpm, dtype=float)
        idx = np.concatenate(
            [
                np.arange(circuit.slices[p].start, circuit.slices[p].stop)
                for p in excitatory(circuit.params)
            ]
        )
        thr[idx] = self.streams.generator("coupling_ablation").permutation(thr[idx])
        return {"cells.thr_tms": thr}

    # ----------------------------------------------------------------- the network at rest
    def rest_stats(
        self,
        identity: list,
        circuit,
        trees: dict,
        thresholds: dict | None,
        spines: dict | None = None,
        post_overrides: dict | None = None,
    ):
        """:meth:`baseline_stats`, measured once per ``identity`` (code version, network,
        spine state, seed, overrides) and shared with the other worker processes and a resumed
        run through :attr:`references`.

        Parameters
        ----------
        identity : list
            What the statistics depend on.
        circuit : Circuit
            The short build.
        trees : dict
            Model trees of the condition.
        thresholds : dict or None
            TMS-threshold override (:meth:`thresholds`).
        spines : dict, optional
            Run-time spine values (default: the initial spine state).
        post_overrides : dict, optional
            Run-time values of the rule's postsynaptic variables.

        Returns
        -------
        a0 : ndarray (n_cells,)
            The rule's LTP activity signal per cell.
        rates : dict
            Population -> rate (Hz).
        nmda0 : ndarray (n_cells,)
            The rule's NMDA activity signal per cell.
        """

        def measure():
            a0, rates, nmda0 = self.baseline_stats(
                circuit, trees, thresholds, spines, post_overrides
            )
            return {"a0": a0.tolist(), "rates": rates, "nmda0": nmda0.tolist()}

        ref = self.references.get(identity, measure)
        return (
            np.asarray(ref["a0"], dtype=float),
            ref["rates"],
            np.asarray(ref["nmda0"], dtype=float),
        )

    def baseline_stats(
        self,
        circuit,
        trees: dict,
        thresholds: dict | None,
        spines: dict | None = None,
        post_overrides: dict | None = None,
    ):
        """The spine sites' rule's activity signals per cell and the population rates of the
        network at rest (short build, noise stream ``rest``) with the spine state ``spines``
        (default the initial one) and the sessions' run-time values of the rule's postsynaptic
        variables ``post_overrides`` (default none): the references of the activity drive and
        of the dopamine release.

        Parameters
        ----------
        circuit : Circuit
            The short build.
        trees : dict
            Model trees of the condition.
        thresholds : dict or None
            TMS-threshold override.
        spines : dict, optional
            Run-time spine values.
        post_overrides : dict, optional
            Run-time values of the rule's postsynaptic variables.

        Returns
        -------
        tuple
            ``(a0, rates, nmda0)`` (see :meth:`rest_stats`).
        """
        rule = circuit.site_rule
        if spines is None:
            state = self.initial_spines(circuit.n_sites, trees)
            spines = rule.run_spines(
                (state.state > 0).astype(float),
                rule.initial_sites(circuit.state[circuit.site_group]),
            )
        over = {**(thresholds or {}), **(post_overrides or {})}
        res = circuit.run(
            None,
            spines=spines,
            run_seed=self.streams.noise_seed("rest"),
            overrides=over or None,
            results_name=f"res_{os.getpid()}",
        )
        a0, nmda0 = rule.activity_signals(res, circuit.drawn.site_post, circuit.N)
        return a0, {p: res.mean_rate(p) for p in circuit.slices}, nmda0

    # ----------------------------------------------------------------- read-out runs
    def readout_run(self, circuit, stimulus, spines: dict, thr: dict | None):
        """A read-out run (noise stream ``readout``: every read-out of every condition).

        Parameters
        ----------
        circuit : Circuit
            The short build.
        stimulus : Stimulus or None
            Pulses (None: none).
        spines : dict
            Run-time spine values.
        thr : dict or None
            TMS-threshold override.

        Returns
        -------
        PhaseResult
        """
        return circuit.run(
            stimulus,
            spines=spines,
            run_seed=self.streams.noise_seed("readout"),
            overrides=thr,
            results_name=f"res_{os.getpid()}",
        )

    def cell_rates(self, key: str, trees: dict, snapshot, thr: dict | None) -> np.ndarray:
        """Rate of every cell (Hz) with the spine state of a read-out ``snapshot``, measured
        as the read-outs measure the population rates (short build, noise stream ``readout``).

        Parameters
        ----------
        key : str
            Network-configuration key.
        trees : dict
            Model trees of the condition.
        snapshot : cortexsim.experiment.recorder.Snapshot
            Spine state.
        thr : dict or None
            TMS-threshold override of the condition.

        Returns
        -------
        ndarray (n_cells,)
        """
        circuit = self.builds.short(key, trees)
        res = self.readout_run(circuit, None, snapshot_spines(circuit.site_rule, snapshot), thr)
        return res.spike_counts / res.duration_s
