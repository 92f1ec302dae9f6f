"""Sweep specs, designs, the point store and failing runs (no network is simulated here)."""

import json

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.errors import InputError
from cortexsim.params import experiments_dir
from cortexsim.sweep import build_runs, load_sweep
from cortexsim.sweep.design import design_points
from cortexsim.sweep.executor import run_point
from cortexsim.sweep.spec import SweepSpec, apply_params, validate
from cortexsim.sweep.store import PointStore, atomic_write, point_key

TINY = (experiments_dir() / "tiny.toml").read_text()  # the shipped smoke-test spec

SWEEP = """
[sweep]
name = "s"
base = "tiny.toml"
design = "grid"
seeds = [1]
[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
values = [60, 120]
[[parameters]]
path = "structural.activity.ltp_gain"
low = 0.1
high = 1.0
n = 3
log = true
[[metrics]]
name = "it5"
var = "spine_density_rel"
condition = "stim"
minus_condition = "control"
readout = "24h"
population = "IT_L5"
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    return tmp_path


def _write(folder, text, **replace):
    for a, b in replace.items():
        text = text.replace(a.replace("__", " "), b)
    p = folder / "sw.toml"
    p.write_text(text)
    return p


def test_grid_points_and_runs_are_validated_up_front(folder):
    sw = load_sweep(_write(folder, SWEEP))
    assert len(sw.points) == 6
    gains = sorted({p["structural.activity.ltp_gain"] for p in sw.points})
    assert gains == pytest.approx([0.1, 0.1**0.5, 1.0])
    tasks = sw.tasks(100, folder / "store")
    assert len({t["key"] for t in tasks}) == 6
    t = tasks[0]
    assert t["raw"]["overrides"]["structural.activity.ltp_gain"] == pytest.approx(0.1)
    assert t["raw"]["conditions"]["stim"]["intensity_pct_rmt"] == 60


@pytest.mark.parametrize(
    "old, new, field",
    [
        (
            'path = "structural.activity.ltp_gain"',
            'path = "structural.activity.nope"',
            "structural.activity.nope",
        ),
        (
            'path = "conditions.stim.intensity_pct_rmt"',
            'path = "conditions.stimm.intensity_pct_rmt"',
            "parameters.conditions.stimm.intensity_pct_rmt",
        ),
        (
            'path = "conditions.stim.intensity_pct_rmt"',
            'path = "conditions.stim.colour"',
            "conditions.stim.colour",
        ),
        ('path = "conditions.stim.intensity_pct_rmt"', 'path = "banana.x"', "parameters.banana.x"),
        ("values = [60, 120]", "values = []", "sweep spec.parameters[0]"),
        ("low = 0.1", "low = 2.0", "sweep spec.parameters[1]"),
        ("low = 0.1", "low = true", "sweep spec.parameters[1].low"),
        ("n = 3", 'n = "3"', "sweep spec.parameters[1].n"),
        # non-finite numbers: the experiment spec's number check (one validator path)
        ("values = [60, 120]", "values = [60, inf]", "sweep spec.parameters[0].values[1]"),
        ("values = [60, 120]", "values = [nan]", "sweep spec.parameters[0].values[0]"),
        ("high = 1.0", "high = inf", "sweep spec.parameters[1].high"),
        ("low = 0.1", "low = -inf", "sweep spec.parameters[1].low"),
        ('design = "grid"', 'design = "random"', "sweep spec.sweep.design"),
        ("seeds = [1]", "seeds = [1]\ncolour = 2", "sweep spec.sweep.colour"),
        ('condition = "stim"', 'condition = "stimm"', "metrics[0].condition"),
        ('var = "spine_density_rel"', 'var = "spines"', "metrics[0].var"),
        ("values = [60, 120]", "values = [60, -5]", "conditions.stim.intensity_pct_rmt"),
        ('base = "tiny.toml"', 'base = "missing.toml"', "sweep.base"),
    ],
)
def test_bad_sweep_specs_exit_2_naming_the_field(folder, capsys, old, new, field):
    assert old in SWEEP
    p = folder / "sw.toml"
    p.write_text(SWEEP.replace(old, new, 1))
    rc = main(["sweep", str(p), "--out", str(folder / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and field in err, err
    assert not (folder / "out" / "store").exists() or not any((folder / "out" / "store").iterdir())


@pytest.mark.parametrize("design", ["sobol", "lhs"])
def test_sample_designs_are_reproducible_from_their_seed(design):
    def spec(seed):
        return validate(
            SweepSpec,
            {
                "sweep": {
                    "name": "x",
                    "base": "b",
                    "design": design,
                    "n_samples": 8,
                    "sample_seed": seed,
                },
                "parameters": [
                    {"path": "structural.a", "low": 0.5, "high": 2.0},
                    {"path": "structural.b", "low": 1e-3, "high": 1.0, "log": True},
                ],
                "metrics": [{"name": "m", "var": "v", "condition": "c"}],
            },
            "sweep spec",
        )

    a, b, c = design_points(spec(4)), design_points(spec(4)), design_points(spec(5))
    assert a == b and a != c and len(a) == 8
    x = np.array([[p["structural.a"], p["structural.b"]] for p in a])
    assert np.all((x[:, 0] >= 0.5) & (x[:, 0] <= 2.0))
    assert np.all((x[:, 1] >= 1e-3) & (x[:, 1] <= 1.0))
    # log: about half of the samples lie below the geometric middle (0.03), not 2 %
    assert 2 <= np.sum(x[:, 1] < 10**-1.5) <= 6


def test_list_design_and_spec_paths(folder):
    text = SWEEP.split("[[parameters]]")[0].replace('design = "grid"', 'design = "list"')
    text += (
        '[[points]]\n"structural.activity.ltp_gain" = 0.5\n'
        '[[points]]\n"timeline.0.days" = 2\n' + SWEEP[SWEEP.index("[[metrics]]") :]
    )
    sw = load_sweep(_write(folder, text))
    assert sw.points == [{"structural.activity.ltp_gain": 0.5}, {"timeline.0.days": 2}]
    raw = apply_params(sw.base_raw, sw.points[1])
    assert raw["timeline"][0]["days"] == 2 and sw.base_raw["timeline"][0]["days"] == 1


def test_store_writes_are_atomic_and_keys_follow_the_config(tmp_path):
    def boom(t):
        t.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "r.json", boom)
    assert list(tmp_path.iterdir()) == []
    raw = {"a": {"b": 1}}
    k = point_key(raw, 1, 100, "c")
    assert k == point_key({"a": {"b": 1}}, 1, 100, "c")
    assert (
        len(
            {
                k,
                point_key(raw, 2, 100, "c"),
                point_key({"a": {"b": 2}}, 1, 100, "c"),
                point_key(raw, 1, 200, "c"),
                point_key(raw, 1, 100, "d"),
            }
        )
        == 5
    )
    store = PointStore(tmp_path)
    store.put(k, {"status": "ok", "x": np.float64(1.5)})
    assert store.get(k)["x"] == 1.5 and store.done(k) and store.keys() == [k]


def test_a_failing_run_is_recorded_with_its_error(folder):
    sw = load_sweep(_write(folder, SWEEP))
    task = sw.tasks(100, folder / "store")[0]
    task["raw"]["conditions"]["stim"]["protocol"] = "no_such_protocol"  # fails inside the run
    rec = run_point(task)
    assert rec["status"] == "error" and "no_such_protocol" in rec["error"]
    on_disk = json.loads((folder / "store" / f"{task['key']}.json").read_text())
    assert on_disk["error"] == rec["error"]
    assert not PointStore(folder / "store").done(task["key"])  # a re-run tries it again


def test_points_are_rejected_before_anything_runs(folder):
    sw = load_sweep(_write(folder, SWEEP))
    with pytest.raises(InputError, match="point 1"):
        build_runs(
            sw.base_raw,
            [{"structural.activity.ltp_gain": 0.5}, {"conditions.stim.intensity_pct_rmt": "high"}],
            [1],
            100,
            [],
            folder / "store",
        )
    assert not (folder / "store").exists()


def test_shipped_sweep_fit_and_sensitivity_specs_validate(tmp_path):
    from cortexsim.params import experiments_dir
    from cortexsim.sweep import fit, sensitivity

    d = experiments_dir()
    sweeps = sorted(d.glob("sweep_*.toml"))
    fits = sorted(d.glob("fit_*.toml"))
    senss = sorted(d.glob("sensitivity_*.toml"))
    assert sweeps and fits and senss
    for p in sweeps:
        sw = load_sweep(p)
        assert len(sw.tasks(None, tmp_path / "s")) == len(sw.points) * len(sw.spec.sweep.seeds)
    for p in fits:
        spec, _, _, crits, _ = fit.prepare(p, out=tmp_path / "f")
        assert spec.targets and all(crits)
    for p in senss:
        spec, points, tasks, _ = sensitivity.prepare(p, out=tmp_path / "x")
        n = spec.sensitivity.n_base * (len(spec.parameters) + 2)
        assert len(points) == n and len(tasks) == n * len(spec.sensitivity.seeds)


def test_outputs_of_a_list_design_with_a_failed_run(folder):
    """Dataset (point dimension, parameters as coordinates, NaN for a failed run) and Parquet
    table written from the store's records."""
    import pandas as pd
    import xarray as xr

    from cortexsim.sweep import write_outputs

    text = SWEEP.split("[[parameters]]")[0].replace('design = "grid"', 'design = "list"')
    text = text.replace("seeds = [1]", "seeds = [1, 2]")
    text += (
        '[[points]]\n"structural.activity.ltp_gain" = 0.5\n'
        '[[points]]\n"conditions.stim.protocol" = "none"\n' + SWEEP[SWEEP.index("[[metrics]]") :]
    )
    sw = load_sweep(_write(folder, text))
    tasks = sw.tasks(100, folder / "store")
    recs = {
        t["key"]: {
            "status": "ok",
            "metrics": {"it5": 0.1 * t["point"] + t["seed"]},
            "builds": 1,
            "cache_hits": 2,
            "wall_s": 1.0,
        }
        for t in tasks
    }
    recs[tasks[-1]["key"]] = {"status": "error", "error": "RuntimeError: boom", "metrics": {}}
    summary = write_outputs(sw, tasks, recs, folder / "out")
    assert summary["finished"] == 3 and summary["failed"] == 1
    assert summary["errors"] == ["RuntimeError: boom"] and summary["builds"] == 3
    ds = xr.load_dataset(folder / "out" / "sweep.nc")
    assert ds.it5.dims == ("point", "seed")
    assert ds.it5.values[0].tolist() == [1.0, 2.0] and np.isnan(ds.it5.values[1, 1])
    assert ds["conditions.stim.protocol"].values.tolist() == ["nan", "none"]
    df = pd.read_parquet(folder / "out" / "points.parquet")
    assert df.status.tolist() == ["ok", "ok", "ok", "error"] and len(set(df.key)) == 4


