"""The timeline runner: stress days, stimulation sessions and follow-up, across timescales.

An experiment spec (TOML, see ``experiments/``) holds a **timeline** of phases shared by all
**conditions**; a condition switches phases on or off and says which protocol, intensity and
silencing it uses.  Phases:

``baseline`` / ``rest``
    slow phase: the structural core (:mod:`cortexsim.plasticity.structural`) advances the spine
    sites for ``days`` with the stress signal of the condition.
``stress``
    slow phase during which the condition's stress schedule runs (``hours_per_day``).
``stimulation``
    the condition's protocol schedule (e.g. ``aitbs_day``: 10 sessions, 50 min apart).  Every
    session is a **fast phase**: the Brian2 circuit (:class:`~cortexsim.circuit.network.Circuit`)
    is run pulse by pulse with the current spine state fed in (sites on/off, GB efficacy
    ``rho``); the gaps between sessions are slow phases.  A condition without stimulation
    (``protocol = "none"``) spends the same time as a slow phase.

Fast -> slow coupling (operator splitting, all in models/structural.toml ``[activity]``):
* each site's plasticity signal ``plast`` is its Graupner-Brunel efficacy ``rho`` at the end of
  the latest fast phase (potentiated spines stabilise, depressed ones are removed);
* each postsynaptic cell's **activity drive** is the excess, over the resting value measured in
  a baseline fast phase, of the time its synapses' calcium spent above the potentiation
  threshold (per second), times ``ltp_gain``; it decays with ``tau_h`` and raises formation and
  stabilisation of that cell's spines (LTP-driven spinogenesis and spine stabilisation).
Nothing here names a cell type: differences between IT and PT come from coupling thresholds,
intrinsic properties, connectivity and the plasticity rule (see README, "Mechanisms").

Network read-outs (population rates, evoked response) at each read-out time are computed after
the timeline from snapshots of the spine state, with one short compiled circuit.

Results are an :class:`cortexsim.results.Results` (xarray inside, full config attached).
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import InputError, check_choice, check_number
from .params import load_model, read_toml
from .populations import EXCITATORY, POPULATIONS

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
    from .protocols import get_protocol, list_protocols
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
    from .criteria import check
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


def load_experiment(path) -> "Experiment":
    """Read and validate an experiment spec (TOML).  A spec may start from another one:
    ``extends = "aitbs_study.toml"`` (path relative to the spec) takes that spec and lays this
    one's tables over it (tables merge key by key; lists such as the timeline and criteria, and
    plain values, replace)."""
    p = Path(path)
    if not p.is_file() and not p.suffix:
        from .params import experiments_dir
        p = experiments_dir() / f"{path}.toml"
    return Experiment(parse_spec(_read_spec(p), source=str(p)), path=str(p))


def _read_spec(p: Path, _seen=()) -> dict:
    raw = read_toml(p, field="spec")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise InputError(f"{p}: extends", "must be the path of another spec (TOML)")
    bp = (p.parent / base).resolve()
    if bp in _seen or bp == p.resolve():
        raise InputError(f"{p}: extends", f"circular: {bp} extends itself")
    return _merge(_read_spec(bp, _seen + (p.resolve(),)), raw)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------- runner
class Experiment:
    def __init__(self, spec: dict, path: str | None = None):
        self.spec = spec
        self.path = path
        self.name = spec["experiment"]["name"]

    @classmethod
    def from_dict(cls, raw: dict) -> "Experiment":
        return cls(parse_spec(raw))

    def resolved_config(self, seed=None, scale=None, settings=None) -> dict:
        """The spec with seed, scale, the scale's own settings and ``settings`` applied."""
        cfg = copy.deepcopy(self.spec)
        if seed is not None:
            cfg["experiment"]["seed"] = int(check_number("seed", seed, min=0, integer=True))
        if scale is not None:
            cfg["settings"]["scale"] = int(scale) if str(scale).isdigit() else scale
        sc = cfg["settings"]["scale"]
        if isinstance(sc, str):
            check_choice("scale", sc, SCALE_NAMES)
            cfg["settings"].update(cfg["settings"].get("by_scale", {}).get(sc, {}))
        else:
            check_number("scale", sc, min=50, integer=True)
        if settings:
            _check_keys(settings, RUN_SETTINGS, "settings")
            cfg["settings"].update(settings)
            _check_settings(cfg["settings"], "settings")
        return cfg

    def run(self, seed=None, scale=None, progress: bool = True, checkpoint_dir=None,
            workers: int = 1, settings: dict | None = None):
        """Run every condition (``workers`` > 1: conditions in parallel processes); returns
        :class:`cortexsim.results.Results`.  ``checkpoint_dir``: save each condition after
        every phase and resume finished phases on a re-run."""
        cfg = self.resolved_config(seed, scale, settings)
        return _Runner(cfg, progress=progress, checkpoint_dir=checkpoint_dir,
                       workers=workers).run()


