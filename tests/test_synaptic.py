"""Graupner & Brunel 2012 calcium rule: event-driven scheme vs clock-driven ODEs, Brian2 code vs
reference, and the shape of GB 2012 Fig. 4B (cortical slices set, Sjostrom et al. 2001)."""
import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.params import load_model
from cortexsim.plasticity import synaptic as syn

PROTOCOLS = [(-0.02, 1), (-0.01, 1), (0.01, 1), (0.02, 1), (-0.01, 20), (0.01, 20),
             (-0.01, 50), (0.01, 50)]


def test_parameters_are_the_cortical_slice_set_and_overridable():
    p = syn.get_params()
    assert p.tau_ca == pytest.approx(22.6936e-3) and p.D == pytest.approx(4.6098e-3)
    assert (p.c_pre, p.c_post, p.gamma_d, p.gamma_p) == pytest.approx(
        (0.5617539, 1.23964, 331.909, 725.085))
    assert (p.tau, p.sigma, p.b, p.beta) == pytest.approx((346.3615, 3.3501, 5.40988, 0.5))
    assert p.nmda is False and p.noise is False  # paper reproduction defaults
    q = syn.get_params({"efficacy.gamma_p": 700.0, "nmda": {"enabled": True}})
    assert q.gamma_p == 700.0 and q.nmda is True
    tree = load_model("synaptic")
    tree.set("calcium.tau_ca", 30.0)
    assert syn.get_params(tree).tau_ca == pytest.approx(0.03)
    with pytest.raises(InputError):
        syn.get_params({"efficacy.no_such": 1.0})
    with pytest.raises(InputError):
        syn.get_params({"readout.mode": "sigmoid"})


@pytest.mark.parametrize("rho0", [0.3, 0.7])
def test_event_driven_matches_clock_driven_reference(rho0):
    worst = 0.0
    for d, f in PROTOCOLS:
        pre, post = syn.pairing_protocol(d, 60, f)
        t_end = pre[-1] + 1.0
        ref = syn.simulate_pair_protocol(pre, post, rho0=rho0, t_end=t_end)
        ev = syn.event_driven_rho(pre, post, rho0=rho0, t_end=t_end)
        worst = max(worst, abs(ev.rho_final - ref.rho_final))
        assert ev.t_above_p == pytest.approx(ref.t_above_p, rel=0.01, abs=1e-3)
        assert ev.t_above_d == pytest.approx(ref.t_above_d, rel=0.01, abs=1e-3)
        assert ev.n_pre == 60 and ev.n_post == 60
        # the protocol really moves rho (so the comparison is not trivial)
        assert abs(ev.rho_final - rho0) > 0.01
    assert worst < 2e-3, worst  # measured ~6e-4 (events on the 20 us grid of the reference)


def test_cubic_term_exact_and_rk4_agree_and_bistable():
    p = syn.get_params()
    r = np.array([0.05, 0.3, 0.49, 0.51, 0.8, 0.97])
    exact = syn._cubic(r, 300.0, p)
    q = syn.get_params({"efficacy.rho_star": 0.5 + 1e-9, "numerics.cubic_substeps": 8})
    rk = syn._cubic(r, 300.0, q)
    assert np.allclose(exact, rk, atol=1e-6)
    assert np.all(exact[r < 0.5] < r[r < 0.5]) and np.all(exact[r > 0.5] > r[r > 0.5])
    # against the clock-driven reference with no events (only the cubic drift)
    ref = syn.simulate_pair_protocol([], [], rho0=0.3, t_end=100.0, dt=1e-3)
    ev = syn.event_driven_rho([], [], rho0=0.3, t_end=100.0)
    assert ev.rho_final == pytest.approx(ref.rho_final, abs=1e-6)


def _brian_pairs(protocols, n_pairs, params=None, rho0=0.3, dt_ms=0.1, on=None):
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = dt_ms * b2.ms
    pi, pt, qi, qt = [], [], [], []
    for k, (d, f) in enumerate(protocols):
        pre, post = syn.pairing_protocol(d, n_pairs, f, t0=0.05)
        pi += [k] * n_pairs; pt += list(pre); qi += [k] * n_pairs; qt += list(post)
    grid = dt_ms * 1e-3
    pt, qt = np.round(np.array(pt) / grid) * grid, np.round(np.array(qt) / grid) * grid
    M = len(protocols)
    G = b2.SpikeGeneratorGroup(M, pi, pt * b2.second)
    H = b2.SpikeGeneratorGroup(M, qi, qt * b2.second)
    parts = syn.synapse_model(params)
    S = b2.Synapses(G, H, model=parts.model, on_pre=parts.on_pre, on_post=parts.on_post,
                    namespace=parts.namespace)
    S.connect(j="i")
    S.on = 1 if on is None else on
    S.rho = rho0
    syn.set_delays(S, params=params)
    T = max(pt.max(), qt.max()) + 0.5
    b2.Network(G, H, S).run(T * b2.second)
    syn.flush_synapses(S, params=params)
    return S, pt.reshape(M, n_pairs), qt.reshape(M, n_pairs), T


