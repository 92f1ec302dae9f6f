"""Output folders: one writer at a time, whole files, and file-system errors named as such.

Every command that writes an output folder (``run``, ``sweep``, ``fit``, ``sensitivity``)
claims it with :func:`claim_out_dir` before any work: the folder is made, checked writable and
locked (:data:`LOCK_NAME`, an exclusive :class:`filelock.FileLock` held until the command ends).
A second process claiming the same folder fails at once with an :class:`InputError` naming it
(exit status 2), so two runs never mix or delete each other's results and checkpoints.  The
lock is released when its holder ends, however it ends (even ``kill -9``): re-running the same
command later finds the folder free and resumes from what is in it.  Temporary files left there
by a killed earlier writer (:func:`atomic_write`'s ``.<name>.<random>.tmp``, unfinished
``.partial_*`` result folders) are removed when the folder is claimed.

Files are written with :func:`atomic_write`.  An operating-system error while writing or
reading an output (disk full, permission denied, a read-only or vanished file system) is raised
as :class:`cortexsim.errors.StorageError` naming the path: the command line reports it as an
error of the environment (exit status :data:`cortexsim.errors.EXIT_IO`), not as a bug.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import InputError, StorageError

#: the lock file of a claimed output folder
LOCK_NAME = ".cortexsim.lock"
#: who holds the lock (process, host, start time, command line): named in the refusal
OWNER_NAME = ".cortexsim.owner"

#: a temporary file name of :func:`atomic_write` (or of older versions, ``.<name>.tmp<pid>``)
_TEMPORARY = re.compile(r"\..+\.tmp\d*")
_LOCKS: dict[str, object] = {}  # resolved folder -> its FileLock (re-entrant in a process)


@contextlib.contextmanager
def storage_errors(path, action: str = "writing") -> Iterator[None]:
    """Turn an :class:`OSError` raised inside the block into a :class:`StorageError` naming
    the file (the error's own file name if it has one, else ``path``).

    Parameters
    ----------
    path : str or Path
        The file or folder being written or read.
    action : str
        What was being done (``"writing"``, ``"reading"``), for the message.

    Raises
    ------
    StorageError
        Any OS error in the block (an existing StorageError passes through unchanged).
    """
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError.from_oserror(exc, path, action) from exc


def _umask() -> int:
    """The process's file-mode creation mask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` then move the file into ``path`` atomically (same folder):
    a reader, or a run killed at any instant, sees the previous file or the new one, never
    part of one.

    Parameters
    ----------
    path : str or Path
        Destination.
    write : callable
        ``write(tmp_path)`` writes the file.

    Raises
    ------
    StorageError
        The file could not be written (disk full, permission denied...); ``path`` is left as
        it was and no temporary file remains.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: the usual file mode
            write(Path(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def check_out_dir(out, field: str = "--out") -> Path:
    """``out`` is, or can be made, a writable directory (made here, before any work).

    Parameters
    ----------
    out : str or Path
        The output folder.
    field : str
        Name of the option, for the error message.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        ``out`` is a file, lies under a file, or cannot be written.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise InputError(field, f"not a writable directory: {p} is a file")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-", suffix=".tmp"):
            pass
    except OSError as exc:
        raise InputError(field, f"not a writable directory: {p} ({exc.strerror})") from None
    return p


@contextlib.contextmanager
def claim_out_dir(out, field: str = "--out") -> Iterator[Path]:
    """Make ``out``, check it is writable and hold an exclusive lock on it for the block.

    Claims by the same process nest (a command may claim the folder its caller holds); a
    claim by another process while the lock is held fails at once.

    Parameters
    ----------
    out : str or Path
        The output folder.
    field : str
        Name of the option, for error messages.

    Yields
    ------
    Path
        The folder.

    Raises
    ------
    InputError
        ``out`` is not a writable directory, or another process holds it (the message names
        the folder and, where known, that process).
    """
    from filelock import FileLock, Timeout

    p = check_out_dir(out, field)
    lock = _LOCKS.setdefault(str(p.resolve()), FileLock(str(p / LOCK_NAME), thread_local=False))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(
            field,
            f"{p} is in use by another cortexsim process{_owner(p)}; wait "
            f"for it to finish or choose another {field}",
        ) from None
    try:
        if lock.lock_counter == 1:
            remove_stale_temporaries(p)
            with contextlib.suppress(OSError):  # the owner note is only informative
                atomic_write(p / OWNER_NAME, lambda t: t.write_text(_owner_note()))
        yield p
    finally:
        if lock.lock_counter == 1:  # the last claim: note gone before the lock
            (p / OWNER_NAME).unlink(missing_ok=True)
        lock.release()


def _owner_note() -> str:
    import sys

    return (
        f"pid {os.getpid()} on {socket.gethostname()} since "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv) or 'python'}"
    )


def _owner(p: Path) -> str:
    try:
        note = (p / OWNER_NAME).read_text().strip()
    except OSError:
        return ""
    return f" ({note})" if note else ""


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove what a killed writer of ``out`` left behind: :func:`atomic_write` temporaries
    (``.<name>.<random>.tmp``, also the older ``.<name>.tmp<pid>``), write tests and unfinished
    ``.partial_*`` result folders.  Only call it while holding ``out``'s lock: then no other
    writer is using them.

    Parameters
    ----------
    out : Path
        A claimed output folder.

    Returns
    -------
    list of Path
        What was removed.
    """
    removed = []
    for f in sorted(out.rglob(".*")):
        if f.name.startswith(".partial_") and f.is_dir():
            shutil.rmtree(f, ignore_errors=True)
        elif _TEMPORARY.fullmatch(f.name) and f.is_file():
            f.unlink(missing_ok=True)
        else:
            continue
        removed.append(f)
    return removed
