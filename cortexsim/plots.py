"""Figures of an experiment's results (PNG, matplotlib Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def spine_density_figure(ds, path):
    """Spine density (spines per site) over time, one panel per population with sites, one
    line per condition.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (:attr:`cortexsim.results.Results.data`).
    path : str or Path
        Output PNG.
    """
    plt = _plt()
    pops = [p for p in ds.population.values
            if np.isfinite(ds.spine_density.sel(population=p)).any()]
    fig, axes = plt.subplots(1, len(pops), figsize=(4.2 * len(pops), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, p in zip(axes, pops):
        for c in ds.condition.values:
            y = ds.spine_density_rel.sel(condition=c, population=p)
            ok = np.isfinite(y.values)
            ax.plot(ds.time_d.values[ok], y.values[ok], label=str(c), lw=1.5)
        ax.set_title(p)
        ax.set_xlabel("time (days)")
        ax.axhline(1.0, color="k", lw=0.5, ls=":")
    axes[0].set_ylabel("spine density / baseline")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rates_figure(ds, path):
    """Population firing rates (Hz) per condition: at rest and during stimulation sessions.

    Parameters
    ----------
    ds : xarray.Dataset
        Results.
    path : str or Path
        Output PNG.
    """
    plt = _plt()
    pops = list(ds.population.values)
    conds = list(ds.condition.values)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(len(pops))
    w = 0.8 / max(1, len(conds))
    for k, c in enumerate(conds):
        axes[0].bar(x + k * w, ds.baseline_rate.sel(condition=c).values, w, label=str(c))
        sr = ds.session_rate.sel(condition=c)
        if sr.sizes.get("session", 0) and np.isfinite(sr.values).any():
            axes[1].bar(x + k * w, np.nanmean(sr.values, axis=0), w, label=str(c))
    for ax, t in zip(axes, ("baseline", "during stimulation sessions (mean)")):
        ax.set_xticks(x + 0.4 - w / 2, pops)
        ax.set_ylabel("rate (Hz)")
        ax.set_title(t)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def conditions_figure(rows, path):
    """Per stimulated condition: summed session drho, density after stimulation, session rate
    (rows from report.condition_rows).

    Parameters
    ----------
    rows : list of dict
        Output of :func:`cortexsim.report.condition_rows`.
    path : str or Path
        Output PNG.
    """
    plt = _plt()
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    pops = list(dict.fromkeys(r["population"] for r in rows))
    labs = list(rows[0]["density"])
    panels = [("sum of session drho", lambda r: r["drho"])] + \
        [(f"spine density at {lab} (rel.)", lambda r, lab=lab: r["density"][lab]) for lab in labs] + \
        [("rate during sessions (Hz)", lambda r: r["session_rate"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6))
    x = np.arange(len(conds))
    w = 0.8 / max(1, len(pops))
    for ax, (title, f) in zip(np.atleast_1d(axes), panels):
        for k, p in enumerate(pops):
            y = [next(f(r) for r in rows if r["condition"] == c and r["population"] == p)
                 for c in conds]
            ax.bar(x + k * w, y, w, label=p)
        ax.set_xticks(x + 0.4 - w / 2, conds, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        if "density" in title:
            lo = min(r["density"][t] for r in rows for t in labs)
            ax.set_ylim(max(0.0, lo - 0.05), None)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def all_figures(ds, outdir, cfg=None) -> list[str]:
    """Write every figure of a run into ``outdir``.

    Parameters
    ----------
    ds : xarray.Dataset
        Results.
    outdir : str or Path
        Existing folder.
    cfg : dict, optional
        The resolved config (adds the per-condition figure).

    Returns
    -------
    list of str
        File names written.
    """
    from .report import condition_rows
    outdir = Path(outdir)
    spine_density_figure(ds, outdir / "spine_density.png")
    rates_figure(ds, outdir / "rates.png")
    names = ["spine_density.png", "rates.png"]
    rows = condition_rows(ds, cfg) if cfg is not None else []
    if rows:
        conditions_figure(rows, outdir / "conditions.png")
        names.append("conditions.png")
    return names
