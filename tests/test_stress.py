"""Chronic stress schedule -> glucocorticoid signal S(t)."""
import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.params import load_model
from cortexsim.plasticity.stress import StressSchedule, exposure, stress_per_step, stress_signal


def test_no_schedule_is_zero_and_before_onset_zero():
    t = np.linspace(0, 30, 301)
    assert np.all(stress_signal(t, None) == 0)
    S = stress_signal(t, {"days": 14, "hours_per_day": 6, "onset_day": 5})
    assert np.all(S[t < 5.3] < 1e-9)            # sessions start at 9:00 on day 5
    assert S[t >= 6].min() > 0


def test_steady_state_of_reference_protocol_is_about_one():
    t = np.arange(0, 21, 1 / 24)
    S = stress_signal(t, {"days": 21, "hours_per_day": 6})
    last = S[(t >= 18) & (t < 21)]
    assert 0.85 < last.mean() < 1.15
    # load builds up over days (tau_load): day 1 well below day 14
    assert S[24] < 0.5 * S[14 * 24]


def test_decay_after_stress_follows_tau_load():
    tau = load_model("stress").value("tau_load")
    t = np.arange(0, 40, 1 / 24)
    S = stress_signal(t, {"days": 14, "hours_per_day": 6})
    s_end = S[np.searchsorted(t, 14.5)]
    s_later = S[np.searchsorted(t, 14.5 + tau)]
    assert s_later / s_end == pytest.approx(np.exp(-1), rel=0.1)


def test_more_hours_and_amplitude_give_more_stress():
    t = np.arange(0, 14, 1 / 24)
    s2 = stress_signal(t, {"days": 14, "hours_per_day": 2})
    s6 = stress_signal(t, {"days": 14, "hours_per_day": 6})
    s24 = stress_signal(t, {"days": 14, "hours_per_day": 24, "kind": "corticosterone",
                            "amplitude": 0.5})
    assert s2[-1] < s6[-1] < s24[-1]
    assert s6[-1] / s2[-1] == pytest.approx(3.0, rel=0.1)


def test_exposure_windows_and_per_step_sampling():
    sch = StressSchedule(days=2, hours_per_day=6, start_hour=10)
    t = np.array([0.0, 10.5 / 24, 15.9 / 24, 16.1 / 24, 1 + 11 / 24, 2 + 11 / 24])
    np.testing.assert_array_equal(exposure(t, sch), [0, 1, 1, 0, 1, 0])
    S = stress_per_step({"days": 3, "hours_per_day": 6}, 0.0, 2.0, 36)
    assert S.shape == (36,) and np.all(S >= 0)
    # unsorted times give the same values as sorted ones
    tt = np.array([5.0, 1.0, 3.0])
    np.testing.assert_allclose(stress_signal(tt, {"days": 7, "hours_per_day": 6}),
                               stress_signal(np.sort(tt), {"days": 7, "hours_per_day": 6})[[2, 0, 1]])


@pytest.mark.parametrize("bad", [
    {"days": -1, "hours_per_day": 6},
    {"days": 14, "hours_per_day": 0},
    {"days": 14, "hours_per_day": 25},
    {"days": 14, "hours_per_day": 6, "onset_day": -2},
    {"days": 14, "hours_per_day": 6, "amplitude": -1},
    {"days": 2.5, "hours_per_day": 6},
    {"days": 14, "hours_per_day": 6, "kind": "swim"},
    {"days": 14, "hours_per_day": 6, "start_hour": 20},
    {"days": 14, "hours_per_day": 6, "weeks": 2},
    {"hours_per_day": 6},
])
def test_schedule_validation(bad):
    with pytest.raises(InputError):
        stress_signal(np.arange(3.0), bad)


def test_bad_times_and_params_override():
    with pytest.raises(InputError):
        stress_signal(np.array([0.0, np.nan]), {"days": 1, "hours_per_day": 6})
    t = np.arange(0, 14, 1 / 24)
    fast = stress_signal(t, {"days": 14, "hours_per_day": 6}, params={"tau_load": 1.0})
    slow = stress_signal(t, {"days": 14, "hours_per_day": 6})
    assert fast[48] > slow[48]
