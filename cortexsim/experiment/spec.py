"""Experiment specs: validation and normalisation of the TOML a user writes.

A spec is validated by pydantic v2 models (``extra="forbid"``, strict types: a boolean is not a
number, a numeric string is not a number) and cross-checked (criteria name existing conditions
and read-outs; overrides name existing model parameters of the right type, unit and range;
protocols are built), all before any network is built.  Every error is one
:class:`~cortexsim.errors.InputError` naming the field and the allowed values.

:func:`read_spec` reads a TOML spec and merges ``extends``; :func:`parse_spec` returns the
normalised, JSON-able config the runner uses; :func:`model_trees` gives the model parameter
trees with overrides and ablations applied.

Ranges of the spec's numbers (all checked up front)
---------------------------------------------------
========================== ==========================  ==========================================
field                      allowed                     why
========================== ==========================  ==========================================
experiment.seed            0 ... 2**31 - 1             stored as a 32-bit integer in results.nc
                                                       and used exactly by every generator
settings.scale             small/default/large or      memory: 50,000 neurons is ~30 GB of
                           50 ... 50,000 neurons       synapse state at the reference in-degree
settings.slow_dt_h         (0, 24] h                   structural step
settings.baseline_fast_s   (0, 600] s                  read-out / baseline fast phase
settings.session_tail_s    (0, 60] s
settings.record_every_h    (0, 720] h
settings.evoked_pct_rmt    [0, 300] % RMT              stimulators reach ~2-3x RMT
settings.evoked_window_s   (0, 1] s
settings.evoked_interval_s [0.1, 60] s                 test pulses of a read-out, averaged
settings.session_sample_s  "all" or (0, 86400] s
settings.session_reference before_sessions,
                           each_session
settings.session_stride    1 ... 1000                  1: every session simulated (default);
                                                       k: an approximation (every k-th)
timeline[k].days           (0, 3650] d
timeline[k].hours_per_day  (0, 24] h
conditions.*.intensity_    [0, 300] % RMT
pct_rmt
========================== ==========================  ==========================================
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from ..errors import InputError
from ..specs import StrictModel, merge_tables, read_extending, validate
from ..params import load_model, read_toml
from ..populations import population_table, populations

PHASE_KINDS = ("baseline", "stress", "stimulation", "rest")
ABLATIONS = (
    "coupling",
    "h_current",
    "intrinsic",
    "connectivity",
    "nmda_calcium",
    "activity_structural",
    "homeostasis",
)
MODEL_NAMES = (
    "circuit",
    "cells",
    "synaptic",
    "structural",
    "stress",
    "coupling",
    "opto",
    "mechanisms",
)
#: how a condition's protocol pulses reach the cells: TMS (coupling model) or light
#: (channelrhodopsin-2 in ``light_populations``; models/opto.toml)
MODALITIES = ("tms", "light")
RESULT_VARIABLES = (
    "spine_density",
    "spine_density_rel",
    "mean_weight",
    "rate_readout",
    "evoked_response",
    "turnover_readout",
    "session_rate",
)
#: variables judged at a read-out (its time for time_d variables); session_rate is a mean over
#: the condition's sessions and takes no read-out
READOUT_VARIABLES = tuple(v for v in RESULT_VARIABLES if v != "session_rate")
SCALE_NAMES = ("small", "default", "large")
SEED_MAX = 2**31 - 1
SCALE_RANGE = (50, 50_000)
OPS = ("<", "<=", ">", ">=")


def _range(lo=None, hi=None, *, open_lo=False):
    kw = {"gt" if open_lo else "ge": lo} if lo is not None else {}
    if hi is not None:
        kw["le"] = hi
    return Field(**kw)


class RunSettings(StrictModel):
    """Settings a scale's table (``[settings.by_scale.<scale>]``) or a run may change."""

    slow_dt_h: Annotated[float, _range(0, 24, open_lo=True)] = 1.0
    baseline_fast_s: Annotated[float, _range(0, 600, open_lo=True)] = 10.0
    session_tail_s: Annotated[float, _range(0, 60, open_lo=True)] = 1.0
    record_every_h: Annotated[float, _range(0, 720, open_lo=True)] = 12.0
    evoked_pct_rmt: Annotated[float, _range(0, 300)] = 100.0
    evoked_window_s: Annotated[float, _range(0, 1, open_lo=True)] = 0.05
    #: the read-outs' test pulses come every evoked_interval_s (the evoked response is their
    #: mean, as MEPs are averaged over trials)
    evoked_interval_s: Annotated[float, _range(0.1, 60)] = 0.5
    backend: Literal["numba", "numpy"] = "numba"
    #: "all": every pulse of every session; a number (s): that much of each session (whole train
    #: periods) with every pulse, the GB mean field over the rest (synaptic.advance_fractions)
    session_sample_s: Any = "all"
    #: what a session's activity drive and dopamine release are counted against: the network at
    #: rest with the spine state of the latest read-out before the sessions (one run, shared by
    #: conditions with that history), or, for every session, the same session run without its
    #: stimulation (same spine state, noise and thresholds; one more run per stimulated session)
    session_reference: Literal["before_sessions", "each_session"] = "before_sessions"
    #: an approximation for searches, off (1) by default: only every k-th session of the
    #: stimulation phase is simulated (sessions 0, k, 2k, ...); each other session repeats the
    #: latest simulated one's activity signals, rates and references and carries the rule's
    #: per-site state over its whole length with that session's statistics (the GB mean field,
    #: as for the unsimulated rest of every session).  Error on the mechanism search's metrics:
    #: benchmarks/RESULTS.md (issue 21)
    session_stride: Annotated[int, _range(1, 1000)] = 1

    @field_validator("session_sample_s", mode="before")
    @classmethod
    def _sample(cls, v):
        if v == "all":
            return v
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not np.isfinite(v)
            or not 0 < v <= 86400
        ):
            raise InputError(
                "session_sample_s",
                f"expected 'all' or seconds, got {v!r}",
                "'all' or a number of seconds in (0, 86400]",
            )
        return float(v)


