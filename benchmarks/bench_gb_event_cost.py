"""What the Graupner-Brunel event code costs in the 4k circuit (issue 12): the same network
built with variants of the GB update, profiled (Brian2 ``profile=True``).

Variants (the event code comes from ``cortexsim.plasticity.synaptic._advance_code``; the
variants replace it in a child process, the shipped code is not changed):

* ``shipped``: the rule as it is (per event: times above theta_p and theta_d from one shared
  log, ``t_p = t_d - tau_ca*log(theta_p/theta_d)`` clipped, two exponential relaxations of rho,
  the exact cubic solution, the calcium decay);
* ``two_logs``: the rule as first written (one log per threshold) -- the same numbers up to
  rounding;
* ``no_gb_math``: only the calcium decay and ``t_last`` (NOT the model: no plasticity) -- the
  floor set by memory access and the spike queues, i.e. what the GB arithmetic costs on top.

Each variant is built in its own process (one ``cpp_standalone`` build per process) and run at
baseline and during the first iTBS bursts (as ``bench_circuit.py``), two repeats, fastest kept.
Writes ``benchmarks/results/gb_event_cost.json`` and ``gb_event_cost.md``.  A measurement,
not a test.

    python benchmarks/bench_gb_event_cost.py            # 4000 neurons, ~4 min on 2 cores
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
VARIANTS = ("shipped", "two_logs", "no_gb_math")


def _patch(variant: str) -> None:
    from cortexsim.plasticity import synaptic
    orig = synaptic._advance_code
    two_logs = ("gb_tp = clip(gb_tau_ca*log(clip(c/gb_theta_p, 1, inf)), 0*second, gb_Dt)\n"
                "gb_td = clip(gb_tau_ca*log(clip(c/gb_theta_d, 1, inf)), 0*second, gb_Dt)")

    def two_logs_code(p):
        s = orig(p)
        shared = ("gb_lc = log(clip(c/gb_theta_d, 1, inf))\n"
                  "gb_td = clip(gb_tau_ca*gb_lc, 0*second, gb_Dt)\n"
                  f"gb_tp = clip(gb_tau_ca*(gb_lc - {float(np.log(p.theta_p / p.theta_d))!r}), "
                  "0*second, gb_Dt)")
        if shared not in s:
            raise RuntimeError("the GB event code changed; update this benchmark's variant")
        return s.replace(shared, two_logs)

    def no_gb_math(p):
        return "c = c*exp(-(t - t_last)/gb_tau_ca)\nt_last = t"
    if variant == "two_logs":
        synaptic._advance_code = two_logs_code
    elif variant == "no_gb_math":
        synaptic._advance_code = no_gb_math


def child(variant: str, n: int, reps: int, out: str) -> None:
    """Build and run one variant (in a process of its own); write a JSON and the arrays."""
    import brian2 as b2
    sys.path.insert(0, str(HERE))
    from bench_circuit import _itbs
    b2.prefs.logging.console_log_level = "ERROR"
    _patch(variant)
    from cortexsim.circuit.network import Circuit
    os.environ["CORTEXSIM_PROFILE"] = "1"
    c = Circuit(n, duration_s=1.0, seed=0, build_dir=tempfile.mkdtemp(prefix="gbcost_"))
    os.environ.pop("CORTEXSIM_PROFILE")
    res, arrays = {}, {}
    for cond, st in (("baseline", None), ("itbs", _itbs(1.0))):
        best = None
        for _ in range(reps):
            r = c.run(st, run_seed=1)
            loop = float(c._device._last_run_time)
            if best is None or loop < best[0]:
                info = {k: float(t / b2.second)
                        for k, t in c._device.network_get_profiling_info(c.net)}
                best = (loop, info)
        gb = {k: v for k, v in best[1].items() if k.startswith(c.site_group + "_")}
        res[cond] = {"loop_s": best[0], "total_profiled_s": sum(best[1].values()),
                     "gb_code_objects": gb, "mean_rate_hz": float(r.spike_counts.mean())}
        arrays[f"{cond}_counts"] = r.spike_counts
        arrays[f"{cond}_rho"] = r.syn["rho"]
    np.savez(out + ".npz", **arrays)
    Path(out + ".json").write_text(json.dumps(res))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "OUTFILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.size, args.reps, args.child[1])
        return None
    tmp = tempfile.mkdtemp(prefix="gbcost_out_")
    load0 = os.getloadavg()
    rows = {}
    for v in VARIANTS:
        base = str(Path(tmp) / v)
        subprocess.run([sys.executable, __file__, "--size", str(args.size), "--reps",
                        str(args.reps), "--child", v, base], check=True)
        rows[v] = json.loads(Path(base + ".json").read_text())
        arr = np.load(base + ".npz")
        ref = np.load(str(Path(tmp) / "shipped") + ".npz")
        rows[v]["vs_shipped"] = {
            c: {"same_spike_counts": bool(np.array_equal(arr[f"{c}_counts"], ref[f"{c}_counts"])),
                "max_abs_rho_diff": float(np.abs(arr[f"{c}_rho"] - ref[f"{c}_rho"]).max())}
            for c in ("baseline", "itbs")}
    res = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "size": args.size,
           "reps": args.reps, "variants": rows, "loadavg_start": load0,
           "loadavg_end": os.getloadavg(), "cpus": os.cpu_count()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gb_event_cost.json").write_text(json.dumps(res, indent=1))
    L = [f"# Cost of the Graupner-Brunel event code ({args.size} neurons, profiled)\n",
         f"Date: {res['date']}. Machine: {os.cpu_count()} CPU cores (shared; 1-min load average "
         f"{load0[0]:.1f} at the start, {res['loadavg_end'][0]:.1f} at the end). 1 s biological "
         f"per run, fastest of {args.reps} repeats, Brian2 profiling on (CPU s of the loop). "
         "Script: `benchmarks/bench_gb_event_cost.py` (variants described there; "
         "`no_gb_math` is not the model, it measures what the arithmetic costs).\n",
         "| variant | condition | loop s per bio s | GB post-spike pathway s | GB calcium pathway s "
         "| all GB code objects s | spikes as shipped | max abs rho diff |",
         "|---|---|---|---|---|---|---|---|"]
    for v, row in rows.items():
        for cond in ("baseline", "itbs"):
            m, cmp_ = row[cond], row["vs_shipped"][cond]
            gb = m["gb_code_objects"]
            post = sum(t for k, t in gb.items() if k.endswith("_post_codeobject"))
            ca = sum(t for k, t in gb.items() if k.endswith("_ca_codeobject"))
            L.append(f"| {v} | {cond} | {m['loop_s']:.3g} | {post:.3f} | {ca:.3f} | "
                     f"{sum(gb.values()):.3f} | {'yes' if cmp_['same_spike_counts'] else 'no'} | "
                     f"{cmp_['max_abs_rho_diff']:.2g} |")
    (args.out / "gb_event_cost.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))
    return res


if __name__ == "__main__":
    main()