def _config_hash(cfg) -> str:
    return hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:12]


class _Progress:
    """A tqdm bar, or (in a worker process) messages to the parent's bars through ``queue``."""

    def __init__(self, total: float, enabled, desc: str):
        self.bar = None
        self.queue = None
        self.desc = desc
        if enabled is True:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="step", leave=True)
        elif enabled:            # a queue: the parent process draws the bar
            self.queue = enabled
            self.queue.put(("open", desc, total, None))

    def update(self, n=1, text=None):
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text)
            self.bar.update(n)
        elif self.queue is not None:
            self.queue.put(("update", self.desc, n, text))

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.queue is not None:
            self.queue.put(("close", self.desc, 0, None))


def _draw_worker_progress(queue):
    """Parent side of the workers' progress: one bar per condition, until a None arrives."""
    from tqdm.auto import tqdm
    bars = {}
    while True:
        msg = queue.get()
        if msg is None:
            break
        kind, desc, n, text = msg
        if kind == "open":
            bars[desc] = tqdm(total=n, desc=desc, unit="step", leave=True, position=len(bars))
        elif desc in bars:
            if text:
                bars[desc].set_postfix_str(text)
            bars[desc].update(n)
            if kind == "close":
                bars[desc].refresh()
    for b in bars.values():
        b.close()


