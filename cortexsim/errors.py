"""Errors that are not bugs: bad user input, a failing environment, an interrupt.

Every check on user input raises :class:`InputError` naming the offending field and what is
allowed.  The CLI turns it into one line on stderr and exit status 2 (never a traceback).  An
operating-system error while writing or reading a file (disk full, permission denied) is an
error of the environment (:class:`StorageError`, exit status :data:`EXIT_IO`), and Ctrl-C or
SIGINT ends a command with "interrupted" and status 130 whatever SIGINT handler the process
inherited (:func:`interrupts_raise`).
"""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import threading
from collections.abc import Iterable, Iterator

import numpy as np

#: exit status of an error of the environment (EX_IOERR of sysexits.h)
EXIT_IO = 74
#: exit status after SIGINT (128 + its number, as a shell reports it)
EXIT_INTERRUPTED = 128 + signal.SIGINT
#: OS errors that are the environment's, wherever raised: what to do about each
_ENVIRONMENT_HINTS = {
    errno.ENOSPC: "free some space on that file system (or use another output folder)",
    errno.EDQUOT: "free some space within your quota (or use another output folder)",
    errno.EACCES: "check the permissions of that path (or use another output folder)",
    errno.EPERM: "check the permissions of that path (or use another output folder)",
    errno.EROFS: "the file system is read-only: use another output folder",
    errno.EIO: "check the disk or network file system",
    errno.EMFILE: "raise the open-file limit (ulimit -n)",
    errno.ENFILE: "too many files are open on this machine: retry later",
    errno.ESTALE: "check the network file system",
}


class InputError(ValueError):
    """Bad user input: names the field, the value given and what is allowed.

    Parameters
    ----------
    field : str
        Dotted name of the input (``settings.scale``, ``cell_type``...).
    message : str
        What is wrong.
    allowed : iterable or str, optional
        The allowed values or range, listed in the message.
    """

    def __init__(self, field: str, message: str, allowed=None):
        self.field = field
        self.message = message
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed is not None:
            if isinstance(allowed, str):
                text += f" (allowed: {allowed})"
            else:
                text += f" (allowed: {', '.join(map(str, allowed))})"
        super().__init__(text)

    def within(self, prefix: str) -> InputError:
        """The same error with its field placed inside ``prefix`` (e.g. a file and table name),
        so a message from a nested spec says where the bad value is.

        Parameters
        ----------
        prefix : str
            Put before the field name as it is (include the separator, e.g. ``"sweep.base: "``).

        Returns
        -------
        InputError
            A new error; message and allowed values unchanged.
        """
        return InputError(f"{prefix}{self.field}", self.message, self.allowed)

    def __reduce__(self):  # survives pickling (process pools, Dask workers)
        return (InputError, (self.field, self.message, self.allowed))


def check_choice(field: str, value, allowed: Iterable):
    """Return ``value`` if it is one of ``allowed``.

    Parameters
    ----------
    field : str
        Name of the input for the error message.
    value : object
        The value given.
    allowed : iterable
        The allowed values (listed in the message).

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    InputError
        ``value`` not in ``allowed``.
    """
    allowed = list(allowed)
    if value not in allowed:
        raise InputError(field, f"unknown value {value!r}", allowed)
    return value