class Settings(RunSettings):
    scale: Any = "small"
    by_scale: dict[Literal["small", "default", "large"], dict] = {}

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v):
        return check_scale(v)


def check_scale(v, field: str = "scale"):
    """A scale name or a neuron count (an int, or a string of digits from the CLI).

    Parameters
    ----------
    v : str or int
        The scale given.
    field : str
        Name for the error message.

    Returns
    -------
    str or int

    Raises
    ------
    InputError
        Not a named scale (``SCALE_NAMES``) nor an integer count >= the minimum.
    """
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, str) and v in SCALE_NAMES:
        return v
    if isinstance(v, int) and not isinstance(v, bool) and SCALE_RANGE[0] <= v <= SCALE_RANGE[1]:
        return v
    raise InputError(
        field,
        f"unknown scale {v!r}",
        f"{', '.join(SCALE_NAMES)} or a neuron count in [{SCALE_RANGE[0]}, {SCALE_RANGE[1]}]",
    )


#: settings left out of a config while at their default: added after configs were published,
#: a config that does not use them stays the config it was (its keys, its results' attributes)
_OMIT_AT_DEFAULT = {"session_stride": 1}


def _omit_defaults(settings: dict) -> dict:
    for k, v in _OMIT_AT_DEFAULT.items():
        if k in settings and type(settings[k]) is type(v) and settings[k] == v:
            del settings[k]
    return settings


DEFAULT_SETTINGS = _omit_defaults(Settings().model_dump(exclude={"by_scale"}))
#: settings a scale's table or a run may change (everything but the scale itself)
RUN_SETTINGS = tuple(RunSettings.model_fields)


class Meta(StrictModel):
    name: Annotated[str, Field(min_length=1)]
    seed: Annotated[int, _range(0, SEED_MAX)] = 0
    description: str = ""


