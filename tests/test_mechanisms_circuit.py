"""Circuit-level tests of the target-specific candidate mechanisms of issue 13 (section 2): each
does in the network what its sources report, and the older ablations remove what they name.

* ``pv_prefers_pt`` (Lee et al. 2014; Anastasiades et al. 2018) and ``sst_prefers_pt``
  (Anastasiades et al. 2018; Hilscher et al. 2017): (1) like the sources' optogenetic
  activation of the interneurons, one synchronous spike of every PV (SST) cell in a silent
  network gives PT_L5 cells, per presynaptic spike received, the mechanism's conductance ratio
  over IT_L5 cells (2x on, equal off); (2) feed-forward inhibition: a brief synchronous afferent
  volley (no direct activation) evokes fewer extra spikes per PT_L5 cell relative to IT_L5 with
  the mechanism on than off.
* IT -> PT wiring (Morishima & Kawaguchi 2006; Brown & Hestrin 2009; Kiritani et al. 2012) is in
  the base circuit: PT_L5 receives more recurrent excitation from IT_L5 than IT_L5 from PT_L5,
  and the ``connectivity`` ablation equalises them.
* The ``h_current`` ablation removes the PT_L5 h-current: no sag, no theta resonance, and
  ``g_h = 0`` on every cell of the built network.

On vs off: the mechanism-free network and the network of ``model_trees`` with the mechanism
on differ only in the mechanism's synapse conductances (checked).  Cost: ONE compiled
cpp_standalone network at scale 100 (build cache: a cache hit after the first run), re-run
with each variant's per-synapse conductances as run-time values (``<group>.g0``); the variants
are built for the runtime target (no run, no compile) only for their drawn synapses.
"""

import numpy as np
import pytest

from cortexsim.circuit import characterize
from cortexsim.circuit.network import Circuit, Stimulus
from cortexsim.experiment.spec import model_trees

SCALE = 100  # neurons (the PV/SST -> L5 projections are all-to-all at this size)
SEED = 1  # build seed: connectivity, TMS thresholds, initial efficacies
DURATION_S = 1.0
SLOT_S = 1e-4  # pulse grid = dt: a brief afferent burst is several consecutive pulses
MECHANISMS = ("pv_prefers_pt", "sst_prefers_pt")
SOURCE = {"pv_prefers_pt": "PV", "sst_prefers_pt": "SST"}
L5 = ("IT_L5", "PT_L5")

# probe 1: one synchronous spike of every cell of the interneuron population, silent network
PROBE_T_S = 0.9985  # its GABA_A conductances arrive 0.5 ms before the end of the phase
PROBE_FIELD = 1e-3  # V/m: fires the cells whose threshold is set to 0, recruits no afferent

# probe 2: feed-forward inhibition of a brief synchronous afferent volley
VOLLEY_T_S = (0.2, 0.45, 0.7, 0.95)  # one volley each; pre-volley window = baseline
VOLLEY_PULSES = 12  # afferent pulses 0.1 ms apart (a 1.2-ms burst)
VOLLEY_FIELD = 400.0  # V/m: recruits ~97 % of the afferent terminals
WINDOW_S = 0.02  # evoked spikes counted in [t, t + 20 ms)
VOLLEY_SEEDS = range(24)  # noise seeds (the SST effect is small: see the test)


def _circuit(trees, target):
    return Circuit(
        SCALE,
        duration_s=DURATION_S,
        seed=SEED,
        slot_s=SLOT_S,
        params=trees["circuit"],
        cell_params=trees["cells"],
        syn_params=trees["synaptic"],
        coupling_params=trees["coupling"],
        target=target,
    )


def _g0(c: Circuit) -> dict:
    """Run-time values that give the compiled network the synapse conductances of ``c``."""
    return {f"{name}.g0": grp.conn["g_nS"] * 1e-9 for name, grp in c.groups.items()}


@pytest.fixture(scope="module")
def trees():
    out = {"off": model_trees({})}
    out.update({m: model_trees({f"mechanisms.{m}.enabled": True}) for m in MECHANISMS})
    return out


