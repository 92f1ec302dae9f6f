"""Structural spine kernel: exactness numba vs numpy, reproducibility, calibration, mechanism."""

import numba
import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.params import load_model
from cortexsim import rng as R
from cortexsim.plasticity import structural as st
from cortexsim.plasticity.stress import stress_per_step

STRESS14 = {"days": 14, "hours_per_day": 6}


def _inputs(n, seed=0):
    g = np.random.default_rng(seed)
    return g.random(n), g.normal(0.0, 0.5, n)


def test_numba_equals_numpy_exactly():
    n, ns = 4000, 240
    s0 = st.SpineState.initial(n, 3, track_age=True)
    plast, drive = _inputs(n)
    S = np.concatenate([np.zeros(60), np.linspace(0, 3, 120), np.full(60, 0.5)])
    a, ca = st.advance(s0, plast, drive, S, 2.0, ns, seed=11, step0=5, backend="numba")
    b, cb = st.advance(s0, plast, drive, S, 2.0, ns, seed=11, step0=5, backend="numpy")
    assert ca["totals"]["formed"] > 100 and ca["totals"]["eliminated_stable"] > 50
    assert ca["totals"]["stabilised"] > 10
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.age, b.age)
    for k in ("formed", "stabilised", "eliminated", "eliminated_stable"):
        np.testing.assert_array_equal(ca[k], cb[k])
    # the input state is untouched
    assert s0.age.max() == 0.0 and not np.array_equal(s0.state, a.state)


def test_rng_numba_matches_numpy_and_is_uniform():
    key = R.step_keys(7, R.STREAM_INIT, [3])[0]

    @numba.njit
    def draw(key, n):
        out = np.empty(n)
        for i in range(n):
            out[i] = R.neg_log(R.uniform_open(key, i))
        return out

    a = draw(key, 200_000)
    b = R.neg_log_np(R.uniform_open_np(key, np.arange(200_000)))
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 1.0) < 0.01 and abs(a.var() - 1.0) < 0.02  # Exp(1)
    u = R.uniform_np(key, np.arange(200_000))
    assert np.all((u >= 0) & (u < 1)) and abs(u.mean() - 0.5) < 0.005


def test_reproducible_across_runs_and_thread_counts():
    n = 30_000
    s0 = st.SpineState.initial(n, 1)
    plast, drive = _inputs(n, 1)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a, ca = st.advance(s0, plast, drive, 1.0, 1.0, 200, seed=42)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b, cb = st.advance(s0, plast, drive, 1.0, 1.0, 200, seed=42)
    finally:
        numba.set_num_threads(old)
    c, _ = st.advance(s0, plast, drive, 1.0, 1.0, 200, seed=42)
    d, _ = st.advance(s0, plast, drive, 1.0, 1.0, 200, seed=43)
    np.testing.assert_array_equal(a.state, b.state)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.state, c.state)
    assert ca["totals"] == cb["totals"]
    assert not np.array_equal(a.state, d.state)


def test_initial_state_matches_equilibrium():
    fr = st.equilibrium_fractions()
    s = st.SpineState.initial(200_000, 5)
    assert abs((s.state == 2).mean() - fr["stable"]) < 0.005
    assert abs((s.state == 1).mean() - fr["nascent"]) < 0.002
    assert 0.7 < fr["stable"] + fr["nascent"] < 0.9
    assert np.all(s.weight[s.state == 0] == 0)


def test_baseline_turnover_calibrated_14d_and_30d():
    # Zuo et al. 2005: 3-5 % formed and eliminated per 2 weeks; Grutzendler 2002: ~96 % stable/month
    n = 100_000
    s0 = st.SpineState.initial(n, 2, track_age=True)
    occ0, stab0, nasc0 = s0.state > 0, s0.state == 2, s0.state == 1
    s4, _ = st.advance(s0, 0.5, 0.0, 0.0, 2.0, 48, seed=9)
    s14, c14 = st.advance(s0, 0.5, 0.0, 0.0, 2.0, 168, seed=9)
    s30, _ = st.advance(s0, 0.5, 0.0, 0.0, 2.0, 360, seed=9)
    occ14 = s14.state > 0
    survived14 = occ14 & (s14.age >= 14 * 24 - 1e-3)  # same spine, not re-formed
    elim = 1 - survived14[occ0].sum() / occ0.sum()
    formed = (occ14 & ~survived14).sum() / occ14.sum()
    assert 0.02 <= elim <= 0.06, elim
    assert 0.02 <= formed <= 0.06, formed
    surv30 = ((s30.state > 0) & (s30.age >= 30 * 24 - 1e-3))[stab0].mean()
    assert 0.93 <= surv30 <= 0.99, surv30
    # transient spines turn over within days: < 15 % of day-0 nascent spines survive 4 days
    surv_n4 = ((s4.state > 0) & (s4.age >= 4 * 24 - 1e-3))[nasc0].mean()
    assert surv_n4 < 0.15, surv_n4
    # density stays at equilibrium without stress (no drift)
    assert abs(st.density(s30) - st.density(s0)) < 0.01
    assert c14["totals"]["formed"] > 0


