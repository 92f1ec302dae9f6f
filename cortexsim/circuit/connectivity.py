"""Projections declared in ``models/circuit.toml`` and the synapses drawn from them.

A projection ``[conn.<pre>.<post>]`` declares its connection probability ``p`` (at the
reference size), peak conductance ``g``, receptors, target compartment, plasticity rule,
short-term dynamics and optionally its own delay (see the comment above ``[conn]`` in the model
file).  :func:`projections` reads and checks them; :func:`draw` draws every projection's
synapses with one seeded generator, in declaration order, and groups them into the Brian2
``Synapses`` groups that run them: one group per (receptors, rule, short-term dynamics, delay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, check_choice
from ..params import ParamTree
from ..plasticity.rules import rule_names
from .layout import Layout

#: receptors a projection may open, by the type of its presynaptic population
RECEPTORS = {"excitatory": ("AMPA", "NMDA"), "inhibitory": ("GABA_A",)}
#: default transmission delay (a ``[synapse]`` parameter) by presynaptic type
DEFAULT_DELAY = {"excitatory": "delay_exc", "inhibitory": "delay_inh"}
#: compartments a projection may target: inhibitory (GABA_A) synapses act on the soma or, in a
#: two-compartment cell (:func:`cortexsim.circuit.cells.compartments`), on its dendrite (on a
#: point neuron "dendrite" is its one compartment); excitatory (AMPA/NMDA) synapses declare
#: "soma" and act on the dendrite of a two-compartment cell, the soma of a point neuron
TARGETS = ("soma", "dendrite")
SHORT_TERM = ("depression", "none")
_KEYS = ("p", "g", "receptors", "target", "plasticity", "short_term")


@dataclass(frozen=True)
class Projection:
    """One declared projection ``pre -> post`` (numbers in file units: p, g in nS, delay ms).

    Attributes
    ----------
    pre, post : str
        Populations.
    p : float
        Connection probability at the reference scale.
    g_nS : float
        Peak conductance (nS).
    receptors : tuple of str
        ``("AMPA", "NMDA")``, ``("GABA_A",)``...
    target : str
        Target compartment or inhibition type.
    plasticity : str
        Plasticity rule (:data:`cortexsim.plasticity.rules.RULES`) or ``"none"``.
    short_term : str
        Short-term dynamics (``"none"`` or ``"depression"``).
    delay_ms : float
        Axonal delay (ms).
    """

    pre: str
    post: str
    p: float
    g_nS: float
    receptors: tuple[str, ...]
    target: str
    plasticity: str
    short_term: str
    delay_ms: float

    @property
    def group_key(self) -> tuple:
        """Projections with equal keys run in one Brian2 ``Synapses`` group."""
        return self.receptors, self.plasticity, self.short_term, self.delay_ms, self.target


def projections(tree: ParamTree, layout: Layout) -> list[Projection]:
    """The declared projections, in declaration order, checked against the populations.

    Parameters
    ----------
    tree : ParamTree
        The circuit model (``[conn.<pre>.<post>]`` tables).
    layout : Layout
        Its populations.

    Returns
    -------
    list of Projection

    Raises
    ------
    InputError
        Unknown population, missing key, receptors that the presynaptic type cannot open,
        unknown target, rule or short-term dynamics, or a negative number.
    """
    pv = tree.values()
    pops = layout.populations
    out = []
    for pre, posts in pv.get("conn", {}).items():
        check_choice("circuit.conn", pre, pops)
        for post, c in posts.items():
            where = f"circuit.conn.{pre}.{post}"
            check_choice(f"circuit.conn.{pre}", post, pops)
            missing = [k for k in _KEYS if k not in c]
            if missing:
                raise InputError(where, f"missing {', '.join(missing)}", list(_KEYS) + ["delay"])
            extra = sorted(set(c) - set(_KEYS) - {"delay"})
            if extra:
                raise InputError(f"{where}.{extra[0]}", "unknown key", list(_KEYS) + ["delay"])
            kind = pops[pre].type
            rec = c["receptors"]
            if not isinstance(rec, list) or not rec or any(r not in RECEPTORS[kind] for r in rec):
                raise InputError(
                    f"{where}.receptors",
                    f"{rec!r} cannot be opened by an {kind} population",
                    RECEPTORS[kind],
                )
            check_choice(f"{where}.target", c["target"], TARGETS)
            if c["target"] == "dendrite" and kind != "inhibitory":
                raise InputError(
                    f"{where}.target",
                    "excitatory synapses are placed by the cell "
                    "model (the dendrite of a two-compartment cell, else the soma)",
                    ["soma"],
                )
            check_choice(f"{where}.plasticity", c["plasticity"], rule_names())
            check_choice(f"{where}.short_term", c["short_term"], SHORT_TERM)
            delay = pv["synapse"][DEFAULT_DELAY[kind]]
            if "delay" in c:
                try:  # a delay of its own, in any unit of time
                    delay = tree.to(f"conn.{pre}.{post}.delay", "ms")
                except InputError as exc:
                    raise exc.within("circuit.") from None
            for k, v in (("p", c["p"]), ("g", c["g"]), ("delay", delay)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    raise InputError(f"{where}.{k}", f"must be a number >= 0, got {v!r}")
            out.append(
                Projection(
                    pre,
                    post,
                    float(c["p"]),
                    float(c["g"]),
                    tuple(rec),
                    c["target"],
                    c["plasticity"],
                    c["short_term"],
                    float(delay),
                )
            )
    return out


@dataclass
class SynapseGroup:
    """The synapses of one Brian2 ``Synapses`` group (arrays in presynaptic order).

    Attributes
    ----------
    name : str
        Name of the Brian2 object (receptors, rule tag).
    receptors, rule, short_term, delay_ms, target
        What its projections share.
    projections : list of Projection
    sites : bool
        Its synapses are spine sites (structural rule onto populations with spine sites).
    conn : dict
        ``i``, ``j`` (int32 cell indices), ``g_nS`` (float), ``on`` (float 0/1), one per synapse.
    """

    name: str
    receptors: tuple
    rule: str
    short_term: str
    delay_ms: float
    target: str = "soma"
    projections: list = field(default_factory=list)
    sites: bool = False
    conn: dict = field(default_factory=dict)


def _draw_pairs(rng, layout: Layout, pre: str, post: str, p: float):
    """Explicit i, j (global indices) for a pre -> post projection with probability p."""
    n_pre, n_post = layout.sizes[pre], layout.sizes[post]
    k = rng.binomial(n_pre, min(p, 1.0), size=n_post)
    if pre == post:
        k = np.minimum(k, n_pre - 1)
    ii, jj = [], []
    for jpost in range(n_post):
        if pre == post:  # no autapses
            c = rng.choice(n_pre - 1, size=k[jpost], replace=False)
            cand = np.where(c >= jpost, c + 1, c)
        else:
            cand = rng.choice(n_pre, size=k[jpost], replace=False)
        ii.append(cand)
        jj.append(np.full(k[jpost], jpost))
    i = np.concatenate(ii).astype(np.int32) + layout.slices[pre].start
    j = np.concatenate(jj).astype(np.int32) + layout.slices[post].start
    return i, j


def _group_name(key: tuple, rules, taken: set) -> str:
    receptors, rule = key[0], key[1]
    name = "_".join(r.lower() for r in receptors) + (
        f"_{rules[rule].short}" if rules[rule].short else ""
    )
    base, k = name, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def draw(
    projs: list[Projection],
    layout: Layout,
    rng: np.random.Generator,
    rules: dict,
    *,
    n_total: int,
    reference: int,
    occupancy: float,
    sites_on: bool = True,
) -> dict:
    """Draw the synapses of every projection and group them.

    Probabilities apply at the ``reference`` size; a size ``n_total`` keeps each cell's in-degree
    (p * reference / n_total); where that exceeds 1 the conductance makes up the rest, so the
    mean input per cell is the same at every size.  Spine sites (a structural rule onto a
    population with ``spine_sites``, when ``sites_on``) are potential synapses: drawn with
    p / ``occupancy`` and each present (``on``) with probability ``occupancy``.

    Parameters
    ----------
    rules : dict
        Rule name -> :class:`~cortexsim.plasticity.rules.PlasticityRule`.

    Returns
    -------
    dict
        Group name -> :class:`SynapseGroup`, in order of first appearance.
    """
    f = reference / n_total
    groups: dict[tuple, SynapseGroup] = {}
    parts: dict[tuple, list] = {}
    for pr in projs:
        key = pr.group_key
        sites = (
            sites_on and rules[pr.plasticity].structural and layout.populations[pr.post].spine_sites
        )
        if key not in groups:
            name = _group_name(key, rules, {g.name for g in groups.values()})
            groups[key] = SynapseGroup(
                name, pr.receptors, pr.plasticity, pr.short_term, pr.delay_ms, pr.target
            )
            parts[key] = []
        grp = groups[key]
        grp.projections.append(pr)
        grp.sites = grp.sites or sites
        g = pr.g_nS
        p_draw = pr.p * f / (occupancy if sites else 1.0)
        if p_draw > 1.0:
            g = g * p_draw
            p_draw = 1.0
        i, j = _draw_pairs(rng, layout, pr.pre, pr.post, p_draw)
        on = (rng.random(i.size) < occupancy) if sites else np.ones(i.size, bool)
        parts[key].append((i, j, np.full(i.size, g), on))
    for key, grp in groups.items():
        i, j, g, on = (np.concatenate(x) for x in zip(*parts[key]))
        # synapses stored in presynaptic order: the arrays a presynaptic spike touches (the
        # transmission and the delayed calcium pathway) are then contiguous in memory
        o = np.lexsort((j, i))
        grp.conn = {"i": i[o], "j": j[o], "g_nS": g[o], "on": on.astype(float)[o]}
    return {g.name: g for g in groups.values()}
