"""The compiled-build cache (cortexsim.circuit.build_cache) with a stand-in for Brian2's device:
where the cache lives, what a miss, a hit from another process and a rebuild in the same
process do, the progress line, and the compiler flags of the build.  (A real compiled network
reused by another process: tests/test_network.py.)"""

import re
from pathlib import Path
from types import SimpleNamespace

import platformdirs
import pytest

from cortexsim.circuit import build_cache

DEFAULT_FLAGS = ["-w", "-O3", "-ffast-math", "-fno-finite-math-only", "-march=native"]


class FakeDevice:
    """Writes a project like Brian2's standalone device: code (``main.cpp`` rewritten only when
    its content changes, its two clock initialisations in alternating order, as Brian2's set of
    clocks may give them), data folders; ``compile_source`` rebuilds the binary like ``make``
    when ``main.cpp`` is newer."""

    def __init__(self, prefs):
        self.prefs = prefs
        self.flags = []
        self.compiled = 0

    def build(self, directory, compile, run, with_output):
        assert not compile and not run
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.flags.append(list(self.prefs.codegen.cpp.extra_compile_args_gcc))
        clocks = ["    _array_a_clock_timestep[0] = 0;", "    _array_b_clock_t[0] = 0.0;"]
        if len(self.flags) % 2 == 0:
            clocks.reverse()
        code = "\n".join(["int main() {"] + clocks + ["    run();", "}"]) + "\n"
        src = d / "main.cpp"
        if not src.is_file() or src.read_text() != code:
            src.write_text(code)
        for data in ("static_arrays", "results", "res_7"):
            (d / data).mkdir(exist_ok=True)
            (d / data / "x").write_text("data")

    def compile_source(self, directory, compiler, debug, clean):
        src, binary = Path(directory) / "main.cpp", Path(directory) / "main"
        if not binary.is_file() or binary.stat().st_mtime_ns < src.stat().st_mtime_ns:
            self.compiled += 1
            binary.write_text("binary")


@pytest.fixture
def b2():
    prefs = SimpleNamespace(
        codegen=SimpleNamespace(cpp=SimpleNamespace(extra_compile_args_gcc=list(DEFAULT_FLAGS)))
    )
    return SimpleNamespace(prefs=prefs, device=FakeDevice(prefs))


def test_cache_folder_from_environment_or_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv(build_cache.ENV_BUILD_DIR, str(tmp_path))
    assert build_cache.cache_dir() == tmp_path
    monkeypatch.delenv(build_cache.ENV_BUILD_DIR)
    assert build_cache.cache_dir() == Path(
        platformdirs.user_cache_dir("cortexsim", appauthor=False)
    )


def test_miss_then_hit_from_another_process_then_rebuild(b2, tmp_path, monkeypatch, capsys):
    d1, hit1 = build_cache.compile_network(b2, tmp_path, "k1", label="network (7 neurons)")
    assert not hit1
    err = capsys.readouterr().err
    assert re.fullmatch(r"compiling network \(7 neurons\) \.\.\. done in \d+ s\n", err), err
    # built with cortexsim's flags, Brian2's preference restored afterwards
    assert b2.device.flags == [build_cache.compile_flags(b2)]
    assert "-fno-finite-math-only" not in b2.device.flags[0]
    assert b2.prefs.codegen.cpp.extra_compile_args_gcc == DEFAULT_FLAGS
    # the cache keeps code and objects, no data
    cached = tmp_path / "cache_k1"
    assert sorted(p.name for p in cached.iterdir()) == ["main", "main.cpp"]
    assert b2.device.compiled == 1
    assert Path(d1).name.startswith("circuit_k1_") and (Path(d1) / "results").is_dir()

    # another process (another pid): starts from a copy of the cache, says nothing
    monkeypatch.setattr(build_cache.os, "getpid", lambda: 999_999_999)
    d2, hit2 = build_cache.compile_network(b2, tmp_path, "k1")
    assert hit2 and d2 != d1 and (Path(d2) / "main").is_file()
    assert capsys.readouterr().err == ""
    # its main.cpp came out with the clocks in the other order: the cached source is put
    # back, so nothing is compiled again
    assert (Path(d2) / "main.cpp").read_text() == (cached / "main.cpp").read_text()
    assert b2.device.compiled == 1
    # the same process again: its own build directory, nothing printed (make: up to date)
    d3, hit3 = build_cache.compile_network(b2, tmp_path, "k1")
    assert d3 == d2 and not hit3
    assert capsys.readouterr().err == ""
    assert len(b2.device.flags) == 3
    assert b2.device.compiled == 1


def test_only_reordered_clock_initialisations_keep_the_cached_source(tmp_path):
    own, cached = tmp_path / "own", tmp_path / "cached"
    own.mkdir()
    cached.mkdir()
    body = [
        "int main() {",
        "    _array_a_clock_t[0] = 0.0;",
        "    _array_b_clock_t[0] = 0.0;",
        "    x = 1;",
        "}",
    ]
    (cached / "main.cpp").write_text("\n".join(body))
    (cached / "objects.cpp").write_text("\n".join(body))
    (cached / "network.cpp").write_text("a\nb")
    swapped = [body[0], body[2], body[1]] + body[3:]
    (own / "main.cpp").write_text("\n".join(swapped))
    # a swapped clock line and another change: a real difference, kept
    (own / "objects.cpp").write_text("\n".join(swapped[:3] + ["    x = 2;", "}"]))
    # any other reordering is a real difference, kept
    (own / "network.cpp").write_text("b\na")
    assert build_cache.keep_cached_sources(own, cached) == ["main.cpp"]
    assert (own / "main.cpp").read_text() == "\n".join(body)
    assert "x = 2" in (own / "objects.cpp").read_text()
    assert (own / "network.cpp").read_text() == "b\na"


