"""Validation of the reduced terminal model against the numerical cable equation, and
strength-duration behaviour."""
import numpy as np
import pytest

from cortexsim.coupling import (
    CELL_TYPES,
    Waveform,
    cable_threshold_vpm,
    fit_sd_time_constant,
    from_samples,
    get_waveform,
    reduced_end_potential,
    reduced_terminal_threshold_vpm,
    solve_cable,
    strength_duration,
)
from cortexsim.coupling.membrane import cell_params
from cortexsim.params import load_model

#: agreement reached (measured ~0.1%; the requirement was 10%)
TOL = 0.01


@pytest.mark.parametrize("ct", CELL_TYPES)
def test_reduced_matches_cable_thresholds(ct):
    for wf, w in (("biphasic", None), ("monophasic", None), ("half_sine", None),
                  ("rectangular", 30), ("rectangular", 200), ("biphasic", 200)):
        c = cable_threshold_vpm(ct, wf, pulse_width_us=w)
        r = reduced_terminal_threshold_vpm(ct, wf, pulse_width_us=w)
        assert r == pytest.approx(c, rel=TOL), (ct, wf, w)


def test_reduced_matches_cable_for_user_and_odd_width_pulses():
    """Same tolerance for a user-sampled pulse (damped cosine, as measured on a stimulator)
    and a rectangular width that is not a multiple of the 1 us grid."""
    t = np.linspace(0.0, 400e-6, 801)
    user = from_samples(t, np.cos(2 * np.pi * t / 300e-6) * np.exp(-t / 200e-6), name="user")
    for ct in ("PT_L5", "SST"):
        for wf, w in ((user, None), ("rectangular", 37.5)):
            c = cable_threshold_vpm(ct, wf, pulse_width_us=w)
            r = reduced_terminal_threshold_vpm(ct, wf, pulse_width_us=w)
            assert r == pytest.approx(c, rel=TOL), (ct, wf, w)


def test_reduced_matches_cable_time_course():
    """Pointwise V_end(t): the default grid is within 5% of the peak everywhere (the largest
    error sits in the first microseconds after a jump of the field, where V ~ sqrt(t)); a
    grid 4x finer in dt and dx brings it within 1%."""
    cp = cell_params("PT_L5")
    for wf in (get_waveform("monophasic"), get_waveform("rectangular", 100)):
        t, v = reduced_end_potential(wf, 200.0, cp["length_um"], cp["lambda_um"], cp["tau_us"])
        res = solve_cable(wf, 200.0, cp["length_um"], cp["lambda_um"], cp["tau_us"])
        assert np.allclose(t, res.t_s)
        assert np.max(np.abs(v - res.v_end_mV)) < 0.05 * np.max(np.abs(v))
        assert np.allclose(res.v_start_mV, -res.v_end_mV, atol=1e-9)  # odd symmetry
        fine = solve_cable(wf, 200.0, cp["length_um"], cp["lambda_um"], cp["tau_us"],
                           dx_um=cp["lambda_um"] / 160, substeps=4)
        assert np.max(np.abs(v - fine.v_end_mV[::4])) < TOL * np.max(np.abs(v))
    # short and long cables (length ratio far from the defaults)
    wf = get_waveform("biphasic")
    for L in (100.0, 3000.0):
        res = solve_cable(wf, 100.0, L, 400.0, 1000.0, substeps=4)
        _, v = reduced_end_potential(wf, 100.0, L, 400.0, 1000.0)
        assert np.max(np.abs(v - res.v_end_mV[::4])) < 0.02 * np.max(np.abs(v))
        assert np.max(np.abs(res.v_end_mV)) == pytest.approx(np.max(np.abs(v)), rel=TOL)


def test_cable_converges():
    """Halving dx and dt changes the threshold by < 0.2%: the default grid is converged."""
    coarse = cable_threshold_vpm("PT_L5", "rectangular", pulse_width_us=30)
    fine = cable_threshold_vpm("PT_L5", "rectangular", pulse_width_us=30,
                               dx_um=cell_params("PT_L5")["lambda_um"] / 160, substeps=4)
    assert coarse == pytest.approx(fine, rel=2e-3)
    assert reduced_terminal_threshold_vpm("PT_L5", "rectangular", 30) == \
        pytest.approx(fine, rel=2e-3)


def test_uniform_field_steady_state():
    """Long step: the end potential tends to lambda E tanh(L / 2 lambda) (cable theory)."""
    # a 10 ms step: longer than any TMS pulse (the waveform widths stop at 2 ms), so it is
    # built directly on the 1 us grid
    n = 10000
    wf = Waveform("step", t_s=np.arange(n) * 1e-6, e=np.ones(n), pulse_width_us=float(n))
    res = solve_cable(wf, 100.0, 500.0, 400.0, 500.0, tail_us=0.0)
    assert res.v_end_mV[-1] == pytest.approx(400 * 0.1 * np.tanh(500 / 800), rel=1e-3)
    # the membrane profile is antisymmetric, linear-ish (sinh) across the fibre
    assert res.v_final_mV[0] == pytest.approx(-res.v_final_mV[-1])


def test_strength_duration_time_constant_physiological():
    """Fitted S-D time constant of the terminal lies in 100-300 us: human TMS measurements
    give ~150 us (Barker et al. 1991), ~200 us (Peterchev et al. 2013) and 231 +- 97 us (PA) /
    294 +- 91 us (AP) (D'Ostilio et al. 2016)."""
    widths = [20, 30, 40, 60, 80, 100, 150, 200, 300, 400, 500]
    for ct in ("PT_L5", "SST"):
        th = strength_duration(ct, widths)
        assert np.all(np.diff(th) < 0)
        rh, tsd = fit_sd_time_constant(widths, th)
        assert 100 <= tsd <= 300
        fit = rh / -np.expm1(-np.asarray(widths) / tsd)
        assert np.max(np.abs(fit / th - 1)) < 0.05      # first-order-like curve
    # the cable solver gives the same curve
    thc = strength_duration("PT_L5", [30, 120, 480], method="cable")
    assert np.allclose(thc, strength_duration("PT_L5", [30, 120, 480]), rtol=TOL)


def test_sd_time_constant_follows_na_kinetics():
    """Mechanism check: a slower Na activation lengthens the S-D time constant."""
    widths = [20, 40, 80, 160, 320, 500]
    p = load_model("coupling")
    _, t1 = fit_sd_time_constant(widths, strength_duration("PT_L5", widths, params=p))
    p.set("response.tau_na_us", 60.0)
    _, t2 = fit_sd_time_constant(widths, strength_duration("PT_L5", widths, params=p))
    assert t2 > t1
