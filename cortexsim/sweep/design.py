"""Sweep designs: the list of parameter points of a sweep spec.

* ``grid``: every combination of the parameters' values (``values``, or ``n`` values from
  ``low`` to ``high``, log-spaced with ``log = true``); the swept parameters become dimensions
  of the output Dataset.
* ``list``: the ``[[points]]`` tables as given.
* ``sobol`` / ``lhs``: ``n_samples`` quasi-random points in the box of the parameters' bounds
  (:mod:`scipy.stats.qmc`, scrambled, seeded by ``sample_seed``: the same seed gives the same
  points); ``log = true`` samples uniformly in log space.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import qmc

from .spec import Parameter, SweepSpec


def grid_values(p: Parameter) -> list:
    """The values one grid parameter takes.

    Parameters
    ----------
    p : Parameter
        A grid parameter (``values``, or ``min``/``max``/``n`` with ``log``).

    Returns
    -------
    list
    """
    if not p.is_range:
        return list(p.values)
    if p.log:
        v = np.geomspace(p.low, p.high, p.n)
    else:
        v = np.linspace(p.low, p.high, p.n)
    if isinstance(p.low, int) and isinstance(p.high, int) and not p.log \
            and np.allclose(v, np.round(v)):
        return [int(x) for x in np.round(v)]
    return [float(x) for x in v]


def scale_unit(params: list[Parameter], u: np.ndarray) -> np.ndarray:
    """Map points of the unit cube (n x d) onto the parameters' bounds (log or linear).

    Parameters
    ----------
    params : list of Parameter
        The d parameters (bounds, ``log``, ``integer``).
    u : ndarray (n, d)
        Points in [0, 1)^d.

    Returns
    -------
    ndarray (n, d)
    """
    lo = np.array([np.log(p.low) if p.log else p.low for p in params], dtype=float)
    hi = np.array([np.log(p.high) if p.log else p.high for p in params], dtype=float)
    x = qmc.scale(u, lo, hi) if len(params) else u
    for j, p in enumerate(params):
        if p.log:
            x[:, j] = np.exp(x[:, j])
    return x


def sample_unit(design: str, d: int, n: int, seed: int) -> np.ndarray:
    """``n`` points of a scrambled Sobol sequence or a Latin hypercube in [0, 1)^d.

    Parameters
    ----------
    design : str
        ``"sobol"`` or ``"lhs"`` (:mod:`scipy.stats.qmc`).
    d : int
        Dimensions.
    n : int
        Points.
    seed : int
        Scrambling seed.

    Returns
    -------
    ndarray (n, d)
    """
    if design == "sobol":
        sampler = qmc.Sobol(d, scramble=True, seed=seed)
    else:
        sampler = qmc.LatinHypercube(d, seed=seed)
    return sampler.random(n)


def design_points(spec: SweepSpec) -> list[dict]:
    """The points of a validated sweep spec, each a dict ``{path: value}`` (in order).

    Parameters
    ----------
    spec : SweepSpec
        The validated sweep spec.

    Returns
    -------
    list of dict
    """
    d = spec.sweep.design
    if d == "list":
        return [dict(p) for p in spec.points]
    params = spec.parameters
    if d == "grid":
        axes = [grid_values(p) for p in params]
        return [dict(zip([p.path for p in params], combo)) for combo in itertools.product(*axes)]
    import warnings
    with warnings.catch_warnings():     # Sobol balance warning for n not a power of 2
        warnings.simplefilter("ignore", UserWarning)
        u = sample_unit(d, len(params), spec.sweep.n_samples, spec.sweep.sample_seed)
    x = scale_unit(params, u)
    return [{p.path: float(x[i, j]) for j, p in enumerate(params)} for i in range(x.shape[0])]