def test_bad_worker_count_exits_2_before_running(folder, capsys):
    p = _write(folder, SWEEP)
    assert main(["sweep", str(p), "--workers", "0", "--out", str(folder / "out")]) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (folder / "out" / "store").exists()


AITBS = experiments_dir() / "aitbs_study.toml"
CRIT_2A = "2a. aiTBS restores IT spines within 24 h (vs sham)"
CRIT_3 = "3. silencing IT during stimulation abolishes the IT restoration"


def _aitbs_sweep(tmp_path, metric):
    p = tmp_path / "sw.toml"
    p.write_text(
        f'[sweep]\nname = "s"\nbase = "{AITBS.as_posix()}"\nseeds = [1]\n'
        '[[parameters]]\npath = "structural.activity.ltp_gain"\nvalues = [0.5, 1.0]\n'
        f"[[metrics]]\n{metric}\n"
    )
    return load_sweep(p)


def test_a_sweep_point_runs_only_the_conditions_its_metrics_need(tmp_path):
    sw = _aitbs_sweep(
        tmp_path,
        'name = "it5"\nvar = "spine_density_rel"\n'
        'condition = "stress_aitbs"\nminus_condition = "stress_sham"\n'
        'readout = "24h"\npopulation = "IT_L5"',
    )
    assert len(sw.base_raw["conditions"]) == 5
    for t in sw.tasks(100, tmp_path / "store"):
        assert sorted(t["raw"]["conditions"]) == ["stress_aitbs", "stress_sham"]
        names = [c["name"] for c in t["raw"]["criteria"]]
        # the criteria judged on these two conditions stay, in order; 1. (stress) and
        # 3. (silenced) go with their conditions
        assert names == [
            c["name"] for c in sw.base_raw["criteria"] if c["condition"] == "stress_aitbs"
        ]
        assert names[0] == CRIT_2A and CRIT_3 not in names
    whole = build_runs(sw.base_raw, sw.points, [1], 100, [], tmp_path / "store")
    pruned = sw.tasks(100, tmp_path / "store")
    assert whole[0]["raw"]["conditions"] == sw.base_raw["conditions"]  # nothing asked: all
    assert whole[0]["key"] != pruned[0]["key"]  # the store key says what runs


