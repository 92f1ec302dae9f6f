"""The dose of every condition is known and shown (case 29: a protocol dosed only in % AMT ran
at 100 % RMT without a word, and the intensity used was in no output)."""

import copy
import json
import math

import numpy as np
import pytest
import xarray as xr
from synthetic_results import synthetic_run

from cortexsim.cli import main
from cortexsim.coupling import cell_field_vpm, macroscopic_field_vpm
from cortexsim.errors import InputError
from cortexsim.experiment import load_experiment, parse_spec
from cortexsim.params import load_model
from cortexsim.protocols import get_protocol, session_intensity
from cortexsim.results import Results
from cortexsim.specs import shipped_specs

RAW = {
    "experiment": {"name": "dose", "seed": 1},
    "settings": {"scale": 100},
    "timeline": [
        {"kind": "baseline", "days": 1, "readout": "baseline"},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 1, "readout": "24h"},
    ],
    "conditions": {
        "control": {"stress": False},
        "stim": {"stress": False, "protocol": {"base": "itbs600", "n_pulses": 30}},
    },
}


def _spec(**stim):
    raw = copy.deepcopy(RAW)
    raw["conditions"]["stim"].update(stim)
    return raw


# --------------------------------------------------------------------------- the rule
def test_the_condition_then_the_protocol_gives_the_intensity():
    assert session_intensity(get_protocol("itbs600"), 70) == (70.0, "condition")
    assert session_intensity(get_protocol("itbs1800")) == (90.0, "protocol itbs1800")
    assert session_intensity(get_protocol("rtms10hz")) == (120.0, "protocol rtms10hz")
    pct, source = session_intensity(get_protocol({"base": "itbs600", "sham": True}))
    assert pct == 0.0 and "no field" in source  # a sham gives no field: nothing to ask


RTMS_NO_DOSE = {
    "kind": "rtms",
    "rtms_freq_hz": 1.0,
    "train_duration_s": 10.0,
    "inter_train_interval_s": 0.0,
    "n_pulses": 10,
}


@pytest.mark.parametrize(
    "proto, said",
    [
        ("itbs600", "intensity_pct_amt = 80"),
        ("ctbs600", "intensity_pct_amt = 80"),
        ("imtbs", "intensity_pct_amt = 80"),
        (RTMS_NO_DOSE, "gives no intensity"),
    ],
)
def test_a_protocol_without_a_pct_rmt_asks_for_the_intensity(proto, said):
    with pytest.raises(InputError) as e:
        session_intensity(get_protocol(proto), field="conditions.x.intensity_pct_rmt")
    assert e.value.field == "conditions.x.intensity_pct_rmt"
    assert said in str(e.value) and "% RMT" in str(e.value)


def test_the_spec_is_refused_before_any_work():
    with pytest.raises(InputError) as e:
        parse_spec(_spec())
    assert e.value.field == "conditions.stim.intensity_pct_rmt"
    assert "active motor threshold" in str(e.value)
    assert parse_spec(_spec(intensity_pct_rmt=80))["conditions"]["stim"]["intensity_pct_rmt"] == 80
    light = parse_spec(_spec(modality="light", light_populations=["IT_L5"]))  # no TMS dose
    assert light["conditions"]["stim"]["intensity_pct_rmt"] is None


def test_cortexsim_run_exits_2_naming_the_condition_field(tmp_path, capsys):
    spec = tmp_path / "amt.toml"
    spec.write_text("""[experiment]
name = "amt"
[[timeline]]
kind = "stimulation"
[conditions.stim]
protocol = { base = "itbs600", n_pulses = 30 }
""")
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "conditions.stim.intensity_pct_rmt" in err and "80" in err
    assert not (tmp_path / "out" / "checkpoints").exists()


@pytest.mark.parametrize("name", shipped_specs("experiment"))
def test_every_shipped_study_has_a_known_dose(name):
    load_experiment(name)


# --------------------------------------------------------------------------- the outputs
CONDS = {
    "control": {},
    "stim": {"protocol": "itbs600", "intensity_pct_rmt": 90},
    "saint": {"protocol": "aitbs_day"},  # the protocol's 90 % RMT
    "sham": {"protocol": "sham_aitbs_day"},
    "light": {"protocol": "aitbs_day", "modality": "light"},
    "weak_coil": {"protocol": "itbs1800", "intensity_pct_rmt": 120},
}


def test_the_dose_of_every_condition_is_in_results_summary_and_report(tmp_path):
    # a condition's own field calibration (an override) gives its own field
    cfg, datasets, models = synthetic_run(CONDS, {"weak_coil": {"field.rmt_macroscopic_vpm": 40.0}})
    Results.from_conditions(cfg, datasets, models).save(tmp_path)
    coupling = load_model("coupling")
    e90 = float(macroscopic_field_vpm(90.0, coupling))
    expect = {
        "control": (None, "no stimulation", None),
        "stim": (90.0, "condition", e90),
        "saint": (90.0, "protocol aitbs_day", e90),
        "sham": (90.0, "protocol sham_aitbs_day", 0.0),
        "light": (None, "light", None),
        "weak_coil": (120.0, "condition", 48.0),
    }

    ds = xr.load_dataset(tmp_path / "results.nc")
    summary = json.loads((tmp_path / "summary.json").read_text())["stimulation"]
    assert list(summary) == list(CONDS)
    for c, (pct, source, field) in expect.items():
        row = summary[c]
        assert row["intensity_pct_rmt"] == pct and row["intensity_source"].startswith(source)
        assert row["field_macroscopic_vpm"] == (None if field is None else pytest.approx(field))
        nc = {v: ds[v].sel(condition=c).item() for v in row}
        assert nc["intensity_source"] == row["intensity_source"]
        for v in ("intensity_pct_rmt", "field_macroscopic_vpm", "field_cell_vpm"):
            assert (row[v] is None and math.isnan(nc[v])) or nc[v] == pytest.approx(row[v])
    assert summary["stim"]["field_cell_vpm"] == pytest.approx(float(cell_field_vpm(90, coupling)))
    assert summary["sham"]["field_cell_vpm"] == 0.0
    assert ds.intensity_pct_rmt.attrs["units"] == "%RMT"
    assert ds.field_macroscopic_vpm.attrs["units"] == "V/m"

    report = (tmp_path / "report.md").read_text()
    table = report.split("## Stimulation per condition")[1].split("##")[0]
    row = {
        ln.split("|")[1].strip(): [x.strip() for x in ln.split("|")[2:-1]]
        for ln in table.splitlines()
        if ln.startswith("| ") and not ln.startswith("| condition |")
    }
    assert row["stim"] == [
        "itbs600",
        "90",
        "condition",
        f"{e90:.1f}",
        f"{float(cell_field_vpm(90, coupling)):.1f}",
    ]
    assert row["weak_coil"][1:] == [
        "120",
        "condition",
        "48.0",
        f"{float(cell_field_vpm(120, coupling)) * 40 / 60:.1f}",
    ]
    assert row["control"] == ["none", "-", "no stimulation", "-", "-"]
    assert row["sham"][3] == "0.0"


def test_results_saved_before_the_dose_variables_still_summarise(tmp_path):
    cfg, datasets, models = synthetic_run({"stim": CONDS["stim"]})
    res = Results.from_conditions(cfg, datasets, models)
    old = Results(
        res.data.drop_vars(
            ["intensity_pct_rmt", "intensity_source", "field_macroscopic_vpm", "field_cell_vpm"]
        )
    )
    assert old.summary()["stimulation"] == {}
    assert np.isfinite(res.data.intensity_pct_rmt.values).all()