def test_brian2_event_driven_code_matches_reference():
    protos = [(-0.01, 20), (0.01, 20), (-0.02, 50), (0.01, 50), (0.005, 10), (-0.03, 10),
              (0.01, 5), (-0.01, 5)]
    S, pre, post, T = _brian_pairs(protos, 60)
    # Brian2 rounds the calcium delay to the 0.1 ms grid (4.6098 -> 4.6 ms): give the
    # reference the same delay so that both see identical event times
    same_grid = {"calcium.delay_D": 4.6}
    rel = []
    for k, (d, f) in enumerate(protos):
        ref = syn.simulate_pair_protocol(pre[k], post[k], params=same_grid, rho0=0.3, t_end=T)
        ev = syn.event_driven_rho(pre[k], post[k], params=same_grid, rho0=0.3, t_end=T)
        assert S.rho[k] == pytest.approx(ev.rho_final, abs=1e-9)  # same update, same events
        rel.append(abs(S.rho[k] - ref.rho_final) / ref.rho_final)
        assert float(S.t_above_d_[k]) == pytest.approx(ref.t_above_d, rel=0.01)
        assert float(S.t_above_p_[k]) == pytest.approx(ref.t_above_p, rel=0.01, abs=1e-3)
        assert S.n_pre_spikes[k] == 60 and S.n_post_spikes[k] == 60
    assert max(rel) < 0.02, rel  # measured ~1e-3
    # with the paper's exact D the change is still within 2 %
    for k in range(len(protos)):
        ref = syn.simulate_pair_protocol(pre[k], post[k], rho0=0.3, t_end=T)
        assert S.rho[k] == pytest.approx(ref.rho_final, rel=0.02)


def test_off_synapse_transmits_nothing_and_does_not_change():
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    G = b2.SpikeGeneratorGroup(2, [0, 1, 0, 1], [5, 5, 30, 30] * b2.ms)
    H = b2.NeuronGroup(2, "g : 1", threshold="t > 5.95*ms and t < 6.05*ms")
    parts = syn.synapse_model({"readout.mode": "two_state"})
    S = b2.Synapses(G, H, model=parts.model, on_pre=parts.with_transmission("g_post += w"),
                    on_post=parts.on_post, namespace=parts.namespace)
    S.connect(j="i")
    S.on = [1, 0]
    S.rho = [0.8, 0.8]
    syn.set_delays(S, 1 * b2.ms)
    b2.run(60 * b2.ms)
    syn.flush_synapses(S)
    p = syn.get_params()
    assert H.g[0] == pytest.approx(2 * p.w_up) and H.g[1] == 0.0   # two-state readout, UP
    assert S.rho[1] == 0.8 and S.c[1] == 0.0 and S.n_pre_spikes[1] == 0
    assert S.n_post_spikes[1] == 0 and float(S.t_above_d_[1]) == 0.0
    assert S.rho[0] != 0.8 and S.n_pre_spikes[0] == 2 and S.n_post_spikes[0] == 1
    assert float(S.t_above_d_[0]) > 0


def test_nmda_switch_scales_presynaptic_calcium_by_mg_unblock():
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    ov = {"nmda.enabled": True}
    G = b2.SpikeGeneratorGroup(3, [0, 1, 2], [1, 1, 1] * b2.ms)
    H = b2.NeuronGroup(3, "v : volt", threshold="False")
    H.v = [-70, -40, -10] * b2.mV
    parts = syn.synapse_model(ov)
    S = b2.Synapses(G, H, model=parts.model, on_pre=parts.on_pre, on_post=parts.on_post,
                    namespace=parts.namespace)
    S.connect(j="i")
    S.on = 1
    syn.set_delays(S, params=ov)
    b2.run(5.7 * b2.ms)  # calcium arrives at 1 + 4.6 ms
    p = syn.get_params(ov)
    expect = p.c_pre * syn.mg_unblock([-70, -40, -10], p) / syn.mg_unblock(p.v_ref, p)
    assert np.allclose(S.c[:], expect, rtol=1e-9)
    assert S.c[0] == pytest.approx(p.c_pre) and S.c[2] > 3 * p.c_pre  # relief of the block
    assert "v_post" not in "".join(syn.synapse_model().on_pre.values())  # off by default


