"""Search throughput (issue 21): simulated studies per hour for mechanism-search trial points.

Runs ``--points`` trial points of the mechanism search on the sweep engine (the executor, its
point store, 2 local workers), each point the three conditions a fit trial of
``experiments/mechanism_search/common.toml`` needs (stress_aitbs, stress_sham,
stress_aitbs_it_silenced) of ``experiments/aitbs_study_mechanisms.toml`` (mechanisms on as
there), with the metrics and criterion targets of ``experiments/mechanism_search/nmda.toml``,
varying ``structural.activity.nmda_gain``.  The paths run in the same invocation, each into a
fresh store after a warm-up run that fills the build cache:

* ``old``: every point simulates its whole run (``CORTEXSIM_PHASE_STATES=0``: the path before
  issue 21);
* ``new`` (exact): points start from the stored state after the phases whose inputs they share
  (``cortexsim.experiment.phase_states``), load the stored outcome of every session whose inputs
  another point had (the sham condition's, every condition's first), share read-outs, rest
  references and pass 1, measure only the read-outs their metrics and criteria read, and re-run
  the worker's latest build;
* ``approx`` (opt-in, ``--stride K``): ``new`` with ``settings.session_stride = K`` (every K-th
  session simulated; an approximation whose error on the metrics is reported against ``new``).

Reported: wall time, simulated studies per hour, the number of network runs and their biological
seconds (independent of the machine's load), and a per-phase split of the workers' time
(exclusive: a build inside a session counts as build): pass 1 (rest statistics), baseline,
stress, stimulation (sessions incl. their reference runs), rest phases, read-outs, builds,
phase-state / session store, the rest of the run (model trees, drawn circuit, results) and the
worker outside the run (store, metrics).  The metrics of ``old`` and ``new`` must be identical
(checked, bit for bit).

    python benchmarks/bench_search.py --scale 100 --points 4          # iteration
    python benchmarks/bench_search.py --scale small --points 4 --stride 2 --update-results
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
#: network runs, their biological seconds and the compiled binaries' CPU seconds (the work,
#: whatever the machine's load)
_COUNTS: dict = {"network runs": 0, "network bio-s": 0.0, "network CPU-s": 0.0}


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children (and theirs)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _flush():
    d = os.environ.get("BENCH_SEARCH_TIMINGS")
    if d:
        Path(d, f"{os.getpid()}.json").write_text(json.dumps({**_TOTALS, "#": _COUNTS}))


def _counted_run(fn):
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        _COUNTS["network runs"] += 1
        _COUNTS["network bio-s"] += float(self.duration_s)
        c0 = _children_cpu()
        try:
            return fn(self, *args, **kwargs)
        finally:
            _COUNTS["network CPU-s"] += _children_cpu() - c0

    wrapper._bench = True
    return wrapper


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
    try:
        from cortexsim.experiment import readouts

        _patch(readouts.ReadoutPass, "run", "read-outs")
    except ImportError:
        _patch(runner._Runner, "_readouts", "read-outs")
    _patch(shared.SharedStats, "readout_run", "read-outs")
    _patch(network.Circuit, "__init__", "build")
    if not getattr(network.Circuit.run, "_bench", False):
        network.Circuit.run = _counted_run(network.Circuit.run)
    try:
        from cortexsim.experiment import phase_states

        _patch(phase_states.PhaseStateStore, "load", "phase / session store")
        _patch(phase_states.PhaseStateStore, "save", "phase / session store")
    except ImportError:
        pass
    from cortexsim.sweep import executor

    original = executor.run_point
    if not getattr(original, "_bench", False):
        executor.run_point = _timed("worker, outside the run", original)


install_timers()


# --------------------------------------------------------------------------- the benchmark
def search_tasks(scale, n_points: int, store: Path, stride: int = 1):
    """The tasks of ``n_points`` trial points (seed 1) and the fit's metrics / criteria
    (``stride`` > 1: ``settings.session_stride``, the approximation)."""
    from cortexsim.experiment import read_spec
    from cortexsim.sweep import build_runs
    from cortexsim.sweep.fit import FitSpec, read_fit
    from cortexsim.sweep.spec import validate

    spec = validate(FitSpec, read_fit(ROOT / "experiments/mechanism_search/nmda.toml"), "fit spec")
    metrics = [m.model_dump() for m in spec.metrics]
    crit = [t.criterion for t in spec.targets if t.criterion is not None]
    base = read_spec(ROOT / "experiments/aitbs_study_mechanisms.toml")
    if stride > 1:
        base["settings"]["session_stride"] = stride
    # 100 ... 800, geometric (the parameter's range is [0, 1000])
    gains = [100.0 * 2 ** (3 * k / max(n_points - 1, 1)) for k in range(n_points)]
    points = [{"structural.activity.nmda_gain": g} for g in gains]
    return build_runs(base, points, [1], scale, metrics, store, crit), metrics


def run_path(
    name: str, phase_states: bool, scale, n_points: int, workers: int, work: Path, stride: int = 1
):
    from cortexsim.sweep import run_tasks

    store = work / name / "store"
    tdir = work / name / "timings"
    tdir.mkdir(parents=True)
    os.environ["CORTEXSIM_PHASE_STATES"] = "1" if phase_states else "0"
    os.environ["BENCH_SEARCH_TIMINGS"] = str(tdir)
    tasks, _ = search_tasks(scale, n_points, store, stride)
    load0 = os.getloadavg()[0]
    t0, c0, p0 = time.perf_counter(), _children_cpu(), time.process_time()
    recs = run_tasks(tasks, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    # every CPU second of the path: the worker processes (reaped when the pool shut down), the
    # binaries they ran, and this process
    cpu = _children_cpu() - c0 + time.process_time() - p0
    os.environ.pop("BENCH_SEARCH_TIMINGS")
    split: dict = {}
    counts = {"network runs": 0, "network bio-s": 0.0, "network CPU-s": 0.0}
    for f in tdir.glob("*.json"):
        for k, v in json.loads(f.read_text()).items():
            if k == "#":
                for c, n in v.items():
                    counts[c] += n
            else:
                split[k] = split.get(k, 0.0) + v
    # the points' own CPU seconds (worker and binaries), in the order they were submitted: the
    # first wave (one point per worker) starts with nothing shared, the later ones are what a
    # long search sees
    per_point = [recs[t["key"]].get("cpu_s", float("nan")) for t in tasks]
    first, later = per_point[:workers], per_point[workers:]
    bad = [r for r in recs.values() if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"{name}: failed runs: {[r.get('error') for r in bad]}")
    return {
        "path": name,
        "points": len(tasks),
        "wall_s": round(wall, 1),
        "per_hour": round(len(tasks) / wall * 3600, 1),
        "load": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}",
        "stride": stride,
        "cpu_s": round(cpu, 1),
        # on 2 cores of its own (the CPU seconds a study needs, 2 per wall second)
        "per_hour_2_cores": round(len(tasks) / cpu * 3600 * 2, 1),
        "cpu_s_first_wave": round(sum(first) / len(first), 1) if first else None,
        "cpu_s_later": round(sum(later) / len(later), 1) if later else None,
        "network_runs": counts["network runs"],
        "network_bio_s": round(counts["network bio-s"], 1),
        "network_cpu_s": round(counts["network CPU-s"], 1),
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
    "phase / session store",
    "run, other",
    "worker, outside the run",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="100")
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--paths", default=None, help="default: old,new (and approx with --stride)")
    ap.add_argument("--stride", type=int, default=1, help="session_stride of the approx path")
    ap.add_argument("--update-results", action="store_true")
    ap.add_argument("--no-warmup", action="store_true", help="the build cache is warm already")
    args = ap.parse_args(argv)
    scale = int(args.scale) if args.scale.isdigit() else args.scale
    paths = (args.paths or ("old,new,approx" if args.stride > 1 else "old,new")).split(",")
    work = Path(tempfile.mkdtemp(prefix="bench_search_"))
    try:
        # warm-up: fills the build cache (one point, old path), not timed
        t0 = time.perf_counter()
        if not args.no_warmup:
            run_path("warmup", False, scale, 1, 1, work)
        warm = time.perf_counter() - t0
        rows = [
            run_path(
                p,
                p != "old",
                scale,
                args.points,
                args.workers,
                work,
                args.stride if p == "approx" else 1,
            )
            for p in paths
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by = {r["path"]: r for r in rows}
    same = None
    if "old" in by and "new" in by:
        same = by["old"]["metrics"] == by["new"]["metrics"]
    res = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "scale": scale,
        "points": args.points,
        "workers": args.workers,
        "warmup_s": round(warm, 1),
        "rows": rows,
        "identical_metrics": same,
        "approx_error": approx_error(by["new"], by["approx"])
        if "new" in by and "approx" in by
        else None,
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


def approx_error(exact: dict, approx: dict) -> dict:
    """Per metric: the largest and the mean |approx - exact| over the points, and the exact
    metric's spread (max - min over the points) for scale."""
    out = {}
    pts = sorted(exact["metrics"])
    for m in sorted(exact["metrics"][pts[0]]):
        e = [exact["metrics"][p][m] for p in pts]
        a = [approx["metrics"][p][m] for p in pts]
        d = [abs(x - y) for x, y in zip(a, e)]
        out[m] = {
            "max_abs": round(max(d), 5),
            "mean_abs": round(sum(d) / len(d), 5),
            "exact_range": round(max(e) - min(e), 5),
        }
    return out