@pytest.mark.parametrize(
    "cached_lines, own_lines",
    [
        # the same variable set twice: the order changes the result
        (
            ["_array_a_clock_t[0] = 1.0;", "_array_a_clock_t[0] = 0.0;"],
            ["_array_a_clock_t[0] = 0.0;", "_array_a_clock_t[0] = 1.0;"],
        ),
        # a clock line moved across other code (not one contiguous block of assignments)
        (
            ["_array_a_clock_t[0] = 0.0;", "run();", "_array_b_clock_t[0] = 0.0;"],
            ["_array_b_clock_t[0] = 0.0;", "run();", "_array_a_clock_t[0] = 0.0;"],
        ),
        # not a constant: a call may have side effects
        (
            ["_array_a_clock_t[0] = f();", "_array_b_clock_t[0] = g();"],
            ["_array_b_clock_t[0] = g();", "_array_a_clock_t[0] = f();"],
        ),
    ],
)
def test_reorderings_that_may_matter_are_kept(tmp_path, cached_lines, own_lines):
    own, cached = tmp_path / "own", tmp_path / "cached"
    own.mkdir()
    cached.mkdir()
    (cached / "main.cpp").write_text("\n".join(["int main() {"] + cached_lines + ["}"]))
    (own / "main.cpp").write_text("\n".join(["int main() {"] + own_lines + ["}"]))
    assert build_cache.keep_cached_sources(own, cached) == []
    assert own_lines[0] in (own / "main.cpp").read_text().splitlines()[1]


def test_failed_build_says_so_and_caches_nothing(b2, tmp_path, capsys):
    def broken(**kw):
        raise RuntimeError("compiler error")

    b2.device.build = broken
    with pytest.raises(RuntimeError, match="compiler error"):
        build_cache.compile_network(b2, tmp_path, "bad", label="network")
    assert capsys.readouterr().err == "compiling network ... failed\n"
    assert not (tmp_path / "cache_bad").exists()
    assert b2.prefs.codegen.cpp.extra_compile_args_gcc == DEFAULT_FLAGS


def test_code_version_is_a_short_hash():
    v = build_cache.code_version()
    assert re.fullmatch(r"[0-9a-f]{12}", v)
    assert build_cache.code_version() == v


# --------------------------------------------------------------------------- killed processes
def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_build_prunes_the_folders_of_dead_processes_only(b2, tmp_path, monkeypatch):
    """A process killed with SIGKILL leaves its own build folder (issue 22, case 28); the next
    build removes the folders of this host's processes that no longer exist, and keeps those
    of live processes (any user's), of other hosts (a shared cache) and its own."""
    import os

    host, dead = build_cache._host(), _dead_pid()
    gone = [
        f"circuit_k1_{host}_{dead}",
        f"circuit_k1_{dead}",  # (older name)
        f"cache_k1.tmp_{host}_{dead}",
        f"cache_k1.tmp{dead}",
    ]
    other_user = 4_000_000  # a pid os.kill may not signal (see below)
    kept = [
        f"circuit_k1_{host}_{os.getppid()}",
        f"circuit_k1_{host}_1",
        f"circuit_k1_otherhost.example_{dead}",
        f"circuit_k1_{host}_{other_user}",
        "cache_k2",
        "cache_k2.lock",
    ]
    for name in dict.fromkeys(gone + kept):  # ppid may be 1 (a daemonised run): once
        d = tmp_path / name
        if name.endswith(".lock"):
            d.touch()
        else:
            d.mkdir()
            (d / "main.cpp").write_text("x")
    real_kill = os.kill

    def kill(pid, sig):
        if pid == other_user:
            raise PermissionError(1, "Operation not permitted")
        return real_kill(pid, sig)

    monkeypatch.setattr(build_cache.os, "kill", kill)
    assert build_cache.pid_alive(other_user) and build_cache.pid_alive(os.getpid())
    assert not build_cache.pid_alive(dead)
    own, _ = build_cache.compile_network(b2, tmp_path, "k1", label="network")
    left = sorted(d.name for d in tmp_path.iterdir())
    assert [name for name in gone if name in left] == []
    assert set(kept) <= set(left)
    assert Path(own).name == f"circuit_k1_{host}_{os.getpid()}" and Path(own).is_dir()


def test_a_sigkilled_process_leaves_a_folder_the_next_build_removes(b2, tmp_path):
    """End to end with a real process: it builds (stand-in device), is killed with SIGKILL
    (its exit handler never runs), and the next build removes its folder."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import sys, time\nfrom pathlib import Path\nfrom types import SimpleNamespace\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_build_cache import FakeDevice, DEFAULT_FLAGS\n"
        "from cortexsim.circuit import build_cache\n"
        "prefs = SimpleNamespace(codegen=SimpleNamespace(cpp=SimpleNamespace("
        "extra_compile_args_gcc=list(DEFAULT_FLAGS))))\n"
        "b2 = SimpleNamespace(prefs=prefs, device=FakeDevice(prefs))\n"
        "print(build_cache.compile_network(b2, Path(sys.argv[1]), 'k1')[0], flush=True)\n"
        "time.sleep(600)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    theirs = Path(p.stdout.readline().strip())
    assert theirs.is_dir()
    build_cache.prune_dead_builds(tmp_path)
    assert theirs.is_dir()  # alive: kept
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert theirs.is_dir()  # no exit handler ran
    build_cache.compile_network(b2, tmp_path, "k1", label="network")
    assert not theirs.exists()
    assert (tmp_path / "cache_k1").is_dir()