def test_a_criterion_metric_keeps_the_chain_it_requires(tmp_path):
    sw = _aitbs_sweep(tmp_path, f'name = "c3"\ncriterion = "{CRIT_3}"\npopulation = "IT_L5"')
    raw = sw.tasks(100, tmp_path / "store")[0]["raw"]
    assert sorted(raw["conditions"]) == ["stress_aitbs", "stress_aitbs_it_silenced", "stress_sham"]
    names = [c["name"] for c in raw["criteria"]]
    assert CRIT_2A in names and CRIT_3 in names and names.index(CRIT_2A) < names.index(CRIT_3)
    assert not any(c["condition"] in ("stress", "control") for c in raw["criteria"])


def test_a_fit_trial_runs_only_what_its_criterion_target_needs(tmp_path):
    from cortexsim.sweep import fit

    p = tmp_path / "fit.toml"
    p.write_text(
        f'[fit]\nname = "f"\nbase = "{AITBS.as_posix()}"\n'
        '[[parameters]]\npath = "structural.activity.ltp_gain"\nlow = 0.5\nhigh = 2.0\n'
        f'[[targets]]\ncriterion = "{CRIT_3}"\n'
    )
    spec, _, base_raw, crits, out = fit.prepare(p, out=tmp_path / "f")
    assert crits == [CRIT_3]
    tasks = build_runs(
        base_raw, [{"structural.activity.ltp_gain": 1.0}], [1], 100, [], out / "store", crits
    )
    raw = tasks[0]["raw"]
    assert sorted(raw["conditions"]) == ["stress_aitbs", "stress_aitbs_it_silenced", "stress_sham"]
    assert CRIT_2A in [c["name"] for c in raw["criteria"]]  # what 3. requires is judged
    with pytest.raises(InputError, match="criterion"):
        build_runs(base_raw, [{}], [1], 100, [], out / "store", ["no such criterion"])


