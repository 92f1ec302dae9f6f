"""Mechanism ``bcm_threshold`` (issue 13, metaplasticity): both Graupner-Brunel thresholds of the
synapses onto a cell slide with the cell's slow rate relative to its reference
(``synaptic.metaplasticity``; Bienenstock, Cooper & Munro 1982; Yeung et al. 2004).

At the synapse level, under the network's in vivo calcium: a cell whose rate fell to half its
reference spends more time above theta_p under the same theta-burst pairing and potentiates more
than without the mechanism; a cell at its reference is unchanged.  The Brian2 code reads the
postsynaptic ``theta_scale`` like the Python reference; off, the code and every result are those
of GB 2012; bad values are InputErrors."""
import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.mechanisms import apply
from cortexsim.params import load_model
from cortexsim.plasticity import synaptic as syn
from cortexsim.plasticity.rules import get_rule


def _trees(on: bool, **synaptic):
    """Synaptic + mechanisms trees at the network's extracellular calcium, with
    ``bcm_threshold`` on or off (``synaptic``: further dotted-path values, '.' as '__')."""
    t = {"synaptic": load_model("synaptic"), "mechanisms": load_model("mechanisms")}
    t["synaptic"].set("extracellular.ca", load_model("circuit").to("plasticity.ca_ext", "mM"))
    for k, v in synaptic.items():
        t["synaptic"].set(k.replace("__", "."), v)
    t["mechanisms"].set("bcm_threshold.enabled", on)
    assert apply(t) == (["bcm_threshold"] if on else [])
    return t


def _params(on: bool):
    return syn.get_params(_trees(on)["synaptic"])


def _theta_burst_pairing(n_bursts=10, n_spikes=4, f_hz=100.0, period_s=0.2, lag_s=0.01):
    """Pre bursts of ``n_spikes`` at ``f_hz`` every ``period_s`` (theta), each pre spike
    followed by a post spike ``lag_s`` later; times on the 0.1 ms grid."""
    starts = 0.05 + np.arange(n_bursts) * period_s
    pre = np.round((starts[:, None] + np.arange(n_spikes) / f_hz).ravel(), 4)
    return pre, np.round(pre + lag_s, 4)


def test_mechanism_sets_the_exponent_and_the_scale_follows_the_rate_ratio():
    on, off = _params(True), _params(False)
    assert off.bcm_exponent == 0 and on.bcm_exponent > 0
    rate_ref = np.array([2.0, 2.0, 2.0, 0.0, 2.0])
    rate = np.array([1.0, 2.0, 4.0, 3.0, 0.0])
    s = syn.bcm_theta_scale(rate, rate_ref, on)
    assert s[0] < 1 and s[1] == 1 and s[2] > 1       # fell: lower, at reference: same, rose
    assert s[3] == 1                                 # no reference rate: no scale
    assert s[4] == on.bcm_scale_min                  # silent cell: the floor, not 0
    assert s[0] == pytest.approx(0.5 ** on.bcm_exponent)
    assert np.array_equal(syn.bcm_theta_scale(rate, rate_ref, off), np.ones(5))
    # the rule exposes it as its postsynaptic variable, only when on
    assert get_rule("graupner_brunel", off).post_variables() == {}
    assert get_rule("graupner_brunel", off).post_values(rate, rate_ref) == {}
    rule = get_rule("graupner_brunel", on)
    assert rule.post_variables() == {syn.THETA_SCALE: 1.0}
    assert np.array_equal(rule.post_values(rate, rate_ref)[syn.THETA_SCALE], s)


def test_silenced_cell_potentiates_more_under_theta_bursts():
    """Half the reference rate: lower thresholds, more time above theta_p, rho up more; at the
    reference: exactly the result without the mechanism."""
    on, off = _params(True), _params(False)
    pre, post = _theta_burst_pairing()
    s_half, s_ref = syn.bcm_theta_scale(np.array([1.0, 2.0]), np.array([2.0, 2.0]), on)
    rho0, t_end = 0.3, 3.0
    base = syn.event_driven_rho(pre, post, off, rho0=rho0, t_end=t_end)
    half = syn.event_driven_rho(pre, post, on, rho0=rho0, t_end=t_end, theta_scale=s_half)
    same = syn.event_driven_rho(pre, post, on, rho0=rho0, t_end=t_end, theta_scale=s_ref)
    assert half.t_above_p > 2 * base.t_above_p
    assert half.rho_final - rho0 > base.rho_final - rho0 + 0.05
    assert (same.rho_final, same.t_above_p, same.t_above_d) == \
        (base.rho_final, base.t_above_p, base.t_above_d)
    # the clock-driven ground truth agrees with the event-driven scheme under the scale
    ref = syn.simulate_pair_protocol(pre, post, on, rho0=rho0, t_end=t_end, theta_scale=s_half)
    assert half.rho_final == pytest.approx(ref.rho_final, abs=2e-3)
    assert half.t_above_p == pytest.approx(ref.t_above_p, rel=0.01)


