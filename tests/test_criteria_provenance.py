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
