"""cortexsim sensitivity: SALib Sobol indices on the sweep engine's evaluation interface,
checked on a model with known indices (no network)."""

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.sweep import sensitivity as sens
from cortexsim.sweep.spec import validate

COEF = {"structural.a": 4.0, "structural.b": 1.0, "structural.c": 0.0}


def _spec(**over):
    raw = {
        "sensitivity": {"name": "lin", "base": "b.toml", "n_base": 512, "sample_seed": 2, **over},
        "parameters": [{"path": p, "low": 0.0, "high": 1.0} for p in COEF],
        "metrics": [
            {
                "name": "y",
                "var": "spine_density_rel",
                "condition": "c",
                "readout": "r",
                "population": "IT_L5",
            }
        ],
    }
    return validate(sens.SensitivitySpec, raw, "sensitivity spec")


def _evaluate(points, seeds):
    return [[{"y": sum(COEF[k] * v for k, v in p.items())} for _ in seeds] for p in points]


def test_sobol_indices_of_a_linear_model(tmp_path):
    spec = _spec()
    points = sens.sample_points(spec)
    assert len(points) == 512 * (3 + 2)
    idx = sens.analyze(spec, points, _evaluate)["y"]
    exact = np.array([16.0, 1.0, 0.0]) / 17.0  # a_i^2 / sum a^2 for uniform inputs
    s1, conf = np.array(idx["S1"]), np.array(idx["S1_conf"])
    assert np.all(np.abs(s1 - exact) < np.maximum(3 * conf, 0.02))
    assert np.all(np.abs(np.array(idx["ST"]) - exact) < 0.05)  # additive: ST = S1
    out = sens.write_outputs(spec, {"y": idx}, tmp_path)
    assert (tmp_path / "sobol_y.png").stat().st_size > 0
    assert out["parameters"] == list(COEF)
    assert (tmp_path / "sobol.csv").read_text().count("\n") == 4


def test_samples_are_reproducible_from_their_seed():
    a, b = sens.sample_points(_spec()), sens.sample_points(_spec())
    c = sens.sample_points(_spec(sample_seed=3))
    assert a == b and a != c
    x = np.array([list(p.values()) for p in a])
    assert x.min() >= 0.0 and x.max() <= 1.0


@pytest.mark.parametrize(
    "patch, field",
    [
        (lambda r: r["parameters"].pop(), "sensitivity spec.parameters"),
        (lambda r: r["parameters"][0].update(high=-1.0), "sensitivity spec.parameters[0]"),
        (
            lambda r: r["parameters"][0].update(high=float("inf")),
            "sensitivity spec.parameters[0].high: must be a finite number",
        ),
        (
            lambda r: r["sensitivity"].update(conf_level=float("nan")),
            "sensitivity spec.sensitivity.conf_level: must be a finite number",
        ),
        (lambda r: r["sensitivity"].update(n_base="8"), "sensitivity spec.sensitivity.n_base"),
        (lambda r: r["sensitivity"].update(conf_level=1.5), "sensitivity spec.sensitivity.conf"),
    ],
)
def test_bad_sensitivity_specs_name_the_field(patch, field):
    raw = {
        "sensitivity": {"name": "x", "base": "b.toml"},
        "parameters": [{"path": p, "low": 0.0, "high": 1.0} for p in list(COEF)[:2]],
        "metrics": [
            {
                "name": "y",
                "var": "spine_density_rel",
                "condition": "c",
                "readout": "r",
                "population": "IT_L5",
            }
        ],
    }
    patch(raw)
    with pytest.raises(InputError) as e:
        validate(sens.SensitivitySpec, raw, "sensitivity spec")
    assert str(e.value).startswith(field)
