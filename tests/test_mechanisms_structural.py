"""Structural-side candidate mechanisms of issue 13: NMDA-receptor spinogenesis
(``nmda_spinogenesis``) and dopamine as a third factor (``dopamine_d1``).

Cell level: the GB rule's per-synapse NMDA signal (Brian2, runtime target) against its
definition; structural level: the session drive into the spine kernel (no network runs).
"""

from __future__ import annotations

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.experiment.spec import model_trees
from cortexsim.plasticity import rules, synaptic
from cortexsim.plasticity import structural as SP

POPS = ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")


def _nmda_run(n_pre, v_post_mV, on, T=1.0):
    """Synapses k: ``n_pre[k]`` presynaptic spikes in ``T`` s onto a cell clamped at
    ``v_post_mV[k]``; returns the rule's ``collect`` results and structural signals."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    b2.defaultclock.dt = 0.1 * b2.ms
    rule = rules.get_rule("graupner_brunel", {"nmda.enabled": True})
    M = len(n_pre)
    idx, times = [], []
    for k, n in enumerate(n_pre):
        idx += [k] * n
        times += list(np.round(np.linspace(0.05, 0.8, n) / 1e-4) * 1e-4) if n else []
    G = b2.SpikeGeneratorGroup(M, np.array(idx, int), np.array(times) * b2.second)
    H = b2.NeuronGroup(M, "v : volt", threshold="False")  # clamped, never fires
    H.v = np.asarray(v_post_mV, float) * b2.mV
    code = rule.synapse_code()
    S = b2.Synapses(
        G, H, model=code.model, on_pre=code.on_pre, on_post=code.on_post, namespace=code.namespace
    )
    S.connect(j="i")
    rule.setup(S, {"on": np.asarray(on, float), "rho": np.full(M, 0.3)}, 0 * b2.ms)
    b2.Network(G, H, S).run(T * b2.second)
    counts = np.zeros(M)
    syn = rule.collect(S, T, np.arange(M), np.arange(M), counts)
    return rule, syn, rule.structural_signals(syn, T)


def test_nmda_signal_rate_depolarisation_absent_synapse():
    n_pre = [5, 20, 20, 20]
    v = [-70.0, -70.0, -40.0, -40.0]
    on = [1, 1, 1, 0]
    rule, syn, sig = _nmda_run(n_pre, v, on)
    p = rule.params
    # each presynaptic event adds c_pre * B(v_post) / B(v_ref) (Jahr & Stevens unblock)
    expect = (
        np.array(n_pre)
        * p.c_pre
        * synaptic.mg_unblock(v, p)
        / synaptic.mg_unblock(p.v_ref, p)
        * np.array(on)
    )
    np.testing.assert_allclose(syn["nmda_ca"], expect, rtol=1e-9)
    n = sig["nmda_ca"]
    np.testing.assert_allclose(n, expect * p.tau_ca / 1.0, rtol=1e-9)  # per second of run
    assert n[1] > n[0] * 3.9  # grows with the presynaptic rate (4x spikes)
    assert n[2] > n[1] * 2.0  # and with depolarisation (Mg2+ unblock)
    assert n[3] == 0.0  # an absent synapse has none


def test_nmda_accumulator_leaves_rho_as_the_reference():
    """Adding the accumulator does not change the rule: rho equals the numpy event scheme with
    the same unblock factors."""
    n_pre, v = [20, 20], [-70.0, -40.0]
    rule, syn, _ = _nmda_run(n_pre, v, [1, 1])
    p = rule.params
    for k in range(2):
        pre = np.round(np.linspace(0.05, 0.8, n_pre[k]) / 1e-4) * 1e-4
        scale = synaptic.mg_unblock(v[k], p) / synaptic.mg_unblock(p.v_ref, p)
        ref = synaptic.event_driven_rho(
            pre,
            [],
            params={"nmda.enabled": True, "calcium.delay_D": 4.6},
            rho0=0.3,
            t_end=1.0,
            c_pre_scale=scale,
        )
        assert syn["rho"][k] == pytest.approx(ref.rho_final, abs=1e-9)


def _formed_over_a_day(drive, n_sites=20000, seed=3, params=None):
    """Spines formed in 24 h on one cell with ``n_sites`` empty sites under activity drive
    ``drive`` decaying with tau_h (mean over each hour, clipped to drive_max), as the runner's
    slow phase does."""
    P = SP._params(params)
    tau = P["activity"]["tau_h"]
    st = SP.SpineState(np.zeros(n_sites, np.int8), np.zeros(n_sites, np.float32))
    formed = 0
    for h in range(24):
        d = np.clip(
            drive * np.exp(-h / tau) * tau * (1 - np.exp(-1 / tau)),
            -P["activity"]["drive_max"],
            P["activity"]["drive_max"],
        )
        st, cnt = SP.advance(st, 0.5, np.full(n_sites, d), np.zeros(1), 1.0, 1, seed, h, params)
        formed += cnt["totals"]["formed"]
    return formed


def _trees(*on):
    return model_trees({f"mechanisms.{m}.enabled": True for m in on})["structural"]


def test_nmda_spinogenesis_more_formation_after_nmda_rich_session():
    off, on = _trees(), _trees("nmda_spinogenesis")
    assert off.value("activity.nmda_gain") == 0 and on.value("activity.nmda_gain") > 0
    ltp = np.zeros(2)  # no time above theta_p (in vivo calcium)
    nmda_rest = np.array([0.01, 0.01])
    nmda = np.array([0.02, 0.01])  # cell 0: twice its resting NMDA calcium
    day = 10 * 592.0  # an aiTBS day: ten ~10-min sessions (decay neglected)
    d_on = SP.session_drive(ltp, ltp, nmda, nmda_rest, day, params=on)
    d_off = SP.session_drive(ltp, ltp, nmda, nmda_rest, day, params=off)
    np.testing.assert_array_equal(d_off, 0.0)
    assert d_on[0] > 0 and d_on[1] == 0.0  # only the cell above its rest
    f_on = _formed_over_a_day(d_on[0], params=on)
    f_off = _formed_over_a_day(d_off[0], params=off)
    assert f_on > 1.2 * f_off, (f_on, f_off)
    # a cell without NMDA calcium at rest gets no NMDA drive (no reference)
    assert SP.session_drive(ltp, ltp, nmda, np.zeros(2), day, params=on)[0] == 0.0


def test_session_drive_off_equals_the_ltp_drive():
    """Both mechanisms off: the old excess-LTP-time drive, bit for bit."""
    tree = _trees()
    rng = np.random.default_rng(0)
    a, a0 = rng.random(50) * 1e-3, rng.random(50) * 1e-3
    act = tree.values()["activity"]
    old = act["ltp_gain"] * ((a - a0) / act["ltp_ref"]) * (591.84 / 3600.0) / act["tau_h"]
    new = SP.session_drive(
        a, a0, rng.random(50), rng.random(50), 591.84, SP.dopamine_gate(0.7, None, tree), tree
    )
    np.testing.assert_array_equal(new, old)


def test_session_dopamine_from_the_pulses():
    tree = _trees("dopamine_d1")
    assert SP.session_dopamine(np.zeros(600), 0.9, tree) == 0.0  # sham pulses
    assert SP.session_dopamine(np.ones(600), 0.0, tree) == 0.0  # light, no release
    da600 = SP.session_dopamine(np.ones(600), 0.9, tree)
    da1800 = SP.session_dopamine(np.ones(1800), 0.9, tree)
    assert 0 < da600 < da1800 < 1
    e_half = tree.value("dopamine.e_half")
    assert SP.session_dopamine(np.ones(int(e_half)), 1.0, tree) == pytest.approx(0.5)


def test_dopamine_raises_the_drive_of_receptor_cells_and_needs_dopamine():
    """A D1 cell and a D2 cell get more spines than a cell without receptors with the same
    NMDA eligibility (both signs measured positive); without dopamine all three alike."""
    on = _trees("nmda_spinogenesis", "dopamine_d1")
    nm = _trees("nmda_spinogenesis")
    rec = SP.Receptors(d1=np.array([True, False, False]), d2=np.array([False, True, False]))
    ltp = np.zeros(3)
    nmda, nmda_rest = np.full(3, 0.02), np.full(3, 0.01)  # same eligibility
    da = SP.session_dopamine(np.ones(1800), 0.9, on)
    gate = SP.dopamine_gate(da, rec, on)
    assert gate[0] > 1 and gate[1] > 1 and gate[2] == 1.0
    d = SP.session_drive(ltp, ltp, nmda, nmda_rest, 10 * 592.0, gate, on)
    f = [_formed_over_a_day(x, params=on) for x in d]
    assert f[0] > 1.2 * f[2] and f[1] > 1.2 * f[2], f
    # without dopamine (sham) the gate is 1: the drive is that of NMDA alone
    g0 = SP.dopamine_gate(SP.session_dopamine(np.zeros(1800), 0.9, on), rec, on)
    np.testing.assert_array_equal(g0, 1.0)
    np.testing.assert_array_equal(
        SP.session_drive(ltp, ltp, nmda, nmda_rest, 600.0, g0, on),
        SP.session_drive(ltp, ltp, nmda, nmda_rest, 600.0, 1.0, nm),
    )
    # gains 0 (mechanism off): gate 1 whatever the dopamine, no receptors needed
    assert SP.dopamine_gate(0.9, rec, nm) == 1.0
    assert SP.dopamine_gate(0.9, None, nm) == 1.0
    with pytest.raises(ValueError, match="no receptors"):
        SP.dopamine_gate(0.9, None, on)


def test_receptors_need_every_population_declared():
    tree = _trees("dopamine_d1")
    with pytest.raises(InputError, match="structural.dopamine.receptors.VIP"):
        SP.draw_receptors(POPS + ("VIP",), np.array([5]), np.random.default_rng(0), tree)


@pytest.mark.parametrize(
    "path, value",
    [
        ("dopamine.receptors.IT_L5.d1_probability", 1.5),
        ("dopamine.receptors.PT_L5.d2_probability", -0.1),
        ("dopamine.gain_d1", -1.0),
        ("dopamine.gain_d2", -1.0),
        ("activity.nmda_gain", True),
    ],
)
def test_bad_mechanism_parameters_are_input_errors(path, value):
    with pytest.raises(InputError, match=path.replace(".", r"\.")):
        model_trees({f"structural.{path}": value})


@pytest.mark.parametrize(
    "protocol, light, active",
    [("aitbs_day", False, True), ("sham_aitbs_day", False, False), ("aitbs_day", True, False)],
)
def test_condition_dopamine_comes_from_its_pulses(protocol, light, active):
    """The runner's gate: an active TMS protocol releases dopamine, its sham twin (same
    schedule, zero intensity) and light pulses (light_pulse_equivalent 0) do not."""
    from types import SimpleNamespace

    from cortexsim.experiment.phases import ConditionRun
    from cortexsim.protocols import get_protocol
    from cortexsim.rng import SeedSchedule

    trees = model_trees({"mechanisms.dopamine_d1.enabled": True})
    pop_index = np.repeat(np.arange(len(POPS)), 200)
    run = SimpleNamespace(
        proto=get_protocol(protocol),
        light=light,
        trees=trees,
        cond={"intensity_pct_rmt": None},
        streams=SeedSchedule(1),
        structural=trees["structural"].values(),
        populations=POPS,
        layout=SimpleNamespace(pop_index=pop_index),
    )
    run._pct_rmt = lambda: ConditionRun._pct_rmt(run)
    run.receptors = ConditionRun._draw_receptors(run)
    gate = ConditionRun._dopamine_gate(run, ConditionRun._session_dopamine(run))
    if active:
        assert gate.min() == 1.0
        for p in ("IT_L5", "PT_L5"):
            assert gate[pop_index == POPS.index(p)].mean() > 1, p
    else:
        np.testing.assert_array_equal(gate, 1.0)


@pytest.mark.slow
def test_stimulation_raises_the_nmda_calcium_of_the_circuit_cells():
    """Circuit level (scale 100, the runner's 1-s build of ``cortexsim run tiny``): a second
    of iTBS at 90 % RMT gives every excitatory population more presynaptic NMDA calcium per
    synapse than the same second at rest; an absent site has none."""
    from cortexsim.circuit.network import Circuit, Stimulus, pulse_slot_s
    from cortexsim.coupling import cell_field_vpm
    from cortexsim.experiment.phases import nmda_calcium_per_cell
    from cortexsim.protocols import get_protocol

    t = model_trees({})
    proto = get_protocol("itbs600")
    slot = pulse_slot_s(proto.pulse_times(), t["circuit"].to("sim.dt", "s"))
    c = Circuit(
        100,
        duration_s=1.0,
        seed=1,
        slot_s=slot,
        params=t["circuit"],
        cell_params=t["cells"],
        syn_params=t["synaptic"],
        coupling_params=t["coupling"],
    )
    stim = Stimulus.from_protocol(proto, cell_field_vpm(90.0, t["coupling"]), offset_s=slot).until(
        1.0, c.dt_s
    )
    on = np.ones(c.n_sites)
    on[::7] = 0.0
    sp = {"on": on, "rho": c.initial_rho}
    post = c.conn["ee"]["j"].astype(np.int64)
    rest = c.run(None, spines=sp, run_seed=11)
    tms = c.run(stim, spines=sp, run_seed=11)
    assert np.all(tms.syn["nmda_ca"][on == 0] == 0) and np.any(tms.syn["nmda_ca"] > 0)
    n0 = nmda_calcium_per_cell(rest, c.site_rule, post, c.N)
    n1 = nmda_calcium_per_cell(tms, c.site_rule, post, c.N)
    for k, p in enumerate(c.slices):
        cells = (c.pop_index == k) & (n0 > 0)
        if cells.any():
            assert n1[cells].mean() > 1.2 * n0[cells].mean(), p


@pytest.mark.parametrize("w", [0.0, 0.25, 1.0])
def test_deficit_weight_scales_only_sessions_below_rest(w):
    """``activity.deficit_weight``: a session below rest (a silenced cell) counts with weight
    w; a session above rest is unchanged whatever w."""
    tree = model_trees(
        {"mechanisms.nmda_spinogenesis.enabled": True, "structural.activity.deficit_weight": w}
    )["structural"]
    signed = model_trees({"mechanisms.nmda_spinogenesis.enabled": True})["structural"]
    assert signed.value("activity.deficit_weight") == 1.0  # the model file's default
    ltp = np.zeros(3)
    rest = np.full(3, 0.01)
    nmda = np.array([0.02, 0.005, 0.01])  # above, below, at rest
    d = SP.session_drive(ltp, ltp, nmda, rest, 592.0, params=tree)
    d1 = SP.session_drive(ltp, ltp, nmda, rest, 592.0, params=signed)
    assert d1[1] < 0 and d[0] == d1[0] and d[2] == 0.0
    assert d[1] == pytest.approx(w * d1[1], rel=1e-12, abs=0.0)


def test_deficit_weight_out_of_range_is_refused():
    with pytest.raises(InputError, match="deficit_weight"):
        model_trees({"structural.activity.deficit_weight": 1.5})
