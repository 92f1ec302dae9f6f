"""The plasticity-rule interface (issue 10): registry by name, Graupner-Brunel as one
implementation (the same numbers as cortexsim.plasticity.synaptic), the static rule "none".
No Brian2 network here (the circuit-level checks are in test_circuit_data.py)."""

import numpy as np
import pytest

from cortexsim.circuit import equations as eq
from cortexsim.errors import InputError
from cortexsim.plasticity import rules, synaptic


def test_registry_by_name():
    assert {"graupner_brunel", "none"} <= set(rules.rule_names())
    assert isinstance(rules.get_rule("graupner_brunel"), rules.GraupnerBrunel)
    assert isinstance(rules.get_rule("none"), rules.Static)
    with pytest.raises(InputError, match="conn.PV.SST.plasticity") as e:
        rules.get_rule("stdp", field="conn.PV.SST.plasticity")
    assert "graupner_brunel" in str(e.value) and "none" in str(e.value)


def test_every_rule_implements_the_interface():
    for name in rules.rule_names():
        r = rules.get_rule(name)
        assert isinstance(r, rules.PlasticityRule) and r.name == name
        code = r.synapse_code()
        assert code.transmission_pathway in code.on_pre
        # every initial value is a run-time value or per-site state of the spine contract
        assert set(r.initial_state(3, np.random.default_rng(0))) <= {"rho", "on"} | set(
            r.settable
        ) | set(r.site_state)


def test_static_rule_has_no_state():
    r = rules.get_rule("none")
    code = r.synapse_code()
    assert code.model == "" and code.on_post is None and not r.settable and not r.structural
    assert r.initial_state(10, np.random.default_rng(0)) == {}
    assert r.carry_over({"x": 1}, {}, 100.0) == {"x": 1}
    assert r.structural_signals({}, 1.0) == {}
    with pytest.raises(InputError, match="spines"):
        r.run_values(object(), {"rho": np.zeros(2)})
    _, trans = eq.transmission(("AMPA", "NMDA"), "none", r, 0.25)
    assert "w" not in trans.replace("_post", "")


def test_gb_initial_state_and_carry_over_are_the_synaptic_module():
    r = rules.get_rule("graupner_brunel", {"efficacy.gamma_p": 600.0})
    assert r.params.gamma_p == 600.0 and r.structural and set(r.settable) == {"on", "rho"}
    a = r.initial_state(500, np.random.default_rng(7))["rho"]
    np.testing.assert_array_equal(
        a, synaptic.initial_rho(500, np.random.default_rng(7), params=r.params)
    )
    rng = np.random.default_rng(1)
    rho = rng.random(50)
    fp, fd = 0.05 * rng.random(50), 0.2 * rng.random(50)
    out = r.carry_over({"rho": rho, "on": np.ones(50)}, {"frac_p": fp, "frac_d": fd}, 300.0)
    np.testing.assert_array_equal(
        out["rho"], synaptic.advance_fractions(rho, fp, fd, 300.0, r.params)
    )
    assert np.any(out["rho"] != rho)


def test_gb_structural_signals():
    r = rules.get_rule("graupner_brunel")
    syn = {
        "rho": np.array([0.1, 0.9]),
        "t_above_p": np.array([0.2, 0.0]),
        "t_above_d": np.array([0.5, 0.1]),
    }
    s = r.structural_signals(syn, 2.0)
    np.testing.assert_array_equal(s["rho"], syn["rho"])
    np.testing.assert_allclose(s["frac_p"], syn["t_above_p"] / 2.0)
    np.testing.assert_allclose(s["frac_d"], syn["t_above_d"] / 2.0)
    with pytest.raises(InputError, match="duration_s"):
        r.structural_signals(syn, 0.0)


def test_gb_weight_scales_ampa_and_presence_gates_nmda():
    r = rules.get_rule("graupner_brunel")
    rho0 = np.array([0.0, 1.0, 1.0, 0.0])
    p = r.params
    assert r.transmission_namespace({"rho": rho0})["w_ref"] == pytest.approx(
        np.mean(p.w_down + rho0 * (p.w_up - p.w_down))
    )
    model, trans = eq.transmission(("AMPA", "NMDA"), "depression", r, 0.25)
    ampa, nmda = (ln for ln in trans.splitlines() if "_post +=" in ln)
    assert "w*" in ampa and "/w_ref" in ampa and "on*" in nmda and "w*" not in nmda
    assert "x_rel" in model and "x_rel" in ampa
