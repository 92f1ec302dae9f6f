"""cortexsim fit: Optuna calibration on a cheap case with a known answer (no network).

The structural core's mean field (:func:`cortexsim.plasticity.structural.mean_field`) under
14 days of 6 h/day stress gives a relative spine density that falls monotonically with the
stable-spine stress gain; a synthetic measurement made with a known gain must be recovered by
the fit, and a fit stopped half-way must resume from its journal."""

import math

import pytest

from cortexsim.errors import InputError
from cortexsim.plasticity import stress, structural
from cortexsim.sweep import fit
from cortexsim.sweep.spec import validate

PATH = "structural.stable.stress_gain_elim"
DT_H = 1.0


def _density_after_stress(gain: float) -> float:
    S = stress.stress_per_step({"days": 14, "hours_per_day": 6}, 0.0, DT_H, 14 * 24)
    x = structural.mean_field(S, DT_H, params={"stable": {"stress_gain_elim": gain}})
    dens = x[:, 1] + x[:, 2]
    return float(dens[-1] / dens[0])


def _evaluate(points, seeds):
    """Pluggable evaluation: the mean field (deterministic: same value for every seed)."""
    return [[{"density": _density_after_stress(p[PATH])} for _ in seeds] for p in points]


TRUE_GAIN = 20.0


def _spec(n_trials=30, **over):
    raw = {
        "fit": {
            "name": "recover_gain",
            "base": "unused.toml",
            "n_trials": n_trials,
            "sampler_seed": 3,
            **over,
        },
        "parameters": [{"path": PATH, "low": 2.0, "high": 200.0, "log": True}],
        "metrics": [
            {
                "name": "density",
                "var": "spine_density_rel",
                "condition": "stress",
                "readout": "end_stress",
                "population": "IT_L5",
            }
        ],
        "targets": [
            {"metric": "density", "value": _density_after_stress(TRUE_GAIN), "tolerance": 0.005}
        ],
    }
    return validate(fit.FitSpec, raw, "fit spec")


def test_fit_recovers_the_stress_gain(tmp_path):
    d_true = _density_after_stress(TRUE_GAIN)
    assert d_true < _density_after_stress(TRUE_GAIN / 2)  # identifiable: monotone in the gain
    res = fit.run_fit(_spec(), _evaluate, tmp_path)
    assert res["n_trials"] == 30
    assert abs(math.log(res["best_params"][PATH] / TRUE_GAIN)) < math.log(1.1)
    summary = fit.write_outputs(
        _spec(validation_seeds=[5, 6]), res, tmp_path, tmp_path / "base.toml", _evaluate
    )
    text = (tmp_path / "best.toml").read_text()
    assert 'extends = "base.toml"' in text and f'"{PATH}" = ' in text
    assert len(summary["validation"]["losses"]) == 2
    assert (tmp_path / "trials.csv").read_text().count("\n") == 31


def test_stopped_fit_resumes_from_its_journal(tmp_path):
    calls = []

    def counting(points, seeds):
        calls.extend(points)
        return _evaluate(points, seeds)

    first = fit.run_fit(_spec(), counting, tmp_path, n_trials=8)
    assert first["n_trials"] == 8 and len(calls) == 8
    before = [t.params[PATH] for t in first["study"].trials]
    again = fit.run_fit(_spec(), counting, tmp_path, n_trials=20)
    assert again["n_trials"] == 20 and len(calls) == 20  # only the 12 missing trials ran
    values = [t.params[PATH] for t in again["study"].trials]
    assert len(values) == 20 and values[:8] == before