class _Runner:
    def __init__(self, cfg: dict, progress: bool = True, checkpoint_dir=None, workers: int = 1):
        self.cfg = cfg
        self.progress = progress
        self.workers = int(check_number("workers", workers, min=1, integer=True))
        self.settings = cfg["settings"]
        self.seed = cfg["experiment"]["seed"]
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.hash = _config_hash(cfg)
        self._circuit = None
        self._circuit_key = None

    # ----------------------------------------------------------------- circuit cache
    def _get_circuit(self, key: str, trees: dict, duration_s: float):
        """One compiled circuit at a time (Brian2 standalone keeps one device per process); a
        build is identified by the network configuration and its phase length."""
        key = (key, round(float(duration_s), 6))
        if self._circuit_key == key:
            return self._circuit
        from .circuit.network import Circuit
        self._circuit = Circuit(self.settings["scale"], duration_s=duration_s, seed=self.seed,
                                params=trees["circuit"], cell_params=trees["cells"],
                                syn_params=trees["synaptic"])
        self._circuit_key = key
        return self._circuit

    def _trees(self, cond: dict) -> dict:
        ov = dict(self.cfg["overrides"])
        ov.update(cond["overrides"])
        trees = _model_trees(ov)
        _apply_ablations(trees, list(self.cfg["ablations"]) + cond["ablations"])
        return trees

    def _network_key(self, trees) -> str:
        return _config_hash({m: trees[m].values() for m in ("circuit", "cells", "synaptic")})

    # ----------------------------------------------------------------- main
    def run(self):
        from .results import Results
        conds = list(self.cfg["conditions"])
        if self.workers > 1 and len(conds) > 1:
            out, readouts = self._run_parallel(conds)
        else:
            out, readouts = self.run_subset(conds)
        out = {c: out[c] for c in conds}
        return Results.from_runs(self.cfg, out, readouts)

    def _run_parallel(self, conds):
        """One process per condition (Brian2 standalone holds one device per process); the
        longest (stimulated) conditions start first.  Results are identical to a serial run:
        every random stream depends on the seed only."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        cost = {c: self.cfg["conditions"][c]["protocol"] != "none" for c in conds}
        order = sorted(conds, key=lambda c: not cost[c])
        out, readouts = {}, {}
        ctx = mp.get_context("spawn")
        queue = drawer = None
        if self.progress:
            import threading
            manager = ctx.Manager()
            queue = manager.Queue()
            drawer = threading.Thread(target=_draw_worker_progress, args=(queue,), daemon=True)
            drawer.start()
        try:
            with ProcessPoolExecutor(self.workers, mp_context=ctx) as ex:
                futs = {ex.submit(_run_subset_worker, self.cfg, [c], self.checkpoint_dir,
                                  queue): c for c in order}
                for f in as_completed(futs):
                    o, r = f.result()
                    out.update(o)
                    readouts.update(r)
        finally:
            if drawer is not None:
                queue.put(None)
                drawer.join()
                manager.shutdown()
        return out, readouts

    def run_subset(self, conds):
        """All three passes for the conditions ``conds``; returns (records, read-outs)."""
        allc = self.cfg["conditions"]
        trees = {c: self._trees(allc[c]) for c in conds}
        keys = {c: self._network_key(trees[c]) for c in conds}
        # pass 1: resting activity statistics per network configuration (short build)
        self._a0 = {}
        for c in conds:
            if keys[c] not in self._a0:
                circuit = self._short_circuit(keys[c], trees[c])
                self._a0[keys[c]] = self._baseline_stats(circuit, allc[c], trees[c])
        # pass 2: the timelines (session builds), conditions grouped by network configuration
        out = {}
        for c in sorted(conds, key=lambda c: (keys[c], conds.index(c))):
            out[c] = self._run_condition(c, allc[c], trees[c], keys[c])
        # pass 3: network read-outs from the spine snapshots (short build)
        readouts = self._readouts(out, trees, keys)
        return out, readouts

    def _short_circuit(self, key, trees):
        return self._get_circuit(key, trees, self.settings["baseline_fast_s"])

    def _initial_spines(self, n_sites, trees):
        """Every condition starts from the same spine state (paired comparison)."""
        from .plasticity import structural as SP
        return SP.SpineState.initial(n_sites, np.random.default_rng([self.seed, 11]),
                                     params=trees["structural"])

    def _baseline_stats(self, circuit, cond, trees):
        """LTP-calcium time per cell and population rates with the initial spine state."""
        state = self._initial_spines(circuit.n_sites, trees)
        res = circuit.run(None, spines={"on": (state.state > 0).astype(float),
                                        "rho": circuit.initial_rho},
                          run_seed=self.seed * 1000 + 1, overrides=self._thresholds(circuit, cond),
                          results_name=f"res_{os.getpid()}")
        site_post = circuit.conn["ee"]["j"].astype(np.int64)
        a0 = self._ltp_time_per_cell(res, site_post, circuit.N, res.duration_s)
        return a0, {p: res.mean_rate(p) for p in POPULATIONS}

    def _thresholds(self, circuit, cond):
        """Run-time TMS thresholds: as built, or pooled across excitatory cells (ablation)."""
        abl = list(self.cfg["ablations"]) + cond["ablations"]
        if "coupling" not in abl:
            return None
        thr = np.array(circuit.tms_threshold_vpm, dtype=float)
        idx = np.concatenate([np.arange(circuit.slices[p].start, circuit.slices[p].stop)
                              for p in EXCITATORY])
        rng = np.random.default_rng(self.seed + 7)
        thr[idx] = rng.permutation(thr[idx])
        return {"cells.thr_tms": thr}

    def _site_groups(self, circuit):
        """Post cell of every plastic site, and its population index."""
        post = circuit.conn["ee"]["j"].astype(np.int64)
        pop_of_cell = circuit.pop_index
        return post, pop_of_cell[post]

    def _run_condition(self, cname: str, cond: dict, trees: dict, key: str) -> dict:
        from .plasticity import structural as SP
        from .plasticity.stress import StressSchedule, stress_per_step
        from .protocols import get_protocol
        from .coupling import cell_field_vpm

        st = self.settings
        Pst = trees["structural"].values()
        act = Pst["activity"]
        ckpt = self._load_checkpoint(cname)
        proto = get_protocol(cond["protocol"]) if cond["protocol"] != "none" else None
        # the session build: one session (+ tail); without stimulation the short build (its
        # connectivity is the same: drawn from the same seed) gives the site layout
        sess_len = (proto.duration_s if proto is not None else 0.0) + st["session_tail_s"]
        sim_len = _simulated_session_s(proto, sess_len, st["session_sample_s"])
        circuit = self._get_circuit(key, trees, sim_len if proto is not None
                                    else st["baseline_fast_s"])
        thr_override = self._thresholds(circuit, cond)
        site_post, site_pop = self._site_groups(circuit)
        n_sites = site_post.size
        n_cells = circuit.N
        # stress schedule: the condition's stress phases in absolute days
        t = 0.0
        stress_sched = None
        for ph in self.cfg["timeline"]:
            if ph["kind"] == "stress" and cond["stress"]:
                stress_sched = StressSchedule(days=int(round(ph["days"])),
                                              hours_per_day=ph["hours_per_day"], onset_day=t)
            t += self._phase_days(ph, proto)
        a0, base_rates = self._a0[key]
        if ckpt is not None:
            state, rho, drive, _, k_step, done, rec = ckpt
        else:
            state = self._initial_spines(n_sites, trees)
            rho = np.asarray(circuit.initial_rho, dtype=float).copy()
            drive = np.zeros(n_cells)
            k_step, done = 0, 0
            rec = dict(t_d=[], density=[], weight=[], formed=[], eliminated=[], readouts={},
                       session_rates=[], session_dw=[], t_above_p=[], a0=_by_pop(
                           a0, circuit.pop_index), baseline_rates=base_rates)
        prev_on = (state.state > 0).astype(float)
        bar = _Progress(len(self.cfg["timeline"]), self.progress, f"{cname}")
        t_d = 0.0
        if not rec["t_d"]:
            self._record(rec, 0.0, state, site_pop)

        def slow(duration_h, t0_d, record=True):
            nonlocal state, drive, k_step
            remaining = duration_h
            tt = t0_d
            ui = Pst["homeostasis"]["update_interval"]
            while remaining > 1e-9:
                chunk = min(remaining, ui, st["record_every_h"])
                n = max(1, int(math.ceil(chunk / st["slow_dt_h"] - 1e-9)))
                dt = chunk / n
                S = stress_per_step(stress_sched, tt, dt, n, trees["stress"]) \
                    if stress_sched is not None else np.zeros(n)
                hd = SP.homeostatic_drive(state, site_post, None, trees["structural"]) \
                    if Pst["homeostasis"]["gain"] > 0 else 0.0
                # activity drive decays exponentially; use its mean over the chunk
                decay = math.exp(-chunk / act["tau_h"])
                mean_fac = act["tau_h"] / chunk * (1 - decay)
                cell_drive = np.clip(drive * mean_fac, -act["drive_max"], act["drive_max"])
                total = hd + cell_drive[site_post]
                state, cnt = SP.advance(state, rho_plast(), total, S, dt, n, self.seed,
                                        k_step, trees["structural"], st["backend"])
                rec["_formed"] = rec.get("_formed", 0) + cnt["totals"]["formed"]
                rec["_elim"] = rec.get("_elim", 0) + cnt["totals"]["eliminated"]
                k_step += n
                drive = drive * decay
                remaining -= chunk
                tt += chunk / 24.0
                if record:
                    self._record(rec, tt, state, site_pop)
            return tt

        def rho_plast():
            return np.clip(rho, 0.0, 1.0)

        for k, ph in enumerate(self.cfg["timeline"]):
            if k < done:
                t_d += self._phase_days(ph, proto)
                bar.update(1)
                continue
            if ph["kind"] != "stimulation":
                t_d = slow(ph["days"] * 24.0, t_d)
            elif proto is None:
                t_d = slow(self._stim_days(None) * 24.0, t_d, record=False)
                self._record(rec, t_d, state, site_pop)
            else:
                field = cell_field_vpm(cond["intensity_pct_rmt"]
                                       if cond["intensity_pct_rmt"] is not None
                                       else (proto.intensity_pct_rmt or 100.0),
                                       trees["coupling"])
                starts_h = proto.session_starts_s() / 3600.0
                from .circuit.network import Stimulus
                stim = Stimulus.from_protocol(proto, field, offset_s=circuit.slot_s).until(
                    sim_len, circuit.dt_s)
                for s_i in range(proto.n_sessions):
                    # gap before this session (slow)
                    if s_i > 0:
                        gap_h = starts_h[s_i] - starts_h[s_i - 1] - sess_len / 3600.0
                        if gap_h > 0:
                            t_d = slow(gap_h, t_d, record=False)
                    sil = cond["silence"] or None
                    on = (state.state > 0).astype(float)
                    rho = _reset_new_spines(rho, on, prev_on)
                    prev_on = on
                    res = circuit.run(stim, silence=sil, spines={"on": on, "rho": rho},
                                      run_seed=self.seed * 1000 + 10 + s_i,
                                      overrides=thr_override,
                                      results_name=f"res_{os.getpid()}")
                    w_before = _mean_w_by_pop(rho, on, site_pop)
                    rho = np.where(on > 0, rho_after_session(res, sess_len, circuit.gb_params),
                                   rho)
                    rec["session_dw"].append(_mean_w_by_pop(rho, on, site_pop) - w_before)
                    a = self._ltp_time_per_cell(res, site_post, n_cells, res.duration_s)
                    rec["t_above_p"].append(_by_pop(a, circuit.pop_index))
                    # LTP-calcium excess over rest, in units of ltp_ref, integrated over the
                    # session into the cell's activity drive (dD/dt = -D/tau + gain*excess/tau)
                    excess = (a - a0) / act["ltp_ref"]
                    drive = drive + act["ltp_gain"] * excess * (sess_len / 3600.0) \
                        / act["tau_h"]
                    rec["session_rates"].append([res.mean_rate(p) for p in POPULATIONS])
                    t_d += sess_len / 86400.0
                    bar.update(0, f"session {s_i + 1}/{proto.n_sessions}")
                # the rest of the stimulation span (to the end of the last session interval)
                rest_h = self._stim_days(proto) * 24.0 - (starts_h[-1] + sess_len / 3600.0)
                if rest_h > 1e-9:
                    t_d = slow(rest_h, t_d, record=False)
                self._record(rec, t_d, state, site_pop)
            if ph["readout"]:
                on = (state.state > 0).astype(float)
                rho = _reset_new_spines(rho, on, prev_on)
                prev_on = on
                rec["readouts"][ph["readout"]] = dict(
                    t_d=t_d, on=on.astype(np.int8), rho=rho.copy())
            done = k + 1
            self._save_checkpoint(cname, state, rho, drive, k_step, done, rec)
            bar.update(1, ph["label"])
        bar.close()
        rec["n_sites_by_pop"] = np.bincount(site_pop, minlength=len(POPULATIONS))
        rec["protocol"] = proto.to_dict() if proto is not None else None
        rec["trees"] = {m: trees[m].values() for m in MODEL_NAMES}
        rec["thr_override"] = thr_override
        rec["cond"] = cond
        return rec

    @classmethod
    def _phase_days(cls, ph, proto) -> float:
        return cls._stim_days(proto) if ph["kind"] == "stimulation" else ph["days"]

    @staticmethod
    def _stim_days(proto) -> float:
        """Span of the stimulation phase: its whole days (1 day for one accelerated day)."""
        return float(proto.days) if proto is not None else 1.0

    @staticmethod
    def _ltp_time_per_cell(res, site_post, n_cells, duration_s):
        """Mean time per second that a cell's present synapses spent above theta_p."""
        on = res.syn["on"] > 0
        tp = np.asarray(res.syn["t_above_p"], dtype=float)
        num = np.bincount(site_post[on], weights=tp[on], minlength=n_cells)
        den = np.bincount(site_post[on], minlength=n_cells)
        return np.where(den > 0, num / np.maximum(den, 1), 0.0) / duration_s

    def _record(self, rec, t_d, state, site_pop):
        occ = state.state > 0
        n = np.bincount(site_pop, minlength=len(POPULATIONS)).astype(float)
        dens = np.bincount(site_pop, weights=occ, minlength=len(POPULATIONS)) / np.maximum(n, 1)
        wsum = np.bincount(site_pop, weights=state.weight * occ, minlength=len(POPULATIONS))
        cnt = np.bincount(site_pop, weights=occ, minlength=len(POPULATIONS))
        rec["t_d"].append(float(t_d))
        rec["density"].append(dens)
        rec["weight"].append(np.where(cnt > 0, wsum / np.maximum(cnt, 1), np.nan))
        rec["formed"].append(rec.pop("_formed", 0))
        rec["eliminated"].append(rec.pop("_elim", 0))

    # ----------------------------------------------------------------- read-outs
    def _readouts(self, out: dict, trees: dict, keys: dict) -> dict:
        """Population rates and an evoked-response proxy at every read-out of every condition,
        from the stored spine snapshots, with the short compiled circuit."""
        from .coupling import cell_field_vpm
        st = self.settings
        res_all = {}
        bar = _Progress(sum(len(r["readouts"]) for r in out.values()), self.progress,
                        "read-outs" + ("" if len(out) > 1 else f" {next(iter(out), '')}"))
        for cname in sorted(out, key=lambda c: keys[c]):
            rec = out[cname]
            circuit = self._short_circuit(keys[cname], trees[cname])
            pulse_t = round(st["baseline_fast_s"] / 2 / circuit.slot_s) * circuit.slot_s
            field = cell_field_vpm(st["evoked_pct_rmt"], trees[cname]["coupling"])
            for label, snap in rec["readouts"].items():
                sp = {"on": snap["on"].astype(float), "rho": snap["rho"]}
                thr = rec["thr_override"]
                # conditions that share a history share read-outs (every condition's baseline,
                # the stressed ones' end of stress): measured once, also across worker processes
                ident = [keys[cname], circuit.config_hash(), sp["on"], sp["rho"],
                         None if thr is None else thr["cells.thr_tms"], self.seed, field,
                         pulse_t, st["evoked_window_s"]]
                res_all[(cname, label)] = self._shared_readout(ident, functools.partial(
                    self._measure_readout, circuit, sp, thr, pulse_t, field))
                bar.update(1, f"{cname} {label}")
        bar.close()
        return res_all

    def _measure_readout(self, circuit, spines, thr, pulse_t, field) -> dict:
        """Rates without stimulation, and the evoked-response proxy: extra spikes per cell in the
        window after one pulse vs the same window without it (same noise seed)."""
        from .circuit.network import Stimulus
        r0 = circuit.run(None, spines=spines, run_seed=self.seed * 1000 + 500, overrides=thr,
                         results_name=f"res_{os.getpid()}")
        r1 = circuit.run(Stimulus([pulse_t], [field]), spines=spines,
                         run_seed=self.seed * 1000 + 500, overrides=thr,
                         results_name=f"res_{os.getpid()}")
        win = (pulse_t, pulse_t + self.settings["evoked_window_s"])
        evoked = {}
        for p in POPULATIONS:
            s = circuit.slices[p]
            evoked[p] = (_count(r1, s, win) - _count(r0, s, win)) / (s.stop - s.start)
        return dict(rates={p: r0.mean_rate(p) for p in POPULATIONS}, evoked=evoked)

    def _shared_readout(self, ident: list, measure) -> dict:
        """``measure()``, or its stored result for the same identity (checkpoint_dir/readouts)."""
        if self.checkpoint_dir is None:
            return measure()
        from brian2.utils.filelock import FileLock
        h = hashlib.sha1()
        for x in ident:
            h.update(np.ascontiguousarray(x).tobytes() if isinstance(x, np.ndarray)
                     else repr(x).encode())
        d = self.checkpoint_dir / "readouts"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{h.hexdigest()[:16]}.json"
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                return json.loads(path.read_text())
            val = measure()
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(val))
            os.replace(tmp, path)
        return val

    # ----------------------------------------------------------------- checkpoints
    def _ckpt_path(self, cname):
        return self.checkpoint_dir / f"{self.hash}_{cname}.npz" if self.checkpoint_dir else None

    def _save_checkpoint(self, cname, state, rho, drive, k_step, done, rec):
        p = self._ckpt_path(cname)
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp.npz")
        meta = {k: v for k, v in rec.items() if k not in ("readouts",)}
        np.savez(tmp, state=state.state, weight=state.weight, rho=rho, drive=drive,
                 k_step=k_step, done=done,
                 meta=np.frombuffer(_pickle(meta), dtype=np.uint8),
                 readouts=np.frombuffer(_pickle(rec["readouts"]), dtype=np.uint8))
        os.replace(tmp, p)     # atomic: a killed run never leaves a half-written checkpoint

    def _load_checkpoint(self, cname):
        p = self._ckpt_path(cname)
        if p is None or not p.is_file():
            return None
        from .plasticity.structural import SpineState
        import pickle
        z = np.load(p)
        rec = pickle.loads(z["meta"].tobytes())
        rec["readouts"] = pickle.loads(z["readouts"].tobytes())
        return (SpineState(z["state"], z["weight"]), z["rho"], z["drive"], None,
                int(z["k_step"]), int(z["done"]), rec)


