"""Do the fast and the slow phases agree?  The GB efficacy change of one sham session (no
pulses: the network's own baseline activity) and of one aiTBS session (90 % RMT) at several
extracellular calcium concentrations, exactly as the study computes it: a simulated sample of
``--sample`` s, then the GB mean field over the rest of the 592-s session
(``experiment.phases.rho_after_session``).

The slow phases (rest, stress) leave efficacies unchanged, so they agree with the fast rule only
where the rule's steady state under baseline activity is the resting distribution, i.e. a sham
session changes mean efficacy by ~0 (issue 13 asks < 0.01 per population).  Writes
benchmarks/results/fast_slow_consistency.json/.md.

    python benchmarks/bench_fast_slow.py [--scale small] [--ca 2.5 1.5 1.3 1.2] [--seeds 3 4]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import brian2 as b2
import numpy as np

from bench_circuit import machine_info
from cortexsim.circuit.network import Circuit, Stimulus, pulse_slot_s
from cortexsim.coupling import cell_field_vpm
from cortexsim.experiment.phases import rho_after_session
from cortexsim.params import load_model
from cortexsim.protocols import get_protocol

OUT = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="small")
    ap.add_argument("--ca", type=float, nargs="+", default=[2.5, 1.5, 1.3, 1.2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    ap.add_argument("--sample", type=float, default=10.0)
    a = ap.parse_args()
    proto = get_protocol("aitbs_day")
    sess_len = float(proto.duration_s)
    rows = []
    t0, load0 = time.time(), os.getloadavg()
    for ca in a.ca:
        circ = load_model("circuit")
        circ.set("plasticity.ca_ext", ca)
        dt = circ.to("sim.dt", "s")
        slot = pulse_slot_s(proto.pulse_times(), dt)
        c = Circuit(a.scale, duration_s=a.sample, seed=1, params=circ, slot_s=slot)
        stim = Stimulus.from_protocol(proto, cell_field_vpm(90, load_model("coupling")),
                                      offset_s=slot).until(a.sample, c.dt_s)
        popi = c.pop_index[c.conn["ee"]["j"]]
        for cond, s in (("sham", None), ("aitbs_90", stim)):
            for seed in a.seeds:
                res = c.run(s, run_seed=seed)
                rho = rho_after_session(res, sess_len, c.site_rule)
                sig = c.site_rule.structural_signals(res.syn, res.duration_s)
                on = res.syn["on"] > 0
                for k, p in enumerate(c.populations):
                    m = on & (popi == k)
                    if not m.any():
                        continue
                    rows.append(dict(ca_mM=ca, condition=cond, seed=seed, population=p,
                                     rate_hz=res.mean_rate(p),
                                     d_mean_rho=float(np.mean(rho[m] - c.initial_rho[m])),
                                     frac_d=float(np.mean(sig["frac_d"][m])),
                                     frac_p=float(np.mean(sig["frac_p"][m]))))
                print(ca, cond, seed, flush=True)
    info = dict(machine=machine_info(b2, load0), scale=a.scale, sample_s=a.sample,
                session_s=sess_len, wall_s=time.time() - t0, rows=rows)
    OUT.mkdir(exist_ok=True)
    (OUT / "fast_slow_consistency.json").write_text(json.dumps(info, indent=1))
    L = ["# Fast/slow consistency: GB efficacy change of one session vs extracellular calcium",
         "", f"Scale {a.scale}, build seed 1, run seeds {a.seeds}, {a.sample:g}-s sample + GB mean "
         f"field to the {sess_len:g}-s session (as the study). Mean change of rho of present "
         "spine sites per postsynaptic population (mean over run seeds, max |change| over seeds "
         "in brackets); frac_d / frac_p: fraction of time the calcium is above theta_d / theta_p.",
         "", f"Machine: {info['machine']}; wall {info['wall_s']:.0f} s.", "",
         "| [Ca]o (mM) | session | population | rate (Hz) | mean d rho | frac_d | frac_p |",
         "|---|---|---|---|---|---|---|"]
    keys = dict.fromkeys((r["ca_mM"], r["condition"], r["population"]) for r in rows)
    for ca, cond, p in keys:
        sel = [r for r in rows if (r["ca_mM"], r["condition"], r["population"]) == (ca, cond, p)]
        d = [r["d_mean_rho"] for r in sel]
        L.append(f"| {ca:g} | {cond} | {p} | {np.mean([r['rate_hz'] for r in sel]):.2f} | "
                 f"{np.mean(d):+.4f} ({max(abs(x) for x in d):.4f}) | "
                 f"{np.mean([r['frac_d'] for r in sel]):.1e} | "
                 f"{np.mean([r['frac_p'] for r in sel]):.1e} |")
    (OUT / "fast_slow_consistency.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
