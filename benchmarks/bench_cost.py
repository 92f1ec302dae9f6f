"""Wall time and peak memory of ``cortexsim run`` at several scales: the measurements behind
``cortexsim/costs.toml`` (the per-biological-second costs of ``cortexsim check``).

Each case runs ``cortexsim run SPEC --scale S --workers W --quiet`` into a fresh output folder
(with the user's build cache, so the first run of a network may compile it) while the resident
memory (RSS) of the whole process tree (the Python process, its worker processes and the
compiled Brian2 binaries) is sampled every 0.1 s.  For every run it records the wall time, the
peak of the summed RSS, the largest single process, the load average and whether the build
cache had to compile (``compiled``: the command printed "compiling").  Beside each run it gives
what ``cortexsim check`` estimates for it (:func:`cortexsim.cost.estimate`).

Usage::

    python benchmarks/bench_cost.py tiny:100 tiny:4000 aitbs_study:small [--workers 2]
        [--repeat 2] [--json benchmarks/results/cost.json]

The machine is shared: wall times measured while other jobs run are inflated (the load average
is recorded); memory is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(sum, max) RSS in bytes over ``proc`` and its descendants."""
    total = biggest = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            r = p.memory_info().rss
        except psutil.Error:
            continue
        total += r
        biggest = max(biggest, r)
    return total, biggest


def measure(spec: str, scale: str, workers: int) -> dict:
    """One ``cortexsim run``: wall s, peak summed / single RSS (MB), load average."""
    out = tempfile.mkdtemp(prefix="bench_cost_")
    cmd = [
        sys.executable,
        "-m",
        "cortexsim.cli",
        "run",
        spec,
        "--scale",
        scale,
        "--out",
        out,
        "--workers",
        str(workers),
        "--quiet",
    ]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    peak_sum = peak_one = 0
    while proc.poll() is None:
        s, m = tree_rss(ps)
        peak_sum, peak_one = max(peak_sum, s), max(peak_one, m)
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    text = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text}")
    return {
        "spec": spec,
        "scale": scale,
        "workers": workers,
        "wall_s": round(wall, 2),
        "peak_rss_sum_MB": round(peak_sum / 2**20),
        "peak_rss_one_MB": round(peak_one / 2**20),
        "compiled": "compiling" in text,
        "load_1min_start": round(load0, 2),
        "load_1min_end": round(os.getloadavg()[0], 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="+", metavar="SPEC:SCALE")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per case (the first may compile; later ones use the cache)",
    )
    ap.add_argument(
        "--no-estimate",
        action="store_true",
        help="measure only (no cortexsim.cost estimate beside each run)",
    )
    ap.add_argument("--json", default=None, help="append the records to this JSON file")
    a = ap.parse_args(argv)
    records = []
    for case in a.cases:
        spec, scale = case.split(":")
        for _ in range(a.repeat):
            r = measure(spec, scale, a.workers)
            if not a.no_estimate:
                from cortexsim.cost import estimate_spec

                est = estimate_spec(spec, scale=scale, workers=a.workers)
                r["estimate_wall_s"] = round(est["wall_s"], 1)
                r["estimate_compile_s"] = round(est["compile_s"], 1)
                r["estimate_peak_MB"] = round(est["peak_memory_MB"])
            print(json.dumps(r), flush=True)
            records.append(r)
    if a.json:
        p = Path(a.json)
        old = json.loads(p.read_text()) if p.is_file() else []
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "python": platform.python_version(),
        }
        p.write_text(json.dumps(old + [{**meta, **r} for r in records], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
