"""How good is a sampled session?  One full session (every pulse of every train) against the
same session simulated for its first train period(s) with the GB efficacy carried over the rest
by the GB 2012 mean field (``settings.session_sample_s``; ``synaptic.advance_fractions``).

Same network (build seed), same initial spine state and efficacies, same field.  Reports per
population the session's change of mean GB efficacy (what the structural core receives), the
per-synapse agreement of the final efficacies, the LTP-calcium time per cell (the activity
drive), the session rates and the wall time.  Writes benchmarks/results/session_sampling.json/.md.

    python benchmarks/bench_session_sampling.py [--protocol itbs600] [--scale small] [--samples 10 20]

Also the presynaptic NMDA calcium per cell (the ``nmda_spinogenesis`` drive) against a rest run
of the sample's length.  ``--scale`` other than small writes session_sampling_scale<N>.json/md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from cortexsim.circuit.network import Circuit, Stimulus
from cortexsim.coupling import cell_field_vpm
from cortexsim.experiment.phases import (
    _simulated_session_s,
    ltp_time_per_cell,
    nmda_calcium_per_cell,
    rho_after_session,
)
from cortexsim.plasticity.structural import SpineState
from cortexsim.populations import EXCITATORY, POPULATIONS
from cortexsim.protocols import get_protocol
from cortexsim.rng import SeedSchedule

OUT = Path(__file__).resolve().parent / "results"
TAIL_S = 1.0


def one(scale, proto, sim_len, sess_len, field, seed, nmda_rest=None):
    t0 = time.perf_counter()
    c = Circuit(scale, duration_s=sim_len, seed=seed)
    t_build = time.perf_counter() - t0
    streams = SeedSchedule(seed)  # the experiment's streams: its initial spines, session 0
    state = SpineState.initial(c.n_sites, streams.generator("initial_spines"))
    on = (state.state > 0).astype(float)
    rho0 = np.asarray(c.initial_rho, float)
    stim = (
        None
        if proto is None
        else Stimulus.from_protocol(proto, field, offset_s=c.slot_s).until(sim_len, c.dt_s)
    )
    t0 = time.perf_counter()
    res = c.run(
        stim,
        spines={"on": on, "rho": rho0},
        run_seed=streams.noise_seed("session", condition="stress_aitbs", session=0),
    )
    t_run = time.perf_counter() - t0
    rho_sample_only = np.asarray(res.syn["rho"], float)
    rho = rho_after_session(res, sess_len, c.site_rule)
    post = c.conn["ee"]["j"].astype(np.int64)
    a = ltp_time_per_cell(res, post, c.N, sim_len)
    nm = nmda_calcium_per_cell(res, c.site_rule, post, c.N)
    site_pop = c.pop_index[post]
    out = {
        "sim_len_s": sim_len,
        "build_s": t_build,
        "run_s": t_run,
        "pulses": 0 if stim is None else int(stim.pulse_times_s.size),
        "rates": {p: res.mean_rate(p) for p in POPULATIONS},
        "pops": {},
    }
    for k, p in enumerate(POPULATIONS):
        if p not in EXCITATORY:
            continue
        m = (site_pop == k) & (on > 0)
        out["pops"][p] = {
            "drho": float(np.mean(rho[m] - rho0[m])),
            "drho_sample_only": float(np.mean(rho_sample_only[m] - rho0[m])),
            "ltp_time_per_s": float(np.mean(a[c.slices[p]])),
            "nmda_ca_per_s": float(np.mean(nm[c.slices[p]])),
        }
        if nmda_rest is not None:  # the nmda_spinogenesis drive's input: relative excess
            r0 = nmda_rest[c.slices[p]]
            ok = r0 > 0
            out["pops"][p]["nmda_rel_excess"] = float(np.mean(nm[c.slices[p]][ok] / r0[ok] - 1))
    return out, rho, on, nm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", default="itbs600")
    ap.add_argument("--scale", default="small", type=lambda v: int(v) if v.isdigit() else v)
    ap.add_argument("--samples", type=float, nargs="+", default=[10.0, 20.0])
    ap.add_argument("--pct-rmt", type=float, default=90.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    proto = get_protocol(a.protocol)
    field = cell_field_vpm(a.pct_rmt)
    sess_len = proto.duration_s + TAIL_S
    runs = {}
    # rest reference of the NMDA-calcium drive (no pulses, as long as the shortest sample)
    L0 = _simulated_session_s(proto, sess_len, min(a.samples))
    rest, _, _, nm_rest = one(a.scale, None, L0, L0, field, a.seed)
    runs["rest"] = rest
    full, rho_full, on, _ = one(a.scale, proto, sess_len, sess_len, field, a.seed, nm_rest)
    runs["full"] = full
    for s in a.samples:
        L = _simulated_session_s(proto, sess_len, s)
        r, rho, _, _ = one(a.scale, proto, L, sess_len, field, a.seed, nm_rest)
        m = on > 0
        r["per_synapse_rms_vs_full"] = float(np.sqrt(np.mean((rho[m] - rho_full[m]) ** 2)))
        r["per_synapse_corr_vs_full"] = float(np.corrcoef(rho[m], rho_full[m])[0, 1])
        runs[f"sample_{s:g}s"] = r
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.machine(),
        "protocol": a.protocol,
        "pct_rmt": a.pct_rmt,
        "cell_field_vpm": field,
        "scale": a.scale,
        "seed": a.seed,
        "session_s": sess_len,
        "runs": runs,
    }
    OUT.mkdir(exist_ok=True)
    stem = "session_sampling" if a.scale == "small" else f"session_sampling_scale{a.scale}"
    (OUT / f"{stem}.json").write_text(json.dumps(info, indent=1))
    L = [
        "# Sampled sessions vs the full session",
        "",
        f"Date {info['date']}; {a.protocol} at {a.pct_rmt:g} % RMT (cell field "
        f"{field:.0f} V/m), scale {a.scale}, seed {a.seed}; session {sess_len:.2f} s incl. "
        f"{TAIL_S:g} s tail. Script: `benchmarks/bench_session_sampling.py`.",
        "",
        "Mean change of GB efficacy (rho) of present synapses over the session, per "
        "postsynaptic population: full simulation vs sample + GB mean field (and the sample "
        "alone, without the mean-field extrapolation).",
        "",
        "| run | simulated s | pulses | run wall s | "
        + " | ".join(f"{p} drho (sample only)" for p in EXCITATORY)
        + " | rms per synapse vs full | "
        "corr vs full |",
        "|" + "---|" * (6 + len(EXCITATORY)),
    ]
    for name, r in runs.items():
        if name == "rest":
            continue
        cells = [
            f"{r['pops'][p]['drho']:+.4f} ({r['pops'][p]['drho_sample_only']:+.4f})"
            for p in EXCITATORY
        ]
        L.append(
            f"| {name} | {r['sim_len_s']:.2f} | {r['pulses']} | {r['run_s']:.1f} | "
            + " | ".join(cells)
            + f" | {r.get('per_synapse_rms_vs_full', 0):.4f} | "
            f"{r.get('per_synapse_corr_vs_full', 1):.3f} |"
        )
    L += [
        "",
        "LTP-calcium time per cell (s above theta_p per s, the activity drive's input) and "
        "session rates (Hz):",
        "",
        "| run | "
        + " | ".join(f"{p} LTP time" for p in EXCITATORY)
        + " | "
        + " | ".join(f"{p} Hz" for p in POPULATIONS)
        + " |",
        "|" + "---|" * (1 + len(EXCITATORY) + len(POPULATIONS)),
    ]
    for name, r in runs.items():
        L.append(
            f"| {name} | "
            + " | ".join(f"{r['pops'][p]['ltp_time_per_s']:.4f}" for p in EXCITATORY)
            + " | "
            + " | ".join(f"{r['rates'][p]:.2f}" for p in POPULATIONS)
            + " |"
        )
    L += [
        "",
        "Presynaptic NMDA-receptor calcium per synapse per s (the `nmda_spinogenesis` drive's "
        "input) and its relative excess over the rest run (nmda / nmda_rest - 1, mean over "
        "cells):",
        "",
        "| run | " + " | ".join(f"{p} NMDA Ca per s (rel. excess)" for p in EXCITATORY) + " |",
        "|" + "---|" * (1 + len(EXCITATORY)),
    ]
    for name, r in runs.items():
        L.append(
            f"| {name} | "
            + " | ".join(
                f"{r['pops'][p]['nmda_ca_per_s']:.4g} ({r['pops'][p].get('nmda_rel_excess', 0):+.3f})"
                for p in EXCITATORY
            )
            + " |"
        )
    (OUT / f"{stem}.md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
