"""Export of a run's results to NWB (Neurodata Without Borders, via pynwb), so simulated
spine densities and rates can sit beside recordings in the field's data standard.

Layout of the file (one file per experiment run; NWB holds one session per file, and the
conditions of a run share their seed, circuit, timeline and baseline, so they are one simulated
session here, each condition in its own processing module):

``processing/condition_<name>``
    one :class:`pynwb.TimeSeries` per result variable with a time axis (see
    :mod:`cortexsim.results`) and population, named ``<variable>_<population>`` (``<variable>``
    without a population axis): ``time_d`` variables (spine densities, mean weights, spines
    formed and eliminated) on the structural trace's times; ``readout`` variables (population
    rates and evoked response) on the read-out times; ``session`` variables (rates, efficacy
    change, dopamine... during each session) on the session start times.  Times in s from the
    start of the timeline (time 0 = ``session_start_time``); time points without a value (NaN:
    a time point the condition lacks, a population without spine sites) are left out, and the
    rows kept are named in ``comments``.  One series per population keeps time the first and
    longest axis (nwbinspector's data-orientation check) even with few read-outs or sessions.
``processing/experiment/conditions``
    a table with one row per condition: its spec (stress, protocol, modality, silenced
    populations) and every per-condition variable without a time axis (``(condition,)``,
    ``(condition, population)``, e.g. ``baseline_rate``, ``n_sites``).
``intervals/stimulation_sessions``
    every stimulation session of every condition (start, stop = start + pulses + tail,
    condition, protocol, sham, pulses, the part simulated pulse by pulse).
``stimulus/pulses_<condition>``
    every pulse of the condition's schedule (timestamps; data: relative amplitude, 0 for sham).
``scratch``
    ``config`` (the resolved spec, JSON), ``models`` (every model value each condition used,
    with the unit and source of the model file it comes from, JSON), ``provenance`` (cortexsim
    version, seed, experiment, the results file's variables).

Spikes are not part of results.nc, so none are exported.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .plan import SECONDS_PER_DAY, condition_plans

#: age given to the simulated subject (NWB requires one): adult, at least 8 weeks (ISO 8601
#: open range), the age of the mice the model's parameters come from
SUBJECT_AGE = "P56D/"

#: the message when pynwb is missing
INSTALL_HINT = "NWB export needs pynwb: pip install 'cortexsim[nwb]'"


def _pynwb():
    try:
        import pynwb
    except ImportError:
        raise InputError("--nwb", INSTALL_HINT) from None
    return pynwb


def _flatten(tree, prefix: str = "") -> dict:
    """Nested dict -> {dotted path: leaf}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def model_values_with_sources(models: dict) -> dict:
    """Every model value each condition used, with the unit and source that the model files
    give for it.

    Parameters
    ----------
    models : dict
        Condition -> model name -> nested values (the ``models`` attribute of results.nc).

    Returns
    -------
    dict
        Condition -> ``"<model>.<path>"`` -> ``{"value", "unit", "source"}``; unit and source
        are those of the model files installed now (None for settings without unit, or paths
        the files lack).
    """
    from .params import is_param, load_model

    trees: dict = {}
    out = {}
    for cname, by_model in models.items():
        rows = {}
        for model, values in by_model.items():
            if model not in trees:
                try:
                    trees[model] = load_model(model)
                except InputError:
                    trees[model] = None
            for path, v in _flatten(values).items():
                node = None
                if trees[model] is not None and trees[model].has(path):
                    node = trees[model]._node(path)
                meta = node if is_param(node) else {}
                rows[f"{model}.{path}"] = {
                    "value": v,
                    "unit": meta.get("unit"),
                    "source": meta.get("source"),
                }
        out[cname] = rows
    return out


