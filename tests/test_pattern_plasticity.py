"""Pattern sensitivity of the calcium rule at in vivo [Ca]o (issue 20 item 2): the
effective-calcium readout of Chindemi et al. 2022 (models/synaptic.toml [effective_calcium],
mechanism effective_calcium), checked at the synapse level with TMS-like spike trains."""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.params import load_model
from cortexsim.plasticity import synaptic

CA = {"extracellular.ca": 1.2}
TAU_EFF = 278.3177658387  # ms, the value mechanisms.effective_calcium sets
EFF = dict(CA, **{"effective_calcium.tau_eff": TAU_EFF})


def pulses(burst, f_in, period, on, off, n):
    """Pulse times (s): bursts of ``burst`` pulses at ``f_in`` Hz every ``period`` s, in trains
    of ``on`` s every ``on + off`` s (None: continuous), ``n`` pulses in all."""
    t, k, start = [], 0, 0.0
    while k < n:
        tb = start
        while k < n and (on is None or tb < start + on - 1e-9):
            for m in range(burst):
                if k < n:
                    t.append(tb + m / f_in)
                    k += 1
            tb += period
        start += (on or 0.0) + (off or 0.0)
    return np.array(t)


def drive(times, params, rho0, latency=0.003, v_pulse=-50.0, bg=None):
    """rho after a presynaptic spike at every pulse (NMDA calcium unblocked at ``v_pulse``) and a
    postsynaptic spike ``latency`` later; ``bg`` = (pre, post) background spike times."""
    p = synaptic.get_params(params)
    unblock = float(synaptic.mg_unblock(v_pulse, p) / synaptic.mg_unblock(p.v_ref, p))
    pre, post = times, times + latency
    scale = np.full(pre.size, unblock)
    if bg is not None:
        pre = np.concatenate([pre, bg[0]])
        post = np.sort(np.concatenate([post, bg[1]]))
        scale = np.concatenate([scale, np.ones(bg[0].size)])
        o = np.argsort(pre, kind="stable")
        pre, scale = pre[o], scale[o]
    t_end = float(max(times[-1] if times.size else 0.0, 1.0) + 1.0)
    return synaptic.event_driven_rho(pre, post, p, rho0=rho0, t_end=t_end, c_pre_scale=scale)


def test_off_by_default_and_default_rule_unchanged():
    tree = load_model("synaptic")
    assert tree.to("effective_calcium.tau_eff", "s") == 0.0
    p = synaptic.get_params()
    assert p.tau_ca == tree.to("calcium.tau_ca", "s")
    assert p.theta_d == tree.value("efficacy.theta_d")
    assert p.theta_p == tree.value("efficacy.theta_p")
    # changing the (inert) threshold coefficients changes nothing while tau_eff is 0
    q = synaptic.get_params({"effective_calcium.a_d_post": 5.0, "effective_calcium.a_p_post": 7.0})
    assert q == p
    assert not synaptic.effective_calcium()
    assert synaptic.effective_calcium({"effective_calcium.tau_eff": TAU_EFF})


def test_mechanism_table_switches_only_tau_eff():
    mech = load_model("mechanisms")
    assert mech.value("effective_calcium.enabled") is False
    sets = mech.value("effective_calcium.set")
    assert [s["path"] for s in sets] == ["synaptic.effective_calcium.tau_eff"]
    assert sets[0]["value"] > 0


def test_thresholds_are_fixed_multiples_of_the_fit_condition_peaks():
    tree = load_model("synaptic")
    v = tree.value
    c_pre, c_post = v("calcium.c_pre"), v("calcium.c_post")
    for ca in (1.2, 2.5):
        p = synaptic.get_params({"extracellular.ca": ca, "effective_calcium.tau_eff": TAU_EFF})
        assert p.tau_ca == pytest.approx(TAU_EFF / 1000.0)
        td = v("effective_calcium.a_d_pre") * c_pre + v("effective_calcium.a_d_post") * c_post
        tp = v("effective_calcium.a_p_pre") * c_pre + v("effective_calcium.a_p_post") * c_post
        assert p.theta_d == pytest.approx(td)
        assert p.theta_p == pytest.approx(tp)
    # the amplitudes follow [Ca]o, the thresholds do not
    lo, hi = synaptic.get_params(EFF), synaptic.get_params({"effective_calcium.tau_eff": TAU_EFF})
    assert lo.c_post < hi.c_post and lo.c_pre < hi.c_pre
    assert lo.theta_d == hi.theta_d and lo.theta_p == hi.theta_p


def test_sham_is_rest():
    """No pulses: the background alone, as at rest; isolated background spikes at resting
    rates never reach theta_d at 1.2 mM, so rho does not move at all."""
    rng = np.random.default_rng(3)
    bg = (np.sort(rng.uniform(0, 60, 60)), np.sort(rng.uniform(0, 60, 60)))  # 1 Hz each
    for rho0 in (0.0, 1.0, 0.3):
        a = synaptic.event_driven_rho(bg[0], bg[1], synaptic.get_params(EFF), rho0=rho0, t_end=61)
        b = synaptic.event_driven_rho(bg[0], bg[1], synaptic.get_params(EFF), rho0=rho0, t_end=61)
        assert a.rho_final == b.rho_final
        assert a.t_above_d == 0.0
    r = drive(np.zeros(0), EFF, 1.0, bg=bg)
    assert r.t_above_d == 0.0 and r.rho_final == 1.0


def test_bursts_summate_single_pulses_do_not():
    """Temporal summation: theta-burst pairings cross theta_d at 1.2 mM with the effective
    calcium and move rho, 1-Hz pairings do not; with GB's 23-ms calcium neither crosses."""
    tbs = pulses(3, 50.0, 0.2, 2.0, 8.0, 30)  # one 2-s train
    one_hz = pulses(1, 1.0, 1.0, None, None, 30)
    eff_tbs, eff_1 = drive(tbs, EFF, 1.0), drive(one_hz, EFF, 1.0)
    assert eff_tbs.t_above_d > 0.1 and eff_tbs.rho_final < 1.0
    assert eff_1.t_above_d == 0.0 and eff_1.rho_final == 1.0
    gb_tbs = drive(tbs, CA, 1.0)
    assert gb_tbs.t_above_d == 0.0 and gb_tbs.rho_final == 1.0


# Measured (docs/results/pattern_plasticity/README.md): with Chindemi's thresholds at 1.2 mM a
# theta burst spends far more time between theta_d and theta_p than above theta_p, so iTBS and
# cTBS both depress, and 1-Hz pairs do nothing.  The test states the target of issue 20 item 2
# and fails today; strict, so that it reports when a change makes it pass.
@pytest.mark.xfail(strict=True, reason="iTBS does not potentiate at 1.2 mM (measured)")
def test_itbs_potentiates_ctbs_and_1hz_depress():
    itbs = pulses(3, 50.0, 0.2, 2.0, 8.0, 600)
    ctbs = pulses(3, 50.0, 0.2, None, None, 600)
    one_hz = pulses(1, 1.0, 1.0, None, None, 900)

    def change(t):
        return np.mean([drive(t, EFF, r0).rho_final - r0 for r0 in (0.0, 1.0)])

    assert change(itbs) > 0.0
    assert change(ctbs) < 0.0
    assert change(one_hz) < 0.0
