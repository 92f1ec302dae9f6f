"""Results of a made-up run, without any simulation: what the results, report and figure tests
need (variables as :meth:`cortexsim.experiment.recorder.Recorder.dataset` writes them)."""

import numpy as np
import xarray as xr

from cortexsim.params import load_model

POPS = ["IT_L23", "IT_L5", "PT_L5", "PV", "SST"]
TIMELINE = [
    {"kind": "baseline", "days": 1.0, "readout": "baseline"},
    {"kind": "stimulation", "days": 0.0, "readout": None},
    {"kind": "rest", "days": 1.0, "readout": "24h"},
]


def _condition_dataset(name, rng, stimulated):
    npop, nt, ns = len(POPS), 3, 2
    dens = rng.uniform(0.5, 1.0, (npop, nt))
    dens[3:] = np.nan  # interneurons have no spine sites
    sess = rng.uniform(1, 10, (ns, npop)) if stimulated else np.full((ns, npop), np.nan)
    P, T, R, S = "population", "time_d", "readout", "session"
    ds = xr.Dataset(
        {
            "spine_density": ((P, T), dens),
            "rate_readout": ((R, P), rng.uniform(1, 10, (2, npop))),
            "evoked_response": ((R, P), rng.uniform(0, 1, (2, npop))),
            "readout_time_d": ((R,), [1.0, 2.0]),
            "session_rate": ((S, P), sess),
            "session_dw": ((S, P), sess / 100),
            "baseline_rate": ((P,), rng.uniform(1, 10, npop)),
        },
        coords={P: POPS, T: [0.0, 1.0, 2.0], R: ["baseline", "24h"], S: np.arange(ns)},
    )
    return ds.expand_dims(condition=[name])


def synthetic_run(conditions: dict, overrides: dict | None = None):
    """``(cfg, datasets, models)`` for :meth:`cortexsim.results.Results.from_conditions`.

    ``conditions``: name -> condition table of the config (``protocol``, ``intensity_pct_rmt``,
    ``modality``); a condition with a protocol has session numbers.  ``overrides``: condition ->
    ``{dotted coupling path: value}`` applied to that condition's coupling values."""
    rng = np.random.default_rng(0)
    cfg = {
        "experiment": {"name": "synthetic", "seed": 1, "description": ""},
        "settings": {"scale": 100, "session_sample_s": "all"},
        "timeline": TIMELINE,
        "criteria": [],
        "conditions": {
            c: {"protocol": "none", "intensity_pct_rmt": None, "modality": "tms", **cond}
            for c, cond in conditions.items()
        },
    }
    datasets = {
        c: _condition_dataset(c, rng, cond["protocol"] != "none")
        for c, cond in cfg["conditions"].items()
    }
    models = {}
    for c in conditions:
        tree = load_model("coupling")
        for path, v in (overrides or {}).get(c, {}).items():
            tree.set(path, v)
        models[c] = {"coupling": tree.values()}
    return cfg, datasets, models
