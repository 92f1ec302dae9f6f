"""NWB export (issue 23, item 3): the shipped small study's results.nc written as NWB reads back
with pynwb to the identical numbers (every time series, the sessions, the pulses, the config
and model values with sources), nwbinspector reports no critical issue, ``cortexsim export
OUT --nwb`` writes OUT/results.nwb, and a missing pynwb is one clear error.
"""

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.results import Results

pynwb = pytest.importorskip("pynwb")

STUDY = Path(__file__).resolve().parents[1] / "docs" / "results" / "aitbs_study_small"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    res = Results.load(STUDY / "results.nc")
    path = res.to_nwb(tmp_path_factory.mktemp("nwb") / "study.nwb", session_start_time=START)
    return res, path


def _expected(ds, c: str, var: str, starts):
    """(name, timestamps, data) of every series the file should hold for ``var`` of ``c``:
    one per population, the time points with a value (NaN left out)."""
    da = ds[var].sel(condition=c)
    if "time_d" in da.dims:
        t, axis = ds.time_d.values * 86400.0, "time_d"
    elif "readout" in da.dims and var != "readout_time_d":
        t, axis = ds.readout_time_d.sel(condition=c).values * 86400.0, "readout"
    elif "session" in da.dims and len(starts):
        t, axis = np.asarray(starts), "session"
        da = da.isel(session=slice(0, len(starts)))
    else:
        return []
    out = []
    for pop in map(str, ds.population.values) if "population" in da.dims else [None]:
        x = (da.sel(population=pop) if pop else da).transpose(axis).values.astype(float)
        keep = np.isfinite(t) & ~np.isnan(x)
        out.append((f"{var}_{pop}" if pop else var, t[keep], x[keep]))
    return out


def test_numbers_read_back_identical(exported):
    from cortexsim.plan import condition_plans

    res, path = exported
    ds = res.data
    plans = condition_plans(json.loads(ds.attrs["config"]))
    n = 0
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        assert f.session_start_time == START
        for c in map(str, ds.condition.values):
            mod = f.processing[f"condition_{c}"]
            for var in ds.data_vars:
                for name, t, x in _expected(ds, c, var, plans[c].session_starts_s):
                    if not x.size:
                        assert name not in mod.data_interfaces
                        continue
                    np.testing.assert_array_equal(mod[name].data[:], x)
                    np.testing.assert_array_equal(mod[name].timestamps[:], t)
                    n += 1
        # every series in the file was compared
        assert (
            n
            == sum(
                len(m.data_interfaces)
                for k, m in f.processing.items()
                if k.startswith("condition_")
            )
            > 150
        )
        assert len(f.processing["condition_stress_aitbs"]["spine_density_IT_L5"].data) == 48
        assert (
            f.processing["condition_stress_aitbs"]["session_rate_IT_L5"].timestamps[0]
            == 16 * 86400.0
        )


def test_sessions_pulses_and_metadata(exported):
    res, path = exported
    cfg = json.loads(res.data.attrs["config"])
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        sess = f.intervals["stimulation_sessions"].to_dataframe()
        assert len(sess) == 30  # 10 sessions x 3 conditions
        aitbs = sess[sess.condition == "stress_aitbs"]
        assert aitbs.start_time.iloc[0] == 16 * 86400.0  # after 2 d baseline, 14 d stress
        assert aitbs.start_time.diff().iloc[1] == pytest.approx(50 * 60.0)
        assert set(sess[sess.condition == "stress_sham"].sham) == {True}
        pulses = f.stimulus["pulses_stress_aitbs"]
        assert len(pulses.timestamps) == 18000 and set(pulses.data[:]) == {1.0}
        assert set(f.stimulus["pulses_stress_sham"].data[:]) == {0.0}
        assert json.loads(f.scratch["config"].data) == cfg
        models = json.loads(f.scratch["models"].data)
        p = models["stress_aitbs"]["circuit.conn.IT_L23.IT_L23.p"]
        assert p["value"] == 0.1 and p["unit"] == "1" and "Lefort" in p["source"]
        prov = json.loads(f.scratch["provenance"].data)
        assert prov["cortexsim_version"] == res.data.attrs["cortexsim_version"]
        assert prov["seed"] == 1
        table = f.processing["experiment"]["conditions"].to_dataframe()
        assert list(table.protocol) == [
            str(cfg["conditions"][c]["protocol"]) for c in cfg["conditions"]
        ]
        np.testing.assert_array_equal(
            np.stack(table.baseline_rate.values), res.data.baseline_rate.values
        )


def test_nwbinspector_finds_no_critical_issue(exported):
    inspector = pytest.importorskip("nwbinspector")
    _, path = exported
    msgs = list(inspector.inspect_nwbfile(nwbfile_path=str(path)))
    critical = [m for m in msgs if m.importance == inspector.Importance.CRITICAL]
    errors = [m for m in msgs if m.importance.name in ("ERROR", "PYNWB_VALIDATION")]
    assert not critical and not errors, [m.message for m in critical + errors]


def test_cli_export_writes_out_results_nwb(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(STUDY / "results.nc", out / "results.nc")
    assert main(["export", str(out), "--nwb", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert Path(got["nwb"]) == out / "results.nwb" and (out / "results.nwb").is_file()
    assert main(["export", str(tmp_path / "nothing"), "--nwb"]) == 2
    assert "results.nc" in capsys.readouterr().err


def test_missing_pynwb_is_one_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb -> ImportError
    assert main(["export", str(STUDY), "--nwb", "--out", str(tmp_path / "x.nwb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'cortexsim[nwb]'" in err


def test_export_refuses_bad_inputs_and_never_clobbers_the_results(tmp_path, capsys):
    """Not a netCDF file, a truncated one, a netCDF file that is not a run's results, --out
    naming the results file itself or a folder: exit 2, one line, results.nc untouched."""
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(STUDY / "results.nc", out / "results.nc")
    before = (out / "results.nc").read_bytes()
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "trunc.nc").write_bytes(before[:1000])
    import xarray as xr

    xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(tmp_path / "other.nc")
    cases = [
        ([str(tmp_path / "notes.json")], "not a readable netCDF file"),
        ([str(tmp_path / "trunc.nc")], "not a readable netCDF file"),
        ([str(tmp_path / "other.nc")], "not a cortexsim results file"),
        ([str(out), "--out", str(out / "results.nc")], "the results file being exported"),
        ([str(out), "--out", str(tmp_path)], "is a folder"),
    ]
    for args, words in cases:
        assert main(["export", *args, "--nwb"]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, (args, err)
    assert (out / "results.nc").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["results.nc"]


def test_export_failure_leaves_no_partial_file_and_exits_74(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(STUDY / "results.nc", out / "results.nc")

    def disk_full(self, *a, **k):
        import errno

        Path(self.source).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pynwb.NWBHDF5IO, "write", disk_full)
    assert main(["export", str(out), "--nwb"]) == 74
    err = capsys.readouterr().err
    assert "results.nwb" in err and "No space left" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.nc"]
