"""``cortexsim check``: validate a spec as ``run`` (or ``sweep``, ``fit``, ``sensitivity``) would,
say what it would run, and estimate its wall time and peak memory -- without building or
running anything.  Also the memory guard of ``cortexsim run``.

The estimate adds up measured costs kept in ``cortexsim/costs.toml`` (how each was measured is
written there): per network run, the loop's CPU time per biological second (at rest and inside
pulse trains) times the biological seconds it simulates, plus a fixed cost per run; per process,
its start and its network builds; the structural kernel and the GB mean field per site and
time; compiles only if the build cache lacks the network (reported separately).  Conditions (or
sweep runs) are spread over ``--workers`` processes (longest first) on the machine's cores.
Peak memory is the measured base of a process plus a measured cost per synapse, times the
processes that run at once.  The network runs are those of the runner's three passes
(:func:`cortexsim.plan.network_runs`).

Spec kinds are recognised by their top-level table (``[experiment]``, ``[sweep]``, ``[fit]``,
``[sensitivity]``; a spec that only ``extends`` another has its kind); another kind (e.g. a
validation suite) plugs in with :func:`register_kind`.
"""

from __future__ import annotations

import math
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError

MB = 2**20


# --------------------------------------------------------------------------- measured costs
@lru_cache(maxsize=1)
def costs() -> dict:
    """The measured costs (``cortexsim/costs.toml``).

    Returns
    -------
    dict
        Tables ``loop``, ``run_overhead``, ``build``, ``compile``, ``process``, ``structural``,
        ``memory`` (see the file for units and how each was measured).
    """
    with open(Path(__file__).with_name("costs.toml"), "rb") as fh:
        return tomllib.load(fh)


def _loglog(table: dict, key: str, n: float) -> float:
    """``table[key]`` at ``n`` neurons: log-log interpolation between the measured sizes,
    the nearest segment's power law beyond them."""
    x = np.log(np.asarray(table["neurons"], float))
    y = np.log(np.asarray(table[key], float))
    ln = math.log(n)
    k = int(np.clip(np.searchsorted(x, ln) - 1, 0, len(x) - 2))
    slope = (y[k + 1] - y[k]) / (x[k + 1] - x[k])
    if x[0] <= ln <= x[-1]:
        return float(np.exp(np.interp(ln, x, y)))
    return float(np.exp(y[k] + slope * (ln - x[k])))


def available_memory_bytes() -> int:
    """Memory available to new processes on this machine: ``MemAvailable`` of /proc/meminfo
    (Linux), at most what the cgroup of this process may still use; elsewhere the free
    physical pages.

    Returns
    -------
    int
        Bytes.
    """
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return int(avail)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _makespan(loads: list[float], workers: int) -> float:
    """Wall time of jobs ``loads`` (s) on ``workers`` processes, longest first."""
    slots = [0.0] * max(1, workers)
    for x in sorted(loads, reverse=True):
        slots[slots.index(min(slots))] += x
    return max(slots)


