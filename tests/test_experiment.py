"""Timeline runner (issue 4): spec validation, a tiny end-to-end run, reproducibility,
checkpoints, criteria computed from the data, slow-step convergence."""

import copy
import json
import zipfile

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.experiment import Experiment, parse_spec
from cortexsim.criteria import evaluate

PROTO = {"base": "itbs600", "n_pulses": 30, "sessions_per_day": 2, "session_interval_min": 5}

# each session simulates its first second (settings.session_sample_s; every pulse of every
# session: tests/test_any_protocol_runs.py), so the session build is the read-out build: one
# compiled network (scale 100, seed 3, 1-s phases), shared with tests/test_resume.py and
# tests/test_runner_parallel.py
TINY = {
    "experiment": {"name": "tiny", "seed": 3},
    "settings": {"scale": 100, "baseline_fast_s": 1.0, "slow_dt_h": 2.0, "session_sample_s": 1.0},
    "timeline": [
        {"kind": "baseline", "days": 1, "readout": "baseline"},
        {"kind": "stress", "days": 3, "hours_per_day": 6, "readout": "end_stress"},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 1, "readout": "24h"},
    ],
    "conditions": {
        "control": {"stress": False},
        "stress_tbs": {"protocol": PROTO, "intensity_pct_rmt": 120},
        "stress_tbs_silenced": {
            "protocol": PROTO,
            "intensity_pct_rmt": 120,
            "silence": ["IT_L23", "IT_L5"],
        },
    },
    "criteria": [
        {
            "name": "stress lowers spines",
            "var": "spine_density_rel",
            "condition": "stress_tbs",
            "readout": "end_stress",
            "populations": ["IT_L5", "PT_L5"],
            "op": "<",
            "value": 0.99,
        }
    ],
}


def _bad(mutate):
    spec = copy.deepcopy(TINY)
    mutate(spec)
    with pytest.raises(InputError) as e:
        parse_spec(spec)
    return str(e.value)


def test_spec_errors_name_the_field():
    assert "experiment.colour" in _bad(lambda s: s["experiment"].update(colour=1))
    assert "timeline[0].kind" in _bad(lambda s: s["timeline"][0].update(kind="nap"))
    msg = _bad(lambda s: s["conditions"]["control"].update(protocol="itbs9000"))
    assert "protocol" in msg and "itbs600" in msg
    msg = _bad(lambda s: s["conditions"]["control"].update(silence=["XX"]))
    assert "silence" in msg and "PT_L5" in msg
    assert "criteria[0].var" in _bad(lambda s: s["criteria"][0].update(var="nope"))
    assert "overrides.circuit.nope.x" in _bad(lambda s: s.update(overrides={"circuit.nope.x": 1.0}))
    assert "ablations" in _bad(lambda s: s.update(ablations=["everything"]))
    assert "settings.slow_dt_h" in _bad(lambda s: s["settings"].update(slow_dt_h=-1))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    ck = tmp_path_factory.mktemp("ck")
    res = Experiment.from_dict(TINY).run(progress=False, checkpoint_dir=ck)
    return res, ck


def test_outputs_dims_and_files(tiny_run, tmp_path):
    res, _ = tiny_run
    ds = res.data
    assert ds.spine_density.dims == ("condition", "population", "time_d")
    assert list(ds.condition.values) == ["control", "stress_tbs", "stress_tbs_silenced"]
    assert list(ds.readout.values) == ["baseline", "end_stress", "24h"]
    assert ds.session.size == 2
    assert np.isfinite(ds.session_rate.sel(condition="stress_tbs")).all()
    assert np.isnan(ds.session_rate.sel(condition="control")).all()
    # interneurons have no spine sites
    assert np.isnan(ds.spine_density.sel(population="PV")).all()
    cfg = json.loads(ds.attrs["config"])
    assert cfg["experiment"]["seed"] == 3
    # stress lowers spines, the unstressed control does not move much
    rel = ds.spine_density_rel
    t_end = float(ds.readout_time_d.sel(condition="stress_tbs", readout="end_stress"))
    assert float(rel.sel(condition="stress_tbs", population="PT_L5", time_d=t_end)) < 0.99
    assert abs(float(rel.sel(condition="control", population="PT_L5", time_d=t_end)) - 1) < 0.02
    out = res.save(tmp_path / "out")
    for f in ("results.nc", "summary.json", "report.md", "spine_density.png", "rates.png"):
        assert (out / f).is_file(), f
    summ = json.loads((out / "summary.json").read_text())
    assert summ["criteria"][0]["passed"] is True
    import xarray as xr

    back = xr.load_dataset(out / "results.nc")
    np.testing.assert_array_equal(back.spine_density.values, ds.spine_density.values)


