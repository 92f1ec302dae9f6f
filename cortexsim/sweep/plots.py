"""Figures of sweeps, fits and sensitivity analyses (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def constant_value(values) -> float | None:
    """The one value of a metric that is the same at every run: its finite values (at least
    two) equal to within 1e-12 relative; None where it varies (or has fewer values).

    Parameters
    ----------
    values : array_like
        The metric at every run (NaN for a run without a value).

    Returns
    -------
    float or None
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2 or np.ptp(v) > 1e-12 * max(1.0, abs(float(v[0]))):
        return None
    return float(v[0])


def plot_metric(ds, metric: str, path) -> Path:
    """One metric of a sweep Dataset: a line with replicate spread (one grid parameter), a
    heat map of the replicate mean with the spread written in each cell (two), or the metric
    against each parameter (samples, lists, larger grids).  A metric with one value at every
    run says so in the title (:func:`constant_value`).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`cortexsim.sweep.to_dataset`.
    metric : str
        A metric variable.
    path : str or Path
        Output PNG.

    Returns
    -------
    Path
    """
    plt = _plt()
    da = ds[metric]
    params = [d for d in da.dims if d != "seed"]
    nseed = da.sizes["seed"]
    if params != ["point"] and len(params) == 1:
        p = params[0]
        x = ds[p].values
        fig, ax = plt.subplots(figsize=(5, 3.5))
        mean = da.mean("seed").values
        sd = da.std("seed").values if nseed > 1 else np.zeros_like(mean)
        ax.fill_between(
            x, mean - sd, mean + sd, alpha=0.3, label="mean +- sd" if nseed > 1 else None
        )
        ax.plot(x, mean, "o-", label=f"mean of {nseed} seeds")
        for s in ds.seed.values:
            ax.plot(x, da.sel(seed=s).values, ".", color="0.5", ms=4)
        ax.set_xlabel(p)
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    elif params != ["point"] and len(params) == 2:
        p, q = params
        mean = da.mean("seed").transpose(p, q).values
        sd = da.std("seed").transpose(p, q).values
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        im = ax.imshow(mean, origin="lower", aspect="auto", cmap="viridis")
        ax.set_yticks(
            range(mean.shape[0]),
            [f"{v:.3g}" if isinstance(v, float) else str(v) for v in ds[p].values],
        )
        ax.set_xticks(
            range(mean.shape[1]),
            [f"{v:.3g}" if isinstance(v, float) else str(v) for v in ds[q].values],
        )
        ax.set_ylabel(p)
        ax.set_xlabel(q)
        for i in range(mean.shape[0]):
            for j in range(mean.shape[1]):
                txt = f"{mean[i, j]:.3g}" + (f"\n+-{sd[i, j]:.2g}" if nseed > 1 else "")
                ax.text(j, i, txt, ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, label=f"{metric} (mean of {nseed} seeds)")
    else:
        names = (
            [c for c in ds.coords if c not in ("seed", "point") and c not in ds.dims]
            if "point" in da.dims
            else params
        )
        flat = da.mean("seed")
        fig, axes = plt.subplots(1, len(names), figsize=(3.5 * len(names), 3.2), squeeze=False)
        for ax, p in zip(axes[0], names):
            x = ds[p].broadcast_like(flat).values.ravel()
            for s in ds.seed.values:
                ax.plot(x, da.sel(seed=s).values.ravel(), ".", color="0.6", ms=4)
            ax.plot(x, flat.values.ravel(), "o", ms=5)
            ax.set_xlabel(p)
            ax.set_ylabel(metric)
    title = f"{metric} ({nseed} seed{'s' if nseed > 1 else ''} per point)"
    const = constant_value(da.values)
    if const is not None:  # else a page of equal values and zero spreads, unremarked
        title += f"\nconstant: {const:.6g} at every point and seed"
    ax.set_title(title, fontsize=9, color="C3" if const is not None else None)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bars(names, values: dict, path, title: str, ylabel: str) -> Path:
    """Grouped bars with error bars: ``values`` maps a label to (heights, errors).

    Parameters
    ----------
    names : sequence of str
        Bar group labels.
    values : dict
        Series label -> (heights, errors), each of ``len(names)``.
    path : str or Path
        Output PNG.
    title, ylabel : str
        Figure labels.

    Returns
    -------
    Path
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names) + 2), 3.5))
    k = len(values)
    w = 0.8 / k
    x = np.arange(len(names))
    for i, (label, (h, e)) in enumerate(values.items()):
        ax.bar(x + (i - (k - 1) / 2) * w, h, w, yerr=e, capsize=3, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if k > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
