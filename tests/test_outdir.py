"""Output folders (cortexsim.outdir, issue 22 cases 23 and 24): one writer at a time, a second
refused at once (exit 2 naming the folder) with nothing of the first lost, the folder free again
when its writer ends however it ends (a re-run resumes), temporaries of killed writers removed,
and an OS error while writing reported as the environment's (naming the path), not as a bug."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cortexsim import outdir
from cortexsim.cli import main
from cortexsim.errors import EXIT_IO, InputError, StorageError, environment_error
from cortexsim.experiment.store import CheckpointStore

ROOT = Path(__file__).resolve().parent.parent

#: a process that claims a folder, says so on stdout, then waits (killed by the test)
HOLDER = (
    "import sys, time\nfrom cortexsim.outdir import claim_out_dir\n"
    "with claim_out_dir(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"
)


@pytest.fixture
def holder(tmp_path):
    """Start another process holding ``tmp_path / 'out'``; yields (folder, process)."""
    out = tmp_path / "out"
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert p.stdout.readline().strip() == "held"
        yield out, p
    finally:
        p.kill()
        p.wait()


def test_second_writer_is_refused_at_once_naming_the_folder(holder):
    out, p = holder
    with pytest.raises(InputError) as info:
        with outdir.claim_out_dir(out):
            pass
    msg = str(info.value)
    assert msg.startswith("--out: ") and str(out) in msg and "in use" in msg
    assert f"pid {p.pid}" in msg  # who holds it


def test_run_into_a_folder_in_use_exits_2_and_leaves_it_untouched(holder, capsys):
    """`cortexsim run` into a folder another process writes: exit 2 at once naming it (before
    any build), the other's checkpoints and results untouched."""
    out, _ = holder
    (out / "checkpoints").mkdir()
    mine = {
        out / "checkpoints" / "stim.abc.ckpt.npz": b"first run's state",
        out / "results.nc": b"first run's results",
    }
    for f, data in mine.items():
        f.write_bytes(data)
    code = main(["run", "tiny", "--scale", "100", "--seed", "2", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("cortexsim run: error: --out: ")
    assert str(out) in lines[0] and "in use by another cortexsim process" in lines[0]
    assert {f: f.read_bytes() for f in mine} == mine
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["stim.abc.ckpt.npz"]


@pytest.mark.parametrize(
    "command,spec",
    [
        ("sweep", "sweep_intensity.toml"),
        ("fit", "fit_stress_gain.toml"),
        ("sensitivity", "sensitivity_study.toml"),
    ],
)
def test_engine_commands_into_a_folder_in_use_exit_2(command, spec, holder, capsys):
    out, _ = holder
    before = sorted(p.name for p in out.iterdir())
    code = main([command, str(ROOT / "experiments" / spec), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"cortexsim {command}: error: --out: " in err and str(out) in err and "in use" in err
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written


def test_folder_is_free_again_when_its_writer_is_killed(tmp_path):
    """The lock dies with its holder (even SIGKILL): the same command can then resume."""
    out = tmp_path / "out"
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert p.stdout.readline().strip() == "held"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with outdir.claim_out_dir(out) as claimed:
        assert claimed == out


def test_claims_nest_within_a_process_and_release(tmp_path):
    out = tmp_path / "out"
    with outdir.claim_out_dir(out):
        with outdir.claim_out_dir(out):  # e.g. a command calling another
            pass
        assert outdir._LOCKS[str(out.resolve())].is_locked
    assert not outdir._LOCKS[str(out.resolve())].is_locked


def test_claim_removes_temporaries_of_a_killed_writer(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints" / "readouts").mkdir(parents=True)
    (out / ".partial_x1y2").mkdir()
    (out / ".partial_x1y2" / "results.nc").write_bytes(b"half")
    stale = [
        out / "checkpoints" / ".stim.k.ckpt.npz.a8f3_kq.tmp",  # atomic_write
        out / "checkpoints" / ".stim.k.ckpt.npz.tmp4242",  # older versions
        out / ".write-test-abc.tmp",
    ]
    kept = [
        out / "checkpoints" / "stim.k.ckpt.npz",
        out / "checkpoints" / "readouts" / "a.json",
        out / "checkpoints" / "readouts" / "a.json.lock",
        out / "results.nc",
    ]
    for f in stale + kept:
        f.write_bytes(b"x")
    with outdir.claim_out_dir(out):
        pass
    assert not (out / ".partial_x1y2").exists()
    assert [f for f in stale if f.exists()] == []
    assert all(f.exists() for f in kept)


def test_out_that_is_a_file_is_bad_input(tmp_path):
    f = tmp_path / "afile.json"
    f.write_text("{}")
    with pytest.raises(InputError, match="not a writable directory"):
        with outdir.claim_out_dir(f / "results"):
            pass


# --------------------------------------------------------------------------- OS errors
def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("previous")
    monkeypatch.setattr(outdir.os, "fsync", _disk_full)
    with pytest.raises(StorageError) as info:
        outdir.atomic_write(target, lambda t: t.write_text("new"))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert str(target) in str(info.value) and "No space left" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert target.read_text() == "previous"


def test_checkpoint_on_a_full_disk_is_a_storage_error(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path / "checkpoints")
    monkeypatch.setattr(outdir.os, "fsync", _disk_full)
    with pytest.raises(StorageError) as info:
        store.save("stim", "k1", {"a": np.arange(3)}, {"phase": 1})
    assert info.value.filename == str(store.path("stim", "k1"))


def test_storage_errors_names_the_given_path_when_the_error_has_none(tmp_path):
    with pytest.raises(StorageError) as info:
        with outdir.storage_errors(tmp_path / "out"):
            raise OSError(errno.EIO, "Input/output error")
    assert info.value.filename == str(tmp_path / "out") and info.value.errno == errno.EIO
    with pytest.raises(StorageError) as info:  # its own file name is kept
        with outdir.storage_errors(tmp_path / "out", "reading"):
            raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/f.nc")
    assert str(info.value) == "Permission denied (reading /elsewhere/f.nc)"


def test_storage_error_survives_pickling():
    import pickle

    e = StorageError(errno.EACCES, "Permission denied", "/x/y", "reading")
    back = pickle.loads(pickle.dumps(e))
    assert (back.errno, back.filename, back.action, str(back)) == (
        errno.EACCES,
        "/x/y",
        "reading",
        str(e),
    )


@pytest.mark.parametrize(
    "exc,words",
    [
        (
            StorageError(errno.ENOSPC, "No space left on device", "out/checkpoints/s.ckpt.npz"),
            ["No space left on device", "out/checkpoints/s.ckpt.npz", "free some space"],
        ),
        (
            StorageError(errno.EDQUOT, "Disk quota exceeded", "out/results.nc"),
            ["quota", "out/results.nc"],
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "out/study.log"),
            ["Permission denied", "out/study.log", "permissions"],
        ),
        (OSError(errno.EROFS, "Read-only file system", "out/x"), ["read-only", "out/x"]),
        (OSError(errno.ENOSPC, "No space left on device"), ["No space left on device"]),
    ],
)
def test_environment_errors_exit_74_with_one_line_not_a_bug_report(exc, words, monkeypatch, capsys):
    import cortexsim.cli as cli

    def fails(args):
        raise exc

    monkeypatch.setattr(cli, "cmd_protocols", fails)
    monkeypatch.delenv(cli.ENV_TRACEBACK, raising=False)
    assert main(["protocols"]) == EXIT_IO == 74
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("cortexsim protocols: I/O error: "), err
    for w in words:
        assert w in lines[0], (w, err)
    assert "run the same command again" in lines[0]
    for bug in ("internal error", "bug", "report", "Traceback"):
        assert bug not in err


def test_other_os_errors_stay_internal_errors(monkeypatch, capsys):
    """An OS error that does not say the environment failed (a missing file of cortexsim's own)
    is still reported as a bug."""
    assert environment_error(FileNotFoundError(errno.ENOENT, "No such file", "pkg/x")) is None
    assert environment_error(ValueError("x")) is None
    import cortexsim.cli as cli

    def fails(args):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "cortexsim/x.toml")

    monkeypatch.setattr(cli, "cmd_protocols", fails)
    assert main(["protocols"]) == 1
    assert "internal error" in capsys.readouterr().err


def test_exit_statuses_are_documented():
    import cortexsim.cli as cli

    text = cli.build_parser().format_help()
    for status in (0, 1, 2, 74, 130):
        assert f" {status} " in " ".join(text.split()), status
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "exit 74" in readme and "exit 130" in readme


def test_results_json_unchanged_by_atomic_write(tmp_path):
    """The shared helper writes exactly what the writer wrote (the stores' records)."""
    rec = {"status": "ok", "metrics": {"m": 1.5}}
    outdir.atomic_write(tmp_path / "k.json", lambda t: t.write_text(json.dumps(rec)))
    assert json.loads((tmp_path / "k.json").read_text()) == rec


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """Results and scorecards are readable by others as any file the user writes (mkstemp's
    0600 is not kept)."""
    import os

    from cortexsim.outdir import atomic_write

    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda t: t.write_text("x"))
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