def test_noisy_event_scheme_reproduces_gb_transition_probabilities():
    # Monte Carlo of the noisy event-driven rule vs GB 2012's analytic transition probabilities
    p = syn.get_params({"numerics.noise": True})
    for d, f in [(-0.01, 1), (0.01, 20), (0.0, 30)]:
        pre, post = syn.pairing_protocol(d, 75, f, t0=1.0)
        t, inc, _ = syn._events(pre, post, p)
        T = 75 / f
        n = 3000
        up = syn.event_driven_batch(np.tile(t, (n, 1)), np.tile(inc, (n, 1)), p, 0.0,
                                    t_end=t[0] + T, seed=1)
        down = syn.event_driven_batch(np.tile(t, (n, 1)), np.tile(inc, (n, 1)), p, 1.0,
                                      t_end=t[0] + T, seed=2)
        det = syn.event_driven_rho(pre, post, rho0=0.0, t_end=t[0] + T)
        _, _, _, pu, pd = syn.gb_transition(det.t_above_d / T, det.t_above_p / T, T, p)
        assert np.mean(up.rho_final > 0.5) == pytest.approx(pu, abs=0.04)
        assert np.mean(down.rho_final < 0.5) == pytest.approx(pd, abs=0.04)
    with pytest.raises(InputError):
        syn.event_driven_rho([0.1], [0.11], params={"numerics.noise": True})  # no seed


def test_gb2012_fig4b_shape_frequency_dependence():
    """GB 2012 Fig. 4B (75 pairs, cortical slices set): at low frequency post-pre pairs depress
    and pre-post pairs change little; at >= 40 Hz both orders potentiate; above ~29-30 Hz every
    offset potentiates (Sjostrom et al. 2001 Fig. 1-2)."""
    dts = np.linspace(-0.05, 0.05, 201)
    out = syn.frequency_stdp_curves(dts, [1, 20, 40, 50], 75)
    ch = out["change"]

    def at(i, d):
        return ch[i][np.argmin(abs(dts - d))]
    # 1 Hz: LTD window for post-before-pre, its minimum within [-20, 0] ms
    assert at(0, -0.010) < 0.8 and at(0, -0.005) < 0.8
    assert -0.020 <= dts[np.argmin(ch[0])] <= 0.0
    assert ch[0].min() < 0.7
    # 1 Hz: pre-post +10 ms is weak (within 20 % of no change), no strong LTP anywhere
    assert 0.95 < at(0, 0.010) < 1.2 and ch[0].max() < 1.3
    # 20 Hz: pre-post potentiates, post-pre depresses
    assert at(1, 0.010) > 1.1 and at(1, -0.010) < 0.9
    # 40 and 50 Hz: both orders potentiate, everywhere
    for i in (2, 3):
        assert at(i, 0.010) > 1.3 and at(i, -0.010) > 1.3
    assert ch[3].min() > 1.3

    def min_change(f):
        h = 0.5 / f
        return syn.frequency_stdp_curves(np.linspace(-h, h, 201), [f], 75)["change"].min()
    assert min_change(25.0) < 1.0 < min_change(35.0)   # crossover measured at 29.1 Hz


# --------------------------------------------------------------------------- sampled sessions
def _theta_burst_pairs(n_trains, dt_pp):
    """iTBS-like pattern: per 10-s train period, 10 bursts at 5 Hz of 3 presynaptic spikes at
    50 Hz, one postsynaptic spike dt_pp after each burst's first spike."""
    tr, b = np.meshgrid(np.arange(n_trains), np.arange(10), indexing="ij")
    t0 = (tr * 10.0 + b * 0.2 + 0.01).ravel()
    pre = np.sort(np.concatenate([t0, t0 + 0.02, t0 + 0.04]))
    return pre, t0 + dt_pp


@pytest.mark.parametrize("dt_pp", [0.01, -0.01, 0.03])
@pytest.mark.parametrize("rho0", [0.2, 0.8])
def test_sampled_protocol_plus_mean_field_matches_full_protocol(dt_pp, rho0):
    """Two simulated train periods, then the GB mean-field drift with the threshold-time
    fractions measured in them, give the rho of the whole 60-train protocol (event-driven)."""
    from cortexsim.plasticity.synaptic import advance_fractions, event_driven_rho, get_params
    full = event_driven_rho(*_theta_burst_pairs(60, dt_pp), rho0=rho0, t_end=600.0)
    smp = event_driven_rho(*_theta_burst_pairs(2, dt_pp), rho0=rho0, t_end=20.0)
    ext = advance_fractions(smp.rho_final, smp.t_above_p / 20.0, smp.t_above_d / 20.0, 580.0,
                            get_params())
    assert abs(ext - full.rho_final) < 0.01
    # and the extrapolation matters: the sample alone is far from the full protocol
    assert abs(smp.rho_final - full.rho_final) > 0.05


