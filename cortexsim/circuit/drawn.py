"""The drawn circuit: everything of a network that is drawn from the seed, as numpy, without
Brian2.

:func:`draw_circuit` lays out the declared populations (:mod:`.layout`), draws the declared
projections into synapse groups with explicit ``i``, ``j`` (:mod:`.connectivity`, stream
``connectivity``), the per-cell TMS thresholds and polarisation gains (:mod:`.tms`, stream
``thresholds``) and every group's initial plasticity state (stream ``initial_efficacies``).
:class:`cortexsim.circuit.network.Circuit` builds its Brian2 network from a
:class:`DrawnCircuit`; the experiment runner hands a condition its drawn circuit (layout, spine
sites, thresholds, initial efficacies) without building anything.  Importing this module and
drawing does not import Brian2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng
from ..errors import InputError
from ..params import ParamTree, load_model
from ..plasticity.rules import PlasticityRule, get_rule
from . import cells
from .connectivity import SynapseGroup, draw, projections
from .layout import Layout, resolve_scale
from .tms import Coupling

__all__ = ["DrawnCircuit", "SiteConn", "draw_circuit", "rule_params"]


def rule_params(
    circuit_params: ParamTree, syn_params: ParamTree | None = None, dendrite: bool = False
) -> ParamTree:
    """Synaptic rule parameters of a circuit: ``models/synaptic.toml`` (or ``syn_params``) with
    the network's NMDA-dependent calcium and extracellular calcium as the circuit model says
    (``plasticity.nmda_calcium``, ``plasticity.ca_ext``) and, in a build with two-compartment
    cells (``dendrite``), the Mg2+ unblock read at the excitatory synapses' voltage
    (:data:`.equations.V_EXC`: the dendrite's).

    Parameters
    ----------
    circuit_params : ParamTree
        The circuit model.
    syn_params : ParamTree, optional
        Tree replacing ``models/synaptic.toml``.
    dendrite : bool
        The cells have a dendritic compartment.

    Returns
    -------
    ParamTree
        A copy; the inputs are not changed.
    """
    from . import equations as eq

    tree = syn_params if syn_params is not None else load_model("synaptic")
    tree = ParamTree.from_dict(dict(tree), name="synaptic")
    tree.set("nmda.enabled", bool(circuit_params.value("plasticity.nmda_calcium")))
    tree.set("extracellular.ca", circuit_params.to("plasticity.ca_ext", "mM"))
    if dendrite:
        tree.set("nmda.v_name", eq.V_EXC)
    return tree


class SiteConn(dict):
    """Synapse group name -> arrays ``i``, ``j``, ``g_nS``, ``on``.  ``conn["ee"]`` (the name of
    the spine-site group before groups were derived from the model) is the spine-site group; it
    is not listed among the keys.

    Parameters
    ----------
    groups : dict
        Group name -> arrays.
    site : str or None
        Name of the spine-site group.
    """

    def __init__(self, groups: dict, site: str | None):
        super().__init__(groups)
        self._site = site

    def __missing__(self, key):
        if key == "ee" and self._site is not None:
            return self[self._site]
        raise KeyError(key)


@dataclass
class DrawnCircuit:
    """A network as drawn from the seed (numpy only; see the module docstring).

    Attributes
    ----------
    params : ParamTree
        The circuit model.
    seed : int
        Experiment seed the draws come from.
    n_total : int
        Requested total neuron count.
    layout : Layout
        Populations and their index ranges.
    dt_s : float
        Simulation time step (s).
    dendrite : bool
        Some cell model has a coupled dendrite.
    syn_tree : ParamTree
        Synaptic rule parameters of the circuit (:func:`rule_params`).
    rules : dict
        Rule name -> :class:`~cortexsim.plasticity.rules.PlasticityRule` of the projections.
    groups : dict
        Synapse group name -> :class:`~.connectivity.SynapseGroup`.
    site_group : str or None
        Name of the group whose synapses are the spine sites (the structural rule's group).
    conn : SiteConn
        Group name -> arrays ``i``, ``j``, ``g_nS``, ``on``; ``conn["ee"]``: the spine sites.
    coupling : Coupling
        The TMS coupling of the cells.
    tms_threshold_vpm, polarization_mV_per_vpm : ndarray (N,)
        Per-cell TMS threshold (V/m) and somatic polarisation (mV per V/m).
    state : dict
        Group name -> initial per-synapse state (``on`` and the rule's initial state).
    initial_rho : ndarray (n_sites,)
        Initial efficacy of the spine sites (zeros for a rule without ``rho``).
    """

    params: ParamTree
    seed: int
    n_total: int
    layout: Layout
    dt_s: float
    dendrite: bool
    syn_tree: ParamTree
    rules: dict
    groups: dict
    site_group: str | None
    conn: SiteConn
    coupling: Coupling
    tms_threshold_vpm: np.ndarray
    polarization_mV_per_vpm: np.ndarray
    state: dict
    initial_rho: np.ndarray

    @property
    def populations(self) -> tuple:
        """Declared populations, in cell-index order."""
        return tuple(self.layout.populations)

    @property
    def sizes(self) -> dict:
        """Cells per population."""
        return self.layout.sizes

    @property
    def N(self) -> int:  # noqa: N802 (the circuit's name for it)
        """Total number of cells."""
        return self.layout.N

    @property
    def slices(self) -> dict:
        """Population -> slice of cell indices."""
        return self.layout.slices

    @property
    def pop_index(self) -> np.ndarray:
        """Population position of every cell."""
        return self.layout.pop_index

    @property
    def n_sites(self) -> int:
        """Number of spine sites (synapses of :attr:`site_group`; 0 without one)."""
        return int(self.conn[self.site_group]["i"].size) if self.site_group else 0

    @property
    def site_rule(self) -> PlasticityRule | None:
        """The plasticity rule of the spine sites; None without sites."""
        return self.rules[self.groups[self.site_group].rule] if self.site_group else None

    @property
    def site_post(self) -> np.ndarray:
        """Postsynaptic cell of every spine site (int64)."""
        return self.conn["ee"]["j"].astype(np.int64)

    @property
    def post_variables(self) -> dict:
        """Per-cell variables the plasticity rules read from the postsynaptic cell, name ->
        neutral value (:meth:`~cortexsim.plasticity.rules.PlasticityRule.post_variables`)."""
        out = {}
        for rule in self.rules.values():
            out.update(rule.post_variables())
        return out


def draw_circuit(
    scale="small",
    *,
    seed: int = 0,
    params: ParamTree | None = None,
    cell_params=None,
    syn_params=None,
    coupling: Coupling | None = None,
    coupling_params=None,
    plastic: bool = True,
) -> DrawnCircuit:
    """Draw a network from the seed: layout, synapse groups, thresholds, initial state.

    Parameters
    ----------
    scale : str or int
        A named scale of ``models/circuit.toml`` or a total neuron count.
    seed : int
        Experiment seed (named streams ``connectivity``, ``thresholds``,
        ``initial_efficacies``: :class:`cortexsim.rng.SeedSchedule`).
    params, cell_params, syn_params, coupling_params : ParamTree, optional
        Trees replacing ``models/circuit.toml``, ``models/cells.toml``,
        ``models/synaptic.toml`` and ``models/coupling.toml``.
    coupling : Coupling, optional
        The TMS coupling (default: the biphasic pulse at ``tms.angle_deg`` of the circuit
        model, from ``coupling_params``).
    plastic : bool
        False: no spine sites (plastic synapses all present, no occupancy draw).

    Returns
    -------
    DrawnCircuit

    Raises
    ------
    InputError
        A malformed population / projection declaration, or more than one spine-site group.
    """
    params = params if params is not None else load_model("circuit")
    pv = params.values()
    if coupling is None:
        coupling = Coupling("biphasic", pv["tms"]["angle_deg"], None, coupling_params)
    n_total = resolve_scale(scale, params)
    layout = Layout.build(n_total, params)
    projs = projections(params, layout)
    dendrite = cells.has_dendrite([p.cell for p in layout.populations.values()], cell_params)
    syn_tree = rule_params(params, syn_params, dendrite)
    rules: dict[str, PlasticityRule] = {
        name: get_rule(name, syn_tree) for name in dict.fromkeys(p.plasticity for p in projs)
    }
    streams = rng.SeedSchedule(seed)
    groups: dict[str, SynapseGroup] = draw(
        projs,
        layout,
        streams.generator("connectivity"),
        rules,
        n_total=n_total,
        reference=pv["scale"]["reference"],
        occupancy=pv["plasticity"]["site_occupancy"],
        sites_on=plastic,
    )
    structural = [n for n, g in groups.items() if rules[g.rule].structural]
    if len(structural) > 1:
        raise InputError(
            "circuit.conn",
            "plastic projections with a structural rule must "
            "share receptors, short-term dynamics and delay (one spine-site "
            f"group); got groups {structural}",
        )
    site_group = structural[0] if structural else None
    conn = SiteConn({n: g.conn for n, g in groups.items()}, site_group)
    thr, pol = coupling.cell_properties(layout, streams.generator("thresholds"))
    efficacies = streams.generator("initial_efficacies")
    state = {
        n: {"on": g.conn["on"], **rules[g.rule].initial_state(g.conn["i"].size, efficacies)}
        for n, g in groups.items()
    }
    n_sites = int(conn[site_group]["i"].size) if site_group else 0
    initial_rho = state[site_group].get("rho", np.zeros(n_sites)) if site_group else np.zeros(0)
    return DrawnCircuit(
        params,
        int(seed),
        n_total,
        layout,
        params.to("sim.dt", "s"),
        dendrite,
        syn_tree,
        rules,
        groups,
        site_group,
        conn,
        coupling,
        thr,
        pol,
        state,
        initial_rho,
    )
