"""The ``dendritic_compartment`` mechanism (issue 13, section 2: dendritic integration):
two-compartment IT_L5 / PT_L5 cells whose excitatory synapses act on the dendrite.

1. Off (the shipped ``g_c = 0``) the build is the point-neuron build: the same Brian2 code and
   the same spikes as a cells file without any ``[<pop>.dendrite]`` table.
2. On: temporal summation of a 5-pulse EPSP train (Dembrow et al. 2010 J Neurosci 30:16922:
   commissural/IT cells sum, corticopontine/PT cells with their large h-current do not;
   Berger et al. 2001 J Neurophysiol 85:855: EPSP trains in thick-tufted L5 dendrites summate
   only once Ih is blocked).  Measured (single cells, one synapse of 2 nS, summation = 5th /
   1st EPSP peak above rest):

   ===========================  ===========  ===========  ===========  ===========
   20 Hz train                  IT soma      IT dendrite  PT soma      PT dendrite
   ===========================  ===========  ===========  ===========  ===========
   point model (mechanism off)  1.13         --           1.15         --
   mechanism on                 1.13         1.13         1.10         1.10
   on, no dendritic Ih          1.16         1.16         1.26         1.27
   on, all Ih blocked (ZD7288)  1.20         1.20         2.60         2.60
   ===========================  ===========  ===========  ===========  ===========

   At 50 Hz the order is NOT the published one (on: IT 1.82, PT 2.23 at the soma): the PT
   point model's membrane is slow at rest (C / (g_L + g_h m_h) ~ 54 ms against ~23 ms for IT;
   its g_L and E_L were fitted to R_in and v_rest, not to a time constant), and a 30-ms Ih
   cannot undo that within 80 ms.  The tests assert the 20 Hz result and the part of the
   claim that holds at both rates: Ih lowers PT summation relative to IT, and removing it
   (dendritic Ih, or all Ih as ZD7288 does) raises PT summation far more than IT's.
3. On: the Graupner-Brunel NMDA calcium of a synapse onto a two-compartment cell is c_pre times
   the Mg2+ unblock at the DENDRITIC voltage when its transient arrives.  Direction: larger than
   the somatic voltage would give, because the synaptic current enters the dendrite, which
   depolarises more than the soma during the burst (and PT dendrites rest depolarised by their
   Ih, so PT synapses get more NMDA calcium per burst than IT ones).
4. On: the circuit builds and runs at scale 100 with baseline rates in the published ranges.
5. Inhibition stays somatic unless a projection declares ``target = "dendrite"``.
"""
import numpy as np
import pytest

from cortexsim.circuit import cells, characterize
from cortexsim.circuit import equations as eq
from cortexsim.circuit.network import Circuit, rule_params
from cortexsim.errors import InputError
from cortexsim.experiment.spec import model_trees
from cortexsim.params import ParamTree, load_model
from cortexsim.plasticity import synaptic

ON = {"mechanisms.dendritic_compartment.enabled": True}
L5 = ("IT_L5", "PT_L5")
G_SYN_NS = 2.0            # one synapse: a few-mV EPSP, subthreshold over the whole train
T0_MS = 50.0              # first presynaptic spike (the cells start at rest)


def _without_dendrites(tree: ParamTree) -> ParamTree:
    """The cells file with every ``[<pop>.dendrite]`` table removed."""
    d = {k: ({kk: vv for kk, vv in v.items() if kk != "dendrite"} if isinstance(v, dict)
             else v) for k, v in tree.items()}
    return ParamTree.from_dict(d, name="cells")


# --------------------------------------------------------------------------- declared, off
def test_mechanism_declared_off_and_parameters_sourced():
    mech = load_model("mechanisms").values()["dendritic_compartment"]
    assert mech["enabled"] is False
    assert {s["path"] for s in mech["set"]} >= {f"cells.{p}.dendrite.g_c" for p in L5}
    tree = load_model("cells")
    for pop in L5:
        for k, unit in cells.DENDRITE_PARAMS.items():
            node = tree._node(f"{pop}.dendrite.{k}")
            assert set(node) >= {"value", "unit", "source"} and node["unit"] == unit
            assert len(node["source"]) > 20
        # neutral in the file: the shipped model has point neurons
        assert cells.dendrite_values(pop)["g_c"] == 0
    on = model_trees(ON)["cells"]
    assert all(cells.dendrite_values(p, on)["g_c"] > 0 for p in L5)
    # PT dendrites carry a higher h-channel density than IT dendrites (Berger et al. 2001)
    assert cells.compartments("PT_L5", on)["g_hd"] > 5 * cells.compartments("IT_L5", on)["g_hd"]


