"""The fast-to-slow rule contract (issue 22 item 4): a third, trivial spine-driving rule
(cortexsim.plasticity.rate_spines) is one module plus one registration, and runs end to end
through a study selected by overrides alone."""

import tomllib

import numpy as np
import pytest

from cortexsim.params import experiments_dir
from cortexsim.plasticity import rules
from cortexsim.plasticity.rate_spines import W_NEW, W_START, RateSpines
from cortexsim.plasticity.spines import GBSpines, SpineContract

#: the projections whose synapses are spine sites in the shipped model (one group)
SITE_PROJECTIONS = [
    ("IT_L23", "IT_L23"),
    ("IT_L23", "IT_L5"),
    ("IT_L23", "PT_L5"),
    ("IT_L5", "IT_L23"),
    ("IT_L5", "IT_L5"),
    ("IT_L5", "PT_L5"),
    ("PT_L5", "IT_L5"),
    ("PT_L5", "PT_L5"),
]


def test_the_trivial_rule_is_registered_from_its_module():
    assert "rate_spines" in rules.rule_names()
    assert "cortexsim.plasticity.rate_spines" in rules.RULE_MODULES
    assert isinstance(rules.get_rule("rate_spines"), SpineContract)
    assert isinstance(rules.get_rule("graupner_brunel"), GBSpines)


def test_contract_of_the_trivial_rule():
    r = RateSpines()
    sites = r.initial_sites(r.initial_state(4, np.random.default_rng(0)) | {"on": np.ones(4)})
    np.testing.assert_array_equal(sites["w"], np.full(4, W_START))
    new = np.array([True, False, True, False])
    after = r.new_spine_sites(sites, new)
    np.testing.assert_array_equal(after["w"], np.where(new, W_NEW, W_START))
    assert set(r.run_spines(np.ones(4), after)) == {"on"}


def _tiny_with_rule(rule: str) -> dict:
    spec = tomllib.loads((experiments_dir() / "tiny.toml").read_text())
    spec["settings"]["scale"] = 100
    spec["overrides"] = {f"circuit.conn.{a}.{b}.plasticity": rule for a, b in SITE_PROJECTIONS}
    return spec


@pytest.mark.slow
def test_trivial_rule_runs_a_whole_study():
    """tiny.toml at 100 neurons with every spine-site projection on the trivial rule: pass 1,
    the timeline (sessions, slow phases, read-outs) and the read-outs run; the session leaves
    the rule's efficacy alone (dw = 0) and drives spines from the rates."""
    from cortexsim.experiment import Experiment

    res = Experiment.from_dict(_tiny_with_rule("rate_spines")).run(progress=False)
    import json

    ds = res.data
    models = json.loads(ds.attrs["models"])
    assert models["stim"]["circuit"]["conn"]["IT_L5"]["IT_L5"]["plasticity"] == "rate_spines"
    dw = ds["session_dw"].sel(condition="stim").values
    assert np.all(np.nan_to_num(dw) == 0.0)
    drive = ds["session_drive"].sel(condition="stim").values
    assert np.any(np.nan_to_num(drive) != 0.0)
    assert np.nanmax(ds["spine_density"].values) > 0
    assert all(c["passed"] for c in res.criteria), res.criteria