def _stress_run(days, rec_days, dt_h=2.0, n=100_000, seed=1, params=None):
    n_steps = int(round((days + rec_days) * 24 / dt_h))
    S = stress_per_step({"days": days, "hours_per_day": 6}, 0.0, dt_h, n_steps)
    s0 = st.SpineState.initial(n, seed, params=params)
    _, _, tr = st.run_slow_phase(s0, 0.5, S, dt_h, n_steps, seed=seed, params=params)
    return tr["t_h"] / 24.0, tr["density"] / tr["density"][0]


@pytest.mark.parametrize("days", [14, 21])
def test_stress_removes_15_to_30_percent(days):
    _t, rel = _stress_run(days, 0)
    loss = 1 - rel[-1]
    assert 0.15 <= loss <= 0.30, loss


def test_recovery_time_constant_one_to_two_weeks():
    t, rel = _stress_run(14, 21)
    deficit = 1 - rel
    i7, i21 = np.searchsorted(t, 14 + 7), np.searchsorted(t, 14 + 21)
    tau = 14.0 / np.log(deficit[i7] / deficit[i21])
    assert 7.0 <= tau <= 14.0, tau
    assert deficit[i21] < 0.5 * deficit[np.searchsorted(t, 14)]


def test_no_recovery_without_homeostasis_is_slower():
    p = load_model("structural")
    p.set("homeostasis.gain", 0.0)
    t, rel0 = _stress_run(14, 7, params=p)
    _, rel1 = _stress_run(14, 7)
    i14 = np.searchsorted(t, 14)
    assert rel1[-1] - rel1[i14] > 2 * (rel0[-1] - rel0[i14])  # gain over the 7 recovery days


def test_step_size_convergence():
    a = _stress_run(14, 7, dt_h=2.0, n=200_000, seed=3)
    b = _stress_run(14, 7, dt_h=1.0, n=200_000, seed=4)
    for day in (14, 21):
        ra = a[1][np.searchsorted(a[0], day)]
        rb = b[1][np.searchsorted(b[0], day)]
        assert abs(ra - rb) / rb < 0.05, (day, ra, rb)


def test_stochastic_matches_mean_field():
    dt = 2.0
    n_steps = 21 * 12
    S = stress_per_step(STRESS14, 0.0, dt, n_steps)
    mf = st.mean_field(S, dt)
    _t, rel = _stress_run(14, 7)
    occ_mf = (mf[:, 1] + mf[:, 2]) / (mf[0, 1] + mf[0, 2])
    assert np.max(np.abs(rel - occ_mf[::6])) < 0.01


def test_plast_high_stabilises_more_than_plast_low():
    n = 50_000
    s0 = st.SpineState(np.ones(n, np.int8), np.full(n, 0.2, np.float32))  # all nascent
    hi, chi = st.advance(s0, 0.9, 0.0, 0.0, 2.0, 84, seed=1)
    lo, clo = st.advance(s0, 0.1, 0.0, 0.0, 2.0, 84, seed=1)
    assert chi["totals"]["stabilised"] > 3 * clo["totals"]["stabilised"]
    assert (hi.state == 2).mean() > 3 * (lo.state == 2).mean()
    # stable weights relax toward the plast-set target (higher for potentiated synapses)
    assert hi.weight[hi.state == 2].mean() > lo.weight[lo.state == 2].mean()


def test_cell_drive_raises_formation_and_stress_raises_elimination():
    n = 50_000
    s0 = st.SpineState.initial(n, 2)
    _, c0 = st.advance(s0, 0.5, 0.0, 0.0, 2.0, 84, seed=3)
    _, cd = st.advance(s0, 0.5, 1.0, 0.0, 2.0, 84, seed=3)
    _, cs = st.advance(s0, 0.5, 0.0, 1.0, 2.0, 84, seed=3)
    assert cd["totals"]["formed"] > 1.5 * c0["totals"]["formed"]
    assert cs["totals"]["eliminated_stable"] > 5 * c0["totals"]["eliminated_stable"]
    assert cs["totals"]["formed"] < c0["totals"]["formed"]


