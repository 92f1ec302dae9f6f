"""Counter-based random numbers for Brian2 (identical in C++ and numpy, seedable per run).

Brian2's standalone binary compiles its RNG seed in, so a compiled network re-run with
``run_args`` would replay the same noise every time.  Background input therefore draws its
random numbers from a hash of (seed, neuron index, time step) -- splitmix64 -- which makes each
run's noise a function of a per-run seed variable that ``run_args`` can change, and makes the
stream independent of threads and code-generation target.
"""
from __future__ import annotations

import numpy as np
from brian2 import check_units, implementation

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)

_CPP = r"""
static inline unsigned long long _cs_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double _cs_uniform(long long seed, long long i, long long step, long long stream) {
    unsigned long long z = (unsigned long long)seed * 0x9E3779B97F4A7C15ULL;
    z = _cs_mix64(z + (unsigned long long)i);
    z = _cs_mix64(z + (unsigned long long)step);
    z = _cs_mix64(z + (unsigned long long)stream);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
static inline int hash_poisson(double lam, long long i, long long step, long long seed, long long stream) {
    if (lam <= 0.0) return 0;
    const double u = _cs_uniform(seed, i, step, stream);
    double p = exp(-lam);
    double c = p;
    int k = 0;
    while (u > c && k < 1000) { k += 1; p *= lam / k; c += p; }
    return k;
}
"""

_CPP_U = _CPP.split("static inline int hash_poisson")[0].replace("_cs_", "_csu_") + r"""
static inline double hash_uniform(long long i, long long step, long long seed, long long stream) {
    return _csu_uniform(seed, i, step, stream);
}
"""


def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _M2
    z = (z ^ (z >> np.uint64(27))) * _M3
    return z ^ (z >> np.uint64(31))


def uniform_np(seed, i, step, stream):
    """numpy twin of the C++ ``_cs_uniform``: same bits for the same integers."""
    with np.errstate(over="ignore"):
        b = np.broadcast_arrays(np.asarray(seed), np.asarray(i), np.asarray(step), np.asarray(stream))
        seed, i, step, stream = (np.asarray(x).astype(np.int64).astype(np.uint64) for x in b)
        z = seed * _M1
        z = _mix64(z + i)
        z = _mix64(z + step)
        z = _mix64(z + stream)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def poisson_np(lam, i, step, seed, stream):
    lam, i, step, seed, stream = np.broadcast_arrays(*(np.asarray(x) for x in (lam, i, step, seed, stream)))
    u = uniform_np(seed, i, step, stream)
    lam = lam.astype(np.float64)
    p = np.exp(-lam)
    c = p.copy()
    k = np.zeros(lam.shape, dtype=np.int32)
    todo = (u > c) & (lam > 0)
    n = 0
    while todo.any() and n < 1000:
        n += 1
        k[todo] += 1
        p = np.where(todo, p * lam / np.maximum(k, 1), p)
        c = np.where(todo, c + p, c)
        todo &= u > c
    return np.where(lam > 0, k, 0)


@implementation("cpp", {"support_code": _CPP}, name="hash_poisson")
@check_units(lam=1, i=1, step=1, seed=1, stream=1, result=1)
def hash_poisson(lam, i, step, seed, stream):
    return poisson_np(lam, i, step, seed, stream)


@implementation("cpp", {"support_code": _CPP_U}, name="hash_uniform")
@check_units(i=1, step=1, seed=1, stream=1, result=1)
def hash_uniform(i, step, seed, stream):
    return uniform_np(seed, i, step, stream)
