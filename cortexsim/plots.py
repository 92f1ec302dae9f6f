"""Figures of an experiment's results (PNG, matplotlib Agg).

Every figure draws conditions in the colours of one mapping, :func:`condition_colors` (the
conditions in the results' order), so a condition has the same colour in every panel of every
figure and in every legend, whichever conditions a panel draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def condition_colors(conditions) -> dict[str, tuple]:
    """One colour per condition (RGBA), fixed by the condition's position in ``conditions``.

    Up to 10 conditions take the ``tab10`` colours, up to 20 ``tab20``, more are spread over
    ``turbo``; all are distinct.

    Parameters
    ----------
    conditions : sequence of str
        Every condition of the results, in their order.

    Returns
    -------
    dict
        Condition name -> RGBA tuple.
    """
    from matplotlib import colormaps

    names = [str(c) for c in conditions]
    n = len(names)
    if n <= 10:
        cols = colormaps["tab10"].colors[:n]
    elif n <= 20:
        cols = colormaps["tab20"].colors[:n]
    else:
        cols = colormaps["turbo"](np.linspace(0.05, 0.95, n))
    from matplotlib.colors import to_rgba

    return {c: to_rgba(col) for c, col in zip(names, cols)}


def _bars(ax, x, heights, width, condition, colors) -> None:
    """One condition's bars, in its colour and labelled with its name."""
    ax.bar(x, heights, width, label=condition, color=colors[condition])


def spine_density_figure(ds, path=None):
    """Spine density (spines per site) over time, one panel per population with sites, one
    line per condition.

    Parameters
    ----------
    ds : xarray.Dataset
        Results (:attr:`cortexsim.results.Results.data`).
    path : str or Path, optional
        Output PNG (none: not saved).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    colors = condition_colors(ds.condition.values)
    pops = [
        p for p in ds.population.values if np.isfinite(ds.spine_density.sel(population=p)).any()
    ]
    fig, axes = plt.subplots(1, len(pops), figsize=(4.2 * len(pops), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, p in zip(axes, pops):
        for c in colors:
            y = ds.spine_density_rel.sel(condition=c, population=p)
            ok = np.isfinite(y.values)
            ax.plot(ds.time_d.values[ok], y.values[ok], label=c, lw=1.5, color=colors[c])
        ax.set_title(p)
        ax.set_xlabel("time (days)")
        ax.axhline(1.0, color="k", lw=0.5, ls=":")
    axes[0].set_ylabel("spine density / baseline")
    axes[-1].legend(fontsize=7)
    return _finish(plt, fig, path)


def rates_figure(ds, path=None):
    """Population firing rates (Hz) per condition: at rest and during stimulation sessions
    (only the stimulated conditions, in their own colours; one legend for both panels).

    Parameters
    ----------
    ds : xarray.Dataset
        Results.
    path : str or Path, optional
        Output PNG (none: not saved).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    colors = condition_colors(ds.condition.values)
    pops = list(ds.population.values)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    x = np.arange(len(pops))
    w = 0.8 / max(1, len(colors))
    for k, c in enumerate(colors):
        _bars(axes[0], x + k * w, ds.baseline_rate.sel(condition=c).values, w, c, colors)
        sr = ds.session_rate.sel(condition=c)
        if sr.sizes.get("session", 0) and np.isfinite(sr.values).any():
            _bars(axes[1], x + k * w, np.nanmean(sr.values, axis=0), w, c, colors)
    for ax, t in zip(axes, ("baseline", "during stimulation sessions (mean)")):
        ax.set_xticks(x + 0.4 - w / 2, pops)
        ax.set_ylabel("rate (Hz)")
        ax.set_title(t)
    axes[0].legend(fontsize=7)
    return _finish(plt, fig, path)


def conditions_figure(rows, path=None, conditions=None):
    """Per stimulated condition: summed session drho, density after stimulation and session
    rate (rows from :func:`cortexsim.report.condition_rows`), one bar per condition and
    population.

    Parameters
    ----------
    rows : list of dict
        Output of :func:`cortexsim.report.condition_rows`.
    path : str or Path, optional
        Output PNG (none: not saved).
    conditions : sequence of str, optional
        Every condition of the results (fixes the colours; default: those in ``rows``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    conds = list(dict.fromkeys(r["condition"] for r in rows))
    colors = condition_colors(conditions if conditions is not None else conds)
    pops = list(dict.fromkeys(r["population"] for r in rows))
    labs = list(rows[0]["density"])
    panels = (
        [("sum of session drho", lambda r: r["drho"])]
        + [(f"spine density at {lab} (rel.)", lambda r, lab=lab: r["density"][lab]) for lab in labs]
        + [("rate during sessions (Hz)", lambda r: r["session_rate"])]
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6))
    x = np.arange(len(pops))
    w = 0.8 / max(1, len(conds))
    for ax, (title, f) in zip(np.atleast_1d(axes), panels):
        for k, c in enumerate(conds):
            y = [
                next(f(r) for r in rows if r["condition"] == c and r["population"] == p)
                for p in pops
            ]
            _bars(ax, x + k * w, y, w, c, colors)
        ax.set_xticks(x + 0.4 - w / 2, pops, fontsize=8)
        ax.set_title(title, fontsize=9)
        if "density" in title:
            lo = min(r["density"][t] for r in rows for t in labs)
            ax.set_ylim(max(0.0, lo - 0.05), None)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return _finish(plt, fig, path)


def _finish(plt, fig, path):
    """Lay out ``fig``, save it to ``path`` (if given), release it from pyplot; return it."""
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def figures(ds, cfg=None) -> dict:
    """Every figure of a run, not saved.

    Parameters
    ----------
    ds : xarray.Dataset
        Results.
    cfg : dict, optional
        The resolved config (adds the per-condition figure).

    Returns
    -------
    dict
        File name (``spine_density.png``, ``rates.png``, ``conditions.png``) -> Figure.
    """
    from .report import condition_rows

    out = {"spine_density.png": spine_density_figure(ds), "rates.png": rates_figure(ds)}
    rows = condition_rows(ds, cfg) if cfg is not None else []
    if rows:
        out["conditions.png"] = conditions_figure(rows, conditions=ds.condition.values)
    return out


def all_figures(ds, outdir, cfg=None) -> list[str]:
    """Write every figure of a run (:func:`figures`) into ``outdir``.

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
    outdir = Path(outdir)
    figs = figures(ds, cfg)
    for name, fig in figs.items():
        fig.savefig(outdir / name, dpi=110)
    return list(figs)
