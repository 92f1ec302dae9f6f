"""TMS pulse trains and session schedules (iTBS, cTBS, imTBS, rTMS at n Hz, sham, accelerated days).

Protocols are data.  Built-ins live in ``models/protocols.toml`` (one table per protocol, every
timing number an inline table ``{value, unit, source}``); a user's protocol is a dict or TOML table
with the same keys and goes through the same validation (:func:`protocol_from_spec`).  A spec may
start from another one with ``base = "itbs1800"`` and override a few fields.

Timing model (one session; t = 0 at the first pulse)::

    pulse i -> burst b = i // pulses_per_burst, position p = i % pulses_per_burst
    burst b -> train  k = b // bursts_per_train, position q = b % bursts_per_train
    t_i = k * (train_duration_s + inter_train_interval_s) + q / burst_freq_hz + p / intra_burst_freq_hz

computed from integer indices (no cumulative sums), so periodic times are exact to rounding.
``kind = "rtms"`` is the same with one pulse per burst at ``rtms_freq_hz``.  ``n_pulses`` need not
fill whole trains: the last train is cut.  ``inter_train_interval_s = 0`` means continuous
stimulation (cTBS, 1 Hz rTMS).  A schedule repeats the session ``sessions_per_day`` times a day,
``session_interval_min`` apart (start to start), on ``days`` consecutive days (starts 86400 s apart).

Public API: :class:`Protocol`, :func:`get_protocol`, :func:`protocol_from_spec`,
:func:`list_protocols`, :func:`describe_builtins`, :func:`describe_protocols`,
:func:`load_protocol_file`, :func:`builtin_sources`, :func:`session_intensity`.

Intensity: a session's dose is a % of the resting motor threshold (RMT), the unit the E-field
calibration takes (:mod:`cortexsim.coupling.field`).  It is the condition's
``intensity_pct_rmt``, else the protocol's; a protocol dosed only in % of the *active* motor
threshold (``intensity_pct_amt``, e.g. ``itbs600``: 80 % AMT, Huang et al. 2005) or not at all
is not run at a guessed % RMT: :func:`session_intensity` asks for the intensity.  No AMT -> RMT
conversion is applied: AMT lies below RMT by an amount that differs between people, and no
published population ratio was verified for this project.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from pydantic import Field

from .errors import InputError
from .params import ParamTree, convert, is_param, models_dir, read_toml
from .specs import StrictModel, merge_tables, validate

KINDS = ("tbs", "rtms")
SECONDS_PER_DAY = 86400.0
_REL_TOL = 1e-9  # tolerance for "whole number of periods" and "burst fits its period" checks

# Units of a field given as {value, unit}: physical fields are converted to the field's own unit
# (params.convert, pint: "ms", "h", "kHz" ...); counts and thresholds accept these names of
# their own unit only.
_PHYSICAL_UNITS = {
    "intra_burst_freq_hz": "Hz",
    "burst_freq_hz": "Hz",
    "rtms_freq_hz": "Hz",
    "train_duration_s": "s",
    "inter_train_interval_s": "s",
    "session_interval_min": "min",
    "days": "d",
}
_UNIT_NAMES = {
    "pulses_per_burst": ("pulses", "pulses/burst", "1"),
    "n_pulses": ("pulses", "1"),
    "sessions_per_day": ("sessions/day", "sessions", "1"),
    "days": ("days", "1"),
    "intensity_pct_rmt": ("%RMT", "% RMT", "%"),
    "intensity_pct_amt": ("%AMT", "% AMT", "%"),
}
TBS_KEYS = ("pulses_per_burst", "intra_burst_freq_hz", "burst_freq_hz")
RTMS_KEYS = ("rtms_freq_hz",)
REQUIRED_KEYS = ("kind", "train_duration_s", "inter_train_interval_s", "n_pulses")
OPTIONAL_DEFAULTS = {
    "sham": False,
    "sessions_per_day": 1,
    "session_interval_min": 0.0,
    "days": 1,
    "intensity_pct_rmt": None,
    "intensity_pct_amt": None,
    "description": "",
}
SPEC_KEYS = ("name", "base", *REQUIRED_KEYS, *TBS_KEYS, *RTMS_KEYS, *OPTIONAL_DEFAULTS)


# --------------------------------------------------------------------------- the protocol
@dataclass(frozen=True)
class Protocol:
    """One validated stimulation protocol: a session's pulse train and its schedule over days.

    Fields that do not apply to the kind are ``None`` (tbs: ``rtms_freq_hz``; rtms:
    ``pulses_per_burst``, ``burst_freq_hz``, ``intra_burst_freq_hz``).  Build with
    :func:`protocol_from_spec` / :func:`get_protocol`, which validate; direct construction does not.

    Attributes
    ----------
    name, kind : str
        Protocol name; ``"tbs"`` or ``"rtms"``.
    pulses_per_burst : int or None
        Pulses per burst (tbs).
    burst_freq_hz, intra_burst_freq_hz : float or None
        Burst repetition and within-burst pulse rates (Hz; tbs).
    train_duration_s, inter_train_interval_s : float
        Train length and the pause between trains (s).
    n_pulses : int
        Pulses per session.
    rtms_freq_hz : float or None
        Pulse rate (Hz; rtms).
    sham : bool
        No field reaches the cortex.
    sessions_per_day, days : int
        Schedule.
    session_interval_min : float
        Interval between session starts (min).
    intensity_pct_rmt, intensity_pct_amt : float or None
        Intensity (% of resting / active motor threshold).
    description : str
    """

    name: str
    kind: str
    pulses_per_burst: int | None
    burst_freq_hz: float | None
    intra_burst_freq_hz: float | None
    train_duration_s: float
    inter_train_interval_s: float
    n_pulses: int
    rtms_freq_hz: float | None
    sham: bool
    sessions_per_day: int
    session_interval_min: float
    days: int
    intensity_pct_rmt: float | None
    description: str
    intensity_pct_amt: float | None = None  # where the source dosed in % active motor threshold

    # ---- structure of one session
    @property
    def _ppb(self) -> int:
        return 1 if self.kind == "rtms" else int(self.pulses_per_burst)

    @property
    def _unit_freq_hz(self) -> float:
        """Repetition rate of the unit (burst for tbs, pulse for rtms) inside a train."""
        return float(self.rtms_freq_hz if self.kind == "rtms" else self.burst_freq_hz)

    @property
    def bursts_per_train(self) -> int:
        """Bursts (tbs) or pulses (rtms) in one full train."""
        return round(self.train_duration_s * self._unit_freq_hz)

    @property
    def pulses_per_train(self) -> int:
        """Pulses in one train (bursts per train x pulses per burst)."""
        return self.bursts_per_train * self._ppb

    @property
    def n_trains(self) -> int:
        """Trains in one session (the last one may be cut short)."""
        return -(-self.n_pulses // self.pulses_per_train)

    @property
    def train_period_s(self) -> float:
        """Start-to-start time of consecutive trains."""
        return self.train_duration_s + self.inter_train_interval_s

    # ---- pulse train of one session
    def pulse_times(self) -> np.ndarray:
        """Pulse times (s) from the session start (first pulse at 0), sorted, float64."""
        i = np.arange(self.n_pulses, dtype=np.int64)
        ppb, nb = self._ppb, self.bursts_per_train
        burst, pos = np.divmod(i, ppb)
        train, q = np.divmod(burst, nb)
        t = train * self.train_period_s + q / self._unit_freq_hz
        if ppb > 1:
            t = t + pos / float(self.intra_burst_freq_hz)
        return t.astype(np.float64)

    def intensities(self) -> np.ndarray:
        """Relative amplitude of every pulse: 1.0 (real) or 0.0 (sham)."""
        return np.full(self.n_pulses, 0.0 if self.sham else 1.0, dtype=np.float64)

    @property
    def duration_s(self) -> float:
        """First to last pulse of one session (s)."""
        return float(self.pulse_times()[-1])

    # ---- schedule
    @property
    def n_sessions(self) -> int:
        """Sessions of the whole protocol (sessions per day x days)."""
        return self.sessions_per_day * self.days

    @property
    def total_pulses(self) -> int:
        """Pulses of the whole protocol (pulses per session x sessions)."""
        return self.n_pulses * self.n_sessions

    def session_starts_s(self) -> np.ndarray:
        """Start time (s) of every session: day d, session k at ``d*86400 + k*interval*60``."""
        day = np.arange(self.days, dtype=np.int64) * SECONDS_PER_DAY
        k = np.arange(self.sessions_per_day, dtype=np.int64) * (self.session_interval_min * 60.0)
        return np.add.outer(day, k).ravel().astype(np.float64)

    def schedule_pulse_times(self) -> tuple[np.ndarray, np.ndarray]:
        """All pulses of the whole schedule: (times s from schedule start, session index)."""
        t = self.pulse_times()
        starts = self.session_starts_s()
        times = np.add.outer(starts, t).ravel()
        session = np.repeat(np.arange(starts.size), t.size)
        return times, session

    # ---- export
    def to_dict(self) -> dict:
        """Full config as a plain JSON-able dict; ``protocol_from_spec(p.to_dict()) == p``."""
        return asdict(self)

    def summary(self) -> dict:
        """Row for ``cortexsim protocols``: identity, counts, durations and schedule."""
        return {
            "name": self.name,
            "kind": self.kind,
            "n_pulses": self.n_pulses,
            "duration_s": round(self.duration_s, 9),
            "sessions_per_day": self.sessions_per_day,
            "session_interval_min": self.session_interval_min,
            "days": self.days,
            "total_pulses": self.total_pulses,
            "sham": self.sham,
            "intensity_pct_rmt": self.intensity_pct_rmt,
            "intensity_pct_amt": self.intensity_pct_amt,
            "description": self.description,
        }


_FIELD_NAMES = tuple(f.name for f in fields(Protocol))


# --------------------------------------------------------------------------- spec handling
def _fld(key: str) -> str:
    return f"protocol.{key}"


def _unwrap(key: str, raw):
    """Return the bare value of a spec entry; convert ``{value, unit[, source]}`` to the field unit."""
    if isinstance(raw, dict):
        extra = set(raw) - {"value", "unit", "source"}
        if "value" not in raw or extra:
            raise InputError(
                _fld(key),
                f"malformed table {raw!r}",
                "a plain value or an inline table {value, unit, source}",
            )
        value = raw["value"]
        unit = raw.get("unit")
        if key not in _PHYSICAL_UNITS and key not in _UNIT_NAMES:
            raise InputError(_fld(key), "is a setting: give a plain value, not a table")
        if unit is None or unit in _UNIT_NAMES.get(key, ()):
            return value
        if key not in _PHYSICAL_UNITS:
            raise InputError(_fld(key), f"unknown unit {unit!r}", list(_UNIT_NAMES[key]))
        return convert(_fld(key), value, unit, _PHYSICAL_UNITS[key]) if _is_number(value) else value
    return raw


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(lo, hi, *, open_lo=True, integer=False):
    t = int if integer else float
    return Annotated[t, Field(**{"gt" if open_lo else "ge": lo}, le=hi)]


class ProtocolValues(StrictModel):
    """Types and ranges of a protocol's values (after units are converted).  The maxima are
    assumptions, so that nothing a user types allocates gigabytes or runs for hours before an
    error: 100,000 pulses a session is ~30x the longest published sessions (3,000-pulse 10 Hz
    rTMS; 1,800-pulse iTBS in SAINT, Cole et al. 2020); 1,000 Hz is above any commercial
    stimulator's repetition rate (<= 100-250 pps) and still 10 time steps of the circuit; an hour
    per train, 48 sessions a day, a year of days, up to 300 % of the motor threshold."""

    kind: Literal[KINDS]
    n_pulses: _num(1, 100_000, open_lo=False, integer=True)
    train_duration_s: _num(0, 3600.0)
    inter_train_interval_s: _num(0, 3600.0, open_lo=False)
    pulses_per_burst: _num(1, 20, open_lo=False, integer=True) | None = None
    intra_burst_freq_hz: _num(0, 1000.0) | None = None
    burst_freq_hz: _num(0, 1000.0) | None = None
    rtms_freq_hz: _num(0, 1000.0) | None = None
    sham: bool = False
    sessions_per_day: _num(1, 48, open_lo=False, integer=True) = 1
    days: _num(1, 365, open_lo=False, integer=True) = 1
    session_interval_min: _num(0, 1440.0, open_lo=False) = 0.0
    intensity_pct_rmt: _num(0, 300.0) | None = None
    intensity_pct_amt: _num(0, 300.0) | None = None
    description: str = ""


def _library(library=None) -> dict:
    """Raw spec tables by name: ``library`` (dict/ParamTree) or models/protocols.toml."""
    if library is None:
        return _builtin_tables(str(models_dir() / "protocols.toml"))
    if not isinstance(library, dict):
        raise InputError(
            "protocol library", f"expected a dict of protocol tables, got {type(library).__name__}"
        )
    return dict(library)


def _builtin_tables(path: str) -> dict:
    """Protocol tables of the file ``path``, read again only when its modification time
    changes."""
    p = Path(path)
    if not p.is_file():  # a missing built-in file is an error, not an empty list
        raise InputError(
            f"model {p.name}",
            f"file not found: {p}",
            "models/protocols.toml, or set CORTEXSIM_MODELS to a folder holding it",
        )
    return _read_tables(path, p.stat().st_mtime)


@functools.lru_cache(maxsize=8)
def _read_tables(path: str, mtime: float) -> dict:
    """The tables of one version (``mtime``) of a protocol file (cached)."""
    p = Path(path)
    return dict(ParamTree.from_dict(read_toml(p, field=f"model {p.name}"), name=p.stem))


def _resolve(spec: dict, library: dict, chain: tuple[str, ...] = ()) -> dict:
    """Merge ``base`` chains: the base's fields, then the spec's own fields on top."""
    if not isinstance(spec, dict):
        raise InputError(
            "protocol", f"a protocol spec must be a table/dict, got {type(spec).__name__}"
        )
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise InputError(
            _fld(unknown[0]),
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            list(SPEC_KEYS),
        )
    spec = {k: v for k, v in spec.items() if v is not None}
    base = spec.pop("base", None)
    if base is None:
        return spec
    if not isinstance(base, str) or base not in library:
        raise InputError(_fld("base"), f"unknown base protocol {base!r}", sorted(library))
    if base in chain:
        raise InputError(_fld("base"), f"circular base chain {' -> '.join(chain + (base,))}")
    merged = _resolve(library[base], library, chain + (base,))
    if "kind" in spec and _unwrap("kind", spec["kind"]) != _unwrap("kind", merged.get("kind")):
        for k in TBS_KEYS + RTMS_KEYS:  # a change of kind drops the base's kind-specific fields
            merged.pop(k, None)
    merged.pop("name", None)
    return merge_tables(merged, spec)


def protocol_from_spec(spec: dict, name: str = "custom", *, library=None) -> Protocol:
    """Validate a protocol spec (dict / TOML table) and return a :class:`Protocol`.

    Values may be plain or ``{value, unit, source}`` tables (units converted).  ``base = "<name>"``
    starts from a built-in (or a table of ``library``).  Errors name the field and what is allowed.

    Parameters
    ----------
    spec : dict
        Protocol fields (``SPEC_KEYS``).
    name : str
        Its name.
    library : dict, optional
        Protocol tables that ``base`` may name (default: the built-ins).

    Returns
    -------
    Protocol

    Raises
    ------
    InputError
        An unknown key, a value of the wrong type or out of range, an unknown or circular
        ``base``, or inconsistent timing.
    """
    lib = _library(library)
    s = _resolve(spec, lib)
    if "name" in s:
        name = s.pop("name")
    if not isinstance(name, str) or not name:
        raise InputError(_fld("name"), f"expected a non-empty string, got {name!r}")
    missing = [k for k in REQUIRED_KEYS if k not in s]
    if missing:
        raise InputError(
            _fld(missing[0]),
            f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            list(REQUIRED_KEYS),
        )
    v = {k: _unwrap(k, raw) for k, raw in s.items()}

    kind = v["kind"]
    if kind not in KINDS:
        raise InputError(_fld("kind"), f"unknown value {kind!r}", KINDS)
    own, other = (TBS_KEYS, RTMS_KEYS) if kind == "tbs" else (RTMS_KEYS, TBS_KEYS)
    for k in other:
        if k in v:
            raise InputError(_fld(k), f"not used by kind {kind!r}", list(own))
    missing = [k for k in own if k not in v]
    if missing:
        raise InputError(
            _fld(missing[0]), f"kind {kind!r} requires {', '.join(missing)}", list(own)
        )

    vals = validate(
        ProtocolValues,
        {k: v[k] for k in v if k not in ("kind",)} | {"kind": kind},
        prefix="protocol.",
    )
    out: dict = dict.fromkeys(_FIELD_NAMES)
    out.update(vals.model_dump())
    out.update(name=name, kind=kind)
    if kind == "tbs":
        ppb, fi, fb = out["pulses_per_burst"], out["intra_burst_freq_hz"], out["burst_freq_hz"]
        if ppb / fi > (1.0 / fb) * (1 + _REL_TOL):
            raise InputError(
                _fld("intra_burst_freq_hz"),
                f"a burst of {ppb} pulses at {fi:g} Hz ({1e3 * ppb / fi:g} ms incl. the "
                f"gap after it) does not fit in the burst period "
                f"{1e3 / fb:g} ms (1/burst_freq_hz)",
                "pulses_per_burst / intra_burst_freq_hz <= 1 / burst_freq_hz",
            )
        unit_f, unit_name = fb, "burst"
    else:
        unit_f, unit_name = out["rtms_freq_hz"], "pulse"
    periods = out["train_duration_s"] * unit_f
    if abs(periods - round(periods)) > 1e-6 * max(1.0, periods) or round(periods) < 1:
        raise InputError(
            _fld("train_duration_s"),
            f"{out['train_duration_s']:g} s is {periods:g} {unit_name} periods "
            f"(1/{unit_f:g} Hz); must be a whole number >= 1",
            f"multiples of {1.0 / unit_f:g} s",
        )

    proto = Protocol(**out)
    dur = proto.duration_s
    if proto.sessions_per_day > 1 and proto.session_interval_min * 60.0 <= dur:
        raise InputError(
            _fld("session_interval_min"),
            f"{proto.session_interval_min:g} min is not longer than one session "
            f"({dur / 60:.4g} min, first to last pulse): sessions would overlap",
            f"> {dur / 60:.4g} min",
        )
    day_span = (proto.sessions_per_day - 1) * proto.session_interval_min * 60.0 + dur
    if proto.days > 1 and day_span >= SECONDS_PER_DAY:
        raise InputError(
            _fld("session_interval_min"),
            f"one day's {proto.sessions_per_day} session(s) span {day_span / 3600:.4g} h "
            f"(first to last pulse): the next day would start before they end",
            "a day's sessions within 24 h",
        )
    return proto


# --------------------------------------------------------------------------- intensity
def session_intensity(
    proto: Protocol, pct_rmt=None, *, field: str = "intensity_pct_rmt"
) -> tuple[float, str]:
    """The intensity (% RMT) at which a TMS condition gives ``proto``'s sessions, and its origin.

    The condition's ``pct_rmt`` if given, else the protocol's ``intensity_pct_rmt``; a sham
    protocol without either delivers no field (0 % RMT).  Nothing else is assumed: a protocol
    dosed only in % AMT, or not at all, is an error asking for the condition's intensity.

    Parameters
    ----------
    proto : Protocol
        The condition's protocol.
    pct_rmt : float, optional
        The condition's ``intensity_pct_rmt``.
    field : str
        The condition's field, named in the error (``conditions.<name>.intensity_pct_rmt``).

    Returns
    -------
    pct_rmt : float
        Intensity (% RMT).
    source : str
        Where it comes from: ``"condition"``, ``"protocol <name>"`` or
        ``"sham protocol <name>: no field"``.

    Raises
    ------
    InputError
        No % RMT in the condition or the protocol of a real (not sham) protocol.
    """
    if pct_rmt is not None:
        return float(pct_rmt), "condition"
    if proto.intensity_pct_rmt is not None:
        return float(proto.intensity_pct_rmt), f"protocol {proto.name}"
    if proto.sham:
        return 0.0, f"sham protocol {proto.name}: no field"
    dosed = (
        f"gives only intensity_pct_amt = {proto.intensity_pct_amt:g} (% of active motor "
        "threshold), which is not converted: AMT lies below RMT by an amount that differs "
        "between people"
        if proto.intensity_pct_amt is not None
        else "gives no intensity"
    )
    raise InputError(
        field,
        f"missing: the protocol ({proto.name!r}) {dosed}; the sessions' "
        "intensity decides the dose: give it in % RMT",
        "[0, 300] % RMT",
    )


# --------------------------------------------------------------------------- built-ins
def list_protocols(library=None) -> list[str]:
    """Names of the built-in protocols (tables of models/protocols.toml, or of ``library``).

    Parameters
    ----------
    library : dict, optional
        Protocol tables.

    Returns
    -------
    list of str
    """
    return list(_library(library))


def get_protocol(name_or_spec, *, library=None) -> Protocol:
    """A built-in by name, a spec dict validated by :func:`protocol_from_spec`, or a Protocol.

    Parameters
    ----------
    name_or_spec : str, dict or Protocol
        What to return.
    library : dict, optional
        Protocol tables (default: the built-ins).

    Returns
    -------
    Protocol

    Raises
    ------
    InputError
        Unknown name (field ``protocol``) or an invalid spec.
    """
    if isinstance(name_or_spec, Protocol):
        return name_or_spec
    lib = _library(library)
    if isinstance(name_or_spec, str):
        if name_or_spec not in lib:
            raise InputError("protocol", f"unknown protocol {name_or_spec!r}", sorted(lib))
        try:
            return protocol_from_spec(lib[name_or_spec], name=name_or_spec, library=lib)
        except InputError as exc:  # say which table holds the bad value
            where = "protocols.toml " if library is None else ""
            raise exc.within(f"{where}[{name_or_spec}] ") from None
    if isinstance(name_or_spec, dict):
        return protocol_from_spec(name_or_spec, library=lib)
    raise InputError(
        "protocol",
        f"expected a protocol name or a spec table, got {type(name_or_spec).__name__}",
        sorted(lib),
    )


def describe_builtins(library=None) -> list[dict]:
    """One summary row per built-in (stable keys: name, n_pulses, duration_s, sessions_per_day,
    session_interval_min; also kind, days, total_pulses, sham, intensity_pct_rmt,
    intensity_pct_amt, description).

    Parameters
    ----------
    library : dict, optional
        Protocol tables.

    Returns
    -------
    list of dict
    """
    return [get_protocol(n, library=library).summary() for n in _library(library)]


def builtin_sources(name: str, library=None) -> dict:
    """``{field: source}`` for a built-in, following its ``base`` chain (provenance for reports).

    Parameters
    ----------
    name : str
        A built-in protocol.
    library : dict, optional
        Protocol tables.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Unknown name (field ``protocol``).
    """
    lib = _library(library)
    if name not in lib:
        raise InputError("protocol", f"unknown protocol {name!r}", sorted(lib))
    chain, n = [], name
    while n is not None and n not in chain:
        chain.append(n)
        n = lib[n].get("base")
    out: dict = {}
    for n in reversed(chain):
        for k, node in lib[n].items():
            if is_param(node):
                out[k] = f"{node.get('source', '')} [{n}]"
    return out


def load_protocol_file(path) -> dict[str, Protocol]:
    """Read a user's TOML file of protocol tables; ``base`` may name built-ins or tables there.

    Parameters
    ----------
    path : str or Path
        TOML file.

    Returns
    -------
    dict
        Table name -> Protocol.

    Raises
    ------
    InputError
        Missing or malformed file, or an invalid table (the message names file and table).
    """
    tables = read_toml(path, field="protocol file")
    for k, t in tables.items():
        if not isinstance(t, dict):
            raise InputError(
                f"protocol file:{k}", "every top-level entry must be a table", "[name] tables"
            )
    lib = {**_library(None), **copy.deepcopy(tables)}
    out = {}
    for k, t in tables.items():
        try:
            out[k] = protocol_from_spec(t, name=k, library=lib)
        except InputError as exc:  # say which file and table hold the bad value
            raise exc.within(f"{Path(path).name} [{k}] ") from None
    return out


def describe_protocols(names=(), path=None) -> list[dict]:
    """Summary rows (as :func:`describe_builtins`) for ``cortexsim protocols [NAME ...] [--file F]``.

    No names and no file: every built-in.  ``path``: a user's TOML file of protocol tables,
    validated (rows for its tables, or for ``names`` among them and the built-ins).  Unknown
    names raise :class:`InputError` listing the available ones.

    Parameters
    ----------
    names : sequence of str
        Protocols to describe.
    path : str or Path, optional
        A user's protocol file.

    Returns
    -------
    list of dict
    """
    names = list(names or ())
    user = load_protocol_file(path) if path is not None else {}
    if not names:
        return [p.summary() for p in user.values()] if path is not None else describe_builtins()
    lib = _library(None)
    rows = []
    for n in names:
        if n in user:
            rows.append(user[n].summary())
        elif isinstance(n, str) and n in lib:
            rows.append(get_protocol(n).summary())
        else:
            raise InputError("protocol", f"unknown protocol {n!r}", [*sorted(lib), *user])
    return rows


__all__ = [
    "KINDS",
    "Protocol",
    "builtin_sources",
    "describe_builtins",
    "describe_protocols",
    "get_protocol",
    "list_protocols",
    "load_protocol_file",
    "protocol_from_spec",
    "session_intensity",
]
