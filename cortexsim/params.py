"""Parameter files (``models/*.toml``) and dotted-path access.

Convention for a model file: every physiological or physical parameter is an inline table
``name = { value = ..., unit = "...", source = "..." }``.  ``source`` cites a paper and year, or
begins with ``"assumption"`` and says why.  Plain values (strings, booleans, lists of names,
integers such as counts of things) are settings, not parameters, and are allowed as they are.

``load_model("cells")`` reads ``models/cells.toml`` and returns a :class:`ParamTree`, a nested
dict whose parameter leaves keep their metadata.  ``tree.value("IT_L5.tau_m")`` gives the bare
number (in the file's unit), ``tree.meta(path)`` its unit and source, ``tree.values()`` a plain
nested dict of numbers, and ``tree.set(path, v)`` overrides a value (used by specs and sweeps).
"""
from __future__ import annotations

import copy
import importlib.resources
import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

PARAM_KEYS = {"value", "unit", "source"}


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
    """Read a TOML file; missing or malformed files raise one clear InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(field, f"file not found: {path}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(field, f"malformed TOML in {path}: {exc}") from None


def is_param(node) -> bool:
    return isinstance(node, dict) and "value" in node and "unit" in node


def _check_tree(node, path: str, fname: str):
    if isinstance(node, dict):
        if "value" in node:
            missing = PARAM_KEYS - set(node)
            if missing:
                raise InputError(f"{fname}:{path}", f"parameter lacks {sorted(missing)}",
                                 "inline table {value, unit, source}")
            return
        for k, v in node.items():
            _check_tree(v, f"{path}.{k}" if path else k, fname)
    elif isinstance(node, float):
        raise InputError(f"{fname}:{path}", "a bare float is not allowed in a model file",
                         "inline table {value, unit, source}")


class ParamTree(dict):
    """Nested dict of parameters (leaves keep value/unit/source) with dotted-path access."""

    name: str = ""

    @classmethod
    def from_dict(cls, d: dict, name: str = "") -> ParamTree:
        _check_tree(d, "", name or "params")
        t = cls(copy.deepcopy(d))
        t.name = name
        return t

    def _node(self, path: str):
        node: Any = self
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node or is_param(node):
                allowed = sorted(node) if isinstance(node, dict) and not is_param(node) else None
                raise InputError(f"{self.name + ':' if self.name else ''}{path}",
                                 f"no such parameter (at {part!r})", allowed)
            node = node[part]
        return node

    def has(self, path: str) -> bool:
        try:
            self._node(path)
            return True
        except InputError:
            return False

    def value(self, path: str):
        node = self._node(path)
        return node["value"] if is_param(node) else node

    def meta(self, path: str) -> dict:
        node = self._node(path)
        if not is_param(node):
            raise InputError(path, "is a setting, not a parameter with unit and source")
        return {"unit": node["unit"], "source": node["source"]}

    def set(self, path: str, value) -> None:
        parent_path, _, leaf = path.rpartition(".")
        parent = self._node(parent_path) if parent_path else self
        if not isinstance(parent, dict) or leaf not in parent:
            raise InputError(path, "no such parameter to override",
                             sorted(parent) if isinstance(parent, dict) else None)
        if is_param(parent[leaf]):
            old = parent[leaf]["value"]
            old_is_number = isinstance(old, (int, float)) and not isinstance(old, bool)
            new_is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if old_is_number and not new_is_number:
                raise InputError(path, f"expected a number, got {value!r}")
            parent[leaf]["value"] = value
        else:
            parent[leaf] = value

    def values(self) -> dict:  # type: ignore[override]
        def strip(node):
            if is_param(node):
                return node["value"]
            if isinstance(node, dict):
                return {k: strip(v) for k, v in node.items()}
            return node
        return strip(dict(self))

    def sub(self, path: str) -> ParamTree:
        node = self._node(path)
        t = ParamTree(copy.deepcopy(node))
        t.name = f"{self.name}.{path}" if self.name else path
        return t


def load_model(name_or_path) -> ParamTree:
    """Load ``models/<name>.toml`` (or an explicit path) as a validated ParamTree."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = models_dir() / f"{name_or_path}.toml"
        if not p.is_file():
            avail = sorted(x.stem for x in models_dir().glob("*.toml"))
            raise InputError("model", f"unknown model file {name_or_path!r}", avail)
    return ParamTree.from_dict(read_toml(p, field=f"model {p.name}"), name=p.stem)
