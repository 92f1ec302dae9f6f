"""Search throughput (issue 21): simulated studies per hour for mechanism-search trial points.

Runs ``--points`` trial points of the mechanism search on the sweep engine (the executor, its
point store, 2 local workers), each point the three conditions a fit trial of
``experiments/mechanism_search/common.toml`` needs (stress_aitbs, stress_sham,
stress_aitbs_it_silenced) of ``experiments/aitbs_study_mechanisms.toml`` (mechanisms on as
there), varying ``structural.activity.nmda_gain``.  Both paths run in the same invocation, each
into a fresh store after a warm-up run that fills the build cache:

* ``old``: every point simulates its whole history (``CORTEXSIM_PHASE_STATES=0``);
* ``new``: points start from the stored state after the last phase whose inputs they share
  (``cortexsim.experiment.phase_states``), and share read-outs and rest references across points.

Reported: wall time, simulated studies per hour and a per-phase split of the workers' time
(exclusive: a build inside a session counts as build): pass 1 (rest statistics), baseline,
stress, stimulation (sessions incl. their reference runs), rest phases, read-outs, builds,
phase-state store, the rest of the run (model trees, drawn circuit, results) and the worker
outside the run (store, metrics).  The metrics of every point must be identical between the
two paths (checked, bit for bit).

    python benchmarks/bench_search.py --scale 100 --points 4          # iteration
    python benchmarks/bench_search.py --scale small --points 4 --update-results
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- per-phase timers
# Installed at import, so also in the engine's spawned workers (they import this script as
# __mp_main__); each worker writes its totals to $BENCH_SEARCH_TIMINGS/<pid>.json.
_STACK: list = []
_TOTALS: dict = {}


def _flush():
    d = os.environ.get("BENCH_SEARCH_TIMINGS")
    if d:
        Path(d, f"{os.getpid()}.json").write_text(json.dumps(_TOTALS))


def _timed(label_of, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        label = label_of(*args, **kwargs) if callable(label_of) else label_of
        t0 = time.perf_counter()
        _STACK.append([label, 0.0])  # [label, time of nested timed calls]
        try:
            return fn(*args, **kwargs)
        finally:
            lab, inner = _STACK.pop()
            dt = time.perf_counter() - t0
            _TOTALS[lab] = _TOTALS.get(lab, 0.0) + dt - inner
            if _STACK:
                _STACK[-1][1] += dt
            else:
                _flush()

    wrapper._bench = True
    return wrapper


def _patch(obj, name, label):
    fn = getattr(obj, name, None)
    if fn is not None and not getattr(fn, "_bench", False):
        setattr(obj, name, _timed(label, fn))


def install_timers():
    """Wrap the phases of a run with exclusive timers (tolerant of code that moved)."""
    if not os.environ.get("BENCH_SEARCH_TIMINGS"):
        return
    from cortexsim.circuit import network
    from cortexsim.experiment import Experiment, phases, runner, shared

    _patch(Experiment, "run", "run, other")
    _patch(runner._Runner, "_rest_stats", "pass 1 (rest)")
    _patch(phases.ConditionRun, "slow_phase", lambda self, ph, *a, **k: ph["kind"])
    _patch(phases.ConditionRun, "stimulation", "stimulation (sessions + refs)")
    _patch(runner._Runner, "_readouts", "read-outs")
    _patch(shared.SharedStats, "readout_run", "read-outs")
    _patch(network.Circuit, "__init__", "build")
    try:
        from cortexsim.experiment import phase_states

        _patch(phase_states.PhaseStateStore, "load", "phase states")
        _patch(phase_states.PhaseStateStore, "save", "phase states")
    except ImportError:
        pass
    from cortexsim.sweep import executor

    original = executor.run_point
    if not getattr(original, "_bench", False):
        executor.run_point = _timed("worker, outside the run", original)


install_timers()


# --------------------------------------------------------------------------- the benchmark
def search_tasks(scale, n_points: int, store: Path):
    """The tasks of ``n_points`` trial points (seed 1) and the fit's metrics / criteria."""
    from cortexsim.experiment import read_spec
    from cortexsim.sweep import build_runs
    from cortexsim.sweep.fit import FitSpec, read_fit
    from cortexsim.sweep.spec import validate

    spec = validate(FitSpec, read_fit(ROOT / "experiments/mechanism_search/nmda.toml"), "fit spec")
    metrics = [m.model_dump() for m in spec.metrics]
    crit = [t.criterion for t in spec.targets if t.criterion is not None]
    base = read_spec(ROOT / "experiments/aitbs_study_mechanisms.toml")
    gains = [100.0 * 2**k for k in range(n_points)]
    points = [{"structural.activity.nmda_gain": g} for g in gains]
    return build_runs(base, points, [1], scale, metrics, store, crit), metrics