def _later_rate(r: dict, base: dict) -> str:
    """Studies per hour on 2 free cores at the later points' CPU cost, and the ratio to the
    baseline's."""
    if not r.get("cpu_s_later") or not base.get("cpu_s_later"):
        return ""
    rate = 2 * 3600 / r["cpu_s_later"]
    return f"{rate:.1f} ({base['cpu_s_later'] / r['cpu_s_later']:.2f}x)"


def table(res: dict) -> str:
    rows = res["rows"]
    base = next((r for r in rows if r["path"] == "old"), rows[0])
    lines = [
        f"### Search throughput ({res['date']})",
        "",
        f"{res['points']} mechanism-search trial points (3 conditions of "
        f"aitbs_study_mechanisms, nmda_gain varied) at scale {res['scale']}, "
        f"{res['workers']} local workers, each path into a fresh store after a warm-up "
        f"({res['warmup_s']} s).  Machine: {res['machine']}.  Metrics of old and new "
        f"identical (bit for bit): {res['identical_metrics']}.",
        "",
        "| path | points | wall s | studies/hour (wall) | CPU s | studies/hour on 2 free "
        "cores (CPU) | vs old (CPU) | network runs | network bio-s | binaries' CPU s | "
        "CPU s per point: first wave / later | later points per hour on 2 free cores | "
        "1-min load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        name = r["path"] + (f" (session_stride {r['stride']})" if r.get("stride", 1) > 1 else "")
        lines.append(
            f"| {name} | {r['points']} | {r['wall_s']} | {r['per_hour']} | {r['cpu_s']} | "
            f"{r['per_hour_2_cores']} | {r['per_hour_2_cores'] / base['per_hour_2_cores']:.2f}x "
            f"| {r['network_runs']} | {r['network_bio_s']} | {r['network_cpu_s']} | "
            f"{r.get('cpu_s_first_wave')} / {r.get('cpu_s_later')} | {_later_rate(r, base)} | "
            f"{r['load']} |"
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
    if res.get("approx_error"):
        lines += [
            "",
            "Error of the approximation on the search's metrics (|approx - new| over the points; "
            "the exact metric's range over the points for scale):",
            "",
            "| metric | max abs error | mean abs error | exact range over points |",
            "| --- | --- | --- | --- |",
        ]
        for m, e in res["approx_error"].items():
            lines.append(f"| {m} | {e['max_abs']} | {e['mean_abs']} | {e['exact_range']} |")
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
