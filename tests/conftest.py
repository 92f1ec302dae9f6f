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
    # brian2.restore_initial_state() without its gc.collect(): prefs from the copy Brian2 takes
    # at import (prefs._backup), scope key 0, defaultclock.dt = 0.1 ms.  A full collection of
    # the suite's heap costs ~0.2 s, twice per test (~6 min of CPU over the suite), and no
    # isolation needs it: the magic network collects only the objects a caller's frames name
    # (of the current scope); Python's own collector frees the cycles of earlier tests
    b2.prefs._restore()
    b2.BrianObject._scope_current_key = 0
    b2.defaultclock.dt = 0.1 * b2.ms


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
            f"--randomly-seed={seed} replays it)"
        )
