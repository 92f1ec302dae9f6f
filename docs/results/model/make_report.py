"""docs/results/model/report.md: the candidate models against the validation scorecard, the
issue-20 search (budget, convergence, what the findings constrain) and the ablations.

    python docs/results/model/make_report.py [SEARCH_ROOT]

SEARCH_ROOT holds one folder per sampler seed as written by
``cortexsim fit experiments/mechanism_search/<name>.toml --out SEARCH_ROOT/<name>`` (a search
that is still running or was stopped is read as far as it went).  Each search's trials
(trials.csv: loss and parameters; runs.csv: every finished run's metrics per seed) and, when it
finished, fit.json and best.toml are copied into search/<name>/ here, so that the report can be
rebuilt without SEARCH_ROOT.  Candidates' scorecards (``cortexsim validate``) and the ablations'
scorecards are read from the paths in CANDIDATES and ABLATIONS.  The prose lives in
narrative.md (written by hand, quoted at the top); everything else is generated.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SEARCHES = ["receptors", "receptors_s1"]
SPECS = ROOT / "experiments" / "mechanism_search"
# label -> (scorecard.json, what the candidate is)
CANDIDATES = {
    "default": (
        ROOT / "docs/results/validation/default/scorecard.json",
        "the default model (mechanism-free; model files as shipped)",
    ),
    "set (old fit)": (
        ROOT / "docs/results/validation/aitbs_study_mechanisms/scorecard.json",
        "experiments/aitbs_study_mechanisms.toml: NMDA spinogenesis + dopamine (activity-released) "
        "through D1/D2 receptors per cell, the five values of the issue-13 fit (made under the "
        "old population-fraction gate)",
    ),
    "set (refit)": (
        HERE / "scorecards/refit/scorecard.json",
        "the same set refitted by this search (best of both sampler seeds, six parameters, seeds "
        "1-3): docs/results/model/candidates/refit.toml",
    ),
}
# ablation label -> scorecard.json (the study's entries only)
ABLATIONS = {
    "set as shipped": ROOT / "docs/results/validation/aitbs_study_mechanisms/scorecard.json",
    "nmda_spinogenesis off": HERE / "ablations/no_nmda/scorecard.json",
    "dopamine_d1 off": HERE / "ablations/no_dopamine/scorecard.json",
    "no D2 effect (gain_d2 0)": HERE / "ablations/no_d2/scorecard.json",
    "only an excess drives (deficit_weight 0)": HERE / "ablations/excess_only/scorecard.json",
    "dopamine from pulses (dopamine_from_activity off)": HERE
    / "ablations/pulse_dopamine/scorecard.json",
}
METRICS = ["it5_24h", "it23_24h", "pt5_24h", "it5_silenced_24h", "it5_7d"]


# ------------------------------------------------------------------ search
def _trials(out: Path) -> list[dict]:
    """Every trial of a fit (finished or not) from its Optuna journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = JournalStorage(JournalFileBackend(str(out / "study.log")))
    (summary,) = optuna.get_all_study_summaries(st)
    study = optuna.load_study(study_name=summary.study_name, storage=st)
    rows = []
    for t in study.trials:
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "loss": t.value,
                "duration_s": t.duration.total_seconds() if t.duration else None,
                **{f"param:{k}": v for k, v in t.params.items()},
            }
        )
    return rows