def _series(ds, cname: str, var: str, plan) -> list[tuple]:
    """The time series of variable ``var`` of condition ``cname``: ``(name, timestamps_s,
    data, comments)`` for each population (name ``<var>_<population>``) or one without a
    population axis (name ``<var>``); empty if it has no time axis, or none of its time
    points is this condition's."""
    da = ds[var].sel(condition=cname)
    if "time_d" in da.dims:
        t, axis = ds.time_d.values * SECONDS_PER_DAY, "time_d"
    elif "readout" in da.dims and var != "readout_time_d":
        t, axis = ds.readout_time_d.sel(condition=cname).values * SECONDS_PER_DAY, "readout"
    elif "session" in da.dims and plan.session_starts_s.size:
        da = da.isel(session=slice(0, plan.session_starts_s.size))
        t, axis = plan.session_starts_s, "session"
    else:
        return []
    pops = [str(p) for p in ds.population.values] if "population" in da.dims else [None]
    out = []
    for pop in pops:
        x = (da.sel(population=pop) if pop is not None else da).transpose(axis).values
        x = x.astype(float)
        keep = np.isfinite(t) & ~np.isnan(x)
        if not keep.any():
            continue
        labels = ", ".join(map(str, da[axis].values[keep]))
        out.append(
            (
                var if pop is None else f"{var}_{pop}",
                t[keep],
                x[keep],
                (f"population {pop}; " if pop else "") + f"{axis}: {labels}",
            )
        )
    return out


def _conditions_table(ds, plans: dict):
    """One row per condition: its spec and its variables without a time axis."""
    from hdmf.common import DynamicTable

    static = [
        v
        for v in ds.data_vars
        if set(ds[v].dims) <= {"condition", "population"} and "condition" in ds[v].dims
    ]
    table = DynamicTable(
        name="conditions",
        description="the conditions of the run: spec and "
        "per-condition results without a time axis (population columns in "
        "the order of the population coordinate: "
        + ", ".join(map(str, ds.population.values))
        + ")",
    )
    spec_cols = {
        "stress": "chronic stress on",
        "protocol": "stimulation protocol ('none')",
        "modality": "tms or light",
        "silence": "populations silenced during sessions (comma-separated)",
    }
    for col, desc in spec_cols.items():
        table.add_column(col, desc)
    for v in static:
        attrs = ds[v].attrs
        desc = f"{attrs.get('long_name', v)} [{attrs.get('units', '-')}]" + (
            " (one value per population)" if "population" in ds[v].dims else ""
        )
        table.add_column(v, desc)
    for cname, plan in plans.items():
        c = plan.cond
        row = {
            "stress": bool(c["stress"]),
            "protocol": str(c["protocol"]),
            "modality": plan.modality,
            "silence": ",".join(c["silence"]) or "none",
        }
        for v in static:
            x = ds[v].sel(condition=cname).values
            row[v] = x.item() if x.ndim == 0 else x.astype(float)
        table.add_row(**row)
    return table


def _sessions_table(pynwb, plans: dict):
    table = pynwb.epoch.TimeIntervals(
        name="stimulation_sessions",
        description="stimulation sessions of every condition (stop: last pulse + "
        "settings.session_tail_s)",
    )
    cols = {
        "condition": "condition",
        "session": "session number (1-based)",
        "protocol": "protocol name",
        "sham": "sham protocol (no field or light)",
        "n_pulses": "pulses in the session",
        "modality": "tms or light",
        "simulated_s": "seconds of the session simulated pulse by pulse (the rest carried "
        "by the Graupner-Brunel mean field)",
    }
    for col, desc in cols.items():
        table.add_column(col, desc)
    rows = sorted(
        (t, cname, k) for cname, pl in plans.items() for k, t in enumerate(pl.session_starts_s)
    )
    for t, cname, k in rows:
        pl = plans[cname]
        table.add_row(
            start_time=float(t),
            stop_time=float(t + pl.session_len_s),
            condition=cname,
            session=k + 1,
            protocol=pl.protocol.name,
            sham=bool(pl.protocol.sham),
            n_pulses=int(pl.protocol.n_pulses),
            modality=pl.modality,
            simulated_s=float(pl.simulated_s),
        )
    return table if rows else None


