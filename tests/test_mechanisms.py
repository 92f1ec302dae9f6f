"""Candidate mechanisms (models/mechanisms.toml, cortexsim/mechanisms.py): switched on/off as a
whole by overrides and ablations, validated up front, explicit overrides win."""
import shutil

import pytest

from cortexsim.errors import InputError
from cortexsim.experiment.spec import model_trees
from cortexsim.mechanisms import mechanisms
from cortexsim.params import load_model, models_dir


def test_declared_mechanisms_are_off_in_the_default_model_and_valid():
    ms = mechanisms(load_model("mechanisms"))
    assert ms, "no mechanism declared"
    base = model_trees({})
    for name, m in ms.items():
        assert m.set, name
        on = model_trees({f"mechanisms.{name}.enabled": True})
        for s in m.set:
            model, rest = s.path.split(".", 1)
            # every mechanism value is a real parameter that the mechanism changes
            assert on[model].value(rest) != base[model].value(rest) or m.enabled, s.path
            assert on[model].meta(rest)["source"].startswith(f"mechanism {name}")


def test_enable_ablate_and_explicit_override_order():
    on = model_trees({"mechanisms.pv_prefers_pt.enabled": True})
    assert on["circuit"].value("conn.PV.PT_L5.g") == pytest.approx(4.0)
    assert on["circuit"].value("conn.PV.IT_L5.g") == pytest.approx(2.0)
    off = model_trees({"mechanisms.pv_prefers_pt.enabled": True}, ["pv_prefers_pt"])
    assert off["circuit"].value("conn.PV.PT_L5.g") == pytest.approx(2.0)
    mine = model_trees({"circuit.conn.PV.PT_L5.g": 3.0, "mechanisms.pv_prefers_pt.enabled": True})
    assert mine["circuit"].value("conn.PV.PT_L5.g") == pytest.approx(3.0)
    # an ablation wins over explicit overrides of the mechanism's parameters (a spec with fitted
    # gains, ablated, is the model without the mechanism), value and provenance alike
    fitted = {"mechanisms.dopamine_d1.enabled": True, "structural.dopamine.gain_d1": 9.5,
              "structural.dopamine.gain_d2": 2.7, "structural.activity.tau_h": 30.0}
    abl = model_trees({**fitted, "circuit.conn.PV.PT_L5.g": 3.0}, ["dopamine_d1"])
    shipped = model_trees({})
    for path in ("dopamine.gain_d1", "dopamine.gain_d2"):
        assert abl["structural"].value(path) == shipped["structural"].value(path) == 0.0
        assert abl["structural"].meta(path) == shipped["structural"].meta(path)
    assert abl["structural"].value("activity.tau_h") == 30.0         # not the mechanism's
    assert abl["circuit"].value("conn.PV.PT_L5.g") == pytest.approx(3.0)
    assert model_trees(fitted)["structural"].value("dopamine.gain_d1") == 9.5


def test_unknown_ablation_and_bad_mechanism_values_are_input_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="ablations.*pv_prefers_pt"):
        model_trees({}, ["pv_prefers_PT"])
    folder = tmp_path / "models"
    shutil.copytree(models_dir(), folder)
    text = (folder / "mechanisms.toml").read_text()
    (folder / "mechanisms.toml").write_text(
        text.replace('path = "circuit.conn.PV.PT_L5.g"', 'path = "circuit.conn.PV.PT_L5.gg"'))
    monkeypatch.setenv("CORTEXSIM_MODELS", str(folder))
    with pytest.raises(InputError, match=r"mechanisms.pv_prefers_pt.set\[0\]"):
        model_trees({"mechanisms.pv_prefers_pt.enabled": True})
    (folder / "mechanisms.toml").write_text(text.replace("value = 4.0", "value = -4.0"))
    with pytest.raises(InputError, match=r"mechanisms.pv_prefers_pt.set\[0\]"):
        model_trees({"mechanisms.pv_prefers_pt.enabled": True})
    (folder / "mechanisms.toml").write_text(text.replace("enabled = false", "enabled = 1"))
    with pytest.raises(InputError, match="mechanisms.pv_prefers_pt.enabled"):
        model_trees({})


def test_spec_with_unknown_mechanism_ablation_fails_before_running(tmp_path):
    from cortexsim.experiment import load_experiment
    spec = tmp_path / "s.toml"
    study = (models_dir().parent / "experiments" / "aitbs_study.toml").as_posix()
    spec.write_text(f'extends = "{study}"\n[conditions.stress_aitbs]\nprotocol = "aitbs_day"\n'
                    'ablations = ["pv_prefers"]\n')
    with pytest.raises(InputError, match="conditions.stress_aitbs.ablations"):
        load_experiment(spec)
