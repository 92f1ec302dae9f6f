"""Every number a user gives the coupling module has a documented range, checked up front
(issue 9, fault 01 and its kind: a pulse width of 1e-6 us used to allocate gigabytes)."""
import math

import numpy as np
import pytest

from cortexsim.cli import main
from cortexsim.coupling import (
    WAVEFORMS,
    cell_field_vpm,
    field_at_target,
    from_samples,
    get_waveform,
    limits,
    load_field_samples,
    macroscopic_to_cell_vpm,
    pct_rmt_from_cell_field,
    recruitment,
    sample_thresholds,
    solve_cable,
    somatic_polarization_mV,
    strength_duration,
    threshold_report,
    threshold_vpm,
)
from cortexsim.coupling.waveforms import WIDTH_PARAMS
from cortexsim.errors import InputError
from cortexsim.params import load_model

#: inputs of the kind of fault 01: tiny, huge, not finite, negative, zero, not a number
BAD_WIDTHS = ["1e-6", "1e9", "1e7", "nan", "inf", "-inf", "-60", "0", "abc", "true", ""]
BAD_ANGLES = ["nan", "inf", "-inf", "361", "-1e9", "1e300", "x", "false"]
BAD_NUMBERS = [float("nan"), math.inf, -math.inf, -1.0, 1e300, True, False, "100"]


def _cli_error(capsys, *args) -> str:
    assert main(["threshold", "--cell-type", "PT_L5", *args]) == 2, args
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err           # one line, no traceback
    assert out.out == ""
    return lines[0]


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("waveform", WAVEFORMS)
def test_cli_pulse_width_out_of_range_names_field_and_range(capsys, waveform):
    lo, hi, unit = limits.param_range(load_model("coupling"), WIDTH_PARAMS[waveform])
    for bad in BAD_WIDTHS:
        err = _cli_error(capsys, "--waveform", waveform, f"--pulse-width-us={bad}")
        assert "pulse_width_us" in err, err
        if bad not in ("abc", "true", ""):
            assert f"{lo:g} to {hi:g} {unit}" in err, err
    # just inside the range works; just outside does not
    for ok in (lo, hi):
        assert main(["threshold", "--cell-type", "PT_L5", "--waveform", waveform,
                     "--pulse-width-us", str(ok), "--json"]) == 0
        capsys.readouterr()
    for bad in (lo * 0.999, hi * 1.001):
        assert "pulse_width_us" in _cli_error(capsys, "--waveform", waveform,
                                              "--pulse-width-us", repr(bad))


def test_cli_angle_out_of_range_names_field(capsys):
    lo, hi, unit = limits.limit("angle_deg")
    for bad in BAD_ANGLES:
        err = _cli_error(capsys, f"--angle-deg={bad}")
        assert "angle_deg" in err, err
    assert f"{lo:g} to {hi:g} {unit}" in _cli_error(capsys, "--angle-deg", "400")
    for ok in (lo, hi, -90.0):
        assert main(["threshold", "--cell-type", "PT_L5", "--angle-deg", str(ok)]) == 0
        capsys.readouterr()


def test_cli_unipolar_threshold_is_a_number(capsys):
    """The physics fault of issue 9: PT_L5, rectangular, angle 0 printed null."""
    import json
    for w in ("10", "30", "60", "120", "2000"):
        assert main(["threshold", "--cell-type", "PT_L5", "--waveform", "rectangular",
                     "--pulse-width-us", w, "--json"]) == 0
        th = json.loads(capsys.readouterr().out)["threshold_vpm"]
        assert isinstance(th, float) and 0 < th < math.inf


# --------------------------------------------------------------------------- Python API
def test_width_checked_for_every_entry_point():
    for wf in WAVEFORMS:
        for bad in BAD_NUMBERS + [1e-6, 1e7]:
            with pytest.raises(InputError, match="pulse_width_us"):
                get_waveform(wf, bad)
            with pytest.raises(InputError, match="pulse_width_us"):
                threshold_vpm("IT_L5", wf, pulse_width_us=bad)
    with pytest.raises(InputError, match="pulse_width_us"):
        recruitment("PV", 100.0, "rectangular", pulse_width_us=1e9)
    with pytest.raises(InputError, match="pulse_width_us"):
        sample_thresholds("PV", 3, np.random.default_rng(0), "rectangular", pulse_width_us=0.0)
    with pytest.raises(InputError, match="pulse_width_us"):
        strength_duration("PT_L5", [30.0, 1e-6])


