"""Synapse-level bench: what the GB rule does to one synapse under TMS-like spike trains.

Each synapse sees Poisson background spikes (presynaptic at ``r_pre``, postsynaptic at
``r_post``, the network's resting rates) and, at every pulse, a presynaptic spike with
probability ``p_pre`` and a postsynaptic spike ``latency`` later with probability ``p_post``.
Pulse-evoked presynaptic calcium is scaled by the NMDA Mg2+ unblock at ``v_pulse`` relative to
rest (the pulse depolarises the cell; assumption of the bench, the network reads the voltage).
Sham: the same background, no pulses.  Output: mean change of rho (from a population of
synapses half DOWN, half UP, GB's beta = 0.5) minus sham's, at the end of the protocol.

Run: ``nice -n 15 .venv/bin/python docs/results/pattern_plasticity/synapse_bench.py``.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from cortexsim.plasticity import synaptic

PROTOCOLS = {
    # name: (pulses per burst, intra-burst Hz, burst period s, train on s, train off s, pulses)
    "itbs600": (3, 50.0, 0.2, 2.0, 8.0, 600),
    "ctbs600": (3, 50.0, 0.2, None, None, 600),
    "rtms1hz": (1, 1.0, 1.0, None, None, 900),
    "rtms10hz": (1, 10.0, 0.1, 4.0, 26.0, 3000),
    "sham": None,
}


def pulse_times(burst, f_in, period, on, off, n):
    """Pulse times (s) of a patterned protocol starting at 0."""
    t, k, start = [], 0, 0.0
    while k < n:
        t_b = start
        while k < n and (on is None or t_b < start + on - 1e-9):
            for m in range(burst):
                if k < n:
                    t.append(t_b + m / f_in)
                    k += 1
            t_b += period
        start += (on or 0.0) + (off or 0.0)
    return np.array(t)


def trains(pulses, duration, r_pre, r_post, p_pre, p_post, latency, rng):
    """Pre / post spike times and the NMDA flag of each presynaptic spike."""
    bg_pre = np.sort(rng.uniform(0, duration, rng.poisson(r_pre * duration)))
    bg_post = np.sort(rng.uniform(0, duration, rng.poisson(r_post * duration)))
    ev_pre = pulses[rng.random(pulses.size) < p_pre]
    ev_post = pulses[rng.random(pulses.size) < p_post] + latency
    pre = np.concatenate([bg_pre, ev_pre])
    evoked = np.concatenate([np.zeros(bg_pre.size, bool), np.ones(ev_pre.size, bool)])
    o = np.argsort(pre, kind="stable")
    return pre[o], evoked[o], np.sort(np.concatenate([bg_post, ev_post]))


def mean_change(
    params,
    pulses,
    duration,
    *,
    n_syn=40,
    r_pre=2.0,
    r_post=2.0,
    p_pre=1.0,
    p_post=0.5,
    latency=0.003,
    v_pulse=-50.0,
    seed=1,
    fast=False,
):
    """Mean change of rho over ``duration`` (s) and mean time above theta_p, theta_d (s)."""
    p = synaptic.get_params(params)
    unblock = float(synaptic.mg_unblock(v_pulse, p) / synaptic.mg_unblock(p.v_ref, p))
    rng = np.random.default_rng(seed)
    d, tp, td = [], [], []
    for k in range(n_syn):
        pre, evoked, post = trains(pulses, duration, r_pre, r_post, p_pre, p_post, latency, rng)
        rho0 = float(k % 2)
        r = synaptic.event_driven_rho(
            pre,
            post,
            p,
            rho0=rho0,
            t_end=duration,
            c_pre_scale=np.where(evoked, unblock, 1.0),
            rate_ref=r_post if fast else None,
        )
        d.append(r.rho_final - rho0)
        tp.append(r.t_above_p)
        td.append(r.t_above_d)
    return float(np.mean(d)), float(np.mean(tp)), float(np.mean(td))


def table(params, label, fast=False, **kw):
    rows = {}
    for name, spec in PROTOCOLS.items():
        if spec is None:
            continue
        pulses = pulse_times(*spec)
        duration = float(pulses[-1] + 1.0)
        dm, tp, td = mean_change(params, pulses, duration, fast=fast, **kw)
        ds, tps, tds = mean_change(params, np.zeros(0), duration, fast=fast, **kw)
        rows[name] = {
            "duration_s": duration,
            "d_rho": dm,
            "sham_d_rho": ds,
            "d_rho_minus_sham": dm - ds,
            "t_above_p": tp,
            "t_above_d": td,
            "sham_t_above_p": tps,
            "sham_t_above_d": tds,
        }
    return {"label": label, "params": params, "kw": kw, "fast": fast, "rows": rows}


if __name__ == "__main__":
    ca = {"extracellular.ca": 1.2}
    eff = dict(ca, **{"effective_calcium.tau_eff": 278.3177658387})
    fm = {"fast_metaplasticity.exponent": 1.0}
    out = []
    for p_post in (0.5, 1.0):
        kw = {"p_post": p_post}
        out.append(table(ca, "GB default at 1.2 mM", **kw))
        out.append(table(eff, "effective calcium (Chindemi) at 1.2 mM", **kw))
        out.append(
            table(dict(eff, **fm), "effective calcium + fast sliding threshold", fast=True, **kw)
        )
    for t in out:
        print(f"\n{t['label']}  {t['kw']}")
        for n, r in t["rows"].items():
            print(
                f"  {n:9s} d_rho-sham {r['d_rho_minus_sham']:+.4f}  (sham {r['sham_d_rho']:+.4f})"
                f"  t>p {r['t_above_p']:.3f}s  t>d {r['t_above_d']:.3f}s"
            )
    if len(sys.argv) > 1:
        json.dump(out, open(sys.argv[1], "w"), indent=1)
