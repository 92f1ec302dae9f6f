"""Mechanism ``fast_sliding_threshold`` (issue 20 item 2): both Graupner-Brunel thresholds of the
synapses onto a cell slide with a spike trace of the cell over seconds relative to rest
(``synaptic.fast_metaplasticity``; Kadak et al. 2025, t_BCM = 7 s).

What is tested, at the network's in vivo calcium (1.2 mM): the trace and scale (1 at rest, up
with sustained firing, relaxing in pauses); no change at rest; the pattern dependence the rule
gives for theta-burst pairings of equal pulse count, intermittent (iTBS) against continuous
(cTBS) -- measured, see the docstring of that test: the thresholds rise, so the continuous
pattern plasticises LESS than the intermittent one, and at 1.2 mM no theta-burst pairing
potentiates at the calibrated thresholds, so iTBS does not potentiate (the published signs are
NOT reproduced by the rule); the Brian2 code against the numpy reference for one synapse per
cell; off (the default), the network's numbers are bit for bit those of the model without it."""

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.mechanisms import apply
from cortexsim.params import load_model
from cortexsim.plasticity import synaptic as syn
from cortexsim.plasticity.rules import get_rule

NAME = "fast_sliding_threshold"


def _trees(on: bool, ca=None, **synaptic):
    """Synaptic + mechanisms trees at the network's extracellular calcium (or ``ca`` mM) with
    the mechanism on or off (``synaptic``: further dotted-path values, '.' as '__')."""
    t = {"synaptic": load_model("synaptic"), "mechanisms": load_model("mechanisms")}
    t["synaptic"].set(
        "extracellular.ca",
        load_model("circuit").to("plasticity.ca_ext", "mM") if ca is None else ca,
    )
    for k, v in synaptic.items():
        t["synaptic"].set(k.replace("__", "."), v)
    t["mechanisms"].set(f"{NAME}.enabled", on)
    assert apply(t) == ([NAME] if on else [])
    return t


def _params(on: bool, ca=None):
    return syn.get_params(_trees(on, ca)["synaptic"])


def _tbs_pairing(n_trains, bursts_per_train, train_period_s, post_per_burst=1, lag_s=0.01, t0=0.1):
    """Theta bursts (3 presynaptic spikes at 50 Hz every 200 ms; ``bursts_per_train`` per
    train, trains every ``train_period_s``), the postsynaptic cell firing ``lag_s`` after the
    first ``post_per_burst`` spikes of each burst; times on the 0.1 ms grid."""
    starts = (
        t0
        + np.arange(n_trains)[:, None] * train_period_s
        + np.arange(bursts_per_train)[None, :] * 0.2
    ).ravel()
    pre = np.round((starts[:, None] + np.arange(3) * 0.02).ravel(), 4)
    post = np.round((starts[:, None] + np.arange(post_per_burst) * 0.02).ravel() + lag_s, 4)
    return pre, post


def test_trace_is_one_at_rest_rises_with_sustained_firing_and_relaxes():
    p = _params(True)
    assert _params(False).fm_exponent == 0 and p.fm_exponent == 1 and p.fm_tau == 7.0
    rng = np.random.default_rng(0)
    r_ref = 2.0
    inc = float(syn.fast_increment(r_ref, p))
    assert inc == pytest.approx(1 / (r_ref * p.fm_tau))
    # Poisson firing at the resting rate: the trace's mean stays 1
    rest = np.sort(rng.uniform(0, 2000.0, rng.poisson(r_ref * 2000.0)))
    x = syn.fast_trace(rest, np.linspace(50, 2000, 4000), inc, p)
    assert np.mean(x) == pytest.approx(1.0, abs=0.03)
    # 10 s at 5x rest, then silence: up to ~5, then back over tau
    drive = np.arange(0, 10.0, 1 / (5 * r_ref))
    x = syn.fast_trace(drive, [0.0, 10.0, 10.0 + p.fm_tau], inc, p)
    assert x[0] == 1.0 and 4.0 < x[1] < 5.0
    assert x[2] == pytest.approx(x[1] * np.exp(-1), rel=1e-9)
    s = syn.fast_theta_scale(x, inc, p)
    assert s[0] == 1.0 and s[1] == p.fm_scale_max and 1.0 < s[2] < p.fm_scale_max
    # below rest the scale stays 1 (scale_min); no reference or mechanism off: 1
    assert syn.fast_theta_scale(0.3, inc, p) == 1.0
    assert syn.fast_theta_scale(3.0, 0.0, p) == 1.0
    assert syn.fast_theta_scale(3.0, inc, _params(False)) == 1.0
    # the rule exposes the jump per spike as its postsynaptic variable, only when on
    assert get_rule("graupner_brunel", _params(False)).post_variables() == {}
    rule = get_rule("graupner_brunel", p)
    assert rule.post_variables() == {syn.FAST_INC: 0.0}
    vals = rule.post_values(np.array([2.0, 0.0]), np.array([1.0, 1.0]))
    assert np.array_equal(vals[syn.FAST_INC], [1 / (2.0 * p.fm_tau), 0.0])
    assert rule.post_code()["reset"].startswith(f"{syn.FAST_TRACE} = ")


