"""The timeline runner (see :mod:`cortexsim.experiment`)."""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import check_number
from ..populations import EXCITATORY, POPULATIONS
from .spec import MODEL_NAMES, _apply_ablations, _model_trees
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
        from ..circuit.network import Circuit
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
        from ..results import Results
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
        from ..plasticity import structural as SP
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
        from ..plasticity import structural as SP
        from ..plasticity.stress import StressSchedule, stress_per_step
        from ..protocols import get_protocol
        from ..coupling import cell_field_vpm

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
                from ..circuit.network import Stimulus
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
        from ..coupling import cell_field_vpm
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
        from ..circuit.network import Stimulus
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
        from ..plasticity.structural import SpineState
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
    from ..plasticity import synaptic
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


