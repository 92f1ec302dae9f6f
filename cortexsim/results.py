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
  of a network run with the spine state at each read-out, and the evoked response to test
  pulses (settings.evoked_*): extra spikes per cell and pulse in the 50 ms after each pulse,
  without the directly activated spikes, i.e. what synapses carry (a circuit stand-in for an
  MEP, not behaviour; :func:`cortexsim.experiment.readouts.evoked_spikes`);
* ``readout_time_d`` (condition, readout);
* ``turnover_readout`` (condition, readout, population): spine turnover between the previous
  read-out and this one as two imaging sessions see it ((gained + lost) / 2 per spine present at
  the previous read-out, per day); NaN at the first read-out;
* ``n_sites`` (condition, population): spine sites on the population's cells (spines present =
  ``spine_density`` x ``n_sites``);
* ``session_rate`` (condition, session, population): rates during each stimulation session;
* ``session_dw`` (condition, session, population): change of mean GB efficacy of present
  synapses in each session (the fast synaptic change);
* ``session_ltp_time`` (condition, session, population): mean time per second that a cell's
  plastic synapses' calcium spent above the GB potentiation threshold in each session (the
  input of the activity drive); NaN for populations without plastic synapses;
* ``session_dopamine`` (condition, session): the session's dopamine DA in [0, 1) (from its
  pulses and/or the release populations' evoked spikes; ``structural.session_dopamine``);
* ``session_da_gate`` / ``session_nmda_excess`` / ``session_drive`` (condition, session,
  population): population means of the dopamine gate of the session drive, the relative excess
  of presynaptic NMDA calcium over the unstimulated reference (nmda / nmda_rest - 1) and the
  increment of the activity drive in each session; NaN for populations without plastic synapses;
* ``session_reference_rate`` (condition, session, population): the unstimulated population
  rates (Hz) the session is counted against (``settings.session_reference``): the network at
  rest with the spine state before the sessions (at the latest read-out before them), or the
  session's own run without its stimulation; its LTP-calcium time and NMDA calcium are the
  references of the activity drive and its rates those of the dopamine release;
* ``baseline_rate`` / ``baseline_ltp_time`` (condition, population): the same at rest with the
  initial spine state (pass 1: the references when no read-out precedes the sessions).
* ``intensity_pct_rmt`` (condition): the sessions' TMS intensity (% RMT) as run (the
  condition's, else its protocol's: :func:`cortexsim.protocols.session_intensity`); NaN without
  TMS (no protocol, or light); ``intensity_source`` (condition): where it came from;
* ``field_macroscopic_vpm`` / ``field_cell_vpm`` (condition): the E-field at the target that
  this intensity gives (macroscopic, V/m: :func:`cortexsim.coupling.macroscopic_field_vpm`) and
  the field acting on the neuron models (:func:`cortexsim.coupling.cell_field_vpm`); 0 for a
  sham protocol (no field reaches the cortex), NaN without TMS.

Sessions and time points a condition lacks are NaN.  Attributes: ``config`` (the full resolved
spec, JSON), ``models`` (every model parameter used, JSON), ``cortexsim_version``, ``seed``,
``experiment``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError

