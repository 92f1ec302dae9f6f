"""Dopamine from evoked activity (issue 13, mechanism ``dopamine_from_activity``): a session's
dopamine counts the excess spikes of the release populations over their rest rates
(``structural.dopamine.spike_weight``, ``[dopamine.release.*]``) beside or instead of its pulses
(``pulse_weight``); the defaults keep the pulse formula bit for bit; the runner computes it per
session from the session's rates and records dopamine, gate, NMDA excess and drive per session.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.experiment import Experiment, parse_spec
from cortexsim.experiment.phases import ConditionRun
from cortexsim.experiment.spec import model_trees
from cortexsim.params import ParamTree, load_model
from cortexsim.plasticity import structural as SP
from cortexsim.protocols import get_protocol
from cortexsim.rng import SeedSchedule

POPS = ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")
ACTIVITY = {
    "mechanisms.dopamine_from_activity.enabled": True,
    "mechanisms.dopamine_d1.enabled": True,
}


def _tree(overrides=None):
    return model_trees(overrides or {})["structural"]


def _rates(pt_excess_hz, rest):
    r = rest.copy()
    r[POPS.index("PT_L5")] += pt_excess_hz
    return r


def test_dopamine_grows_with_the_release_populations_excess_spikes():
    tree = _tree(ACTIVITY)
    d = tree.values()["dopamine"]
    assert d["pulse_weight"] == 0 and d["spike_weight"] > 0
    rest = np.array([2.0, 0.7, 2.9, 13.0, 13.8])
    pulses = np.ones(1800)
    spikes = [
        SP.excess_release_spikes(_rates(x, rest), rest, 600.0, POPS, tree)
        for x in (0.0, 0.5, 1.0, 2.0)
    ]
    assert spikes[0] == 0.0 and spikes[1] == pytest.approx(0.5 * 600.0)
    da = [SP.session_dopamine(pulses, 0.9, tree, s) for s in spikes]
    assert da[0] == 0.0  # at rest rates: none (pulses count 0)
    assert 0 < da[1] < da[2] < da[3] < 1
    e = d["spike_weight"] * spikes[2]
    assert da[2] == pytest.approx(e / (e + d["e_half"]))
    # a population without a release table (IT_L5: weight 0, PV: no table) does not release
    it_pv = rest + np.array([0.0, 3.0, 0.0, 5.0, 0.0])
    assert SP.excess_release_spikes(it_pv, rest, 600.0, POPS, tree) == 0.0
    # firing below rest (e.g. silenced) releases none
    assert (
        SP.session_dopamine(
            pulses, 0.9, tree, SP.excess_release_spikes(_rates(-1.0, rest), rest, 600.0, POPS, tree)
        )
        == 0.0
    )


def test_defaults_keep_the_pulse_formula_bit_for_bit():
    tree = _tree()
    d = tree.values()["dopamine"]
    assert d["pulse_weight"] == 1 and d["spike_weight"] == 0
    rng = np.random.default_rng(4)
    for n, scale in [(1800, 0.9), (600, 1.2), (37, 0.35)]:
        intens = rng.random(n)
        e = float(scale) * float(np.sum(intens))
        expect = e / (e + d["e_half"])
        for spikes in (0.0, 123.4, -50.0):  # the activity does not count
            assert SP.session_dopamine(intens, scale, tree, spikes) == expect
    assert SP.session_dopamine(np.zeros(1800), 0.9, tree, 500.0) == 0.0


def _fake_run(protocol, light, overrides):
    """What ConditionRun._session_dopamine / _dopamine_gate read, without a network (200
    cells per population, receptors from seed 1's stream)."""
    trees = model_trees(overrides)
    run = SimpleNamespace(
        proto=get_protocol(protocol),
        light=light,
        trees=trees,
        cond={"intensity_pct_rmt": 90.0},
        sess_len=592.84,
        structural=trees["structural"].values(),
        populations=POPS,
        rest_rates=np.array([2.0, 0.7, 2.9, 13.0, 13.8]),
        release_ref=np.array([2.0, 0.7, 2.9, 13.0, 13.8]),
        streams=SeedSchedule(1),
        layout=SimpleNamespace(pop_index=np.repeat(np.arange(5), 200)),
    )
    run._pct_rmt = lambda: ConditionRun._pct_rmt(run)
    run.receptors = ConditionRun._draw_receptors(run)
    return run


def test_light_pulses_with_raised_activity_now_release_dopamine():
    raised = _rates(1.0, np.array([2.0, 0.7, 2.9, 13.0, 13.8]))
    pulses_only = _fake_run("aitbs_day", True, {"mechanisms.dopamine_d1.enabled": True})
    assert ConditionRun._session_dopamine(pulses_only, raised) == 0.0  # light: no pulse-eq.
    run = _fake_run("aitbs_day", True, ACTIVITY)
    assert ConditionRun._session_dopamine(run) == 0.0  # before the session's run
    assert ConditionRun._session_dopamine(run, run.rest_rates) == 0.0
    da = ConditionRun._session_dopamine(run, raised)
    assert da > 0.5
    gate = ConditionRun._dopamine_gate(run, da)
    assert gate.min() == 1.0  # cells without receptors: ungated
    for p in ("IT_L5", "PT_L5"):  # D1 (IT, PT) and D2 (PT) cells raised
        assert gate[run.layout.pop_index == POPS.index(p)].mean() > 1, p
    # the same evoked activity releases the same dopamine under TMS (the pulse counts 0)
    assert ConditionRun._session_dopamine(_fake_run("aitbs_day", False, ACTIVITY), raised) == da


def test_bundle_normalisation_matches_the_pulse_dopamine_of_a_90_pct_aitbs_session():
    """The source of spike_weight: 0.98 Hz PT_L5 excess (aiTBS at 90 % RMT, scale small) in a
    592.84 s session gives about the pulse-driven DA of that session."""
    pulse = _fake_run("aitbs_day", False, {"mechanisms.dopamine_d1.enabled": True})
    act = _fake_run("aitbs_day", False, ACTIVITY)
    da_pulse = ConditionRun._session_dopamine(pulse)
    da_act = ConditionRun._session_dopamine(act, _rates(0.98, act.rest_rates))
    assert da_act == pytest.approx(da_pulse, abs=0.01)


@pytest.mark.parametrize(
    "path, value",
    [
        ("dopamine.release.PT_L5.weight", -1.0),
        ("dopamine.spike_weight", -0.5),
        ("dopamine.pulse_weight", True),
        ("dopamine.spike_weight", "many"),
    ],
)
def test_bad_release_parameters_are_input_errors(path, value):
    with pytest.raises(InputError, match=path.replace(".", r"\.")):
        model_trees({f"structural.{path}": value})


def _tree_with_release(pop):
    """The structural model with a release table for ``pop`` (as a user's models folder could
    declare; a spec override cannot add a table)."""
    d = copy.deepcopy(dict(load_model("structural")))
    d["dopamine"]["release"][pop] = {
        "weight": {"value": 1.0, "unit": "1", "range": [0.0, 10.0], "source": "assumption: test"}
    }
    return ParamTree.from_dict(d, "structural")


def test_unknown_population_in_release_table_is_an_input_error():
    tree = _tree_with_release("VIP")
    with pytest.raises(InputError) as exc:
        SP.release_weights(POPS, tree)
    assert exc.value.field == "structural.dopamine.release.VIP"
    assert "PT_L5" in str(exc.value)
    with pytest.raises(InputError, match="structural.dopamine.release.VIP"):
        SP.excess_release_spikes(np.zeros(5), np.zeros(5), 600.0, POPS, tree)
    np.testing.assert_array_equal(SP.release_weights(POPS, _tree()), [0, 0, 1, 0, 0])


# --------------------------------------------------------------------------- end to end
PROTO = {"base": "itbs600", "n_pulses": 30, "sessions_per_day": 2, "session_interval_min": 5}
# the shape of tests/test_experiment.py's TINY (scale 100, seed 3, 1-s phases: the same
# compiled network), with the mechanism on and a PT-silenced condition
SPEC = {
    "experiment": {"name": "tiny_da", "seed": 3},
    "settings": {"scale": 100, "baseline_fast_s": 1.0, "slow_dt_h": 2.0, "session_sample_s": 1.0},
    "overrides": {**ACTIVITY, "mechanisms.nmda_spinogenesis.enabled": True},
    "timeline": [
        {"kind": "baseline", "days": 1, "readout": "baseline"},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 1, "readout": "24h"},
    ],
    "conditions": {
        "control": {"stress": False},
        "tbs": {"stress": False, "protocol": PROTO, "intensity_pct_rmt": 120},
        "tbs_pt_silenced": {
            "stress": False,
            "protocol": PROTO,
            "intensity_pct_rmt": 120,
            "silence": ["PT_L5"],
        },
    },
    "criteria": [],
}


