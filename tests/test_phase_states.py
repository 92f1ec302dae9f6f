"""Shared history (issue 21): states after the phases before the sessions, keyed by what they
read, are re-used bit for bit; a changed input that an earlier phase reads invalidates them."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cortexsim.experiment import Experiment, read_spec
from cortexsim.experiment import phase_states as PS
from cortexsim.experiment.spec import _model_trees
from cortexsim.experiment.store import code_version

ROOT = Path(__file__).resolve().parent.parent
STUDY = read_spec(ROOT / "experiments/aitbs_study.toml")


def _ctx(overrides: dict, cond: str = "stress_aitbs"):
    cfg = Experiment.from_dict(
        {**STUDY, "overrides": {"mechanisms.nmda_spinogenesis.enabled": True, **overrides}}
    ).resolved_config(scale="small")
    c = cfg["conditions"][cond]
    ov = {**cfg["overrides"], **c["overrides"]}
    trees = _model_trees(ov, list(cfg["ablations"]) + c["ablations"])
    return SimpleNamespace(cond=c, settings=cfg["settings"], timeline=cfg["timeline"], trees=trees)


def _keys(overrides: dict, cond: str = "stress_aitbs", version=None):
    ctx = _ctx(overrides, cond)
    n = PS.prefix_length(ctx.timeline)
    assert n == 2  # baseline, stress
    return [PS.phase_key(ctx, k, version or code_version(), 1, ("stress", 14)) for k in range(n)]


def test_late_parameters_keep_the_key():
    base = _keys({})
    assert _keys({"structural.activity.nmda_gain": 500.0}) == base
    assert _keys({"structural.activity.drive_max": 3.0, "structural.dopamine.gain_d1": 4.0}) == base
    assert _keys({"mechanisms.dopamine_d1.enabled": True}) == base
    # the conditions that share a history share its states: sham, aiTBS, silenced, stress
    assert _keys({}, "stress_sham") == base == _keys({}, "stress_aitbs_it_silenced")
    assert _keys({}, "stress") == base


@pytest.mark.parametrize(
    "path,value",
    [
        ("structural.formation.drive_gain", 7.0),  # read by every slow phase
        ("structural.homeostasis.gain", 0.5),
        ("synaptic.calcium.c_pre", 0.9),  # the network (drawn circuit)
    ],
)
def test_an_early_parameter_invalidates(path, value):
    from cortexsim.params import load_model

    tree, sub = path.split(".", 1)
    try:
        load_model(tree).value(sub)
    except Exception:
        pytest.skip(f"{path} not in the shipped model")
    assert _keys({path: value}) != _keys({})


def test_control_without_stress_differs_after_its_baseline_only():
    ctrl, stressed = _keys({}, "control"), _keys({}, "stress_aitbs")
    assert ctrl[1] != stressed[1]


def test_a_model_file_changed_between_runs_invalidates(tmp_path, monkeypatch):
    from cortexsim.params import models_dir

    before = _keys({})
    models = tmp_path / "models"
    shutil.copytree(models_dir(), models)
    f = models / "stress.toml"
    text = f.read_text()
    import re

    m = re.search(r"value\s*=\s*([0-9.]+)", text)
    assert m
    new = str(float(m.group(1)) * 1.5 + 0.01)
    f.write_text(text[: m.start(1)] + new + text[m.end(1) :])
    monkeypatch.setenv("CORTEXSIM_MODELS", str(models))
    after = _keys({})
    assert after[0] != before[0] and after[1] != before[1]


def _session_key(overrides: dict, version=None, **inputs):
    ctx = _ctx(overrides)
    ctx.key = "net"
    run = {"run_seed": 7, "on": np.ones(4), "site_rho": np.full(4, 0.5), **inputs}
    return PS.session_key(ctx, version or code_version(), 1, run)


def test_session_outcome_key_follows_what_the_session_reads():
    """The stored outcome of a session (issue 21) is keyed by the content of its inputs: the
    drive's parameters (read after its runs) keep it; the network's, the rule's, the spine
    state, the noise seed and the code version (model files included) change it."""
    base = _session_key({})
    assert _session_key({"structural.activity.nmda_gain": 500.0}) == base
    assert _session_key({"structural.dopamine.gain_d1": 4.0}) == base
    assert _session_key({"synaptic.calcium.c_pre": 0.9}) != base
    assert _session_key({"structural.formation.drive_gain": 7.0}) != base
    assert _session_key({}, version="other") != base
    assert _session_key({}, run_seed=8) != base
    assert _session_key({}, site_rho=np.full(4, 0.25)) != base
    assert _session_key({}, on=np.array([1.0, 1.0, 0.0, 1.0])) != base


def test_store_round_trip(tmp_path):
    st = PS.PhaseStateStore(tmp_path)
    a = {"x": np.arange(5.0), "y": np.array([1, 0], dtype=np.int8)}
    st.save("k", a, {"state": {"phase": 1}})
    arrays, meta = st.load("k")
    assert np.array_equal(arrays["x"], a["x"]) and arrays["y"].dtype == np.int8
    assert meta["state"] == {"phase": 1}
    assert st.load("other") is None


# ------------------------------------------------------------------ end to end, bit for bit
TINY = read_spec(ROOT / "experiments/tiny.toml")


def _tiny(gain):
    raw = {
        **TINY,
        "overrides": {
            "mechanisms.nmda_spinogenesis.enabled": True,
            "structural.activity.nmda_gain": gain,
        },
    }
    raw["conditions"] = {"stim": TINY["conditions"]["stim"]}
    raw["criteria"] = []
    return Experiment.from_dict(raw)


def test_a_point_started_from_a_stored_state_is_bit_identical(tmp_path, monkeypatch):
    loads = []
    orig = PS.PhaseStateStore.load

    def spy(self, key):
        got = orig(self, key)
        loads.append(got is not None)
        return got

    monkeypatch.setattr(PS.PhaseStateStore, "load", spy)
    shared = tmp_path / "shared"
    with PS.shared_dir(shared):
        _tiny(50.0).run(progress=False)  # stores the baseline state
        assert list((shared / "phase_states").glob("*.npz"))
        loads.clear()
        got = _tiny(200.0).run(progress=False).data  # starts after the baseline
    assert any(loads)
    monkeypatch.setenv("CORTEXSIM_PHASE_STATES", "0")
    loads.clear()
    with PS.shared_dir(tmp_path / "unused"):
        ref = _tiny(200.0).run(progress=False).data  # the whole history
    assert not loads and not (tmp_path / "unused").exists()
    import xarray as xr

    xr.testing.assert_equal(got, ref)  # bit for bit (NaN where NaN)