def _runs(out: Path) -> list[dict]:
    """Every finished run of the fit's sweep store: parameters, seed, metrics."""
    rows = []
    for f in sorted((out / "store").glob("*.json")):
        d = json.loads(f.read_text())
        if d.get("status") != "ok":
            continue
        rows.append(
            {
                "seed": d["seed"],
                "wall_s": d.get("wall_s"),
                **{f"param:{k}": v for k, v in sorted(d["params"].items())},
                **{k: d["metrics"].get(k) for k in METRICS},
            }
        )
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (not k[0].isalpha(), k))
    keys = [k for k in keys if not k.startswith("param:")] + [
        k for k in keys if k.startswith("param:")
    ]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, keys)
        w.writeheader()
        w.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    def num(v):
        try:
            return float(v)
        except ValueError:
            return v if v != "" else None

    with open(path) as fh:
        return [{k: num(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def collect(search_root: Path | None) -> None:
    """Copy each search's trials, runs and (when finished) fit.json/best.toml here."""
    for name in SEARCHES:
        dst = HERE / "search" / name
        out = search_root / name if search_root else None
        if out is None or not (out / "study.log").is_file():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        _write_csv(_trials(out), dst / "trials.csv")
        _write_csv(_runs(out), dst / "runs.csv")
        for f in ("fit.json", "best.toml", "importance.png"):
            if (out / f).is_file():
                shutil.copy2(out / f, dst / f)


def _fmt(v, p=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{p}g}" if isinstance(v, float) else str(v)


def search_section() -> list[str]:
    from cortexsim.sweep.fit import load_fit

    spec, _, _ = load_fit(SPECS / f"{SEARCHES[0]}.toml")
    L = ["## The search", ""]
    L += [
        f"Spec: experiments/mechanism_search/{SEARCHES[0]}.toml (sampler seed "
        f"{spec.fit.sampler_seed}) and {SEARCHES[1]}.toml (sampler seed 1, no start points); "
        f"sampler {spec.fit.sampler}, each trial the mean loss over seeds "
        f"{', '.join(map(str, spec.fit.seeds))} (`--scale small`, 500 neurons; three conditions: "
        "stress_sham, stress_aitbs, stress_aitbs_it_silenced); loss = sum over the targets of "
        "((metric - target) / tolerance)^2 (targets: IT_L5 and IT_L23 aiTBS - sham at 24 h "
        "0.15 +- 0.07, PT_L5 0 +- 0.03, criterion 3 within 0.02, criterion 4 > 0.05 at 7 d), "
        "so a loss below 1 meets every target within its tolerance on the seed mean.",
        "",
        "| parameter | box | scale | why this box |",
        "|---|---|---|---|",
    ]
    for p in spec.parameters:
        L.append(
            f"| {p.path} | [{_fmt(p.low)}, {_fmt(p.high)}] | {'log' if p.log else 'linear'} | "
            f"{p.reason} |"
        )
    L.append("")
    all_trials = []
    rows = []
    for name in SEARCHES:
        d = HERE / "search" / name
        if not (d / "trials.csv").is_file():
            rows.append(f"| {name} | not run | | | | |")
            continue
        tr = _read_csv(d / "trials.csv")
        done = [t for t in tr if t["state"] == "COMPLETE" and t["loss"] is not None]
        all_trials += [dict(t, search=name) for t in done]
        runs = _read_csv(d / "runs.csv")
        wall = sum(r["wall_s"] or 0 for r in runs)
        best = min(done, key=lambda t: t["loss"]) if done else None
        curve, b = [], math.inf
        for t in sorted(done, key=lambda t: t["number"]):
            b = min(b, t["loss"])
            curve.append(b)
        fj = json.loads((d / "fit.json").read_text()) if (d / "fit.json").is_file() else None
        rows.append(
            f"| {name} | {len(done)} of {len(tr)} ({len(runs)} runs, {wall / 3600:.1f} h of run "
            f"time) | {_fmt(best['loss']) if best else '-'} (trial {int(best['number']) if best else '-'}) | "
            f"{' '.join(_fmt(c, 2) for c in curve)} | "
            f"{'finished' if fj else 'stopped (resumable)'} |"
        )
    L += [
        "| search | trials finished | best loss | best-so-far by trial | state |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    if not all_trials:
        return L
    # per trial, its seed-mean metrics (from the runs)
    L += per_trial_table(all_trials)
    L += constrained_table(spec, all_trials)
    return L


def _trial_metrics(name: str, trial: dict) -> dict:
    runs = _read_csv(HERE / "search" / name / "runs.csv")
    ps = {k: v for k, v in trial.items() if k.startswith("param:")}

    def same(r, k, v):
        x = r.get(k)
        return x is not None and abs(x - v) <= 1e-9 * max(1.0, abs(v))

    mine = [r for r in runs if all(same(r, k, v) for k, v in ps.items())]
    out = {}
    for m in METRICS:
        vals = [r[m] for r in mine if r.get(m) is not None]
        out[m] = (sum(vals) / len(vals), len(vals)) if vals else (None, 0)
    return out


def per_trial_table(trials: list[dict]) -> list[str]:
    trials = sorted(trials, key=lambda t: t["loss"])
    params = sorted(k for k in trials[0] if k.startswith("param:"))
    short = {p: p.split(".")[-1] for p in params}
    L = [
        "### Trials, best first (aiTBS - sham, relative spine density; mean over seeds)",
        "",
        "| search | trial | loss | "
        + " | ".join(short[p] for p in params)
        + " | IT_L5 24 h | IT_L23 24 h | PT_L5 24 h | silenced IT_L5 | IT_L5 7 d |",
        "|" + "---|" * (3 + len(params) + 5),
    ]
    for t in trials:
        m = _trial_metrics(t["search"], t)
        L.append(
            f"| {t['search']} | {int(t['number'])} | {_fmt(t['loss'])} | "
            + " | ".join(_fmt(t[p]) for p in params)
            + " | "
            + " | ".join(_fmt(m[k][0]) for k in METRICS)
            + " |"
        )
    return L + [""]


def constrained_table(spec, trials: list[dict]) -> list[str]:
    """Which parameters the findings constrain: the range of each parameter over the trials
    within a loss band of the best (best + 2, i.e. about one target missed by ~1.4 tolerances),
    as a fraction of its box in the search's own scale.  A crude stand-in for a posterior: it
    says which directions the data pin and which they leave free, with the few trials there are.
    """
    best = min(t["loss"] for t in trials)
    good = [t for t in trials if t["loss"] <= best + 2.0]
    L = [
        f"### What the findings constrain ({len(good)} trials within loss {best:.2f} + 2 of "
        f"{len(trials)})",
        "",
        "| parameter | range among them | share of the box | best |",
        "|---|---|---|---|",
    ]
    bt = min(trials, key=lambda t: t["loss"])
    for p in spec.parameters:
        vals = [t[f"param:{p.path}"] for t in good if t.get(f"param:{p.path}") is not None]
        if not vals:
            continue
        f = math.log if p.log else float
        share = (f(max(vals)) - f(min(vals))) / (f(p.high) - f(p.low)) if len(vals) > 1 else 0.0
        L.append(
            f"| {p.path} | {_fmt(min(vals))} - {_fmt(max(vals))} | {share:.2f} | "
            f"{_fmt(bt.get(f'param:{p.path}'))} |"
        )
    return L + [""]


# ------------------------------------------------------------------ scorecards
def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def scorecard_section() -> list[str]:
    cards = {k: (_load(p), what) for k, (p, what) in CANDIDATES.items()}
    L = ["## Candidates against the scorecard", ""]
    L += ["| candidate | what | scale, seeds | predicted | fitted |", "|---|---|---|---|---|"]
    for k, (c, what) in cards.items():
        if c is None:
            L.append(f"| {k} | {what} | not scored | | |")
            continue
        s = c["summary"]
        L.append(
            f"| {k} | {what} | {c['scale']}, {', '.join(map(str, c['seeds']))} | "
            f"{s['predicted']['pass']} of {s['predicted']['total']} "
            f"({s['predicted']['not_applicable']} n/a) | "
            f"{s['fitted']['pass']} of {s['fitted']['total']} ({s['fitted']['not_applicable']} n/a) |"
        )
    L += [
        "",
        "### Entry by entry",
        "",
        "Each cell: verdict (PASS / fail / n/a = not applicable: no effect to judge), "
        "**F** fitted or **P** predicted for that candidate, and the model's mean over seeds.",
        "",
    ]
    scored = {k: c for k, (c, _) in cards.items() if c is not None}
    ids = _ids(scored.values())
    L += _entry_table(scored, ids, fitted_mark=True)
    return L + [""]


def _ids(cards) -> list[str]:
    ids = []
    for c in cards:
        for e in c["entries"]:
            if e["id"] not in ids:
                ids.append(e["id"])
    return ids


def _entry_table(scored: dict, ids: list, fitted_mark: bool) -> list[str]:
    """Entry x scorecard table: verdict, F/P (``fitted_mark``) and the model's mean."""
    verdict = {"pass": "PASS", "fail": "fail", "not applicable": "n/a"}
    L = ["| entry | " + " | ".join(scored) + " |", "|" + "---|" * (1 + len(scored))]
    for i in ids:
        cells = []
        for c in scored.values():
            e = next((e for e in c["entries"] if e["id"] == i), None)
            if e is None:
                cells.append("-")
                continue
            fp = (" F" if e["status"] == "fitted" else " P") if fitted_mark else ""
            v = verdict.get(e["verdict"], e["verdict"])
            cells.append(f"{v}{fp} {_fmt(e.get('model_mean'))}")
        L.append(f"| {i} | " + " | ".join(cells) + " |")
    return L


def ablation_section() -> list[str]:
    cards = {k: _load(p) for k, p in ABLATIONS.items()}
    scored = {k: c for k, c in cards.items() if c is not None}
    L = ["## Ablations (each mechanism off: which findings go)", ""]
    if not scored:
        return L + ["(not run)", ""]
    ids = _ids(list(scored.values())[1:] or scored.values())  # the ablations' entries
    L += _entry_table(scored, ids, fitted_mark=False)
    seeds = {tuple(c["seeds"]) for c in scored.values()}
    L += ["", f"Scale small, seeds {', '.join(map(str, sorted(set().union(*seeds))))}.", ""]
    return L


def main(search_root: Path | None) -> None:
    collect(search_root)
    narrative = (HERE / "narrative.md").read_text() if (HERE / "narrative.md").is_file() else ""
    L = [narrative.rstrip(), ""] if narrative else ["# The model (issue 20)", ""]
    L += scorecard_section() + search_section() + ablation_section()
    (HERE / "report.md").write_text("\n".join(L) + "\n")
    print(f"wrote {HERE / 'report.md'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