def _simulated_session_s(proto, sess_len: float, sample_s) -> float:
    """Length of a session's fast phase: the whole session, or its start -- whole train periods
    (as many as fit in ``sample_s``, at least one), or ``sample_s`` of a train that is longer
    than that (continuous stimulation)."""
    if proto is None or sample_s == "all" or sample_s >= sess_len:
        return sess_len
    per = proto.train_period_s
    if per > sample_s and proto.train_duration_s >= sample_s:
        return float(sample_s)
    return min(sess_len, max(1, math.floor(sample_s / per + 1e-9)) * per)


def rho_after_session(res, sess_len: float, gb_params) -> np.ndarray:
    """GB efficacy of every plastic synapse at the end of a session of ``sess_len`` s whose
    fast phase ``res`` simulated its start: over the rest, the GB mean field with the fractions
    of time each synapse's calcium spent above the thresholds in the simulated part."""
    from .plasticity import synaptic
    rho = np.asarray(res.syn["rho"], dtype=float)
    rest = sess_len - res.duration_s
    if rest <= 1e-9:
        return rho
    return synaptic.advance_fractions(rho, res.syn["t_above_p"] / res.duration_s,
                                      res.syn["t_above_d"] / res.duration_s, rest, gb_params)


def _run_subset_worker(cfg, conds, checkpoint_dir, queue=None):
    return _Runner(cfg, progress=queue or False, checkpoint_dir=checkpoint_dir).run_subset(conds)