def test_python_references_take_a_per_synapse_scale():
    """advance / event_driven_batch: a per-synapse scale acts like each synapse's own scalar
    scale; no scale and a scale of 1 give the same bits."""
    p = _params(True)
    pre, post = _theta_burst_pairing(n_bursts=3)
    t, inc, _ = syn._events(pre, post, p)
    scales = np.array([0.5, 1.0, 1.5])
    batch = syn.event_driven_batch(np.tile(t, (3, 1)), np.tile(inc, (3, 1)), p, 0.3, 2.0,
                                   theta_scale=scales)
    for k, s in enumerate(scales):
        one = syn.event_driven_batch(t[None], inc[None], p, 0.3, 2.0, theta_scale=s)
        assert batch.rho_final[k] == one.rho_final[0]
        assert batch.t_above_p[k] == one.t_above_p[0]
    c = np.array([0.3, 0.9, 1.6])
    a = syn.advance(c, 0.4, 0.05, p)
    b = syn.advance(c, 0.4, 0.05, p, theta_scale=np.ones(3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_brian2_code_reads_the_postsynaptic_scale():
    """The Brian2 synapse code with the sliding threshold: per synapse the same rho and
    threshold times as the event-driven reference with its postsynaptic cell's scale."""
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    dt = 1e-4
    b2.defaultclock.dt = dt * b2.second
    p = syn.get_params(_trees(True, calcium__delay_D=4.6)["synaptic"])
    pre, post = _theta_burst_pairing(n_bursts=3)
    scales = np.array([0.5, 1.0])
    T = 1.0
    M = scales.size
    G = b2.SpikeGeneratorGroup(M, np.repeat(np.arange(M), pre.size), np.tile(pre, M) * b2.second)
    spk = np.zeros((int(round(T / dt)) + 1, M))
    spk[np.rint(post / dt).astype(int), :] = 1.0
    post_ta = b2.TimedArray(spk, dt=dt * b2.second)
    H = b2.NeuronGroup(M, f"{syn.THETA_SCALE} : 1 (constant)", threshold="post_ta(t, i) > 0.5",
                       namespace={"post_ta": post_ta})
    setattr(H, syn.THETA_SCALE, scales)
    parts = syn.synapse_model(p)
    assert f"{syn.THETA_SCALE}_post" in parts.on_post["post"]
    S = b2.Synapses(G, H, model=parts.model, on_pre=parts.on_pre, on_post=parts.on_post,
                    namespace=parts.namespace)
    S.connect(j="i")
    S.on = 1
    S.rho = 0.3
    syn.set_delays(S, params=p)
    b2.Network(G, H, S).run(T * b2.second)
    syn.flush_synapses(S, params=p)
    for k, s in enumerate(scales):
        ev = syn.event_driven_rho(pre, post, p, rho0=0.3, t_end=T, theta_scale=s)
        assert S.rho[k] == pytest.approx(ev.rho_final, abs=1e-9)
        assert float(S.t_above_p_[k]) == pytest.approx(ev.t_above_p, abs=1e-9)
    assert S.rho[0] > S.rho[1]


def test_off_leaves_the_rule_as_it_was():
    """Off (exponent 0, the model file's value): the Brian2 code is GB's, without the
    postsynaptic variable."""
    off = _params(False)
    code = syn.synapse_model(off)
    assert syn.THETA_SCALE not in code.on_pre["ca"] + code.on_post["post"]
    assert "c/gb_theta_d," in code.on_post["post"]
    assert not syn.sliding_threshold(off) and syn.sliding_threshold(_params(True))


@pytest.mark.parametrize("path, value", [
    ("metaplasticity.exponent", -1.0), ("metaplasticity.exponent", True),
    ("metaplasticity.exponent", "1"), ("metaplasticity.exponent", 10.0),
    ("metaplasticity.scale_min", 0.0), ("metaplasticity.scale_min", 1.5),
    ("metaplasticity.scale_max", 0.5)])
def test_bad_parameter_values_are_input_errors(path, value):
    with pytest.raises(InputError, match=path.split(".")[1]):
        syn.get_params({path: value})


def test_bad_rates_are_input_errors():
    p = _params(True)
    with pytest.raises(InputError, match="rate"):
        syn.bcm_theta_scale(np.ones(3), np.ones(4), p)
    with pytest.raises(InputError, match="rate_ref"):
        syn.bcm_theta_scale(np.ones(2), np.array([1.0, -1.0]), p)
    with pytest.raises(InputError, match="rate"):
        syn.bcm_theta_scale(np.array([np.nan, 1.0]), np.ones(2), p)


def test_circuit_declares_the_variable_only_when_on_and_exponent_is_a_run_time_value():
    """The circuit's cells carry ``theta_scale`` (settable per run) only with the mechanism on;
    the exponent's value does not change the build; a cell-level override of it acts."""
    from cortexsim.circuit.network import Circuit
    kw = dict(duration_s=0.2, seed=3, target="runtime")
    off = Circuit(50, syn_params=_trees(False)["synaptic"], **kw)
    assert off.post_variables == {}
    with pytest.raises(InputError, match="overrides"):
        off._override_target(f"cells.{syn.THETA_SCALE}")
    on1 = Circuit(50, syn_params=_trees(True)["synaptic"], **kw)
    on2 = Circuit(50, syn_params=_trees(True, metaplasticity__exponent=2.0)["synaptic"], **kw)
    assert on1.post_variables == {syn.THETA_SCALE: 1.0}
    assert on1.config_hash() == on2.config_hash() != off.config_hash()
    spines = {"on": np.ones(on1.n_sites), "rho": on1.initial_rho}
    r1 = on1.run(None, spines=spines, run_seed=5)
    r_half = on1.run(None, spines=spines, run_seed=5,
                     overrides={f"cells.{syn.THETA_SCALE}": np.full(on1.N, 0.5)})
    assert r_half.syn["t_above_d"].sum() > r1.syn["t_above_d"].sum()
