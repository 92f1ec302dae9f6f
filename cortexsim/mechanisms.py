"""Candidate mechanisms: named bundles of model parameter values, switched on or off as a whole.

``models/mechanisms.toml`` declares each candidate mechanism of cell-type-specific plasticity
(issue 13: target-specific inhibition, dopamine as a third factor, ...): what it is, whether the
default model has it (``enabled``) and the parameter values it sets when on (``set``: a list of
``{path, value, unit, source}``, ``path`` a dotted model path such as
``circuit.conn.PV.PT_L5.g``).  Off, those parameters keep the values of their own model files
(the mechanism-free model).  A spec switches a mechanism on with the override
``"mechanisms.<name>.enabled" = true`` and off with ``ablations = ["<name>"]`` (or the override
``false``); an explicit override of one of its parameters wins over the mechanism's value,
and an ablation wins over both (its parameters go back to their model files' values).

The mechanism's code (if it needs any beyond parameter values) reads only its parameters: its
neutral value in the model file means "absent", so no code path names a mechanism or a cell type.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .errors import InputError
from .specs import StrictModel, validate


class Setting(StrictModel):
    """One parameter value a mechanism sets."""

    path: Annotated[str, Field(min_length=3)]
    value: float | bool | str | list[float]
    unit: str | None = None
    source: Annotated[str, Field(min_length=3)]


class Mechanism(StrictModel):
    """One candidate mechanism (a table of ``models/mechanisms.toml``)."""

    enabled: bool
    description: Annotated[str, Field(min_length=3)]
    set: list[Setting] = []


def mechanisms(tree) -> dict[str, Mechanism]:
    """The declared mechanisms of a ``mechanisms`` model tree, validated.

    Parameters
    ----------
    tree : ParamTree
        ``models/mechanisms.toml`` (with overrides of ``<name>.enabled`` applied).

    Returns
    -------
    dict
        Mechanism name -> :class:`Mechanism`, in file order.

    Raises
    ------
    InputError
        A malformed table (naming ``mechanisms.<name>.<field>``).
    """
    return {name: validate(Mechanism, dict(tab), prefix=f"mechanisms.{name}.")
            for name, tab in tree.values().items()}


def apply(trees: dict, disabled=()) -> list[str]:
    """Set the parameters of every enabled mechanism in the model trees (in place).

    Parameters
    ----------
    trees : dict
        Model name -> ParamTree, including ``"mechanisms"``.
    disabled : iterable of str
        Mechanisms switched off here whatever ``enabled`` says (ablations).

    Returns
    -------
    list of str
        Names of the mechanisms applied.

    Raises
    ------
    InputError
        A mechanism's path names no parameter, or its value has the wrong type, unit or range
        (naming ``mechanisms.<name>.set[k]``).
    """
    on = []
    for name, m in mechanisms(trees["mechanisms"]).items():
        if not m.enabled or name in disabled:
            continue
        for k, s in enumerate(m.set):
            model, _, rest = s.path.partition(".")
            where = f"mechanisms.{name}.set[{k}]"
            if model not in trees or model == "mechanisms" or not rest:
                raise InputError(f"{where}.path", f"unknown model path {s.path!r}",
                                 [t for t in trees if t != "mechanisms"])
            value: Any = {"value": s.value, "unit": s.unit} if s.unit is not None else s.value
            try:
                trees[model].set(rest, value)
            except InputError as exc:
                raise exc.within(f"{where}: ") from None
            node = trees[model]._node(rest)
            if isinstance(node, dict):     # the value's provenance travels with it
                node["source"] = f"mechanism {name}: {s.source}"
        on.append(name)
    return on