def test_criterion_targets_are_hinge_losses():
    t = fit.Target(criterion="c", tolerance=0.1)
    assert fit.loss([t], {}, {"c": ("<", 0.9, [0.8, 0.85])}) == 0.0
    assert fit.loss([t], {}, {"c": ("<", 0.9, [0.95])}) == pytest.approx(0.25)
    assert fit.loss([t], {}, {"c": (">", 0.0, [-0.2])}) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "patch, field",
    [
        (lambda r: r["parameters"][0].update(low=300.0), "fit spec.parameters"),
        (lambda r: r["parameters"][0].update(low=True), "fit spec.parameters[0].low"),
        (lambda r: r["parameters"][0].update(high=math.inf), "fit spec.parameters[0].high"),
        (lambda r: r["targets"][0].update(value=math.nan), "fit spec.targets[0].value"),
        (lambda r: r["targets"][0].update(tolerance=math.inf), "fit spec.targets[0].tolerance"),
        (lambda r: r.update(overrides={"cells.x": -math.inf}), "fit spec.overrides.cells.x"),
        (lambda r: r["targets"][0].update(metric="nope"), "fit spec"),
        (lambda r: r["fit"].update(sampler="grid"), "fit spec.fit.sampler"),
        (lambda r: r["fit"].update(colour=1), "fit spec.fit.colour"),
    ],
)
def test_bad_fit_specs_name_the_field(patch, field):
    raw = {
        "fit": {"name": "x", "base": "b.toml"},
        "parameters": [{"path": PATH, "low": 2.0, "high": 200.0}],
        "metrics": [
            {
                "name": "density",
                "var": "spine_density_rel",
                "condition": "stress",
                "readout": "end_stress",
                "population": "IT_L5",
            }
        ],
        "targets": [{"metric": "density", "value": 0.8}],
    }
    patch(raw)
    with pytest.raises(InputError) as e:
        validate(fit.FitSpec, raw, "fit spec")
    assert str(e.value).startswith(field)


