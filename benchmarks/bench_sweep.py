"""Sweep throughput: the same points with 1 and 2 local workers and on a Dask LocalCluster of 2
workers, side by side in one run; builds (compiles) per sweep.

The points are a grid over the stimulation intensity of a tiny experiment (1 day baseline, one
30-pulse iTBS train, 1 day rest; the intensity is a run-time value, so every run re-uses the
same compiled networks).  The build cache is warmed first (one run), then every executor runs
the whole grid into a fresh store.  Writes benchmarks/results/sweep.json and sweep.md and the
"Sweeps" section of benchmarks/RESULTS.md.

    python benchmarks/bench_sweep.py [--points 4] [--scale 100]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

from cortexsim.params import experiments_dir

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"

TINY = (experiments_dir() / "tiny.toml").read_text()   # the shipped smoke-test spec

SWEEP = """
[sweep]
name = "bench_sweep"
base = "tiny.toml"
design = "grid"
seeds = [1]
[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
low = 60.0
high = 120.0
n = NPOINTS
[[metrics]]
name = "it5_24h"
var = "spine_density_rel"
condition = "stim"
minus_condition = "control"
readout = "24h"
population = "IT_L5"
"""


def _one(label, sweep, out, **kw):
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    s = sweep.run(out=out, progress=False, **kw)
    wall = time.perf_counter() - t0
    assert s["finished"] == s["runs"], s
    return {"executor": label, "runs": s["runs"], "wall_s": round(wall, 1),
            "runs_per_min": round(60 * s["runs"] / wall, 2), "builds": s["builds"],
            "cache_hits": s["cache_hits"],
            "load_avg_1min": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--scale", type=int, default=100)
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    from cortexsim.sweep import load_sweep
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    (tmp / "tiny.toml").write_text(TINY)
    (tmp / "sw.toml").write_text(SWEEP.replace("NPOINTS", str(a.points)))
    sweep = load_sweep(tmp / "sw.toml")
    from cortexsim.sweep.executor import execute
    t0 = time.perf_counter()
    list(execute(sweep.tasks(a.scale, tmp / "warm")[:1], workers=1))
    warm = round(time.perf_counter() - t0, 1)
    rows = [_one("local, 1 worker", sweep, tmp / "w1", workers=1, scale=a.scale),
            _one("local, 2 workers", sweep, tmp / "w2", workers=2, scale=a.scale)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        rows.append(_one("Dask LocalCluster, 2 workers", sweep, tmp / "dask",
                         scheduler=client, scale=a.scale))
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup_vs_1"] = round(base / r["wall_s"], 2)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(),
               "load_avg_1min_at_end": round(os.getloadavg()[0], 2)}
    res = {"points": a.points, "scale": a.scale, "warmup_s": warm, "rows": rows,
           "machine": machine, "date": time.strftime("%Y-%m-%d %H:%M")}
    OUT.mkdir(exist_ok=True)
    (OUT / "sweep.json").write_text(json.dumps(res, indent=2))
    md = _markdown(res)
    (OUT / "sweep.md").write_text(md)
    _update_results_page(md)
    print(md)


def _markdown(res) -> str:
    lines = [f"### Sweep throughput ({res['date']})", "",
             f"{res['points']} points (tiny spec: 1 d baseline, 30-pulse iTBS, 1 d rest) at "
             f"scale {res['scale']}, each executor into a fresh store after a warm-up run "
             f"({res['warmup_s']} s) that fills the build cache.  Machine: "
             f"{res['machine']['cpus']} CPUs, {res['machine']['platform']}, Python "
             f"{res['machine']['python']}; 1-min load average at the end "
             f"{res['machine']['load_avg_1min_at_end']} (other jobs share the machine).", "",
             "| executor | runs | wall s | runs/min | speed-up vs 1 worker | builds | "
             "cache hits | 1-min load (start -> end) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["rows"]:
        lines.append(f"| {r['executor']} | {r['runs']} | {r['wall_s']} | {r['runs_per_min']} "
                     f"| {r['speedup_vs_1']} | {r['builds']} | {r['cache_hits']} | "
                     f"{r.get('load_avg_1min', '-')} |")
    lines += ["", "Target: >= 1.8x for 2 workers over 1.  `builds` counts compiles (build-cache "
              "misses) in the sweep; `cache hits` counts builds copied from the cache or "
              "re-used in the worker.", ""]
    return "\n".join(lines)


def _update_results_page(md: str) -> None:
    """Replace (or add) the "Sweeps" section of benchmarks/RESULTS.md."""
    page = HERE / "RESULTS.md"
    text = page.read_text() if page.is_file() else (
        "# Benchmark results\n\nThe latest figures of every benchmark, one section each "
        "(details in benchmarks/results/).\n")
    section = f"## Sweeps\n\n`python benchmarks/bench_sweep.py` ({md.splitlines()[0][4:]})\n" \
              + md.split("\n", 1)[1]
    if "## Sweeps" in text:
        text = re.sub(r"## Sweeps\n.*?(?=\n## |\Z)", lambda _: section.rstrip() + "\n", text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section
    page.write_text(text)


if __name__ == "__main__":
    main()
