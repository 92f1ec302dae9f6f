"""report.md: the experiment's numbers beside its criteria, with the figures."""

from __future__ import annotations

import json

import numpy as np


def _table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def fitted_or_predicted(fitted_to: list) -> str:
    """``"predicted"``, or ``"fitted (<what>; ...)"`` for a criterion's ``fitted_to``
    (:func:`cortexsim.validation.model.criteria_provenance`).

    Parameters
    ----------
    fitted_to : list of str

    Returns
    -------
    str
    """
    return f"fitted ({'; '.join(fitted_to)})" if fitted_to else "predicted"


def write_report(res, path, figures) -> None:
    """Write ``report.md``: the experiment, its criteria (pass/fail/not applicable), a table per
    stimulated condition and the figures.

    Parameters
    ----------
    res : Results
        The run's results.
    path : str or Path
        Output file.
    figures : list of str
        Figure file names (relative to the report's folder).
    """
    ds = res.data
    cfg = json.loads(ds.attrs["config"])
    L = [
        f"# {cfg['experiment']['name']}",
        "",
        cfg["experiment"].get("description", ""),
        "",
        f"Seed {cfg['experiment']['seed']}, scale {cfg['settings']['scale']}, "
        f"cortexsim {ds.attrs.get('cortexsim_version')}. " + _sessions_line(cfg["settings"]),
        "",
    ]
    L += _stimulation_section(res.doses(), cfg)
    L += ["## Criteria (judged by the simulation's own numbers)", ""]
    if res.criteria:
        result = {"pass": "PASS", "fail": "FAIL"}
        known = all("fitted_to" in c for c in res.criteria)
        if known:
            L += [
                "Fitted: the model's values were fitted or calibrated to what the criterion "
                "reads (a pass shows the fit held). Predicted: nothing of the model was fitted "
                "to it (a pass is evidence for the model).",
                "",
            ]
        L.append(
            _table(
                [
                    [
                        c["name"],
                        c["expected"],
                        json.dumps(c["observed"]),
                        result.get(c["status"], f"not applicable ({c.get('reason', '')})"),
                    ]
                    + ([fitted_or_predicted(c["fitted_to"])] if known else [])
                    for c in res.criteria
                ],
                ["criterion", "expected", "observed", "result"]
                + (["fitted or predicted"] if known else []),
            )
        )
    else:
        L.append("(none in the spec)")
    L += ["", "## Relative spine density at the read-outs", ""]
    rows = []
    for c in ds.condition.values:
        for p in ds.population.values:
            vals = []
            for lab in ds.readout.values:
                t = float(ds.readout_time_d.sel(condition=c, readout=lab))
                v = (
                    float(
                        ds.spine_density_rel.sel(condition=c, population=p).sel(
                            time_d=round(t, 6), method="nearest"
                        )
                    )
                    if np.isfinite(t)
                    else np.nan
                )
                vals.append("-" if not np.isfinite(v) else f"{v:.3f}")
            if any(v != "-" for v in vals):
                rows.append([c, p] + vals)
    L.append(_table(rows, ["condition", "population"] + [str(x) for x in ds.readout.values]))
    rows = condition_rows(ds, cfg)
    if rows:
        after = _readouts_after_stimulation(cfg)
        L += [
            "",
            "## Stimulation day per condition",
            "",
            "Change of the mean GB efficacy of present synapses summed over the sessions "
            "(right after stimulation), relative spine density at the read-outs after it, and "
            "the mean rate during the sessions.",
            "",
        ]
        L.append(
            _table(
                [
                    [r["condition"], r["population"], f"{r['drho']:+.4f}"]
                    + [f"{r['density'][lab]:.3f}" for lab in after]
                    + [f"{r['session_rate']:.2f}"]
                    for r in rows
                ],
                ["condition", "population", "sum of session drho"]
                + [f"density {lab}" for lab in after]
                + ["session rate (Hz)"],
            )
        )
    L += ["", "## Population rates (Hz) at the read-outs", ""]
    rows = [
        [c, lab]
        + [
            f"{float(ds.rate_readout.sel(condition=c, readout=lab, population=p)):.2f}"
            for p in ds.population.values
        ]
        for c in ds.condition.values
        for lab in ds.readout.values
    ]
    L.append(_table(rows, ["condition", "readout"] + [str(p) for p in ds.population.values]))
    L += [
        "",
        "Evoked response (extra spikes per cell and test pulse within settings.evoked_window_s "
        "of each pulse, without the directly activated spikes: what synapses carry; negative when "
        "the evoked inhibition wins; a circuit stand-in for an MEP, not behaviour):",
        "",
    ]
    rows = [
        [c, lab]
        + [
            f"{float(ds.evoked_response.sel(condition=c, readout=lab, population=p)):.3f}"
            for p in ds.population.values
        ]
        for c in ds.condition.values
        for lab in ds.readout.values
    ]
    L.append(_table(rows, ["condition", "readout"] + [str(p) for p in ds.population.values]))
    L += [""] + [f"![{f}]({f})" for f in figures] + [""]
    path.write_text("\n".join(L))