def _poisson(rng, rate_hz, T, dead_s=0.0):
    """Poisson spike times (s) on the 0.1 ms grid with a dead time ``dead_s`` after each."""
    isi = rng.exponential(1 / rate_hz, int(3 * rate_hz * T) + 10) + dead_s
    t = np.cumsum(isi)
    return np.round(t[t < T], 4)


def test_no_change_at_rest():
    """Pre and post firing at rest (2 Hz, 1.2 mM, NMDA at rest).  With a 25 ms dead time
    (no post doublets) nothing crosses theta_d: no change beyond the drift of rho, with or
    without the mechanism.  Plain Poisson firing has a few close post doublets that depress a
    little; the mechanism never adds to that (its thresholds are never below GB's)."""
    rng = np.random.default_rng(1)
    T = 200.0
    for dead, exact in ((0.025, True), (0.0, False)):
        pre, post = _poisson(rng, 2.0, T, dead), _poisson(rng, 2.0, T, dead)
        for rho0 in (0.2, 0.8):
            drift = syn.event_driven_rho([], [], _params(False), rho0=rho0, t_end=T).rho_final
            off = syn.event_driven_rho(pre, post, _params(False), rho0=rho0, t_end=T)
            on = syn.event_driven_rho(pre, post, _params(True), rho0=rho0, t_end=T, rate_ref=2.0)
            if exact:
                assert off.t_above_d == on.t_above_d == 0.0
                assert off.rho_final == on.rho_final == pytest.approx(drift, abs=1e-12)
            else:
                assert off.t_above_d > 0
                assert on.t_above_d <= off.t_above_d
                assert abs(on.rho_final - drift) <= abs(off.rho_final - drift)


@pytest.mark.parametrize("ca, post_per_burst, rate_ref", [(1.2, 3, 3.0), (1.8, 1, 1.0)])
def test_pattern_dependence_of_the_rule_equal_pulse_count(ca, post_per_burst, rate_ref):
    """600 presynaptic pulses as iTBS (20 trains of 10 bursts, 2 s on / 8 s off) and as cTBS
    (200 bursts in 40 s), the postsynaptic cell firing after the first ``post_per_burst``
    spikes of each burst (5 x that in Hz during a train; resting rate ``rate_ref``), NMDA
    calcium at 4 x its resting unblock (a depolarised spine, B(v)/B(-70 mV) ~ 4 at -45 mV).

    Measured: without the mechanism the two patterns act alike (within 0.01).  With it the
    continuous pattern raises the thresholds for its whole 40 s and ends with a much smaller
    change than the intermittent one: the rule tells the patterns apart, but by removing
    plasticity under sustained drive.  At 1.2 mM no theta-burst pairing reaches theta_p often
    enough to potentiate at the calibrated thresholds (both depress without the mechanism),
    and raising the thresholds cannot create potentiation: iTBS does NOT potentiate and cTBS
    does not depress more (Huang et al. 2005's signs are not reproduced)."""
    out = {}
    for name, (n_tr, bpt, per) in {"itbs": (20, 10, 10.0), "ctbs": (1, 200, 0.0)}.items():
        pre, post = _tbs_pairing(n_tr, bpt, per, post_per_burst)
        assert pre.size == 600
        for on in (False, True):
            r = syn.event_driven_rho(
                pre,
                post,
                _params(on, ca),
                rho0=0.5,
                t_end=pre[-1] + 1.0,
                c_pre_scale=np.full(pre.size, 4.0),
                rate_ref=rate_ref if on else None,
            )
            out[name, on] = r.rho_final - 0.5
    assert out["itbs", False] < -0.01 and out["ctbs", False] < -0.01
    assert out["itbs", False] == pytest.approx(out["ctbs", False], abs=0.01)
    assert abs(out["ctbs", True]) < 0.5 * abs(out["itbs", True])
    assert out["itbs", True] <= 1e-12 and out["ctbs", True] <= 1e-12


def test_time_varying_scale_in_the_batch_reference():
    """event_driven_batch with an (S, K + 1) scale: a constant column equals the scalar scale
    bit for bit; a wrong shape is an InputError."""
    p = _params(True)
    pre, post = _tbs_pairing(1, 3, 0.0)
    t, inc, _ = syn._events(pre, post, p)
    a = syn.event_driven_batch(t[None], inc[None], p, 0.3, 2.0, theta_scale=1.5)
    b = syn.event_driven_batch(
        t[None], inc[None], p, 0.3, 2.0, theta_scale=np.full((1, t.size + 1), 1.5)
    )
    assert a.rho_final[0] == b.rho_final[0] and a.t_above_d[0] == b.t_above_d[0]
    with pytest.raises(InputError, match="theta_scale"):
        syn.event_driven_batch(t[None], inc[None], p, 0.3, 2.0, theta_scale=np.ones((1, t.size)))