#: every variable in order, with its attributes
_VARIABLES = {
    "spine_density": {"units": "1", "long_name": "occupied fraction of spine sites"},
    "spine_density_rel": {"units": "1", "long_name": "spine density / its value at t=0"},
    "mean_weight": {"units": "1", "long_name": "mean relative weight of present spines"},
    "formed": {"units": "spines", "long_name": "spines formed since previous time"},
    "eliminated": {"units": "spines", "long_name": "spines eliminated since previous time"},
    "rate_readout": {"units": "Hz"},
    "evoked_response": {
        "units": "spikes/cell",
        "long_name": "synaptic response to test pulses: extra spikes per cell "
        "and pulse within settings.evoked_window_s of each pulse, "
        "directly activated spikes not counted (a circuit "
        "stand-in for an MEP, not a behavioural measure)",
    },
    "readout_time_d": {"units": "d"},
    "turnover_readout": {
        "units": "1/d",
        "long_name": "spine turnover (gained + lost) / 2 between "
        "the previous read-out and this one, per "
        "spine present at the previous one, per day",
    },
    "n_sites": {
        "units": "sites",
        "long_name": "spine sites on the population's cells (occupied "
        "or not); spines present = spine_density x n_sites",
    },
    "session_rate": {"units": "Hz"},
    "session_dw": {
        "units": "1",
        "long_name": "change of mean GB efficacy of present synapses during the session",
    },
    "session_ltp_time": {
        "units": "1",
        "long_name": "mean time per second that a cell's "
        "synapses' calcium spent above the GB "
        "potentiation threshold, in the session",
    },
    "session_dopamine": {
        "units": "1",
        "long_name": "dopamine DA = E / (E + e_half) released by the session",
    },
    "session_da_gate": {
        "units": "1",
        "long_name": "mean dopamine gate of the cells' session drive",
    },
    "session_nmda_excess": {
        "units": "1",
        "long_name": "mean relative excess of presynaptic NMDA "
        "calcium over the unstimulated reference "
        "(nmda/nmda_rest - 1), in the session",
    },
    "session_reference_rate": {
        "units": "Hz",
        "long_name": "unstimulated population rate the "
        "session is counted against "
        "(settings.session_reference)",
    },
    "session_drive": {
        "units": "1",
        "long_name": "mean increment of the cells' activity drive in the session",
    },
    "intensity_pct_rmt": {
        "units": "%RMT",
        "long_name": "TMS intensity of the sessions, % of resting motor threshold",
    },
    "intensity_source": {"long_name": "where the sessions' intensity came from"},
    "field_macroscopic_vpm": {
        "units": "V/m",
        "long_name": "macroscopic E-field at the target (0: sham)",
    },
    "field_cell_vpm": {
        "units": "V/m",
        "long_name": "E-field acting on the neuron models (macroscopic x field.micro_scale_factor)",
    },
    "baseline_rate": {"units": "Hz"},
    "baseline_ltp_time": {
        "units": "1",
        "long_name": "the same at rest with the initial spine "
        "state (the activity drive's reference)",
    },
}


#: per-condition variables of the stimulation given (see :func:`stimulation_doses`)
_DOSE_VARIABLES = (
    "intensity_pct_rmt",
    "intensity_source",
    "field_macroscopic_vpm",
    "field_cell_vpm",
)


def stimulation_doses(cfg: dict, models: dict) -> dict:
    """The stimulation each condition of a run was given, from its config and model values.

    Parameters
    ----------
    cfg : dict
        The resolved experiment config (``conditions``).
    models : dict
        Condition -> model name -> parameter values used (``coupling``: the %RMT -> field
        calibration of that condition; the shipped one where absent).

    Returns
    -------
    dict
        Condition -> ``{intensity_pct_rmt, intensity_source, field_macroscopic_vpm,
        field_cell_vpm}`` (NaN where the condition has no TMS).
    """
    from .coupling import cell_field_vpm, macroscopic_field_vpm
    from .protocols import get_protocol, session_intensity

    out = {}
    for c, cond in cfg["conditions"].items():
        nan = {v: np.nan for v in _DOSE_VARIABLES}
        if cond["protocol"] == "none":
            out[c] = nan | {"intensity_source": "no stimulation"}
            continue
        proto = get_protocol(cond["protocol"])
        if cond.get("modality", "tms") == "light":
            out[c] = nan | {"intensity_source": "light (irradiance: opto.light.irradiance)"}
            continue
        pct, source = session_intensity(
            proto, cond["intensity_pct_rmt"], field=f"conditions.{c}.intensity_pct_rmt"
        )
        coupling = models.get(c, {}).get("coupling")  # None: the shipped calibration
        on = 0.0 if proto.sham else 1.0
        out[c] = {
            "intensity_pct_rmt": pct,
            "intensity_source": source
            + ("" if not proto.sham or source.startswith("sham") else " (sham: no field)"),
            "field_macroscopic_vpm": on * float(macroscopic_field_vpm(pct, coupling)),
            "field_cell_vpm": on * float(cell_field_vpm(pct, coupling)),
        }
    return out


