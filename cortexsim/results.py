"""Labelled results with provenance: an xarray Dataset, saved as results.nc + summary.json +
figures + report.md.

Variables (dims):
* ``spine_density`` (condition, population, time_d): occupied fraction of spine sites
  (nascent + stable); NaN for populations without structural sites (interneurons);
* ``spine_density_rel``: the same relative to its value at time 0;
* ``mean_weight`` (condition, population, time_d): mean relative structural weight of present
  spines;
* ``formed`` / ``eliminated`` (condition, time_d): spines formed / eliminated since the previous
  time point (all populations);
* ``rate_readout`` / ``evoked_response`` (condition, readout, population): population rates (Hz)
  of a network run with the spine state at each read-out, and the evoked-response proxy (extra
  spikes per cell in 50 ms after one standard pulse: a circuit proxy, not behaviour);
* ``readout_time_d`` (condition, readout);
* ``session_rate`` (condition, session, population): rates during each stimulation session;
* ``session_dw`` (condition, session, population): change of mean GB efficacy of present
  synapses in each session (the fast synaptic change);
* ``baseline_rate`` (condition, population).
Attributes: ``config`` (the full resolved spec, JSON), ``models`` (every model parameter used,
JSON), ``cortexsim_version``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .populations import POPULATIONS


def _round_t(t):
    return np.round(np.asarray(t, dtype=float), 6)


class Results:
    def __init__(self, data, criteria=None):
        self.data = data
        self.criteria = criteria or []

    # ----------------------------------------------------------------- build
    @classmethod
    def from_runs(cls, cfg: dict, out: dict, readouts: dict) -> "Results":
        import xarray as xr
        from . import __version__
        conds = list(out)
        times = np.unique(np.concatenate([_round_t(out[c]["t_d"]) for c in conds]))
        npop = len(POPULATIONS)
        dens = np.full((len(conds), npop, times.size), np.nan)
        wgt = np.full_like(dens, np.nan)
        formed = np.full((len(conds), times.size), np.nan)
        elim = np.full_like(formed, np.nan)
        for ci, c in enumerate(conds):
            r = out[c]
            idx = np.searchsorted(times, _round_t(r["t_d"]))
            has = r["n_sites_by_pop"] > 0
            d = np.asarray(r["density"]).T
            w = np.asarray(r["weight"]).T
            d[~has] = np.nan
            w[~has] = np.nan
            dens[ci][:, idx] = d
            wgt[ci][:, idx] = w
            formed[ci, idx] = r["formed"]
            elim[ci, idx] = r["eliminated"]
        labels = []
        for ph in cfg["timeline"]:
            if ph["readout"]:
                labels.append(ph["readout"])
        ro_rate = np.full((len(conds), len(labels), npop), np.nan)
        ro_ev = np.full_like(ro_rate, np.nan)
        ro_t = np.full((len(conds), len(labels)), np.nan)
        for ci, c in enumerate(conds):
            for li, lab in enumerate(labels):
                if (c, lab) in readouts:
                    rr = readouts[(c, lab)]
                    ro_rate[ci, li] = [rr["rates"][p] for p in POPULATIONS]
                    ro_ev[ci, li] = [rr["evoked"][p] for p in POPULATIONS]
                if lab in out[c]["readouts"]:
                    ro_t[ci, li] = out[c]["readouts"][lab]["t_d"]
        ns = max([len(out[c]["session_rates"]) for c in conds] + [0])
        s_rate = np.full((len(conds), ns, npop), np.nan)
        s_dw = np.full_like(s_rate, np.nan)
        for ci, c in enumerate(conds):
            k = len(out[c]["session_rates"])
            if k:
                s_rate[ci, :k] = np.asarray(out[c]["session_rates"])
                s_dw[ci, :k] = np.asarray(out[c]["session_dw"])
        base = np.array([[out[c]["baseline_rates"][p] for p in POPULATIONS] for c in conds])
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = dens / dens[:, :, :1]
        ds = xr.Dataset(
            {
                "spine_density": (("condition", "population", "time_d"), dens,
                                  {"units": "1", "long_name": "occupied fraction of spine sites"}),
                "spine_density_rel": (("condition", "population", "time_d"), rel,
                                      {"units": "1", "long_name": "spine density / its value at t=0"}),
                "mean_weight": (("condition", "population", "time_d"), wgt,
                                {"units": "1", "long_name": "mean relative weight of present spines"}),
                "formed": (("condition", "time_d"), formed,
                           {"units": "spines", "long_name": "spines formed since previous time"}),
                "eliminated": (("condition", "time_d"), elim,
                               {"units": "spines", "long_name": "spines eliminated since previous time"}),
                "rate_readout": (("condition", "readout", "population"), ro_rate, {"units": "Hz"}),
                "evoked_response": (("condition", "readout", "population"), ro_ev,
                                    {"units": "spikes/cell",
                                     "long_name": "evoked-response proxy: extra spikes per cell "
                                                  "within settings.evoked_window_s of one standard pulse (a circuit "
                                                  "proxy, not a behavioural measure)"}),
                "readout_time_d": (("condition", "readout"), ro_t, {"units": "d"}),
                "session_rate": (("condition", "session", "population"), s_rate, {"units": "Hz"}),
                "session_dw": (("condition", "session", "population"), s_dw,
                               {"units": "1", "long_name": "change of mean GB efficacy of present "
                                                           "synapses during the session"}),
                "baseline_rate": (("condition", "population"), base, {"units": "Hz"}),
            },
            coords={"condition": conds, "population": list(POPULATIONS), "time_d": times,
                    "readout": labels, "session": np.arange(1, ns + 1)},
            attrs={"config": json.dumps(cfg, sort_keys=True, default=str),
                   "models": json.dumps({c: out[c]["trees"] for c in conds}, sort_keys=True,
                                        default=str),
                   "cortexsim_version": __version__,
                   "seed": int(cfg["experiment"]["seed"]),
                   "experiment": cfg["experiment"]["name"]},
        )
        res = cls(ds)
        from .criteria import evaluate
        res.criteria = evaluate(ds, cfg.get("criteria", []))
        return res

    # ----------------------------------------------------------------- access
    @property
    def config(self) -> dict:
        return json.loads(self.data.attrs["config"])

    def metrics(self) -> dict:
        """Headline numbers: relative spine density at every read-out per condition and
        excitatory population."""
        ds = self.data
        m = {}
        for c in ds.condition.values:
            for lab in ds.readout.values:
                t = float(ds.readout_time_d.sel(condition=c, readout=lab))
                if not np.isfinite(t):
                    continue
                for p in ds.population.values:
                    v = ds.spine_density_rel.sel(condition=c, population=p).sel(
                        time_d=round(t, 6), method="nearest")
                    if np.isfinite(float(v)):
                        m[f"spine_density_rel.{c}.{p}.{lab}"] = round(float(v), 6)
        return m

    def summary(self) -> dict:
        return {"metrics": self.metrics(), "criteria": self.criteria}

    # ----------------------------------------------------------------- save
    def save(self, out) -> Path:
        """Write results.nc, summary.json, figures (PNG) and report.md into ``out``.
        Everything is written to a temporary folder first and moved in at the end, so a
        failure leaves no half-written results."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial_", dir=out))
        try:
            self.data.to_netcdf(tmp / "results.nc")
            with open(tmp / "summary.json", "w") as fh:
                json.dump(self.summary(), fh, indent=2, default=float)
            from . import plots
            figs = plots.all_figures(self.data, tmp, json.loads(self.data.attrs["config"]))
            from .report import write_report
            write_report(self, tmp / "report.md", figs)
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    @classmethod
    def load(cls, path) -> "Results":
        import xarray as xr
        p = Path(path)
        nc = p / "results.nc" if p.is_dir() else p
        if not nc.is_file():
            raise InputError("results", f"file not found: {nc}")
        ds = xr.load_dataset(nc)
        crit = []
        sj = nc.parent / "summary.json"
        if sj.is_file():
            crit = json.loads(sj.read_text()).get("criteria", [])
        return cls(ds, crit)
