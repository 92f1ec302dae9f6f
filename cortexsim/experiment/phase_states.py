"""Shared history: a condition's state after each phase, keyed by what it depends on.

Many runs repeat the same history: the conditions of a study share their baseline and stress,
and the trial points of a search (issue 21) that vary parameters read only by the stimulation
sessions repeat the whole baseline and 14 days of stress.  A phase's result depends only on the
inputs that phase and the ones before it read, so the state after phase ``k`` of the timeline's
*prefix* (the phases before its first stimulation phase) is stored under :func:`phase_key`:

* the code version (:func:`cortexsim.experiment.store.code_version`: sources, libraries and
  every model file: a model file changed between runs invalidates every stored state);
* the seed and the run's settings (scale included);
* the timeline up to and including phase ``k`` and the condition's stress schedule;
* the condition's fields that the prefix reads (``stress``, ``ablations``; its protocol,
  intensity, silencing and modality are read only by the sessions);
* the values of every model tree (overrides and enabled mechanisms applied) **except** the
  subtrees declared in :data:`LATE_SUBTREES`, read only by the stimulation sessions and the
  fast-to-slow drive.  The ``mechanisms`` tree is left out: a mechanism acts only through the
  values its bundle sets in the other trees, which are in the key.

The declaration is conservative: whatever is not declared late invalidates.  A later run (another
condition, trial point, process or Dask worker) with the same key starts from the stored state
(:meth:`cortexsim.experiment.phases.ConditionRun.run`); the numbers are bit-identical to
simulating the prefix (tests/test_phase_states.py).

**Sessions.**  Past the prefix, a condition's state depends on the drive's parameters only once
a session has driven it.  The network outcome of a session (the rule's per-site state after it,
its activity signals and rates, and those of its reference run) is stored under
:func:`session_key` -- the *content* of everything its runs read: code version, seed, settings,
the condition's spec, every model tree except :data:`SESSION_LATE_SUBTREES`, the spine sites'
presence and per-site state, the noise seed, the stimulus and the overrides -- and loaded by any
later session with the same key (:meth:`cortexsim.experiment.phases.ConditionRun.
_session_outcome`).  Only outcomes worth sharing are written: those of a condition whose state
is still free of the drive's parameters (a sham session drives nothing, so a sham condition's
every session; every condition's first).  This store exists only among the points of a sweep
(:func:`sweep_dir`), where the search's trial points repeat these sessions.

Where the states live: ``<checkpoint folder>/phase_states`` of a run with checkpoints, or the
folder set by :func:`shared_dir` (the sweep engine sets ``<store>/.shared`` around every run, so
all points of a sweep or fit share it; read-outs, rest references and pass 1 are then shared
there as well, and the session outcomes in ``sessions``).  ``CORTEXSIM_PHASE_STATES=0``
switches all of it off (the path of before issue 21; also the sweep's skipping of read-outs that
nothing reads and a worker's re-use of its latest build).  Files are written atomically under a
file lock, one ``<key>.npz`` per state.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .store import _atomic_write, digest

__all__ = [
    "LATE_SUBTREES",
    "SESSION_LATE_SUBTREES",
    "PhaseStateStore",
    "active_dir",
    "enabled",
    "phase_key",
    "session_key",
    "shared_dir",
    "sweep_dir",
]

#: model subtrees read only by the stimulation sessions and the fast-to-slow drive (never by
#: the slow phases before the first session, their read-out snapshots or the drawn circuit);
#: a parameter anywhere else is part of every phase's key
LATE_SUBTREES = {
    "structural": ("activity", "dopamine"),
    "synaptic": ("metaplasticity", "fast_metaplasticity"),
}
#: model subtrees that a stimulation session reads only *after* its network runs (the activity
#: drive and the dopamine release computed from the runs' signals): never by the runs or by the
#: rule's per-site state after the session (:func:`session_key`)
SESSION_LATE_SUBTREES = {"structural": ("activity", "dopamine")}
#: model trees left out of the key (their effect is in the other trees' values)
_NOT_KEYED = ("mechanisms",)

_SHARED_DIR: list = []


def enabled() -> bool:
    """Whether shared phase states are on (``CORTEXSIM_PHASE_STATES`` not ``0``)."""
    return os.environ.get("CORTEXSIM_PHASE_STATES", "1") != "0"


@contextlib.contextmanager
def shared_dir(path):
    """Within this block, runs without a checkpoint folder share phase states, read-outs and
    rest references in ``path`` (the sweep engine's ``<store>/.shared``).

    Parameters
    ----------
    path : str or Path or None
        The shared folder (None: no sharing inside the block).
    """
    _SHARED_DIR.append(Path(path) if path is not None else None)
    try:
        yield
    finally:
        _SHARED_DIR.pop()


def active_dir(checkpoint_dir=None):
    """The folder of a run's shared stores: its checkpoint folder, else the one set by
    :func:`shared_dir` when sharing is :func:`enabled`, else None.

    Parameters
    ----------
    checkpoint_dir : str or Path, optional
        The run's checkpoint folder.

    Returns
    -------
    Path or None
    """
    if checkpoint_dir is not None:
        return Path(checkpoint_dir)
    if _SHARED_DIR and _SHARED_DIR[-1] is not None and enabled():
        return _SHARED_DIR[-1]
    return None


def sweep_dir():
    """The folder that the sweep engine set for the points of one store (:func:`shared_dir`),
    when sharing is :func:`enabled`; None otherwise (a plain run, even with checkpoints).

    Returns
    -------
    Path or None
    """
    if _SHARED_DIR and _SHARED_DIR[-1] is not None and enabled():
        return _SHARED_DIR[-1]
    return None


def _early_values(trees: dict, late: dict = LATE_SUBTREES) -> dict:
    out = {}
    for name, tree in sorted(trees.items()):
        if name in _NOT_KEYED:
            continue
        vals = dict(tree.values())
        for sub in late.get(name, ()):
            vals.pop(sub, None)
        out[name] = vals
    return out


def early_digest(trees: dict, names=None) -> str:
    """Digest of the values of the model trees ``names`` (default all) without the subtrees
    of :data:`LATE_SUBTREES` (what the phases before the sessions read).

    Parameters
    ----------
    trees : dict
        Model trees.
    names : iterable of str, optional
        The trees to include.

    Returns
    -------
    str
    """
    vals = _early_values(trees)
    if names is not None:
        vals = {k: v for k, v in vals.items() if k in set(names)}
    return digest(vals)


def prefix_length(timeline: list) -> int:
    """Number of phases before the first stimulation phase.

    Parameters
    ----------
    timeline : list of dict
        The parsed timeline (``kind`` per phase).

    Returns
    -------
    int
    """
    for k, ph in enumerate(timeline):
        if ph["kind"] == "stimulation":
            return k
    return len(timeline)


def phase_key(ctx, k: int, version: str, seed: int, stress_schedule) -> str:
    """Key of a condition's state after phase ``k`` (0-based) of its timeline's prefix (see the
    module docstring).

    Parameters
    ----------
    ctx : ConditionContext
        The condition.
    k : int
        Phase index (< :func:`prefix_length`).
    version : str
        Code version.
    seed : int
        Experiment seed.
    stress_schedule : StressSchedule or None
        The condition's stress schedule.

    Returns
    -------
    str
    """
    cond = ctx.cond
    return digest(
        "phase_state",
        1,
        version,
        int(seed),
        ctx.settings,
        ctx.timeline[: k + 1],
        bool(cond.get("stress")),
        list(cond.get("ablations", [])),
        repr(stress_schedule),
        _early_values(ctx.trees),
    )


def session_key(ctx, version: str, seed: int, run_inputs: dict) -> str:
    """Key of the network outcome of one stimulation session (its runs' per-site and per-cell
    results, :meth:`cortexsim.experiment.phases.ConditionRun.session`): everything its runs and
    the rule's state after it read.

    * the code version (sources, libraries, model files), the seed and the run's settings;
    * the condition's spec (protocol, intensity, silencing, modality, light populations,
      ablations) and its network-configuration key;
    * the values of every model tree except :data:`SESSION_LATE_SUBTREES` (read only after the
      runs: the drive and the dopamine release);
    * ``run_inputs``: the session's own run-time inputs (noise seed, lengths, pulse grid, the
      stimulus' arrays, the spine sites' presence and per-site state, the threshold and
      postsynaptic-variable overrides, whether a reference run is part of it).

    The key is the content of every input, so an outcome stored by one condition, trial point or
    process is the outcome of any run with the same key (bit for bit).

    Parameters
    ----------
    ctx : ConditionContext
        The condition.
    version : str
        Code version.
    seed : int
        Experiment seed.
    run_inputs : dict
        Name -> ndarray or JSON-able value.

    Returns
    -------
    str
    """
    arrays = []
    for k in sorted(run_inputs):
        v = run_inputs[k]
        arrays += [k, np.asarray(v) if isinstance(v, np.ndarray) else v]
    return digest(
        "session",
        1,
        version,
        int(seed),
        ctx.settings,
        ctx.cond,
        ctx.key,
        _early_values(ctx.trees, SESSION_LATE_SUBTREES),
        *arrays,
    )


class PhaseStateStore:
    """Phase states in one folder (``<key>.npz``: arrays and a ``meta.json`` member).

    Parameters
    ----------
    directory : path
        Folder (created on the first save).
    """

    def __init__(self, directory):
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        """The file of state ``key``.

        Parameters
        ----------
        key : str
            A :func:`phase_key`.

        Returns
        -------
        Path
        """
        return self.directory / f"{key}.npz"

    def has(self, key: str) -> bool:
        """Whether state ``key`` is stored.

        Parameters
        ----------
        key : str
            A :func:`phase_key`.

        Returns
        -------
        bool
        """
        return self.path(key).is_file()

    def load(self, key: str):
        """``(arrays, meta)`` of state ``key``, or None (none, or unreadable).

        Parameters
        ----------
        key : str
            A :func:`phase_key`.

        Returns
        -------
        tuple of (dict, dict) or None
        """
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with zipfile.ZipFile(p) as z:
                meta = json.loads(z.read("meta.json"))
                arrays = {
                    n[:-4]: np.lib.format.read_array(io.BytesIO(z.read(n)), allow_pickle=False)
                    for n in z.namelist()
                    if n.endswith(".npy")
                }
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        if meta.get("key") != key:
            return None
        return arrays, meta

    def save(self, key: str, arrays: dict, meta: dict) -> None:
        """Store state ``key`` (atomically, under a file lock; kept if already there).

        Parameters
        ----------
        key : str
            A :func:`phase_key`.
        arrays : dict
            Name -> ndarray (the condition's checkpoint arrays).
        meta : dict
            JSON-able metadata.
        """
        from filelock import FileLock

        self.directory.mkdir(parents=True, exist_ok=True)
        p = self.path(key)
        with FileLock(str(p) + ".lock"):
            if p.is_file():
                return
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
                z.writestr("meta.json", json.dumps({"key": key, **meta}, sort_keys=True))
                for name, a in arrays.items():
                    member = io.BytesIO()
                    np.lib.format.write_array(member, np.asarray(a), allow_pickle=False)
                    z.writestr(f"{name}.npy", member.getvalue())
            _atomic_write(p, buf.getvalue())