def test_criterion_flips_when_data_change(tiny_run):
    res, _ = tiny_run
    ds = res.data.copy(deep=True)
    crit = TINY["criteria"]
    assert evaluate(ds, crit)[0]["passed"]
    ds["spine_density_rel"][:] = 1.2
    assert not evaluate(ds, crit)[0]["passed"]


def test_session_rate_criterion_is_the_mean_over_sessions(tiny_run):
    res, _ = tiny_run
    ds = res.data.copy(deep=True)
    crit = [
        {
            "name": "IT fires more than when silenced",
            "var": "session_rate",
            "condition": "stress_tbs",
            "minus_condition": "stress_tbs_silenced",
            "populations": ["IT_L5"],
            "op": ">",
            "value": 0.0,
        }
    ]
    parse_spec({**copy.deepcopy(TINY), "criteria": crit})  # a valid criterion
    out = evaluate(ds, crit)[0]
    expect = float(
        ds.session_rate.sel(condition="stress_tbs", population="IT_L5").mean()
        - ds.session_rate.sel(condition="stress_tbs_silenced", population="IT_L5").mean()
    )
    assert out["observed"]["IT_L5"] == pytest.approx(expect, abs=1e-6) and out["passed"]
    ds["session_rate"].loc[dict(condition="stress_tbs", population="IT_L5")] = 0.0
    assert not evaluate(ds, crit)[0]["passed"]


def test_same_seed_same_numbers_and_resume_from_checkpoint(tiny_run):
    res, ck = tiny_run
    files = sorted(ck.glob("*.ckpt.npz"))
    assert len(files) == 3  # one checkpoint per condition
    # read-outs of identical histories are measured once: the baseline of all three
    # conditions, the end of stress of the two stressed ones -> 1 + 2 + 3 of 3 x 3
    assert len(list((ck / "readouts").glob("*.json"))) == 6
    base = res.data.rate_readout.sel(readout="baseline").values
    np.testing.assert_array_equal(base[0], base[1])
    with zipfile.ZipFile(files[0]) as z:
        assert json.loads(z.read("meta.json"))["state"]["phase"] == len(TINY["timeline"])
    # fresh run, same seed: identical numbers
    again = Experiment.from_dict(TINY).run(progress=False)
    np.testing.assert_array_equal(again.data.spine_density.values, res.data.spine_density.values)
    np.testing.assert_array_equal(again.data.session_rate.values, res.data.session_rate.values)
    # (measured per condition without a checkpoint dir: shared read-outs change nothing)
    np.testing.assert_array_equal(again.data.rate_readout.values, res.data.rate_readout.values)
    np.testing.assert_array_equal(
        again.data.evoked_response.values, res.data.evoked_response.values
    )
    # resumed from the finished checkpoints: no phase is re-simulated, same numbers
    resumed = Experiment.from_dict(TINY).run(progress=False, checkpoint_dir=ck)
    np.testing.assert_array_equal(resumed.data.spine_density.values, res.data.spine_density.values)


