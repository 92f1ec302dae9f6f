"""Optogenetic stimulation (issue 13, section 3): the channelrhodopsin-2 photocurrent follows the
three-state kinetics of models/opto.toml, light pulses at a protocol's pulse times drive only
the cells that express the opsin, bad input is one InputError, and the optogenetic study parses.
"""
import numpy as np
import pytest

from cortexsim.circuit.network import Circuit, Stimulus
from cortexsim.circuit.stimulus import photocurrent
from cortexsim.errors import InputError
from cortexsim.experiment import load_experiment
from cortexsim.experiment.spec import parse_spec, read_spec
from cortexsim.params import load_model

OPTO = load_model("opto")
TAU_OFF_MS = OPTO.to("chr2.tau_off", "ms")
G_MAX_NS = OPTO.to("chr2.g_max", "nS")
E_MV = OPTO.to("chr2.E", "mV")


def _rates_per_ms(irr):
    """(G_a, G_d, G_r) of the three-state model at irradiance ``irr`` (mW/mm^2), light on."""
    p, half = OPTO.value("chr2.p"), OPTO.to("chr2.phi_half", "mW/mm^2")
    ga = OPTO.to("chr2.k_a", "1/ms") * irr**p / (irr**p + half**p)
    gr = 1.0 / OPTO.to("chr2.tau_rec_dark", "ms") + OPTO.to("chr2.k_rec_light", "1/ms")
    return ga, 1.0 / TAU_OFF_MS, gr


def test_photocurrent_decays_with_tau_off_and_rises_with_the_activation_rate():
    onset, width = 10.0, 5.0
    r = photocurrent(10.0, pulse_ms=width, duration_ms=80.0, onset_ms=onset, v_mV=-70.0)
    t, o = r["t_ms"], r["open"]
    # decay after the pulse: exp(-t/tau_off) (light off, no other way out of the open state)
    off = (t > onset + width + 1.0) & (t < onset + width + 40.0)
    tau = -1.0 / np.polyfit(t[off], np.log(o[off]), 1)[0]
    assert tau == pytest.approx(TAU_OFF_MS, rel=0.01)
    # rise: at the start of the pulse (little desensitised yet) O follows the closed <-> open
    # kinetics, G_a/(G_a+G_d) (1 - exp(-(G_a+G_d) t))
    ga, gd, _ = _rates_per_ms(10.0)
    k = np.searchsorted(t, onset + 1.0)
    s = t[k] - onset
    expect = ga / (ga + gd) * (1 - np.exp(-(ga + gd) * s))
    assert o[k] == pytest.approx(expect, rel=0.03)
    # the current is the conductance of the open channels times the driving force
    assert r["current_pA"][k] == pytest.approx(G_MAX_NS * o[k] * (E_MV + 70.0), rel=1e-6)
    assert r["current_pA"].max() > 0 and o[t < onset].max() == 0.0


def test_steady_state_photocurrent_follows_the_irradiance_dependent_activation():
    got = []
    for irr in (2.0, 20.0):
        r = photocurrent(irr, pulse_ms=2000.0, duration_ms=1900.0, onset_ms=0.0, dt_ms=0.1)
        ga, gd, gr = _rates_per_ms(irr)
        o_ss = ga * gr / (ga * gr + gd * gr + ga * gd)
        assert r["open"][-1] == pytest.approx(o_ss, rel=0.01)
        got.append(r["current_pA"][-1])
    assert got[1] > got[0] > 0   # more light, more (steady) current


def test_no_light_no_current():
    r = photocurrent(0.0, duration_ms=30.0)
    assert np.all(r["current_pA"] == 0.0)


@pytest.fixture(scope="module")
def light_circuit():
    return Circuit(100, duration_s=0.3, seed=3, target="runtime", light=True)


def _isolated(c):
    """No background input and no synaptic transmission: only the light can fire a cell."""
    return {"cells.g_bg": np.zeros(c.N),
            **{f"{g}.g0": np.zeros(c.conn[g]["i"].size) for g in c.synapses}}


def test_light_train_drives_spikes_only_in_the_expressing_population(light_circuit):
    c = light_circuit
    stim = Stimulus.light("itbs600", 20.0, offset_s=0.02).until(c.duration_s, c.dt_s)
    assert stim.pulse_times_s.size == 6   # two bursts of three pulses at 50 Hz
    counts = {}
    for pops in (["IT_L5"], ["PV"], None):
        r = c.run(stim, light_populations=pops, overrides=_isolated(c))
        counts[None if pops is None else pops[0]] = {
            p: r.spike_counts[c.slices[p]].sum() for p in c.populations}
    for lit in ("IT_L5", "PV"):
        assert counts[lit][lit] >= c.sizes[lit]   # at least one spike per expressing cell
        assert all(n == 0 for p, n in counts[lit].items() if p != lit)
    assert all(n == 0 for n in counts[None].values())


