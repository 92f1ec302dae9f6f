"""Test isolation: every test starts on Brian2's runtime device with the preferences, scope and
default clock Brian2 had when it was imported, whatever an earlier test left behind (a
cpp_standalone device activated by a circuit build, ``prefs.codegen.target = "numpy"``, changed
compiler flags).  The suite runs in random order (pytest-randomly) to keep it that way.

The devices are not re-initialised: a compiled circuit held by a module-scoped fixture keeps its
own standalone device and still runs its binary (``Circuit.run`` uses that device, not the
active one); a later standalone build re-initialises the device itself
(``cortexsim.circuit.network.fresh_standalone_device``).  Tests that never import Brian2 do not
pay for importing it here.
"""
import sys

import pytest


def _reset_brian() -> None:
    b2 = sys.modules.get("brian2")
    if b2 is None:
        return
    b2.set_device("runtime")
    b2.start_scope()
    # prefs from the copy Brian2 takes at import (prefs._backup), defaultclock.dt = 0.1 ms
    b2.restore_initial_state()


@pytest.fixture(autouse=True)
def brian2_isolation():
    """Runtime device and import-time Brian2 preferences before and after every test."""
    _reset_brian()
    yield
    _reset_brian()


def pytest_terminal_summary(terminalreporter, config):
    """The random-order seed, also under ``-q`` (pytest-randomly prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and not config.getoption("randomly_dont_reorganize", False):
        terminalreporter.write_line(
            f"random order: --randomly-seed={seed} (python -m pytest -p randomly "
            f"--randomly-seed={seed} replays it)")