class Phase(StrictModel):
    kind: Literal[PHASE_KINDS]
    days: Annotated[float, _range(0, 3650, open_lo=True)] | None = None
    hours_per_day: Annotated[float, _range(0, 24, open_lo=True)] | None = None
    readout: str | None = None
    label: str | None = None


class Condition(StrictModel):
    stress: bool = True
    protocol: str | dict = "none"
    intensity_pct_rmt: Annotated[float, _range(0, 300)] | None = None
    #: "light": the protocol's pulses are light pulses (irradiance, width: opto.light.*) that
    #: open channelrhodopsin-2 in the cells of light_populations; no TMS field
    modality: Literal[MODALITIES] = "tms"
    light_populations: list[str] = []
    silence: list[str] = []
    silence_during: Literal["sessions"] = "sessions"
    ablations: list[str] = []
    overrides: dict[str, Any] = {}


class Criterion(StrictModel):
    name: Annotated[str, Field(min_length=1)]
    expected: str | None = None
    var: Literal[RESULT_VARIABLES]
    condition: str
    readout: str | None = None
    populations: Annotated[list[str], Field(min_length=1)]
    minus_condition: str | None = None
    op: Literal[OPS]
    value: float
    all: bool = True
    #: judge the magnitude |observed| (a two-sided criterion such as "within 0.02 of sham")
    abs: bool = False
    requires: str | None = None


class Spec(StrictModel):
    experiment: Meta
    settings: Settings = Settings()
    timeline: Annotated[list[Phase], Field(min_length=1)]
    conditions: Annotated[dict[str, Condition], Field(min_length=1)]
    overrides: dict[str, Any] = {}
    ablations: list[str] = []
    criteria: list[Criterion] = []
    #: where fitted values came from (``fit``: the fit spec, relative to the file that declares
    #: it; ``targets``: the fit's targets as observables); read by ``cortexsim validate``
    #: (:mod:`cortexsim.validation.model`) to tell fitted entries from predicted ones
    provenance: dict[str, Any] = {}


# --------------------------------------------------------------------------- overrides
def flatten_overrides(ov, where: str) -> dict:
    """``[overrides]`` as ``{dotted path: value}``: quoted keys (``"circuit.sim.dt" = 0.05``) and
    TOML dotted keys (``circuit.sim.dt = 0.05``, read as nested tables) are the same path.  A
    value may carry its unit: ``{ value = 50, unit = "us" }``.

    Parameters
    ----------
    ov : dict
        The ``[overrides]`` table.
    where : str
        Its field name for errors.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Not a table, or an empty table where a value is expected.
    """
    if not isinstance(ov, dict):
        raise InputError(where, "must be a table of dotted paths")
    out = {}

    def walk(node, path):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, dict) and "value" not in v:
                if not v:
                    raise InputError(f"{where}.{p}", "empty table: give a value")
                walk(v, p)
            else:
                out[p] = v

    walk(ov, "")
    return out


def check_overrides(ov: dict, where: str) -> None:
    """Every override names an existing model parameter and has its type, unit and range.

    Parameters
    ----------
    ov : dict
        Dotted path -> value.
    where : str
        Field name for errors.

    Raises
    ------
    InputError
        Naming the override: unknown model or path, wrong type or dimension, out of range.
    """
    for path, v in ov.items():
        model, _, rest = path.partition(".")
        if model not in MODEL_NAMES:
            raise InputError(f"{where}.{path}", f"unknown model {model!r}", MODEL_NAMES)
        if not rest:
            raise InputError(
                f"{where}.{path}",
                "a model name alone is not a parameter: give a dotted path such as circuit.sim.dt",
                MODEL_NAMES,
            )
        try:
            load_model(model).set(rest, v)
        except InputError as exc:
            raise InputError(f"{where}.{path}", exc.message, exc.allowed) from None