# --------------------------------------------------------------------------- one experiment
def estimate(
    cfg: dict,
    workers: int = 1,
    cores: int | None = None,
    plans: dict | None = None,
    runs: list | None = None,
) -> dict:
    """Wall time and peak memory of ``cortexsim run`` for a resolved config.

    Parameters
    ----------
    cfg : dict
        A resolved config (:meth:`cortexsim.experiment.Experiment.resolved_config`).
    workers : int
        Worker processes (``--workers``).
    cores : int, optional
        CPU cores to spread them on (default: those this process may use).
    plans, runs : optional
        :func:`cortexsim.plan.condition_plans` and :func:`cortexsim.plan.network_runs` of
        ``cfg`` (computed if not given).

    Returns
    -------
    dict
        ``neurons``, ``synapses``, ``sites``, ``runs`` (network runs), ``bio_s`` (biological
        s simulated), ``builds`` (distinct compiled networks), ``condition_s`` (condition ->
        its work in s on one core), ``wall_s`` (warm build cache), ``compile_s`` (extra with
        an empty build cache), ``processes`` (running at once), ``peak_memory_MB``.
    """
    from .circuit.layout import resolve_scale
    from .params import load_model
    from .plan import condition_plans, network_runs, synapse_count

    c = costs()
    cores = cores or _cores()
    n = resolve_scale(cfg["settings"]["scale"], load_model("circuit"))
    syn = synapse_count(n)
    plans = plans if plans is not None else condition_plans(cfg)
    runs = runs if runs is not None else network_runs(cfg, plans)
    loop_rest = _loglog(c["loop"], "rest_s", n)
    loop_trains = _loglog(c["loop"], "trains_s", n)
    per_run = _loglog(c["run_overhead"], "seconds", n)
    per_build = _loglog(c["build"], "seconds", n)
    st = cfg["settings"]
    work = dict.fromkeys(plans, 0.0)
    builds: dict[str, set] = {name: set() for name in plans}
    for r in runs:
        f = r["stim_fraction"]
        work[r["conditions"][0]] += per_run + r["bio_s"] * (f * loop_trains + (1 - f) * loop_rest)
        for name in r["conditions"]:
            builds[name].add(r["build"])
    s = c["structural"]
    for name, plan in plans.items():
        days = sum(ph["days"] for ph in plan.phases)
        work[name] += len(builds[name]) * per_build
        work[name] += syn["sites"] * days * 24.0 / st["slow_dt_h"] / s["site_updates_per_s"]
        unsimulated = max(0.0, plan.session_len_s - plan.simulated_s)
        work[name] += (
            plan.session_starts_s.size * syn["sites"] * unsimulated * s["mean_field_s_per_site_s"]
        )
    p = c["process"]
    parallel = workers > 1 and len(plans) > 1
    procs = min(workers, len(plans)) if parallel else 1
    slow = max(1.0, procs / cores)  # more processes than cores share them
    wall = (
        p["start_s"] * (2 if parallel else 1)
        + p["save_s"]
        + slow * _makespan(list(work.values()), procs)
    )
    n_builds = len({b for r in runs for b in [r["build"]]})
    m = c["memory"]
    proc_mb = m["base_MB"] + m["bytes_per_synapse"] * syn["total"] / MB
    peak = (m["main_MB"] + procs * proc_mb) if parallel else proc_mb
    return {
        "neurons": n,
        "synapses": round(syn["total"]),
        "sites": round(syn["sites"]),
        "runs": len(runs),
        "bio_s": sum(r["bio_s"] for r in runs),
        "builds": n_builds,
        "condition_s": work,
        "wall_s": wall,
        "compile_s": n_builds * _loglog(c["compile"], "seconds", n),
        "processes": procs,
        "peak_memory_MB": peak,
    }


def check_memory(est: dict, force: bool = False, what: str = "this run") -> None:
    """Refuse a run whose estimated peak memory exceeds the memory available now.

    Parameters
    ----------
    est : dict
        :func:`estimate` (or a sweep's) with ``peak_memory_MB`` and ``processes``.
    force : bool
        Go ahead anyway (``--force``).
    what : str
        Named in the message.

    Raises
    ------
    InputError
        The estimate exceeds the available memory (and not ``force``).
    """
    avail = available_memory_bytes() / MB
    if force or est["peak_memory_MB"] <= avail:
        return
    raise InputError(
        "--scale",
        f"{what} needs an estimated {_gb(est['peak_memory_MB'])} of "
        f"memory at peak ({est['processes']} process(es) of "
        f"{est['neurons']:,} neurons, {est['synapses']:,} synapses) but this "
        f"machine has {_gb(avail)} available; use a smaller --scale or fewer "
        "--workers, or --force to run anyway",
    )


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------- what would run
def describe(cfg: dict, plans: dict | None = None, runs: list | None = None) -> dict:
    """What ``cortexsim run`` would do with a resolved config: phases, read-outs, conditions
    with their protocols, pulses and sessions, and the network runs by pass.

    Parameters
    ----------
    cfg : dict
        A resolved config.
    plans, runs : optional
        As for :func:`estimate`.

    Returns
    -------
    dict
        ``experiment``, ``scale``, ``settings_scale``, ``session_sample_s``, ``phases``
        (label, kind, days, read-out), ``readouts``, ``conditions`` (name -> stress, protocol,
        sessions, pulses per session, total pulses, intensity, modality, silenced, simulated s
        per session), ``network_runs`` (by pass and kind).
    """
    from .plan import condition_plans, network_runs

    plans = plans if plans is not None else condition_plans(cfg)
    runs = runs if runs is not None else network_runs(cfg, plans)
    first = next(iter(plans.values()))
    conds = {}
    for name, pl in plans.items():
        p = pl.protocol
        conds[name] = {
            "stress": bool(pl.cond["stress"]),
            "protocol": None if p is None else p.name,
            "sham": bool(p is not None and p.sham),
            "sessions": int(pl.session_starts_s.size),
            "pulses_per_session": 0 if p is None else p.n_pulses,
            "pulses": 0 if p is None else p.n_pulses * int(pl.session_starts_s.size),
            "session_interval_min": None if p is None else p.session_interval_min,
            "session_s": round(pl.session_len_s, 3),
            "simulated_s_per_session": round(pl.simulated_s, 3),
            "modality": pl.modality,
            "intensity_pct_rmt": pl.intensity_pct_rmt,
            "silence": list(pl.cond["silence"]),
            "light_populations": list(pl.cond.get("light_populations") or []),
            "overrides": dict(pl.cond["overrides"]),
            "ablations": list(pl.cond["ablations"]),
        }
    by_pass: dict[str, int] = {}
    for r in runs:
        key = f"pass{r['pass']}.{r['what']}"
        by_pass[key] = by_pass.get(key, 0) + 1
    st = cfg["settings"]
    return {
        "experiment": cfg["experiment"]["name"],
        "scale": st["scale"],
        "settings_scale": st["settings_scale"],
        "session_sample_s": st["session_sample_s"],
        "phases": [
            {k: ph[k] for k in ("label", "kind", "start_d", "days", "readout")}
            for ph in first.phases
        ],
        "readouts": [ph["readout"] for ph in first.phases if ph["readout"]],
        "conditions": conds,
        "network_runs": by_pass,
    }


