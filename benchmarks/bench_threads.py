"""OpenMP threads of the compiled circuit: 1 vs 2 threads on the plastic network (issue 12).

Builds the full circuit (``Circuit(n, threads=k)``) once per thread count, runs baseline
(background only) and the first iTBS bursts (as ``bench_circuit.py``: ``itbs600`` at 250 V/m,
from 0.1 s) ``--reps`` times each, and reports the simulation loop's wall s per biological s
(fastest repeat) and whether every thread count gives the same numbers as one thread (spike
counts, spike times, per-synapse Graupner-Brunel state).  With ``--profile`` the builds are
profiled (Brian2 ``profile=True``) and the per-code-object times are reported too.

Writes ``benchmarks/results/threads.json`` and ``threads.md``.  A measurement, not a test.

    python benchmarks/bench_threads.py                     # 4000 neurons, 1 and 2 threads
    python benchmarks/bench_threads.py --size 1000 --duration 0.5 --reps 1   # quick
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_circuit import _itbs, machine_info  # noqa: E402  (the same iTBS stimulus as the circuit benchmark)

OUT = Path(__file__).resolve().parent / "results"


def measure(n, threads, duration_s, reps, build_root, profile):
    import brian2 as b2

    from cortexsim.circuit.network import Circuit
    if profile:
        os.environ["CORTEXSIM_PROFILE"] = "1"
    try:
        t0 = time.perf_counter()
        c = Circuit(n, duration_s=duration_s, seed=0, build_dir=build_root, threads=threads)
        build_s = time.perf_counter() - t0
    finally:
        os.environ.pop("CORTEXSIM_PROFILE", None)
    out = {"threads": threads, "n_neurons": c.N, "build_s": build_s, "conditions": {},
           "results": {}}
    for cond, stim in (("baseline", None), ("itbs", _itbs(duration_s))):
        loops, calls, binary = [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = c.run(stim, run_seed=1)
            calls.append(time.perf_counter() - t0)
            loops.append(float(c._device._last_run_time))
            binary.append(float(c._device.timers["run_binary"]))
        out["conditions"][cond] = {
            "loop_per_bio_s": min(loops) / duration_s, "binary_wall_per_bio_s": min(binary)
            / duration_s, "loop_s_all": loops, "binary_wall_s_all": binary, "call_s_all": calls,
            "mean_rate_hz": float(r.spike_counts.sum() / (c.N * duration_s))}
        if profile:
            info = c._device.network_get_profiling_info(c.net)
            out["conditions"][cond]["profile"] = {k: float(t / b2.second) for k, t in info}
        out["results"][cond] = r
    shutil.rmtree(c.directory, ignore_errors=True)
    return out


def same_numbers(a, b) -> bool:
    """Bit-identical spikes and per-synapse state."""
    if not (np.array_equal(a.spike_counts, b.spike_counts)
            and np.array_equal(a.spike_i, b.spike_i) and np.array_equal(a.spike_t, b.spike_t)):
        return False
    return all(np.array_equal(a.syn[k], b.syn[k]) for k in a.syn)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import brian2 as b2
    b2.prefs.logging.console_log_level = "WARNING"
    root = tempfile.mkdtemp(prefix="cortexsim_threads_")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        rows = [measure(args.size, k, args.duration, args.reps, root, args.profile)
                for k in args.threads]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ref = rows[0]
    for row in rows:
        row["same_numbers_as_first"] = all(same_numbers(ref["results"][c], row["results"][c])
                                           for c in row["results"])
    for row in rows:
        row.pop("results")
    res = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "size": args.size,
           "duration_s": args.duration, "reps": args.reps, "rows": rows,
           "machine": machine_info(b2, load0),
           "total_s": time.perf_counter() - t0}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threads.json").write_text(json.dumps(res, indent=1))
    L = [f"# OpenMP threads of the compiled circuit ({args.size} neurons)\n",
         f"Date: {res['date']}. Machine: {os.cpu_count()} CPU cores, Python "
         f"{platform.python_version()}, Brian2 {b2.__version__}; 1-min load average "
         f"{load0[0]:.1f} at the start, {res['machine']['loadavg_end'][0]:.1f} at the end (a shared "
         f"machine: other jobs ran). {args.duration} s biological per run, fastest of "
         f"{args.reps} repeats. Script: `benchmarks/bench_threads.py`.\n",
         "Brian2 times the simulation loop with `std::clock()` (CPU time of the process) in a "
         "build without OpenMP and with `omp_get_wtime()` (wall time) in an OpenMP build, so "
         "the loop figures of 1 and 2 threads are not comparable; the speed-up is taken from "
         "the wall time of the whole binary (loop + start, array loading, synapse creation, "
         "writing results: the same serial work in both builds).\n",
         "| threads | condition | rate (Hz) | loop s per bio s | binary wall s per bio s | "
         "speed-up (binary wall) | same numbers as first |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for cond, m in row["conditions"].items():
            sp = ref["conditions"][cond]["binary_wall_per_bio_s"] / m["binary_wall_per_bio_s"]
            kind = "CPU" if row["threads"] == 1 else "wall"
            L.append(f"| {row['threads']} | {cond} | {m['mean_rate_hz']:.2f} | "
                     f"{m['loop_per_bio_s']:.3g} ({kind}) | {m['binary_wall_per_bio_s']:.3g} | "
                     f"{sp:.2f} | {'yes' if row['same_numbers_as_first'] else 'NO'} |")
    if args.profile:
        L.append("\nPer code object (s, profiled runs):\n")
        names = sorted({k for row in rows for m in row["conditions"].values()
                        for k in m.get("profile", {})},
                       key=lambda k: -ref["conditions"]["itbs"]["profile"].get(k, 0.0))
        head = [f"{c}, {row['threads']} thr" for row in rows for c in row["conditions"]]
        L.append("| code object | " + " | ".join(head) + " |")
        L.append("|---" * (len(head) + 1) + "|")
        for k in names:
            L.append(f"| `{k}` | " + " | ".join(
                f"{m['profile'].get(k, 0.0):.3f}" for row in rows
                for m in row["conditions"].values()) + " |")
    (args.out / "threads.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))
    return res


if __name__ == "__main__":
    main()
