"""A third, trivial spine-driving rule: the example of the fast-to-slow contract.

``"rate_spines"``: static synapses (fixed conductance) whose presence is switched by the spine
sites; the structural core's plasticity signal is a fixed per-site efficacy ``w`` (0.5 at the
start, 0.25 for a new spine's synapse, unchanged by sessions), the activity signal is the
postsynaptic cell's spike probability per millisecond (its rate / 1000 Hz), and there is no
NMDA signal.  It is not a model of anything: it shows that a rule which drives spines is one
module (this one) plus one registration (its name in
:data:`cortexsim.plasticity.rules.RULE_MODULES`), and the tests run it through a whole study.
Select it for the spine-site projections with overrides such as
``"circuit.conn.IT_L5.IT_L5.plasticity" = "rate_spines"`` (every projection whose synapses are
spine sites: they form one group).
"""

from __future__ import annotations

import numpy as np

from .rules import PlasticityRule, SynapseCode, register

#: efficacy of the sites at the start and of a new spine's synapse
W_START, W_NEW = 0.5, 0.25


@register
class RateSpines(PlasticityRule):
    """Static synapses on spine sites driven by the postsynaptic rate (see the module
    docstring).

    Parameters
    ----------
    params : object, optional
        Unused (the interface's parameter slot).
    """

    name = "rate_spines"
    short = "rs"
    structural = True
    settable = ("on",)
    site_state = ("w",)

    def synapse_code(self) -> SynapseCode:
        """A per-synapse presence ``on`` that gates every receptor."""
        return SynapseCode(model="on : 1")

    def receptor_scale(self, receptor: str) -> tuple[str, str]:
        # Every receptor's conductance times the presence ``on``.
        return "on*", ""

    def initial_state(self, n, rng):
        # Efficacy :data:`W_START` at every site (no draw).
        return {"w": np.full(n, W_START)}

    def setup(self, S, state, delay):
        # Presence of every synapse as drawn.
        S.on = state["on"]

    def run_spines(self, on, sites):
        # Only the presence goes to the network (``w`` acts on the spines alone).
        return {"on": on}

    def plasticity_signal(self, sites):
        # The per-site efficacy ``w``.
        return np.clip(sites["w"], 0.0, 1.0)

    def activity_signals(self, res, site_post, n_cells):
        # Spike probability per millisecond of every cell; no NMDA signal.
        ltp = np.asarray(res.spike_counts, dtype=float) / res.duration_s / 1000.0
        return ltp, np.zeros(n_cells)

    def new_spine_sites(self, sites, new):
        # A new spine's synapse starts at :data:`W_NEW`.
        return {"w": np.where(new, W_NEW, sites["w"])}

    def efficacy(self, sites):
        # The per-site efficacy ``w``.
        return sites["w"]
