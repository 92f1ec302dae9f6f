"""Counter-based random numbers shared by the numba kernels and their numpy reference.

A draw is a pure function of ``(seed, stream, step, site)``: no generator state, so the
numba kernel (any thread count, any block split) and the vectorised numpy reference produce
the same numbers bit for bit, and a run is reproducible from its seed alone.

Construction (splitmix64, Steele et al. 2014 OOPSLA "Fast splittable pseudorandom number
generators"): a per-(seed, stream, step) key is made by two splitmix64 finalisers; the draw
for a site is ``mix64(key + (site + 1) * GOLDEN)``, i.e. element ``site`` of the splitmix64
sequence started at that key.  Keys are computed once per call in numpy (``step_keys``), so the
per-draw cost in the kernel is one ``mix64``.

The exponential variate ``-ln(u)`` is computed by ``neg_log`` from ``frexp`` and a fixed
polynomial (atanh series) with only +, -, *, /, which IEEE-754 rounds identically in numpy and
numba.  ``np.log`` and libm ``log`` differ in the last bit for ~0.3 % of arguments on this
machine (measured), which would break exact numba == numpy agreement.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
TWO_M53 = 2.0 ** -53

# streams (distinct key families)
STREAM_INIT = 1      # residual hazard drawn at the start of a call
STREAM_NEXT = 2      # residual hazard redrawn after an event
STREAM_FATE = 3      # fate of a nascent spine (stabilise vs eliminate)

_LN2 = math.log(2.0)
_SQRT_HALF = math.sqrt(0.5)
_C3 = 1.0 / 3.0
_C5 = 1.0 / 5.0
_C7 = 1.0 / 7.0
_C9 = 1.0 / 9.0
_C11 = 1.0 / 11.0
_C13 = 1.0 / 13.0
_C15 = 1.0 / 15.0


def _mix64_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M2
    z = (z ^ (z >> _S27)) * _M3
    return z ^ (z >> _S31)


def step_keys(seed: int, stream: int, steps) -> np.ndarray:
    """uint64 key for each absolute step index (array) of one stream."""
    steps = np.atleast_1d(np.asarray(steps, dtype=np.int64)).astype(np.uint64)
    s = np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    st = np.array([int(stream)], dtype=np.uint64)
    base = _mix64_np(s + st * _M3 + GOLDEN)
    return _mix64_np(base ^ _mix64_np(steps * GOLDEN + _M2))


def bits_np(key, sites: np.ndarray) -> np.ndarray:
    """Raw 64-bit draws for ``sites`` (int array) under ``key`` (scalar or array)."""
    return _mix64_np(np.asarray(key, dtype=np.uint64)
                     + (sites.astype(np.uint64) + _ONE) * GOLDEN)


def uniform_open_np(key, sites):
    """Uniform in (0, 1]."""
    return ((bits_np(key, sites) >> _S11) + _ONE).astype(np.float64) * TWO_M53


def uniform_np(key, sites):
    """Uniform in [0, 1)."""
    return (bits_np(key, sites) >> _S11).astype(np.float64) * TWO_M53


def neg_log_np(u: np.ndarray) -> np.ndarray:
    """-ln(u) for u in (0, 1], same arithmetic as :func:`neg_log` (numba)."""
    m, e = np.frexp(u)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    ef = e.astype(np.float64) - np.where(low, 1.0, 0.0)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = s2 * (_C3 + s2 * (_C5 + s2 * (_C7 + s2 * (_C9 + s2 * (_C11 + s2 * (_C13 + s2 * _C15))))))
    lnm = 2.0 * s * (1.0 + p)
    return -(lnm + ef * _LN2)


@njit(inline="always", cache=True)
def mix64(z):
    z = (z ^ (z >> _S30)) * _M2
    z = (z ^ (z >> _S27)) * _M3
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def bits(key, site):
    return mix64(key + (np.uint64(site) + _ONE) * GOLDEN)


@njit(inline="always", cache=True)
def uniform_open(key, site):
    return np.float64((bits(key, site) >> _S11) + _ONE) * TWO_M53


@njit(inline="always", cache=True)
def uniform(key, site):
    return np.float64(bits(key, site) >> _S11) * TWO_M53


@njit(inline="always", cache=True)
def neg_log(u):
    m, e = math.frexp(u)
    ef = np.float64(e)
    if m < _SQRT_HALF:
        m = m * 2.0
        ef = ef - 1.0
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = s2 * (_C3 + s2 * (_C5 + s2 * (_C7 + s2 * (_C9 + s2 * (_C11 + s2 * (_C13 + s2 * _C15))))))
    lnm = 2.0 * s * (1.0 + p)
    return -(lnm + ef * _LN2)