def _pickle(obj) -> bytes:
    import pickle
    return pickle.dumps(obj, protocol=4)


def _reset_new_spines(rho, on, prev_on):
    """A spine that formed since the last fast phase starts in the DOWN state (rho = 0): new
    spines are small and weak (Holtmaat et al. 2005; Knott et al. 2006) and must be potentiated
    to stabilise."""
    return np.where((on > 0) & (prev_on == 0), 0.0, rho)


def _count(res, s: slice, win) -> float:
    sel = (res.spike_i >= s.start) & (res.spike_i < s.stop) & (res.spike_t >= win[0]) \
        & (res.spike_t < win[1])
    return float(sel.sum())


def _by_pop(x, pop_index):
    n = np.bincount(pop_index, minlength=len(POPULATIONS)).astype(float)
    return np.bincount(pop_index, weights=x, minlength=len(POPULATIONS)) / np.maximum(n, 1)


def _mean_w_by_pop(rho, on, site_pop):
    """Mean GB efficacy of present synapses per population (NaN where none)."""
    num = np.bincount(site_pop, weights=rho * on, minlength=len(POPULATIONS))
    den = np.bincount(site_pop, weights=on, minlength=len(POPULATIONS))
    return np.where(den > 0, num / np.maximum(den, 1), np.nan)


# --------------------------------------------------------------------------- CLI
def run_cli(spec, scale=None, out=None, seed=None, progress=True, workers=1,
            settings=None) -> dict:
    exp = load_experiment(spec)
    if out is None:
        out = Path("out") / exp.name
    res = exp.run(seed=seed, scale=scale, progress=progress,
                  checkpoint_dir=Path(out) / "checkpoints", workers=workers, settings=settings)
    res.save(out)
    return {"out": str(out), **res.summary()}
