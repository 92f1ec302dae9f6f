"""The model's value of a suite entry's observable.

Cell, threshold and synapse observables are deterministic functions of the model trees (one
value, no seed); experiment observables are read from one simulated run per seed.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: rectangular widths (us) of the strength-duration fit: the cTMS widths of D'Ostilio et al. 2016
#: and Peterchev et al. 2013 (30, 60, 120 us), so the model is fitted as the data were
SD_WIDTHS_US = (30, 60, 120)


def _combine(a: float, b: float | None, how: str) -> float:
    if b is None:
        return a
    if how == "ratio":
        return a / b if b != 0 else math.nan
    return a - b


# --------------------------------------------------------------------------- static
def static_value(o: dict, trees: dict) -> float:
    """The model's value of a ``cell``, ``threshold`` or ``synapse`` observable.

    Parameters
    ----------
    o : dict
        The entry's observable.
    trees : dict
        Model name -> ParamTree (:func:`cortexsim.experiment.model_trees`).

    Returns
    -------
    float
        In the observable's unit (``cell``: the quantity's unit; ``threshold``: V/m or us;
        ``synapse``: relative change of strength).
    """
    if o["kind"] == "synapse":
        return synapse_change(o, trees["synaptic"])
    f = _cell_value if o["kind"] == "cell" else _threshold_value
    a = f(o, o["population"], trees)
    b = f(o, o["other_population"], trees) if o.get("other_population") else None
    return _combine(a, b, o.get("combine", "difference"))


def _cell_value(o: dict, pop: str, trees: dict) -> float:
    from ..circuit.characterize import characterize
    from ..populations import population_table

    cell = population_table(trees["circuit"])[pop].cell
    v = characterize(cell, params=trees["cells"])[o["quantity"]]
    if v is None:  # no resonance peak: a low-pass cell
        return 0.0
    return float(v)


def _threshold_value(o: dict, pop: str, trees: dict) -> float:
    from ..coupling import fit_sd_time_constant, strength_duration, threshold_vpm
    from ..populations import population_table

    ct = population_table(trees["circuit"])[pop].coupling
    if o["quantity"] == "threshold_vpm":
        return float(
            threshold_vpm(
                ct,
                o.get("waveform", "biphasic"),
                o.get("angle_deg", 0.0),
                o.get("pulse_width_us"),
                params=trees["coupling"],
            )
        )
    th = strength_duration(ct, SD_WIDTHS_US, trees["coupling"])
    return fit_sd_time_constant(SD_WIDTHS_US, th)[1]


def synapse_times(o: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pre- and postsynaptic spike times (s) of a ``synapse`` observable's protocol.

    ``pairs``: ``n_pairs`` pre spikes at ``freq_hz``, each followed by a post spike
    ``delta_t_ms`` later (negative: before).  ``train``: ``n_pulses`` pre spikes at ``freq_hz``.
    ``theta_burst``: ``n_bursts`` bursts at ``burst_hz`` of ``pulses_per_burst`` pre spikes at
    ``intra_hz``.  With ``post = true`` every pre spike of a train or burst is followed by a
    post spike ``delta_t_ms`` later.

    Parameters
    ----------
    o : dict
        The observable (``protocol`` and its numbers, as above).

    Returns
    -------
    pre, post : ndarray
        Spike times (s), the first at 0.1 s.
    """
    from ..plasticity.synaptic import pairing_protocol

    t0 = 0.1
    if o["protocol"] == "pairs":
        return pairing_protocol(o["delta_t_ms"] * 1e-3, o["n_pairs"], o["freq_hz"], t0=t0)
    if o["protocol"] == "train":
        pre = t0 + np.arange(o["n_pulses"]) / o["freq_hz"]
    else:
        burst = np.arange(o["pulses_per_burst"]) / o["intra_hz"]
        starts = t0 + np.arange(o["n_bursts"]) / o["burst_hz"]
        pre = (starts[:, None] + burst[None, :]).ravel()
    post = pre + o["delta_t_ms"] * 1e-3 if o.get("post") else np.zeros(0)
    return pre, post


