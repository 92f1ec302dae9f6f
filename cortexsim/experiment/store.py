"""Checkpoints and shared read-outs on disk: explicit arrays plus JSON, no pickles.

A **checkpoint** holds everything the future of one condition's timeline depends on (see
:class:`cortexsim.experiment.state.ConditionState` and the recorder's lists).  It is one npz
file ``<condition>.<key>.ckpt.npz``: one ``.npy`` member per array (read back with
``allow_pickle=False``) and a ``meta.json`` member (plain JSON; ``numpy.load`` gives its bytes).  ``key`` (:func:`condition_key`) is a
hash of the resolved config of that condition *without* the criteria (a changed pass/fail
threshold keeps valid state) and of :func:`code_version` (the cortexsim sources, the library
versions and every model file): a checkpoint made by other code or other model files is
never resumed.

A **shared read-out** is a JSON file named by the hash of its full identity (network, spine
snapshot, seed, stimulus and code version); conditions and worker processes with identical
histories measure it once.  ``filelock`` serialises its first measurement.

Every file is written with :func:`cortexsim.outdir.atomic_write` (a temporary name in the same
folder, flushed to disk and moved into place with :func:`os.replace`), so a run killed at any
instant leaves either the previous file or the new one, never a partial one; a disk that is full
or not writable raises :class:`cortexsim.errors.StorageError` naming the file.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import re
import warnings
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np

from ..outdir import atomic_write

#: version of the checkpoint layout; a file of another layout is ignored
FORMAT = 2
#: libraries whose version can change the numbers
_LIBRARIES = ("brian2", "numpy", "numba")


# --------------------------------------------------------------------------- versions and keys
@functools.lru_cache(maxsize=1)
def source_version() -> str:
    """Hash of every Python source of the cortexsim package (path and bytes) and of the
    versions of the libraries that compute the numbers."""
    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for lib in _LIBRARIES:
        h.update(f"{lib}={metadata.version(lib)}\n".encode())
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def models_version() -> str:
    """Hash of every model file (``*.toml`` under :func:`cortexsim.params.models_dir`, path and
    bytes).  Read on every call: ``CORTEXSIM_MODELS`` or a file may change between runs."""
    from ..params import models_dir

    root = models_dir()
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.toml")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def code_version() -> str:
    """Version of everything besides the config that determines a run's numbers."""
    return hashlib.sha256((source_version() + models_version()).encode()).hexdigest()[:16]


