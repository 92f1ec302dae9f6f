"""The E-field at the target: %RMT calibration, macroscopic vs cell-level field, imported samples.

Two field quantities are kept apart (docs/coupling.md):

* the **macroscopic** field (V/m), what a head model (SimNIBS) reports at millimetre scale and
  what a %-of-resting-motor-threshold (%RMT) intensity maps to:
  ``E_macro = pct_rmt / 100 * field.rmt_macroscopic_vpm`` (50-70 V/m at RMT: Weise et al.
  2025 Brain Stimul);
* the **cell-level** field acting on the neuron model, ``E_cell = field.micro_scale_factor *
  E_macro``: compartmental models need 175-350 V/m at RMT (Weise et al. 2025), a gap they
  attribute in part to microscopic field distortion and bridge with one scaling factor.

Thresholds and recruitment in :mod:`cortexsim.coupling.membrane` take the cell-level field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .limits import (
    MAX_FIELD_FILE_BYTES,
    MAX_FIELD_SAMPLES,
    check_count,
    check_limit,
    checked_param,
    finite_nonneg_array,
    limit,
    params_or_default,
)
from .limits import (
    angle_deg as _check_angle,
)


def _factors(params) -> tuple[float, float]:
    p = params_or_default(params)
    e_rmt = float(checked_param(p, "field.rmt_macroscopic_vpm", positive=True))
    k = float(checked_param(p, "field.micro_scale_factor", positive=True))
    return e_rmt, k


def _nonneg(field: str, x, limit_name: str, params=None):
    """``x`` (number or array) checked against ``[limits].limit_name``."""
    return finite_nonneg_array(field, x, limit_name, params)


def macroscopic_field_vpm(pct_rmt, params=None):
    """Macroscopic cortical field (V/m) at ``pct_rmt`` % of resting motor threshold.

    Parameters
    ----------
    pct_rmt : float or array_like
        Intensity (% of resting motor threshold, within ``[limits] pct_rmt``).
    params : ParamTree or dict, optional
        Coupling parameters (``[field]``: field at 100 % RMT).

    Returns
    -------
    float or ndarray
        Field (V/m), same shape as ``pct_rmt``.

    Raises
    ------
    InputError
        An intensity out of its limits or a bad ``[field]`` parameter.
    """
    pct = _nonneg("pct_rmt", pct_rmt, "pct_rmt", params)
    e_rmt, _ = _factors(params)
    return pct / 100.0 * e_rmt


def cell_field_vpm(pct_rmt, params=None):
    """Field acting on the neuron models (V/m) at ``pct_rmt`` % RMT (macroscopic x scale).

    Parameters
    ----------
    pct_rmt : float or array_like
        Intensity (% RMT).
    params : ParamTree or dict, optional
        Coupling parameters (``[field]``).

    Returns
    -------
    float or ndarray
        Cell-level field (V/m).

    Raises
    ------
    InputError
        An intensity out of its limits or a bad ``[field]`` parameter.
    """
    pct = _nonneg("pct_rmt", pct_rmt, "pct_rmt", params)
    e_rmt, k = _factors(params)
    return k * pct / 100.0 * e_rmt


def pct_rmt_from_cell_field(field_vpm, params=None):
    """Inverse of :func:`cell_field_vpm`.

    Parameters
    ----------
    field_vpm : float or array_like
        Cell-level field (V/m).
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float or ndarray
        Intensity (% RMT).

    Raises
    ------
    InputError
        A field out of its limits.
    """
    e = _nonneg("field_vpm", field_vpm, "field_vpm", params)
    e_rmt, k = _factors(params)
    return 100.0 * e / (k * e_rmt)


def pct_rmt_from_macroscopic(field_vpm, params=None):
    """Inverse of :func:`macroscopic_field_vpm`.

    Parameters
    ----------
    field_vpm : float or array_like
        Macroscopic field (V/m).
    params : ParamTree or dict, optional
        Coupling parameters.

    Returns
    -------
    float or ndarray
        Intensity (% RMT).

    Raises
    ------
    InputError
        A field out of its limits.
    """
    e = _nonneg("field_vpm", field_vpm, "field_vpm", params)
    e_rmt, _ = _factors(params)
    return 100.0 * e / e_rmt


def macroscopic_to_cell_vpm(field_vpm, params=None):
    """Cell-level field for a macroscopic (head-model) field, e.g. imported SimNIBS samples.

    Parameters
    ----------
    field_vpm : float or array_like
        Macroscopic field (V/m).
    params : ParamTree or dict, optional
        Coupling parameters (``[field]`` scale).

    Returns
    -------
    float or ndarray
        Cell-level field (V/m).

    Raises
    ------
    InputError
        A field out of its limits.
    """
    e = _nonneg("field_vpm", field_vpm, "field_vpm", params)
    _, k = _factors(params)
    return k * e


@dataclass(frozen=True)
class FieldSamples:
    """Imported field samples: positions (mm), E vectors (V/m, macroscopic), per-point magnitude
    (V/m) and angle (deg, 0-180) between E and the cortical normal.

    Attributes
    ----------
    positions_mm : ndarray (n, 3)
        Sample positions (mm).
    e_vpm : ndarray (n, 3)
        Field vectors (V/m, macroscopic).
    magnitude_vpm : ndarray (n,)
        |E| (V/m).
    angle_deg : ndarray (n,)
        Angle between E and the cortical normal (deg, 0-180).
    """

    positions_mm: np.ndarray  # (n, 3)
    e_vpm: np.ndarray         # (n, 3)
    magnitude_vpm: np.ndarray  # (n,)
    angle_deg: np.ndarray     # (n,)


COLUMNS = ("x", "y", "z", "Ex", "Ey", "Ez")


def _read_table(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:  # memory-mapped: the shape is checked before anything is read
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise InputError("field_file", f"cannot read {path}: {exc}") from None
        check_count("field_file", int(arr.shape[0]) if arr.ndim else 1, MAX_FIELD_SAMPLES,
                    "sample rows")
        if arr.dtype.names:
            missing = [c for c in COLUMNS if c not in arr.dtype.names]
            if missing:
                raise InputError("field_file", f"{path.name} lacks fields {missing}", COLUMNS)
            return np.column_stack([np.asarray(arr[c], dtype=float) for c in COLUMNS])
        arr = np.asarray(arr, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != 6:
            raise InputError("field_file", f"{path.name}: expected an (n, 6) array "
                             f"x,y,z,Ex,Ey,Ez, got shape {arr.shape}", COLUMNS)
        return arr
    if path.suffix.lower() in (".csv", ".txt"):
        with path.open() as fh:
            header = fh.readline().strip()
        names = [h.strip().strip('"') for h in header.split(",")]
        lower = {n.lower(): i for i, n in enumerate(names)}
        missing = [c for c in COLUMNS if c.lower() not in lower]
        if missing:
            raise InputError("field_file", f"{path.name}: header lacks columns {missing} "
                             f"(found {names})", COLUMNS)
        try:
            data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except ValueError as exc:
            raise InputError("field_file", f"{path.name}: non-numeric data ({exc})") from None
        if data.shape[1] != len(names):
            raise InputError("field_file", f"{path.name}: rows have {data.shape[1]} values, "
                             f"header has {len(names)}")
        return data[:, [lower[c.lower()] for c in COLUMNS]]
    raise InputError("field_file", f"unsupported file type {path.suffix!r}", [".csv", ".npy"])


def load_field_samples(path, normal=(0.0, 0.0, 1.0)) -> FieldSamples:
    """Read field samples (CSV with header x,y,z,Ex,Ey,Ez or NPY (n,6)/structured), positions
    in mm and E in V/m as exported from SimNIBS, and return magnitudes and the angle between E
    and the cortical ``normal`` (one 3-vector, or one per point).

    The file holds at most :data:`~cortexsim.coupling.limits.MAX_FIELD_FILE_BYTES` bytes and
    :data:`~cortexsim.coupling.limits.MAX_FIELD_SAMPLES` rows, every value finite and every
    |E| within ``[limits] field_vpm``; otherwise :class:`InputError` naming ``field_file``.

    Parameters
    ----------
    path : str or Path
        CSV or NPY file.
    normal : array_like (3,) or (n, 3)
        Cortical normal (need not be unit length).

    Returns
    -------
    FieldSamples

    Raises
    ------
    InputError
        Missing, malformed or too large file, non-finite values, a field out of its limits
        (field ``field_file``), or a malformed or zero normal (field ``normal``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("field_file", f"file not found: {path}")
    check_count("field_file", path.stat().st_size, MAX_FIELD_FILE_BYTES, "bytes")
    data = _read_table(path)
    if data.shape[0] == 0:
        raise InputError("field_file", f"{path.name} holds no samples")
    check_count("field_file", data.shape[0], MAX_FIELD_SAMPLES, "sample rows")
    if not np.all(np.isfinite(data)):
        raise InputError("field_file", f"{path.name} holds NaN or infinite values")
    pos, e = data[:, :3], data[:, 3:6]
    mag = np.linalg.norm(e, axis=1)
    _, e_max, unit = limit("field_vpm")
    if mag.max() > e_max:  # e.g. a file in mV/m
        raise InputError("field_file", f"{path.name}: |E| up to {mag.max():g} {unit}",
                         f"|E| <= {e_max:g} {unit} ([limits] field_vpm)")
    nrm = np.asarray(normal, dtype=float)
    if nrm.shape not in ((3,), (len(e), 3)):
        raise InputError("normal", f"expected a 3-vector or ({len(e)}, 3), got shape {nrm.shape}")
    nlen = np.linalg.norm(nrm, axis=-1)
    if np.any(nlen == 0) or not np.all(np.isfinite(nlen)):
        raise InputError("normal", "normal vectors must be finite and non-zero")
    nrm = nrm / nlen[..., None] if nrm.ndim == 2 else nrm / nlen
    dots = np.sum(e * nrm, axis=1) if nrm.ndim == 2 else e @ nrm
    with np.errstate(invalid="ignore", divide="ignore"):
        cosang = np.where(mag > 0, dots / np.where(mag > 0, mag, 1.0), 1.0)
    ang = np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
    return FieldSamples(positions_mm=pos, e_vpm=e, magnitude_vpm=mag, angle_deg=ang)


def field_at_target(peak_vpm: float, angle_deg: float = 0.0) -> dict:
    """A uniform field at the target: peak cell-level E (V/m) and its direction relative to the
    somato-dendritic axis (deg), each within its ``[limits]``.

    Parameters
    ----------
    peak_vpm : float
        Peak cell-level field (V/m).
    angle_deg : float
        Direction re the somato-dendritic axis (deg).

    Returns
    -------
    dict
        ``{"field_vpm", "angle_deg", "cos_angle"}``.

    Raises
    ------
    InputError
        Either value outside its ``[limits]``.
    """
    e = float(check_limit("field_vpm", peak_vpm))
    a = _check_angle(angle_deg)
    return {"field_vpm": e, "angle_deg": a, "cos_angle": math.cos(math.radians(a))}