def check_number(field: str, value, *, min=None, max=None, strict_min=False, integer=False):
    """Return ``value`` (an int, float or numpy number; not a bool, not a string) after checking
    it is a finite number in range.

    Parameters
    ----------
    field : str
        Name for the error message.
    value : object
        What the user gave.
    min, max : float, optional
        Bounds.
    strict_min : bool
        Exclude ``min``.
    integer : bool
        Require a whole number.

    Returns
    -------
    int or float

    Raises
    ------
    InputError
        Naming ``field``: not a number, not finite, not an integer (``integer=True``), or out of
        ``[min, max]`` (``min`` excluded with ``strict_min``).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InputError(field, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise InputError(field, f"must be a finite number, got {value!r}")
    if integer:
        # an int is one (float() would round one above 2**53 and call it fractional)
        if not isinstance(value, (int, np.integer)) and float(value) != int(value):
            raise InputError(field, f"must be an integer, got {value!r}")
        value = int(value)
    if min is not None and (value <= min if strict_min else value < min):
        op = ">" if strict_min else ">="
        raise InputError(field, f"must be {op} {min}, got {value!r}")
    if max is not None and value > max:
        raise InputError(field, f"must be <= {max}, got {value!r}")
    return value


class StorageError(OSError):
    """An operating-system error while writing or reading a file: an error of the environment
    (disk full, permission denied, read-only file system...), not a bug in cortexsim.

    Parameters
    ----------
    errno_ : int or None
        The error number.
    strerror : str
        Its description.
    path : str or Path or None
        The file or folder concerned (None: not known).
    action : str
        What was being done: ``"writing"`` or ``"reading"``.
    """

    def __init__(self, errno_, strerror, path, action: str = "writing"):
        super().__init__(errno_, strerror, None if path is None else str(path))
        self.action = action

    @classmethod
    def from_oserror(cls, exc: OSError, path, action: str = "writing") -> StorageError:
        """The StorageError of ``exc``, naming ``exc.filename`` if set, else ``path``.

        Parameters
        ----------
        exc : OSError
            The error raised.
        path : str or Path
            The file or folder being written or read.
        action : str
            What was being done.

        Returns
        -------
        StorageError
        """
        return cls(exc.errno, exc.strerror or str(exc), exc.filename or path, action)

    def __reduce__(self):  # survives pickling (process pools, Dask workers)
        return (StorageError, (self.errno, self.strerror, self.filename, self.action))

    def __str__(self) -> str:
        where = f" ({self.action} {self.filename})" if self.filename else ""
        return f"{self.strerror}{where}"

    def advice(self) -> str:
        """What to do about it (by error number), and that a re-run keeps finished work.

        Returns
        -------
        str
        """
        hint = _ENVIRONMENT_HINTS.get(self.errno, "check that path and its file system")
        return f"{hint}, then run the same command again: it resumes from what was saved"


def environment_error(exc: BaseException) -> StorageError | None:
    """``exc`` as an error of the environment, or None if it may be a bug.

    A :class:`StorageError` is one; so is any other :class:`OSError` whose error number says
    the environment failed (disk full, quota, permissions, read-only or failing file system,
    too many open files), wherever it was raised (a library writing a file, a lock file).

    Parameters
    ----------
    exc : BaseException
        An error that reached the command line.

    Returns
    -------
    StorageError or None
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_HINTS:
        return StorageError.from_oserror(exc, None, "writing or reading")
    return None


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, SIGINT raises :class:`KeyboardInterrupt`, whatever handler the process
    inherited; the previous handler is put back afterwards.

    A process started in the background by a script inherits SIGINT ignored (``SIG_IGN``), and
    Brian2, on import, wraps the handler it finds and calls it on SIGINT: a non-callable one
    (``SIG_IGN``, ``SIG_DFL``, or None for a handler not set from Python) then fails with
    ``TypeError``.  Installing Python's own handler here first gives Brian2 (imported later)
    a callable one, and a SIGINT is an interrupt like Ctrl-C at a terminal.  Outside the main
    thread (where signals cannot be set) nothing is changed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _repair_brian2_interrupt_handler()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def _repair_brian2_interrupt_handler() -> None:
    """Brian2 imported earlier kept a non-callable previous SIGINT handler: make it Python's."""
    import sys

    brian2 = sys.modules.get("brian2")
    handler = getattr(brian2, "_int_handler", None)
    if handler is not None and not callable(getattr(handler, "previous_handler", None)):
        handler.previous_handler = signal.default_int_handler


def quiet_interrupt_in_worker() -> None:
    """Initializer of worker processes (``ProcessPoolExecutor(initializer=...)``).

    Ctrl-C sends SIGINT to the parent and to every worker.  A worker then ends at once and
    without a traceback, after running its exit handlers (Brian2's temporary log files and the
    process's build directory are removed); the parent reports the interruption.  SIGTERM (a
    pool terminating its workers) ends a worker the same way.
    """
    signal.signal(signal.SIGINT, _exit_quietly)
    signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum, frame):
    import atexit
    import os

    atexit._run_exitfuncs()
    os._exit(128 + signum)