def check_experiment(
    path, scale=None, workers: int = 1, settings: dict | None = None, seed=None
) -> dict:
    """Validate an experiment spec with the options of ``cortexsim run`` and describe and
    estimate the run.

    Parameters
    ----------
    path : str or Path
        The spec, or the name of a shipped one.
    scale : str or int, optional
        Replaces the spec's scale.
    workers : int
        Worker processes.
    settings : dict, optional
        Run options (e.g. ``session_sample_s``).
    seed : int, optional
        Replaces the spec's seed.

    Returns
    -------
    dict
        ``kind`` ("experiment"), ``spec``, :func:`describe` and ``estimate``
        (:func:`estimate`) with ``available_memory_MB``.

    Raises
    ------
    InputError
        Whatever ``cortexsim run`` would reject before running.
    """
    from .experiment import load_experiment

    exp = load_experiment(path)
    cfg = exp.resolved_config(seed, scale, settings, workers)
    from .plan import condition_plans, network_runs

    plans = condition_plans(cfg)
    runs = network_runs(cfg, plans)
    est = estimate(cfg, workers, plans=plans, runs=runs)
    est["available_memory_MB"] = available_memory_bytes() / MB
    return {"kind": "experiment", "spec": exp.path, **describe(cfg, plans, runs), "estimate": est}


def estimate_spec(path, scale=None, workers: int = 1) -> dict:
    """:func:`estimate` of an experiment spec (file or shipped name) at ``scale``.

    Parameters
    ----------
    path : str or Path
        The experiment spec, or a shipped name.
    scale : str or int, optional
        Replaces the spec's scale.
    workers : int
        Worker processes.

    Returns
    -------
    dict
        As :func:`estimate`, with ``available_memory_MB``.
    """
    return check_experiment(path, scale=scale, workers=workers)["estimate"]


# --------------------------------------------------------------------------- sweeps and fits
def _tasks_estimate(tasks: list[dict], workers: int, repeats: int = 1) -> dict:
    """Wall time and memory of sweep-engine tasks (one run each, in its own process); each
    distinct point spec is estimated once; a fit's trials repeat its corner ``repeats``
    times."""
    import json

    from .experiment import Experiment

    cache: dict[str, dict] = {}
    loads, peak, runs = [], 0.0, 0
    for t in tasks:
        key = json.dumps([_cost_signature(t["raw"]), t["scale"]], sort_keys=True, default=str)
        if key not in cache:
            cfg = Experiment.from_dict(t["raw"]).resolved_config(t["seed"], t["scale"])
            cache[key] = estimate(cfg, 1)
        e = cache[key]
        loads += [e["wall_s"]] * repeats
        runs += e["runs"] * repeats
        peak = max(peak, e["peak_memory_MB"])
        ref = e
    procs = min(workers, len(loads))
    wall = max(1.0, procs / _cores()) * _makespan(loads, procs)
    return {
        "neurons": ref["neurons"],
        "synapses": ref["synapses"],
        "sites": ref["sites"],
        "experiment_runs": len(loads),
        "runs": runs,
        "wall_s": wall,
        "compile_s": max(e["compile_s"] for e in cache.values()),
        "processes": procs,
        "peak_memory_MB": costs()["memory"]["main_MB"] + procs * peak,
        "available_memory_MB": available_memory_bytes() / MB,
    }