# --------------------------------------------------------------------------- the spec
def parse_spec(raw: dict, source: str = "spec") -> dict:
    """Validate a raw spec (after ``extends``) and return the normalised, JSON-able config.

    Parameters
    ----------
    raw : dict
        The spec as read from TOML (see ``experiments/aitbs_study.toml``).
    source : str
        Where it came from (for messages).

    Returns
    -------
    dict
        ``experiment``, ``settings`` (with ``by_scale``), ``timeline``, ``conditions``,
        ``overrides``, ``ablations``, ``criteria``.

    Raises
    ------
    InputError
        The first problem found, naming the field and the allowed values.
    """
    if not isinstance(raw, dict):
        raise InputError(source, "spec must be a table")
    spec = validate(Spec, _flatten_spec_overrides(raw))
    settings = _parse_settings(spec.settings)
    phases = _parse_timeline(spec.timeline)
    labels = [p["readout"] for p in phases if p["readout"]]
    check_overrides(spec.overrides, "overrides")
    check_ablations(spec.ablations, where="ablations")
    pops = list(populations())
    conds = {
        cname: _parse_condition(c, f"conditions.{cname}", spec, pops)
        for cname, c in spec.conditions.items()
    }
    crit = [
        _parse_criterion(c, k, spec.criteria[:k], conds, labels, pops)
        for k, c in enumerate(spec.criteria)
    ]
    return dict(
        experiment=spec.experiment.model_dump(),
        settings=settings,
        timeline=phases,
        conditions=conds,
        overrides=dict(spec.overrides),
        ablations=list(spec.ablations),
        criteria=crit,
    )


def _flatten_spec_overrides(raw: dict) -> dict:
    """A deep copy of ``raw`` without ``extends``, its ``[overrides]`` and every condition's
    flattened to dotted paths (:func:`flatten_overrides`)."""
    raw = copy.deepcopy(raw)
    raw.pop("extends", None)
    if "overrides" in raw:
        raw["overrides"] = flatten_overrides(raw["overrides"], "overrides")
    conditions = raw.get("conditions")
    for cname, c in conditions.items() if isinstance(conditions, dict) else ():
        if isinstance(c, dict) and "overrides" in c:
            c["overrides"] = flatten_overrides(c["overrides"], f"conditions.{cname}.overrides")
    return raw


def _parse_settings(spec_settings: Settings) -> dict:
    """The settings as a dict; every scale's table checked as run settings over them."""
    settings = _omit_defaults(spec_settings.model_dump(exclude={"by_scale"}))
    for sc, tab in spec_settings.by_scale.items():
        where = f"settings.by_scale.{sc}."
        validate(
            RunSettings,
            {**{k: settings[k] for k in RUN_SETTINGS if k in settings}, **tab},
            prefix=where,
        )
    settings["by_scale"] = {k: dict(v) for k, v in spec_settings.by_scale.items()}
    return settings


def _parse_timeline(timeline: list[Phase]) -> list[dict]:
    """The phases as dicts (:func:`_parse_phase`); read-out labels unique, at most one
    stimulation phase."""
    phases = [_parse_phase(ph, k) for k, ph in enumerate(timeline)]
    labels = [p["readout"] for p in phases if p["readout"]]
    if len(set(labels)) != len(labels):
        raise InputError("timeline.readout", "read-out labels must be unique")
    if sum(p["kind"] == "stimulation" for p in phases) > 1:
        raise InputError("timeline", "at most one stimulation phase")
    return phases


def _parse_phase(ph: Phase, k: int) -> dict:
    """Phase ``k`` of the timeline: days given except for stimulation (its protocol's days);
    stress phases last whole days with ``hours_per_day`` (default 6), other kinds have none."""
    where = f"timeline[{k}]"
    if ph.kind == "stimulation":
        if ph.days is not None:
            raise InputError(
                f"{where}.days", "a stimulation phase lasts its protocol's days; remove days"
            )
    elif ph.days is None:
        raise InputError(f"{where}.days", "missing (required)", "(0, 3650] days")
    hpd = None
    if ph.kind == "stress":
        hpd = 6.0 if ph.hours_per_day is None else ph.hours_per_day
        if abs(ph.days - round(ph.days)) > 1e-9:
            raise InputError(f"{where}.days", "stress phases last whole days")
    elif ph.hours_per_day is not None:
        raise InputError(f"{where}.hours_per_day", "only stress phases have hours_per_day")
    return dict(
        kind=ph.kind,
        days=float(ph.days or 0.0),
        hours_per_day=hpd,
        readout=ph.readout,
        label=ph.label or f"{ph.kind}_{k}",
    )