def _fake_runs(monkeypatch):
    """Runs without a network, in this process: every result variable is a made-up function of
    the point's ``ltp_gain``, condition, read-out and population.  Returns the gains run."""
    import xarray as xr

    from cortexsim.criteria import evaluate
    from cortexsim.experiment import Experiment
    from cortexsim.results import Results
    from cortexsim.sweep import executor

    runs = []

    def run(self, seed=None, scale=None, progress=True, **kw):
        gain = self.spec["overrides"].get("structural.activity.ltp_gain", 1.0)
        runs.append(gain)
        conds = list(self.spec["conditions"])
        v = gain * (
            1
            + np.arange(len(conds))[:, None, None]
            + 10 * np.arange(2)[:, None]
            + 100 * np.arange(2)
        )
        ds = xr.Dataset(
            {
                var: (("condition", "readout", "population"), v)
                for var in ("spine_density", "spine_density_rel", "rate_readout")
            },
            coords={
                "condition": conds,
                "readout": ["baseline", "24h"],
                "population": ["IT_L5", "PT_L5"],
            },
            attrs={"config": json.dumps(self.spec)},
        )
        return Results(ds, evaluate(ds, self.spec["criteria"]))

    monkeypatch.setattr(Experiment, "run", run)
    monkeypatch.setattr(executor, "execute", lambda tasks, **kw: map(executor.run_point, tasks))
    return runs


