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


def all_figures(ds, outdir) -> list[str]:
    outdir = Path(outdir)
    spine_density_figure(ds, outdir / "spine_density.png")
    rates_figure(ds, outdir / "rates.png")
    return ["spine_density.png", "rates.png"]
