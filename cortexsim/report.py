"""report.md: the experiment's numbers beside its criteria, with the figures."""
from __future__ import annotations

import json

import numpy as np


def _table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def write_report(res, path, figures) -> None:
    ds = res.data
    cfg = json.loads(ds.attrs["config"])
    L = [f"# {cfg['experiment']['name']}", "", cfg["experiment"].get("description", ""), "",
         f"Seed {cfg['experiment']['seed']}, scale {cfg['settings']['scale']}, "
         f"cortexsim {ds.attrs.get('cortexsim_version')}.", ""]
    L += ["## Criteria (judged by the simulation's own numbers)", ""]
    if res.criteria:
        L.append(_table([[c["name"], c["expected"], json.dumps(c["observed"]),
                          "PASS" if c["passed"] else "FAIL"] for c in res.criteria],
                        ["criterion", "expected", "observed", "result"]))
    else:
        L.append("(none in the spec)")
    L += ["", "## Relative spine density at the read-outs", ""]
    rows = []
    for c in ds.condition.values:
        for p in ds.population.values:
            vals = []
            for lab in ds.readout.values:
                t = float(ds.readout_time_d.sel(condition=c, readout=lab))
                v = float(ds.spine_density_rel.sel(condition=c, population=p).sel(
                    time_d=round(t, 6), method="nearest")) if np.isfinite(t) else np.nan
                vals.append("-" if not np.isfinite(v) else f"{v:.3f}")
            if any(v != "-" for v in vals):
                rows.append([c, p] + vals)
    L.append(_table(rows, ["condition", "population"] + [str(x) for x in ds.readout.values]))
    L += ["", "## Population rates (Hz) at the read-outs", ""]
    rows = [[c, lab] + [f"{float(ds.rate_readout.sel(condition=c, readout=lab, population=p)):.2f}"
                        for p in ds.population.values]
            for c in ds.condition.values for lab in ds.readout.values]
    L.append(_table(rows, ["condition", "readout"] + [str(p) for p in ds.population.values]))
    L += ["", "Evoked-response proxy (extra spikes per cell within settings.evoked_window_s of one pulse; a circuit "
          "proxy, not behaviour):", ""]
    rows = [[c, lab] + [f"{float(ds.evoked_response.sel(condition=c, readout=lab, population=p)):.3f}"
                        for p in ds.population.values]
            for c in ds.condition.values for lab in ds.readout.values]
    L.append(_table(rows, ["condition", "readout"] + [str(p) for p in ds.population.values]))
    L += [""] + [f"![{f}]({f})" for f in figures] + [""]
    path.write_text("\n".join(L))
