"""Per-run overhead of the compiled circuit (issue 12): what one ``Circuit.run`` costs besides
the simulation loop, at a small scale.

A ``cpp_standalone`` run is: Python writes the run-time values (``run_args``: one file per new
array in ``static_arrays/``), starts the binary, which loads its arrays, creates the synapses
and their spike queues, runs the loop, and writes every array to the results folder; Python
then checks the neuron state for NaN and reads back what :meth:`Circuit._collect` needs.  This
script times those parts (``--reps`` runs of a ``--duration`` s phase, baseline), as the median
over the runs:

* ``loop``: the simulation loop (Brian2's ``last_run_info``);
* ``binary, outside the loop``: process start, array loading, synapse creation, writing results;
* ``Python before the binary``: run-time values and their files;
* ``Python after the binary``: NaN check and reading the results (``_collect``);

and, since the loop time Brian2 reports for a single-threaded build is CPU time
(``std::clock()``) while the rest are wall times that include waiting for a core on a shared
machine, the CPU time of the binary outside the loop (its user + sys time from
``getrusage(RUSAGE_CHILDREN)`` minus the loop) and of the Python side.

Writes ``benchmarks/results/run_overhead.json`` and ``run_overhead.md``.  A measurement, not a
test.

    python benchmarks/bench_run_overhead.py                 # --scale small, 1-s runs, 5 repeats
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_circuit import _itbs, machine_info  # noqa: E402  (the iTBS stimulus of the circuit benchmark)

OUT = Path(__file__).resolve().parent / "results"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="small")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import brian2 as b2

    from cortexsim.circuit.network import Circuit
    b2.prefs.logging.console_log_level = "WARNING"
    scale = int(args.scale) if args.scale.isdigit() else args.scale
    root = tempfile.mkdtemp(prefix="cortexsim_overhead_")
    load0 = os.getloadavg()
    try:
        c = Circuit(scale, duration_s=args.duration, seed=0, build_dir=root)
        dev = c._device
        collect = c._collect
        t_collect = []

        def timed_collect():
            t0 = time.perf_counter()
            r = collect()
            t_collect.append(time.perf_counter() - t0)
            return r
        c._collect = timed_collect
        parts = {}
        for cond, stim in (("baseline", None), ("itbs", _itbs(args.duration))):
            parts[cond] = []
            for k in range(args.reps):
                n_before = len(t_collect)
                ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                p0, t0 = time.process_time(), time.perf_counter()
                c.run(stim, run_seed=k)
                call, py_cpu = time.perf_counter() - t0, time.process_time() - p0
                ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                binary = float(dev.timers["run_binary"])
                loop = float(dev._last_run_time)
                col = t_collect[n_before]
                parts[cond].append({
                    "call_s": call, "binary_s": binary, "loop_s": loop, "collect_s": col,
                    "python_before_s": call - binary - col,
                    "binary_cpu_s": (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime),
                    "python_cpu_s": py_cpu})
        sizes = {p.name: p.stat().st_size for p in Path(c.directory, "results").iterdir()}
        n_syn = sum(g.conn["i"].size for g in c.groups.values())
        n = c.N
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {c: {k: float(np.median([p[k] for p in ps])) for k in ps[0]}
           for c, ps in parts.items()}
    rows = [(name, {c: f(m) for c, m in med.items()}) for name, f in (
        ("simulation loop", lambda m: m["loop_s"]),
        ("binary, outside the loop (start, load arrays, create synapses, write results)",
         lambda m: m["binary_s"] - m["loop_s"]),
        ("Python before the binary (run-time values, their files)",
         lambda m: m["python_before_s"]),
        ("Python after the binary (NaN check, reading results: _collect)",
         lambda m: m["collect_s"]),
        ("whole run() call", lambda m: m["call_s"]),
        ("CPU: binary outside the loop (its user + sys time minus the loop)",
         lambda m: m["binary_cpu_s"] - m["loop_s"]),
        ("CPU: Python (the whole call)", lambda m: m["python_cpu_s"]))]
    res = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "scale": args.scale,
           "n_neurons": n, "n_synapses": int(n_syn), "duration_s": args.duration,
           "runs": parts, "median": med, "results_bytes": int(sum(sizes.values())),
           "results_files": len(sizes),
           "machine": machine_info(b2, load0)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "run_overhead.json").write_text(json.dumps(res, indent=1))
    L = [f"# Per-run overhead of the compiled circuit ({n} neurons, {n_syn:,} synapses)\n",
         f"Date: {res['date']}. Machine: {os.cpu_count()} CPU cores, Python "
         f"{platform.python_version()}, Brian2 {b2.__version__}; 1-min load average "
         f"{load0[0]:.1f} at the start (shared machine). One `Circuit.run` of a "
         f"{args.duration} s phase (baseline; iTBS as in `bench_circuit.py`), median of "
         f"{args.reps} runs. The binary writes "
         f"{len(sizes)} result files ({res['results_bytes'] / 1e6:.1f} MB) per run. Script: "
         "`benchmarks/bench_run_overhead.py`.\n",
         "| part | baseline: s per run | share | iTBS: s per run | share |",
         "|---|---|---|---|---|"]
    for name, v in rows:
        L.append(f"| {name} | " + " | ".join(
            f"{v[c]:.3f} | {100 * v[c] / med[c]['call_s']:.0f} %" for c in med) + " |")
    (args.out / "run_overhead.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))
    return res


if __name__ == "__main__":
    main()
