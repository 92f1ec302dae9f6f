"""The validation scorecard (cortexsim.validation): suite checks, verdicts, fitted vs predicted,
observables on synthetic results, the evoked response's synaptic part, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from cortexsim.errors import InputError
from cortexsim.validation import judge, load_suite
from cortexsim.validation.model import Model, calibrations, fitted_entries, load_model
from cortexsim.validation.observe import experiment_value, static_value, turnover_per_day

ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "experiments" / "aitbs_study.toml"

GOOD = """
[suite]
group = "study"

[experiments.study]
spec = "{study}"

[[entries]]
id = "e_2a"
finding = "aiTBS restores IT_L5 spines"
observable = {{ kind = "experiment", experiment = "study", var = "spine_density_rel", condition = "stress_aitbs", other_condition = "stress_sham", readout = "24h", population = "IT_L5" }}
compare = "sign"
published = {{ sign = "+" }}
tolerance = 0.05
tolerance_reason = "chosen"
source = {{ citation = "Gongwer et al. 2025", where = "Fig. 2", species = "mouse", preparation = "in vivo" }}

[[entries]]
id = "e_rin"
finding = "IT_L5 Rin above PT_L5"
observable = {{ kind = "cell", quantity = "input_resistance_MOhm", population = "IT_L5", other_population = "PT_L5" }}
compare = "value"
published = {{ value = 24.0 }}
tolerance = 20.0
tolerance_reason = "chosen"
source = {{ citation = "Hattox & Nelson 2007", where = "Table 1", species = "mouse", preparation = "slice" }}
"""


def _suite(tmp_path, text=GOOD, name="s.toml") -> Path:
    d = tmp_path / "suite"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text.format(study=STUDY.as_posix()))
    return d


# --------------------------------------------------------------------------- the shipped suite
def test_shipped_suite_loads_with_every_kind_and_a_quick_subset_of_each_kind():
    suite = load_suite()
    kinds = {e["observable"]["kind"] for e in suite.entries}
    assert kinds == {"cell", "threshold", "synapse", "experiment"}
    assert len(suite.entries) >= 30
    quick = suite.select(quick=True)
    assert {e["observable"]["kind"] for e in quick} == kinds
    assert {e["compare"] for e in quick} == {"value", "sign", "none", "range"}
    groups = {e["group"] for e in suite.entries}
    assert groups == {"cells", "synapses", "protocols", "structure", "study", "optogenetic"}
    for e in suite.entries:  # every entry names its source in full
        assert all(e["source"][k] for k in ("citation", "where", "species", "preparation"))


def test_calibrations_name_existing_suite_entries():
    ids = {e["id"] for e in load_suite().entries}
    for g in calibrations():
        assert set(g["entries"]) <= ids, g["how"]


def test_study_criterion_3_is_two_sided():
    """Finding 3 is 'abolished': silenced within a tolerance of sham on both sides."""
    from cortexsim.experiment import load_experiment

    crit = {c["name"]: c for c in load_experiment(STUDY).spec["criteria"]}
    c3 = next(c for n, c in crit.items() if n.startswith("3."))
    assert c3["abs"] is True and c3["op"] == "<"


# --------------------------------------------------------------------------- bad entries
@pytest.mark.parametrize(
    "old, new, field",
    [
        ('var = "spine_density_rel"', 'var = "spine_densty"', "entries[0] (e_2a).observable.var"),
        (
            'condition = "stress_aitbs"',
            'condition = "stress_aitbz"',
            "entries[0] (e_2a).observable.condition",
        ),
        (
            'population = "IT_L5" }}\ncompare = "sign"',
            'population = "IT_L6" }}\ncompare = "sign"',
            "entries[0] (e_2a).observable.population",
        ),
        ("tolerance = 0.05", "tolerance = 0.0", "entries[0] (e_2a).tolerance"),
        ("tolerance = 0.05", "tolerance = -1.0", "entries[0] (e_2a).tolerance"),
        (
            'source = {{ citation = "Gongwer et al. 2025", where = "Fig. 2", species = "mouse", '
            'preparation = "in vivo" }}\n\n[[entries]]',
            "\n[[entries]]",
            "entries[0] (e_2a).source",
        ),
        ('readout = "24h"', 'readout = "25h"', "entries[0] (e_2a).observable.readout"),
        (
            'experiment = "study", var',
            'experiment = "stody", var',
            "entries[0] (e_2a).observable.experiment",
        ),
    ],
)
def test_a_bad_entry_is_one_error_naming_file_entry_and_field(tmp_path, old, new, field):
    assert old in GOOD
    d = _suite(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as e:
        load_suite(d)
    assert str(e.value).startswith(f"s.toml: {field}"), str(e.value)


def test_duplicate_ids_and_range_tolerance_are_rejected(tmp_path):
    d = _suite(tmp_path, GOOD.replace('id = "e_rin"', 'id = "e_2a"'))
    with pytest.raises(InputError, match="duplicate id"):
        load_suite(d)
    d = _suite(
        tmp_path,
        GOOD.replace(
            'compare = "value"\npublished = {{ value = 24.0 }}',
            'compare = "range"\npublished = {{ low = 1, high = 2 }}',
        ),
    )
    with pytest.raises(InputError, match="range entry takes no tolerance"):
        load_suite(d)


def test_cli_exits_2_on_a_bad_suite_before_anything_runs(tmp_path):
    d = _suite(tmp_path, GOOD.replace("tolerance = 0.05", "tolerance = 0"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "cortexsim.cli",
            "validate",
            "--suite",
            str(d),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    assert "e_2a" in p.stderr and "tolerance" in p.stderr
    assert not (tmp_path / "out" / "store").exists()


# --------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    "compare, published, tol, value, verdict",
    [
        ("value", {"value": 1.0}, 0.5, 1.4, "pass"),
        ("value", {"value": 1.0}, 0.5, 1.6, "fail"),
        ("value", {"value": 1.0}, 0.5, 0.4, "fail"),
        ("sign", {"sign": "+"}, 0.1, 0.2, "pass"),
        ("sign", {"sign": "+"}, 0.1, 0.05, "fail"),  # right sign, too small
        ("sign", {"sign": "+"}, 0.1, -0.5, "fail"),
        ("sign", {"sign": "-"}, 0.1, -0.5, "pass"),
        ("none", {}, 0.02, -0.019, "pass"),
        ("none", {}, 0.02, -0.08, "fail"),  # pushed below: not "abolished"
        ("range", {"low": 3.0, "high": 6.0}, None, 4.0, "pass"),
        ("range", {"low": 3.0, "high": 6.0}, None, 6.5, "fail"),
        ("value", {"value": 1.0}, 0.5, math.nan, "not measured"),
    ],
)
def test_judge(compare, published, tol, value, verdict):
    entry = {"compare": compare, "published": published, "tolerance": tol}
    out = judge(entry, value)
    assert out["verdict"] == verdict
    if verdict != "not measured":
        lo, hi = out["band"]
        assert (lo <= out["deviation"] <= hi if compare != "sign" else out["deviation"] > 1) == (
            verdict == "pass"
        )


def _synthetic_results():
    """A results-like Dataset with known numbers."""
    conds, pops, t = (
        ["control", "stress_sham", "stress_aitbs"],
        ["IT_L5", "PT_L5"],
        np.array([0.0, 1.0, 2.0, 3.0]),
    )
    dens = np.ones((3, 2, 4))
    dens[2, 0, 3] = 1.08  # aiTBS: IT_L5 +0.08 over sham at t = 3
    ds = xr.Dataset(
        {
            "spine_density_rel": (("condition", "population", "time_d"), dens),
            "spine_density": (("condition", "population", "time_d"), 0.8 * dens),
            "n_sites": (("condition", "population"), np.full((3, 2), 1000.0)),
            "formed": (("condition", "time_d"), np.array([[0, 16, 16, 16]] * 3, float)),
            "eliminated": (("condition", "time_d"), np.array([[0, 16, 16, 16]] * 3, float)),
            "readout_time_d": (("condition", "readout"), np.array([[3.0]] * 3)),
            "session_dw": (
                ("condition", "session", "population"),
                np.array([[[np.nan] * 2] * 2, [[0.0, 0.0]] * 2, [[0.01, -0.002], [0.02, -0.001]]]),
            ),
        },
        coords={
            "condition": conds,
            "population": pops,
            "time_d": t,
            "readout": ["24h"],
            "session": [1, 2],
        },
    )
    return ds


def test_scoring_a_synthetic_result_gives_the_known_verdicts():
    ds = _synthetic_results()
    o = {
        "kind": "experiment",
        "var": "spine_density_rel",
        "condition": "stress_aitbs",
        "other_condition": "stress_sham",
        "readout": "24h",
        "population": "IT_L5",
    }
    v = experiment_value(o, ds)
    assert v == pytest.approx(0.08)
    assert (
        judge({"compare": "sign", "published": {"sign": "+"}, "tolerance": 0.05}, v)["verdict"]
        == "pass"
    )
    assert (
        judge({"compare": "sign", "published": {"sign": "+"}, "tolerance": 0.1}, v)["verdict"]
        == "fail"
    )
    pt = dict(o, population="PT_L5")
    assert (
        judge({"compare": "none", "published": {}, "tolerance": 0.03}, experiment_value(pt, ds))[
            "verdict"
        ]
        == "pass"
    )
    dw = {
        "kind": "experiment",
        "var": "session_dw_sum",
        "condition": "stress_aitbs",
        "other_condition": "stress_sham",
        "population": "IT_L5",
    }
    assert experiment_value(dw, ds) == pytest.approx(0.03)
    both = dict(dw, other_population="PT_L5")
    assert experiment_value(both, ds) == pytest.approx(0.03 - (-0.003))
    # 32 spines changed per day ((16 + 16) / 2 per interval of 1 d) out of 2 x 800 present
    assert turnover_per_day(ds, "control", "24h", 2.0) == pytest.approx(16 / 1600)


def test_static_observables_follow_the_model_trees():
    from cortexsim.experiment import model_trees

    trees = model_trees({})
    o = {
        "kind": "synapse",
        "protocol": "pairs",
        "delta_t_ms": 10.0,
        "freq_hz": 0.3,
        "n_pairs": 100,
        "ca_ext_mM": 1.3,
    }
    assert abs(static_value(o, trees)) < 0.01  # physiological Ca: no change
    assert static_value(dict(o, ca_ext_mM=2.5, freq_hz=20.0), trees) > 0.1
    thr = {
        "kind": "threshold",
        "quantity": "threshold_vpm",
        "population": "IT_L23",
        "other_population": "PT_L5",
        "waveform": "biphasic",
        "angle_deg": 0.0,
    }
    base = static_value(thr, trees)
    moved = model_trees({"coupling.cells.PT_L5.lambda_um": 300.0})
    assert static_value(thr, moved) < base  # a shorter PT length constant: higher PT thr


# --------------------------------------------------------------------------- fitted vs predicted
def test_an_entry_flips_from_predicted_to_fitted_when_a_fit_spec_targets_it(tmp_path):
    d = _suite(tmp_path)
    suite = load_suite(d)
    names = {"study": "aitbs_study"}
    assert fitted_entries(Model("default"), suite.entries, names) == {}
    fit = tmp_path / "fit.toml"
    fit.write_text(
        textwrap.dedent(f"""
        [fit]
        name = "f"
        base = "{STUDY.as_posix()}"
        [[parameters]]
        path = "structural.activity.ltp_gain"
        low = 0.1
        high = 10.0
        [[metrics]]
        name = "it5"
        var = "spine_density_rel"
        condition = "stress_aitbs"
        minus_condition = "stress_sham"
        readout = "24h"
        population = "IT_L5"
        [[targets]]
        metric = "it5"
        value = 0.15
        tolerance = 0.07
        """)
    )
    whatif = tmp_path / "whatif.toml"
    whatif.write_text(
        textwrap.dedent(f"""
        extends = "{STUDY.as_posix()}"
        [experiment]
        name = "whatif"
        [provenance]
        fit = "fit.toml"
        [overrides]
        "structural.activity.ltp_gain" = 2.0
        """)
    )
    model = load_model(whatif)
    got = fitted_entries(model, suite.entries, names)
    assert list(got) == ["e_2a"] and "fit.toml" in got["e_2a"][0]
    # a target on another population, or read by criterion name, counts the same way
    whatif.write_text(
        whatif.read_text().replace(
            'fit = "fit.toml"',
            "targets = [{ experiment "
            '= "aitbs_study", var = "spine_density_rel", condition = "stress_aitbs", '
            'minus_condition = "stress_sham", readout = "24h", populations = '
            '["PT_L5"] }]',
        )
    )
    assert fitted_entries(load_model(whatif), suite.entries, names) == {}


def test_shipped_mechanism_whatif_is_fitted_to_the_findings_its_fit_targeted():
    suite = load_suite()
    names = {
        "aitbs_study": "aitbs_study",
        "protocol_effects": "protocol_effects",
        "optogenetic_aitbs": "optogenetic_aitbs",
    }
    default = fitted_entries(load_model(None), suite.entries, names)
    mech = fitted_entries(load_model("aitbs_study_mechanisms"), suite.entries, names)
    study_fitted = {
        i
        for i in mech
        if i.startswith("gongwer2025_f2")
        or i.startswith("gongwer2025_f3")
        or i.startswith("gongwer2025_f4")
    }
    assert {
        "gongwer2025_f2a_aitbs_restores_it_it_l5",
        "gongwer2025_f2a_aitbs_restores_it_it_l23",
        "gongwer2025_f2b_pt_unchanged_pt_l5",
        "gongwer2025_f3_it_silencing_abolishes_it_l5",
        "gongwer2025_f4_restoration_persists_it_l5",
    } == study_fitted
    assert not any(i.startswith("gongwer2025_f2") for i in default)
    assert "hattox2007_rin_it_minus_pt" in default  # a recorded calibration


def test_a_calibration_stops_counting_when_every_parameter_of_its_group_is_overridden():
    suite = load_suite()
    names = {n: n for n in ("aitbs_study", "protocol_effects", "optogenetic_aitbs")}
    group = next(g for g in calibrations() if "dembrow2010_resonance_pt" in g["entries"])
    over = Model("m", overrides={p: 1.0 for p in group["parameters"]})
    assert "dembrow2010_resonance_pt" not in fitted_entries(over, suite.entries, names)
    assert "dembrow2010_resonance_pt" in fitted_entries(Model("d"), suite.entries, names)


def test_model_laid_over_an_experiment_keeps_its_timeline():
    m = load_model("aitbs_study_mechanisms")
    from cortexsim.experiment import read_spec

    raw = m.apply(read_spec(ROOT / "experiments" / "validation_protocols.toml"))
    assert raw["settings"]["session_reference"] == "each_session"
    assert raw["overrides"]["mechanisms.dopamine_d1.enabled"] is True
    assert raw["experiment"]["name"] == "protocol_effects"
    assert [p["kind"] for p in raw["timeline"]] == ["baseline", "stimulation", "rest"]


# --------------------------------------------------------------------------- evoked response
class _Run:
    def __init__(self, i, t):
        self.spike_i, self.spike_t = np.asarray(i, int), np.asarray(t, float)


def test_evoked_spikes_counts_synaptic_spikes_not_the_direct_ones():
    from cortexsim.experiment.readouts import evoked_spikes

    slices = {"A": slice(0, 2), "B": slice(2, 4)}
    direct = np.array([True, False, False, False])
    rest = _Run([3], [1.02])  # one background spike in B
    # cell 0 fired by the pulse (1.0001); cell 1 a synaptic spike at 1.005; the same background
    stim = _Run([0, 1, 3, 2], [1.0001, 1.005, 1.02, 1.2])
    ev = evoked_spikes(rest, stim, slices, direct, [1.0], 0.05)
    assert ev == {"A": pytest.approx(0.5), "B": pytest.approx(0.0)}
    # a second pulse whose window loses the background spike: inhibition, negative
    ev2 = evoked_spikes(
        _Run([3, 3], [1.02, 2.01]), _Run([3], [1.02]), slices, direct, [1.0, 2.0], 0.05
    )
    assert ev2["B"] == pytest.approx(-0.25)


def test_readout_pulse_times_lie_on_the_grid_and_leave_a_window():
    from cortexsim.experiment.readouts import readout_pulse_times

    t = readout_pulse_times(10.0, 0.02, 0.5)
    assert len(t) == 19 and np.allclose(np.diff(t), 0.5)
    assert np.allclose(np.round(t / 0.02) * 0.02, t) and t[-1] <= 9.5
    assert len(readout_pulse_times(0.5, 0.02, 0.5)) == 1


@pytest.mark.slow
def test_evoked_response_changes_with_the_spines():
    """The read-outs' evoked response is carried by synapses: removing most spine synapses
    changes it (before this stop it counted direct spikes only and could not change)."""
    from cortexsim.circuit.network import Stimulus
    from cortexsim.coupling import cell_field_vpm
    from cortexsim.experiment import load_experiment
    from cortexsim.experiment.readouts import evoked_spikes, readout_pulse_times
    from cortexsim.experiment.runner import _Runner

    cfg = load_experiment("tiny").resolved_config(seed=1, scale=100)
    r = _Runner(cfg, progress=False)
    trees = r._trees(cfg["conditions"]["control"])
    c = r._short_circuit(r._network_key(trees), trees)
    n = len(c.conn["ee"]["j"])
    field = cell_field_vpm(100.0, trees["coupling"])
    pulses = readout_pulse_times(cfg["settings"]["baseline_fast_s"], c.slot_s, 0.1)
    out = {}
    for frac in (1.0, 0.1):
        on = (np.random.default_rng(0).random(n) < frac).astype(float)
        sp = {"on": on, "rho": np.full(n, 0.5)}
        r0 = c.run(None, spines=sp, run_seed=11)
        r1 = c.run(Stimulus(list(pulses), [field] * len(pulses)), spines=sp, run_seed=11)
        out[frac] = evoked_spikes(r0, r1, c.slices, c.tms_threshold_vpm <= field, pulses, 0.05)
    diffs = [abs(out[1.0][p] - out[0.1][p]) for p in ("IT_L23", "IT_L5", "PT_L5")]
    assert max(diffs) > 0.02, out
    # a cell observable after a standalone build in the same process (a user's session, the
    # docs gallery) still simulates on the runtime device
    from cortexsim.experiment import model_trees

    cells_tree = model_trees({"cells.IT_L5.C": 118.0})["cells"]
    assert (
        static_value(
            {"kind": "cell", "quantity": "input_resistance_MOhm", "population": "IT_L5"},
            {**trees, "cells": cells_tree},
        )
        > 0
    )


# --------------------------------------------------------------------------- end to end
def test_validate_static_entries_end_to_end_writes_the_three_files(tmp_path):
    from cortexsim.validation import run_validation

    d = _suite(tmp_path)
    card = run_validation(
        None, suite_folder=d, out=tmp_path / "out", entry_ids=["e_rin"], progress=False
    )
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"scorecard.md", "scorecard.json", "scorecard.png"} <= files
    saved = json.loads((tmp_path / "out" / "scorecard.json").read_text())
    assert saved["summary"]["line"] == card["summary"]["line"]
    (row,) = saved["entries"]
    assert row["id"] == "e_rin" and row["status"] == "predicted"
    assert set(row) >= {
        "model_mean",
        "model_sd",
        "model_values",
        "verdict",
        "published",
        "tolerance",
        "source",
        "observable",
        "fitted_by",
        "deviation",
        "band",
    }
    md = (tmp_path / "out" / "scorecard.md").read_text()
    assert card["summary"]["line"] in md and "e_rin" in md


def test_a_fit_writes_its_targets_into_best_toml_and_validate_counts_them_fitted(tmp_path):
    """``cortexsim fit``'s best.toml carries [provenance] targets: the entries they match are
    fitted for that model, the others stay predicted."""
    from cortexsim.experiment import read_spec
    from cortexsim.sweep import fit

    spec, base_path, _ = fit.load_fit(ROOT / "experiments" / "mechanism_search" / "nmda_daact.toml")
    out = tmp_path / "fitout"
    out.mkdir()
    text = fit.best_spec_text(
        {"structural.activity.nmda_gain": 5.0},
        base_path,
        out,
        fit.spec_targets(spec, read_spec(base_path)),
    )
    (out / "best.toml").write_text(text)
    suite = load_suite()
    names = {n: n for n in ("aitbs_study", "protocol_effects", "optogenetic_aitbs")}
    got = fitted_entries(load_model(out / "best.toml"), suite.entries, names)
    assert "gongwer2025_f2a_aitbs_restores_it_it_l5" in got
    assert "gongwer2025_f1_stress_spine_loss_it_l5" not in [
        i for i, why in got.items() if any("fit" in w and "provenance.toml" not in w for w in why)
    ]
    assert "gongwer2025_f2c_it_activity_during_it_l5" not in got


def test_an_entry_whose_required_effect_is_absent_is_not_applicable_not_a_pass():
    from cortexsim.validation import apply_requires, summarise

    rows = [
        {"id": "b", "verdict": "pass", "status": "predicted"},  # "no change": passes
        {"id": "a", "verdict": "fail", "status": "predicted"},  # the effect is absent
        {"id": "c", "verdict": "pass", "status": "fitted"},
    ]
    apply_requires(rows, {"b": "a", "a": None, "c": None})
    assert rows[0]["verdict"] == "not applicable" and "requires a" in rows[0]["reason"]
    s = summarise(rows)
    assert s["predicted"] == {
        "pass": 0,
        "fail": 1,
        "not_measured": 0,
        "not_applicable": 1,
        "total": 2,
    }
    assert "1 not applicable" in s["line"]
    # selecting an entry brings the one it requires
    suite = load_suite()
    got = [e["id"] for e in suite.select(ids=["huang2007_nmda_block_abolishes_itbs"])]
    assert got == ["huang2005_itbs600_facilitates_dw", "huang2007_nmda_block_abolishes_itbs"]


def test_readout_turnover_counts_what_two_snapshots_see():
    """Zuo et al. 2005 compare two images: spines gained and lost between them, not every
    event in between."""
    from cortexsim.experiment.recorder import Recorder, Snapshot

    site_pop = np.array([0, 0, 0, 0, 1, 1])
    rec = Recorder(("IT_L5", "PV"), site_pop)
    rec.snapshots["a"] = Snapshot(2.0, np.array([1, 1, 1, 0, 1, 0], np.int8), {"rho": np.zeros(6)})
    rec.snapshots["b"] = Snapshot(16.0, np.array([1, 1, 0, 1, 1, 0], np.int8), {"rho": np.zeros(6)})
    t = rec._readout_turnover(["a", "b"])
    assert np.isnan(t[0]).all()
    assert t[1, 0] == pytest.approx((1 + 1) / 2 / 3 / 14.0)  # one gained, one lost of 3
    assert t[1, 1] == 0.0


def test_differences_between_readouts_within_a_condition():
    ds = _synthetic_results().drop_vars(["readout_time_d", "readout"])
    ds["readout_time_d"] = (("condition", "readout"), np.array([[3.0, 0.0]] * 3))
    ds = ds.assign_coords(readout=["24h", "0h"])
    o = {
        "kind": "experiment",
        "var": "spine_density_rel",
        "condition": "stress_aitbs",
        "readout": "24h",
        "other_readout": "0h",
        "population": "IT_L5",
    }
    assert experiment_value(o, ds) == pytest.approx(0.08)


def test_check_validates_suite_files_and_estimates_their_runs(tmp_path):
    from cortexsim.cost import check

    rep = check(ROOT / "validation" / "protocols.toml")
    assert rep["kind"] == "suite" and rep["experiments"] == ["protocol_effects"]
    assert rep["estimate"]["experiment_runs"] == 3 and rep["estimate"]["wall_s"] > 0
    bad = _suite(tmp_path, GOOD.replace("tolerance = 0.05", "tolerance = 0"))
    with pytest.raises(InputError, match="e_2a"):
        check(bad / "s.toml")


# --------------------------------------------------------------------------- user errors
@pytest.mark.parametrize(
    "args, field, words",
    [
        (["--seeds", "1,,2"], "--seeds", "empty item"),
        (["--seeds", ","], "--seeds", "empty"),
        (["--seeds", ""], "--seeds", "empty"),
        (["--entries", "e_rin,,e_2a"], "--entries", "empty item"),
        (["--quick", "--scale", "200"], "--scale", "--quick runs at 100 neurons"),
        (["--quick", "--seeds", "1"], "--seeds", "--quick runs at 100 neurons"),
    ],
)
def test_cli_options_a_user_mistypes_exit_2_not_a_silent_default(
    tmp_path, capsys, args, field, words
):
    from cortexsim.cli import main

    d = _suite(tmp_path)
    assert main(["validate", "--suite", str(d), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {field}: " in err and words in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec, kind", [("sweep_intensity", "sweep"), ("fit_stress_gain", "fit")])
def test_a_spec_of_another_kind_is_named_as_such(tmp_path, spec, kind):
    """validate SPEC, and a suite experiment, with a sweep or fit spec: one error naming the
    kind and the experiment specs allowed (was 'experiment: missing (required)')."""
    with pytest.raises(InputError, match=f"is a {kind} spec .*not an experiment spec") as e:
        load_model(spec)
    assert e.value.field == "spec" and "aitbs_study" in str(e.value)
    assert "sweep_intensity" not in str(e.value).split("allowed:")[1]
    d = _suite(tmp_path, GOOD.replace('spec = "{study}"', f'spec = "{spec}"'))
    with pytest.raises(InputError, match=f"is a {kind} spec") as e:
        load_suite(d)
    assert e.value.field == "s.toml: experiments.study.spec"


def test_an_invalid_suite_experiment_names_the_experiment(tmp_path):
    bad = tmp_path / "specs" / "bad.toml"
    bad.parent.mkdir()
    bad.write_text('[experiment]\nname = "bad"\n')
    d = _suite(tmp_path, GOOD.replace('spec = "{study}"', f'spec = "{bad.as_posix()}"'))
    with pytest.raises(InputError) as e:
        load_suite(d)
    assert e.value.field.startswith("experiments.study (") and "timeline" in e.value.field


def test_an_experiment_spec_in_the_suite_folder_is_not_read_as_a_suite_file(tmp_path):
    d = _suite(tmp_path, GOOD.replace('spec = "{study}"', 'spec = "my_study.toml"'))
    (d / "my_study.toml").write_text(f'extends = "{STUDY.as_posix()}"\n')
    suite = load_suite(d)
    assert suite.experiments["study"] == (d / "my_study.toml").resolve()
    assert [e["id"] for e in suite.entries] == ["e_2a", "e_rin"]
    (d / "s.toml").unlink()
    with pytest.raises(InputError, match="no suite files"):
        load_suite(d)


def test_a_cycle_of_requires_is_rejected(tmp_path):
    text = GOOD.replace('id = "e_2a"', 'id = "e_2a"\nrequires = "e_rin"').replace(
        'id = "e_rin"', 'id = "e_rin"\nrequires = "e_2a"'
    )
    with pytest.raises(InputError, match="a cycle of requires: e_2a -> e_rin -> e_2a"):
        load_suite(_suite(tmp_path, text))


def test_validate_refuses_runs_that_will_not_fit_in_memory(tmp_path, capsys, monkeypatch):
    """As `run` does: refused before the folder is claimed (exit 2 naming --scale and
    --force); entries without experiment runs are not refused."""
    import cortexsim.cost as cost
    from cortexsim.cli import main
    from cortexsim.validation import guard_memory

    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 10 * 2**20)  # 10 MB
    d = _suite(tmp_path)
    out = tmp_path / "out"
    assert (
        main(
            [
                "validate",
                "--suite",
                str(d),
                "--entries",
                "e_2a",
                "--seeds",
                "1",
                "--scale",
                "100",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error: --scale: " in err and "--force" in err, err
    assert not out.exists()
    suite = load_suite(d)
    static = [e for e in suite.entries if e["id"] == "e_rin"]
    assert guard_memory(Model("default"), suite, static, [1], 100, 1) is None
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 2**50)
    est = guard_memory(Model("default"), suite, suite.select(ids=["e_2a"]), [1, 2], 100, 2)
    assert est["experiment_runs"] == 2 and est["processes"] == 2