@pytest.fixture(scope="module")
def da_run(tmp_path_factory):
    return Experiment.from_dict(copy.deepcopy(SPEC)).run(
        progress=False, checkpoint_dir=tmp_path_factory.mktemp("ck")
    )


def test_bundle_runs_and_records_the_session_dopamine(da_run):
    ds = da_run.data
    n_s = ds.sizes["session"]
    assert n_s == 2
    assert ds.session_dopamine.dims == ("condition", "session")
    for v in ("session_da_gate", "session_nmda_excess", "session_drive"):
        assert ds[v].dims == ("condition", "session", "population"), v
        assert ds[v].attrs["units"] == "1" and ds[v].attrs["long_name"]
        assert np.isnan(ds[v].sel(condition="control")).all()
        assert np.isnan(ds[v].sel(population=["PV", "SST"])).all()
    assert np.isnan(ds.session_dopamine.sel(condition="control")).all()
    # the recorded dopamine is the formula on the recorded rates (per session, after its run)
    cfg = da_run.config
    tree = model_trees(cfg["overrides"])["structural"]
    sess_len = get_protocol(PROTO).duration_s + cfg["settings"]["session_tail_s"]
    # ... counted against the unstimulated network with the spine state before the sessions:
    # the same for conditions with the same history (silencing acts in the sessions only),
    # not the initial state's rates (a day of baseline turnover lies between them)
    ref = ds.session_reference_rate.sel(condition="tbs").values
    np.testing.assert_array_equal(ref, ds.session_reference_rate.sel(condition="tbs_pt_silenced"))
    assert (ref == ref[0]).all() and not np.array_equal(
        ref[0], ds.baseline_rate.sel(condition="tbs").values
    )
    assert np.isnan(ds.session_reference_rate.sel(condition="control")).all()
    for c in ("tbs", "tbs_pt_silenced"):
        for s in range(n_s):
            rates = ds.session_rate.sel(condition=c).isel(session=s).values
            spikes = SP.excess_release_spikes(rates, ref[s], sess_len, POPS, tree)
            assert ds.session_dopamine.sel(condition=c).isel(session=s) == SP.session_dopamine(
                np.zeros(1), 0.0, tree, spikes
            )
    da = ds.session_dopamine.sel(condition="tbs").values
    assert (da > 0).all()
    gate = ds.session_da_gate.sel(condition="tbs")
    # population means of the per-cell gate: D1 cells (IT, PT) and D2 cells (PT) raised
    assert (gate.sel(population="IT_L5") > 1).all() and (gate.sel(population="PT_L5") > 1).all()
    # silenced PT cells (a GIRK-like conductance) fire less under the same pulses and count as
    # they fire: less dopamine, a gate nearer 1
    pt = ds.session_rate.sel(population="PT_L5")
    assert (pt.sel(condition="tbs_pt_silenced") < pt.sel(condition="tbs")).all()
    assert (ds.session_dopamine.sel(condition="tbs_pt_silenced") < da).all()
    assert (
        ds.session_da_gate.sel(condition="tbs_pt_silenced", population="IT_L5")
        < gate.sel(population="IT_L5")
    ).all()
    assert np.isfinite(
        ds.session_nmda_excess.sel(condition="tbs", population=["IT_L23", "IT_L5", "PT_L5"])
    ).all()
    assert (ds.session_drive.sel(condition="tbs", population="IT_L5") > 0).all()


