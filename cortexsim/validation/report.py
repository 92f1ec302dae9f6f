"""The scorecard's files: ``scorecard.json``, ``scorecard.md`` and ``scorecard.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path


def write_scorecard(card: dict, out) -> None:
    """Write the three files into ``out`` (each atomically).

    Parameters
    ----------
    card : dict
        From :func:`cortexsim.validation.run_validation`.
    out : str or Path
        Folder.

    Raises
    ------
    cortexsim.errors.StorageError
        The folder cannot be written.
    """
    from ..outdir import atomic_write

    out = Path(out)
    text = json.dumps(card, indent=2, sort_keys=True, default=_json_default)
    atomic_write(out / "scorecard.json", lambda t: t.write_text(text))
    md = scorecard_markdown(card)
    atomic_write(out / "scorecard.md", lambda t: t.write_text(md))
    atomic_write(out / "scorecard.png", lambda t: scorecard_figure(card, t))


def _json_default(v):
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _published(r: dict) -> str:
    p, cmp = r["published"], r["compare"]
    unit = f" {p['unit']}" if p.get("unit") else ""
    if cmp == "value":
        spread = (
            f" (SD {_fmt(p['sd'])})"
            if p.get("sd") is not None
            else (f" (SEM {_fmt(p['sem'])})" if p.get("sem") is not None else "")
        )
        return f"{_fmt(p['value'])}{spread}{unit}"
    if cmp == "range":
        return f"{_fmt(p['low'])} ... {_fmt(p['high'])}{unit}"
    if cmp == "sign":
        extra = f" (published {_fmt(p['value'])}{unit})" if p.get("value") is not None else ""
        return f"sign {p['sign']}{extra}"
    return "no change"


def _criterion(r: dict) -> str:
    tol, cmp = _fmt(r["tolerance"]), r["compare"]
    return {
        "value": f"within {tol}",
        "none": f"|x| <= {tol}",
        "range": "within the range",
        "sign": f"sign, |x| > {tol}",
    }[cmp]


def _observable(o: dict) -> str:
    if o["kind"] == "experiment":
        s = f"{o['experiment']}: {o['var']} {o['condition']}"
        s += f" - {o['other_condition']}" if o.get("other_condition") else ""
        s += f" @ {o['readout']}" if o.get("readout") else ""
        s += f", {o['population']}" if o.get("population") else ""
    elif o["kind"] == "synapse":
        keys = [
            k
            for k in (
                "delta_t_ms",
                "freq_hz",
                "n_pairs",
                "n_pulses",
                "n_bursts",
                "pulses_per_burst",
                "intra_hz",
                "burst_hz",
            )
            if o.get(k) is not None
        ]
        s = f"GB rule, {o['protocol']} (" + ", ".join(f"{k}={o[k]}" for k in keys)
        s += ", post" if o.get("post") else ""
        s += f") at {o['ca_ext_mM']} mM Ca"
    else:
        s = f"{o['kind']}: {o['quantity']} {o['population']}"
    if o.get("other_population"):
        op = "/" if o.get("combine") == "ratio" else "-"
        s += f" {op} {o['other_population']}"
    return s


def scorecard_markdown(card: dict) -> str:
    """The scorecard as Markdown: the summary line, then fitted and predicted entries.

    Parameters
    ----------
    card : dict
        The scorecard (as in ``scorecard.json``).

    Returns
    -------
    str
    """
    m = card["model"]
    L = [
        f"# Validation scorecard: {m['name']}",
        "",
        f"**{card['summary']['line']}**",
        "",
        f"Model: {m['name']}"
        + (f" ({m['path']})" if m.get("path") else " (model files as shipped)")
        + ". "
        f"Scale {card['scale']}, seeds {', '.join(map(str, card['seeds']))}"
        + (" (quick subset)" if card["quick"] else "")
        + f"; {card['wall_s']:.0f} s; "
        f"cortexsim {card['versions']['cortexsim']} (code {card['versions']['code'][:12]}).",
        "",
        "An entry is judged on the mean over seeds (SD over seeds beside it).  **Fitted**: the "
        "model's fit provenance targets it (a fit spec's targets, or a calibration recorded in "
        "models/provenance.toml); **predicted**: the model was not fitted to it.  Failures are "
        "reported as they come out.",
        "",
    ]
    for st in ("predicted", "fitted"):
        rows = [r for r in card["entries"] if r["status"] == st]
        c = card["summary"][st]
        L += [
            f"## {st.capitalize()} ({c['pass']} of {c['total']} pass"
            + (f", {c['not_measured']} not measured" if c["not_measured"] else "")
            + (f", {c['not_applicable']} not applicable" if c["not_applicable"] else "")
            + ")",
            "",
        ]
        if not rows:
            L += ["(none)", ""]
            continue
        L += [
            "| entry | finding | model observable | model (SD) | published | criterion | "
            "result | source |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            model_v = _fmt(r["model_mean"]) + (
                "" if r["deterministic"] else f" ({_fmt(r['model_sd'])})"
            )
            res = r["verdict"].upper() if r["verdict"] in ("pass", "fail") else r["verdict"]
            if st == "fitted":
                res += " (fitted)"
            src = r["source"]
            L.append(
                f"| {r['id']} | {r['finding']} | {_observable(r['observable'])} | "
                f"{model_v} | {_published(r)} | {_criterion(r)} | {res} | "
                f"{src['citation']}, {src['where']} ({src['species']}, "
                f"{src['preparation']}) |"
            )
        L.append("")
    L += ["## Tolerances and notes", ""]
    for r in card["entries"]:
        extra = f" Note: {r['note']}" if r.get("note") else ""
        fit = f" Fitted by: {'; '.join(r['fitted_by'])}." if r["fitted_by"] else ""
        err = f" Errors: {'; '.join(r['errors'])}." if r.get("errors") else ""
        err += f" Not applicable: {r['reason']}." if r.get("reason") else ""
        tol = "range" if r["compare"] == "range" else f"tolerance {_fmt(r['tolerance'])}"
        L.append(f"- `{r['id']}`: {tol} — {r['tolerance_reason']}.{fit}{extra}{err}")
    return "\n".join(L) + "\n"


def scorecard_figure(card: dict, path) -> None:
    """Model vs published for every entry, fitted and predicted in separate panels.

    Each row is one entry on its own scale: the model's value in units of the entry's
    tolerance from the published value (``deviation`` of :func:`cortexsim.validation.judge`),
    error bars the SD over seeds in the same units; the shaded band is where the entry passes
    ([-1, 1] around the published value; for a sign entry, beyond the smallest effect).

    Parameters
    ----------
    card : dict
        The scorecard.
    path : str or Path
        The image file to write (``scorecard.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("predicted", [r for r in card["entries"] if r["status"] == "predicted"]),
        ("fitted", [r for r in card["entries"] if r["status"] == "fitted"]),
    ]
    heights = [max(len(rs), 1) for _, rs in groups]
    fig, axes = plt.subplots(
        2,
        1,
        figsize=(10, 1.4 + 0.28 * sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    lim = 5.0
    for ax, (st, rows) in zip(axes[:, 0], groups):
        c = card["summary"][st]
        ax.set_title(f"{st}: {c['pass']} of {c['total']} within tolerance", fontsize=9, loc="left")
        for y, r in enumerate(rows):
            band = r["band"] or [-1.0, 1.0]
            lo, hi = max(band[0], -lim), min(band[1], lim)
            ax.fill_betweenx([y - 0.4, y + 0.4], lo, hi, color="0.88", lw=0)
            if r["deviation"] is None:
                ax.text(0, y, "not measured", fontsize=6, va="center", ha="center")
                continue
            x = max(min(r["deviation"], lim), -lim)
            scale = (
                r["tolerance"]
                or (
                    (r["published"]["high"] - r["published"]["low"]) / 2
                    if r["compare"] == "range"
                    else 1.0
                )
                or 1.0
            )
            err = r["model_sd"] / scale if r["model_sd"] else 0.0
            color = {"pass": "tab:green", "fail": "tab:red"}.get(r["verdict"], "0.6")
            ax.errorbar([x], [y], xerr=[[err], [err]], fmt="o", ms=4, color=color, capsize=2)
            if abs(r["deviation"]) > lim:
                ax.text(x, y + 0.3, f"{r['deviation']:.3g}", fontsize=5, ha="center")
        ax.set_yticks(range(len(rows)), [r["id"] for r in rows], fontsize=6)
        ax.set_ylim(-0.6, max(len(rows), 1) - 0.4)
        ax.invert_yaxis()
        ax.set_xlim(-lim - 0.3, lim + 0.3)
        ax.axvline(0, color="0.5", lw=0.5)
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel(
        "model - published, in tolerances (sign entries: signed effect / "
        "smallest effect; shaded: pass)",
        fontsize=7,
    )
    fig.suptitle(f"{card['model']['name']}: {card['summary']['line']}", fontsize=9)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.97))  # room for the title; labels inside
    fig.savefig(path, dpi=130, format="png", bbox_inches="tight")
    plt.close(fig)
