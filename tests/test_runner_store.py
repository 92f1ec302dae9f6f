"""The runner's state, recorder and store without a network: checkpoints round-trip exactly
(arrays + JSON, no pickles), keys ignore criteria but not model files or other settings,
unreadable files are ignored, shared read-outs are measured once, conditions join with NaN
where one lacks a time point or session."""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest

from cortexsim.experiment import parse_spec
from cortexsim.experiment.recorder import Recorder
from cortexsim.experiment.state import ConditionState
from cortexsim.experiment.store import (
    CheckpointStore,
    ReadoutStore,
    code_version,
    condition_key,
    models_version,
)
from cortexsim.plasticity.structural import SpineState
from cortexsim.populations import POPULATIONS

RAW = {
    "experiment": {"name": "keys", "seed": 1},
    "settings": {"scale": 100},
    "timeline": [
        {"kind": "baseline", "days": 1, "readout": "baseline"},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 1, "readout": "24h"},
    ],
    "conditions": {
        "control": {"stress": False},
        "stim": {"stress": False, "protocol": "itbs600", "intensity_pct_rmt": 90.0},
    },
    "criteria": [
        {
            "name": "c",
            "var": "spine_density",
            "condition": "stim",
            "readout": "24h",
            "populations": ["IT_L5"],
            "op": ">",
            "value": 0.0,
        }
    ],
}


def _state_and_recorder(seed=0, n_sites=500, n_cells=40):
    rng = np.random.default_rng(seed)
    spines = SpineState(rng.integers(0, 3, n_sites), rng.random(n_sites))
    state = ConditionState(
        spines,
        sites={"rho": rng.random(n_sites)},
        prev_on=(rng.random(n_sites) > 0.5).astype(float),
        drive=rng.normal(size=n_cells),
        k_step=37,
        t_d=0.1 + 0.2,
        phase=2,
        session=1,
        formed=5,
        eliminated=3,
    )
    site_pop = rng.integers(0, 3, n_sites)
    rec = Recorder(POPULATIONS, site_pop)
    rec.sample(state)
    state.t_d += 1 / 3
    state.formed = 4
    rec.sample(state)
    n = len(POPULATIONS)
    rec.session(
        rng.random(n),
        rng.random(n),
        rng.random(n),
        dopamine=rng.random(),
        gate=rng.random(n),
        nmda_excess=rng.random(n),
        drive=rng.random(n),
        reference_rate=rng.random(n),
    )
    rec.snapshot("baseline", state)
    return state, rec


def _save(store, key, state, rec):
    a, s = state.to_arrays()
    ra, rm = rec.to_arrays()
    return store.save("stim", key, {**a, **ra}, {"state": s, "recorder": rm})


def test_checkpoint_round_trips_every_field_exactly(tmp_path):
    state, rec = _state_and_recorder()
    store = CheckpointStore(tmp_path)
    p = _save(store, "k1", state, rec)
    with zipfile.ZipFile(p) as z:  # explicit arrays plus readable JSON, no pickles
        names = z.namelist()
        assert "meta.json" in names and all(n.endswith(".npy") for n in names if n != "meta.json")
        assert json.loads(z.read("meta.json"))["state"]["t_d"] == state.t_d
    arrays, meta = store.load("stim", "k1")
    back = ConditionState.from_arrays(arrays, meta["state"])
    rback = Recorder.from_arrays(POPULATIONS, rec.site_pop, arrays, meta["recorder"])
    for f in ("prev_on", "drive"):
        np.testing.assert_array_equal(getattr(back, f), getattr(state, f))
    assert set(back.sites) == set(state.sites) == {"rho"}
    np.testing.assert_array_equal(back.sites["rho"], state.sites["rho"])
    np.testing.assert_array_equal(back.spines.state, state.spines.state)
    np.testing.assert_array_equal(back.spines.weight, state.spines.weight)
    for f in ("k_step", "t_d", "phase", "session", "formed", "eliminated"):
        assert getattr(back, f) == getattr(state, f), f
    assert rback.t_d == rec.t_d and rback.formed == rec.formed == [5, 4]
    for f in (
        "density",
        "weight",
        "session_rate",
        "session_dw",
        "session_ltp_time",
        "session_dopamine",
        "session_da_gate",
        "session_nmda_excess",
        "session_drive",
        "session_reference_rate",
    ):
        np.testing.assert_array_equal(np.array(getattr(rback, f)), np.array(getattr(rec, f)))
    snap, snap0 = rback.snapshots["baseline"], rec.snapshots["baseline"]
    assert snap.t_d == snap0.t_d
    np.testing.assert_array_equal(snap.on, snap0.on)
    np.testing.assert_array_equal(snap.sites["rho"], snap0.sites["rho"])
    # another key is not this checkpoint; a new key's save removes the stale one
    assert store.load("stim", "k2") is None
    _save(store, "k2", state, rec)
    assert [q.name for q in tmp_path.glob("*.ckpt.npz")] == ["stim.k2.ckpt.npz"]


