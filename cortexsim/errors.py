"""One error type for bad user input.

Every check on user input raises :class:`InputError` naming the offending field and what is
allowed.  The CLI turns it into one line on stderr and exit status 2 (never a traceback).
"""
from __future__ import annotations

import math

import numpy as np
from collections.abc import Iterable


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
        so a message from a nested spec says where the bad value is."""
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
        if float(value) != int(value):
            raise InputError(field, f"must be an integer, got {value!r}")
        value = int(value)
    if min is not None and (value <= min if strict_min else value < min):
        op = ">" if strict_min else ">="
        raise InputError(field, f"must be {op} {min}, got {value!r}")
    if max is not None and value > max:
        raise InputError(field, f"must be <= {max}, got {value!r}")
    return value


def quiet_interrupt_in_worker() -> None:
    """Initializer of worker processes (``ProcessPoolExecutor(initializer=...)``).

    Ctrl-C sends SIGINT to the parent and to every worker.  A worker then ends at once and
    without a traceback, after running its exit handlers (Brian2's temporary log files and the
    process's build directory are removed); the parent reports the interruption.  SIGTERM (a
    pool terminating its workers) ends a worker the same way.
    """
    import signal
    signal.signal(signal.SIGINT, _exit_quietly)
    signal.signal(signal.SIGTERM, _exit_quietly)


def _exit_quietly(signum, frame):
    import atexit
    import os
    atexit._run_exitfuncs()
    os._exit(128 + signum)
