"""Experiment specs: validation and normalisation of the TOML a user writes.

``parse_spec`` turns a raw spec (after ``extends`` merging by :func:`read_spec`) into the
normalised, JSON-able config the runner uses; every error is an :class:`InputError` naming the
field and the allowed values.  Model trees with overrides and ablations applied come from
:func:`model_trees`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..errors import InputError, check_choice, check_number
from ..params import load_model, read_toml
from ..populations import EXCITATORY, POPULATIONS

PHASE_KINDS = ("baseline", "stress", "stimulation", "rest")
ABLATIONS = ("coupling", "h_current", "intrinsic", "connectivity", "nmda_calcium",
             "activity_structural", "homeostasis")
MODEL_NAMES = ("circuit", "cells", "synaptic", "structural", "stress", "coupling")
RESULT_VARIABLES = ("spine_density", "spine_density_rel", "mean_weight", "rate_readout",
                    "evoked_response", "session_rate")
SPEC_SECTIONS = ("experiment", "settings", "timeline", "conditions", "overrides", "criteria",
                 "ablations")


# --------------------------------------------------------------------------- spec
DEFAULT_SETTINGS = {
    "scale": "small",          # network size (circuit.toml [scale] name or neuron count)
    "slow_dt_h": 1.0,          # structural step (h)
    "baseline_fast_s": 10.0,   # short fast phase: resting activity statistics and read-outs (s)
    "session_tail_s": 1.0,     # simulated time after the last pulse of a session (s)
    "record_every_h": 12.0,    # spine-density trace resolution in slow phases (h)
    "evoked_pct_rmt": 100.0,   # evoked-response proxy: one pulse at this intensity ...
    "evoked_window_s": 0.05,   # ... counting extra spikes per cell in this window after it
    "backend": "numba",
    # fast phase of a session: "all" simulates every pulse of the whole session; a number (s)
    # simulates that much of it (whole train periods) with every pulse, and advances each
    # synapse's GB efficacy over the rest with the threshold-time fractions measured in it
    # (GB 2012 mean field; see synaptic.advance_fractions)
    "session_sample_s": "all",
}
#: settings a scale's table or a run may change (everything but the scale itself)
RUN_SETTINGS = tuple(k for k in DEFAULT_SETTINGS if k != "scale")
#: settings that apply only at one named scale: [settings.by_scale.<scale>]
SCALE_NAMES = ("small", "default", "large")


def _check_keys(d: dict, allowed, where: str):
    for k in d:
        if k not in allowed:
            raise InputError(f"{where}.{k}", "unknown key", list(allowed))


def parse_spec(raw: dict, source: str = "spec") -> dict:
    """Validate a raw spec dict; return a normalised, JSON-able copy."""
    if not isinstance(raw, dict):
        raise InputError(source, "spec must be a table")
    _check_keys(raw, SPEC_SECTIONS, source)
    exp = raw.get("experiment", {})
    _check_keys(exp, ("name", "seed", "description"), "experiment")
    name = exp.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("experiment.name", "missing or not a string")
    seed = check_number("experiment.seed", exp.get("seed", 0), min=0, integer=True)
    settings = dict(DEFAULT_SETTINGS)
    st = dict(raw.get("settings", {}))
    by_scale = st.pop("by_scale", {})
    _check_keys(st, list(DEFAULT_SETTINGS) + ["by_scale"], "settings")
    settings.update(st)
    _check_settings(settings, "settings")
    if not isinstance(by_scale, dict):
        raise InputError("settings.by_scale", "must be a table of [settings.by_scale.<scale>]",
                         SCALE_NAMES)
    for sc, tab in by_scale.items():
        where = f"settings.by_scale.{sc}"
        check_choice("settings.by_scale", sc, SCALE_NAMES)
        if not isinstance(tab, dict):
            raise InputError(where, "must be a table of settings")
        _check_keys(tab, RUN_SETTINGS, where)
        _check_settings({**settings, **tab}, where)
    settings["by_scale"] = {k: dict(v) for k, v in by_scale.items()}
    tl = raw.get("timeline")
    if not isinstance(tl, list) or not tl:
        raise InputError("timeline", "needs at least one [[timeline]] phase")
    phases = []
    for k, ph in enumerate(tl):
        where = f"timeline[{k}]"
        if not isinstance(ph, dict):
            raise InputError(where, "must be a table")
        _check_keys(ph, ("kind", "days", "hours_per_day", "readout", "label"), where)
        kind = check_choice(f"{where}.kind", ph.get("kind"), PHASE_KINDS)
        days = 0.0
        if kind != "stimulation":
            days = check_number(f"{where}.days", ph.get("days"), min=0, strict_min=True)
        hpd = None
        if kind == "stress":
            hpd = check_number(f"{where}.hours_per_day", ph.get("hours_per_day", 6.0), min=0,
                               max=24, strict_min=True)
            if abs(days - round(days)) > 1e-9:
                raise InputError(f"{where}.days", "stress phases last whole days")
        ro = ph.get("readout")
        if ro is not None and not isinstance(ro, str):
            raise InputError(f"{where}.readout", "must be a label string")
        phases.append(dict(kind=kind, days=float(days), hours_per_day=hpd, readout=ro,
                           label=str(ph.get("label", f"{kind}_{k}"))))
    labels = [p["readout"] for p in phases if p["readout"]]
    if len(set(labels)) != len(labels):
        raise InputError("timeline.readout", "read-out labels must be unique")
    if sum(p["kind"] == "stimulation" for p in phases) > 1:
        raise InputError("timeline", "at most one stimulation phase")
    conds = raw.get("conditions")
    if not isinstance(conds, dict) or not conds:
        raise InputError("conditions", "needs at least one [conditions.<name>] table")
    from ..protocols import get_protocol, list_protocols
    cond_out = {}
    for cname, c in conds.items():
        where = f"conditions.{cname}"
        if not isinstance(c, dict):
            raise InputError(where, "must be a table")
        _check_keys(c, ("stress", "protocol", "intensity_pct_rmt", "silence", "silence_during",
                        "ablations", "overrides"), where)
        proto = c.get("protocol", "none")
        if proto != "none":
            if isinstance(proto, str):
                check_choice(f"{where}.protocol", proto, ["none"] + list_protocols())
            get_protocol(proto)
        inten = c.get("intensity_pct_rmt")
        if inten is not None:
            inten = check_number(f"{where}.intensity_pct_rmt", inten, min=0)
        sil = c.get("silence", [])
        if not isinstance(sil, list):
            raise InputError(f"{where}.silence", "must be a list of populations", POPULATIONS)
        for p in sil:
            check_choice(f"{where}.silence", p, POPULATIONS)
        sd = check_choice(f"{where}.silence_during", c.get("silence_during", "sessions"),
                          ("sessions",))
        abl = c.get("ablations", [])
        for a in abl:
            check_choice(f"{where}.ablations", a, ABLATIONS)
        ov = c.get("overrides", {})
        _check_overrides(ov, f"{where}.overrides")
        stress = c.get("stress", True)
        if not isinstance(stress, bool):
            raise InputError(f"{where}.stress", "must be true or false")
        cond_out[cname] = dict(stress=stress, protocol=proto, intensity_pct_rmt=inten,
                               silence=list(sil), silence_during=sd, ablations=list(abl),
                               overrides=dict(ov))
    ov = raw.get("overrides", {})
    _check_overrides(ov, "overrides")
    abl = raw.get("ablations", [])
    for a in abl:
        check_choice("ablations", a, ABLATIONS)
    crit = raw.get("criteria", [])
    if not isinstance(crit, list):
        raise InputError("criteria", "must be a list of [[criteria]] tables")
    from ..criteria import check
    check(crit, list(cond_out), labels, RESULT_VARIABLES)
    return dict(experiment=dict(name=name, seed=seed, description=exp.get("description", "")),
                settings=settings, timeline=phases, conditions=cond_out, overrides=dict(ov),
                ablations=list(abl), criteria=crit)


def _check_settings(settings: dict, where: str):
    for k in ("slow_dt_h", "baseline_fast_s", "session_tail_s", "record_every_h",
              "evoked_window_s"):
        check_number(f"{where}.{k}", settings[k], min=0, strict_min=True)
    check_number(f"{where}.evoked_pct_rmt", settings["evoked_pct_rmt"], min=0)
    check_choice(f"{where}.backend", settings["backend"], ("numba", "numpy"))
    ss = settings["session_sample_s"]
    if ss != "all":
        if isinstance(ss, str):
            raise InputError(f"{where}.session_sample_s", f"expected 'all' or seconds, got {ss!r}")
        check_number(f"{where}.session_sample_s", ss, min=0, strict_min=True)


def _check_overrides(ov, where):
    if not isinstance(ov, dict):
        raise InputError(where, "must be a table of dotted paths")
    for path, v in ov.items():
        model = path.split(".", 1)[0]
        check_choice(f"{where}.{path}", model, MODEL_NAMES)
        tree = load_model(model)
        tree.set(path.split(".", 1)[1], v)   # raises naming the path if unknown


def _model_trees(overrides: dict) -> dict:
    trees = {m: load_model(m) for m in MODEL_NAMES}
    for path, v in overrides.items():
        model, rest = path.split(".", 1)
        trees[model].set(rest, v)
    return trees


def _apply_ablations(trees: dict, ablations) -> None:
    """Switch mechanisms off by changing parameters (each ablation removes one mechanism)."""
    cells, circ = trees["cells"], trees["circuit"]
    for a in ablations:
        if a == "h_current":
            for p in POPULATIONS:
                cells.set(f"{p}.g_h", 0.0)
        elif a == "intrinsic":
            # every excitatory population gets the intrinsic parameters of the pooled mean
            keys = [k for k in cells.values()[EXCITATORY[0]] if k != "target"]
            for k in keys:
                vals = [cells.value(f"{p}.{k}") for p in EXCITATORY]
                if all(isinstance(v, (int, float)) for v in vals):
                    for p in EXCITATORY:
                        cells.set(f"{p}.{k}", float(np.mean(vals)))
        elif a == "connectivity":
            conn = circ.values()["conn"]
            ee = [(pre, post) for pre in EXCITATORY for post in EXCITATORY
                  if post in conn.get(pre, {})]
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


def read_spec(p: Path, _seen=()) -> dict:
    raw = read_toml(p, field="spec")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise InputError(f"{p}: extends", "must be the path of another spec (TOML)")
    bp = (p.parent / base).resolve()
    if bp in _seen or bp == p.resolve():
        raise InputError(f"{p}: extends", f"circular: {bp} extends itself")
    return _merge(read_spec(bp, _seen + (p.resolve(),)), raw)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out

