"""
The first study
===============

Load an experiment spec, run it and read its results.

``experiments/tiny.toml`` is the smallest study there is: one day of baseline, one short
stimulation session (30 pulses of iTBS at 90 % of the resting motor threshold) and one day of
rest, for two conditions (``control`` and ``stim``).  The same code runs the real study,
``experiments/aitbs_study.toml`` (``cortexsim run aitbs_study --scale small``, ~80 s on two
cores).
"""

# %%
# Load and run
# ------------
# :func:`cortexsim.experiment.load_experiment` reads and validates the spec (a bad value exits
# with one message naming the field); ``run`` simulates every condition and returns a
# :class:`cortexsim.results.Results`.  ``scale`` is the number of neurons (or ``"small"``,
# ``"default"``, ``"large"``); ``checkpoint_dir`` lets a re-run resume where it stopped.
from pathlib import Path

import matplotlib.pyplot as plt

from cortexsim.experiment import load_experiment
from cortexsim.params import experiments_dir

spec = experiments_dir() / "tiny.toml"  # the shipped specs; or a path of your own
exp = load_experiment(spec)
print(exp.name, "conditions:", list(exp.spec["conditions"]))

out = Path("out") / "first_study"
res = exp.run(seed=1, scale=100, progress=False, checkpoint_dir=out / "checkpoints")

# %%
# Save: ``results.nc`` (xarray), ``summary.json`` (metrics and criteria), ``report.md`` and
# figures.
res.save(out)
print(sorted(p.name for p in out.iterdir()))
for c in res.criteria:
    print(c["name"], "->", c["passed"])

# %%
# Read ``results.nc`` with xarray
# -------------------------------
# One dataset holds every condition: spine densities over ``time_d`` (days), population rates
# at each read-out, per-session statistics, the intensity and the field each condition ran at.
# Its attributes keep the resolved config and every model value used (JSON), the code version
# and the seed.
import json

import xarray as xr

ds = xr.load_dataset(out / "results.nc")
print(ds)
cfg = json.loads(ds.attrs["config"])
print("seed", ds.attrs["seed"], "scale", cfg["settings"]["scale"])

# %%
# Spine density relative to day 0, per population, for each condition.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, cond in zip(axes, ds.condition.values):
    for pop in ["IT_L23", "IT_L5", "PT_L5"]:
        ds.spine_density_rel.sel(condition=cond, population=pop).plot(ax=ax, label=pop, marker="o")
    ax.set_title(str(cond))
    ax.set_xlabel("time (days)")
axes[0].set_ylabel("spine density / day 0")
axes[1].set_ylabel("")
axes[0].legend()
fig.tight_layout()

# %%
# Population rates at the read-outs, and the session's rates during stimulation.
print(ds.rate_readout.sel(condition="stim").to_pandas().round(2))
print(ds.session_rate.sel(condition="stim", session=1).to_pandas().round(2))
