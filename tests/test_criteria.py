"""Criteria judged relative to an effect cannot pass vacuously (issue 13): when the criterion
they require fails, they report "not applicable"."""
import numpy as np
import xarray as xr

from cortexsim.criteria import evaluate

EFFECT = {"name": "restores", "var": "spine_density_rel", "condition": "stim",
          "minus_condition": "sham", "readout": "24h", "populations": ["IT_L5"], "op": ">",
          "value": 0.05}
KEEPS = {"name": "PT unchanged", "var": "spine_density_rel", "condition": "stim",
         "minus_condition": "sham", "readout": "24h", "populations": ["PT_L5"], "op": "<",
         "value": 0.03, "requires": "restores"}


def _ds(it_gain: float) -> xr.Dataset:
    rel = np.ones((2, 2, 2))
    rel[0, 0, 1] += it_gain               # stim, IT_L5, t = 1 d
    return xr.Dataset(
        {"spine_density_rel": (("condition", "population", "time_d"), rel),
         "readout_time_d": (("condition", "readout"), np.array([[1.0], [1.0]]))},
        coords={"condition": ["stim", "sham"], "population": ["IT_L5", "PT_L5"],
                "time_d": [0.0, 1.0], "readout": ["24h"]})


def test_dependent_criterion_is_not_applicable_without_the_effect():
    effect, keeps = evaluate(_ds(0.0), [EFFECT, KEEPS])
    assert effect["status"] == "fail" and effect["passed"] is False
    assert keeps["status"] == "not applicable" and keeps["passed"] is None
    assert "restores" in keeps["reason"]
    assert keeps["observed"] == {"PT_L5": 0.0}          # the number is still reported


def test_dependent_criterion_is_judged_with_the_effect():
    effect, keeps = evaluate(_ds(0.1), [EFFECT, KEEPS])
    assert effect["status"] == "pass" and keeps["status"] == "pass" and keeps["passed"] is True
    strict = {**KEEPS, "value": -1.0}
    assert evaluate(_ds(0.1), [EFFECT, strict])[1]["status"] == "fail"
