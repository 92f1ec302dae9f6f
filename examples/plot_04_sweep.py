"""
A parameter sweep and its plot
==============================

A sweep spec names a base experiment, a design over dotted paths (a model value such as
``structural.activity.ltp_gain``, or a key of the experiment spec such as
``conditions.stim.intensity_pct_rmt``), replicate seeds and the metrics to collect.  Every
point becomes an experiment spec, validated before anything runs; finished runs are kept in a
store, so a re-run (or a run cut off) resumes.  A point runs only the conditions its metrics
need: here ``stim`` alone.

The same from the shell: ``cortexsim sweep SPEC.toml --workers 2 --plot METRIC``
(``experiments/sweep_intensity.toml`` is the study's sweep).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import xarray as xr

from cortexsim.params import experiments_dir
from cortexsim.sweep import load_sweep

out = Path("out") / "sweep_tiny"
out.mkdir(parents=True, exist_ok=True)
spec = out.parent / "sweep_tiny.toml"
spec.write_text(f"""
[sweep]
name = "sweep_tiny"
base = "{(experiments_dir() / "tiny.toml").as_posix()}"
design = "grid"
seeds = [1]

[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
values = [60, 100, 140]

[[metrics]]
name = "it5_session_rate"
var = "session_rate"
condition = "stim"
population = "IT_L5"

[[metrics]]
name = "pt5_session_rate"
var = "session_rate"
condition = "stim"
population = "PT_L5"

[[metrics]]
name = "it5_density_24h"
var = "spine_density_rel"
condition = "stim"
readout = "24h"
population = "IT_L5"
""")

sweep = load_sweep(spec)
print(len(sweep.points), "points:", sweep.points)
summary = sweep.run(workers=2, scale=100, out=out, progress=False)
print({k: summary[k] for k in ("runs", "finished", "failed", "builds", "cache_hits")})

# %%
# ``sweep.nc``: a grid's parameters are dimensions, ``seed`` the replicate dimension; the
# sweep spec, base spec and versions are attributes.  ``points.parquet`` has one row per run.
ds = xr.load_dataset(out / "sweep.nc")
print(ds)

# %%
# The session's rates of the L5 populations against the intensity.
x = "conditions.stim.intensity_pct_rmt"
fig, ax = plt.subplots(figsize=(5, 3.2))
for m, label in [("it5_session_rate", "IT_L5"), ("pt5_session_rate", "PT_L5")]:
    ds[m].mean("seed").plot(ax=ax, x=x, marker="o", label=label)
ax.set_xlabel("intensity (% RMT)")
ax.set_ylabel("rate in the session (Hz)")
ax.set_title("")
ax.legend()
fig.tight_layout()

# %%
# ``cortexsim sweep ... --plot METRIC`` draws a metric with
# :func:`cortexsim.sweep.plots.plot_metric` (a metric that is the same at every run is said
# so in the title and in the summary's ``remarks``).
from cortexsim.sweep.plots import plot_metric

png = plot_metric(ds, "it5_density_24h", out / "plot_it5_density_24h.png")
print(png, summary.get("remarks", []))
