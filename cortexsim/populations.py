"""Populations (cell types) of the circuit, as declared in ``models/circuit.toml``.

Each ``[populations.<name>]`` table declares the cell model (a table of ``models/cells.toml``),
the TMS coupling model (a table ``[cells.<name>]`` of ``models/coupling.toml``), the layer,
``type = "excitatory"`` or ``"inhibitory"``, whether its cells carry structural spine sites,
its share of all neurons and its background conductance.  Population lists are read from there:
:func:`populations`, :func:`excitatory`, :func:`inhibitory` (the declared order is the order of
the network's cell indices).  A new population is a data change.

The module constants :data:`POPULATIONS`, :data:`EXCITATORY` and :data:`INHIBITORY` are the
values of the shipped model (whatever ``CORTEXSIM_MODELS`` says, so that importing them never
needs a user's circuit file); they remain for code that needs a fixed list at import time.
Code that builds or reads a circuit asks the functions, with the circuit's own tree (default:
the active model folder's ``circuit.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError, check_choice
from .params import ParamTree, _shipped, load_model

#: allowed values of a population's ``type``
TYPES = ("excitatory", "inhibitory")
_KEYS = {"cell": str, "coupling": str, "layer": str, "type": str, "spine_sites": bool}
_PARAMS = ("fraction", "g_background")


@dataclass(frozen=True)
class Population:
    """One declared population.

    Attributes
    ----------
    name : str
        Population name (``IT_L23``...), used in results, specs and criteria.
    cell : str
        Table of ``models/cells.toml`` with its intrinsic (AdEx + h-current) parameters.
    coupling : str
        Table ``[cells.<coupling>]`` of ``models/coupling.toml`` (TMS thresholds, polarisation).
    layer : str
        Cortical layer (descriptive).
    type : str
        ``"excitatory"`` or ``"inhibitory"``: which receptors its projections may open.
    spine_sites : bool
        Plastic synapses onto its cells are spine sites of the structural model.
    fraction : float
        Share of all neurons (normalised by the sum over populations).
    g_background_nS : float
        Conductance of one background (long-range afferent) event (nS).
    """

    name: str
    cell: str
    coupling: str
    layer: str
    type: str
    spine_sites: bool
    fraction: float
    g_background_nS: float

    @property
    def excitatory(self) -> bool:
        """Whether the population's cells are excitatory (``type = "excitatory"``)."""
        return self.type == "excitatory"


def _tree(tree) -> ParamTree:
    return load_model("circuit") if tree is None else tree


def population_table(tree: ParamTree | None = None) -> dict[str, Population]:
    """The declared populations, in order.

    Parameters
    ----------
    tree : ParamTree, optional
        The circuit model (default: ``load_model("circuit")``).

    Returns
    -------
    dict
        name -> :class:`Population`.

    Raises
    ------
    InputError
        No ``[populations]`` table, a missing or mistyped key, an unknown ``type`` or a
        fraction that is not positive.
    """
    tree = _tree(tree)
    if (
        not tree.has("populations")
        or not isinstance(tree.value("populations"), dict)
        or not tree.value("populations")
    ):
        raise InputError(
            "circuit.populations", "no populations declared", "tables [populations.<name>]"
        )
    out = {}
    for name, node in tree.values()["populations"].items():
        where = f"circuit.populations.{name}"
        if not isinstance(node, dict):
            raise InputError(where, "expected a table", sorted(_KEYS) + list(_PARAMS))
        missing = [k for k in (*_KEYS, *_PARAMS) if k not in node]
        if missing:
            raise InputError(where, f"missing {', '.join(missing)}", sorted(_KEYS) + list(_PARAMS))
        extra = sorted(set(node) - set(_KEYS) - set(_PARAMS))
        if extra:
            raise InputError(f"{where}.{extra[0]}", "unknown key", sorted(_KEYS) + list(_PARAMS))
        for k, typ in _KEYS.items():
            if not isinstance(node[k], typ):
                raise InputError(f"{where}.{k}", f"expected {typ.__name__}, got {node[k]!r}")
        check_choice(f"{where}.type", node["type"], TYPES)
        for k in _PARAMS:
            v = node[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise InputError(f"{where}.{k}", f"must be a number >= 0, got {v!r}")
        if node["fraction"] <= 0:
            raise InputError(f"{where}.fraction", f"must be > 0, got {node['fraction']!r}")
        out[name] = Population(
            name,
            node["cell"],
            node["coupling"],
            node["layer"],
            node["type"],
            node["spine_sites"],
            float(node["fraction"]),
            float(node["g_background"]),
        )
    return out


def populations(tree: ParamTree | None = None) -> tuple[str, ...]:
    """Names of the declared populations, in cell-index order.

    Parameters
    ----------
    tree : ParamTree, optional
        The circuit model (default: the active ``models/circuit.toml``).

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        A malformed declaration (see :func:`population_table`).
    """
    return tuple(population_table(tree))


def excitatory(tree: ParamTree | None = None) -> tuple[str, ...]:
    """Names of the excitatory populations (projection neurons).

    Parameters
    ----------
    tree : ParamTree, optional
        The circuit model (default: the active ``models/circuit.toml``).

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        A malformed declaration (see :func:`population_table`).
    """
    return tuple(p.name for p in population_table(tree).values() if p.excitatory)


def inhibitory(tree: ParamTree | None = None) -> tuple[str, ...]:
    """Names of the inhibitory populations (interneurons).

    Parameters
    ----------
    tree : ParamTree, optional
        The circuit model (default: the active ``models/circuit.toml``).

    Returns
    -------
    tuple of str

    Raises
    ------
    InputError
        A malformed declaration (see :func:`population_table`).
    """
    return tuple(p.name for p in population_table(tree).values() if not p.excitatory)


def check_population(name: str, field: str = "cell_type", tree: ParamTree | None = None) -> str:
    """Return ``name`` if it is a population of ``tree`` (default: of the shipped model, see
    :data:`POPULATIONS`), else raise InputError naming ``field``.

    Parameters
    ----------
    name : str
        The name given.
    field : str
        Name of the input for the error message.
    tree : ParamTree, optional
        The circuit model.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    InputError
        Not a declared population.
    """
    return check_choice(field, name, POPULATIONS if tree is None else populations(tree))


_SHIPPED = load_model(_shipped("models") / "circuit.toml")
#: Populations of the shipped model, in cell-index order.
POPULATIONS: tuple[str, ...] = populations(_SHIPPED)
#: Excitatory projection-neuron classes of the shipped model (they carry its spine sites).
EXCITATORY: tuple[str, ...] = excitatory(_SHIPPED)
#: Interneuron classes of the shipped model.
INHIBITORY: tuple[str, ...] = inhibitory(_SHIPPED)