def test_angle_checked_for_every_entry_point():
    rng = np.random.default_rng(0)
    for bad in [b for b in BAD_NUMBERS if b != -1.0] + [None, [1.0], -360.5]:
        for call in (lambda a: threshold_vpm("PT_L5", angle_deg=a),
                     lambda a: recruitment("PT_L5", 100.0, angle_deg=a),
                     lambda a: sample_thresholds("PT_L5", 3, rng, angle_deg=a),
                     lambda a: somatic_polarization_mV("PT_L5", 100.0, angle_deg=a),
                     lambda a: threshold_report("PT_L5", angle_deg=a),
                     lambda a: field_at_target(100.0, a)):
            with pytest.raises(InputError, match="angle_deg"):
                call(bad)


def test_field_values_checked():
    _, hi, _ = limits.limit("field_vpm")
    for bad in BAD_NUMBERS + [None, hi * 1.01, [100.0, float("nan")], np.array([1.0, -2.0]),
                              np.array(["1", "2"]), [True, False]]:
        for call in (lambda e: recruitment("IT_L23", e),
                     lambda e: somatic_polarization_mV("IT_L23", e),
                     lambda e: pct_rmt_from_cell_field(e),
                     lambda e: macroscopic_to_cell_vpm(e),
                     lambda e: field_at_target(e)):
            with pytest.raises(InputError, match="field_vpm"):
                call(bad)
    assert recruitment("IT_L23", hi) == pytest.approx(1.0)
    # too many values: refused before the (values x quadrature nodes) work starts
    with pytest.raises(InputError, match="field_vpm"):
        recruitment("IT_L23", np.zeros(limits.MAX_FIELD_VALUES + 1))
    with pytest.raises(InputError, match="field_vpm"):
        recruitment("IT_L23", np.linspace(1.0, 1000.0, limits.MAX_FIELD_VALUES))
    # repeated values are evaluated once: a long train of one intensity is cheap
    E = np.full(limits.MAX_FIELD_VALUES, 250.0)
    assert np.all(recruitment("IT_L23", E) == recruitment("IT_L23", 250.0))


def test_pct_rmt_checked():
    lo, hi, _ = limits.limit("pct_rmt")
    assert cell_field_vpm(hi) > 0
    for bad in BAD_NUMBERS + [None, hi + 1]:
        with pytest.raises(InputError, match="pct_rmt") as ei:
            cell_field_vpm(bad)
        if not isinstance(bad, (bool, str, type(None))):
            assert f"{lo:g} to {hi:g}" in str(ei.value)


def test_sample_count_checked_before_drawing():
    rng = np.random.default_rng(0)
    for bad in (-1, 2.5, True, "10", float("nan"), None):
        with pytest.raises(InputError, match="n"):
            sample_thresholds("PV", bad, rng)
    with pytest.raises(InputError, match="n: needs"):
        sample_thresholds("PV", 10**12, rng)  # would be terabytes
    assert sample_thresholds("PV", 0, rng).shape == (0,)


def test_user_samples_checked():
    t = np.linspace(0.0, 300e-6, 301)
    e = np.sin(2 * np.pi * t / 300e-6)
    assert from_samples(t, e).pulse_width_us == pytest.approx(300.0)
    _, hi, _ = limits.limit("custom_duration_us")
    with pytest.raises(InputError, match="t_s"):      # 1 s of samples
        from_samples(np.linspace(0.0, 1.0, 101), np.ones(101))
    with pytest.raises(InputError, match="t_s"):      # 1 ns of samples
        from_samples(np.linspace(0.0, 1e-9, 11), np.ones(11))
    assert from_samples(np.linspace(0.0, hi * 1e-6, 11), np.ones(11)).pulse_width_us \
        == pytest.approx(hi)
    with pytest.raises(InputError, match="t_s"):
        from_samples(np.arange(limits.MAX_USER_SAMPLES + 1) * 1e-9,
                     np.ones(limits.MAX_USER_SAMPLES + 1))
    with pytest.raises(InputError, match="t_s|e"):
        from_samples(["a", "b"], [1.0, 2.0])
    with pytest.raises(InputError, match="e"):
        from_samples(t, np.where(t > 1e-4, np.nan, 1.0))


