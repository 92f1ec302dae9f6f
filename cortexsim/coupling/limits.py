"""Coupling parameters and the allowed ranges of everything a user gives the coupling module.

Every number a user can give (a CLI flag, a Python argument, a spec field, an override of a
coupling parameter) is checked here, up front, before any array is allocated, and a bad one
raises :class:`~cortexsim.errors.InputError` naming the field and the allowed range.

Where the ranges live:

* **physical ranges** in ``models/coupling.toml``: the ``range = [lo, hi]`` of a parameter
  (e.g. ``waveforms.rectangular_width_us`` bounds the width of a rectangular pulse, whether it is
  the file's default or a ``--pulse-width-us`` given by the user), and the table ``[limits]``
  for inputs that are not model parameters (field direction, field strength, %RMT, the duration
  of a user-sampled pulse);
* **numerical limits** (sizes of the arrays the module may allocate) as the constants below.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import InputError, check_number
from ..params import ParamTree, load_model

#: Most samples of a sampled pulse plus the tail over which the membrane response is followed.
#: The default pulses need ~1,300-2,300; the widest allowed pulse on the finest allowed grid
#: ~70,000.  One response then takes well under a second (FFT convolution) and a few MB.
MAX_RESPONSE_SAMPLES = 200_000
#: Most samples in a user-supplied pulse (:func:`~cortexsim.coupling.from_samples`), before
#: resampling (a measured pulse at 10-100 MS/s over 1 ms has 10^4-10^5).
MAX_USER_SAMPLES = 1_000_000
#: Most terminal draws (cells x ``n_terminals``) in one call of
#: :func:`~cortexsim.coupling.sample_thresholds` (~1 s, ~200 MB); the largest circuit (50,000
#: neurons, 4 terminals each) draws 200,000.
MAX_TERMINAL_DRAWS = 1_000_000
#: Most field values in one call of recruitment/polarisation.
MAX_FIELD_VALUES = 100_000
#: Most (distinct field value x orientation-quadrature node) evaluations in one recruitment
#: call (~1-2 s): ~6,500 distinct fields on the default 96 x 48 quadrature.  Evaluated in chunks
#: of :data:`FIELD_CHUNK` fields (memory: chunk x nodes).
MAX_RECRUITMENT_EVALS = 30_000_000
FIELD_CHUNK = 256
#: Imported field-sample files (SimNIBS exports): most bytes read and most sample rows.
MAX_FIELD_FILE_BYTES = 512 * 2**20
MAX_FIELD_SAMPLES = 5_000_000
#: Numerical cable solver (validation): most compartments and most time steps.
MAX_CABLE_NODES = 20_000
MAX_CABLE_STEPS = 500_000
#: Most pulse widths in one strength-duration curve (each costs one threshold; with the cable
#: solver about a tenth of a second each).
MAX_SD_WIDTHS = 200


@lru_cache(maxsize=1)
def default_params() -> ParamTree:
    """``models/coupling.toml`` (loaded once)."""
    return load_model("coupling")


def params_or_default(params) -> ParamTree | dict:
    """``params`` (a ParamTree or nested dict of the coupling parameters) or the default file.

    Parameters
    ----------
    params : ParamTree, dict or None
        Coupling parameters, or None for ``models/coupling.toml``.

    Returns
    -------
    ParamTree or dict

    Raises
    ------
    InputError
        ``params`` is neither None nor a dict.
    """
    if params is None:
        return default_params()
    if not isinstance(params, dict):
        raise InputError("params", f"expected a ParamTree or dict, got {type(params).__name__}")
    return params


def _node(params, path: str):
    node = params
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise InputError(path, "no such parameter in the coupling parameters")
        node = node[part]
    return node


def param_value(params, path: str):
    """Value of a dotted path in a ParamTree or a plain nested dict (of values or leaves).

    Parameters
    ----------
    params : ParamTree or dict
        Coupling parameters.
    path : str
        Dotted path (``cells.PT_L5.lambda_um``).

    Returns
    -------
    object
        The value (a leaf's ``value``, or the plain value).

    Raises
    ------
    InputError
        No such path (the field is ``path``).
    """
    node = _node(params, path)
    if isinstance(node, dict) and "value" in node:
        return node["value"]
    return node


def _fmt_range(lo: float, hi: float, unit: str | None) -> str:
    u = "" if unit in (None, "", "1") else f" {unit}"
    return f"{lo:g} to {hi:g}{u}"


def check_in_range(field: str, value, lo: float, hi: float, unit: str | None = None, *,
                   integer: bool = False, where: str = ""):
    """``value`` as a number if it is one (not a bool, not a string), finite and in
    ``[lo, hi]``; otherwise :class:`InputError` naming ``field`` and the range.

    Parameters
    ----------
    field : str
        Name for the error message.
    value : object
        What the user gave.
    lo, hi : float
        Allowed closed range.
    unit : str, optional
        Unit shown in the message.
    integer : bool
        Require a whole number.
    where : str
        Extra context for the message.

    Returns
    -------
    float or int

    Raises
    ------
    InputError
        Not a number (a bool or string is not), not finite, not whole with ``integer`` or outside
        ``[lo, hi]``.
    """
    allowed = _fmt_range(lo, hi, unit) + (f" ({where})" if where else "")
    try:
        v = check_number(field, value, integer=integer)
    except InputError as exc:
        raise InputError(field, exc.message, allowed) from None
    if not lo <= v <= hi:
        raise InputError(field, f"out of range: {value!r}", allowed)
    return v


def param_range(params, path: str) -> tuple[float, float, str | None] | None:
    """``(lo, hi, unit)`` from the ``range`` of the parameter at ``path``, or ``None`` where the
    parameters give none (a plain dict of values).

    Parameters
    ----------
    params : ParamTree or dict
        Coupling parameters.
    path : str
        Dotted path of a parameter.

    Returns
    -------
    tuple or None
        ``(lo, hi, unit)``.

    Raises
    ------
    InputError
        No such path, or a malformed ``range``.
    """
    node = _node(params, path)
    if isinstance(node, dict) and "range" in node:
        lo, hi = node["range"]
        return float(lo), float(hi), node.get("unit")
    return None


def checked_param(params, path: str, *, integer: bool = False, positive: bool = False):
    """The parameter at ``path``, checked to be a number within its ``range`` (where the
    parameters give one; else only finite, and > 0 with ``positive``).

    Parameters
    ----------
    params : ParamTree or dict
        Coupling parameters.
    path : str
        Dotted path of a parameter.
    integer : bool
        Require a whole number.
    positive : bool
        Require > 0 where no range is given.

    Returns
    -------
    float or int

    Raises
    ------
    InputError
        Naming ``path``: missing, not a number, or out of range.
    """
    value = param_value(params, path)
    rng = param_range(params, path)
    if rng is not None:
        return check_in_range(path, value, *rng, integer=integer)
    return check_number(path, value, integer=integer, min=0.0 if positive else None,
                        strict_min=positive)


def limit(name: str, params=None) -> tuple[float, float, str | None]:
    """``(lo, hi, unit)`` of the user input ``name`` from the ``[limits]`` table.

    Parameters
    ----------
    name : str
        Key of ``[limits]`` (``angle_deg``, ``field_vpm``, ``pct_rmt``...).
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    tuple
        ``(lo, hi, unit)``.

    Raises
    ------
    InputError
        No such limit, or a malformed one.
    """
    p = params_or_default(params)
    try:
        node = _node(p, f"limits.{name}")
    except InputError:  # a parameter set without [limits]: the file's
        node = _node(default_params(), f"limits.{name}")
    value = node["value"] if isinstance(node, dict) and "value" in node else node
    unit = node.get("unit") if isinstance(node, dict) else None
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
          and value[0] <= value[1])
    if not ok:
        raise InputError(f"limits.{name}", f"expected [low, high], got {value!r}")
    return float(value[0]), float(value[1]), unit


def check_limit(name: str, value, params=None, field: str | None = None):
    """``value`` checked against ``[limits].name`` (InputError naming ``field`` or ``name``).

    Parameters
    ----------
    name : str
        Key of ``[limits]``.
    value : object
        What the user gave.
    params : ParamTree or dict, optional
        Coupling parameters.
    field : str, optional
        Name in the error message (default ``name``).

    Returns
    -------
    float

    Raises
    ------
    InputError
        Not a finite number within the limits.
    """
    return check_in_range(field or name, value, *limit(name, params))


def check_count(field: str, n: int, most: int, why: str) -> None:
    """InputError naming ``field`` if ``n`` exceeds the numerical limit ``most``.

    Parameters
    ----------
    field : str
        The user input that sets the size.
    n : int
        Size asked for.
    most : int
        Largest allowed size.
    why : str
        What is counted (for the message).

    Raises
    ------
    InputError
        ``n > most``.
    """
    if n > most:
        raise InputError(field, f"needs {n:,} {why}, more than the {most:,} allowed",
                         f"at most {most:,}")


def angle_deg(value, params=None) -> float:
    """A field direction (deg, re the somato-dendritic axis) checked against its limits.

    Parameters
    ----------
    value : float
        Direction (deg).
    params : ParamTree or dict, optional
        Coupling parameters (``[limits] angle_deg``).

    Returns
    -------
    float

    Raises
    ------
    InputError
        Not a finite number within the limits (field ``angle_deg``).
    """
    return float(check_limit("angle_deg", value, params))


def finite_nonneg_array(field: str, value, limit_name: str, params=None):
    """``value`` (scalar or array-like of numbers) as float / float array, every element finite
    and within ``[limits].limit_name``, at most :data:`MAX_FIELD_VALUES` of them.

    Parameters
    ----------
    field : str
        Name for the error message.
    value : float or array_like
        Numbers to check.
    limit_name : str
        Key of ``[limits]`` giving the allowed range.
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float or ndarray
        Same shape as ``value``.

    Raises
    ------
    InputError
        Non-numeric, non-finite or out-of-range elements, or too many of them.
    """
    import numpy as np
    lo, hi, unit = limit(limit_name, params)
    allowed = _fmt_range(lo, hi, unit)
    if isinstance(value, (bool, str, bytes)):
        raise InputError(field, f"expected a number, got {value!r}", allowed)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise InputError(field, "expected a number or an array of numbers", allowed) from None
    if arr.dtype.kind not in "iuf":
        raise InputError(field, f"expected numbers, got {arr.dtype} values", allowed)
    check_count(field, int(arr.size), MAX_FIELD_VALUES, "values")
    arr = arr.astype(float)
    if arr.size and not np.all(np.isfinite(arr)):
        raise InputError(field, "must be finite numbers (no NaN or inf)", allowed)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr[(arr < lo) | (arr > hi)].flat[0]
        raise InputError(field, f"out of range: {bad!r}", allowed)
    return float(arr) if arr.ndim == 0 else arr