def _cost_signature(raw: dict) -> dict:
    """The part of a point's raw spec that its cost depends on: everything but the model
    value overrides (points that differ only in those are estimated once; an override of the
    circuit's size or connectivity is the rare case this misses)."""
    sig = {k: v for k, v in raw.items() if k != "overrides"}
    conds = raw.get("conditions")
    if isinstance(conds, dict):
        sig["conditions"] = {
            c: ({k: v for k, v in x.items() if k != "overrides"} if isinstance(x, dict) else x)
            for c, x in conds.items()
        }
    return sig


def check_sweep(path, scale=None, workers: int = 1) -> dict:
    """Validate a sweep spec and every point as ``cortexsim sweep`` does; estimate it.

    Parameters
    ----------
    path : str or Path
        The spec.
    scale : str or int, optional
        Replaces the scale of every run.
    workers : int
        Worker processes.

    Returns
    -------
    dict
        ``kind``, ``spec``, ``name``, ``design``, ``points``, ``seeds``, ``metrics``,
        ``estimate``.

    Raises
    ------
    InputError
        Whatever ``cortexsim sweep`` would reject before running.
    """
    from .sweep import load_sweep

    sw = load_sweep(path)
    scale = _scale(scale)
    tasks = sw.tasks(scale, Path("out") / sw.name / "store")
    return {
        "kind": "sweep",
        "spec": str(path),
        "name": sw.name,
        "design": sw.spec.sweep.design,
        "points": len(sw.points),
        "seeds": list(sw.spec.sweep.seeds),
        "metrics": [m.name for m in sw.spec.metrics],
        "estimate": _tasks_estimate(tasks, workers),
    }


def check_fit(path, scale=None, workers: int = 1) -> dict:
    """Validate a fit spec as ``cortexsim fit`` does (base spec, both corners of the box,
    metrics, criterion targets); estimate its trials (each as costly as the low corner).

    Parameters
    ----------
    path : str or Path
        The spec.
    scale : str or int, optional
        Replaces the scale of every run.
    workers : int
        Worker processes.

    Returns
    -------
    dict
        ``kind``, ``spec``, ``name``, ``parameters``, ``n_trials``, ``seeds``, ``estimate``.

    Raises
    ------
    InputError
        Whatever ``cortexsim fit`` would reject before running.
    """
    from .sweep import build_runs
    from .sweep.fit import prepare

    scale = _scale(scale)
    spec, _, base_raw, crit, out = prepare(path, scale)
    corner = {p.path: p.low for p in spec.parameters}
    tasks = build_runs(
        base_raw,
        [corner],
        spec.fit.seeds,
        scale,
        [m.model_dump() for m in spec.metrics],
        out / "store",
        crit,
    )
    f = spec.fit
    est = _tasks_estimate(tasks, min(workers, f.batch * len(f.seeds)), repeats=f.n_trials)
    extra = (
        _tasks_estimate(tasks[:1], 1, repeats=len(f.validation_seeds))
        if f.validation_seeds
        else None
    )
    if extra:
        est["wall_s"] += extra["wall_s"]
    return {
        "kind": "fit",
        "spec": str(path),
        "name": f.name,
        "parameters": [p.path for p in spec.parameters],
        "n_trials": f.n_trials,
        "seeds": list(f.seeds),
        "validation_seeds": list(f.validation_seeds),
        "estimate": est,
    }


