"""SIGINT ends a command cleanly whatever handler the process inherited (issue 22, case 34).

A process started in the background by a script inherits SIGINT ignored; Brian2, imported, wraps
the handler it finds and calls it on SIGINT, which failed with "'Handlers' object is not
callable" reported as an internal error.  Here: "interrupted", exit 130, the handler put back."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cortexsim.errors import EXIT_INTERRUPTED, interrupts_raise

ROOT = Path(__file__).resolve().parent.parent

#: sets the inherited SIGINT disposition, maybe imports brian2 first, then runs a command that
#: imports brian2 and gets SIGINT while busy
SCRIPT = """\
import os, signal, sys, time
inherited, brian_first = sys.argv[1], sys.argv[2] == "1"
if inherited == "default":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
if brian_first:
    import brian2  # noqa: F401  (wraps the inherited handler)
import cortexsim.cli as cli

def busy(args):
    import brian2  # noqa: F401
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
    print("not interrupted", file=sys.stderr)

cli.cmd_protocols = busy
code = cli.main(["protocols"])
print("after:", getattr(signal.getsignal(signal.SIGINT), "name", "?"), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("brian_first", [False, True])
@pytest.mark.parametrize("inherited", ["ignored", "default", "python"])
def test_sigint_is_a_clean_interrupt_whatever_was_inherited(inherited, brian_first, tmp_path):
    def child_setup():
        if inherited == "ignored":  # as `cmd &` in a non-interactive shell
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("CORTEXSIM_TRACEBACK", None)
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, inherited, str(int(brian_first))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        preexec_fn=child_setup,
    )
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == EXIT_INTERRUPTED == 130, p.stderr
    assert lines[0] == "interrupted", p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr
    restored = {"ignored": "SIG_IGN", "default": "SIG_DFL"}.get(inherited)
    if restored is not None and not brian_first:
        assert lines[1] == f"after: {restored}"  # the inherited handler put back
    assert sorted(x.name for x in tmp.iterdir() if x.name.startswith("brian_")) == []


def test_handler_is_installed_and_restored_in_process():
    previous = signal.getsignal(signal.SIGINT)
    try:
        for inherited in (signal.SIG_IGN, signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signal.SIGINT, inherited)
            with interrupts_raise():
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
                with pytest.raises(KeyboardInterrupt):
                    signal.raise_signal(signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) == inherited
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_brian2_handler_wrapping_a_non_callable_one_is_repaired(monkeypatch):
    """Brian2 imported while SIGINT was ignored keeps SIG_IGN as the handler it calls: inside
    a command it calls Python's instead."""
    import brian2

    monkeypatch.setattr(brian2._int_handler, "previous_handler", signal.SIG_IGN)
    previous = signal.getsignal(signal.SIGINT)
    with interrupts_raise():
        assert brian2._int_handler.previous_handler is signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) == previous