@pytest.fixture(scope="module")
def net(trees):
    """The mechanism-free network, compiled once (build cache)."""
    return _circuit(trees["off"], "cpp_standalone")


@pytest.fixture(scope="module")
def variants(trees):
    """Each mechanism's network (runtime target, never run): its drawn synapses."""
    return {m: _circuit(trees[m], "runtime") for m in MECHANISMS}


def _pair_mask(c: Circuit, group: str, pre: str, post: str) -> np.ndarray:
    conn = c.conn[group]
    return (c.pop_index[conn["i"]] == c.populations.index(pre)) & (
        c.pop_index[conn["j"]] == c.populations.index(post)
    )


def _inh_group(c: Circuit) -> str:
    (name,) = [n for n, g in c.groups.items() if g.receptors == ("GABA_A",)]
    return name


def _probe_source(net: Circuit, g0: dict, source: str) -> dict:
    """Fire every ``source`` cell once in a silent network (no background, no afferents, no
    polarisation); per population, the GABA_A conductance per presynaptic spike received."""
    thr = np.full(net.N, np.inf)
    thr[net.slices[source]] = 0.0
    res = net.run(
        Stimulus([PROBE_T_S], PROBE_FIELD),
        run_seed=0,
        overrides={
            "cells.thr_tms": thr,
            "cells.pol_gain": np.zeros(net.N),
            "cells.g_bg": np.zeros(net.N),
            **g0,
        },
    )
    g_gaba = np.asarray(net.G.g_gaba[:]) * 1e9  # nS, end of the phase
    v = np.asarray(net.G.v[:])
    spikes = np.bincount(res.spike_i, minlength=net.N)
    grp = _inh_group(net)
    conn = net.conn[grp]
    from_source = net.pop_index[conn["i"]] == net.populations.index(source)
    received = np.bincount(
        conn["j"][from_source], weights=spikes[conn["i"][from_source]], minlength=net.N
    )
    out = {"spikes": spikes, "spike_t": res.spike_t, "spike_i": res.spike_i}
    e_inh = net.params.to("synapse.E_inh", "V")
    g_sat = net.params.to("synapse.g_sat", "nS")
    for p in L5:
        s = net.slices[p]
        out[p] = {
            "g_per_spike_nS": float(np.mean(g_gaba[s] / received[s])),
            # the same with receptor saturation (g / (1 + g / g_sat)) and the IPSC at the
            # cell's potential: what the compound response of all cells looks like
            "g_eff_nS": float(np.mean(g_gaba[s] / (1 + g_gaba[s] / g_sat))),
            "ipsc_pA": float(
                np.mean(g_gaba[s] / (1 + g_gaba[s] / g_sat) * 1e-9 * (e_inh - v[s]) * 1e12)
            ),
        }
    return out


def _volleys(net: Circuit, g0: dict) -> dict:
    """Extra spikes per cell (volley window minus the pre-volley window) per population,
    averaged over volleys and noise seeds; the cells are never fired directly."""
    t = (np.asarray(VOLLEY_T_S)[:, None] + SLOT_S * np.arange(VOLLEY_PULSES)[None, :]).ravel()
    ov = {"cells.thr_tms": np.full(net.N, np.inf), "cells.pol_gain": np.zeros(net.N), **g0}
    extra = {p: [] for p in net.populations}
    for seed in VOLLEY_SEEDS:
        r = net.run(Stimulus(t, VOLLEY_FIELD), run_seed=seed, overrides=ov)
        for p in net.populations:
            s = net.slices[p]
            st = r.spike_t[(r.spike_i >= s.start) & (r.spike_i < s.stop)]
            n = sum(
                int(np.sum((st >= tv - 1e-9) & (st < tv + WINDOW_S - 1e-9)))
                - int(np.sum((st >= tv - WINDOW_S - 1e-9) & (st < tv - 1e-9)))
                for tv in VOLLEY_T_S
            )
            extra[p].append(n / (net.sizes[p] * len(VOLLEY_T_S)))
    return {p: float(np.mean(x)) for p, x in extra.items()}


