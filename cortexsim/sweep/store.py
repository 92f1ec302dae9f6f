"""The resumable point store: one file per finished run, written atomically.

A run (one point, one seed) is keyed by a hash of its resolved experiment spec, seed, scale and
the code version (the package's source and the model files).  Its record ``<key>.json`` (the
parameters, metrics, status, error, builds, wall time) and its results ``<key>.nc`` are written
to a temporary file in the same folder, flushed to disk and moved into place with
``os.replace``: a reader sees either no file or a whole one, and ``kill -9`` at any moment leaves
no corrupt file.  The record is written last, so it marks the point as finished.
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
    """The store key of one run: resolved spec + seed + scale + code version.

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
    blob = json.dumps({"spec": raw_spec, "seed": int(seed), "scale": scale,
                       "code": code or code_version()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


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
        return self.root / f"{key}.json"

    def results_path(self, key: str) -> Path:
        return self.root / f"{key}.nc"

    def get(self, key: str) -> dict | None:
        p = self.record_path(key)
        if not p.is_file():
            return None
        return json.loads(p.read_text())

    def done(self, key: str) -> bool:
        """A finished run (status ok); failed runs are run again by a re-run."""
        rec = self.get(key)
        return rec is not None and rec.get("status") == "ok"

    def put(self, key: str, record: dict, data=None) -> None:
        """Write the results Dataset (if any), then the record (the 'finished' mark)."""
        if data is not None:
            atomic_write(self.results_path(key), lambda t: data.to_netcdf(t))
        text = json.dumps(record, sort_keys=True, default=_json_default)
        atomic_write(self.record_path(key), lambda t: t.write_text(text))

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))


def _json_default(v):
    import numpy as np
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