def test_weight_relaxation_closed_form():
    zero = {
        "formation": {"k_form": 0.0},
        "nascent": {"k_stab_p0": 0.0, "k_stab_p1": 0.0, "k_elim_p0": 0.0, "k_elim_p1": 0.0},
        "stable": {"k_elim_p0": 0.0, "k_elim_p1": 0.0},
    }
    s0 = st.SpineState(np.array([2, 2, 1, 0], np.int8), np.array([0.1, 2.0, 1.0, 0.0], np.float32))
    plast = np.array([1.0, 0.0, 0.5, 0.5])
    for backend in st.BACKENDS:
        s1, _ = st.advance(s0, plast, 0.0, 0.0, 1.0, 12, seed=0, params=zero, backend=backend)
        q = np.exp(-12.0 / 12.0)
        want = [1.5 + (0.1 - 1.5) * q, 0.5 + (2.0 - 0.5) * q, 0.2 + (1.0 - 0.2) * q, 0.0]
        np.testing.assert_allclose(s1.weight, want, rtol=1e-6)
        np.testing.assert_array_equal(s1.state, s0.state)


def test_density_per_group_and_homeostatic_drive():
    s = st.SpineState(np.array([0, 1, 2, 2, 0, 0], np.int8), np.zeros(6, np.float32))
    g = np.array([0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(st.density(s, g), [2 / 3, 1 / 3])
    assert st.density(s) == pytest.approx(0.5)
    d = st.homeostatic_drive(s, g, target_density=2 / 3)
    assert d[0] == pytest.approx(0.0) and d[3] > 0 and d[3] == d[5]
    with pytest.raises(InputError):
        st.density(s, np.array([0, 0, 0, 1, 1, -1]))


def test_input_validation():
    s0 = st.SpineState.initial(10, 0)
    ok = dict(plast=0.5, cell_drive=0.0, stress=0.0, dt_h=1.0, n_steps=3, seed=0)
    bad = [
        ("dt_h", -1.0),
        ("dt_h", 0.0),
        ("n_steps", -1),
        ("n_steps", 2.5),
        ("seed", -3),
        ("plast", 1.5),
        ("plast", np.full(9, 0.5)),
        ("stress", -0.1),
        ("stress", np.zeros(4)),
        ("cell_drive", np.nan),
    ]
    for field, v in bad:
        kw = dict(ok, **{field: v})
        with pytest.raises(InputError):
            st.advance(s0, **kw)
    with pytest.raises(InputError, match="backend"):
        st.advance(s0, **ok, backend="cuda")
    with pytest.raises(InputError):
        st.SpineState(np.array([0, 3], np.int8), np.zeros(2, np.float32))
    with pytest.raises(InputError, match="multiple"):
        st.run_slow_phase(s0, 0.5, 0.0, 5.0, 10, seed=0)
    with pytest.raises(InputError):
        st.advance(s0, **ok, params={"stable": {"k_elim_p0": -1.0}})


def test_network_noise_is_exact_and_distinct_for_large_seeds():
    """Run seeds (:meth:`cortexsim.rng.SeedSchedule.noise_seed`, carried as float64 in the
    network) stay exact for every accepted seed, and neighbouring experiment seeds give
    different noise (issue 9, kind 4; tests/test_rng_streams.py for the whole schedule)."""
    from cortexsim.experiment import SEED_MAX

    top, below = (
        R.SeedSchedule(s).noise_seed("session", condition="c", session=0)
        for s in (SEED_MAX, SEED_MAX - 1)
    )
    assert int(float(top)) == top and int(float(below)) == below
    i, step = np.arange(1000), np.full(1000, 7)
    a = R.hashed_uniform_np(float(top), i, step, 0)
    b = R.hashed_uniform_np(float(below), i, step, 0)
    assert not np.array_equal(a, b)
    assert abs(a.mean() - 0.5) < 0.05 and abs(b.mean() - 0.5) < 0.05
    k = R.hashed_poisson_np(np.full(1000, 2.0), i, step, top, 0)
    assert abs(k.mean() - 2.0) < 0.2


def test_cpp_noise_source_is_generated_from_the_shared_constants():
    for c in (R.GOLDEN, R._M2, R._M3):
        assert f"0x{int(c):016X}ULL" in R.CPP_POISSON