def test_unreadable_checkpoint_is_ignored_and_objects_are_refused(tmp_path):
    state, rec = _state_and_recorder()
    store = CheckpointStore(tmp_path)
    p = _save(store, "k1", state, rec)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # truncated by a full disk
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        assert store.load("stim", "k1") is None
    with pytest.raises(TypeError, match="Python objects"):
        store.save("stim", "k1", {"x": np.array([{}], dtype=object)}, {})
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_checkpoint_key_ignores_criteria_and_other_conditions_only():
    cfg = parse_spec(copy.deepcopy(RAW))
    v = code_version()
    k = condition_key(cfg, "stim", v)
    c2 = copy.deepcopy(cfg)
    c2["criteria"][0]["value"] = 0.5
    c2["conditions"]["control"]["stress"] = True
    assert condition_key(c2, "stim", v) == k
    c3 = copy.deepcopy(cfg)
    c3["settings"]["slow_dt_h"] = 0.5
    assert condition_key(c3, "stim", v) != k
    c4 = copy.deepcopy(cfg)
    c4["conditions"]["stim"]["intensity_pct_rmt"] = 80.0
    assert condition_key(c4, "stim", v) != k
    assert condition_key(cfg, "stim", v + "x") != k


def test_code_version_follows_the_model_files(tmp_path, monkeypatch):
    import shutil

    from cortexsim.params import models_dir

    before, mv = code_version(), models_version()
    shutil.copytree(models_dir(), tmp_path / "m")
    monkeypatch.setenv("CORTEXSIM_MODELS", str(tmp_path / "m"))
    assert models_version() == mv and code_version() == before
    f = tmp_path / "m" / "stress.toml"
    f.write_text(f.read_text() + "\n# a comment is a change too\n")
    assert models_version() != mv and code_version() != before


def test_shared_readout_is_measured_once(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return {"rates": {"PV": 1.25}, "evoked": {"PV": float("nan")}}

    store = ReadoutStore(tmp_path)
    ident = ["v", np.arange(5, dtype=np.int8), 0.1]
    a = store.get(ident, measure)
    b = store.get(list(ident), measure)
    assert calls == [1] and a["rates"] == b["rates"] and np.isnan(b["evoked"]["PV"])
    store.get(["v", np.arange(5, dtype=np.int16), 0.1], measure)  # dtype is identity
    assert calls == [1, 1]
    ReadoutStore(None).get(ident, measure)
    assert calls == [1, 1, 1]


def test_shared_readout_busy_elsewhere_is_left_for_later(tmp_path):
    """wait=False: a read-out another process is measuring now returns None at once without
    measuring (the runner measures its other read-outs first, then waits for it)."""
    import subprocess
    import sys
    from cortexsim.experiment.store import digest

    calls = []

    def measure():
        calls.append(1)
        return {"rates": {"PV": 2.0}}

    store = ReadoutStore(tmp_path)
    ident = ["v", np.arange(3), 0.2]
    lock = str(tmp_path / f"{digest(*ident)}.json") + ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom filelock import FileLock\n"
            f"held = FileLock({lock!r})\nheld.acquire()\nprint('held', flush=True)\n"
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert store.get(ident, measure, wait=False) is None
        assert calls == []
    finally:
        holder.kill()
        holder.wait()
    assert store.get(ident, measure, wait=False) == {"rates": {"PV": 2.0}}
    assert calls == [1]
    assert store.get(ident, measure) == {"rates": {"PV": 2.0}} and calls == [1]


def test_conditions_join_with_nan_where_one_lacks_points(tmp_path):
    from cortexsim.results import Results

    labels = ["baseline"]
    ro = {
        "baseline": {
            "rates": dict.fromkeys(POPULATIONS, 2.0),
            "evoked": dict.fromkeys(POPULATIONS, 0.5),
        }
    }
    base = dict.fromkeys(POPULATIONS, 1.0)
    ltp0 = np.full(len(POPULATIONS), 0.01)
    _, a = _state_and_recorder(0)
    _, b = _state_and_recorder(1)
    b.t_d[1] += 0.25  # a time point the other lacks
    for f in (
        "session_rate",
        "session_dw",
        "session_ltp_time",
        "session_dopamine",
        "session_da_gate",
        "session_nmda_excess",
        "session_drive",
        "session_reference_rate",
    ):
        setattr(b, f, [])  # no sessions
    cfg = {**parse_spec(copy.deepcopy(RAW)), "criteria": []}
    res = Results.from_conditions(
        cfg,
        {
            "stim": a.dataset("stim", labels, ro, base, ltp0),
            "control": b.dataset("control", labels, ro, base, ltp0),
        },
        {"stim": {}, "control": {}},
    )
    ds = res.data
    assert list(ds.condition.values) == ["stim", "control"]
    assert ds.spine_density.dims == ("condition", "population", "time_d")
    assert ds.sizes["time_d"] == 3 and ds.sizes["session"] == 1
    assert np.isnan(ds.formed.sel(condition="control")).sum() == 1
    assert np.isnan(ds.session_rate.sel(condition="control")).all()
    assert np.isfinite(ds.session_rate.sel(condition="stim", population="PV")).all()
    # populations without spine sites (here 3, 4) are NaN in the spine and LTP-time variables
    assert np.isnan(ds.spine_density.sel(population=POPULATIONS[3])).all()
    assert np.isnan(ds.session_ltp_time.sel(population=POPULATIONS[4])).all()
    np.testing.assert_array_equal(
        ds.spine_density.sel(condition="stim").dropna("time_d", how="all").values[:3],
        np.array(a.density).T[:3],
    )
    assert ds.spine_density_rel.sel(condition="control").isel(time_d=0).dropna(
        "population"
    ).values.tolist() == [1.0, 1.0, 1.0]