def test_halving_slow_step_changes_headline_by_less_than_5_percent():
    spec = copy.deepcopy(TINY)
    spec["conditions"] = {"stress": {}}
    # same network as TINY (no new compile); ~2.5e4 spine sites per population group
    spec["timeline"] = [
        {"kind": "stress", "days": 14, "hours_per_day": 6, "readout": "end_stress"},
        {"kind": "rest", "days": 7, "readout": "7d"},
    ]
    spec["criteria"] = []
    out = {}
    for dt in (2.0, 1.0):
        spec["settings"]["slow_dt_h"] = dt
        ds = Experiment.from_dict(spec).run(progress=False).data
        out[dt] = np.array(
            [
                float(
                    ds.spine_density_rel.sel(
                        condition="stress",
                        population=p,
                        time_d=float(ds.readout_time_d.sel(condition="stress", readout=r)),
                    )
                )
                for p in ("IT_L5", "PT_L5")
                for r in ("end_stress", "7d")
            ]
        )
    assert np.all(out[1.0] < 0.95)  # stress removed spines
    # the headline outputs (relative spine densities) move by < 5 % when the step is halved
    assert np.all(np.abs(out[2.0] - out[1.0]) / out[1.0] < 0.05), out


def test_every_shipped_spec_validates():
    from pathlib import Path
    from cortexsim.experiment import load_experiment
    import tomllib

    specs = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.toml"))
    # sweep, fit and sensitivity specs ([sweep]/[fit]/[sensitivity]) are tested in test_sweep
    specs = [
        p
        for p in specs
        if "experiment" in tomllib.loads(p.read_text()) or "extends" in tomllib.loads(p.read_text())
    ]
    assert {p.stem for p in specs} >= {
        "aitbs_study",
        "protocol_comparison",
        "tiny",
        "whatif_slice_calcium",
    }
    for p in specs:
        exp = load_experiment(p)
        assert exp.spec["conditions"], p


# --------------------------------------------------------------------------- sampled sessions
def test_session_sample_and_by_scale_settings_are_validated():
    assert "settings.session_sample_s" in _bad(
        lambda s: s["settings"].update(session_sample_s="some")
    )
    assert "settings.session_sample_s" in _bad(lambda s: s["settings"].update(session_sample_s=-5))
    msg = _bad(lambda s: s["settings"].update(by_scale={"huge": {"session_sample_s": 10}}))
    assert "settings.by_scale" in msg and "small" in msg
    assert "settings.by_scale.small.colour" in _bad(
        lambda s: s["settings"].update(by_scale={"small": {"colour": 1}})
    )
    assert "settings.by_scale.small.session_sample_s" in _bad(
        lambda s: s["settings"].update(by_scale={"small": {"session_sample_s": 0}})
    )


def test_by_scale_settings_apply_at_their_scale_and_the_counts_nearest_it():
    spec = copy.deepcopy(TINY)
    del spec["settings"]["session_sample_s"]  # the default ("all") outside by_scale
    spec["settings"]["by_scale"] = {"small": {"session_sample_s": 10.0, "slow_dt_h": 1.0}}
    exp = Experiment.from_dict(spec)
    small = exp.resolved_config(scale="small")["settings"]
    assert small["session_sample_s"] == 10.0 and small["slow_dt_h"] == 1.0
    other = exp.resolved_config(scale="default")["settings"]
    assert other["session_sample_s"] == "all" and other["slow_dt_h"] == 2.0
    # a neuron count takes the table of the largest named scale not above it (or the
    # smallest): 300 neurons -> small's, 5,000 -> default's (issue 9: a numeric --scale silently
    # dropped the small-scale session sampling)
    at300 = exp.resolved_config(scale=300)["settings"]
    assert at300["session_sample_s"] == 10.0 and at300["settings_scale"] == "small"
    assert exp.resolved_config(scale=5000)["settings"]["session_sample_s"] == "all"


def test_simulated_session_length_is_whole_train_periods():
    from cortexsim.experiment.phases import _simulated_session_s
    from cortexsim.protocols import get_protocol

    itbs = get_protocol("itbs1800")  # 2 s trains every 10 s, 591.84 s
    full = itbs.duration_s + 1.0
    assert _simulated_session_s(itbs, full, "all") == full
    assert _simulated_session_s(itbs, full, 10.0) == 10.0
    assert _simulated_session_s(itbs, full, 25.0) == 20.0  # two whole periods
    assert _simulated_session_s(itbs, full, 4.0) == 10.0  # at least one period
    assert _simulated_session_s(itbs, full, 1e4) == full
    r10 = get_protocol("rtms10hz")  # 4 s trains every 30 s
    assert _simulated_session_s(r10, r10.duration_s + 1, 10.0) == 30.0
    r1 = get_protocol("rtms1hz")  # one continuous 900-s train
    assert _simulated_session_s(r1, r1.duration_s + 1, 10.0) == 10.0
    assert _simulated_session_s(None, 1.0, 10.0) == 1.0


