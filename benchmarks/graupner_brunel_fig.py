"""Figure and agreement numbers for the Graupner & Brunel 2012 rule (cortexsim.plasticity.synaptic).

    python benchmarks/graupner_brunel_fig.py [--no-cost]

Writes docs/graupner_brunel_fig.png and benchmarks/results/synaptic_agreement.json:
A  GB 2012 Fig. 4B protocol (75 pairs, cortical slices set): change in synaptic strength vs
   Delta t = t_post - t_pre at 1, 20, 30, 40, 50 Hz (event-driven accumulators + GB readout);
B  rho during 60 pairings: clock-driven reference ODE (lines) vs the event-driven update (dots);
C  noisy rule: Monte Carlo transition probabilities (event scheme, 2000 synapses) vs GB's analytic
   erf formula, 20 Hz;
and (unless --no-cost) the wall time of a Brian2 runtime/numpy network with static vs plastic
synapses (Poisson input), to show what the event-driven rule costs.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from cortexsim.plasticity import synaptic as syn

ROOT = Path(__file__).resolve().parent.parent


def crossover_frequency(lo=20.0, hi=40.0, n_pairs=75, tol=0.05):
    def minch(f):
        h = 0.5 / f
        return syn.frequency_stdp_curves(np.linspace(-h, h, 401), [f], n_pairs)["change"].min()
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if minch(mid) < 1 else (lo, mid)
    return 0.5 * (lo + hi)


def brian_cost(t_bio=2.0, n_pre=1000, n_post=100, rate=5.0, seed=1):
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    out = {}
    rng = np.random.default_rng(seed)
    for plastic in (False, True):
        b2.start_scope()
        b2.seed(seed)
        P = b2.PoissonGroup(n_pre, rate * b2.Hz)
        Q = b2.NeuronGroup(n_post, "dg/dt = -g/(5*ms) : 1", threshold="rand() < 5*Hz*dt",
                           method="exact")
        if plastic:
            parts = syn.synapse_model()
            S = b2.Synapses(P, Q, parts.model, on_pre=parts.with_transmission("g_post += w"),
                            on_post=parts.on_post, namespace=parts.namespace)
        else:
            S = b2.Synapses(P, Q, "w : 1", on_pre="g_post += w")
        i, j = np.nonzero(rng.random((n_pre, n_post)) < 1.0)
        S.connect(i=i, j=j)
        if plastic:
            S.on = 1
            S.rho = 0.5
            syn.set_delays(S, 1 * b2.ms)
        else:
            S.w = 1
            S.delay = 1 * b2.ms
        net = b2.Network(P, Q, S)
        net.run(10 * b2.ms)
        t0 = time.perf_counter()
        net.run(t_bio * b2.second)
        out["plastic" if plastic else "static"] = (time.perf_counter() - t0) / t_bio
    out["n_synapses"] = int(len(i))
    return out


def main(argv=()):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = {}
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    # A: Fig. 4B
    freqs = [1, 20, 30, 40, 50]
    for f in freqs:
        h = min(0.05, 0.5 / f)
        d = np.linspace(-h, h, 401)
        ch = syn.frequency_stdp_curves(d, [f], 75)["change"][0]
        ax[0].plot(d * 1e3, ch, label=f"{f} Hz")
        res[f"fig4b_{f}Hz"] = {f"{x:+.0f}ms": float(np.interp(x * 1e-3, d, ch))
                               for x in (-20, -10, -5, 5, 10, 20) if abs(x) * 1e-3 <= h}
    ax[0].axhline(1, color="0.6", ls="--")
    ax[0].axvline(0, color="0.6", ls="--")
    ax[0].set(xlabel="Δt = t_post − t_pre (ms)", ylabel="change in synaptic strength",
              title="A  GB 2012 Fig. 4B protocol (75 pairs)")
    ax[0].legend(frameon=False)
    fc = crossover_frequency()
    res["all_offsets_potentiate_above_Hz"] = fc
    ax[0].text(0.02, 0.97, f"all Δt potentiate above {fc:.1f} Hz\n(GB 2012: ~29 Hz)",
               transform=ax[0].transAxes, va="top", fontsize=8)
    # B: reference vs event-driven
    worst = 0.0
    for (d, f), col in zip([(-0.01, 1), (0.01, 1), (-0.01, 20), (0.01, 20)],
                           ["C0", "C1", "C2", "C3"]):
        pre, post = syn.pairing_protocol(d, 60, f)
        t_end = pre[-1] + 1.0
        ref = syn.simulate_pair_protocol(pre, post, rho0=0.5, t_end=t_end, record_dt=5e-3)
        ev = syn.event_driven_rho(pre, post, rho0=0.5, t_end=t_end)
        worst = max(worst, abs(ev.rho_final - ref.rho_final))
        ax[1].plot(ref.t / t_end, ref.rho, color=col, lw=1, label=f"{d*1e3:+.0f} ms, {f} Hz")
        ax[1].plot(ev.t_events[1::8] / t_end, ev.rho_events[1::8], "o", ms=3, color=col)
    res["event_vs_reference_max_abs_rho_diff"] = worst
    ax[1].set(xlabel="time / protocol duration", ylabel="ρ (deterministic, ρ0 = 0.5)",
              title="B  reference ODE (lines) vs event-driven (dots)")
    ax[1].legend(frameon=False, fontsize=8)
    # C: noisy transition probabilities
    p = syn.get_params({"numerics.noise": True})
    d = np.linspace(-0.025, 0.025, 11)
    f, n = 20, 2000
    mc_u, mc_d, an_u, an_d = [], [], [], []
    for k, x in enumerate(d):
        pre, post = syn.pairing_protocol(x, 75, f, t0=1.0)
        t, inc, _ = syn._events(pre, post, p)
        T = 75 / f
        up = syn.event_driven_batch(np.tile(t, (n, 1)), np.tile(inc, (n, 1)), p, 0.0,
                                    t_end=t[0] + T, seed=10 + k)
        dn = syn.event_driven_batch(np.tile(t, (n, 1)), np.tile(inc, (n, 1)), p, 1.0,
                                    t_end=t[0] + T, seed=100 + k)
        det = syn.event_driven_rho(pre, post, rho0=0.0, t_end=t[0] + T)
        _, _, _, pu, pd = syn.gb_transition(det.t_above_d / T, det.t_above_p / T, T, p)
        mc_u.append(np.mean(up.rho_final > 0.5)); mc_d.append(np.mean(dn.rho_final < 0.5))
        an_u.append(float(pu)); an_d.append(float(pd))
    ax[2].plot(d * 1e3, an_u, "C1-", label="P(DOWN→UP), GB analytic")
    ax[2].plot(d * 1e3, mc_u, "C1o", label="event scheme, Monte Carlo")
    ax[2].plot(d * 1e3, an_d, "C0-", label="P(UP→DOWN), GB analytic")
    ax[2].plot(d * 1e3, mc_d, "C0s", label="event scheme, Monte Carlo")
    ax[2].set(xlabel="Δt (ms)", ylabel="transition probability",
              title=f"C  noisy rule, {f} Hz, 75 pairs, n = {n}")
    ax[2].legend(frameon=False, fontsize=8)
    res["mc_vs_analytic_max_abs_diff"] = float(max(np.max(np.abs(np.subtract(mc_u, an_u))),
                                                   np.max(np.abs(np.subtract(mc_d, an_d)))))
    fig.tight_layout()
    out_png = ROOT / "docs" / "graupner_brunel_fig.png"
    out_png.parent.mkdir(exist_ok=True)
    fig.savefig(out_png, dpi=120)
    if "--no-cost" not in argv:
        res["brian2_numpy_wall_s_per_bio_s"] = brian_cost()
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "synaptic_agreement.json").write_text(
        json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    print("wrote", out_png)


if __name__ == "__main__":
    main(sys.argv[1:])
