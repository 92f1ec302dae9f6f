"""What every spec (experiment, protocol, sweep) shares: pydantic v2 models with strict types
and no unknown keys, their errors as one :class:`~cortexsim.errors.InputError` naming the field
and the allowed values, and one merge rule for a spec that starts from another (``extends``,
``[settings.by_scale.<scale>]``, a protocol's ``base``).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys are errors; a boolean is not a number and a
    numeric string is not a number (pydantic strict mode; an int is accepted for a float);
    NaN and infinities are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def merge_tables(base: dict, over: dict) -> dict:
    """``over`` laid over ``base``: tables merge key by key (recursively); everything else
    (lists such as a timeline or criteria, plain values, a parameter given as
    ``{value, unit, source}``) replaces.  Neither input is changed.

    Parameters
    ----------
    base, over : dict
        Tables.

    Returns
    -------
    dict
    """
    out = copy.deepcopy(base)
    for k, v in over.items():
        table = isinstance(v, dict) and "value" not in v  # a parameter {value, unit, ...}
        out[k] = (
            merge_tables(out[k], v) if table and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )  # ... replaces as a whole
    return out


def _annotation_at(model, loc) -> tuple[Any, str]:
    """Walk ``loc`` through the model's annotations: (type at the end, location as text).
    Union branch tags that pydantic adds to ``loc`` end the walk."""
    tp, text = model, ""
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
            text += f".{part}" if text else str(part)
        elif origin is dict and isinstance(part, str):
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
            text += f".{part}"
        elif origin is list and isinstance(part, int):
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else Any
            text += f"[{part}]"
        else:
            if isinstance(tp, type) and issubclass(tp, BaseModel):  # an unknown key
                text += f".{part}" if text else str(part)
            break
    return tp, text


def _unwrap(tp):
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    args = typing.get_args(tp)
    if (
        typing.get_origin(tp) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    ):
        tp = _unwrap(next(a for a in args if a is not type(None)))
    return tp


def _literal_values(tp) -> list:
    tp = _unwrap(tp)
    if typing.get_origin(tp) is list:
        return _literal_values(typing.get_args(tp)[0])
    if typing.get_origin(tp) is Literal:
        return list(typing.get_args(tp))
    return []


def input_error(exc: ValidationError, model, prefix: str = "") -> InputError:
    """The first pydantic error as one :class:`InputError` naming the field (dotted, with list
    indices) and what is allowed.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error.
    model : type
        The pydantic model validated.
    prefix : str
        Dotted prefix of the field names (``settings.``).

    Returns
    -------
    InputError
    """
    e = exc.errors(include_url=False)[0]
    loc = e["loc"]
    parent_tp, parent = _annotation_at(model, loc[:-1])
    tp, field = _annotation_at(model, loc)
    field = prefix + field if field else prefix.rstrip(".")  # a check of the whole table
    kind, ctx, given = e["type"], e.get("ctx") or {}, e.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), InputError):
        inner = ctx["error"]
        return InputError(field, inner.message, inner.allowed)
    if kind == "value_error":  # a model's own check (``raise ValueError(...)``)
        return InputError(field, e["msg"].removeprefix("Value error, "))
    if kind == "extra_forbidden":
        allowed = (
            list(parent_tp.model_fields)
            if isinstance(parent_tp, type) and issubclass(parent_tp, BaseModel)
            else None
        )
        return InputError(field, "unknown key", allowed)
    if kind == "missing":
        return InputError(field, "missing (required)")
    if kind == "literal_error":
        return InputError(
            field, f"unknown value {given!r}", _literal_values(tp) or ctx.get("expected")
        )
    if kind in ("float_type", "int_type", "float_parsing", "int_parsing", "int_from_float"):
        what = "an integer" if kind.startswith("int") else "a number"
        return InputError(field, f"expected {what}, got {given!r}")
    if kind == "finite_number":
        return InputError(field, f"must be a finite number, got {given!r}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        meta = _bounds(_field_info(parent_tp, loc[-1]))
        lo = next(
            (("(", m.gt) for m in meta if getattr(m, "gt", None) is not None),
            next((("[", m.ge) for m in meta if getattr(m, "ge", None) is not None), ("(", "-inf")),
        )
        hi = next((m.le for m in meta if getattr(m, "le", None) is not None), "inf")
        op = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return InputError(field, f"must be {op} {bound}, got {given!r}", f"{lo[0]}{lo[1]}, {hi}]")
    if kind == "bool_type":
        return InputError(field, f"expected true or false, got {given!r}")
    if kind in ("string_type", "list_type", "dict_type", "model_type"):
        what = {
            "string_type": "a string",
            "list_type": "a list",
            "dict_type": "a table",
            "model_type": "a table",
        }[kind]
        return InputError(field, f"expected {what}, got {given!r}")
    if kind == "too_short":
        return InputError(field, "must not be empty")
    return InputError(field, e["msg"])


def _bounds(info) -> list:
    """Range metadata (gt/ge/le) of a field, also inside ``Annotated[...] | None``."""
    if info is None:
        return []
    meta = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        if typing.get_origin(arg) is Annotated:
            for m in typing.get_args(arg)[1:]:
                meta.extend(getattr(m, "metadata", [m]))
    return meta


def _field_info(model, name):
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_fields.get(name)
    return None


def validate(model, data, prefix: str = ""):
    """``model.model_validate(data)`` with errors as one InputError.

    Parameters
    ----------
    model : type
        A pydantic model.
    data : dict
        What to validate.
    prefix : str
        Dotted prefix of the field names in errors.

    Returns
    -------
    pydantic.BaseModel
        The validated model.

    Raises
    ------
    InputError
        The first validation error (see :func:`input_error`).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, model, prefix) from None