def test_spec_with_an_unknown_release_population_fails_before_any_run(monkeypatch):
    from cortexsim.experiment import spec as spec_mod

    real = spec_mod.model_trees

    def with_vip(*a, **k):
        trees = real(*a, **k)
        trees["structural"] = _tree_with_release("VIP")
        return trees

    monkeypatch.setattr(spec_mod, "model_trees", with_vip)
    with pytest.raises(InputError, match="structural.dopamine.release.VIP"):
        parse_spec(copy.deepcopy(SPEC))


# --------------------------------------------------------------------------- paired references
@pytest.fixture(scope="module")
def paired_run(tmp_path_factory):
    spec = copy.deepcopy(SPEC)
    spec["settings"]["session_reference"] = "each_session"
    spec["conditions"]["sham"] = {
        "stress": False,
        "protocol": {**PROTO, "sham": True},
        "intensity_pct_rmt": 120,
    }
    return Experiment.from_dict(spec).run(
        progress=False, checkpoint_dir=tmp_path_factory.mktemp("ck")
    )


def test_each_session_reference_is_the_session_without_its_stimulation(paired_run):
    """settings.session_reference = "each_session": a sham session is its own reference (it
    drives nothing, releases no dopamine); a stimulated session is counted against the same
    run without pulses and without silencing (same spine state, same noise as the session);
    every condition's sessions have their own noise (named random streams, cortexsim.rng), so
    the first sessions of the PT-silenced and the plain condition get different references,
    and later sessions get their own."""
    ds = paired_run.data
    exc = ["IT_L23", "IT_L5", "PT_L5"]
    sham = ds.sel(condition="sham")
    np.testing.assert_array_equal(sham.session_reference_rate.values, sham.session_rate.values)
    assert (sham.session_drive.sel(population=exc) == 0).all()
    assert (sham.session_nmda_excess.sel(population=exc) == 0).all()
    assert (sham.session_dopamine == 0).all()
    ref = ds.session_reference_rate
    assert not np.array_equal(
        ref.sel(condition="tbs").isel(session=0),
        ref.sel(condition="tbs_pt_silenced").isel(session=0),
    )
    tbs = ds.sel(condition="tbs")
    assert not np.array_equal(
        tbs.session_reference_rate.isel(session=0), tbs.session_reference_rate.isel(session=1)
    )
    # the pulses raise activity over the paired reference: dopamine and an IT drive
    assert (
        tbs.session_rate.sel(population=exc) > tbs.session_reference_rate.sel(population=exc)
    ).all()
    assert (tbs.session_dopamine > 0).all()
    assert (tbs.session_drive.sel(population="IT_L5") > 0).all()


def test_session_reference_setting_is_validated():
    spec = copy.deepcopy(SPEC)
    spec["settings"]["session_reference"] = "per_session"
    with pytest.raises(InputError, match="session_reference") as e:
        Experiment.from_dict(spec)
    assert "each_session" in str(e.value)