def run_path(name: str, phase_states: bool, scale, n_points: int, workers: int, work: Path):
    from cortexsim.sweep import run_tasks

    store = work / name / "store"
    tdir = work / name / "timings"
    tdir.mkdir(parents=True)
    os.environ["CORTEXSIM_PHASE_STATES"] = "1" if phase_states else "0"
    os.environ["BENCH_SEARCH_TIMINGS"] = str(tdir)
    tasks, _ = search_tasks(scale, n_points, store)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    recs = run_tasks(tasks, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    os.environ.pop("BENCH_SEARCH_TIMINGS")
    split: dict = {}
    for f in tdir.glob("*.json"):
        for k, v in json.loads(f.read_text()).items():
            split[k] = split.get(k, 0.0) + v
    bad = [r for r in recs.values() if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{name}: failed runs: {[r.get('error') for r in bad]}")
    return {
        "path": name,
        "points": len(tasks),
        "wall_s": round(wall, 1),
        "per_hour": round(len(tasks) / wall * 3600, 1),
        "load": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}",
        "split": {k: round(v, 1) for k, v in sorted(split.items())},
        "metrics": {
            t["params"]["structural.activity.nmda_gain"]: recs[t["key"]]["metrics"] for t in tasks
        },
    }


ORDER = [
    "pass 1 (rest)",
    "baseline",
    "stress",
    "stimulation (sessions + refs)",
    "rest",
    "read-outs",
    "build",
    "phase states",
    "run, other",
    "worker, outside the run",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="100")
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--paths", default="old,new")
    ap.add_argument("--update-results", action="store_true")
    args = ap.parse_args(argv)
    scale = int(args.scale) if args.scale.isdigit() else args.scale
    work = Path(tempfile.mkdtemp(prefix="bench_search_"))
    try:
        # warm-up: fills the build cache (one point, old path), not timed
        t0 = time.perf_counter()
        run_path("warmup", False, scale, 1, 1, work)
        warm = time.perf_counter() - t0
        rows = [
            run_path(p, p == "new", scale, args.points, args.workers, work)
            for p in args.paths.split(",")
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = None
    if len(rows) == 2:
        same = rows[0]["metrics"] == rows[1]["metrics"]
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "scale": scale,
        "points": args.points,
        "workers": args.workers,
        "warmup_s": round(warm, 1),
        "rows": rows,
        "identical_metrics": same,
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, "
        f"Python {platform.python_version()}",
    }
    out = HERE / "results" / f"search_scale{scale}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    md = table(res)
    print(md)
    if args.update_results:
        _update_results_page(md)
    if same is False:
        raise SystemExit("metrics differ between the paths")


def table(res: dict) -> str:
    rows = res["rows"]
    lines = [
        f"### Search throughput ({res['date']})",
        "",
        f"{res['points']} mechanism-search trial points (3 conditions of "
        f"aitbs_study_mechanisms, nmda_gain varied) at scale {res['scale']}, "
        f"{res['workers']} local workers, each path into a fresh store after a warm-up "
        f"({res['warmup_s']} s).  Machine: {res['machine']}.  Metrics identical "
        f"between the paths: {res['identical_metrics']}.",
        "",
        "| path | points | wall s | studies/hour | 1-min load |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {r['points']} | {r['wall_s']} | {r['per_hour']} | {r['load']} |"
        )
    lines += [
        "",
        "Worker time by phase (s, summed over workers; exclusive):",
        "",
        "| phase | " + " | ".join(r["path"] for r in rows) + " |",
        "| --- |" + " --- |" * len(rows),
    ]
    keys = [k for k in ORDER if any(k in r["split"] for r in rows)] + sorted(
        {k for r in rows for k in r["split"]} - set(ORDER)
    )
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(str(r["split"].get(k, 0.0)) for r in rows) + " |")
    lines.append(
        "| total | " + " | ".join(str(round(sum(r["split"].values()), 1)) for r in rows) + " |"
    )
    return "\n".join(lines) + "\n"


def _update_results_page(md: str) -> None:
    page = HERE / "RESULTS.md"
    text = page.read_text()
    section = "## Search throughput (issue 21)\n\n`python benchmarks/bench_search.py`\n\n" + md
    if "## Search throughput (issue 21)" in text:
        text = re.sub(
            r"## Search throughput \(issue 21\)\n.*?(?=\n## |\Z)",
            lambda _: section.rstrip() + "\n",
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip() + "\n\n" + section
    page.write_text(text)


if __name__ == "__main__":
    main()