def digest(*parts) -> str:
    """Hash of arrays (dtype, shape and bytes) and JSON-able values, in order.

    Parameters
    ----------
    *parts : ndarray or JSON-able
        What to hash.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    for x in parts:
        if isinstance(x, np.ndarray):
            a = np.ascontiguousarray(x)
            h.update(f"ndarray{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(x, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def condition_key(cfg: dict, cname: str, version: str) -> str:
    """Checkpoint key of condition ``cname``: the resolved config without the criteria and
    without the other conditions (adding, removing or changing another condition keeps this
    one's state), and the code version.

    Parameters
    ----------
    cfg : dict
        The resolved config.
    cname : str
        Condition.
    version : str
        Code version (:func:`cortexsim.circuit.build_cache.code_version`).

    Returns
    -------
    str
    """
    c = copy.deepcopy(cfg)
    c.pop("criteria", None)
    c["conditions"] = {cname: c["conditions"][cname]}
    return digest(c, version)


# --------------------------------------------------------------------------- atomic files
def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


# --------------------------------------------------------------------------- checkpoints
def _file_stem(cname: str) -> str:
    """A condition name as a file-name part (no dots, no path separators).  Two names that map
    to the same stem only cost each other's resumption: the key tells their states apart."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", cname)


class CheckpointStore:
    """Checkpoints of the conditions of runs in one folder.

    Parameters
    ----------
    directory : path
        Folder of the checkpoints (created on the first save).
    """

    SUFFIX = ".ckpt.npz"

    def __init__(self, directory):
        self.directory = Path(directory)

    def path(self, cname: str, key: str) -> Path:
        """The checkpoint file of condition ``cname`` under ``key``.

        Parameters
        ----------
        cname : str
            Condition name (any characters: made safe for a file name).
        key : str
            Digest of what the checkpoint depends on.

        Returns
        -------
        Path
        """
        return self.directory / f"{_file_stem(cname)}.{key}{self.SUFFIX}"

    def save(self, cname: str, key: str, arrays: dict, meta: dict) -> Path:
        """Write ``arrays`` (name -> numpy array of numbers) and ``meta`` (JSON-able) as the
        checkpoint of ``cname`` under ``key``, replacing the previous one atomically; older
        checkpoints of ``cname`` made under other keys are removed afterwards.

        Parameters
        ----------
        cname : str
            Condition name.
        key : str
            Digest of what the checkpoint depends on.
        arrays : dict
            Name -> numeric numpy array (no Python objects).
        meta : dict
            JSON-able values.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        TypeError
            An array of Python objects.
        """
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr(
                "meta.json", json.dumps({"format": FORMAT, "key": key, **meta}, sort_keys=True)
            )
            for name, a in arrays.items():
                a = np.asarray(a)
                if a.dtype.hasobject:
                    raise TypeError(f"checkpoint array {name!r} holds Python objects")
                member = io.BytesIO()
                np.lib.format.write_array(member, a, allow_pickle=False)
                z.writestr(f"{name}.npy", member.getvalue())
        p = self.path(cname, key)
        _atomic_write(p, buf.getvalue())
        for old in self.directory.glob(f"{_file_stem(cname)}.*{self.SUFFIX}"):
            if old != p:
                old.unlink(missing_ok=True)
        return p

    def load(self, cname: str, key: str):
        """``(arrays, meta)`` of the checkpoint of ``cname`` under ``key``, or None if there is
        none (or it is unreadable, which is warned about and treated as none).

        Parameters
        ----------
        cname : str
            Condition name.
        key : str
            Digest the checkpoint must have been made under.

        Returns
        -------
        tuple (dict, dict) or None
        """
        p = self.path(cname, key)
        if not p.is_file():
            return None
        try:
            with zipfile.ZipFile(p) as z:
                meta = json.loads(z.read("meta.json"))
                arrays = {}
                for name in z.namelist():
                    if name.endswith(".npy"):
                        with z.open(name) as fh:
                            arrays[name[:-4]] = np.lib.format.read_array(
                                io.BytesIO(fh.read()), allow_pickle=False
                            )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(f"ignoring unreadable checkpoint {p}: {exc}", stacklevel=2)
            return None
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        return arrays, meta


# --------------------------------------------------------------------------- shared read-outs
class ReadoutStore:
    """Read-out measurements shared by conditions and processes with identical histories.

    Parameters
    ----------
    directory : path or None
        Folder of the JSON files; None measures every time and stores nothing.
    """

    def __init__(self, directory):
        self.directory = Path(directory) if directory is not None else None

    def peek(self, identity: list) -> dict | None:
        """The stored value for ``identity``, or None (nothing stored, or no folder).

        Parameters
        ----------
        identity : list
            What the value depends on.

        Returns
        -------
        dict or None
        """
        if self.directory is None:
            return None
        path = self.directory / f"{digest(*identity)}.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def get(self, identity: list, measure, wait: bool = True) -> dict | None:
        """``measure()`` (a JSON-able dict of numbers), or its stored value for the same
        ``identity`` (a list of arrays and JSON-able values, including the code version).
        ``wait=False``: None at once if another process is measuring it now (the caller may do
        other work first and ask again).

        Parameters
        ----------
        identity : list
            What the value depends on (arrays and JSON-able values).
        measure : callable
            ``measure() -> dict`` of numbers (called at most once, under a file lock).
        wait : bool
            Wait for another process measuring the same identity.

        Returns
        -------
        dict or None
        """
        if self.directory is None:
            return measure()
        from filelock import FileLock, Timeout

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{digest(*identity)}.json"
        try:
            with FileLock(str(path) + ".lock", timeout=-1 if wait else 0):
                if path.is_file():
                    return json.loads(path.read_text())
                value = measure()
                _atomic_write(path, json.dumps(value).encode())
        except Timeout:
            return None
        return value
