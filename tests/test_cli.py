"""The ``cortexsim`` command line (issue 2): --help everywhere, --json documents with the keys of
DESIGN.md, and bad input -> one error line naming the field, exit status 2, no traceback.

In-process calls (``cortexsim.cli.main``) cover the many cases; a few runs in a subprocess check
the real process: exit status, stdout/stderr separation, no traceback, and model files taken
from ``CORTEXSIM_MODELS`` (missing or malformed files)."""
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cortexsim.cli import build_parser, main
from cortexsim.coupling import threshold_vpm
from cortexsim.params import load_model, models_dir

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD_KEYS = {"cell_type", "waveform", "pulse_width_us", "angle_deg", "threshold_vpm"}
PROTOCOL_KEYS = {"name", "n_pulses", "duration_s", "sessions_per_day", "session_interval_min"}


def _subcommands() -> list[str]:
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    return list(sub.choices)


def _strict_json(text: str):
    """json.loads that rejects NaN/Infinity (not JSON; jq and most parsers refuse them)."""
    def reject(const):
        raise ValueError(f"non-standard JSON constant {const}")
    return json.loads(text, parse_constant=reject)


def _run(*args, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "cortexsim.cli", *args], check=False,
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def _one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"cortexsim {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- structure
def test_entry_point_is_cli_main():
    with (ROOT / "pyproject.toml").open("rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts["cortexsim"] == "cortexsim.cli:main"


def test_subcommands_present():
    assert {"protocols", "threshold", "celltypes", "run", "sweep"} <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help_and_json(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cortexsim {command}")
    assert "--json" in out  # every sub-command prints data or a summary


def test_top_level_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for command in _subcommands():
        assert command in out


# --------------------------------------------------------------------------- data commands
def test_threshold_json_and_text(capsys):
    argv = ["threshold", "--cell-type", "PT_L5", "--waveform", "biphasic", "--angle-deg", "0"]
    assert main([*argv, "--json"]) == 0
    data = _strict_json(capsys.readouterr().out)
    assert set(data) == THRESHOLD_KEYS
    assert (data["cell_type"], data["waveform"], data["angle_deg"]) == ("PT_L5", "biphasic", 0.0)
    assert data["pulse_width_us"] == 290.0
    assert data["threshold_vpm"] == pytest.approx(threshold_vpm("PT_L5"))
    assert main(argv) == 0
    text = capsys.readouterr().out
    line = [ln for ln in text.splitlines() if ln.startswith("threshold_vpm")]
    assert float(line[0].split()[1]) == pytest.approx(data["threshold_vpm"], rel=1e-3)


def test_threshold_pulse_width_and_angle(capsys):
    assert main(["threshold", "--cell-type", "IT_L23", "--waveform", "rectangular",
                 "--pulse-width-us", "37.5", "--angle-deg", "150", "--json"]) == 0
    data = _strict_json(capsys.readouterr().out)
    assert data["pulse_width_us"] == 37.5 and data["angle_deg"] == 150.0
    assert data["threshold_vpm"] == pytest.approx(
        threshold_vpm("IT_L23", "rectangular", 150.0, pulse_width_us=37.5))


def test_threshold_unipolar_against_main_axon_is_a_number(capsys):
    """A unipolar pulse against the main axon of SST cells still fires them through their
    collaterals (issue 9: this printed null); the value is a number in strict JSON.  (The
    null case, a cell type without collaterals, is tested in tests/test_coupling.py.)"""
    assert main(["threshold", "--cell-type", "SST", "--waveform", "rectangular",
                 "--angle-deg", "180", "--json"]) == 0
    data = _strict_json(capsys.readouterr().out)
    assert data["threshold_vpm"] == pytest.approx(threshold_vpm("SST", "rectangular", 180.0))


# --------------------------------------------------------------------------- bad input
BAD_THRESHOLD = [
    (["--cell-type", "VIP_L1"], ["cell_type", "'VIP_L1'", "IT_L23", "PT_L5", "SST"]),
    (["--cell-type", "pt_l5"], ["cell_type", "PT_L5"]),
    (["--cell-type", "PT_L5", "--pulse-width-us", "nan"], ["pulse_width_us", "finite"]),
    (["--cell-type", "PT_L5", "--pulse-width-us", "-60"], ["pulse_width_us", "allowed"]),
    (["--cell-type", "PT_L5", "--pulse-width-us", "0"], ["pulse_width_us", "allowed"]),
    (["--cell-type", "PT_L5", "--pulse-width-us", "inf"], ["pulse_width_us", "finite"]),
    (["--cell-type", "PT_L5", "--pulse-width-us", "long"], ["pulse_width_us", "'long'"]),
    (["--cell-type", "PT_L5", "--angle-deg", "nan"], ["angle_deg", "finite"]),
    (["--cell-type", "PT_L5", "--angle-deg", "400"], ["angle_deg", "allowed"]),
    (["--cell-type", "PT_L5", "--angle-deg", "steep"], ["angle_deg", "'steep'"]),
    (["--cell-type", "PT_L5", "--waveform", "triangle"],
     ["waveform", "biphasic", "monophasic", "half_sine", "rectangular"]),
]


@pytest.mark.parametrize("args, words", BAD_THRESHOLD)
def test_threshold_bad_input_one_line_exit_2(args, words, capsys):
    assert main(["threshold", *args, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing half-written on stdout
    line = _one_error_line(captured.err, "threshold")
    for w in words:
        assert w in line


@pytest.mark.parametrize("argv, words", [
    (["threshold"], ["--cell-type", "required"]),
    (["thresold"], ["invalid choice", "threshold"]),
    (["protocols", "--jsn"], ["unrecognized arguments", "--jsn"]),
])
def test_argument_errors_exit_2_without_traceback(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # argparse: usage line(s), then one error line
    assert "error:" in last
    for w in words:
        assert w in last


# --------------------------------------------------------------------------- real processes
def test_process_json_documents():
    r = _run("protocols", "--json")
    assert r.returncode == 0, r.stderr
    rows = _strict_json(r.stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert PROTOCOL_KEYS <= set(row)
    by_name = {row["name"]: row for row in rows}
    assert by_name["itbs1800"]["n_pulses"] == 1800
    assert by_name["itbs1800"]["duration_s"] == pytest.approx(591.84)
    assert by_name["aitbs_day"]["sessions_per_day"] == 10
    assert by_name["aitbs_day"]["session_interval_min"] == 50.0
    r = _run("threshold", "--cell-type", "PT_L5", "--waveform", "biphasic", "--angle-deg", "0",
             "--pulse-width-us", "200", "--json")
    assert r.returncode == 0, r.stderr
    data = _strict_json(r.stdout)
    assert set(data) == THRESHOLD_KEYS and data["pulse_width_us"] == 200.0
    assert data["threshold_vpm"] == pytest.approx(
        threshold_vpm("PT_L5", "biphasic", pulse_width_us=200))


def test_process_bad_input_exit_2():
    for args, field in ((["--cell-type", "L4_stellate"], "cell_type"),
                        (["--cell-type", "PV", "--pulse-width-us", "NaN"], "pulse_width_us")):
        r = _run("threshold", *args, "--json")
        assert r.returncode == 2 and r.stdout == ""
        assert field in _one_error_line(r.stderr, "threshold")


def test_process_missing_model_files(tmp_path):
    env = {"CORTEXSIM_MODELS": str(tmp_path)}  # an empty folder
    r = _run("protocols", "--json", env_extra=env)
    assert r.returncode == 2 and r.stdout == ""
    line = _one_error_line(r.stderr, "protocols")
    assert "protocols.toml" in line and "not found" in line
    r = _run("threshold", "--cell-type", "PT_L5", env_extra=env)
    assert r.returncode == 2
    assert "coupling" in _one_error_line(r.stderr, "threshold")


def test_process_malformed_model_files(tmp_path):
    env = {"CORTEXSIM_MODELS": str(tmp_path)}
    (tmp_path / "protocols.toml").write_text("[itbs600\nkind = 'tbs'\n")
    (tmp_path / "coupling.toml").write_text("[cells.PT_L5]\nlambda_um = {value = 3\n")
    r = _run("protocols", env_extra=env)
    assert r.returncode == 2
    assert "malformed TOML" in _one_error_line(r.stderr, "protocols")
    r = _run("threshold", "--cell-type", "PT_L5", "--json", env_extra=env)
    assert r.returncode == 2 and r.stdout == ""
    assert "malformed TOML" in _one_error_line(r.stderr, "threshold")


def test_process_invalid_values_in_model_files(tmp_path):
    """Valid TOML with a bad value: the error names the table and the field."""
    env = {"CORTEXSIM_MODELS": str(tmp_path)}
    src = (models_dir() / "protocols.toml").read_text()
    old = 'n_pulses = { value = 600, unit = "pulses", source = "Huang et al. 2005 Neuron 45:201 ' \
          '(iTBS: 20 trains, 190 s, 600 pulses)" }'
    assert old in src
    (tmp_path / "protocols.toml").write_text(src.replace(old, old.replace("600,", "-600,")))
    r = _run("protocols", "--json", env_extra=env)
    assert r.returncode == 2 and r.stdout == ""
    line = _one_error_line(r.stderr, "protocols")
    assert "[itbs600] protocol.n_pulses" in line and ">= 1" in line
    shutil.copy(models_dir() / "protocols.toml", tmp_path / "protocols.toml")
    coupling = (models_dir() / "coupling.toml").read_text()
    old = f'lambda_um = {{ value = {load_model("coupling").value("cells.PT_L5.lambda_um")},'
    assert old in coupling
    (tmp_path / "coupling.toml").write_text(coupling.replace(old, 'lambda_um = { value = "long",'))
    r = _run("threshold", "--cell-type", "PT_L5", "--json", env_extra=env)
    assert r.returncode == 2 and r.stdout == ""
    assert "cells.PT_L5.lambda_um" in _one_error_line(r.stderr, "threshold")


# --------------------------------------------------------------------------- protocols NAME / --file
def test_protocols_unknown_name_exit_2(capsys):
    assert main(["protocols", "itbs9000"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err, "protocols")
    assert "'itbs9000'" in line and "itbs600" in line  # names the bad one and lists the rest


def test_protocols_missing_file_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["protocols", "--file", "missing.toml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err, "protocols")
    assert "missing.toml" in line and "not found" in line


def test_protocols_one_name_json(capsys):
    assert main(["protocols", "itbs600", "--json"]) == 0
    rows = _strict_json(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["itbs600"]
    assert PROTOCOL_KEYS <= set(rows[0])
    assert rows[0]["n_pulses"] == 600


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_run_and_sweep_never_traceback(command, tmp_path, capsys):
    """Whether or not cortexsim.experiment / cortexsim.sweep can be imported yet, a missing spec
    gives one error line and a non-zero status, never a traceback (1: module unavailable,
    2: bad input)."""
    code = main([command, str(tmp_path / "no_such_spec.toml"), "--quiet"])
    assert code in (1, 2)
    captured = capsys.readouterr()
    _one_error_line(captured.err, command)


@pytest.mark.parametrize("value,words", [("soon", ["--session-sample", "all"]),
                                         ("-3", ["settings.session_sample_s"])])
def test_run_bad_session_sample_exit_2(value, words, capsys):
    from pathlib import Path
    spec = Path(__file__).resolve().parent.parent / "experiments" / "aitbs_study.toml"
    code = main(["run", str(spec), "--session-sample", value, "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    _one_error_line(err, "run")
    for w in words:
        assert w in err


# --------------------------------------------------------------------------- errors are cortexsim's
def test_internal_error_is_reported_as_cortexsims(monkeypatch, capsys):
    """An unexpected error: one short report (an internal cortexsim error, where it was raised,
    where to report it), exit 1, no traceback unless asked for."""
    import cortexsim.cli as cli

    def broken(args):
        return {}["missing key"]

    monkeypatch.setattr(cli, "cmd_protocols", broken)
    monkeypatch.delenv(cli.ENV_TRACEBACK, raising=False)
    assert main(["protocols"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cortexsim protocols: internal error (a bug in cortexsim")
    assert "KeyError: 'missing key'" in err
    assert "tests/test_cli.py:" in err and "in broken" in err      # the raising frame
    with (ROOT / "pyproject.toml").open("rb") as fh:
        issues = tomllib.load(fh)["project"]["urls"]["Issues"]
    assert issues in err
    assert "Traceback" not in err and len(err.splitlines()) <= 4
    monkeypatch.setenv(cli.ENV_TRACEBACK, "1")
    assert main(["protocols"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_errors_after_brian2_import_leave_no_brian_files(tmp_path):
    """Brian2's excepthook prints "please report this issue to Brian 2" for any uncaught error and
    then keeps brian_debug_* / brian_script_* files in the temp folder.  cortexsim's errors (bad
    input and internal errors) after brian2 is imported: no banner, no files."""
    script = tmp_path / "script.py"      # a script file: Brian2 keeps a copy of it on errors
    script.write_text(
        "import sys\nimport brian2  # noqa: F401\nimport cortexsim.cli as cli\n"
        "print('input', cli.main(['run', sys.argv[1]]), file=sys.stderr)\n"
        "def broken(args):\n    raise RuntimeError('deliberate')\n"
        "cli.cmd_protocols = broken\n"
        "sys.exit(cli.main(['protocols']))\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("CORTEXSIM_TRACEBACK", None)
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "no_such_spec.toml")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 1, p.stderr
    assert "input 2" in p.stderr                               # bad input: exit status 2
    assert "internal error" in p.stderr and "deliberate" in p.stderr
    assert "Brian 2" not in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert sorted(x.name for x in tmp.iterdir() if x.name.startswith("brian_")) == []


def test_worker_interrupt_prints_no_traceback(tmp_path):
    """Ctrl-C (SIGINT to the whole process group) while two pool workers are busy (Brian2
    imported) and a task is queued: with cortexsim's worker initializer the workers end at once
    and quietly, leave no Brian2 files, and the parent says 'interrupted' (without it, each
    worker returns the interrupt as the task's result, takes the queued task and the parent
    waits for it: here 600 s)."""
    (tmp_path / "tasks.py").write_text(
        "import os, time\n"
        "def work(seconds):\n"
        "    import brian2  # noqa: F401  (its log file appears in the temp folder)\n"
        "    open(f'ready_{os.getpid()}', 'w').close()\n"
        "    time.sleep(seconds)\n")
    script = tmp_path / "pool.py"
    script.write_text(
        "import concurrent.futures as cf, glob, multiprocessing as mp, os, signal, sys, time\n"
        "from cortexsim.errors import quiet_interrupt_in_worker as init\n"
        "from tasks import work\n"
        "if __name__ == '__main__':\n"
        "    try:\n"
        "        with cf.ProcessPoolExecutor(2, mp_context=mp.get_context('spawn'),\n"
        "                                    initializer=init) as ex:\n"
        "            futs = [ex.submit(work, 600) for _ in range(3)]\n"
        "            while len(glob.glob('ready_*')) < 2:   # both workers busy\n"
        "                time.sleep(0.1)\n"
        "            os.killpg(os.getpgid(0), signal.SIGINT)\n"
        "            [f.result() for f in futs]\n"
        "    except KeyboardInterrupt:\n"
        "        print('interrupted', file=sys.stderr)\n"
        "        sys.exit(130)\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=180, start_new_session=True,
                       env={**os.environ, "TMPDIR": str(tmp)})
    assert p.returncode == 130, p.stderr
    assert p.stderr.strip() == "interrupted", p.stderr
    assert len(list(tmp_path.glob("ready_*"))) == 2
    assert sorted(x.name for x in tmp.iterdir() if x.name.startswith("brian_")) == []