def test_brian2_code_agrees_with_the_numpy_reference():
    """One synapse per postsynaptic cell, the cells carrying the trace (the rule's post_code,
    spikes forced at given times); rho and threshold times per synapse equal the event-driven
    reference with the cell's trace, for a cell with a reference rate and one without."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    dt = 1e-4
    b2.defaultclock.dt = dt * b2.second
    p = syn.get_params(_trees(True, ca=2.5, calcium__delay_D=4.6)["synaptic"])
    pre, post = _tbs_pairing(4, 10, 3.0)
    T = pre[-1] + 0.5
    rates = np.array([2.0, 0.0])
    M = rates.size
    rule = get_rule("graupner_brunel", p)
    code = rule.post_code()
    G = b2.SpikeGeneratorGroup(M, np.repeat(np.arange(M), pre.size), np.tile(pre, M) * b2.second)
    spk = np.zeros((int(round(T / dt)) + 1, M))
    spk[np.rint(post / dt).astype(int), :] = 1.0
    post_ta = b2.TimedArray(spk, dt=dt * b2.second)
    H = b2.NeuronGroup(
        M,
        f"{syn.FAST_INC} : 1 (constant)\n" + code["model"],
        threshold="post_ta(t, i) > 0.5",
        reset=code["reset"],
        namespace={"post_ta": post_ta, **code["namespace"]},
    )
    for k, v in code["init"].items():
        setattr(H, k, v)
    setattr(H, syn.FAST_INC, rule.post_values(rates, rates)[syn.FAST_INC])
    parts = syn.synapse_model(p)
    S = b2.Synapses(
        G,
        H,
        model=parts.model,
        on_pre=parts.on_pre,
        on_post=parts.on_post,
        namespace=parts.namespace,
    )
    S.connect(j="i")
    S.on = 1
    S.rho = 0.3
    syn.set_delays(S, params=p)
    b2.Network(G, H, S).run(T * b2.second)
    syn.flush_synapses(S, params=p)
    for k, r in enumerate(rates):
        ev = syn.event_driven_rho(pre, post, p, rho0=0.3, t_end=T, rate_ref=r)
        assert S.rho[k] == pytest.approx(ev.rho_final, abs=1e-9)
        assert float(S.t_above_p_[k]) == pytest.approx(ev.t_above_p, abs=1e-9)
        assert float(S.t_above_d_[k]) == pytest.approx(ev.t_above_d, abs=1e-9)
    assert S.rho[0] != S.rho[1]  # the trace acted on the cell with a reference


def test_off_leaves_the_network_bit_identical():
    """Off (the default): no cell state, GB's code; on with every cell at the neutral jump 0
    gives the same spikes and efficacies bit for bit; with resting rates it changes them."""
    from cortexsim.circuit.network import Circuit

    kw = dict(duration_s=0.5, seed=3, target="runtime")
    off = Circuit(50, syn_params=_trees(False)["synaptic"], **kw)
    assert off.post_variables == {} and off.site_rule.post_code() == {}
    code = off.site_rule.synapse_code()
    assert "fm_" not in str(off.G.equations) + code.on_pre["ca"] + code.on_post["post"]
    on = Circuit(50, syn_params=_trees(True)["synaptic"], **kw)
    assert on.post_variables == {syn.FAST_INC: 0.0}
    spines = {"on": np.ones(off.n_sites), "rho": off.initial_rho}
    a = off.run(None, spines=spines, run_seed=5)
    b = on.run(None, spines=spines, run_seed=5)
    assert np.array_equal(a.spike_counts, b.spike_counts)
    for k in ("rho", "t_above_p", "t_above_d", "c"):
        assert np.array_equal(a.syn[k], b.syn[k]), k
    rates = np.full(on.N, 0.5)
    c = on.run(
        None,
        spines=spines,
        run_seed=5,
        overrides={f"cells.{syn.FAST_INC}": on.site_rule.post_values(rates, rates)[syn.FAST_INC]},
    )
    assert np.array_equal(a.spike_counts, c.spike_counts)
    assert c.syn["t_above_d"].sum() <= a.syn["t_above_d"].sum()


@pytest.mark.parametrize(
    "path, value",
    [
        ("fast_metaplasticity.exponent", -1.0),
        ("fast_metaplasticity.tau", 0.0),
        ("fast_metaplasticity.scale_min", 0.0),
        ("fast_metaplasticity.scale_max", 0.5),
    ],
)
def test_bad_parameter_values_are_input_errors(path, value):
    with pytest.raises(InputError, match=path.split(".")[1]):
        syn.get_params({path: value})


def test_bad_rates_are_input_errors():
    with pytest.raises(InputError, match="rate_ref"):
        syn.fast_increment(np.array([1.0, -1.0]), _params(True))