def _parse_condition(c: Condition, where: str, spec: Spec, pops: list) -> dict:
    """One condition checked (protocol and dose, overrides, ablations, the model trees they
    give, silenced and light populations) and dumped."""
    if c.protocol != "none":
        _check_protocol(c, where)
    check_overrides(c.overrides, f"{where}.overrides")
    check_ablations(c.ablations, where=f"{where}.ablations")
    # every mechanism, override and ablation of the condition resolves (before any run)
    trees = model_trees({**spec.overrides, **c.overrides}, list(spec.ablations) + c.ablations)
    from ..plasticity.structural import release_weights

    release_weights(pops, trees["structural"])  # dopamine release tables name populations
    _check_populations(c.silence, f"{where}.silence", pops)
    _check_light(c, where, pops)
    return c.model_dump()


def _check_protocol(c: Condition, where: str) -> None:
    """The condition's protocol is shipped (a name) or builds (a table); a TMS protocol's dose
    is known (no silent default intensity)."""
    from ..protocols import get_protocol, list_protocols, session_intensity

    if isinstance(c.protocol, str) and c.protocol not in list_protocols():
        raise InputError(
            f"{where}.protocol", f"unknown protocol {c.protocol!r}", ["none"] + list_protocols()
        )
    try:
        proto = get_protocol(c.protocol)
    except InputError as exc:
        raise exc.within(f"{where}.protocol: ") from None
    if c.modality == "tms":
        session_intensity(proto, c.intensity_pct_rmt, field=f"{where}.intensity_pct_rmt")


def _check_populations(names, where: str, pops: list) -> None:
    """Every name in ``names`` is a declared population."""
    for p in names:
        if p not in pops:
            raise InputError(where, f"unknown population {p!r}", pops)


def _parse_criterion(
    c: Criterion, k: int, earlier: list[Criterion], conds: dict, labels: list, pops: list
) -> dict:
    """Criterion ``k`` checked against the populations, conditions, read-out labels and the
    criteria listed before it, and dumped."""
    where = f"criteria[{k}]"
    _check_populations(c.populations, f"{where}.populations", pops)
    for key in ("condition", "minus_condition"):
        val = getattr(c, key)
        if val is not None and val not in conds:
            raise InputError(f"{where}.{key}", f"unknown condition {val!r}", list(conds))
    if c.var in READOUT_VARIABLES:
        if c.readout is None:
            raise InputError(
                f"{where}.readout", f"missing: {c.var} is judged at a read-out", labels
            )
        if c.readout not in labels:
            raise InputError(f"{where}.readout", f"unknown read-out {c.readout!r}", labels)
    elif c.readout is not None:
        raise InputError(
            f"{where}.readout", f"{c.var} is a mean over sessions and takes no read-out"
        )
    names = [x.name for x in earlier]
    if c.requires is not None and c.requires not in names:
        raise InputError(
            f"{where}.requires",
            f"unknown or later criterion {c.requires!r}: name one listed before this one",
            names,
        )
    return c.model_dump(exclude_none=True)


def _check_light(c: Condition, where: str, pops: list) -> None:
    """A light condition names the populations that express the opsin (declared ones); a TMS
    condition names none, and light takes no %RMT intensity."""
    _check_populations(c.light_populations, f"{where}.light_populations", pops)
    if c.modality == "light":
        if not c.light_populations:
            raise InputError(
                f"{where}.light_populations",
                "modality 'light' needs the populations whose cells express the opsin",
                pops,
            )
        if c.intensity_pct_rmt is not None:
            raise InputError(
                f"{where}.intensity_pct_rmt",
                "a TMS setting: the light's "
                "irradiance is the model parameter opto.light.irradiance "
                "(override it)",
            )
    elif c.light_populations:
        raise InputError(
            f"{where}.light_populations", "only with modality = 'light'", ["modality = 'light'"]
        )