def test_off_builds_the_point_model_code():
    shipped = load_model("cells")
    bare = _without_dendrites(shipped)
    sizes = [("IT_L23", 2), ("IT_L5", 3), ("PT_L5", 3), ("PV", 1), ("SST", 1)]
    a, b = cells.population_model(sizes, shipped), cells.population_model(sizes, bare)
    assert not a.dendrite and not b.dendrite
    eqs, thr, reset = cells.equations_template("")
    assert a.eqs == b.eqs == eqs + cells.parameter_declarations()
    assert (a.threshold, a.reset) == (b.threshold, b.reset) == (thr, reset)
    assert a.per_neuron.keys() == b.per_neuron.keys() and a.init.keys() == b.init.keys()
    for k in a.per_neuron:
        np.testing.assert_array_equal(np.asarray(a.per_neuron[k]), np.asarray(b.per_neuron[k]))
    for k in a.init:
        np.testing.assert_array_equal(np.asarray(a.init[k]), np.asarray(b.init[k]))
    assert eq.cell_eqs(False, False) == eq.CELL_EQS
    assert rule_params(load_model("circuit"), None, False).value("nmda.v_name") == "v"


def test_off_gives_the_spikes_of_the_point_model():
    trees = model_trees({})
    runs = []
    for cell_tree in (trees["cells"], _without_dendrites(trees["cells"])):
        c = Circuit(100, duration_s=0.3, seed=1, params=trees["circuit"], cell_params=cell_tree,
                    syn_params=trees["synaptic"], coupling_params=trees["coupling"],
                    target="runtime")
        assert not c.dendrite and "v_d" not in c.G.variables
        r = c.run(run_seed=3)
        runs.append((r.spike_i, r.spike_t, r.syn["nmda_ca"]))
    assert runs[0][0].size > 20
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("key, value, match", [
    ("g_c", -1.0, ">= 0"), ("g_c", True, ">= 0"), ("h_density_ratio", "x", ">= 0"),
    ("membrane_fraction", 1.0, "< 1")])
def test_bad_dendrite_values_are_input_errors(key, value, match):
    tree = load_model("cells").values()
    tree["PT_L5"]["dendrite"][key] = value
    with pytest.raises(InputError, match=match) as exc:
        cells.dendrite_values("PT_L5", tree)
    assert exc.value.field == f"params.PT_L5.dendrite.{key}"


def test_coupled_dendrite_needs_membrane():
    tree = load_model("cells").values()
    tree["IT_L5"]["dendrite"].update(g_c=10.0, membrane_fraction=0.0)
    with pytest.raises(InputError, match="membrane_fraction"):
        cells.population_model([("IT_L5", 1)], tree)


def test_two_compartment_rest_balances_both_compartments():
    on = model_trees(ON)["cells"]
    for pop in L5:
        point, two = cells.resting_state(pop, on), cells.two_compartment_rest(pop, on)
        c = cells.compartments(pop, on)
        p = cells.si_values(cells.pop_values(pop, on))
        vd, v = two["v_d"], two["v"]
        i_d = (-c["g_Ld"] * (vd - p["E_L"]) - c["g_hd"] * two["m_hd"] * (vd - p["E_h"])
               + c["g_c"] * (v - vd)) * 1e-9
        assert abs(i_d) < 1e-15
        if pop == "IT_L5":      # uniform density: both compartments at the point model's rest
            assert v == pytest.approx(point["v"], abs=1e-6) and vd == pytest.approx(v, abs=1e-6)
        else:                   # denser dendritic Ih: a depolarised dendrite pulls the soma up
            assert vd > v > point["v"]


# --------------------------------------------------------------------------- 2. summation
def _summation(trees_cells, freq_hz: float) -> dict:
    times = T0_MS + np.arange(5) * 1000.0 / freq_hz
    res = characterize.synaptic_train(L5, trees_cells, times_ms=times, g_nS=G_SYN_NS,
                                      duration_ms=times[-1] + 1000.0 / freq_hz)
    out = {}
    for pop, r in res.items():
        t = r["t_ms"]
        for where, key in (("soma", "v_mV"), ("dendrite", "v_exc_mV")):
            v = r[key] - r[key][0]
            first = v[(t >= times[0]) & (t < times[1])].max()
            last = v[(t >= times[4])].max()
            out[pop, where] = last / first
    return out