def check_sensitivity(path, scale=None, workers: int = 1) -> dict:
    """Validate a sensitivity spec and every sampled point as ``cortexsim sensitivity`` does;
    estimate it.

    Parameters
    ----------
    path : str or Path
        The spec.
    scale : str or int, optional
        Replaces the scale of every run.
    workers : int
        Worker processes.

    Returns
    -------
    dict
        ``kind``, ``spec``, ``name``, ``points``, ``estimate``.

    Raises
    ------
    InputError
        Whatever ``cortexsim sensitivity`` would reject before running.
    """
    from .sweep.sensitivity import prepare

    spec, points, tasks, _ = prepare(path, _scale(scale))
    return {
        "kind": "sensitivity",
        "spec": str(path),
        "name": spec.sensitivity.name,
        "points": len(points),
        "estimate": _tasks_estimate(tasks, workers),
    }


def _scale(scale):
    from .experiment.spec import check_scale

    return None if scale is None else check_scale(scale)


# --------------------------------------------------------------------------- kinds
#: top-level table -> checker(path, scale=..., workers=...) returning a dict with ``kind``
#: and ``estimate``; :func:`register_kind` adds one (e.g. a validation-suite spec)
def check_suite(path, scale=None, workers: int = 1) -> dict:
    """A validation-suite file (``[suite]``): :func:`cortexsim.validation.check_suite_file`.

    Parameters
    ----------
    path : str or Path
        The suite file (TOML with a ``[suite]`` table).
    scale : str or int, optional
        Scale of the experiments (default small).
    workers : int
        Worker processes of the estimate.

    Returns
    -------
    dict
        The report :func:`format_report` prints (``kind`` "suite").

    Raises
    ------
    InputError
        A bad entry anywhere in the suite folder.
    """
    from .validation import check_suite_file

    return check_suite_file(path, scale=scale, workers=workers)


KINDS: dict[str, Callable[..., dict]] = {
    "experiment": check_experiment,
    "sweep": check_sweep,
    "fit": check_fit,
    "sensitivity": check_sensitivity,
    "suite": check_suite,
}


def register_kind(table: str, checker: Callable[..., dict]) -> None:
    """Let ``cortexsim check`` recognise specs whose top-level table is ``table``.

    Parameters
    ----------
    table : str
        The spec kind's top-level table (e.g. ``"validation"``).
    checker : callable
        ``checker(path, scale=None, workers=1) -> dict`` validating the spec as its command
        would, raising :class:`InputError`; the dict has ``kind`` and, where it can say,
        ``estimate`` (as :func:`estimate`).
    """
    KINDS[table] = checker


def spec_kind(path) -> tuple[str, Path]:
    """The kind of a spec file: its top-level table among :data:`KINDS`, or that of the spec
    it ``extends``; a bare name is a shipped experiment spec.

    Parameters
    ----------
    path : str or Path
        The spec, or the name of a shipped experiment spec.

    Returns
    -------
    kind : str
    path : Path

    Raises
    ------
    InputError
        Missing or malformed file, or no known top-level table.
    """
    from .params import experiments_dir, read_toml

    p = Path(path)
    if not p.is_file() and not p.suffix:
        p = experiments_dir() / f"{path}.toml"
    seen, q = set(), p
    while True:
        raw = read_toml(q, field="spec")
        found = [k for k in KINDS if k in raw]
        if found:
            return found[0], p
        if "timeline" in raw or "conditions" in raw:
            return "experiment", p
        ext = raw.get("extends")
        if not isinstance(ext, str) or q.resolve() in seen:
            raise InputError(
                str(p),
                "not a spec that cortexsim knows: no top-level table of",
                [f"[{k}]" for k in KINDS],
            )
        seen.add(q.resolve())
        q = q.parent / ext


def check(path, scale=None, workers: int = 1, settings: dict | None = None) -> dict:
    """``cortexsim check``: validate the spec (any kind in :data:`KINDS`) as its command
    would, and describe and estimate what it would run; nothing is built or run.

    Parameters
    ----------
    path : str or Path
        The spec, or the name of a shipped experiment spec.
    scale : str or int, optional
        Replaces the scale of every run.
    workers : int
        Worker processes.
    settings : dict, optional
        Run options of an experiment (``session_sample_s``).

    Returns
    -------
    dict
        The kind's report (``kind``, ..., ``estimate``).

    Raises
    ------
    InputError
        The spec or an option is invalid.
    """
    from .errors import check_number
    from .experiment.spec import check_scale

    check_number("--workers", workers, min=1, max=256, integer=True)
    if scale is not None:
        check_scale(scale, "--scale")  # the option named, whatever the spec's kind
    kind, p = spec_kind(path)
    if kind == "experiment":
        return check_experiment(p, scale=scale, workers=workers, settings=settings)
    if settings:
        raise InputError("--session-sample", f"only for experiment specs (this is a {kind} spec)")
    return KINDS[kind](p, scale=scale, workers=workers)


