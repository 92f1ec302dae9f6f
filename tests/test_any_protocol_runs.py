"""Any protocol that validates can be simulated (issue 9, fault 09: 20 Hz rTMS and TBS with
30 Hz bursts passed validation, the network was built, then the run failed on a 20 ms grid)."""
import numpy as np
import pytest

from cortexsim.circuit.network import pulse_slot_s
from cortexsim.experiment import Experiment
from cortexsim.protocols import get_protocol

RTMS20 = {"kind": "rtms", "rtms_freq_hz": 20.0, "train_duration_s": 1.0,
          "inter_train_interval_s": 0.0, "n_pulses": 20}
TBS30 = {"base": "itbs600", "intra_burst_freq_hz": 30.0, "burst_freq_hz": 6.0,
         "train_duration_s": 2.0, "n_pulses": 30}


def test_pulse_grid_is_chosen_from_the_protocol():
    dt = 1e-4
    assert pulse_slot_s(get_protocol("itbs600").pulse_times(), dt) == pytest.approx(0.02)
    t20 = get_protocol(RTMS20).pulse_times()
    slot = pulse_slot_s(t20, dt)                 # the largest divisor of 50 ms up to 20 ms
    assert slot == pytest.approx(0.0125)
    assert np.allclose(np.round(t20 / slot) * slot, t20)
    # 30 Hz bursts: 33.33 ms is off the 0.1 ms grid; pulses go to the nearest step, grid dt
    t = get_protocol(TBS30).pulse_times()
    slot = pulse_slot_s(t, dt)
    assert slot == pytest.approx(dt)
    assert np.max(np.abs(np.round(t / dt) * dt - t)) <= dt / 2


@pytest.mark.slow
def test_off_grid_protocols_run_end_to_end():
    spec = {
        "experiment": {"name": "offgrid", "seed": 2},
        "settings": {"scale": 60, "baseline_fast_s": 0.5, "session_tail_s": 0.1,
                     "slow_dt_h": 6.0},
        "timeline": [{"kind": "baseline", "days": 0.5}, {"kind": "stimulation"},
                     {"kind": "rest", "days": 0.5, "readout": "after"}],
        "conditions": {"rtms20": {"stress": False, "protocol": RTMS20, "intensity_pct_rmt": 120},
                       "tbs30": {"stress": False, "protocol": TBS30, "intensity_pct_rmt": 120}},
    }
    res = Experiment.from_dict(spec).run(progress=False)
    rates = res.data.session_rate
    assert np.isfinite(rates.sel(condition="rtms20")).any()
    assert np.isfinite(rates.sel(condition="tbs30")).any()