@pytest.fixture(scope="module")
def summation():
    on_no_dend_ih = {**ON, **{f"cells.{p}.dendrite.h_density_ratio": 0.0 for p in L5}}
    return {"point": _summation(model_trees({})["cells"], 20.0),
            "on": _summation(model_trees(ON)["cells"], 20.0),
            "on_no_dendritic_ih": _summation(model_trees(on_no_dend_ih)["cells"], 20.0),
            "on_zd7288": _summation(model_trees(ON, ["h_current"])["cells"], 20.0),
            "on_50": _summation(model_trees(ON)["cells"], 50.0),
            "on_zd7288_50": _summation(model_trees(ON, ["h_current"])["cells"], 50.0)}


def test_it_sums_a_20hz_train_more_than_pt_with_the_mechanism(summation):
    on = summation["on"]
    for where in ("soma", "dendrite"):
        assert on["IT_L5", where] > on["PT_L5", where] > 1.0, on
    # it is the dendritic Ih: the point model (PT sums slightly more) and the mechanism
    # without dendritic Ih have the opposite order
    for name in ("point", "on_no_dendritic_ih"):
        assert summation[name]["PT_L5", "soma"] > summation[name]["IT_L5", "soma"], name


@pytest.mark.parametrize("rate", ["", "_50"])
def test_blocking_ih_removes_the_pt_summation_deficit(summation, rate):
    """Dembrow et al. 2010 (ZD7288) / Berger et al. 2001: without Ih, PT cells sum at least as
    much as IT cells, and the block raises PT summation far more than IT's."""
    on, zd = summation["on" + rate], summation["on_zd7288" + rate]
    for where in ("soma", "dendrite"):
        assert zd["PT_L5", where] >= zd["IT_L5", where]
        rise = {p: zd[p, where] - on[p, where] for p in L5}
        assert rise["PT_L5"] > 3 * rise["IT_L5"] > 0, rise
    # and the dendritic Ih alone: removing it raises PT summation more than IT's
    no_d = summation["on_no_dendritic_ih"]
    rise = {p: no_d[p, "dendrite"] - summation["on"][p, "dendrite"] for p in L5}
    assert rise["PT_L5"] > 2 * rise["IT_L5"], rise


# --------------------------------------------------------------------------- 3. NMDA calcium
def _theta_burst_ms():
    """iTBS-like: 10 bursts of 3 pulses at 50 Hz, bursts at 5 Hz."""
    return np.array([T0_MS + b * 200.0 + k * 20.0 for b in range(10) for k in range(3)])


def _expected_nmda_ca(r, times_ms, syn_tree, circuit) -> dict:
    """Sum of c_pre B(v)/B(v_ref) at the arrival of each presynaptic calcium transient, from
    the recorded soma and excitatory-synapse voltages."""
    p = synaptic.get_params(syn_tree)
    dt_ms = circuit.to("sim.dt", "ms")
    delay = circuit.to("synapse.delay_exc", "ms") + round(p.D * 1e3 / dt_ms) * dt_ms
    # the on_pre code runs after the step's state update: the voltage of the next record
    k = np.round((times_ms + delay) / dt_ms).astype(int) + 1
    b_ref = synaptic.mg_unblock(p.v_ref, p)
    return {key: float(np.sum(p.c_pre * synaptic.mg_unblock(r[key][k], p) / b_ref))
            for key in ("v_mV", "v_exc_mV")}


def test_nmda_calcium_follows_the_dendritic_voltage():
    times = _theta_burst_ms()
    got = {}
    for name, ov in (("point", {}), ("on", ON)):
        trees = model_trees(ov)
        res = characterize.synaptic_train(L5, trees["cells"], times_ms=times, g_nS=G_SYN_NS,
                                          duration_ms=times[-1] + 100.0)
        dend = name == "on"
        syn_tree = rule_params(trees["circuit"], trees["synaptic"], dend)
        assert syn_tree.value("nmda.v_name") == ("v_exc" if dend else "v")
        for pop, r in res.items():
            ref = _expected_nmda_ca(r, times, syn_tree, trees["circuit"])
            key = "v_exc_mV" if dend else "v_mV"
            assert r["nmda_ca"] == pytest.approx(ref[key], rel=1e-6), (name, pop, ref)
            if dend:
                # the dendrite depolarises more than the soma during the burst: more unblock
                # than the somatic voltage would give
                assert r["v_exc_mV"].max() - r["v_exc_mV"][0] > r["v_mV"].max() - r["v_mV"][0]
                assert ref["v_exc_mV"] > ref["v_mV"] * (1 + 1e-4), (pop, ref)
            got[name, pop] = r["nmda_ca"]
    # PT dendrites rest depolarised by their denser Ih: more NMDA calcium than as point cells
    assert got["on", "PT_L5"] > got["point", "PT_L5"]
    assert got["on", "PT_L5"] > got["on", "IT_L5"]