def resolve_settings(settings: dict, scale=None, overrides: dict | None = None) -> dict:
    """The settings of one run: ``scale`` (if given) replaces the spec's; the scale's own table
    applies (a neuron count uses the table of the largest named scale not above it, or of the
    smallest); then ``overrides`` (run options such as ``--session-sample``).  Returns a new
    dict with ``settings_scale``: the named scale whose table was applied.

    Parameters
    ----------
    settings : dict
        The spec's ``[settings]``.
    scale : str or int, optional
        Replaces the spec's scale.
    overrides : dict, optional
        Run options.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        An unknown scale or a run option of the wrong type or range.
    """
    out = copy.deepcopy(settings)
    if scale is not None:
        out["scale"] = check_scale(scale)
    sc = out["scale"]
    named = sc if isinstance(sc, str) else _nearest_named_scale(sc)
    out = merge_tables(out, out.get("by_scale", {}).get(named, {}))
    out["settings_scale"] = named
    if overrides:
        validate(
            RunSettings,
            {**{k: out[k] for k in RUN_SETTINGS if k in out}, **overrides},
            prefix="settings.",
        )
        out.update(overrides)
    return _omit_defaults(out)


def _nearest_named_scale(n: int) -> str:
    sizes = {s: load_model("circuit").value(f"scale.{s}") for s in SCALE_NAMES}
    below = [s for s in SCALE_NAMES if sizes[s] <= n]
    return max(below, key=sizes.get) if below else min(SCALE_NAMES, key=sizes.get)


def model_trees(overrides: dict, ablations=()) -> dict:
    """The model parameter trees (one per model file) with mechanisms, ``overrides`` and
    ``ablations`` applied.

    Order: overrides of ``mechanisms.*`` (switching mechanisms on/off); the parameter values of
    every enabled mechanism not in ``ablations`` (:func:`cortexsim.mechanisms.apply`); the other
    overrides (an explicit override wins over a mechanism's value); the parameters of every
    mechanism in ``ablations`` back to their model files' values (an ablation wins over an
    override); the remaining ablations.

    Parameters
    ----------
    overrides : dict
        ``{"<model>.<dotted path>": value}`` (e.g. ``"coupling.cells.PT_L5.dV_th_mV"``).
    ablations : iterable of str
        Names of :data:`ABLATIONS` or of mechanisms declared in ``models/mechanisms.toml``.

    Returns
    -------
    dict
        Model name (``MODEL_NAMES``) -> ParamTree.

    Raises
    ------
    InputError
        An override of the wrong type, dimension or range; an unknown ablation.
    """
    from .. import mechanisms as mech

    trees = {m: load_model(m) for m in MODEL_NAMES}
    split = [(p.split(".", 1), v) for p, v in overrides.items()]
    for (model, rest), v in split:
        if model == "mechanisms":
            trees[model].set(rest, v)
    names = check_ablations(ablations, trees["mechanisms"])
    ablated = [a for a in names if a not in ABLATIONS]
    mech.apply(trees, disabled=ablated)
    for (model, rest), v in split:
        if model != "mechanisms":
            trees[model].set(rest, v)
    # an ablated mechanism is off whatever the overrides set: its parameters go back to the
    # values of their model files (e.g. a spec that fits a mechanism's gains, ablated)
    for name in ablated:
        for s in mech.mechanisms(trees["mechanisms"])[name].set:
            model, _, rest = s.path.partition(".")
            fresh, node = load_model(model)._node(rest), trees[model]._node(rest)
            if isinstance(node, dict):  # value, unit, range and source together
                node.clear()
                node.update(copy.deepcopy(fresh))
            else:
                trees[model].set(rest, fresh)
    _apply_ablations(trees, [a for a in names if a in ABLATIONS])
    return trees


