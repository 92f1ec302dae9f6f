"""The state of one condition along its timeline: everything its future depends on.

A checkpoint is this state plus the recorder's lists (:mod:`cortexsim.experiment.recorder`);
what is not here is recomputed identically from the config and the seed (the circuit, its
connectivity and thresholds, the resting statistics of pass 1, the stress schedule, the
stimulus).  Random numbers need no saved generator state: the structural kernel draws from a
counter-based stream at ``(kernel seed, k_step, site)`` and every network run gets its own
noise seed, both derived from the seed by named stream (:class:`cortexsim.rng.SeedSchedule`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..plasticity.structural import SpineState


@dataclass
class ConditionState:
    """Where one condition stands.

    Attributes
    ----------
    spines : SpineState
        Spine sites (state, relative weight), one per plastic synapse.
    sites : dict of str -> ndarray, float64 (n_sites,)
        The spine sites' rule's per-site state after the latest fast phase
        (:attr:`cortexsim.plasticity.spines.SpineContract.site_state`; Graupner-Brunel: the
        efficacy ``rho``).
    prev_on : ndarray, float64 (n_sites,)
        Occupancy (1 present, 0 empty) at the latest fast phase or read-out: a site present
        now but empty then holds a new spine, whose synapse starts as the rule says
        (:meth:`cortexsim.plasticity.spines.SpineContract.new_spine_sites`).
    drive : ndarray, float64 (n_cells,)
        Activity drive of every cell (decays with ``activity.tau_h``).
    k_step : int
        Structural steps taken: the counter of the structural RNG stream.
    t_d : float
        Time since the start of the timeline (days), accumulated as the steps go.
    phase : int
        Phases of the timeline completed.
    session : int
        Sessions completed in the (current) stimulation phase.
    formed, eliminated : int
        Spines formed / eliminated since the latest recorded time point.
    carry : dict of str -> ndarray
        With ``settings.session_stride`` > 1 only: the latest simulated session's outcome that
        the following unsimulated sessions repeat
        (:meth:`cortexsim.experiment.phases.ConditionRun.session`); empty otherwise.
    """

    spines: SpineState
    sites: dict
    prev_on: np.ndarray
    drive: np.ndarray
    k_step: int = 0
    t_d: float = 0.0
    phase: int = 0
    session: int = 0
    formed: int = 0
    eliminated: int = 0
    carry: dict = field(default_factory=dict)

    _SCALARS = ("k_step", "t_d", "phase", "session", "formed", "eliminated")

    @property
    def on(self) -> np.ndarray:
        """Current occupancy (1 present, 0 empty), float64."""
        return (self.spines.state > 0).astype(float)

    def to_arrays(self) -> tuple[dict, dict]:
        """``(arrays, scalars)`` for a checkpoint: arrays by name, scalars JSON-able."""
        arrays = {
            "spines_state": self.spines.state,
            "spines_weight": self.spines.weight,
            **{f"site_{k}": v for k, v in self.sites.items()},
            "prev_on": self.prev_on,
            "drive": self.drive,
            **{f"carry_{k}": v for k, v in self.carry.items()},
        }
        scalars = {k: int(getattr(self, k)) for k in self._SCALARS if k != "t_d"}
        return arrays, {**scalars, "t_d": float(self.t_d)}

    @classmethod
    def from_arrays(cls, arrays: dict, scalars: dict) -> ConditionState:
        """Inverse of :meth:`to_arrays` (floats round-trip exactly through JSON).

        Parameters
        ----------
        arrays : dict
            ``spines_state``, ``spines_weight``, ``rho``, ``prev_on``, ``drive``.
        scalars : dict
            The scalar fields (time, step counters, session index, spine counts).

        Returns
        -------
        ConditionState

        Raises
        ------
        KeyError
            An array or scalar the checkpoint lacks.
        """
        return cls(
            SpineState(arrays["spines_state"], arrays["spines_weight"]),
            sites={k[5:]: v for k, v in arrays.items() if k.startswith("site_")},
            prev_on=arrays["prev_on"],
            drive=arrays["drive"],
            **{k: scalars[k] for k in cls._SCALARS},
            carry={k[6:]: v for k, v in arrays.items() if k.startswith("carry_")},
        )