def test_mean_field_without_threshold_time_is_the_cubic_drift():
    from cortexsim.plasticity.synaptic import advance, advance_fractions, get_params
    p = get_params()
    r = np.array([0.1, 0.45, 0.55, 0.9])
    a = advance_fractions(r, 0.0, 0.0, 100.0, p)
    _, b, _, _ = advance(np.zeros(4), r, 100.0, p)
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_array_equal(advance_fractions(r, 0.5, 0.5, 0.0, p), r)


def test_mean_field_kernel_is_the_split_step_loop_bit_for_bit():
    """The fused (numba) mean field for rho_star = 0.5 gives exactly the numbers of the
    split-step loop (``backend="numpy"``: linear drifts, then _cubic's exact branch, step by
    step), for arrays, broadcast scalars, fixed points and fractions of 0."""
    from cortexsim.plasticity import synaptic as S
    p = S.get_params()
    assert abs(p.rho_star - 0.5) < 1e-12
    rng = np.random.default_rng(3)
    rho = rng.uniform(0, 1, 2000)
    rho[:3] = [0.0, 0.5, 1.0]
    fp = rng.uniform(0, 0.05, 2000)
    fp[:10] = 0.0
    fd = fp + rng.uniform(0, 0.1, 2000)
    for args, kw in (((rho, fp, fd, 582.8, p), {}),
                     ((rho, 0.02, 0.05, 30.0, p), {"step_s": 0.5}),
                     ((rho[::2], fp[::2], 0.05, 10.0, p), {"step_s": 0.7})):
        np.testing.assert_array_equal(S.advance_fractions(*args, **kw),
                                      S.advance_fractions(*args, **kw, backend="numpy"))
    x = S.advance_fractions(0.3, 0.01, 0.02, 10.0, p)
    assert isinstance(x, np.floating) and x == S.advance_fractions(0.3, 0.01, 0.02, 10.0, p,
                                                                   backend="numpy")
    with pytest.raises(InputError, match="backend"):
        S.advance_fractions(rho, fp, fd, 10.0, p, backend="cuda")


# --------------------------------------------------------------------------- extracellular Ca
def test_calcium_amplitudes_scale_with_extracellular_calcium():
    """At the fit conditions the published amplitudes; below, c_post linear in [Ca]o and c_pre
    also scaled by the release-probability Hill ratio (models/synaptic.toml [extracellular])."""
    p0 = syn.get_params()
    assert (p0.c_pre, p0.c_post) == pytest.approx((0.5617539, 1.23964))
    p = syn.get_params({"extracellular.ca": 1.25})
    assert p.c_post == pytest.approx(1.23964 * 0.5)
    h = (lambda x: x**4 / (x**4 + 2.79**4))
    assert p.c_pre == pytest.approx(0.5617539 * 0.5 * h(1.25) / h(2.5))
    with pytest.raises(InputError, match="extracellular.ca"):
        syn.get_params({"extracellular.ca": 50.0})


@pytest.mark.parametrize("ca", [1.2, 1.3, 1.5])
def test_pairs_change_nothing_at_physiological_calcium_but_bursts_do(ca):
    """Inglebert et al. 2020 PNAS Fig. 1: at 1.3 and 1.5 mM [Ca]o, 100 pre/post pairs at 0.3 Hz
    induce no plasticity at any offset (at 2.5 mM the same pairs do, GB 2012 cortical set);
    postsynaptic bursts still cross the thresholds ("only bursts do")."""
    dts = np.linspace(-0.05, 0.05, 41)
    at = syn.frequency_stdp_curves(dts, [0.3], 100, params={"extracellular.ca": ca})["change"]
    np.testing.assert_allclose(at, 1.0, atol=1e-6)
    slice_ = syn.frequency_stdp_curves(dts, [0.3], 100)["change"]
    assert slice_.min() < 0.7 and slice_.max() > 1.05
    # theta bursts: 4 postsynaptic spikes at 100 Hz after 3 presynaptic at 50 Hz, 5 Hz x 10,
    # 20 trains 10 s apart: the calcium crosses both thresholds and a DOWN synapse changes
    tr, b = np.meshgrid(np.arange(20), np.arange(10), indexing="ij")
    t0 = (tr * 10.0 + b * 0.2 + 0.01).ravel()
    pre = np.sort(np.concatenate([t0, t0 + 0.02, t0 + 0.04]))
    post = np.sort(np.concatenate([t0 + 0.005 + k * 0.01 for k in range(4)]))
    r = syn.event_driven_rho(pre, post, params={"extracellular.ca": ca}, rho0=0.0, t_end=200.0)
    assert r.t_above_p > 0.1 and r.rho_final > 0.1