class Results:
    """Results of one experiment run: a labelled dataset with its provenance and the judged
    criteria.

    Parameters
    ----------
    data : xarray.Dataset
        Variables over ``condition``, ``population``, ``time_d`` and ``session``; the attributes
        hold the resolved config (JSON), the model parameters used, the cortexsim version and
        the seed.
    criteria : list of dict, optional
        Judged criteria (:func:`cortexsim.criteria.evaluate`).
    """

    def __init__(self, data, criteria=None):
        self.data = data
        self.criteria = criteria or []

    # ----------------------------------------------------------------- build
    @classmethod
    def from_conditions(cls, cfg: dict, datasets: dict, models: dict) -> Results:
        """Join the conditions' Datasets (each with a ``condition`` dimension of length 1, from
        :meth:`cortexsim.experiment.recorder.Recorder.dataset`) in the order of ``datasets``;
        time points and sessions that a condition lacks are NaN.  ``models``: the model
        parameters each condition used (condition -> model name -> values).

        Parameters
        ----------
        cfg : dict
            The resolved config of the run (its criteria are evaluated).
        datasets : dict
            Condition name -> its Dataset.
        models : dict
            Condition -> model name -> parameter values (stored as JSON in the attributes).

        Returns
        -------
        Results
        """
        import xarray as xr

        from . import __version__

        ds = xr.concat(
            list(datasets.values()),
            dim="condition",
            join="outer",
            fill_value=np.nan,
            combine_attrs="drop",
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            ds["spine_density_rel"] = ds.spine_density / ds.spine_density.isel(time_d=0)
        doses = stimulation_doses(cfg, models)
        for var in _DOSE_VARIABLES:
            ds[var] = ("condition", [doses[str(c)][var] for c in ds.condition.values])
        ds = ds[[v for v in _VARIABLES if v in ds] + [v for v in ds if v not in _VARIABLES]]
        for name in ds.data_vars:
            ds[name].attrs.update(_VARIABLES.get(name, {}))
        ds.attrs.update(
            {
                "config": json.dumps(cfg, sort_keys=True, default=str),
                "models": json.dumps(models, sort_keys=True, default=str),
                "cortexsim_version": __version__,
                "seed": int(cfg["experiment"]["seed"]),
                "experiment": cfg["experiment"]["name"],
            }
        )
        res = cls(ds)
        from .criteria import evaluate

        res.criteria = evaluate(ds, cfg.get("criteria", []))
        return res

    # ----------------------------------------------------------------- access
    @property
    def config(self) -> dict:
        """The resolved config the results were run with (from the Dataset's attributes)."""
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
                        time_d=round(t, 6), method="nearest"
                    )
                    if np.isfinite(float(v)):
                        m[f"spine_density_rel.{c}.{p}.{lab}"] = round(float(v), 6)
        return m

    def doses(self) -> dict:
        """The stimulation each condition was given: condition -> ``{intensity_pct_rmt,
        intensity_source, field_macroscopic_vpm, field_cell_vpm}`` (None where not applicable;
        empty for results saved before these variables existed).

        Returns
        -------
        dict
        """
        ds = self.data
        if not all(v in ds for v in _DOSE_VARIABLES):
            return {}
        out = {}
        for c in ds.condition.values:
            row = {v: ds[v].sel(condition=c).item() for v in _DOSE_VARIABLES}
            out[str(c)] = {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in row.items()
            }
        return out

    def summary(self) -> dict:
        """What summary.json holds: the headline metrics, the stimulation of each condition
        (:meth:`doses`) and the judged criteria.

        Returns
        -------
        dict
        """
        return {"metrics": self.metrics(), "stimulation": self.doses(), "criteria": self.criteria}

    # ----------------------------------------------------------------- save
    def save(self, out) -> Path:
        """Write results.nc, summary.json, figures (PNG) and report.md into ``out``.
        Everything is written to a temporary folder first and moved in at the end, so a
        failure leaves no half-written results.

        Parameters
        ----------
        out : str or Path
            The output folder (created if needed; files of the same names are replaced).

        Returns
        -------
        Path
            ``out``.
        """
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

    def to_nwb(self, path, session_start_time=None) -> Path:
        """Write these results as an NWB file (pynwb; ``pip install 'cortexsim[nwb]'``):
        time series per condition, stimulation sessions and pulses, the config, the model
        values with their sources and the code version (layout: :mod:`cortexsim.nwb`).

        Parameters
        ----------
        path : str or Path
            The ``.nwb`` file to write.
        session_start_time : datetime, optional
            Wall-clock time of the timeline's time 0 (default: now, UTC).

        Returns
        -------
        Path

        Raises
        ------
        InputError
            pynwb is not installed, or the file cannot be written.
        """
        from .nwb import to_nwb

        return to_nwb(self, path, session_start_time=session_start_time)

    @classmethod
    def load(cls, path) -> Results:
        """Results written by :meth:`save`: ``results.nc`` and, beside it, the criteria of
        ``summary.json`` (none if it is missing).

        Parameters
        ----------
        path : str or Path
            The output folder or its ``results.nc``.

        Returns
        -------
        Results

        Raises
        ------
        InputError
            No results file at ``path``.
        """
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