def _protocol_name(protocol) -> str:
    """A condition's protocol as written: a name, or ``<base> (modified)`` for a table."""
    if isinstance(protocol, dict):
        return f"{protocol.get('name') or protocol.get('base') or 'inline'} (modified)"
    return str(protocol)


def _stimulation_section(doses: dict, cfg: dict) -> list[str]:
    """The stimulation table: every condition's protocol, intensity (% RMT) and where it came
    from, and the E-field it gives at the target and at the cells."""
    if not doses:
        return []

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    rows = [
        [
            c,
            _protocol_name(cfg["conditions"][c]["protocol"]),
            num(d["intensity_pct_rmt"], "g"),
            d["intensity_source"],
            num(d["field_macroscopic_vpm"], ".1f"),
            num(d["field_cell_vpm"], ".1f"),
        ]
        for c, d in doses.items()
    ]
    return [
        "## Stimulation per condition",
        "",
        "The sessions' intensity as run (% of resting motor threshold) and the E-field it "
        "gives: macroscopic at the target, and acting on the neuron models "
        "(models/coupling.toml [field]).",
        "",
        _table(
            rows,
            [
                "condition",
                "protocol",
                "intensity (% RMT)",
                "from",
                "field at target (V/m)",
                "field at cells (V/m)",
            ],
        ),
        "",
    ]


def _readouts_after_stimulation(cfg) -> list[str]:
    kinds = [ph["kind"] for ph in cfg["timeline"]]
    if "stimulation" not in kinds:
        return []
    k = kinds.index("stimulation")
    return [ph["readout"] for ph in cfg["timeline"][k:] if ph["readout"]]


def condition_rows(ds, cfg) -> list[dict]:
    """Per stimulated condition and excitatory population: summed session drho, density at the
    read-outs after the stimulation phase, mean session rate (used by the table and figure).

    Parameters
    ----------
    ds : xarray.Dataset
        Results.
    cfg : dict
        The resolved experiment config.

    Returns
    -------
    list of dict
    """
    from .criteria import value_at

    after = _readouts_after_stimulation(cfg)
    if not after or "session" not in ds.dims or ds.sizes["session"] == 0:
        return []
    # populations with spine sites (their density is defined), in the results' order
    sites = [
        str(p)
        for p in ds.population.values
        if np.isfinite(ds.spine_density.sel(population=p).values).any()
    ]
    rows = []
    for c in ds.condition.values:
        dw = ds.session_dw.sel(condition=c)
        if not np.isfinite(dw.values).any():
            continue
        for p in sites:
            dens = {lab: value_at(ds, "spine_density_rel", c, lab, p) for lab in after}
            rows.append(
                dict(
                    condition=str(c),
                    population=p,
                    drho=float(np.nansum(dw.sel(population=p).values)),
                    density=dens,
                    session_rate=value_at(ds, "session_rate", c, None, p),
                )
            )
    return rows


def _sessions_line(st) -> str:
    if st.get("session_sample_s", "all") == "all":
        return "Stimulation sessions: every pulse of every session simulated."
    return (
        f"Stimulation sessions: the first {st['session_sample_s']:g} s of each session "
        "(whole train periods) simulated with every pulse; each synapse's GB efficacy "
        "carried over the rest of the session by the GB 2012 mean field with the "
        "threshold-time fractions measured in that sample (settings.session_sample_s)."
    )