def test_dark_light_build_equals_the_tms_build():
    """Opsin equations without light change nothing: same spikes as the TMS build."""
    res = []
    for light in (False, True):
        c = Circuit(100, duration_s=0.3, seed=4, target="runtime", light=light)
        kw = {"light_populations": ["IT_L23", "IT_L5", "PT_L5"]} if light else {}
        res.append(c.run(None, run_seed=7, **kw))
    assert res[0].spike_counts.sum() > 0
    np.testing.assert_array_equal(res[0].spike_i, res[1].spike_i)
    np.testing.assert_array_equal(res[0].spike_t, res[1].spike_t)


def test_light_needs_a_light_build_and_known_populations(light_circuit):
    tms = Circuit(100, duration_s=0.3, seed=3, target="runtime")
    stim = Stimulus.light("itbs600", 10.0, offset_s=0.02).until(0.3, tms.dt_s)
    with pytest.raises(InputError, match="stimulus"):
        tms.run(stim)
    with pytest.raises(InputError, match="light_populations"):
        tms.run(None, light_populations=["IT_L5"])
    with pytest.raises(InputError, match="light_populations.*allowed: IT_L23"):
        light_circuit.run(stim, light_populations=["IT_L6"])


def _spec(**cond):
    raw = read_spec(load_experiment("optogenetic_aitbs").path)
    raw["conditions"]["probe"] = {"protocol": "aitbs_day", **cond}
    return raw


@pytest.mark.parametrize("cond, field", [
    ({"modality": "light", "light_populations": ["IT_L6"]}, "conditions.probe.light_populations"),
    ({"modality": "light", "light_populations": []}, "conditions.probe.light_populations"),
    ({"light_populations": ["IT_L5"]}, "conditions.probe.light_populations"),
    ({"modality": "laser", "light_populations": ["IT_L5"]}, "conditions.probe.modality"),
    ({"modality": "light", "light_populations": ["IT_L5"], "intensity_pct_rmt": 90.0},
     "conditions.probe.intensity_pct_rmt"),
    ({"modality": "light", "light_populations": ["IT_L5"],
      "overrides": {"opto.light.irradiance": 500.0}}, "conditions.probe.overrides"),
    ({"modality": "light", "light_populations": ["IT_L5"],
      "overrides": {"opto.light.irradiance": -1.0}}, "conditions.probe.overrides"),
    ({"modality": "light", "light_populations": ["IT_L5"],
      "overrides": {"opto.light.irradiance": True}}, "conditions.probe.overrides"),
])
def test_bad_light_conditions_are_one_input_error(cond, field):
    with pytest.raises(InputError) as exc:
        parse_spec(_spec(**cond))
    assert exc.value.field.startswith(field)
    if "light_populations" in field and cond.get("light_populations"):
        assert "IT_L23" in str(exc.value) or "modality" in str(exc.value)


def test_bad_irradiance_in_code_is_an_input_error():
    with pytest.raises(InputError, match="irradiance"):
        photocurrent(500.0)
    with pytest.raises(InputError, match="irradiance"):
        Stimulus.light("itbs600", -1.0)


def test_optogenetic_spec_parses():
    cfg = parse_spec(read_spec(load_experiment("optogenetic_aitbs").path))
    conds = cfg["conditions"]
    exc = ["IT_L23", "IT_L5", "PT_L5"]
    assert conds["stress_light_exc"]["modality"] == "light"
    assert conds["stress_light_exc"]["light_populations"] == exc
    assert conds["stress_light_it"]["light_populations"] == ["IT_L23", "IT_L5"]
    assert conds["stress_sham"]["protocol"] == "sham_aitbs_day"
    assert conds["stress_sham"]["modality"] == "light"
    assert conds["stress_aitbs"]["modality"] == "tms"          # the TMS study's conditions stay
    assert {c["condition"] for c in cfg["criteria"]} >= {"stress_light_exc", "stress_light_it"}
    assert {c.get("minus_condition") for c in cfg["criteria"]} - {None} == {"stress_sham"}
    # the light pulses are the protocol's pulses: same times as the TMS pulses, sham dark
    light = Stimulus.light("aitbs_day", 10.0)
    tms = Stimulus.from_protocol("aitbs_day", 100.0)
    np.testing.assert_array_equal(light.pulse_times_s, tms.pulse_times_s)
    assert np.all(light.field_vpm == 0) and np.all(light.irradiance_mw_mm2 == 10.0)
    assert np.all(Stimulus.light("sham_aitbs_day", 10.0).irradiance_mw_mm2 == 0.0)