def to_nwb(results, path, session_start_time: _dt.datetime | None = None) -> Path:
    """Write ``results`` to an NWB file (layout: module docstring).

    Parameters
    ----------
    results : cortexsim.results.Results
        A run's results (``Results.load`` of results.nc, or fresh from a run).
    path : str or Path
        The NWB file to write (``.nwb``; replaced if it exists).
    session_start_time : datetime, optional
        Wall-clock time given to time 0 of the timeline (timezone-aware; default: now, UTC).
        Simulated time has no date; every timestamp is relative to this.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        pynwb is not installed (``pip install 'cortexsim[nwb]'``), or ``path`` is a folder.
    StorageError
        The file cannot be written there (disk full, permission denied...); ``path`` is left
        as it was.
    """
    pynwb = _pynwb()
    from pynwb.file import Subject

    ds = results.data
    cfg = json.loads(ds.attrs["config"])
    models = json.loads(ds.attrs.get("models", "{}"))
    plans = condition_plans(cfg)
    name, seed = str(ds.attrs.get("experiment", cfg["experiment"]["name"])), int(ds.attrs["seed"])
    version = str(ds.attrs.get("cortexsim_version", "unknown"))
    start = session_start_time or _dt.datetime.now(_dt.UTC)
    ident = hashlib.sha256(
        (ds.attrs["config"] + ds.attrs.get("models", "") + version).encode()
    ).hexdigest()
    nwb = pynwb.NWBFile(
        session_description=f"cortexsim simulation of experiment {name!r}, seed {seed}: "
        f"{len(plans)} conditions, one processing module each",
        identifier=f"cortexsim-{name}-seed{seed}-{ident[:16]}",
        session_start_time=start,
        experiment_description=cfg["experiment"].get("description") or name,
        session_id=f"{name}-seed{seed}",
        source_script=f"cortexsim {version} (Results.to_nwb)",
        source_script_file_name="cortexsim/nwb.py",
        keywords=[
            "simulation",
            "transcranial magnetic stimulation",
            "dendritic spines",
            "prefrontal cortex",
        ],
        notes="Simulated with cortexsim; time 0 is the start of the simulated timeline. The "
        "resolved spec, every model value with its source, and the code version are in "
        "scratch (config, models, provenance).",
    )
    for cname, plan in plans.items():
        mod = nwb.create_processing_module(
            name=f"condition_{cname}",
            description=f"condition {cname!r}: "
            + json.dumps(plan.cond, sort_keys=True, default=str),
        )
        for var in ds.data_vars:
            attrs = ds[var].attrs
            for ts_name, t, data, comments in _series(ds, cname, var, plan):
                mod.add(
                    pynwb.TimeSeries(
                        name=ts_name,
                        data=data,
                        timestamps=t,
                        unit=str(attrs.get("units", "n.a.")),
                        description=str(attrs.get("long_name", var)),
                        comments=comments,
                    )
                )
        times, session, amp = plan.pulses()
        if times.size:
            nwb.add_stimulus(
                pynwb.TimeSeries(
                    name=f"pulses_{cname}",
                    data=amp,
                    timestamps=times,
                    unit="n.a.",
                    description=f"pulses of condition {cname!r} ({plan.protocol.name}, "
                    f"{plan.modality}): relative amplitude, 0 for sham",
                    comments=f"intensity {plan.intensity_pct_rmt} % RMT"
                    if plan.modality == "tms"
                    else "light pulses (irradiance: opto.light.irradiance)",
                )
            )
    nwb.subject = Subject(
        subject_id=f"simulated-circuit-seed{seed}",
        species="Mus musculus",
        sex="U",
        age=SUBJECT_AGE,
        description="not an animal: a simulated adult mouse prefrontal "
        "circuit (cortexsim; network drawn from the seed; cell and synapse parameters from "
        "adult mouse cortex, see scratch/models)",
    )
    exp_mod = nwb.create_processing_module(
        name="experiment", description="the conditions of the run"
    )
    exp_mod.add(_conditions_table(ds, plans))
    sessions = _sessions_table(pynwb, plans)
    if sessions is not None:
        nwb.add_time_intervals(sessions)
    nwb.add_scratch(
        json.dumps(cfg, sort_keys=True),
        name="config",
        description="the resolved experiment spec (JSON)",
    )
    nwb.add_scratch(
        json.dumps(model_values_with_sources(models), sort_keys=True, default=str),
        name="models",
        description="condition -> '<model>.<path>' -> value used, "
        "unit and source (from the model files installed at export) (JSON)",
    )
    nwb.add_scratch(
        json.dumps(
            {
                "cortexsim_version": version,
                "seed": seed,
                "experiment": name,
                "variables": list(map(str, ds.data_vars)),
            }
        ),
        name="provenance",
        description="code version, seed and experiment (JSON)",
    )
    path = Path(path)
    if path.is_dir():
        raise InputError(
            "--out", f"{path} is a folder: give the NWB file to write (e.g. results.nwb)"
        )
    _write_atomically(pynwb, nwb, path)
    return path


