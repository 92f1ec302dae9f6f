"""Search throughput (issue 21): what a sweep point no longer repeats -- sessions whose network
outcome another point stored, read-outs that nothing reads, pass 1 and builds -- gives the same
numbers, bit for bit, as the whole run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cortexsim.experiment import Experiment, read_spec
from cortexsim.experiment import phase_states as PS
from cortexsim.experiment.readouts import covers, needed_readouts

ROOT = Path(__file__).resolve().parent.parent
TINY = read_spec(ROOT / "experiments/tiny.toml")
PROTO = {"n_pulses": 30, "sessions_per_day": 3}


def _raw(gain: float) -> dict:
    """The smoke-test spec with three short sessions per condition (sham, aiTBS, aiTBS with IT
    silenced), each counted against its own reference run, NMDA spinogenesis at ``gain``; the
    session sample is the read-out length (one build)."""
    raw = copy.deepcopy(TINY)
    raw["settings"].update(
        scale=50,
        baseline_fast_s=0.4,
        session_tail_s=0.1,
        session_sample_s=0.4,
        slow_dt_h=4.0,
        session_reference="each_session",
    )
    raw["timeline"] = [
        {"kind": "baseline", "days": 0.5, "readout": "baseline"},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 0.5, "readout": "24h"},
    ]
    stim = {"protocol": {"base": "aitbs_day", **PROTO}, "intensity_pct_rmt": 90, "stress": False}
    raw["conditions"] = {
        "sham": {"protocol": {"base": "sham_aitbs_day", **PROTO}, "stress": False},
        "stim": stim,
        "silenced": {**stim, "silence": ["IT_L5"]},
    }
    raw["criteria"] = [
        {
            "name": "IT rate at 24 h",
            "var": "rate_readout",
            "condition": "stim",
            "minus_condition": "sham",
            "readout": "24h",
            "populations": ["IT_L5"],
            "op": ">",
            "value": -100.0,
        }
    ]
    raw["overrides"] = {
        "mechanisms.nmda_spinogenesis.enabled": True,
        "structural.activity.nmda_gain": gain,
    }
    return raw


def _run(gain: float, **kw):
    return Experiment.from_dict(_raw(gain)).run(progress=False, **kw).data


@pytest.fixture(scope="module")
def whole_run():
    """Point ``nmda_gain = 200`` simulated whole, as before issue 21 (no sharing)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CORTEXSIM_PHASE_STATES", "0")
    try:
        return _run(200.0)
    finally:
        mp.undo()


def test_a_sweep_point_reuses_stored_sessions_bit_for_bit(tmp_path, monkeypatch, whole_run):
    """The sham condition's sessions drive nothing, so its state never depends on the drive's
    parameters: every later point loads its sessions; the stimulated conditions' first sessions
    start from the shared history and are loaded too.  The point is bit-identical to its whole
    run, and its worker process builds no network again."""
    from cortexsim.circuit import network

    shared = tmp_path / "shared"
    with PS.shared_dir(shared):
        _run(50.0)
        stored = sorted((shared / "sessions").glob("*.npz"))
        # 3 sham sessions, the first of aiTBS and of silenced
        assert len(stored) == 5
        hits, builds = [], []
        load, init = PS.PhaseStateStore.load, network.Circuit.__init__

        def spy_load(self, key):
            got = load(self, key)
            if self.directory.name == "sessions":
                hits.append(got is not None)
            return got

        def spy_init(self, *a, **k):
            builds.append(1)
            init(self, *a, **k)

        monkeypatch.setattr(PS.PhaseStateStore, "load", spy_load)
        monkeypatch.setattr(network.Circuit, "__init__", spy_init)
        got = _run(200.0)
    assert sum(hits) == 5 and len(hits) == 9  # 3 sessions x 3 conditions asked
    assert not builds  # the process's latest build is re-run
    assert len(list((shared / "sessions").glob("*.npz"))) == 5
    xr.testing.assert_equal(got, whole_run)  # bit for bit (NaN where NaN)


def test_only_the_read_outs_a_sweep_reads_are_measured(tmp_path, whole_run):
    """A sweep point measures the read-outs its metrics and criteria read (here: the rates of
    stim and sham at 24 h); the others are NaN, everything else is the whole run's; a task that
    reads one it skipped runs again."""
    from cortexsim.sweep import build_runs
    from cortexsim.sweep.executor import run_point
    from cortexsim.sweep.store import PointStore

    metrics = [
        {
            "name": "it5",
            "var": "spine_density_rel",
            "condition": "stim",
            "minus_condition": "sham",
            "readout": "24h",
            "population": "IT_L5",
        },
        {
            "name": "silenced",
            "var": "spine_density_rel",
            "condition": "silenced",
            "minus_condition": "sham",
            "readout": "24h",
            "population": "IT_L5",
        },
    ]
    store = tmp_path / "store"
    base = _raw(200.0)
    (task,) = build_runs(base, [{}], [1], None, metrics, store)
    rec = run_point(task)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["readouts"] == {"stim": {"24h": "rates"}, "sham": {"24h": "rates"}}
    ds = xr.load_dataset(PointStore(store).results_path(task["key"]))
    ro = ["rate_readout", "evoked_response"]
    xr.testing.assert_equal(ds.drop_vars(ro), whole_run.drop_vars(ro))
    for c in ("stim", "sham"):
        sel = {"condition": c, "readout": "24h"}
        assert np.array_equal(ds.rate_readout.sel(sel), whole_run.rate_readout.sel(sel))
        assert np.isnan(ds.rate_readout.sel(condition=c, readout="baseline")).all()
    assert np.isnan(ds.rate_readout.sel(condition="silenced")).all()
    assert np.isnan(ds.evoked_response).all()
    st = PointStore(store)
    assert st.reusable(task)
    wants_evoked = dict(
        task,
        metrics=[
            *metrics,
            {
                "name": "ev",
                "var": "evoked_response",
                "condition": "stim",
                "readout": "baseline",
                "population": "IT_L5",
            },
        ],
    )
    assert not st.reusable(wants_evoked)  # run again, not recomputed from NaN