def check_ablations(ablations, mech_tree=None, where: str = "ablations") -> list[str]:
    """``ablations`` checked against :data:`ABLATIONS` and the declared mechanisms.

    Parameters
    ----------
    ablations : iterable of str
    mech_tree : ParamTree, optional
        ``models/mechanisms.toml`` (default: loaded).
    where : str
        Field named in errors.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        An unknown name (naming the allowed ones).
    """
    tree = mech_tree if mech_tree is not None else load_model("mechanisms")
    allowed = list(ABLATIONS) + list(tree.values())
    for a in ablations:
        if not isinstance(a, str) or a not in allowed:
            raise InputError(where, f"unknown ablation {a!r}", allowed)
    return list(ablations)


_model_trees = model_trees  # the runner's name for it


def _apply_ablations(trees: dict, ablations) -> None:
    """Switch mechanisms off by changing parameters (each ablation removes one mechanism).
    Populations and their cell models are those the circuit model declares."""
    cells, circ = trees["cells"], trees["circuit"]
    table = population_table(circ)
    exc = [p for p, pop in table.items() if pop.excitatory]
    exc_cells = list(dict.fromkeys(table[p].cell for p in exc))
    for a in ablations:
        if a == "h_current":
            for c in dict.fromkeys(pop.cell for pop in table.values()):
                cells.set(f"{c}.g_h", 0.0)
        elif a == "intrinsic":
            # every excitatory cell model gets the intrinsic parameters of the pooled mean
            keys = [k for k in cells.values()[exc_cells[0]] if k != "target"]
            for k in keys:
                vals = [cells.value(f"{c}.{k}") for c in exc_cells]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                    for c in exc_cells:
                        cells.set(f"{c}.{k}", float(np.mean(vals)))
        elif a == "connectivity":
            conn = circ.values()["conn"]
            ee = [(pre, post) for pre in exc for post in exc if post in conn.get(pre, {})]
            pm = float(np.mean([conn[a_][b]["p"] for a_, b in ee]))
            gm = float(np.mean([conn[a_][b]["g"] for a_, b in ee]))
            for pre, post in ee:
                circ.set(f"conn.{pre}.{post}.p", pm)
                circ.set(f"conn.{pre}.{post}.g", gm)
        elif a == "nmda_calcium":
            circ.set("plasticity.nmda_calcium", False)
        elif a == "activity_structural":
            trees["structural"].set("activity.ltp_gain", 0.0)
        elif a == "homeostasis":
            trees["structural"].set("homeostasis.gain", 0.0)
        # "coupling" acts at run time (thresholds pooled across excitatory cells)


def read_spec(p) -> dict:
    """Read a spec (TOML) and merge what it ``extends`` (a path relative to it): tables merge
    key by key; lists (timeline, criteria) and plain values replace
    (:func:`cortexsim.specs.read_extending`).  Overrides are flattened to dotted paths first,
    so a quoted and an unquoted path are the same key.

    Parameters
    ----------
    p : str or Path
        The spec file.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Missing or malformed file, ``extends`` not a string, missing or circular.
    """
    return read_extending(p, _read_one_spec, "spec")


def _read_one_spec(p: Path) -> dict:
    raw = read_toml(p, field="spec")
    if not isinstance(raw, dict):
        raise InputError(str(p), "spec must be a table")
    if isinstance(raw.get("overrides"), dict):
        raw["overrides"] = flatten_overrides(raw["overrides"], f"{p.name}: overrides")
    for cname, c in (
        (raw.get("conditions") or {}).items() if isinstance(raw.get("conditions"), dict) else ()
    ):
        if isinstance(c, dict) and isinstance(c.get("overrides"), dict):
            c["overrides"] = flatten_overrides(
                c["overrides"], f"{p.name}: conditions.{cname}.overrides"
            )
    return raw