# --------------------------------------------------------------------------- 4. circuit
@pytest.mark.slow
def test_circuit_with_dendrites_runs_with_baseline_rates_in_range():
    """Scale 100, compiled once (~10-30 s on a cold build cache; runs take ~0.1 s).  Measured
    (seeds 1-3, 2 s): IT_L23 3.0, IT_L5 0.70, PT_L5 1.39, PV 12.7, SST 15.5 Hz; the point
    model 2.5, 1.01, 3.35, 13.4, 17.2 Hz."""
    trees = model_trees(ON)
    c = Circuit(100, duration_s=2.0, seed=1, params=trees["circuit"],
                cell_params=trees["cells"], syn_params=trees["synaptic"],
                coupling_params=trees["coupling"])
    assert c.dendrite and "v_d" in c.G.variables
    assert c.site_rule.params.v_name == eq.V_EXC
    runs = [c.run(run_seed=s) for s in (1, 2)]
    # two-compartment cells in L5 only; every other cell is a point neuron of the group
    dend = np.asarray(c.G.dend[:])
    for p in c.populations:
        assert np.all(dend[c.slices[p]] == (1.0 if p in L5 else 0.0)), p
    rng = trees["circuit"].values()["baseline_range"]
    bounds = {"PV": (rng["PV_min"], rng["PV_max"]), "SST": (rng["SST_min"], rng["SST_max"])}
    rates = {p: np.mean([r.mean_rate(p) for r in runs]) for p in c.populations}
    for p, r in rates.items():
        lo, hi = bounds.get(p, (rng["E_min"], rng["E_max"]))
        assert lo <= r <= hi, rates
    # the L5 dendrites are depolarised relative to their somata by the synaptic input
    vd, v = np.asarray(c.G.v_d[:]), np.asarray(c.G.v[:])
    for p in L5:
        s = c.slices[p]
        assert np.mean(vd[s] - v[s]) > 0, p


# --------------------------------------------------------------------------- dendritic inhibition
def test_inhibition_stays_somatic_unless_a_projection_targets_the_dendrite():
    """SST (Martinotti) -> PT_L5 synapses on the dendrite (a projection's ``target``; Hilscher
    et al. 2017 PLoS Biol: Chrna2+ Martinotti cells inhibit the tufts of PT-type cells): they run
    as their own group, open the dendritic GABA_A conductance of PT cells only, and on a
    point-neuron build act on the one compartment (the somatic conductance)."""
    over = {"circuit.conn.SST.PT_L5.target": "dendrite"}
    built = {}
    for name, ov in (("on", {**ON, **over}), ("point", over)):
        trees = model_trees(ov)
        c = Circuit(100, duration_s=0.3, seed=1, params=trees["circuit"],
                    cell_params=trees["cells"], syn_params=trees["synaptic"],
                    coupling_params=trees["coupling"], target="runtime")
        (grp,) = [g for g in c.groups.values() if g.target == "dendrite"]
        assert [(p.pre, p.post) for p in grp.projections] == [("SST", "PT_L5")]
        code = c.synapses[grp.name].pre.code
        assert ("g_gaba_d_post" in code) == (name == "on"), code
        built[name] = (c, grp)
    c, _ = built["on"]
    c.run(run_seed=1)
    g_d = np.asarray(c.G.g_gaba_d[:])
    assert np.all(g_d[c.slices["PT_L5"]] > 0)
    for p in ("IT_L23", "IT_L5", "PV", "SST"):
        assert np.all(g_d[c.slices[p]] == 0), p
    # excitatory projections cannot choose: the cell model places them
    trees = model_trees({"circuit.conn.IT_L5.PT_L5.target": "dendrite"})
    with pytest.raises(InputError, match="excitatory") as exc:
        Circuit(100, duration_s=0.3, params=trees["circuit"], target="runtime")
    assert exc.value.field == "circuit.conn.IT_L5.PT_L5.target"
