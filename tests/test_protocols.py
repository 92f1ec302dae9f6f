"""Tests of cortexsim.protocols: built-in pulse trains, schedules, sham, spec validation."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortexsim.cli import main
from cortexsim.errors import InputError
from cortexsim.params import load_model
from cortexsim.protocols import (
    Protocol,
    builtin_sources,
    describe_builtins,
    describe_protocols,
    get_protocol,
    list_protocols,
    load_protocol_file,
    protocol_from_spec,
)

EXPECTED = {  # name: (n_pulses, first-to-last duration s, sessions/day, interval min, days)
    "itbs600": (600, 191.84, 1, 0.0, 1),
    "itbs1800": (1800, 591.84, 1, 0.0, 1),
    "ctbs300": (300, 19.84, 1, 0.0, 1),
    "ctbs600": (600, 39.84, 1, 0.0, 1),
    "imtbs": (600, 109.84, 1, 0.0, 1),
    "rtms1hz": (900, 899.0, 1, 0.0, 1),
    "rtms10hz": (3000, 2223.9, 1, 0.0, 1),
    "sham": (1800, 591.84, 1, 0.0, 1),
    "aitbs_day": (1800, 591.84, 10, 50.0, 1),
    "saint": (1800, 591.84, 10, 50.0, 5),
    "sham_aitbs_day": (1800, 591.84, 10, 50.0, 1),
}


def test_builtin_list_matches_expected_set():
    assert set(list_protocols()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_counts_durations_schedule(name):
    n, dur, spd, interval, days = EXPECTED[name]
    p = get_protocol(name)
    t = p.pulse_times()
    assert t.dtype == np.float64 and t.shape == (n,)
    assert p.n_pulses == n
    assert t[0] == 0.0
    assert np.all(np.diff(t) > 0)
    assert p.duration_s == pytest.approx(dur, abs=1e-9)
    assert (p.sessions_per_day, p.session_interval_min, p.days) == (spd, interval, days)
    assert p.n_sessions == spd * days
    assert p.session_starts_s().shape == (spd * days,)
    amp = p.intensities()
    assert amp.shape == (n,)
    assert np.all(amp == (0.0 if p.sham else 1.0))


def test_itbs1800_structure():
    p = get_protocol("itbs1800")
    t = p.pulse_times()
    d = np.diff(t)
    # intra-burst 20 ms, burst start to burst start 200 ms, train start to train start 10 s
    assert np.allclose(d[:2], 0.020, atol=1e-12)
    bursts = t[::3]
    assert bursts.size == 600
    within = np.diff(bursts.reshape(60, 10), axis=1)
    assert np.allclose(within, 0.2, atol=1e-9)
    train_starts = t[::30]
    assert train_starts.size == 60
    assert np.allclose(np.diff(train_starts), 10.0, atol=1e-9)
    # exact multiples where periodic: computed from indices, not accumulated
    assert train_starts[-1] == 590.0
    assert np.array_equal(train_starts, np.arange(60) * 10.0)
    # gaps: 20 ms inside bursts, 160 ms between bursts, 8.16 s between trains
    gaps = np.unique(np.round(d, 9))
    assert np.allclose(gaps, [0.02, 0.16, 8.16])
    assert p.intensity_pct_rmt == 90.0
    assert (p.pulses_per_train, p.n_trains, p.train_period_s) == (30, 60, 10.0)


def test_itbs600_and_ctbs_and_imtbs_structure():
    itbs = get_protocol("itbs600")
    assert itbs.n_trains == 20 and itbs.intensity_pct_amt == 80.0
    c600 = get_protocol("ctbs600")
    t = c600.pulse_times()
    bursts = t[::3]
    assert bursts.size == 200
    assert np.allclose(np.diff(bursts), 0.2, atol=1e-9)  # continuous: no gap between trains
    assert c600.duration_s + 1 / 50 + (1 / 5 - 3 / 50) == pytest.approx(40.0)
    assert get_protocol("ctbs300").duration_s == pytest.approx(19.84)
    im = get_protocol("imtbs")
    t = im.pulse_times()
    assert im.pulses_per_train == 75 and im.n_trains == 8
    assert np.allclose(t[::75], np.arange(8) * 15.0)


def test_rtms_builtins():
    p1 = get_protocol("rtms1hz")
    assert p1.kind == "rtms" and p1.pulses_per_burst is None and p1.rtms_freq_hz == 1.0
    assert np.array_equal(p1.pulse_times(), np.arange(900, dtype=float))
    p10 = get_protocol("rtms10hz")
    t = p10.pulse_times()
    assert p10.pulses_per_train == 40 and p10.n_trains == 75
    assert np.allclose(t[:40], np.arange(40) / 10.0)
    assert np.allclose(np.diff(t[::40]), 30.0)
    assert np.unique(np.round(np.diff(t), 9)).tolist() == [0.1, 26.1]
    assert p10.intensity_pct_rmt == 120.0


def test_sham_same_timing_zero_field():
    real, sham = get_protocol("itbs1800"), get_protocol("sham")
    assert np.array_equal(real.pulse_times(), sham.pulse_times())
    assert np.all(sham.intensities() == 0.0) and np.all(real.intensities() == 1.0)
    a, s = get_protocol("aitbs_day"), get_protocol("sham_aitbs_day")
    assert np.array_equal(a.session_starts_s(), s.session_starts_s())
    assert np.array_equal(a.pulse_times(), s.pulse_times())
    assert s.sham and not a.sham
    # the flag works on any protocol spec
    c = protocol_from_spec({"base": "rtms10hz", "sham": True})
    assert np.array_equal(c.pulse_times(), get_protocol("rtms10hz").pulse_times())
    assert c.intensities().sum() == 0.0


def test_aitbs_schedule():
    p = get_protocol("aitbs_day")
    starts = p.session_starts_s()
    assert starts.shape == (10,)
    assert np.array_equal(starts, np.arange(10) * 3000.0)
    assert p.total_pulses == 18000
    saint = get_protocol("saint")
    s = saint.session_starts_s()
    assert s.shape == (50,)
    assert s[10] == 86400.0 and s[-1] == 4 * 86400.0 + 9 * 3000.0
    assert saint.total_pulses == 90000
    times, session = p.schedule_pulse_times()
    assert times.shape == (18000,) and np.all(np.diff(times) > 0)
    assert times[1800] == 3000.0 and session[1800] == 1


def test_spec_override_and_units():
    p = protocol_from_spec({"base": "itbs1800", "n_pulses": 1000}, name="mine")
    assert p.name == "mine" and p.n_pulses == 1000
    t = p.pulse_times()
    assert t.size == 1000 and p.n_trains == 34  # last train cut at 1000 pulses
    assert t[-1] == pytest.approx(33 * 10 + 3 * 0.2)  # 10 pulses into train 34: burst 4, pulse 1
    q = protocol_from_spec({
        "kind": "tbs",
        "pulses_per_burst": {"value": 3, "unit": "pulses", "source": "me"},
        "intra_burst_freq_hz": {"value": 0.05, "unit": "kHz"},
        "burst_freq_hz": 5.0,
        "train_duration_s": {"value": 2000, "unit": "ms"},
        "inter_train_interval_s": {"value": 8.0, "unit": "s"},
        "n_pulses": 600,
        "session_interval_min": {"value": 3000, "unit": "s"},
        "sessions_per_day": 3,
    })
    assert q.train_duration_s == 2.0 and q.session_interval_min == 50.0
    assert np.allclose(q.pulse_times(), get_protocol("itbs600").pulse_times())
    # a change of kind drops the base's kind-specific fields
    r = protocol_from_spec({"base": "itbs600", "kind": "rtms", "rtms_freq_hz": 5.0,
                            "n_pulses": 100})
    assert r.pulses_per_burst is None and r.pulse_times()[1] == pytest.approx(0.2)


def test_to_dict_round_trip_and_json():
    for name in list_protocols():
        p = get_protocol(name)
        d = p.to_dict()
        json.dumps(d)
        assert protocol_from_spec(d) == p
        assert get_protocol(d) == p
    saint = get_protocol("saint")
    assert isinstance(saint, Protocol) and get_protocol(saint) is saint
    hash(saint)  # frozen: usable as a dict key / cache key


def test_library_override_for_sweeps():
    tree = load_model("protocols")
    tree.set("itbs1800.n_pulses", 900)
    assert get_protocol("itbs1800", library=tree).n_pulses == 900
    assert get_protocol("aitbs_day", library=tree).n_pulses == 900  # follows base chain
    assert get_protocol("itbs1800").n_pulses == 1800  # built-ins untouched


def test_sources_follow_base_chain():
    src = builtin_sources("saint")
    assert "Cole" in src["session_interval_min"] and "Cole" in src["n_pulses"]
    for name in list_protocols():
        for field in ("n_pulses", "train_duration_s", "inter_train_interval_s"):
            assert len(builtin_sources(name)[field]) > 10


def test_unknown_protocol_name():
    with pytest.raises(InputError) as e:
        get_protocol("itbs9000")
    assert e.value.field == "protocol"
    for name in ("itbs1800", "aitbs_day", "sham"):
        assert name in str(e.value)
    with pytest.raises(InputError, match="protocol"):
        get_protocol(42)


BASE = {"base": "itbs1800"}


@pytest.mark.parametrize("override, field, text", [
    ({"inter_train_interval_s": -1.0}, "protocol.inter_train_interval_s", ">= 0"),
    ({"session_interval_min": -5.0}, "protocol.session_interval_min", ">= 0"),
    ({"train_duration_s": math.nan}, "protocol.train_duration_s", "finite"),
    ({"burst_freq_hz": math.inf}, "protocol.burst_freq_hz", "finite"),
    ({"n_pulses": 0}, "protocol.n_pulses", ">= 1"),
    ({"n_pulses": 10.5}, "protocol.n_pulses", "integer"),
    ({"n_pulses": "many"}, "protocol.n_pulses", "expected an integer"),
    ({"n_pulses": "1800"}, "protocol.n_pulses", "expected an integer"),
    ({"n_pulses": True}, "protocol.n_pulses", "expected an integer"),
    ({"sham": "yes"}, "protocol.sham", "true or false"),
    ({"kind": "ptbs"}, "protocol.kind", "tbs, rtms"),
    ({"kind": ["tbs"]}, "protocol.kind", "unknown value"),
    ({"days": 0}, "protocol.days", ">= 1"),
    ({"intensity_pct_rmt": 0.0}, "protocol.intensity_pct_rmt", "> 0"),
    ({"intensity_pct_rmt": -90.0}, "protocol.intensity_pct_rmt", "> 0"),
    ({"intensity_pct_rmt": math.nan}, "protocol.intensity_pct_rmt", "finite"),
    ({"intensity_pct_amt": math.inf}, "protocol.intensity_pct_amt", "finite"),
    ({"n_pulses": -600}, "protocol.n_pulses", ">= 1"),
    ({"train_duration_s": -2.0}, "protocol.train_duration_s", "> 0"),
    ({"pulses_per_burst": 0}, "protocol.pulses_per_burst", ">= 1"),
    ({"train_duration_s": 2.1}, "protocol.train_duration_s", "whole number"),
    ({"intra_burst_freq_hz": 10.0}, "protocol.intra_burst_freq_hz", "does not fit"),
    ({"rtms_freq_hz": 10.0}, "protocol.rtms_freq_hz", "not used by kind 'tbs'"),
    ({"n_pulse": 10}, "protocol.n_pulse", "unknown key"),
    ({"n_pulses": {"value": 10, "unit": "Hz"}}, "protocol.n_pulses", "unknown unit"),
    ({"n_pulses": {"val": 10}}, "protocol.n_pulses", "malformed table"),
    ({"kind": {"value": "tbs"}}, "protocol.kind", "setting"),
    ({"base": "nope"}, "protocol.base", "unknown base"),
    ({"sessions_per_day": 10, "session_interval_min": 5.0}, "protocol.session_interval_min",
     "overlap"),
    ({"sessions_per_day": 10, "session_interval_min": 200.0, "days": 2},
     "protocol.session_interval_min", "next day"),
])
def test_validation_errors(override, field, text):
    with pytest.raises(InputError) as e:
        protocol_from_spec({**BASE, **override})
    assert e.value.field == field
    assert text in str(e.value)


def test_missing_keys_and_malformed_specs():
    with pytest.raises(InputError, match="missing required key") as e:
        protocol_from_spec({"kind": "tbs", "n_pulses": 10})
    assert "train_duration_s" in str(e.value)
    with pytest.raises(InputError, match="requires rtms_freq_hz"):
        protocol_from_spec({"kind": "rtms", "train_duration_s": 1.0,
                            "inter_train_interval_s": 0.0, "n_pulses": 5})
    with pytest.raises(InputError, match="must be a table"):
        protocol_from_spec(["itbs1800"])
    with pytest.raises(InputError, match="unknown key") as e:
        protocol_from_spec({"base": "itbs1800", "foo": 1, "bar": 2})
    assert "n_pulses" in str(e.value)  # lists the allowed keys


def test_user_toml_file(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[short_itbs]\nbase = "itbs1800"\nn_pulses = { value = 300, unit = "pulses", '
                 'source = "me" }\n\n[short_sham]\nbase = "short_itbs"\nsham = true\n')
    protos = load_protocol_file(f)
    assert protos["short_itbs"].n_pulses == 300 and protos["short_sham"].sham
    assert protos["short_sham"].n_pulses == 300
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\nbase = "itbs1800"\nn_pulses = -3\n')
    with pytest.raises(InputError, match="n_pulses"):
        load_protocol_file(bad)


def test_cli_protocols_json(capsys):
    assert main(["protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(EXPECTED)
    for r in rows:
        for key in ("name", "n_pulses", "duration_s", "sessions_per_day", "session_interval_min",
                    "kind", "days", "total_pulses", "description"):
            assert key in r
    assert by_name["itbs1800"]["duration_s"] == pytest.approx(591.84)
    assert by_name["aitbs_day"]["sessions_per_day"] == 10
    assert by_name["aitbs_day"]["session_interval_min"] == 50.0
    assert by_name["saint"]["total_pulses"] == 90000
    assert describe_builtins() == rows
    assert main(["protocols"]) == 0
    assert "aitbs_day" in capsys.readouterr().out


def test_errors_name_the_file_and_table(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('[ok]\nbase = "itbs1800"\n\n[x]\nbase = "itbs1800"\n'
                   'intensity_pct_rmt = nan\n')
    with pytest.raises(InputError) as e:
        load_protocol_file(bad)
    assert e.value.field == "mine.toml [x] protocol.intensity_pct_rmt"
    assert "finite" in str(e.value)
    tree = load_model("protocols")
    with pytest.raises(InputError, match="itbs1800.n_pulses: out of range"):
        tree.set("itbs1800.n_pulses", -5)  # an override is checked when it is set ...
    tree["itbs1800"]["n_pulses"]["value"] = -5  # ... and a library edited by hand when used
    with pytest.raises(InputError) as e:
        get_protocol("aitbs_day", library=tree)
    assert e.value.field == "[aitbs_day] protocol.n_pulses" and ">= 1" in str(e.value)


def test_protocol_file_missing_or_malformed(tmp_path):
    with pytest.raises(InputError, match="protocol file: file not found"):
        load_protocol_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[x\nbase = 1\n")
    with pytest.raises(InputError, match="protocol file: malformed TOML"):
        load_protocol_file(bad)
    flat = tmp_path / "flat.toml"
    flat.write_text('n_pulses = 3\n')
    with pytest.raises(InputError, match="must be a table"):
        load_protocol_file(flat)


def test_builtin_file_missing_or_malformed(tmp_path, monkeypatch):
    """models/protocols.toml gone or broken: a clear error, never an empty list."""
    monkeypatch.setenv("CORTEXSIM_MODELS", str(tmp_path))
    with pytest.raises(InputError, match="protocols.toml: file not found") as e:
        list_protocols()
    assert "CORTEXSIM_MODELS" in str(e.value)
    (tmp_path / "protocols.toml").write_text("[itbs600\n")
    with pytest.raises(InputError, match="malformed TOML"):
        describe_builtins()
    (tmp_path / "protocols.toml").write_text('[p]\nkind = "tbs"\nn_pulses = 3\n')
    with pytest.raises(InputError) as e:
        describe_builtins()
    assert e.value.field.startswith("protocols.toml [p] protocol.")
    assert "missing required key" in str(e.value)


def test_describe_protocols_names_and_file(tmp_path):
    assert describe_protocols() == describe_builtins()
    rows = describe_protocols(["saint", "ctbs300"])
    assert [r["name"] for r in rows] == ["saint", "ctbs300"]
    assert rows[0]["total_pulses"] == 90000 and rows[1]["duration_s"] == pytest.approx(19.84)
    f = tmp_path / "mine.toml"
    f.write_text('[half_day]\nbase = "aitbs_day"\nsessions_per_day = 5\n')
    (row,) = describe_protocols(path=f)
    assert (row["name"], row["sessions_per_day"], row["total_pulses"]) == ("half_day", 5, 9000)
    assert [r["name"] for r in describe_protocols(["half_day", "sham"], path=f)] == \
        ["half_day", "sham"]
    with pytest.raises(InputError) as e:
        describe_protocols(["itbs9000"], path=f)
    assert e.value.field == "protocol" and "unknown protocol 'itbs9000'" in str(e.value)
    assert "itbs1800" in str(e.value) and "half_day" in str(e.value)


@st.composite
def tbs_specs(draw):
    ppb = draw(st.integers(1, 6))
    fi = draw(st.floats(5.0, 200.0))
    fb = draw(st.floats(0.1, fi / ppb))  # burst fits its period
    nb = draw(st.integers(1, 30))
    iti = draw(st.sampled_from([0.0, 0.5, 1.0, 8.0, 13.7]))
    n = draw(st.integers(1, 3000))
    return {"kind": "tbs", "pulses_per_burst": ppb, "intra_burst_freq_hz": fi,
            "burst_freq_hz": fb, "train_duration_s": nb / fb, "inter_train_interval_s": iti,
            "n_pulses": n, "sham": draw(st.booleans())}


@settings(max_examples=150, deadline=None)
@given(tbs_specs())
def test_property_any_valid_tbs_spec(spec):
    p = protocol_from_spec(spec)
    t = p.pulse_times()
    assert t.shape == (spec["n_pulses"],)
    assert np.all(np.isfinite(t)) and t[0] == 0.0
    assert np.all(np.diff(t) > 0)
    ppb, fi, fb = spec["pulses_per_burst"], spec["intra_burst_freq_hz"], spec["burst_freq_hz"]
    if t.size > 1:
        tol = 1e-9 * max(1.0, t[-1])
        dmin = np.diff(t).min()
        # no two pulses closer than the intra-burst interval (or the burst period for ppb = 1)
        floor = 1.0 / fi if ppb > 1 else 1.0 / fb
        if ppb == 1 and p.bursts_per_train == 1:
            floor = p.train_period_s
        assert dmin >= floor - tol
        if ppb > 1:
            assert dmin == pytest.approx(1.0 / fi, rel=1e-6, abs=tol)
    assert np.all(p.intensities() == (0.0 if spec["sham"] else 1.0))
    assert protocol_from_spec(p.to_dict()) == p
