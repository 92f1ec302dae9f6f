"""
Sensitivity analysis (Sobol indices)
====================================

Which parameters does a result depend on?  A sensitivity spec draws a Saltelli sample (SALib)
of ``n_base * (d + 2)`` points over bounded parameters, runs them on the sweep engine and
reports first- and total-order Sobol indices with confidence intervals (``sobol.json``,
``sobol.csv``, ``sobol_<metric>.png``).

Two parameters and ``n_base = 2`` (8 runs at 100 neurons) here, far too few for usable
indices: ``experiments/sensitivity_study.toml`` is the study's analysis.  The metric, IT_L5's
rate in the session, depends on the intensity and not at all on the structural gain (which acts
only after the session): the indices should say so.  Both parameters are run-time values, so
the eight runs share one compiled network.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from cortexsim.params import experiments_dir
from cortexsim.sweep import sensitivity

out = Path("out") / "sobol_tiny"
spec = out.parent / "sobol_tiny.toml"
spec.parent.mkdir(parents=True, exist_ok=True)
spec.write_text(f"""
[sensitivity]
name = "sobol_tiny"
base = "{(experiments_dir() / "tiny.toml").as_posix()}"
n_base = 2
sample_seed = 0
seeds = [1]

[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
low = 70.0
high = 130.0

[[parameters]]
path = "structural.activity.ltp_gain"
low = 0.25
high = 4.0
log = true

[[metrics]]
name = "it5_session_rate"
var = "session_rate"
condition = "stim"
population = "IT_L5"
""")

summary = sensitivity.run_cli(spec, workers=2, scale=100, out=out, progress=False)
print(json.dumps(summary["indices"], indent=1)[:1500])

# %%
# First- and total-order indices of the metric, with their confidence intervals.
idx = summary["indices"]["it5_session_rate"]
names = summary["parameters"]
fig, ax = plt.subplots(figsize=(6, 3.2))
x = np.arange(len(names))
if "error" in idx:  # e.g. a metric that is the same at every point
    ax.set_title(idx["error"], fontsize=8)
for k, order in enumerate(["S1", "ST"]):
    if order in idx:
        ax.bar(
            x + 0.35 * k, idx[order], width=0.35, yerr=idx[order + "_conf"], label=order, capsize=3
        )
ax.set_xticks(x + 0.175, [n.split(".")[-1] for n in names])
ax.set_ylabel("Sobol index")
ax.legend()
fig.tight_layout()
