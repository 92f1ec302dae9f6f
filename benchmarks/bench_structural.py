"""Benchmark + calibration report of the structural spine kernel.

Measures spine-updates/s (sites x steps / wall s) of the numba kernel and the numpy reference
at 1e5, 1e6, 1e7 sites, and the calibrated numbers (baseline turnover, stress loss, recovery,
dt convergence).  Writes benchmarks/results/structural.json and .md.

    python benchmarks/bench_structural.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

from cortexsim.plasticity import structural as st
from cortexsim.plasticity.stress import stress_per_step

OUT = Path(__file__).resolve().parent / "results"


def _time(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def speed(sizes, n_steps=96, numpy_steps=12):
    rows = []
    g = np.random.default_rng(0)
    for n in sizes:
        s0 = st.SpineState.initial(n, 1)
        plast = g.random(n).astype(np.float32)
        drive = (g.normal(0, 0.3, n)).astype(np.float32)
        S = np.linspace(0.0, 1.0, n_steps)
        st.advance(s0, plast, drive, S[:2], 1.0, 2, seed=1)          # compile / cache load
        run = lambda s0=s0, plast=plast, drive=drive, S=S: st.advance(  # noqa: E731
            s0, plast, drive, S, 1.0, n_steps, seed=1)
        t_nb = _time(run)
        row = {"n_sites": n, "n_steps": n_steps, "numba_s": t_nb,
               "numba_updates_per_s": n * n_steps / t_nb}
        for th in (1,):
            numba.set_num_threads(th)
            t1 = _time(run, 1)
            row[f"numba_{th}thread_updates_per_s"] = n * n_steps / t1
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        Sn = S[:numpy_steps]
        run_np = lambda s0=s0, plast=plast, drive=drive, Sn=Sn: st.advance(  # noqa: E731
            s0, plast, drive, Sn, 1.0, numpy_steps, seed=1, backend="numpy")
        t_np = _time(run_np, 1 if n >= 10**7 else 2)
        row.update(numpy_steps=numpy_steps, numpy_s=t_np,
                   numpy_updates_per_s=n * numpy_steps / t_np)
        row["speedup"] = row["numba_updates_per_s"] / row["numpy_updates_per_s"]
        rows.append(row)
        print(f"n={n:>9d}  numba {row['numba_updates_per_s']:.3g} upd/s "
              f"(1 thread {row['numba_1thread_updates_per_s']:.3g})  numpy "
              f"{row['numpy_updates_per_s']:.3g} upd/s  speedup {row['speedup']:.1f}x", flush=True)
    return rows


def calibration(n=200_000, dt_h=2.0):
    res = {}
    s0 = st.SpineState.initial(n, 2, track_age=True)
    occ0, stab0, nasc0 = s0.state > 0, s0.state == 2, s0.state == 1
    s14, _ = st.advance(s0, 0.5, 0.0, 0.0, dt_h, int(14 * 24 / dt_h), seed=9)
    s30, _ = st.advance(s0, 0.5, 0.0, 0.0, dt_h, int(30 * 24 / dt_h), seed=9)
    s4, _ = st.advance(s0, 0.5, 0.0, 0.0, dt_h, int(4 * 24 / dt_h), seed=9)
    surv14 = (s14.state > 0) & (s14.age >= 14 * 24 - 1e-3)
    res["baseline_occupancy"] = float(occ0.mean())
    res["baseline_stable_fraction_of_spines"] = float(stab0.sum() / occ0.sum())
    res["eliminated_14d"] = float(1 - surv14[occ0].mean())
    res["formed_14d"] = float(((s14.state > 0) & ~surv14).sum() / (s14.state > 0).sum())
    res["stable_surviving_30d"] = float(((s30.state > 0) & (s30.age >= 720 - 1e-3))[stab0].mean())
    res["all_spines_surviving_30d"] = float(((s30.state > 0) & (s30.age >= 720 - 1e-3))[occ0].mean())
    res["nascent_surviving_4d"] = float(((s4.state > 0) & (s4.age >= 96 - 1e-3))[nasc0].mean())
    for days in (14, 21):
        rec = 28
        ns = int((days + rec) * 24 / dt_h)
        S = stress_per_step({"days": days, "hours_per_day": 6}, 0.0, dt_h, ns)
        _, _, tr = st.run_slow_phase(st.SpineState.initial(n, 3), 0.5, S, dt_h, ns, seed=3)
        t = tr["t_h"] / 24
        rel = tr["density"] / tr["density"][0]
        defc = 1 - rel
        def at(d, rel=rel, t=t):
            return float(rel[np.searchsorted(t, d)])
        i7, i21 = np.searchsorted(t, days + 7), np.searchsorted(t, days + 21)
        res[f"stress{days}d"] = {
            "loss_at_end": 1 - at(days), "max_loss": float(defc.max()),
            "loss_after_7d_recovery": 1 - at(days + 7), "loss_after_14d_recovery": 1 - at(days + 14),
            "loss_after_28d_recovery": 1 - at(days + 28),
            "recovery_tau_days_7_to_21": float(14 / np.log(defc[i7] / defc[i21])),
        }
    conv = {}
    for dt in (4.0, 2.0, 1.0):
        ns = int(21 * 24 / dt)
        S = stress_per_step({"days": 14, "hours_per_day": 6}, 0.0, dt, ns)
        _, _, tr = st.run_slow_phase(st.SpineState.initial(n, 4), 0.5, S, dt, ns, seed=4)
        t = tr["t_h"] / 24
        rel = tr["density"] / tr["density"][0]
        conv[f"dt_{dt:g}h"] = {"rel_density_14d": float(rel[np.searchsorted(t, 14)]),
                              "rel_density_21d": float(rel[np.searchsorted(t, 21)])}
    res["dt_convergence"] = conv
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 1e7-site size")
    a = ap.parse_args()
    sizes = [10**5, 10**6] + ([] if a.quick else [10**7])
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "numba": numba.__version__,
            "numpy": np.__version__}
    rows = speed(sizes)
    cal = calibration()
    print(json.dumps(cal, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "structural.json").write_text(json.dumps({"info": info, "speed": rows,
                                                     "calibration": cal}, indent=1))
    md = ["# Structural spine kernel: speed and calibration", "",
          f"Machine: {info['cpus']} CPUs, numba {info['numba']} ({info['numba_threads']} threads),"
          f" numpy {info['numpy']}. Updates = sites x steps; best of 3.", "",
          "| sites | numba upd/s | numba 1 thread | numpy upd/s | speed-up |",
          "| --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['n_sites']:.0e} | {r['numba_updates_per_s']:.3g} | "
                  f"{r['numba_1thread_updates_per_s']:.3g} | {r['numpy_updates_per_s']:.3g} | "
                  f"{r['speedup']:.0f}x |")
    md += ["", "## Calibration (plast = plast_ref, 2 h steps, 2e5 sites)", "",
           "| quantity | model | target (source) |", "| --- | --- | --- |",
           f"| eliminated over 14 d | {cal['eliminated_14d']:.3f} | 0.03-0.05 (Zuo et al. 2005 Neuron) |",
           f"| formed over 14 d | {cal['formed_14d']:.3f} | 0.03-0.05 (Zuo et al. 2005 Neuron) |",
           f"| stable spines surviving 30 d | {cal['stable_surviving_30d']:.3f} | ~0.96 (Grutzendler et al. 2002 Nature) |",
           f"| all spines surviving 30 d | {cal['all_spines_surviving_30d']:.3f} | |",
           f"| nascent spines surviving 4 d | {cal['nascent_surviving_4d']:.3f} | transient spines live <= 4 d (Holtmaat et al. 2005 Neuron) |"]
    for d in (14, 21):
        c = cal[f"stress{d}d"]
        md.append(f"| loss after {d} d of 6 h/day stress | {c['loss_at_end']:.3f} | 0.15-0.30 (Radley et al. 2006, 2008) |")
        md.append(f"| ... after 7 / 14 / 28 d recovery | {c['loss_after_7d_recovery']:.3f} / "
                  f"{c['loss_after_14d_recovery']:.3f} / {c['loss_after_28d_recovery']:.3f} | recovery (Radley et al. 2005) |")
        md.append(f"| ... recovery time constant (fit days 7-21) | {c['recovery_tau_days_7_to_21']:.1f} d | 7-14 d |")
    md += ["", "dt convergence (relative density, 14 d stress then 7 d recovery):", ""]
    for k, v in cal["dt_convergence"].items():
        md.append(f"- {k}: day 14 {v['rel_density_14d']:.4f}, day 21 {v['rel_density_21d']:.4f}")
    (OUT / "structural.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