def test_field_files_checked(tmp_path, monkeypatch):
    hdr = "x,y,z,Ex,Ey,Ez\n"
    f = tmp_path / "mv.csv"  # a file in mV/m: 1000x too large
    f.write_text(hdr + "0,0,0,0,0,60000\n")
    with pytest.raises(InputError, match="field_file") as ei:
        load_field_samples(f)
    assert "field_vpm" in str(ei.value)
    ok = tmp_path / "ok.csv"
    ok.write_text(hdr + "0,0,0,0,0,60\n1,0,0,0,60,0\n")
    assert load_field_samples(ok).magnitude_vpm.tolist() == [60.0, 60.0]
    # size limits are checked before the file is parsed
    monkeypatch.setattr(limits, "MAX_FIELD_FILE_BYTES", 10)
    monkeypatch.setattr("cortexsim.coupling.field.MAX_FIELD_FILE_BYTES", 10)
    with pytest.raises(InputError, match="field_file: needs"):
        load_field_samples(ok)
    monkeypatch.undo()
    monkeypatch.setattr("cortexsim.coupling.field.MAX_FIELD_SAMPLES", 1)
    with pytest.raises(InputError, match="field_file: needs 2 sample rows"):
        load_field_samples(ok)
    npy = tmp_path / "ok.npy"
    np.save(npy, np.array([[0, 0, 0, 0, 0, 60.0], [1, 0, 0, 0, 60, 0]]))
    with pytest.raises(InputError, match="field_file: needs 2 sample rows"):
        load_field_samples(npy)


# --------------------------------------------------------------------------- model overrides
def test_every_range_documented():
    """Each [limits] entry and each parameter range carries unit and source, and lo < hi."""
    tree = load_model("coupling")
    for name, node in tree["limits"].items():
        lo, hi, _ = limits.limit(name)
        assert lo < hi and node["unit"] and node["source"].strip(), name
    n_ranges = 0

    def walk(node, path):
        nonlocal n_ranges
        if isinstance(node, dict) and "range" in node:
            lo, hi = node["range"]
            assert lo < hi and lo <= node["value"] <= hi and "range" in node["source"] \
                or path.startswith("response.quadrature") or path.endswith(
                    ("n_terminals", "isotropic_fraction")), path
            n_ranges += 1
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
    walk(dict(tree), "")
    assert n_ranges >= 10


@pytest.mark.parametrize("path, value", [
    ("waveforms.dt_us", 1e-9), ("waveforms.dt_us", 100.0),
    ("waveforms.rectangular_width_us", 1e-6), ("waveforms.biphasic_period_us", 1e9),
    ("waveforms.monophasic_decay_tau_us", 1e6), ("waveforms.monophasic_tail_taus", 1e4),
    ("response.tail_us", 1e9), ("response.quadrature_polar", 100000),
    ("response.quadrature_azimuth", 0), ("cells.PT_L5.n_terminals", 10**6),
    ("cells.PT_L5.isotropic_fraction", 1.5), ("limits.angle_deg", "wide"),
])
def test_overrides_out_of_range_refused(path, value):
    p = load_model("coupling")
    with pytest.raises(InputError, match=path.replace(".", r"\.")):
        p.set(path, value)


def test_plain_dict_parameters_cannot_exhaust_memory():
    """Parameters given as a plain dict (no ranges) still cannot ask for gigabytes: the
    numerical limits stop them, naming the setting."""
    d = load_model("coupling").values()
    d["waveforms"]["dt_us"] = 1e-7
    with pytest.raises(InputError, match="dt_us"):
        threshold_vpm("PT_L5", params=d)
    d = load_model("coupling").values()
    d["response"]["tail_us"] = 1e9
    with pytest.raises(InputError, match="tail_us"):
        threshold_vpm("PT_L5", params=d)
    d = load_model("coupling").values()
    d["cells"]["PV"]["n_terminals"] = 10**7
    with pytest.raises(InputError, match="n: needs"):
        sample_thresholds("PV", 1000, np.random.default_rng(0), params=d)


def test_cable_solver_grid_checked():
    wf = get_waveform("rectangular", 30)
    for kw, field in (({"dx_um": 1e-6}, "dx_um"), ({"dx_um": -1.0}, "dx_um"),
                      ({"substeps": 10**7}, "substeps"), ({"substeps": 0}, "substeps"),
                      ({"tail_us": float("nan")}, "tail_us")):
        with pytest.raises(InputError, match=field):
            solve_cable(wf, 1.0, 500.0, 400.0, 1000.0, **kw)