def format_report(rep: dict) -> str:
    """The text ``cortexsim check`` prints for a :func:`check` report.

    Parameters
    ----------
    rep : dict

    Returns
    -------
    str
    """
    out = [f"{rep['kind']} spec {rep['spec']}: valid"]
    if rep["kind"] == "experiment":
        out.append(
            f"scale {rep['scale']} (settings of scale {rep['settings_scale']!r}; "
            f"session_sample_s = {rep['session_sample_s']})"
        )
        out.append("phases:")
        for ph in rep["phases"]:
            ro = f", read-out {ph['readout']!r}" if ph["readout"] else ""
            out.append(
                f"  {ph['label']:<16} {ph['kind']:<11} day {ph['start_d']:g} - "
                f"{ph['start_d'] + ph['days']:g}{ro}"
            )
        out.append("conditions:")
        for name, c in rep["conditions"].items():
            what = ["stress" if c["stress"] else "no stress"]
            if c["protocol"] is None:
                what.append("no stimulation")
            else:
                dose = (
                    ("light to " + ", ".join(c["light_populations"]))
                    if c["modality"] == "light"
                    else f"{c['intensity_pct_rmt']:g} % RMT"
                )
                what.append(
                    f"{c['protocol']}{' (sham)' if c['sham'] else ''}: "
                    f"{c['sessions']} session(s) x {c['pulses_per_session']} pulses "
                    f"({c['pulses']} in all, {dose}), {c['session_s']:g} s each, "
                    f"{c['simulated_s_per_session']:g} s simulated pulse by pulse"
                )
            if c["silence"]:
                what.append("silenced: " + ", ".join(c["silence"]))
            if c["overrides"] or c["ablations"]:
                what.append(
                    f"{len(c['overrides'])} override(s), ablations {c['ablations'] or 'none'}"
                )
            out.append(f"  {name}: " + "; ".join(what))
        out.append("read-outs: " + ", ".join(rep["readouts"]))
        runs = rep["network_runs"]
        out.append(
            f"network runs: {sum(runs.values())} ("
            + ", ".join(f"{k} {v}" for k, v in runs.items())
            + ")"
        )
    else:
        for k, v in rep.items():
            if k not in ("kind", "spec", "estimate"):
                out.append(f"{k}: {v}")
    e = rep.get("estimate")
    if e:
        runs = (
            f"{e['experiment_runs']} experiment run(s), " if "experiment_runs" in e else ""
        ) + f"{e['runs']} network runs"
        out.append(
            f"estimate on this machine ({_cores()} cores, {e['processes']} process(es) "
            f"at once; {e['neurons']:,} neurons, {e['synapses']:,} synapses): {runs}; "
            f"wall ~{_duration(e['wall_s'])} with a warm build cache "
            f"(+ ~{_duration(e['compile_s'])} of compiles if it is empty); "
            f"peak memory ~{_gb(e['peak_memory_MB'])} "
            f"(available {_gb(e['available_memory_MB'])})"
        )
        if e["peak_memory_MB"] > e["available_memory_MB"]:
            out.append(
                "warning: the estimated peak memory exceeds the available memory: "
                "`run` refuses this without --force"
            )
    return "\n".join(out)


def guard_run(
    spec, scale=None, workers: int = 1, settings: dict | None = None, seed=None, force: bool = False
) -> dict:
    """What ``cortexsim run`` checks before it starts: the run's :func:`estimate`, refused
    (:func:`check_memory`) if its peak memory exceeds the memory available now.

    Parameters
    ----------
    spec : str or Path
        The experiment spec, or a shipped name.
    scale, workers, settings, seed
        The run's options.
    force : bool
        Run anyway (``--force``).

    Returns
    -------
    dict
        The estimate.

    Raises
    ------
    InputError
        An invalid spec or option, or the memory refusal.
    """
    rep = check_experiment(spec, scale=scale, workers=workers, settings=settings, seed=seed)
    check_memory(rep["estimate"], force=force, what=f"this run (scale {rep['scale']})")
    return rep["estimate"]