def _fit_file(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PARENT = f"""[fit]
name = "parent"
base = "exp/study.toml"
n_trials = 7
seeds = [1, 2]
[[parameters]]
path = "{PATH}"
low = 2.0
high = 200.0
[[parameters]]
path = "structural.formation.stress_gain"
low = 0.3
high = 10.0
[[metrics]]
name = "density"
var = "spine_density_rel"
condition = "stress"
readout = "end_stress"
population = "IT_L5"
[[targets]]
metric = "density"
value = 0.8
"""


def test_a_fit_spec_extends_another(tmp_path):
    from cortexsim.params import experiments_dir

    study = (experiments_dir() / "aitbs_study.toml").read_text()
    _fit_file(tmp_path / "parent" / "exp" / "study.toml", study)
    _fit_file(tmp_path / "parent" / "fit.toml", PARENT)
    child = _fit_file(
        tmp_path / "child" / "fit.toml",
        """extends = "../parent/fit.toml"
[fit]
name = "child"
n_trials = 3
[[parameters]]
path = "structural.stable.stress_gain_elim"
low = 5.0
high = 50.0
""",
    )
    spec, base_path, base_raw = fit.load_fit(child)
    assert spec.fit.name == "child" and spec.fit.n_trials == 3  # values replace
    assert spec.fit.seeds == [1, 2]  # tables merge key by key
    assert [p.low for p in spec.parameters] == [5.0]  # lists replace
    assert spec.targets[0].value == 0.8 and spec.metrics[0].name == "density"
    # base is relative to the file that declares it (the parent), not to the child
    assert base_path == (tmp_path / "parent" / "exp" / "study.toml").resolve()
    assert base_raw["experiment"]["name"] == "aitbs_study"
    # a base declared in the child is relative to the child
    _fit_file(
        tmp_path / "child" / "mine.toml", study.replace('name = "aitbs_study"', 'name = "mine"', 1)
    )
    child.write_text(child.read_text().replace("n_trials = 3", 'n_trials = 3\nbase = "mine.toml"'))
    _, base_path, base_raw = fit.load_fit(child)
    assert base_path == (tmp_path / "child" / "mine.toml").resolve()
    assert base_raw["experiment"]["name"] == "mine"


@pytest.mark.parametrize(
    "extends, message",
    [
        ('"nowhere.toml"', "file not found"),
        ('"a.toml"', "circular"),
        ('"b.toml"', "circular"),
        ("3", "must be the path"),
    ],
)
def test_bad_fit_extends_names_extends(tmp_path, extends, message):
    _fit_file(tmp_path / "a.toml", f"extends = {extends}\n" + PARENT)
    _fit_file(tmp_path / "b.toml", 'extends = "a.toml"\n' + PARENT)
    with pytest.raises(InputError, match=message) as e:
        fit.load_fit(tmp_path / "a.toml")
    assert e.value.field.endswith("extends")


def test_fixed_overrides_apply_to_every_trial_and_to_the_best_spec(tmp_path):
    """``[overrides]`` of a fit spec (e.g. the mechanisms a search switches on) are in every
    trial's spec and in best.toml; a path both fixed and fitted, or unknown, is an InputError."""
    from cortexsim.params import experiments_dir

    _fit_file(tmp_path / "exp" / "study.toml", (experiments_dir() / "aitbs_study.toml").read_text())
    text = PARENT.replace(
        'base = "exp/study.toml"',
        'base = "exp/study.toml"\n[overrides]\n"mechanisms.pv_prefers_pt.enabled" = true\n',
        1,
    )
    # TOML: [overrides] must come after the [fit] keys; rebuild the file in that order
    head, rest = text.split("[overrides]\n", 1)
    ov_line, rest = rest.split("\n", 1)
    f = _fit_file(tmp_path / "fit.toml", head + rest + "\n[overrides]\n" + ov_line + "\n")
    spec, _, base_raw, _, out = fit.prepare(f, out=tmp_path / "out")
    assert base_raw["overrides"]["mechanisms.pv_prefers_pt.enabled"] is True
    assert spec.overrides == {"mechanisms.pv_prefers_pt.enabled": True}
    txt = fit.best_spec_text({**spec.overrides, PATH: 7.0}, tmp_path / "exp" / "study.toml", out)
    # best.toml is a valid spec: the fixed switch and the fitted value in [overrides]
    out.mkdir(parents=True, exist_ok=True)
    (out / "best.toml").write_text(txt)
    from cortexsim.experiment import load_experiment, read_spec

    raw = read_spec(out / "best.toml")
    assert raw["overrides"]["mechanisms.pv_prefers_pt.enabled"] is True
    assert raw["overrides"][PATH] == 7.0
    load_experiment(out / "best.toml")
    bad = _fit_file(
        tmp_path / "bad.toml",
        f.read_text().replace('"mechanisms.pv_prefers_pt.enabled" = true', f'"{PATH}" = 3.0'),
    )
    with pytest.raises(InputError, match="overrides"):
        fit.prepare(bad, out=tmp_path / "out2")
    bad.write_text(f.read_text().replace("pv_prefers_pt", "pv_prefers_xx"))
    with pytest.raises(InputError, match="pv_prefers_xx"):
        fit.prepare(bad, out=tmp_path / "out3")


def test_shipped_mechanism_search_specs_validate(tmp_path):
    """Every set of the issue-13 mechanism search (experiments/mechanism_search/) is a valid fit:
    its mechanisms exist and are switched on, its parameters are assumption parameters of the
    models, and a trial runs only the three conditions its targets need."""
    from cortexsim.params import experiments_dir, load_model
    from cortexsim.sweep import build_runs

    folder = experiments_dir() / "mechanism_search"
    sets = sorted(p for p in folder.glob("*.toml") if p.stem != "common")
    assert {p.stem for p in sets} >= {"none", "nmda", "nmda_da"}
    for p in sets:
        spec, _, base_raw, crit, out = fit.prepare(p, out=tmp_path / p.stem)
        for path in spec.overrides:
            assert path.startswith("mechanisms.") and path.endswith(".enabled"), path
        for par in spec.parameters:
            model, rest = par.path.split(".", 1)
            assert "assumption" in load_model(model).meta(rest)["source"], par.path
        task = build_runs(
            base_raw,
            [{q.path: q.low for q in spec.parameters}],
            [1],
            "small",
            [m.model_dump() for m in spec.metrics],
            out / "store",
            crit,
        )[0]
        assert set(task["raw"]["conditions"]) == {
            "stress_sham",
            "stress_aitbs",
            "stress_aitbs_it_silenced",
        }, p.stem


def test_criterion_target_that_requires_another_criterion_is_judged():
    """A criterion target such as finding 3 (``requires`` 2a) is judged with the whole chain
    (regression: judging only the named criteria raised KeyError on the required one)."""
    import numpy as np
    import xarray as xr

    ds = xr.Dataset(
        {
            "spine_density_rel": (
                ("condition", "population", "time_d"),
                np.array([[[0.8, 0.9]], [[0.8, 0.8]], [[0.8, 0.7]]]),
            ),
            "readout_time_d": (("condition", "readout"), np.array([[1.0], [1.0], [1.0]])),
        },
        coords={
            "condition": ["a", "sham", "s"],
            "population": ["IT_L5"],
            "time_d": [0.0, 1.0],
            "readout": ["24h"],
        },
    )
    crit = [
        dict(
            name="2a",
            var="spine_density_rel",
            condition="a",
            minus_condition="sham",
            readout="24h",
            populations=["IT_L5"],
            op=">",
            value=0.05,
        ),
        dict(
            name="3",
            var="spine_density_rel",
            condition="s",
            minus_condition="sham",
            readout="24h",
            populations=["IT_L5"],
            op="<",
            value=0.02,
            requires="2a",
        ),
    ]
    out = fit.criteria_values(ds, crit, ["3"])
    assert list(out) == ["3"]
    op, thr, obs = out["3"]
    assert (op, thr) == ("<", 0.02) and obs == pytest.approx([-0.1])


def test_start_points_are_tried_first_and_not_again_on_resume(tmp_path):
    calls = []

    def counting(points, seeds):
        calls.extend(p[PATH] for p in points)
        return _evaluate(points, seeds)

    spec = _spec(n_trials=3)
    spec = validate(
        fit.FitSpec,
        {**spec.model_dump(exclude_none=True), "start": [{PATH: TRUE_GAIN}, {PATH: 150.0}]},
        "fit spec",
    )
    res = fit.run_fit(spec, counting, tmp_path)
    assert calls[:2] == [TRUE_GAIN, 150.0]
    assert res["best_params"][PATH] == TRUE_GAIN and res["best_loss"] < 1e-12
    fit.run_fit(spec, counting, tmp_path, n_trials=5)  # resumed: no start point again
    assert len(calls) == 5 and TRUE_GAIN not in calls[2:] and 150.0 not in calls[2:]


@pytest.mark.parametrize(
    "start, message",
    [
        ({"structural.formation.stress_gain": 1.0}, "not a fitted parameter"),
        ({PATH: 500.0}, "outside its bounds"),
        ({PATH: True}, "start"),
    ],
)
def test_bad_start_points_name_the_field(start, message):
    raw = {
        "fit": {"name": "x", "base": "b.toml"},
        "parameters": [{"path": PATH, "low": 2.0, "high": 200.0}],
        "metrics": [
            {
                "name": "density",
                "var": "spine_density_rel",
                "condition": "stress",
                "readout": "end_stress",
                "population": "IT_L5",
            }
        ],
        "targets": [{"metric": "density", "value": 0.8}],
        "start": [start],
    }
    with pytest.raises(InputError, match=message) as e:
        validate(fit.FitSpec, raw, "fit spec")
    assert "start" in str(e.value)


def _trials(study):
    return [(t.state.name, t.params.get(PATH), t.user_attrs.get("failure")) for t in study.trials]


def test_an_interrupted_start_point_is_run_on_resume(tmp_path):
    """Case 26: Ctrl-C during the first trial (a ``[[start]]`` point) leaves it running in the
    journal; the resumed fit closes it, runs its point again and does not count it."""
    spec = _spec(n_trials=4)
    spec = validate(
        fit.FitSpec,
        {**spec.model_dump(exclude_none=True), "start": [{PATH: TRUE_GAIN}, {PATH: 150.0}]},
        "fit spec",
    )

    def interrupted(points, seeds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit.run_fit(spec, interrupted, tmp_path)
    calls = []

    def counting(points, seeds):
        calls.extend(p[PATH] for p in points)
        return _evaluate(points, seeds)

    res = fit.run_fit(spec, counting, tmp_path)
    assert sorted(calls[:2]) == [TRUE_GAIN, 150.0] and len(calls) == 4
    assert res["n_trials"] == 4 and res["n_failed"] == 0
    assert res["best_params"][PATH] == TRUE_GAIN
    trials = _trials(res["study"])
    assert trials[0] == ("FAIL", TRUE_GAIN, None)  # the interrupted one, not counted
    assert ("COMPLETE", TRUE_GAIN, None) in trials[1:]
    again = fit.run_fit(spec, counting, tmp_path)  # finished: nothing runs again
    assert len(calls) == 4 and again["n_trials"] == 4


def test_failed_trials_count_and_say_why(tmp_path):
    """Case 27: a fit whose target is NaN for every run ends after its n_trials (failed ones
    count) and says why; one whose runs all fail stops after MAX_FAILURES_BEFORE_SUCCESS; a
    fit with some failed trials reports them next to its best point."""

    def nan_metric(points, seeds):
        return [[{"density": math.nan} for _ in seeds] for _ in points]

    res = fit.run_fit(_spec(n_trials=3), nan_metric, tmp_path / "a")
    assert res["n_trials"] == 3 and res["n_failed"] == 3 and res["best_params"] is None
    assert res["failures"] == {"metric 'density' is NaN": 3}
    with pytest.raises(
        InputError,
        match=r"no trial succeeded \(3 failed.*metric 'density' "
        r"is NaN \(3 trials\)",
    ) as e:
        fit.write_outputs(_spec(), res, tmp_path / "a", tmp_path / "base.toml")
    assert e.value.field == "fit"
    assert (tmp_path / "a" / "trials.csv").is_file()
    assert not (tmp_path / "a" / "best.toml").exists()

    def broken(points, seeds):
        return [[{"__error__": "RuntimeError: boom"} for _ in seeds] for _ in points]

    res = fit.run_fit(_spec(n_trials=50), broken, tmp_path / "b")
    assert res["n_trials"] == fit.MAX_FAILURES_BEFORE_SUCCESS
    assert res["failures"] == {"run failed: RuntimeError: boom": fit.MAX_FAILURES_BEFORE_SUCCESS}

    def flaky(points, seeds):  # fails above a gain of 100
        return [
            [{"__error__": "RuntimeError: unstable"}] * len(seeds)
            if p[PATH] > 100
            else _evaluate([p], seeds)[0]
            for p in points
        ]

    spec = _spec(n_trials=5)
    spec = validate(
        fit.FitSpec,
        {**spec.model_dump(exclude_none=True), "start": [{PATH: 150.0}, {PATH: TRUE_GAIN}]},
        "fit spec",
    )
    res = fit.run_fit(spec, flaky, tmp_path / "c")
    assert res["n_trials"] == 5 and res["n_failed"] >= 1
    summary = fit.write_outputs(spec, res, tmp_path / "c", tmp_path / "base.toml")
    assert summary["n_failed"] == res["n_failed"]
    assert summary["failures"] == {"run failed: RuntimeError: unstable": res["n_failed"]}
    assert summary["best_params"][PATH] == TRUE_GAIN
    # the engine's evaluator hands a failed run's error to the fit
    rec = {"status": "error", "error": "RuntimeError: boom"}
    assert fit._trial_metrics(tmp_path, {}, rec, []) == {"__error__": "RuntimeError: boom"}
    assert (
        fit.failure_reason(
            [fit.Target(criterion="c")], [{"__criteria__": {"c": (">", 0.0, [math.nan])}}]
        )
        == "criterion 'c' has no value"
    )


def test_fit_json_records_the_search_and_where_the_best_lies_in_its_box(tmp_path):
    """fit.json's ``search``: sampler, seed, seeds, and per parameter its box, the reason
    given for it and the best value's position (0 low edge, 1 high edge; log scale here)."""
    spec = _spec(n_trials=4)
    spec.parameters[0].reason = "why this box"
    best = {PATH: 20.0}
    rec = fit.search_record(spec, best)
    assert rec["sampler"] == "tpe" and rec["sampler_seed"] == 3 and rec["seeds"] == [1]
    (p,) = rec["parameters"]
    assert p["reason"] == "why this box" and p["log"] is True
    assert p["position"] == pytest.approx(math.log(20 / 2) / math.log(200 / 2))
    assert p["at_edge"] is False
    assert fit.search_record(spec, {PATH: 199.0})["parameters"][0]["at_edge"] is True
    res = fit.run_fit(spec, _evaluate, tmp_path)
    summary = fit.write_outputs(spec, res, tmp_path, tmp_path / "base.toml", _evaluate)
    assert summary["search"]["parameters"][0]["best"] == res["best_params"][PATH]