@pytest.fixture(scope="module")
def volleys(net, variants):
    out = {"off": _volleys(net, _g0(net))}
    out.update({m: _volleys(net, _g0(c)) for m, c in variants.items()})
    return out


# --------------------------------------------------------------------------- on vs off
@pytest.mark.parametrize("mech", MECHANISMS)
def test_mechanism_changes_only_its_synapse_conductances(mech, trees, net, variants):
    on, src = variants[mech], SOURCE[mech]
    assert on.groups.keys() == net.groups.keys()
    np.testing.assert_array_equal(on.tms_threshold_vpm, net.tms_threshold_vpm)
    changed = 0
    for name in net.groups:
        a, b = net.conn[name], on.conn[name]
        for k in ("i", "j", "on"):
            np.testing.assert_array_equal(a[k], b[k])
        diff = a["g_nS"] != b["g_nS"]
        # only the source -> PT_L5 synapses change, all of them, by the declared ratio
        target = _pair_mask(net, name, src, "PT_L5")
        np.testing.assert_array_equal(diff, target if diff.any() else diff)
        if diff.any():
            ratio = trees[mech]["circuit"].value(f"conn.{src}.PT_L5.g") / trees["off"][
                "circuit"
            ].value(f"conn.{src}.PT_L5.g")
            np.testing.assert_allclose(b["g_nS"][target], ratio * a["g_nS"][target])
            changed += int(target.sum())
    assert changed > 0


@pytest.mark.parametrize("mech", MECHANISMS)
def test_interneuron_conductance_per_spike_biased_to_pt(mech, trees, net, variants):
    """Lee et al. 2014 / Anastasiades et al. 2018 (PV), Hilscher et al. 2017 (SST): activating
    the interneurons inhibits PT-type L5 cells more than IT-type; equal without the mechanism."""
    src = SOURCE[mech]
    expected = {}
    for name in ("off", mech):
        c = trees[name]["circuit"]
        expected[name] = c.value(f"conn.{src}.PT_L5.g") / c.value(f"conn.{src}.IT_L5.g")
    assert expected["off"] == pytest.approx(1.0) and expected[mech] > 1.0
    got = {}
    for name, c in (("off", net), (mech, variants[mech])):
        r = _probe_source(net, _g0(c), src)
        # a silent network until the probe, and each source cell fires exactly once then
        assert np.all(r["spike_t"] >= PROBE_T_S - 1e-9)
        s = net.slices[src]
        np.testing.assert_array_equal(r["spikes"][s], 1)
        got[name] = r
        ratio = r["PT_L5"]["g_per_spike_nS"] / r["IT_L5"]["g_per_spike_nS"]
        assert ratio == pytest.approx(expected[name], rel=0.02), (name, r)
    # the compound (saturating) conductance and IPSC of all source cells at once: larger at PT
    # with the mechanism; receptor saturation (g_sat) shrinks the 2x (measured at scale 100:
    # PT/IT 1.12 for PV, 1.29 for SST; IPSC 1.41 -> 1.55 and 1.38 -> 1.70: PT rests more
    # depolarised, so its driving force is larger either way)
    for key in ("g_eff_nS", "ipsc_pA"):
        rel = {n: got[n]["PT_L5"][key] / got[n]["IT_L5"][key] for n in got}
        assert rel[mech] > rel["off"], (key, rel)


@pytest.mark.parametrize("mech", MECHANISMS)
def test_feedforward_inhibition_spares_it_more_than_pt(mech, volleys):
    """A synchronous afferent volley: with the mechanism on, PT_L5 cells fire fewer extra spikes
    relative to IT_L5 than without it (Anastasiades et al. 2018: stronger feed-forward inhibition
    at PT/CT-like cells)."""
    off, on = volleys["off"], volleys[mech]
    assert off["PT_L5"] > 0.1 and off["IT_L5"] > 0.1  # the volley does evoke spikes
    ratio_off = off["PT_L5"] / off["IT_L5"]
    ratio_on = on["PT_L5"] / max(on["IT_L5"], 1e-9)
    # measured (scale 100, 36 other seeds): on/off 0.65 (PV, 95 % CI 0.56-0.74) and 0.87 (SST,
    # 0.78-0.97); the GABA_A conductance of a volley saturates (g_sat), which shrinks the 2x
    assert ratio_on < ratio_off, (mech, off, on)
    assert on["PT_L5"] < off["PT_L5"]