STALE = """
[sweep]
name = "stale"
base = "tiny.toml"
[[parameters]]
path = "structural.activity.ltp_gain"
values = [0.5, 2.0]
[[metrics]]
name = "density"
var = "spine_density_rel"
condition = "stim"
readout = "24h"
population = "IT_L5"
[[metrics]]
name = "crit"
criterion = "spines remain"
population = "IT_L5"
"""


def test_a_metric_or_criterion_redefined_under_its_name_is_recomputed(folder, monkeypatch):
    """Case 25: the stored value of a metric's old definition is never reported under its new
    one.  A metric (or a criterion) whose definition changed is recomputed from the run's
    stored results, without running it again; a stored run without its results is run again."""
    import pandas as pd

    runs = _fake_runs(monkeypatch)
    out = folder / "out"

    def sweep(text):
        summary = load_sweep(_write(folder, text)).run(out=out, progress=False)
        assert summary["finished"] == 2
        df = pd.read_parquet(out / "points.parquet")
        return df.density.tolist(), df.crit.tolist()

    # stim is the one condition kept: IT_L5 at 24 h is gain * 11, PT_L5 at baseline gain * 101
    assert sweep(STALE) == ([5.5, 22.0], [5.5, 22.0]) and runs == [0.5, 2.0]
    edited = STALE.replace(
        'readout = "24h"\npopulation = "IT_L5"', 'readout = "baseline"\npopulation = "PT_L5"'
    )
    assert sweep(edited) == ([50.5, 202.0], [5.5, 22.0])
    assert runs == [0.5, 2.0]  # recomputed, not run again
    # the criterion edited in the base spec (24 h -> baseline): the store key does not change
    tiny = folder / "tiny.toml"
    tiny.write_text(
        TINY.replace('readout = "24h"\npopulations', 'readout = "baseline"\npopulations')
    )
    assert sweep(edited) == ([50.5, 202.0], [0.5, 2.0]) and runs == [0.5, 2.0]
    assert sweep(edited) == ([50.5, 202.0], [0.5, 2.0]) and runs == [0.5, 2.0]  # as stored
    # a stored run whose results are gone cannot be recomputed: it runs again
    tiny.write_text(TINY)
    for nc in (out / "store").glob("*.nc"):
        nc.unlink()
    assert sweep(edited) == ([50.5, 202.0], [5.5, 22.0]) and sorted(runs[2:]) == [0.5, 2.0]


def test_a_constant_metric_is_remarked_on_in_summary_and_plot(folder, monkeypatch):
    """A metric with one value at every run says so (issue 23): a remark in the summary, and
    in the plot's title instead of a page of equal values and zero spreads."""
    import matplotlib.figure
    import xarray as xr

    from cortexsim.sweep.plots import constant_value, plot_metric

    _fake_runs(monkeypatch)
    text = STALE.replace("structural.activity.ltp_gain", "conditions.stim.intensity_pct_rmt")
    text = text.replace("values = [0.5, 2.0]", "values = [60, 120]")
    summary = load_sweep(_write(folder, text)).run(out=folder / "out", progress=False)
    assert summary["remarks"] == [
        "metric 'density' is 11 at every run: constant over this sweep",
        "metric 'crit' is 11 at every run: constant over this sweep",
    ]
    titles = []
    monkeypatch.setattr(
        matplotlib.figure.Figure,
        "savefig",
        lambda fig, *a, **k: titles.extend(ax.get_title() for ax in fig.axes),
    )
    plot_metric(xr.load_dataset(folder / "out" / "sweep.nc"), "density", folder / "p.png")
    assert any("constant: 11 at every point and seed" in t for t in titles), titles
    assert constant_value([1.0, np.nan, 1.0]) == 1.0
    assert constant_value([1.0, 1.001]) is None and constant_value([2.0]) is None