def shipped_specs(kind: str | None = None) -> list[str]:
    """Names of the shipped specs (``experiments/*.toml``), sorted.

    Parameters
    ----------
    kind : str, optional
        Only specs with this top-level table (``"experiment"``, ``"sweep"``, ``"fit"``,
        ``"sensitivity"``).

    Returns
    -------
    list of str
    """
    import tomllib

    from .params import experiments_dir

    files = sorted(experiments_dir().glob("*.toml"))
    if kind is not None:
        files = [f for f in files if kind in tomllib.loads(f.read_text())]
    return [f.stem for f in files]


def spec_path(path, field: str = "spec", kind: str | None = "experiment"):
    """The file of a spec given as a path or as the name of a shipped spec (``tiny``).

    A path that is a file is itself; a name without a suffix is looked up among the shipped
    specs.  Anything else that is not a file is an error listing the shipped names.

    Parameters
    ----------
    path : str or Path
        What the user gave.
    field : str
        Name for the error message.
    kind : str, optional
        The kind of spec expected (lists only the shipped specs of that kind).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        No such file and no shipped spec of that name (the message lists the shipped names).
    """
    from pathlib import Path

    from .params import experiments_dir

    p = Path(path)
    if p.is_file():
        return p
    if not p.suffix and len(p.parts) == 1 and (experiments_dir() / f"{p}.toml").is_file():
        return experiments_dir() / f"{p}.toml"
    raise InputError(
        field,
        f"no such file, nor a shipped spec of that name: {str(path)!r}",
        ["a path to a TOML spec", *shipped_specs(kind)],
    )


def read_extending(path, read_one, kind: str = "spec", _seen=()) -> dict:
    """A spec file merged over the file it ``extends`` (a path relative to it), recursively,
    with :func:`merge_tables`: the one ``extends`` rule of experiment and fit specs.

    Parameters
    ----------
    path : str or Path
        The spec file.
    read_one : callable
        ``read_one(path) -> dict``: reads and normalises one file (not following ``extends``).
    kind : str
        What the file is, for messages (``"spec"``, ``"fit spec"``).

    Returns
    -------
    dict

    Raises
    ------
    InputError
        ``extends`` not a string, missing or circular (field ``<path>: extends``); whatever
        ``read_one`` raises.
    """
    from pathlib import Path

    p = Path(path)
    raw = read_one(p)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise InputError(f"{p}: extends", f"must be the path of another {kind} (TOML)")
    bp = (p.parent / base).resolve()
    if bp == p.resolve() or bp in _seen:
        raise InputError(f"{p}: extends", f"circular: {bp} extends itself")
    if not bp.is_file():
        raise InputError(f"{p}: extends", f"file not found: {bp}")
    return merge_tables(read_extending(bp, read_one, kind, _seen + (p.resolve(),)), raw)
