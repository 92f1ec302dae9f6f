"""The main job's report marks each criterion fitted or predicted (issue 20):
:func:`cortexsim.validation.model.criteria_provenance` and the report column."""

from __future__ import annotations

from cortexsim.experiment import load_experiment
from cortexsim.report import fitted_or_predicted
from cortexsim.validation.model import criteria_provenance


def _by_name(spec):
    crit = load_experiment(spec).spec["criteria"]
    return {c["name"].split(".")[0]: by for c, by in zip(crit, criteria_provenance(spec, crit))}


def test_default_study_fitted_only_to_the_stress_calibration():
    by = _by_name("aitbs_study")
    assert any("Radley" in s for s in by["1"])  # stress gains calibrated (provenance.toml)
    for k in ("2a", "2b", "2c", "2d", "3", "4"):
        assert by[k] == [], k  # predicted


def test_a_fitted_what_if_marks_its_fit_targets():
    by = _by_name("aitbs_study_mechanisms")
    fit = "fit experiments/mechanism_search/nmda_daact.toml"
    for k in ("2a", "2b", "3", "4"):
        assert fit in by[k], k
    assert by["2c"] == [] and by["2d"] == []  # not targets of that fit


def test_overriding_every_calibrated_parameter_makes_it_a_prediction(tmp_path):
    from cortexsim.validation.model import calibrations

    group = next(g for g in calibrations() if "Radley" in g["how"] and "stress" in g["how"])
    from cortexsim.experiment.spec import model_trees

    trees = model_trees({})
    lines = ['extends = "aitbs_study.toml"', "[experiment]", 'name = "recal"', "[overrides]"]
    for p in group["parameters"]:
        model, _, rest = p.partition(".")
        lines.append(f'"{p}" = {float(trees[model].value(rest)) * 1.01!r}')
    from cortexsim.params import experiments_dir

    spec = tmp_path / "recal.toml"
    spec.write_text(
        "\n".join(lines).replace("aitbs_study.toml", str(experiments_dir() / "aitbs_study.toml"))
    )
    crit = load_experiment(spec).spec["criteria"]
    by = dict(zip([c["name"][:2] for c in crit], criteria_provenance(spec, crit)))
    assert not any("stress gains" in s for s in by["1."])


def test_report_words():
    assert fitted_or_predicted([]) == "predicted"
    assert fitted_or_predicted(["fit a.toml", "x"]) == "fitted (fit a.toml; x)"


def test_a_fit_on_a_what_if_of_the_suite_experiment_counts_as_fitted(tmp_path):
    """A fit whose base is a what-if of the study (another experiment name, same conditions)
    fits the study's observables: the scorecard and the report mark them fitted."""
    from cortexsim.params import experiments_dir
    from cortexsim.validation import load_suite
    from cortexsim.validation.model import fitted_entries, load_model

    study = experiments_dir() / "aitbs_study.toml"
    (tmp_path / "whatif.toml").write_text(f'extends = "{study}"\n[experiment]\nname = "whatif_x"\n')
    (tmp_path / "fit.toml").write_text(
        "[fit]\nname = 'f'\nbase = 'whatif.toml'\n"
        "[[parameters]]\npath = 'structural.activity.nmda_gain'\nlow = 1.0\nhigh = 10.0\n"
        "[[metrics]]\nname = 'it5'\nvar = 'spine_density_rel'\ncondition = 'stress_aitbs'\n"
        "minus_condition = 'stress_sham'\nreadout = '24h'\npopulation = 'IT_L5'\n"
        "[[targets]]\nmetric = 'it5'\nvalue = 0.15\ntolerance = 0.07\n"
    )
    (tmp_path / "model.toml").write_text(
        'extends = "whatif.toml"\n[experiment]\nname = "model_x"\n[provenance]\nfit = "fit.toml"\n'
    )
    model = load_model(tmp_path / "model.toml")
    suite = load_suite()
    from cortexsim.experiment import load_experiment

    names = {n: load_experiment(p).spec["experiment"]["name"] for n, p in suite.experiments.items()}
    fitted = fitted_entries(model, suite.entries, names)
    assert "gongwer2025_f2a_aitbs_restores_it_it_l5" in fitted
    assert "gongwer2025_f2a_aitbs_restores_it_it_l23" not in fitted  # not a target
    crit = load_experiment(tmp_path / "model.toml").spec["criteria"]
    by = dict(
        zip([c["name"][:3] for c in crit], criteria_provenance(tmp_path / "model.toml", crit))
    )
    assert by["2a."] and not by["2b."]