def test_study_spec_reduced_run_writes_every_output(tmp_path):
    """experiments/aitbs_study.toml itself at reduced size (100 neurons, 1-s fast phases, the
    first second of each session simulated): every output with the right dims, one criterion
    per finding, the report's tables.  Seed and phase lengths of TINY: the same compiled
    network."""
    import xarray as xr
    from pathlib import Path
    from cortexsim.params import read_toml
    from cortexsim.results import Results

    raw = read_toml(Path(__file__).resolve().parent.parent / "experiments" / "aitbs_study.toml")
    raw["experiment"]["seed"] = TINY["experiment"]["seed"]
    raw["settings"].update(
        scale=100, slow_dt_h=4.0, baseline_fast_s=1.0, session_sample_s=1.0, by_scale={}
    )
    res = Experiment.from_dict(raw).run(progress=False, checkpoint_dir=tmp_path / "ck")
    out = res.save(tmp_path / "out")
    for f in (
        "results.nc",
        "summary.json",
        "report.md",
        "spine_density.png",
        "rates.png",
        "conditions.png",
    ):
        assert (out / f).is_file(), f
    ds = xr.load_dataset(out / "results.nc")
    assert ds.spine_density.dims == ("condition", "population", "time_d")
    assert list(ds.condition.values) == [
        "control",
        "stress",
        "stress_sham",
        "stress_aitbs",
        "stress_aitbs_it_silenced",
    ]
    assert list(ds.readout.values) == ["baseline", "end_stress", "24h", "7d"]
    assert ds.sizes["session"] == 10
    assert np.isfinite(ds.session_dw.sel(condition="stress_aitbs").values[:, :3]).all()
    assert np.isnan(ds.session_dw.sel(condition="control").values).all()
    assert json.loads(ds.attrs["config"])["settings"]["session_sample_s"] == 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["criteria"]) == 7
    assert all(set(c) >= {"name", "expected", "observed", "passed"} for c in summary["criteria"])
    report = (out / "report.md").read_text()
    assert "Stimulation day per condition" in report and "first 1 s of each session" in report
    assert Results.load(out).criteria == summary["criteria"]


def test_spec_extends_another_spec(tmp_path):
    from cortexsim.experiment import load_experiment

    base = tmp_path / "base.toml"
    base.write_text(
        '[experiment]\nname = "base"\nseed = 2\n[settings]\nscale = 100\n'
        '[[timeline]]\nkind = "baseline"\ndays = 1\nreadout = "b"\n'
        "[conditions.control]\nstress = false\n"
    )
    child = tmp_path / "child.toml"
    child.write_text(
        'extends = "base.toml"\n[experiment]\nname = "child"\n'
        "[settings]\nslow_dt_h = 3.0\n[conditions.stressed]\nstress = true\n"
        '[overrides]\n"synaptic.calcium.c_pre" = 0.3\n'
    )
    spec = load_experiment(child).spec
    assert spec["experiment"]["name"] == "child" and spec["experiment"]["seed"] == 2
    assert spec["settings"]["scale"] == 100 and spec["settings"]["slow_dt_h"] == 3.0
    assert list(spec["conditions"]) == ["control", "stressed"]
    assert spec["overrides"] == {"synaptic.calcium.c_pre": 0.3}
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    with pytest.raises(InputError, match="circular"):
        load_experiment(loop)
    missing = tmp_path / "missing.toml"
    missing.write_text('extends = "nowhere.toml"\n')
    with pytest.raises(InputError, match="not found"):
        load_experiment(missing)
