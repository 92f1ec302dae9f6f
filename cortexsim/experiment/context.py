"""What one condition's run is given: its :class:`ConditionContext`.

The runner (:mod:`cortexsim.experiment.runner`) makes one per condition; the condition's
timeline (:class:`cortexsim.experiment.phases.ConditionRun`) reads it, and shares network
statistics and compiled circuits with the other conditions through a
:class:`cortexsim.experiment.shared.SharedStats`; it never sees the runner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ConditionContext"]


@dataclass
class ConditionContext:
    """One condition of a run, as its timeline needs it.

    Attributes
    ----------
    cname : str
        Condition name.
    cond : dict
        Its normalised spec.
    trees : dict
        Model trees of the condition (overrides and ablations applied).
    key : str
        Network-configuration key (conditions sharing it share compiled circuits).
    drawn : cortexsim.circuit.drawn.DrawnCircuit
        The network as drawn from the seed (cells, spine sites, thresholds, initial
        efficacies), without a Brian2 build.
    site_post, site_pop : ndarray of int (n_sites,)
        Postsynaptic cell of every spine site, and its population index (the site maps).
    initial_spines : SpineState
        The spine state every condition starts from (a copy per context).
    thresholds : dict or None
        Run-time TMS-threshold override (ablation ``coupling``) or None.
    timeline : list of dict
        The validated timeline.
    settings : dict
        The run's settings.
    checkpoints : CheckpointStore or None
        Where the condition's state is saved after every phase and session.
    checkpoint_key : str
        The condition's checkpoint key (its config without criteria, and the code version).
    progress : bool or queue
        Progress bars (a queue: drawn by the parent process).
    """

    cname: str
    cond: dict
    trees: dict
    key: str
    drawn: object
    site_post: np.ndarray
    site_pop: np.ndarray
    initial_spines: object
    thresholds: dict | None
    timeline: list
    settings: dict
    checkpoints: object = None
    checkpoint_key: str = ""
    progress: object = False

    @property
    def rule(self):
        """The spine sites' plasticity rule (its fast-to-slow contract:
        :class:`cortexsim.plasticity.spines.SpineContract`)."""
        return self.drawn.site_rule

    @property
    def populations(self) -> tuple:
        """The circuit's populations, in cell-index order."""
        return tuple(self.drawn.slices)
