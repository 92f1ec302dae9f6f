"""The one command-line entry of the engine's commands (``cortexsim sweep``, ``fit``,
``sensitivity``): the options they share, checked before any work, and where their runs go.

A command is a function ``body(spec, engine, out=None, scale=None, **options) -> summary``;
:func:`command` makes it the ``run_cli(spec, workers=1, scheduler=None, out=None, scale=None,
progress=True, **options)`` that :mod:`cortexsim.cli` calls, and adds the wall time to the
summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import check_number


@dataclass(frozen=True)
class Engine:
    """Where a command's runs execute: local worker processes or a Dask cluster.

    Attributes
    ----------
    workers : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://host:8786``) or client.
    progress : bool
        Draw progress bars.
    """

    workers: int = 1
    scheduler: Any = None
    progress: bool = True

    def run(self, tasks: list[dict], desc: str) -> dict:
        """Run the tasks not yet in the store (:func:`cortexsim.sweep.run_tasks`).

        Parameters
        ----------
        tasks : list of dict
            From :func:`cortexsim.sweep.build_runs`.
        desc : str
            Label of the progress bar.

        Returns
        -------
        dict
            Task key -> record.
        """
        from . import run_tasks

        return run_tasks(
            tasks, workers=self.workers, scheduler=self.scheduler, progress=self.progress, desc=desc
        )

    def records_by_point(self, tasks: list[dict], n_points: int, desc: str) -> list[list[dict]]:
        """Run the tasks; the records of each point, one per seed in task order (a run
        without a record as ``{"status": "missing"}``).

        Parameters
        ----------
        tasks : list of dict
            From :func:`cortexsim.sweep.build_runs`.
        n_points : int
            Number of points the tasks' ``point`` indices refer to.
        desc : str
            Label of the progress bar.

        Returns
        -------
        list of list of dict
        """
        recs = self.run(tasks, desc)
        out: list[list[dict]] = [[] for _ in range(n_points)]
        for t in tasks:
            out[t["point"]].append(recs.get(t["key"]) or {"status": "missing"})
        return out


#: the options every command takes (numpydoc), before its own
_SHARED = """\
spec : str or Path
    The command's spec (TOML).
workers : int
    Local worker processes (default 1; ignored with ``scheduler``).
scheduler : str or distributed.Client, optional
    Dask scheduler address or client: run there instead.
out : str or Path, optional
    Output folder (default ``out/<name in the spec>``).
scale : str or int, optional
    Replaces the scale of every run.
progress : bool
    Draw progress bars.
"""
_RETURNS = """
Returns
-------
dict
    The summary (with ``wall_s``).

Raises
------
InputError
    Any bad input, before any run.
"""


def _doc(body_doc: str | None) -> str:
    """The docstring of a command's ``run_cli``: the body's summary, the shared options, the
    body's own (its ``Parameters`` section), what it returns."""
    import inspect

    head, sep, own = inspect.cleandoc(body_doc or "").partition("Parameters\n----------\n")
    return f"{head.rstrip()}\n\nParameters\n----------\n{_SHARED}{own.rstrip()}\n{_RETURNS}"


def command(body: Callable) -> Callable:
    """The ``run_cli`` of a command: ``--workers`` checked before any work, the runs on an
    :class:`Engine`, ``wall_s`` added to the summary.

    Parameters
    ----------
    body : callable
        ``body(spec, engine, out=None, scale=None, **options) -> dict`` (the summary).

    Returns
    -------
    callable
        ``run_cli(spec, workers=1, scheduler=None, out=None, scale=None, progress=True,
        **options) -> dict``; its docstring is ``body``'s summary and ``Parameters`` (the
        command's own options) with the shared options.
    """

    def run_cli(
        spec, workers=1, scheduler=None, out=None, scale=None, progress=True, **options
    ) -> dict:
        t0 = time.perf_counter()
        if scheduler is None:
            workers = check_number("--workers", workers, min=1, integer=True)
        summary = body(spec, Engine(workers, scheduler, progress), out=out, scale=scale, **options)
        summary["wall_s"] = round(time.perf_counter() - t0, 2)
        return summary

    run_cli.__doc__ = _doc(body.__doc__)
    run_cli.__module__ = body.__module__
    return run_cli
