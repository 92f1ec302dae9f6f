"""Cell models (cortexsim.circuit.cells) and their characterisation against published targets."""

import json

import brian2 as b2
import numpy as np
import pytest

from cortexsim.circuit import cells, characterize
from cortexsim.errors import InputError
from cortexsim.params import load_model
from cortexsim.populations import POPULATIONS

# Tolerances (absolute for v_rest / adaptation / resonance, relative otherwise).
TOL_ABS = {"v_rest_mV": 2.0, "adaptation_ratio": 0.15, "resonance_Hz": 1.0}
TOL_REL = {"input_resistance_MOhm": 0.15, "rheobase_pA": 0.30, "fi_slope_Hz_per_nA": 0.30}


@pytest.fixture(scope="module")
def table():
    return {r["name"]: r for r in characterize.characterize_all()}


def test_every_population_has_model_and_targets_with_sources(table):
    assert set(table) == set(POPULATIONS)
    for pop, row in table.items():
        assert set(row["simulated"]) >= set(characterize.KEYS)
        assert set(row["target"]) >= set(characterize.KEYS)
        assert any(v is not None for v in row["target"].values()), pop
        assert len(row["source"]) > 10


@pytest.mark.parametrize("key", list(TOL_ABS) + list(TOL_REL))
def test_simulated_matches_published_targets(table, key):
    checked = 0
    for pop, row in table.items():
        tgt, sim = row["target"][key], row["simulated"][key]
        if tgt is None:
            continue
        assert sim is not None, (pop, key)
        if key in TOL_ABS:
            assert abs(sim - tgt) <= TOL_ABS[key], (pop, key, sim, tgt)
        else:
            assert abs(sim - tgt) <= TOL_REL[key] * abs(tgt), (pop, key, sim, tgt)
        checked += 1
    assert checked >= 1


def test_pt_vs_it_differences_follow_mechanism(table):
    pt, it = table["PT_L5"]["simulated"], table["IT_L5"]["simulated"]
    assert pt["sag_ratio"] > it["sag_ratio"] + 0.2
    assert pt["v_rest_mV"] > it["v_rest_mV"] + 2
    assert pt["input_resistance_MOhm"] < it["input_resistance_MOhm"]
    assert pt["adaptation_ratio"] > it["adaptation_ratio"] + 0.3
    assert 3.0 <= pt["resonance_Hz"] <= 6.0  # Dembrow et al. 2010: 3-6 Hz
    assert it["resonance_Hz"] is None  # IT: low-pass, no resonance
    # PV fast-spiking: steepest f-I and little adaptation; SST adapts more than PV
    pv, sst = table["PV"]["simulated"], table["SST"]["simulated"]
    assert pv["fi_slope_Hz_per_nA"] > 3 * pt["fi_slope_Hz_per_nA"]
    assert sst["adaptation_ratio"] < pv["adaptation_ratio"]


def test_sag_and_resonance_come_from_the_h_current():
    tree = load_model("cells")
    tree.set("PT_L5.g_h", 0.0)
    res = characterize.simulate(["PT_L5"], tree)["PT_L5"]
    assert res["sag_ratio"] < 0.02
    assert res["resonance_Hz"] is None
    # the resting state shifts with the h-current (more hyperpolarised without it)
    assert cells.resting_state("PT_L5", tree)["v"] < cells.resting_state("PT_L5")["v"] - 0.005


def test_neuron_model_api_and_network_style_use():
    b2.start_scope()
    prev = b2.prefs.codegen.target
    b2.prefs.codegen.target = "numpy"
    groups = []
    for pop in POPULATIONS:
        m = cells.neuron_model(pop)
        assert isinstance(m, cells.NeuronModel)
        assert "I_syn" in m.eqs and "I_ext" in m.eqs
        assert "I_syn :" not in m.eqs and "I_ext :" not in m.eqs
        assert m.method in ("euler", "exponential_euler")
        assert all(k.endswith("_" + pop) for k in m.namespace)
        eqs = m.eqs + "I_syn = 0*amp : amp\nI_ext = I0*int(t > 20*ms) : amp\nI0 : amp (constant)\n"
        G = b2.NeuronGroup(
            3,
            eqs,
            threshold=m.threshold,
            reset=m.reset,
            refractory=m.refractory,
            method=m.method,
            namespace=m.namespace,
            dt=0.1 * b2.ms,
            name=f"g_{pop}",
        )
        for k, v in m.init.items():
            setattr(G, k, v)
        G.I0 = [0, 400, 5000] * b2.pA  # rest, firing, very strong drive
        groups.append((pop, G, b2.SpikeMonitor(G)))
    net = b2.Network(*[x for _, G, S in groups for x in (G, S)])
    try:
        net.run(200 * b2.ms)
    finally:
        b2.prefs.codegen.target = prev
    for pop, G, S in groups:
        v = np.asarray(G.v / b2.mV)
        assert np.all(np.isfinite(v)), pop
        assert S.count[0] == 0, pop  # at rest: silent
        assert S.count[1] > 0 and S.count[2] >= S.count[1], pop
        assert abs(v[0] - float(m_init_mV(pop))) < 0.5, pop


def m_init_mV(pop):
    return cells.neuron_model(pop).init["v"] / b2.mV


def test_params_override_and_bad_input():
    m = cells.neuron_model("PT_L5", {"g_h": 0.0})
    assert float(m.namespace["g_h_PT_L5"] / b2.nS) == 0.0
    with pytest.raises(InputError):
        cells.neuron_model("VIP")
    with pytest.raises(InputError):
        characterize.characterize("L4")
    with pytest.raises(InputError, match="finite number"):
        cells.neuron_model("PV", {"C": "big"})
    with pytest.raises(InputError, match="> 0"):
        cells.neuron_model("PV", {"C": -1.0})


def test_characterize_single_matches_table(table):
    one = characterize.characterize("SST")
    assert one["v_rest_mV"] == pytest.approx(table["SST"]["simulated"]["v_rest_mV"])


def test_cli_celltypes_json(capsys, table):
    from cortexsim.cli import main

    assert main(["celltypes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == list(POPULATIONS)
    for d in data:
        assert set(d) >= {"name", "simulated", "target", "source"}
        for k in characterize.KEYS:
            assert k in d["simulated"] and k in d["target"]
