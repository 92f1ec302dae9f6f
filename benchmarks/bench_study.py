"""Wall time of the README's main job (the aiTBS study at --scale small), cold and warm.

``cortexsim run experiments/aitbs_study.toml --workers 2`` (issue 12's targets: <= 90 s with an
empty build cache, <= 60 s warm) with an empty and with a warm build cache, and, side by side in
the same run, the two costs removed from it on 2026-11-30:

* the GB mean field that carries each synapse's efficacy over the unsimulated rest of a session
  (:func:`cortexsim.plasticity.synaptic.advance_fractions`): the fused numba kernel vs the
  numpy split-step loop it replaced (same numbers bit for bit), at the study's plastic-synapse
  count and session length;
* a rebuild of a cached network in a new process: Brian2 2.9 writes the clocks' initial values in
  set order, so ``main.cpp`` came out reordered on about half of the rebuilds and ``make``
  recompiled it; :func:`cortexsim.circuit.build_cache.keep_cached_sources` puts the cached
  source back.  Measured as the ``make`` time of a rebuild with and without it.

The study runs in a subprocess each (``--json``, output in a temporary folder), the build cache in
a temporary ``$CORTEXSIM_BUILD_DIR`` (first run: compiles, second: warm).  Writes
``benchmarks/results/study_time.json`` and ``study_time.md``, then exits 1 if the two runs gave
different summary numbers.  A measurement, not a test.

    python benchmarks/bench_study.py                # --workers 2
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_circuit import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "results"


def _study(spec: str, scale: str, workers: int, env: dict, out: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cortexsim.cli", "run", spec, "--scale", scale,
                    "--workers", str(workers), "--out", str(out), "--json"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "summary.json").read_text())["metrics"]


def mean_field(n_syn: int, duration_s: float, reps: int = 3) -> dict:
    from cortexsim.plasticity.synaptic import advance_fractions, get_params
    p = get_params()
    rng = np.random.default_rng(1)
    rho = rng.uniform(0, 1, n_syn)
    fp = rng.uniform(0, 0.02, n_syn)
    fd = fp + rng.uniform(0, 0.05, n_syn)
    advance_fractions(rho[:10], fp[:10], fd[:10], 10.0, p)     # numba: compiled or loaded
    t_k, t_n = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        a = advance_fractions(rho, fp, fd, duration_s, p)
        t_k.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = advance_fractions(rho, fp, fd, duration_s, p, backend="numpy")
        t_n.append(time.perf_counter() - t0)
    return {"synapses": n_syn, "duration_s": duration_s, "kernel_s": float(np.median(t_k)),
            "numpy_loop_s": float(np.median(t_n)), "bit_identical": bool(np.array_equal(a, b)),
            "ratio": float(np.median(t_n) / np.median(t_k))}


def rebuild_make(scale, base: Path, reps: int = 4) -> dict:
    """``make`` time of rebuilding the (cached) short build of the study in fresh processes,
    with and without putting the cached sources back."""
    code = f"""
import sys, time, json
from cortexsim.circuit import build_cache
if sys.argv[1] == "off":
    build_cache.keep_cached_sources = lambda own, cached: []
import brian2 as b2
from cortexsim.experiment import load_experiment
from cortexsim.experiment.runner import _Runner
cfg = load_experiment("{ROOT / 'experiments' / 'aitbs_study.toml'}").resolved_config(
    None, {scale!r}, None, 1)
r = _Runner(cfg, progress=False)
c = cfg["conditions"]["stress"]
trees = r._trees(c)
circ = r._short_circuit(r._network_key(trees), trees)
print(json.dumps(b2.device.timers["compile"]["make"]))
"""
    env = {**os.environ, "CORTEXSIM_BUILD_DIR": str(base)}
    out = {}
    for mode in ("off", "on"):
        times = []
        for _ in range(reps):
            res = subprocess.run([sys.executable, "-c", code, mode], env=env, check=True,
                                 capture_output=True, text=True)
            times.append(float(res.stdout.strip().splitlines()[-1]))
        out[mode] = times
    return {"make_s_without": out["off"], "make_s_with": out["on"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--out", type=Path, default=OUT,
                    help="folder of study_time.json / .md (default benchmarks/results)")
    args = ap.parse_args(argv)
    args.scale = "small"          # the README job; the mean field below uses its synapse count
    spec = str(ROOT / "experiments" / "aitbs_study.toml")
    started = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cortexsim_bench_study_") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "CORTEXSIM_BUILD_DIR": str(tmp / "builds")}
        cold, m_cold = _study(spec, args.scale, args.workers, env, tmp / "cold")
        warm, m_warm = _study(spec, args.scale, args.workers, env, tmp / "warm")
        make = rebuild_make(args.scale, tmp / "builds")
    # the study's plastic synapses and the unsimulated part of a 592.8-s session (+1 s tail)
    mf = mean_field(119_371, 593.8 - 10.0)
    import brian2
    res = {"date": started, "machine": machine_info(brian2, load_start), "scale": args.scale,
           "workers": args.workers, "cold_s": cold, "warm_s": warm,
           "same_numbers": m_cold == m_warm, "mean_field": mf, "rebuild": make}
    mach = res["machine"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "study_time.json").write_text(json.dumps(res, indent=1))
    w_off, w_on = make["make_s_without"], make["make_s_with"]
    md = [f"# The study's wall time ({started})", "",
          f"`cortexsim run experiments/aitbs_study.toml --scale {args.scale} --workers "
          f"{args.workers}` ({mach['cpus']} CPU cores, Python {mach['python']}, Brian2 "
          f"{mach['brian2']}; 1-min load average {mach['loadavg_start'][0]:.2f} at the start, "
          f"{mach['loadavg_end'][0]:.2f} at the end):", "",
          "| build cache | wall (s) | target (issue 12) |", "|---|---|---|",
          f"| empty (compiles) | {cold:.1f} | <= 90 |", f"| warm | {warm:.1f} | <= 60 |", "",
          f"Same summary numbers in both runs: {res['same_numbers']}.", "",
          "## Side by side", "",
          f"* GB mean field over {mf['duration_s']:.0f} s of a session at {mf['synapses']:,} "
          f"synapses: fused numba kernel {mf['kernel_s']:.3f} s, numpy split-step loop "
          f"{mf['numpy_loop_s']:.3f} s ({mf['ratio']:.1f}x; bit-identical: "
          f"{mf['bit_identical']}); a stimulated condition has 10 sessions.",
          "* `make` when a new process rebuilds the cached short build (s, each run): without "
          f"putting the cached sources back {', '.join(f'{t:.2f}' for t in w_off)}; with "
          f"{', '.join(f'{t:.2f}' for t in w_on)}.", ""]
    (args.out / "study_time.md").write_text("\n".join(md))
    print("\n".join(md))
    if not res["same_numbers"]:
        sys.exit("the cold and the warm run gave different summary numbers")


if __name__ == "__main__":
    main()