# --------------------------------------------------------------------------- IT -> PT wiring
def _e_input(c: Circuit, pre: str, post: str) -> tuple[float, float]:
    """Mean count and summed conductance (nS) of present synapses pre -> each post cell."""
    counts, g = np.zeros(c.N), np.zeros(c.N)
    for name, grp in c.groups.items():
        if grp.receptors[0] != "AMPA":
            continue
        m = _pair_mask(c, name, pre, post) & (c.conn[name]["on"] > 0)
        counts += np.bincount(c.conn[name]["j"][m], minlength=c.N)
        g += np.bincount(c.conn[name]["j"][m], weights=c.conn[name]["g_nS"][m], minlength=c.N)
    s = c.slices[post]
    return float(counts[s].mean()), float(g[s].mean())


def test_it_to_pt_wiring_asymmetry_and_the_connectivity_ablation(trees, net):
    base = {k: _e_input(net, *k) for k in (("IT_L5", "PT_L5"), ("PT_L5", "IT_L5"))}
    circ = trees["off"]["circuit"]
    declared = (
        circ.value("conn.IT_L5.PT_L5.p")
        * circ.value("conn.IT_L5.PT_L5.g")
        / (circ.value("conn.PT_L5.IT_L5.p") * circ.value("conn.PT_L5.IT_L5.g"))
    )
    assert declared > 3  # the model file's asymmetry (IT -> PT common, PT -> IT rare)
    # PT receives more synapses and more recurrent excitation from IT than IT from PT.  At this
    # size IT_L5 -> PT_L5 is all-to-all (p x reference / N > 1), so the count ratio is capped by
    # the population size and the conductance carries the excess: the summed conductance (the
    # in-degree at the reference size) has the declared ratio
    assert base[("IT_L5", "PT_L5")][0] > 1.5 * base[("PT_L5", "IT_L5")][0], base
    g_ratio = base[("IT_L5", "PT_L5")][1] / base[("PT_L5", "IT_L5")][1]
    assert g_ratio == pytest.approx(declared, rel=0.3), base
    pooled = _circuit(model_trees({}, ["connectivity"]), "runtime")
    abl = {k: _e_input(pooled, *k) for k in (("IT_L5", "PT_L5"), ("PT_L5", "IT_L5"))}
    assert abl[("IT_L5", "PT_L5")][0] == pytest.approx(abl[("PT_L5", "IT_L5")][0], rel=0.15)
    assert abl[("IT_L5", "PT_L5")][1] == pytest.approx(abl[("PT_L5", "IT_L5")][1], rel=0.15)


# --------------------------------------------------------------------------- h-current
def test_h_current_ablation_removes_pt_sag_and_resonance():
    base = characterize.simulate(["PT_L5"], model_trees({})["cells"])["PT_L5"]
    trees = model_trees({}, ["h_current"])
    abl = characterize.simulate(["PT_L5"], trees["cells"])["PT_L5"]
    assert base["sag_ratio"] > 0.2 and base["resonance_Hz"] > 3.0  # Dembrow et al. 2010
    assert abl["sag_ratio"] < 0.02 and abl["resonance_Hz"] is None
    # and in the built network: no PT_L5 cell carries the h-current any more
    c = _circuit(trees, "runtime")
    assert np.all(np.asarray(c.G.g_h[c.slices["PT_L5"]]) == 0)
    default = _circuit(model_trees({}), "runtime")
    assert np.all(np.asarray(default.G.g_h[default.slices["PT_L5"]]) > 0)