def _write_atomically(pynwb, nwb, path: Path) -> None:
    """Write ``nwb`` to a temporary file beside ``path``, then move it into place: a failed or
    interrupted export leaves ``path`` as it was and no partial file.  An operating-system
    error is a :class:`~cortexsim.errors.StorageError` naming ``path`` (exit status 74)."""
    import os
    import tempfile
    import warnings

    from .errors import StorageError

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)  # HDF5 creates the file itself
        with warnings.catch_warnings():  # the temporary name does not end in .nwb
            warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
            with pynwb.NWBHDF5IO(tmp, "w") as io:
                io.write(nwb)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(exc.errno, exc.strerror or str(exc).splitlines()[0], path) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def export_cli(out, nwb_path=None) -> dict:
    """``cortexsim export OUT --nwb``: write ``OUT/results.nc`` as NWB.

    Parameters
    ----------
    out : str or Path
        A run's output folder (or its results.nc).
    nwb_path : str or Path, optional
        The NWB file (default ``OUT/results.nwb``).

    Returns
    -------
    dict
        ``{"nwb": path}``.

    Raises
    ------
    InputError
        No results.nc there, a file that is not a cortexsim results file, ``nwb_path`` the
        results file itself or a folder, or pynwb missing.
    StorageError
        The file cannot be written (exit status 74).
    """
    from .errors import StorageError
    from .results import Results

    _pynwb()
    p = Path(out)
    nc = p / "results.nc" if p.is_dir() or not p.suffix else p
    if not nc.is_file():
        raise InputError(
            "OUT", f"no results file {nc} (give a run's output folder, which holds results.nc)"
        )
    target = Path(nwb_path) if nwb_path is not None else nc.parent / "results.nwb"
    if target.exists() and target.resolve() == nc.resolve():
        raise InputError(
            "--out",
            f"{target} is the results file being exported: give "
            "another file (default OUT/results.nwb)",
        )
    try:
        res = Results.load(nc)
    except OSError as exc:
        if exc.errno is not None:  # permission denied, I/O error...: exit 74
            raise StorageError.from_oserror(exc, nc, "reading") from exc
        raise InputError(
            "OUT",
            f"{nc} is not a readable netCDF file (truncated or another "
            "format): give a run's output folder, which holds results.nc",
        ) from None
    except Exception:  # noqa: BLE001  (scipy/h5py/xarray raise many kinds on a bad file)
        raise InputError(
            "OUT",
            f"{nc} is not a readable netCDF file (truncated or another "
            "format): give a run's output folder, which holds results.nc",
        ) from None
    missing = [k for k in ("config", "seed") if k not in res.data.attrs]
    if missing:
        raise InputError(
            "OUT",
            f"{nc} is not a cortexsim results file (results.nc of "
            f"`cortexsim run`): it lacks the attribute(s) {', '.join(missing)}",
        )
    return {"nwb": str(res.to_nwb(target))}
