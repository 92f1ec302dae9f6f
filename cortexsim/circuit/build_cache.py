"""The compiled-build cache of Brian2 ``cpp_standalone`` networks.

A network is compiled once per configuration and kept in a cache folder shared by every process
of the user (parallel workers, later runs): ``$CORTEXSIM_BUILD_DIR`` if set, else the platform's
user cache folder (``platformdirs.user_cache_dir("cortexsim")``, e.g. ``~/.cache/cortexsim`` on
Linux).  Inside it:

``cache_<key>/``
    the compiled project of one network (code and objects, no data), least recently used ones
    pruned beyond :data:`CACHE_KEEP`;
``cache_<key>.lock``
    a :class:`filelock.FileLock` that serialises the first build of a key, so parallel workers
    compile it once;
``circuit_<key>_<host>_<pid>/``
    the working copy of one process (its own static arrays and results), removed at exit;
    one left by a process that could not clean up (killed with SIGKILL, by the OOM killer, a
    lost Dask worker) is removed by the next build on the same host
    (:func:`prune_dead_builds`), as are unfinished copies into the cache
    (``cache_<key>.tmp_<host>_<pid>``).

``key`` is the network's configuration hash, which includes :func:`code_version`.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import socket
import sys
import time
from pathlib import Path

#: compiled projects kept in the cache (least recently used ones are removed beyond this)
CACHE_KEEP = 40
#: environment variable naming the cache folder (default: the user cache folder)
ENV_BUILD_DIR = "CORTEXSIM_BUILD_DIR"

_OWN_DIRS: list[str] = []
#: a process's own folder (``circuit_<key>_<host>_<pid>``; before the host was named:
#: ``circuit_<key>_<pid>``) or unfinished cache copy (``cache_<key>.tmp_<host>_<pid>``;
#: before: ``cache_<key>.tmp<pid>``)
_PROCESS_DIR = re.compile(
    r"(?:circuit_[0-9a-zA-Z]+_|cache_[0-9a-zA-Z]+\.tmp_?)"
    r"(?:(?P<host>[A-Za-z0-9.-]+)_)?(?P<pid>\d+)"
)


def cache_dir() -> Path:
    """The folder of compiled networks: ``$CORTEXSIM_BUILD_DIR`` or the user cache folder."""
    env = os.environ.get(ENV_BUILD_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cortexsim", appauthor=False))


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the Brian2 version and the source of the modules that generate the network's
    code (``cortexsim/circuit/*.py``, ``cortexsim/plasticity/synaptic.py`` and
    ``cortexsim/rng.py``: the noise's C++ code and the seed schedule that draws connectivity,
    thresholds and initial efficacies); 12 hex digits."""
    import brian2

    h = hashlib.sha1(brian2.__version__.encode())
    here = Path(__file__).resolve().parent
    for f in sorted(here.glob("*.py")) + [
        here.parent / "plasticity" / "synaptic.py",
        here.parent / "rng.py",
    ]:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def compile_flags(b2) -> list[str]:
    """gcc flags of the network's build: Brian2's defaults minus -fno-finite-math-only (with it
    glibc offers no vector exp; the network has no inf/NaN arithmetic), plus enough run-time
    alias checks for gcc to vectorise loops over ~25 arrays (Brian2's local __restrict pointers
    do not suffice).  The neuron update becomes ~3x faster.

    Parameters
    ----------
    b2 : module
        ``brian2``.

    Returns
    -------
    list of str
    """
    return [
        f for f in b2.prefs.codegen.cpp.extra_compile_args_gcc if f != "-fno-finite-math-only"
    ] + ["--param=vect-max-version-for-alias-checks=1000"]


