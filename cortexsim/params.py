"""Parameter files (``models/*.toml``) and dotted-path access.

Convention for a model file: every physiological or physical parameter is an inline table
``name = { value = ..., unit = "...", source = "..." }``.  ``source`` cites a paper and year, or
begins with ``"assumption"`` and says why.  Plain values (strings, booleans, lists of names,
integers such as counts of things) are settings, not parameters, and are allowed as they are.

``load_model("cells")`` reads ``models/cells.toml`` and returns a :class:`ParamTree`, a nested
dict whose parameter leaves keep their metadata.  ``tree.value("IT_L5.tau_m")`` gives the bare
number (in the shipped file's unit, see below), ``tree.meta(path)`` its unit and source, ``tree.values()`` a plain
nested dict of numbers, and ``tree.set(path, v)`` overrides a value (used by specs and sweeps).

Units are enforced where a model file is read (:func:`load_model`, :func:`conform_units`): the
shipped file of the same name declares the unit the code computes in, and every parameter of a
user's file (``CORTEXSIM_MODELS``) is converted to it, so ``values()`` is always in the shipped
units.  A wrong dimension, an unknown unit or a missing unit is an error naming file and key.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import math
import os
import tokenize
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

PARAM_KEYS = {"value", "unit", "source"}
#: without an explicit ``range = [lo, hi]`` in its model file, an overridden number keeps the
#: sign of its default and stays less than this factor away from it, both ways (strictly
#: between ``|default| / 1000`` and ``1000 |default|``: a number typed in a unit 1000x off is
#: refused), or is exactly 0 (the term switched off, as ablations do); zero defaults take any
#: finite value.  Integers stay integers.
DEFAULT_RANGE_FACTOR = 1000.0
#: significant digits kept by a unit conversion on load (removes the rounding noise of the
#: conversion factor, so 0.153929 nF gives the shipped 153.929 pF bit for bit)
_CONVERTED_DIGITS = 15


def _kind(v) -> str:
    if isinstance(v, bool):
        return "true or false"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def allowed_range(node: dict) -> tuple[float, float]:
    """The bounds of a parameter's values: its ``range`` (inclusive), or the default rule
    (exclusive bounds: the default's sign and less than :data:`DEFAULT_RANGE_FACTOR` times
    away from it either way, so a number typed in a unit 1,000x off is refused; 0 is allowed
    besides, see :func:`in_allowed_range`).

    Parameters
    ----------
    node : dict
        A parameter ``{value, unit, source, range?}``.

    Returns
    -------
    lo, hi : float
    """
    if "range" in node:
        lo, hi = node["range"]
        return float(lo), float(hi)
    v = node["value"]
    if v > 0:
        return v / DEFAULT_RANGE_FACTOR, v * DEFAULT_RANGE_FACTOR
    if v < 0:
        return v * DEFAULT_RANGE_FACTOR, v / DEFAULT_RANGE_FACTOR
    return -math.inf, math.inf


def in_allowed_range(node: dict, value: float) -> bool:
    """Whether ``value`` may replace the parameter's value: within its ``range``, or, where the
    model file declares none, exactly 0 (the term switched off) or strictly inside
    :func:`allowed_range`.

    Parameters
    ----------
    node : dict
        A parameter ``{value, unit, source, range?}``.
    value : float
        The new value, in the node's unit.

    Returns
    -------
    bool
    """
    lo, hi = allowed_range(node)
    if "range" in node:
        return lo <= value <= hi
    return value == 0 or lo < value < hi


def _allowed_text(node: dict, unit: str | None) -> str:
    lo, hi = allowed_range(node)
    u = f" {unit}" if unit not in (None, "", "1") else ""
    if "range" in node or math.isinf(hi - lo):
        return f"[{lo:g}, {hi:g}]{u}"
    return f"0, or above {lo:g} and below {hi:g}{u}"


def convert(path: str, q, unit: str, to: str | None = None) -> float:
    """``q`` in ``unit`` expressed in ``to`` (default: coherent SI base units), with pint.

    The one place where units are converted: model files name a unit per parameter
    (``{value, unit, source}``), code asks for the unit it computes in (:meth:`ParamTree.to`,
    :meth:`ParamTree.si`), and an override may be given in any unit of the same dimension.
    Count units of this project (neurons, pulses, bursts, sessions, terminals, afferents) are
    dimensions of their own; ``MOhm`` is read as megaohm.

    Parameters
    ----------
    path : str
        Dotted path of the parameter (for the error message).
    q : float
        The number.
    unit : str
        Its unit.
    to : str, optional
        The unit wanted.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Naming ``path``: the dimensions differ, or a unit is unknown.
    """
    import pint

    ureg = _ureg()
    if to is not None and unit == to:
        return q
    try:
        quantity = ureg.Quantity(q, _pint_name(unit))
        out = quantity.to_base_units() if to is None else quantity.to(_pint_name(to))
        return float(out.magnitude)
    except pint.DimensionalityError:
        raise InputError(
            path, f"unit {unit!r} has the wrong dimension", f"units of {to!r}"
        ) from None
    except (
        pint.PintError,
        tokenize.TokenError,
        AttributeError,
        TypeError,
        ValueError,
        AssertionError,
    ):  # an unknown unit, or a string pint cannot parse
        raise InputError(
            path, f"cannot convert {unit!r}" + (f" to {to!r}" if to else ""), [to] if to else None
        ) from None


def number_in(path: str, node, unit: str):
    """A plain value as it is, or a parameter leaf ``{value, unit, ...}`` converted to ``unit``.

    For readers of model values handed in as dicts (not read by :func:`load_model`), so that
    a leaf's unit is never dropped.

    Parameters
    ----------
    path : str
        Dotted path of the value (for the error message).
    node : object
        A number (taken to be in ``unit``) or a parameter leaf.
    unit : str
        The unit wanted.

    Returns
    -------
    object
        The number in ``unit`` (a plain value unchanged).

    Raises
    ------
    InputError
        Naming ``path``: the leaf's unit has another dimension or is unknown.
    """
    return convert(path, node["value"], node["unit"], unit) if is_param(node) else node


def _pint_name(unit: str) -> str:
    return unit.replace("MOhm", "megaohm").replace("GOhm", "gigaohm")


@functools.cache
def _ureg():
    import pint

    ureg = pint.UnitRegistry()
    for count in ("neuron", "pulse", "burst", "session", "terminal", "afferent"):
        ureg.define(f"{count} = [{count}_count] = {count}s")
    return ureg


def check_override(path: str, node: dict, value):
    """The checked new value of a parameter node ``{value, unit?, range?}`` or a setting.

    A number may come with a unit, ``{value = 50, unit = "us"}`` (a ``source`` may go with it)
    or ``"50 us"``, converted to the file's unit (pint) before its range is checked.  The new
    value must have the old one's type (a boolean is not a number, a numeric string is not a
    number, a list stays a list of the same element type) and, for numbers, be allowed by
    :func:`in_allowed_range`.

    Parameters
    ----------
    path : str
        Dotted path of the parameter (for the error message).
    node : dict or object
        The current node (a parameter leaf) or plain setting.
    value : object
        The new value, optionally with a unit.

    Returns
    -------
    object
        The value in the file's unit and type.

    Raises
    ------
    InputError
        Naming ``path``: wrong type or dimension, unknown unit, or out of range.
    """
    old = node["value"]
    unit = node.get("unit")
    if isinstance(old, (int, float)) and not isinstance(old, bool) and unit:
        if isinstance(value, dict) and {"value", "unit"} <= set(value) <= PARAM_KEYS:
            value = convert(path, value["value"], str(value["unit"]), unit)
        elif isinstance(value, str):
            parts = value.split(maxsplit=1)
            try:
                q = float(parts[0])
            except (ValueError, IndexError):
                raise InputError(path, f"expected a number, got {value!r}") from None
            if len(parts) < 2:
                raise InputError(path, f"expected a number, got the string {value!r}")
            value = convert(path, q, parts[1], unit)
    if _kind(value) != _kind(old):
        raise InputError(path, f"expected {_kind(old)}, got {value!r}")
    if isinstance(old, list):
        kinds = {_kind(x) for x in old}
        bad = [x for x in value if _kind(x) not in kinds] if kinds else []
        if bad:
            raise InputError(
                path, f"list elements must be {' or '.join(sorted(kinds))}, got {bad[0]!r}"
            )
        return list(value)
    if _kind(old) == "a number":
        if not math.isfinite(value):
            raise InputError(path, f"must be a finite number, got {value!r}")
        if isinstance(old, int) and float(value) != int(value):
            raise InputError(path, f"expected an integer, got {value!r}")
        if not in_allowed_range(node, value):
            raise InputError(path, f"out of range: {value!r}", _allowed_text(node, unit))
        return int(value) if isinstance(old, int) else float(value)
    return value


#: environment variable naming a user's own folder of model files (replaces the shipped ones)
ENV_MODELS = "CORTEXSIM_MODELS"


def repo_root() -> Path:
    """The folder above the ``cortexsim`` package (the repository in a source checkout)."""
    return Path(__file__).resolve().parent.parent


def _shipped(name: str) -> Path:
    """Folder of the data package ``cortexsim.<name>`` (``models`` or ``experiments``).

    The files live at the repository root (``models/``, ``experiments/``) and are installed as
    package data; :mod:`importlib.resources` finds them in a wheel install and, in an editable
    install, at the repository root.  Code imported from a source tree without any install
    falls back to ``repo_root() / name``.
    """
    try:
        return Path(str(importlib.resources.files(f"cortexsim.{name}")))
    except ModuleNotFoundError:
        return repo_root() / name


def models_dir() -> Path:
    """Folder of the model files: ``$CORTEXSIM_MODELS`` if set, else the shipped ``models/``."""
    env = os.environ.get(ENV_MODELS)
    return Path(env) if env else _shipped("models")


def experiments_dir() -> Path:
    """Folder of the shipped experiment specs (``cortexsim run NAME`` looks here)."""
    return _shipped("experiments")


def read_toml(path, field: str = "file") -> dict:
    """Read a TOML file; missing or malformed files raise one clear InputError.

    Parameters
    ----------
    path : str or Path
        The file.
    field : str
        Name for the error message.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Missing, unreadable or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(field, f"file not found: {path}")
    try:
        parsed = _parsed_toml(path.read_bytes())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(field, f"malformed TOML in {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(field, f"malformed TOML in {path}: not UTF-8 ({exc.reason})") from None
    return copy.deepcopy(parsed)  # callers may change what they get


@functools.lru_cache(maxsize=256)
def _parsed_toml(content: bytes) -> dict:
    """One parse per file content: validating a sweep or a Sobol design reads every model file
    once per point (measured: 1,300 parses, 15 s, for experiments/sensitivity_study.toml);
    an edited file is parsed again."""
    return tomllib.loads(content.decode("utf-8"))


def dotted_items(d: dict, prefix: str = ""):
    """``(dotted path, value)`` of the leaves of nested override tables; a table with
    ``value`` and ``unit`` is a leaf (it keeps its unit: :meth:`ParamTree.set` converts it).

    Parameters
    ----------
    d : dict
        Nested tables (``{"weight": {"tau_w": 10.0}}``) or dotted keys (``{"weight.tau_w": 10}``).
    prefix : str
        Path of ``d`` itself ('' at the top).

    Yields
    ------
    path : str
    value : object
    """
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and not ("value" in v and "unit" in v):
            yield from dotted_items(v, p)
        else:
            yield p, v


def is_param(node) -> bool:
    """Whether ``node`` is a parameter leaf (a table with ``value`` and ``unit``).

    Parameters
    ----------
    node : object
        A node of a model tree.

    Returns
    -------
    bool
    """
    return isinstance(node, dict) and "value" in node and "unit" in node


def _check_tree(node, path: str, fname: str):
    if isinstance(node, dict):
        if "value" in node:
            missing = PARAM_KEYS - set(node)
            if missing:
                raise InputError(
                    f"{fname}:{path}",
                    f"parameter lacks {sorted(missing)}",
                    "inline table {value, unit, source}",
                )
            return
        for k, v in node.items():
            _check_tree(v, f"{path}.{k}" if path else k, fname)
    elif isinstance(node, float):
        raise InputError(
            f"{fname}:{path}",
            "a bare float is not allowed in a model file",
            "inline table {value, unit, source}",
        )


@functools.lru_cache(maxsize=16)
def _read_shipped(path: str) -> dict | None:
    """The raw shipped model file at ``path`` (read once; never mutated), or None."""
    p = Path(path)
    return read_toml(p, field=f"model {p.name}") if p.is_file() else None


def _reference(ref, parts: tuple):
    """The node of the shipped tree ``ref`` at ``parts``: the same key, else the same key under
    a sibling table (a table the shipped file names otherwise: a user's population, a dendrite
    added to another cell model), the first match in file order; None where the shipped file
    has nothing like it."""
    if not isinstance(ref, dict) or is_param(ref):
        return None
    head, rest = parts[0], parts[1:]
    if not rest:
        return ref.get(head)
    tables = [k for k, v in ref.items() if k != head and isinstance(v, dict) and not is_param(v)]
    for k in ([head] if head in ref else []) + tables:
        found = _reference(ref[k], rest)
        if found is not None:
            return found
    return None


def _converted(field: str, q, unit: str, want: str, integer: bool):
    """``q`` in ``unit`` converted to ``want`` (a whole number where ``integer``)."""
    if isinstance(q, bool) or not isinstance(q, (int, float)):
        raise InputError(field, f"expected a number, got {q!r}")
    x = float(f"{convert(field, q, unit, want):.{_CONVERTED_DIGITS}g}")
    if not integer:
        return x
    if not math.isfinite(x) or abs(x - round(x)) > 1e-9 * max(1.0, abs(x)):
        raise InputError(field, f"{q!r} {unit} is not a whole number of {want}")
    return int(round(x))


def _in_reference_unit(field: str, node, ref: dict):
    """A model file's ``node`` in the unit of the shipped parameter ``ref``."""
    want = ref["unit"]
    if not is_param(node):
        raise InputError(
            field,
            f"a parameter needs a unit, got the bare value {node!r}",
            f"an inline table {{value, unit = {want!r}, source}}",
        )
    unit = node["unit"]
    if unit == want:
        return node
    integer = isinstance(ref["value"], int) and not isinstance(ref["value"], bool)
    out = dict(node, unit=want, value=_converted(field, node["value"], unit, want, integer))
    if isinstance(node.get("range"), list):
        out["range"] = [_converted(f"{field}.range", x, unit, want, False) for x in node["range"]]
    return out


def conform_units(tree: dict, name: str, where: str) -> dict:
    """Convert, in place, every parameter of a model file to the unit the code computes in.

    The shipped model file of the same ``name`` (``models/<name>.toml`` of the package) declares
    that unit for each key; a key the shipped file lacks takes the unit of the same key under a
    sibling table (e.g. ``[VIP] C`` that of ``[SST] C``, ``[conn.VIP.PV] g`` that of the other
    projections' ``g``); keys with nothing alike, and files of other names, stay as they are.
    Values (and a ``range``) are converted with pint (:func:`convert`), rounded to 15
    significant digits; a count stays an integer.  For the shipped files this is the identity.

    Parameters
    ----------
    tree : dict
        The file's tables (parsed TOML, checked by :func:`load_model`).
    name : str
        The model's name (``cells``, ``circuit``...).
    where : str
        The file, for error messages (field ``<where>:<dotted key>``).

    Returns
    -------
    dict
        ``tree``.

    Raises
    ------
    InputError
        Naming file and key: a unit of another dimension, an unknown unit, a bare value where the
        shipped file has a parameter with a unit, or a count that is not a whole number.
    """
    ref = _read_shipped(str(_shipped("models") / f"{name}.toml"))

    def walk(node: dict, parts: tuple):
        for k, v in node.items():
            key = parts + (k,)
            if isinstance(v, dict) and not is_param(v):
                walk(v, key)
                continue
            r = _reference(ref, key)
            if is_param(r):
                node[k] = _in_reference_unit(f"{where}:{'.'.join(key)}", v, r)

    if ref is not None:
        walk(tree, ())
    return tree


class ParamTree(dict):
    """Nested dict of parameters (leaves keep value/unit/source) with dotted-path access."""

    name: str = ""

    @classmethod
    def from_dict(cls, d: dict, name: str = "") -> ParamTree:
        """A tree from nested tables (a deep copy), checked as a model file is.

        Parameters
        ----------
        d : dict
            Nested tables; leaves are settings or parameters (``value``, ``unit``, ``source``).
        name : str
            The model's name, put before paths in error messages.

        Returns
        -------
        ParamTree

        Raises
        ------
        InputError
            A malformed parameter table (naming its path).
        """
        _check_tree(d, "", name or "params")
        t = cls(copy.deepcopy(d))
        t.name = name
        return t

    def _node(self, path: str):
        node: Any = self
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node or is_param(node):
                allowed = sorted(node) if isinstance(node, dict) and not is_param(node) else None
                raise InputError(
                    f"{self.name + ':' if self.name else ''}{path}",
                    f"no such parameter (at {part!r})",
                    allowed,
                )
            node = node[part]
        return node

    def has(self, path: str) -> bool:
        """Whether ``path`` names a table, setting or parameter of the tree.

        Parameters
        ----------
        path : str
            Dotted path (``"sim.dt"``).

        Returns
        -------
        bool
        """
        try:
            self._node(path)
            return True
        except InputError:
            return False

    def value(self, path: str):
        """The value at ``path`` in the file's unit (a parameter's ``value``; a setting or a
        table as it is).

        Parameters
        ----------
        path : str
            Dotted path.

        Returns
        -------
        object
            float, int, bool, str, list or dict.

        Raises
        ------
        InputError
            Unknown path (with the keys allowed where it went wrong).
        """
        node = self._node(path)
        return node["value"] if is_param(node) else node

    def to(self, path: str, unit: str) -> float:
        """The parameter at ``path`` in ``unit`` (converted from the file's unit with pint).

        Parameters
        ----------
        path : str
            Dotted path of a parameter (a table with ``value`` and ``unit``).
        unit : str
            Target unit, as pint spells it (``"ms"``, ``"nS"``, ``"1/s"``).

        Returns
        -------
        float

        Raises
        ------
        InputError
            Unknown path, a setting without unit, or a unit of another dimension.
        """
        node = self._node(path)
        if not is_param(node):
            raise InputError(path, "is a setting, not a parameter with a unit")
        return convert(path, node["value"], node["unit"], unit)

    def si(self, path: str) -> float:
        """The parameter at ``path`` in coherent SI base units (s, V, S, F, A, ...).

        Parameters
        ----------
        path : str
            Dotted path of a parameter.

        Returns
        -------
        float

        Raises
        ------
        InputError
            Unknown path, or a setting without unit.
        """
        node = self._node(path)
        if not is_param(node):
            raise InputError(path, "is a setting, not a parameter with a unit")
        return convert(path, node["value"], node["unit"])

    def meta(self, path: str) -> dict:
        """The unit and source (provenance) of the parameter at ``path``.

        Parameters
        ----------
        path : str
            Dotted path of a parameter.

        Returns
        -------
        dict
            ``unit``, ``source``.

        Raises
        ------
        InputError
            Unknown path, or a setting (no unit and source).
        """
        node = self._node(path)
        if not is_param(node):
            raise InputError(path, "is a setting, not a parameter with unit and source")
        return {"unit": node["unit"], "source": node["source"]}

    def set(self, path: str, value) -> None:
        """Override the value at ``path`` after checking it (see :func:`check_override`).

        Parameters
        ----------
        path : str
            Dotted path of a parameter or setting (not a table).
        value : object
            The new value: a number in the file's unit, ``{ value = ..., unit = "..." }``
            (converted to the file's unit), or a setting of the setting's type.

        Raises
        ------
        InputError
            Unknown path, wrong type, wrong unit dimension or a value out of range.
        """
        parent_path, _, leaf = path.rpartition(".")
        parent = self._node(parent_path) if parent_path else self
        if not isinstance(parent, dict) or leaf not in parent or is_param(parent):
            raise InputError(
                path,
                "no such parameter to override",
                sorted(parent) if isinstance(parent, dict) else None,
            )
        node = parent[leaf]
        if is_param(node):
            node["value"] = check_override(path, node, value)
        elif isinstance(node, dict):
            raise InputError(
                path, "is a table, not a parameter: give a dotted path to one of", sorted(node)
            )
        else:
            parent[leaf] = check_override(path, {"value": node}, value)

    def values(self) -> dict:  # type: ignore[override]
        def strip(node):
            if is_param(node):
                return node["value"]
            if isinstance(node, dict):
                return {k: strip(v) for k, v in node.items()}
            return node

        return strip(dict(self))

    def sub(self, path: str) -> ParamTree:
        """The table at ``path`` as a tree of its own (a deep copy), named ``<name>.<path>``.

        Parameters
        ----------
        path : str
            Dotted path of a table.

        Returns
        -------
        ParamTree

        Raises
        ------
        InputError
            Unknown path.
        """
        node = self._node(path)
        t = ParamTree(copy.deepcopy(node))
        t.name = f"{self.name}.{path}" if self.name else path
        return t


def load_model(name_or_path) -> ParamTree:
    """Load ``models/<name>.toml`` (or an explicit path) as a validated ParamTree, in the units
    of the shipped files (:func:`conform_units`).

    Parameters
    ----------
    name_or_path : str or Path
        A model name (``circuit``, ``cells``, ``coupling``...; from the active model folder,
        :func:`models_dir`) or a path to a TOML file.

    Returns
    -------
    ParamTree

    Raises
    ------
    InputError
        Missing or malformed file, a parameter without ``value``/``unit``/``source``, or a
        unit that does not convert to the shipped file's (the field names file and key).
    """
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = models_dir() / f"{name_or_path}.toml"
        if not p.is_file():
            avail = sorted(x.stem for x in models_dir().glob("*.toml"))
            raise InputError("model", f"unknown model file {name_or_path!r}", avail)
    raw = read_toml(p, field=f"model {p.name}")
    _check_tree(raw, "", str(p))
    return ParamTree.from_dict(conform_units(raw, p.stem, str(p)), name=p.stem)