def test_needed_readouts_and_covers():
    items = [
        {"var": "spine_density_rel", "condition": "a", "readout": "24h"},
        {"var": "rate_readout", "condition": "a", "minus_condition": "b", "readout": "24h"},
        {"var": "evoked_response", "condition": "a", "readout": "24h"},
        {"var": "rate_readout", "condition": "c", "readout": None},
        {"criterion": "x", "name": "m"},
    ]
    need = needed_readouts(items, ["a", "b", "c"], ["baseline", "24h"])
    assert need == {
        "a": {"24h": "evoked"},
        "b": {"24h": "rates"},
        "c": {"baseline": "rates", "24h": "rates"},
    }
    assert covers(None, need) and covers(need, need) and covers(need, {})
    assert not covers({"a": {"24h": "rates"}}, {"a": {"24h": "evoked"}})
    assert not covers(need, {"b": {"baseline": "rates"}})
    assert not covers(need, None)


def test_pass_one_is_shared_by_points_that_vary_only_the_drive():
    from cortexsim.experiment.runner import _Runner

    def key(over):
        raw = _raw(200.0)
        raw["overrides"].update(over)
        cfg = Experiment.from_dict(raw).resolved_config()
        r = _Runner(cfg, progress=False)
        cond = cfg["conditions"]["stim"]
        trees = r._trees(cond)
        return r._rest_key(r._network_key(trees), cond, trees)

    base = key({})
    assert key({"structural.activity.nmda_gain": 5.0}) == base
    assert key({"structural.activity.drive_max": 3.0}) == base
    assert key({"structural.formation.drive_gain": 7.0}) != base


# ------------------------------------------------------------------ the opt-in approximation
def test_session_stride_is_off_by_default_and_absent_from_the_config():
    cfg = Experiment.from_dict(_raw(200.0)).resolved_config()
    assert "session_stride" not in cfg["settings"]
    raw = _raw(200.0)
    raw["settings"]["session_stride"] = 2
    assert Experiment.from_dict(raw).resolved_config()["settings"]["session_stride"] == 2
    from cortexsim.errors import InputError

    raw["settings"]["session_stride"] = 0
    with pytest.raises(InputError, match="session_stride"):
        Experiment.from_dict(raw)


def test_session_stride_resumes_a_stopped_run_exactly(tmp_path, monkeypatch):
    """With ``session_stride = 2`` the unsimulated sessions repeat the latest simulated one; a
    run stopped after a simulated session resumes from its checkpoint (the carried outcome is
    part of it) as the uninterrupted run goes on."""
    from cortexsim.experiment import phases

    raw = _raw(200.0)
    raw["settings"]["session_stride"] = 2
    raw["conditions"] = {"stim": raw["conditions"]["stim"]}
    raw["criteria"] = []
    exp = Experiment.from_dict(raw)
    whole = exp.run(progress=False).data
    runs = []
    outcome = phases.ConditionRun._session_outcome

    def counted(self, s_i, *a, **k):
        runs.append(s_i)
        return outcome(self, s_i, *a, **k)

    monkeypatch.setattr(phases.ConditionRun, "_session_outcome", counted)
    session = phases.ConditionRun.session

    def stop_at_1(self, s_i, *a, **k):
        if s_i == 1:
            raise KeyboardInterrupt
        return session(self, s_i, *a, **k)

    monkeypatch.setattr(phases.ConditionRun, "session", stop_at_1)
    with pytest.raises(KeyboardInterrupt):
        exp.run(progress=False, checkpoint_dir=tmp_path)
    monkeypatch.setattr(phases.ConditionRun, "session", session)
    assert runs == [0]
    got = exp.run(progress=False, checkpoint_dir=tmp_path).data
    assert runs == [0, 2]  # session 1 carried from the checkpoint, 2 simulated
    xr.testing.assert_equal(got, whole)
    # the sessions differ from the exact path's only where carried
    raw["settings"].pop("session_stride")
    exact = Experiment.from_dict(raw).run(progress=False).data
    rate = {k: ds.session_rate.sel(condition="stim") for k, ds in (("e", exact), ("a", got))}
    assert np.array_equal(rate["e"][0], rate["a"][0])
    assert np.array_equal(rate["a"][1], rate["a"][0])
    assert not np.array_equal(rate["e"][1], rate["a"][1])