def _cleanup_own_dirs():
    for d in _OWN_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def compile_network(b2, base: Path, key: str, label: str = "network") -> tuple[str, bool]:
    """Write and compile the standalone project of Brian2's active device.

    Each process builds in a directory of its own (concurrent runs never share static arrays or
    results), removed when the process exits.  A later build of the same ``key`` -- in this or
    any other process -- starts from a copy of ``base/cache_<key>``, so Brian2 rewrites only
    what differs and ``make`` finds the objects and the binary up to date.  When the network is
    really compiled (no copy of a cached build) one progress line goes to stderr.

    Parameters
    ----------
    b2 : module
        ``brian2``, with the network to build on its active ``cpp_standalone`` device.
    base : Path
        The cache folder (see :func:`cache_dir`); created if missing.
    key : str
        The network's configuration hash.
    label : str
        What is compiled, for the progress line (e.g. ``"network (500 neurons)"``).

    Returns
    -------
    directory : str
        This process's build directory (pass to ``device.run``).
    cache_hit : bool
        Whether the build started from a cached compiled project.
    """
    from filelock import FileLock

    base.mkdir(parents=True, exist_ok=True)
    prune_dead_builds(base)
    own = base / f"circuit_{key}_{_owner_tag()}"
    cached = base / f"cache_{key}"
    flags = compile_flags(b2)
    saved = b2.prefs.codegen.cpp.extra_compile_args_gcc

    def build(announce: bool) -> None:
        if announce:
            print(f"compiling {label} ...", end="", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
        b2.prefs.codegen.cpp.extra_compile_args_gcc = flags
        try:
            b2.device.build(directory=str(own), compile=False, run=False, with_output=False)
            if cached.is_dir():
                keep_cached_sources(own, cached)
            from brian2.codegen.cpp_prefs import get_compiler_and_args

            b2.device.compile_source(str(own), get_compiler_and_args()[0], False, False)
        except BaseException:
            if announce:
                print(" failed", file=sys.stderr, flush=True)
            raise
        finally:
            b2.prefs.codegen.cpp.extra_compile_args_gcc = saved
        if announce:
            print(f" done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    with FileLock(str(base / f"cache_{key}.lock")):
        hit = cached.is_dir() and not own.exists()
        if hit:
            try:
                shutil.copytree(cached, own, copy_function=shutil.copy2)
                os.utime(cached)  # most recently used (pruning keeps the newest)
            except (OSError, shutil.Error):  # pruned meanwhile: compile from scratch
                shutil.rmtree(own, ignore_errors=True)
                hit = False
        # a real compile (not a copy of the cache, nor this process's own earlier build of it)
        # holds the lock until the cache is written, so concurrent builds of the same network
        # wait for it and then copy it instead of compiling too
        real = not hit and not (cached.is_dir() and own.exists())
        if real:
            build(announce=True)
            if not cached.is_dir():
                tmp = base / f"cache_{key}.tmp_{_owner_tag()}"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(
                    own,
                    tmp,
                    copy_function=shutil.copy2,
                    # data is rewritten by every build/run: keep code and objects only
                    ignore=shutil.ignore_patterns("results*", "res_*", "static_arrays"),
                )
                os.replace(tmp, cached)
                prune_cache(base)
    if not real:
        # a copy of the cache or this process's own build: code generation and an up-to-date
        # `make` in this process's own folder, outside the lock (parallel workers do not wait
        # for each other)
        build(announce=False)
    if str(own) not in _OWN_DIRS:
        if not _OWN_DIRS:
            atexit.register(_cleanup_own_dirs)
        _OWN_DIRS.append(str(own))
    return str(own), hit


#: a line of generated code that sets a clock's initial time step or time to a number
_CLOCK_INIT = re.compile(r"^\s*(_array_\w+_(?:timestep|t)\[0\]) = [-+0-9.eE]+;\s*$")


def keep_cached_sources(own: Path, cached: Path) -> list[str]:
    """Put back the cached copy of every generated source that differs from it only in the order
    of its clocks' initialisations, so ``make`` finds its object file up to date.

    Brian2 2.9 writes the lines that set each clock's initial ``timestep`` and ``t`` in the
    iteration order of a set of clocks (ordered by object id, i.e. by memory address), so a
    rebuild of the same network may swap such lines in ``main.cpp``; ``make`` then recompiles it
    and links again (~2.5 s on this machine, on ~half of the rebuilds).  The order of these
    assignments does not matter: each sets a different variable to a constant before the run.
    A file is only put back when every other line is identical and the differing lines are one
    contiguous block of such assignments, each variable assigned once, in another order.

    Parameters
    ----------
    own, cached : Path
        This process's freshly written project and the cached compiled project.

    Returns
    -------
    list of str
        The sources put back (file names).
    """
    restored = []
    for src in sorted(own.glob("*.cpp")):
        old = cached / src.name
        if not old.is_file():
            continue
        a = src.read_text().splitlines()
        b = old.read_text().splitlines()
        if a == b or len(a) != len(b):
            continue
        diff = [k for k, (x, y) in enumerate(zip(a, b)) if x != y]
        block = range(diff[0], diff[-1] + 1)
        ma = [_CLOCK_INIT.match(a[k]) for k in block]
        mb = [_CLOCK_INIT.match(b[k]) for k in block]
        if not all(ma) or not all(mb):
            continue
        targets = [m.group(1) for m in ma]
        if len(set(targets)) == len(targets) and sorted(a[k] for k in block) == sorted(
            b[k] for k in block
        ):
            shutil.copy2(old, src)
            restored.append(src.name)
    return restored


def _host() -> str:
    """This machine's name as a file-name part."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _owner_tag() -> str:
    """``<host>_<pid>``: names this process's folders in a cache that several machines may
    share (a home folder on a network file system), so pruning only judges local processes."""
    return f"{_host()}_{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (owned by anyone).

    Parameters
    ----------
    pid : int
        Process id.

    Returns
    -------
    bool
        False only when no such process exists; a process of another user (which may not be
        signalled) counts as alive, and so does any doubt.
    """
    if pid <= 0:
        return True  # 0 and negative ids address process groups: never judged dead
    try:
        os.kill(pid, 0)  # signal 0: existence and permission check only, nothing sent
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def prune_dead_builds(base: Path) -> list[Path]:
    """Remove the build folders of processes of this host that no longer exist.

    A process's folder (``circuit_<key>_<host>_<pid>``) is removed at its exit; a process
    killed with SIGKILL leaves it.  Here every such folder (and unfinished cache copy) named
    with this host and a pid that no process has any more is removed.  Folders of other hosts,
    of live processes (any user's) and of this process are kept.  A folder named the older way,
    without a host, is judged as this host's.

    Parameters
    ----------
    base : Path
        The cache folder (:func:`cache_dir`).

    Returns
    -------
    list of Path
        The folders removed.
    """
    removed = []
    host = _host()
    for d in sorted(base.glob("c*_*")):
        m = _PROCESS_DIR.fullmatch(d.name)
        if m is None or m["host"] not in (None, host) or not d.is_dir():
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def prune_cache(base: Path, keep: int = CACHE_KEEP) -> None:
    """Remove all but the ``keep`` most recently used compiled projects (and their locks).

    Parameters
    ----------
    base : Path
        The cache folder (:func:`cache_dir`).
    keep : int
        Compiled projects kept.
    """
    caches = sorted(
        (d for d in base.glob("cache_*") if d.is_dir() and ".tmp" not in d.name),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for d in caches[keep:]:
        shutil.rmtree(d, ignore_errors=True)
        Path(str(d) + ".lock").unlink(missing_ok=True)
