"""The resumable point store: one file per finished run, written atomically.

A run (one point, one seed) is keyed by a hash of its resolved experiment spec without its
criteria (they judge results, they do not change them), seed, scale and the code version (the
package's source and the model files).  What is computed from a run's results (its metrics, the
criteria judged on it) is recomputed from the stored ``<key>.nc`` whenever its definition
changed: the record keeps a hash of each metric's definition (:func:`metric_defs`).

A run's record ``<key>.json`` (the parameters, metrics and their definitions' hashes, status,
error, builds, wall time) and its results ``<key>.nc`` are written to a temporary file in the
same folder, flushed to disk and moved into place with ``os.replace``: a reader sees either no
file or a whole one, and ``kill -9`` at any moment leaves no corrupt file.  The record is
written last, so it marks the point as finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..outdir import atomic_write  # noqa: F401  (re-exported: the sweep's outputs use it)


def code_version() -> str:
    """The code version of a run (:func:`cortexsim.experiment.store.code_version`: sources,
    library versions, model files): one definition for checkpoints and sweep points."""
    from ..experiment.store import code_version as version

    return version()


def point_key(raw_spec: dict, seed: int, scale, code: str | None = None) -> str:
    """The store key of one run: resolved spec (without its criteria) + seed + scale + code
    version.

    Parameters
    ----------
    raw_spec : dict
        The run's raw experiment spec.
    seed : int
        Its seed.
    scale : str or int or None
        Its scale.
    code : str, optional
        Code version (default: the current one).

    Returns
    -------
    str
    """
    spec = {k: v for k, v in raw_spec.items() if k != "criteria"}
    return _digest(
        {"spec": spec, "seed": int(seed), "scale": scale, "code": code or code_version()}
    )


def _digest(obj) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def metric_defs(metrics: list[dict], criteria: list[dict]) -> dict:
    """A hash of each metric's definition: its own fields, and for a criterion's observed value
    the criteria of the run as well (a criterion may ``require`` another).  A stored value
    whose hash differs from the current one is stale.

    Parameters
    ----------
    metrics : list of dict
        The metrics (:class:`~cortexsim.sweep.spec.Metric` dumps).
    criteria : list of dict
        The run's validated criteria.

    Returns
    -------
    dict
        Metric name -> hash.
    """
    return {
        m["name"]: _digest({"metric": m, "criteria": criteria if m.get("criterion") else None})
        for m in metrics
    }


class PointStore:
    """Finished runs under ``root`` (``<key>.json`` records, ``<key>.nc`` results).

    Parameters
    ----------
    root : str or Path
        Folder (created if missing).
    """

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def record_path(self, key: str) -> Path:
        """The file of the record of the run ``key`` (:func:`point_key`): ``<key>.json``.

        Parameters
        ----------
        key : str
            The run's key.

        Returns
        -------
        Path
        """
        return self.root / f"{key}.json"

    def results_path(self, key: str) -> Path:
        """The file of the results of the run ``key``: ``<key>.nc``.

        Parameters
        ----------
        key : str
            The run's key.

        Returns
        -------
        Path
        """
        return self.root / f"{key}.nc"

    def get(self, key: str) -> dict | None:
        """The record of run ``key``, or None where there is none.

        Parameters
        ----------
        key : str
            A run's key (:func:`point_key`).

        Returns
        -------
        dict or None
        """
        p = self.record_path(key)
        if not p.is_file():
            return None
        return json.loads(p.read_text())

    def done(self, key: str) -> bool:
        """A finished run (status ok); failed runs are run again by a re-run.

        Parameters
        ----------
        key : str
            The run's key.

        Returns
        -------
        bool
        """
        rec = self.get(key)
        return rec is not None and rec.get("status") == "ok"

    def reusable(self, task: dict) -> bool:
        """The run of ``task`` is finished and gives its metrics: as stored, or recomputed
        from its stored results (a metric whose definition changed since the run); a run that
        skipped a network read-out that ``task`` reads is not
        (:func:`cortexsim.sweep.executor.readouts_cover`).

        Parameters
        ----------
        task : dict
            A task (:func:`cortexsim.sweep.build_runs`): ``key``, ``metrics``, ``criteria``.

        Returns
        -------
        bool
        """
        rec = self.get(task["key"])
        if rec is None or rec.get("status") != "ok":
            return False
        from .executor import readouts_cover  # a read-out it skipped is read now: run again

        if not readouts_cover(rec, task):
            return False
        return not stale_metrics(rec, task) or self.results_path(task["key"]).is_file()

    def put(self, key: str, record: dict, data=None) -> None:
        """Write the results Dataset (if any), then the record (the 'finished' mark).

        Parameters
        ----------
        key : str
            The run's key.
        record : dict
            JSON-able record (numpy scalars and arrays converted).
        data : xarray.Dataset, optional
            The run's results.
        """
        if data is not None:
            atomic_write(self.results_path(key), lambda t: data.to_netcdf(t))
        text = json.dumps(record, sort_keys=True, default=_json_default)
        atomic_write(self.record_path(key), lambda t: t.write_text(text))

    def keys(self) -> list[str]:
        """Keys of every run with a record, sorted."""
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))


def stale_metrics(record: dict, task: dict) -> list[dict]:
    """The metrics of ``task`` that ``record`` (a finished run) holds under another definition,
    or not at all.

    Parameters
    ----------
    record : dict
        The run's record.
    task : dict
        A task with ``metrics`` and ``criteria``.

    Returns
    -------
    list of dict
    """
    have = record.get("metric_defs") or {}
    want = metric_defs(task["metrics"], task.get("criteria", []))
    return [
        m
        for m in task["metrics"]
        if have.get(m["name"]) != want[m["name"]] or m["name"] not in record.get("metrics", {})
    ]


def _json_default(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    return str(v)
