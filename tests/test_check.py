"""``cortexsim check`` (issue 23, item 2): every shipped spec checks (exit 0) with a plan and an
estimate; a bad spec exits 2 with the line ``run`` gives, before anything is built; ``run``
refuses a run that will not fit in memory (shared/cases 33) unless ``--force``; the estimate
is within a factor 2 of the measured study wall times.
"""

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import test_spec_validation as tsv
from cortexsim import cost
from cortexsim.cli import main
from cortexsim.experiment import load_experiment
from cortexsim.params import experiments_dir
from cortexsim.plan import condition_plans, network_runs, synapse_count

no_network = tsv.no_network  # the fixture that fails a test if a network is built
SHIPPED = sorted(experiments_dir().rglob("*.toml"))
CASES = Path(__file__).resolve().parents[2] / "shared" / "cases"


def _params(test) -> list:
    """The parameter list of a parametrized test (reused, not copied)."""
    return [tuple(p) for m in test.pytestmark if m.name == "parametrize" for p in m.args[1]]


# --------------------------------------------------------------------------- shipped specs
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.relative_to(experiments_dir()).as_posix())
def test_every_shipped_spec_checks(spec, capsys, no_network):
    if spec.name == "common.toml":  # the shared part of the mechanism-search fits, not a spec
        pytest.skip("a fragment that other fit specs extend")
    assert main(["check", str(spec), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    est = rep["estimate"]
    assert rep["kind"] in cost.KINDS
    assert est["wall_s"] > 0 and est["peak_memory_MB"] > 0 and est["runs"] > 0
    if rep["kind"] == "experiment":
        assert rep["conditions"] and rep["phases"]
        assert sum(rep["network_runs"].values()) == est["runs"]


def test_check_text_names_what_would_run(capsys, no_network):
    assert main(["check", "aitbs_study", "--scale", "small", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    for words in (
        "stress_aitbs: stress; aitbs_day: 10 session(s) x 1800 pulses",
        "read-outs: baseline, end_stress, 24h, 7d",
        "network runs: 58",
        "wall ~",
        "peak memory ~",
        "silenced: IT_L23, IT_L5",
    ):
        assert words in out


def test_check_of_a_fresh_process_takes_under_5_s_of_cpu(tmp_path):
    """A whole ``cortexsim check`` process (imports included) on the largest experiment spec:
    CPU time, which other jobs on a shared machine do not inflate as they inflate wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "cortexsim.cli", "check", "protocol_comparison"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 5.0, cpu


# --------------------------------------------------------------------------- what would run
def test_network_runs_of_the_study_match_the_runner():
    """The study (5 conditions, 4 read-outs, 10 sessions for 3 conditions): pass 1 once (one
    network); 30 sessions; one rest reference at end of stress shared by sham, aiTBS and
    silenced (same history then); read-outs: baseline shared by all, end of stress by the 4
    stressed conditions (+ control's), 24 h and 7 d one per condition: 13, each a rest and an
    evoked run."""
    cfg = load_experiment("aitbs_study").resolved_config(scale="small")
    runs = network_runs(cfg)
    count = {}
    for r in runs:
        count[(r["pass"], r["what"])] = count.get((r["pass"], r["what"]), 0) + 1
    assert count == {
        (1, "rest"): 1,
        (2, "session"): 30,
        (2, "session_reference"): 1,
        (3, "readout"): 13,
        (3, "evoked"): 13,
    }
    plans = condition_plans(cfg)
    pl = plans["stress_aitbs"]
    assert pl.session_starts_s[0] == 16 * 86400.0  # after 2 d baseline + 14 d
    assert pl.simulated_s == 10.0 and pl.intensity_pct_rmt == 90.0
    times, session, amp = pl.pulses()
    assert times.size == 18000 and session.max() == 9 and amp.min() == 1.0
    assert plans["stress_sham"].pulses()[2].max() == 0.0  # sham pulses carry no field


def test_synapse_count_matches_the_drawn_networks():
    """Expected counts vs the networks drawn in benchmarks/results/circuit.md (1k: 568,823;
    4k: 2,853,952 synapses) and the study's 119,371 spine sites at 500 neurons."""
    assert synapse_count(1000)["total"] == pytest.approx(568_823, rel=0.01)
    assert synapse_count(4000)["total"] == pytest.approx(2_853_952, rel=0.01)
    assert synapse_count(500)["sites"] == pytest.approx(119_371, rel=0.01)


@pytest.mark.parametrize("scale, measured_s", [("small", 52.0), ("default", 410.0)])
def test_estimate_within_a_factor_2_of_the_measured_study(scale, measured_s):
    """benchmarks/RESULTS.md: the study with --workers 2 on 2 cores, warm build cache: 51-52 s
    at --scale small, 6 min 50 s at --scale default."""
    cfg = load_experiment("aitbs_study").resolved_config(scale=scale, workers=2)
    est = cost.estimate(cfg, workers=2, cores=2)
    assert measured_s / 2 < est["wall_s"] < measured_s * 2, est["wall_s"]


# --------------------------------------------------------------------------- bad specs
def _line(capsys, argv) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err.strip()


BAD = _params(tsv.test_bad_spec_values_exit_2_before_any_network) + _params(
    tsv.test_bad_overrides_exit_2_before_any_network
)


@pytest.mark.parametrize("extra, field, words", BAD)
def test_bad_specs_exit_2_as_run_does(tmp_path, capsys, no_network, extra, field, words):
    spec = str(tsv._spec(tmp_path, extra))
    rc, line = _line(capsys, ["check", spec, "--scale", "100"])
    assert rc == 2 and f"error: {field}" in line and words in line
    rc_run, line_run = _line(
        capsys, ["run", spec, "--scale", "100", "--quiet", "--out", str(tmp_path / "out")]
    )
    assert rc_run == 2 and line_run == line.replace("cortexsim check:", "cortexsim run:")


@pytest.mark.parametrize(
    "args", [["--scale", "10"], ["--scale", "tiny"], ["--workers", "0"], ["--session-sample", "-5"]]
)
def test_bad_options_exit_2(capsys, no_network, args):
    rc, line = _line(capsys, ["check", "tiny", *args])
    assert rc == 2 and len(line.splitlines()) == 1


def test_not_a_spec_exits_2(tmp_path, capsys):
    p = tmp_path / "x.toml"
    p.write_text("[something]\na = 1\n")
    rc, line = _line(capsys, ["check", str(p)])
    assert rc == 2 and "[experiment]" in line


def _case_specs():
    """The experiment specs of the reported cases (those ``run`` takes)."""
    if not CASES.is_dir():
        return []

    def is_experiment(p):
        try:
            return cost.spec_kind(p)[0] == "experiment"
        except Exception:  # noqa: BLE001  (a protocol file or a broken spec: not this test's)
            return False

    return sorted(p for p in CASES.glob("*/*.toml") if p.name != "tiny.toml" and is_experiment(p))


@pytest.mark.skipif(not _case_specs(), reason="../shared/cases not present")
@pytest.mark.parametrize("spec", _case_specs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reported_cases_check_as_run_validates(spec, tmp_path, capsys, no_network, monkeypatch):
    """Every spec of a reported case: check exits 2 exactly where run exits 2 before any
    network, with the same line; a spec that run accepts checks with exit 0."""
    monkeypatch.chdir(spec.parent)
    rc, line = _line(capsys, ["check", spec.name, "--scale", "100"])
    rc_run, line_run = _line(
        capsys, ["run", spec.name, "--scale", "100", "--quiet", "--out", str(tmp_path / "out")]
    )
    if rc_run == 2:
        assert rc == 2 and line_run == line.replace("cortexsim check:", "cortexsim run:")
    else:
        assert rc == 0  # run got past validation (and then met the forbidden network)


# --------------------------------------------------------------------------- memory guard
def test_run_refuses_what_will_not_fit_in_memory(tmp_path, capsys, no_network, monkeypatch):
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 100 * 2**20)
    rc, line = _line(
        capsys, ["run", "tiny", "--scale", "100", "--quiet", "--out", str(tmp_path / "out")]
    )
    assert rc == 2
    assert "estimated" in line and "available" in line and "100 MB" in line and "--force" in line
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_run_with_force_goes_ahead(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cost, "available_memory_bytes", lambda: 100 * 2**20)
    import cortexsim.experiment as experiment

    called = {}

    def fake_run_cli(spec, **kw):
        called["spec"] = spec
        return {"out": str(tmp_path), "metrics": {}, "criteria": []}

    monkeypatch.setattr(experiment, "run_cli", fake_run_cli)
    assert main(["run", "tiny", "--scale", "100", "--quiet", "--force", "--json"]) == 0
    assert called["spec"] == "tiny"


def test_scale_50000_estimate_and_refusal(capsys, no_network, monkeypatch):
    """shared/cases 33: --scale 50000 grew past 7-9 GB; the estimate says so up front, and a
    machine with less available memory refuses it."""
    assert main(["check", "tiny", "--scale", "50000", "--workers", "2", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert est["peak_memory_MB"] > 7 * 1024 and est["synapses"] > 3e7
    monkeypatch.setattr(
        cost, "available_memory_bytes", lambda: int(est["peak_memory_MB"] - 1) * 2**20
    )
    rc, line = _line(capsys, ["run", "tiny", "--scale", "50000", "--workers", "2", "--quiet"])
    assert rc == 2 and "GB of memory at peak" in line
    assert main(["check", "tiny", "--scale", "50000", "--workers", "2"]) == 0
    assert "exceeds the available memory" in capsys.readouterr().out


def test_register_kind_is_the_hook_for_other_spec_kinds(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(
        cost.KINDS,
        "validation",
        lambda p, scale=None, workers=1: {"kind": "validation", "spec": str(p), "entries": 3},
    )
    p = tmp_path / "v.toml"
    p.write_text("[validation]\nname = 'x'\n")
    assert main(["check", str(p)]) == 0
    assert "validation spec" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["tiny", str(experiments_dir() / "sweep_intensity.toml")])
def test_a_bad_scale_names_the_option_whatever_the_spec_kind(capsys, no_network, spec):
    rc, line = _line(capsys, ["check", spec, "--scale", "1e9"])
    assert rc == 2 and "error: --scale: " in line and "[50, 50000]" in line