def synapse_change(o: dict, tree) -> float:
    """Relative change of synaptic strength of a ``synapse`` observable, with the model's
    synaptic parameters at the observable's extracellular calcium ``ca_ext_mM``
    (:func:`cortexsim.plasticity.synaptic.protocol_strength_change`).

    Parameters
    ----------
    o : dict
        The observable (its protocol, :func:`synapse_times`, and ``ca_ext_mM``).
    tree : ParamTree
        The model's synaptic parameters (not changed).

    Returns
    -------
    float
        Relative change (e.g. 0.3 = +30 %).
    """
    from ..plasticity.synaptic import protocol_strength_change
    import copy

    tree = copy.deepcopy(tree)
    tree.set("extracellular.ca", float(o["ca_ext_mM"]))
    pre, post = synapse_times(o)
    return protocol_strength_change(pre, post, tree)


# --------------------------------------------------------------------------- experiments
def experiment_value(o: dict, ds) -> float:
    """The value of an ``experiment`` observable in one run's results.

    Parameters
    ----------
    o : dict
        The entry's observable.
    ds : xarray.Dataset
        The run's results (:attr:`cortexsim.results.Results.data`).

    Returns
    -------
    float
        NaN where the run did not measure it.
    """
    a = _cond_value(o, ds, o["condition"], o.get("population"))
    if o.get("other_condition"):
        a -= _cond_value(o, ds, o["other_condition"], o.get("population"))
    if not o.get("other_population"):
        return float(a)
    b = _cond_value(o, ds, o["condition"], o["other_population"])
    if o.get("other_condition"):
        b -= _cond_value(o, ds, o["other_condition"], o["other_population"])
    return _combine(float(a), float(b), o.get("combine", "difference"))


def _cond_value(o: dict, ds, cond: str, pop) -> float:
    v = _at_readout(o, ds, cond, pop, o.get("readout"))
    if o.get("other_readout"):
        v -= _at_readout(o, ds, cond, pop, o["other_readout"])
    return v


def _at_readout(o: dict, ds, cond: str, pop, readout) -> float:
    from ..criteria import value_at

    var = o["var"]
    if var == "session_dw_sum":
        da = ds["session_dw"].sel(condition=cond, population=pop)
        return float(da.sum("session", skipna=True)) if np.isfinite(da).any() else math.nan
    if var == "turnover_per_day":
        return turnover_per_day(ds, cond, readout, o.get("window_d", 2.0))
    if var not in ds:  # a result of older code that lacks the variable
        return math.nan
    return value_at(ds, var, cond, readout, pop)


def turnover_per_day(ds, cond: str, readout: str, window_d: float) -> float:
    """Spine turnover (formed + eliminated) / 2 per spine present per day, over the
    ``window_d`` days up to the read-out, over every population with spine sites (the
    results count formed and eliminated spines over all of them).

    Parameters
    ----------
    ds : xarray.Dataset
        Results (``results.nc``).
    cond : str
        Condition.
    readout : str
        Read-out label (the window ends at its time).
    window_d : float
        Window (days).

    Returns
    -------
    float
        Fraction of spines per day (e.g. 0.02 = 2 %/day); NaN where not measured.
    """
    if "n_sites" not in ds:
        return math.nan
    t_r = float(ds.readout_time_d.sel(condition=cond, readout=readout))
    c = ds.sel(condition=cond)
    present = (c.spine_density * c.n_sites).sum("population", skipna=True)
    t = c.time_d.values
    dt = np.diff(t, prepend=t[0])  # each point counts since the previous one
    sel = (t > t_r - window_d + 1e-9) & (t <= t_r + 1e-9) & (dt > 0)
    if not sel.any():
        return math.nan
    changes = float((c.formed.values[sel] + c.eliminated.values[sel]).sum()) / 2
    days = float(dt[sel].sum())
    mean_present = float(present.values[sel].mean())
    return changes / mean_present / days if mean_present > 0 else math.nan


@functools.lru_cache(maxsize=8)
def _cached_trees(key: str):
    import json

    from ..experiment import model_trees

    d = json.loads(key)
    return model_trees(d["overrides"], d["ablations"])


def trees_for(model) -> dict:
    """Model trees of a :class:`~cortexsim.validation.model.Model` (cached per model).

    Parameters
    ----------
    model : Model
        Its overrides and ablations are applied.

    Returns
    -------
    dict
        Model name -> ParamTree (:func:`cortexsim.experiment.spec.model_trees`).
    """
    import json

    return _cached_trees(
        json.dumps(
            {"overrides": model.overrides, "ablations": model.ablations},
            sort_keys=True,
            default=str,
        )
    )
