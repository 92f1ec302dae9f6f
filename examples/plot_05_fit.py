"""
Calibrating a parameter (``fit``)
=================================

A fit spec names a base experiment, bounded parameters, metrics and targets (a metric near a
value within a tolerance, or a criterion met); Optuna (TPE or CMA-ES) minimises the loss.  The
study is stored in ``OUT/study.log`` and resumes; ``best.toml`` is an ``extends`` spec of the
best point, ready for ``cortexsim run``.

Here, with a budget of four trials at 100 neurons: the spine formation rate
(``structural.formation.k_form``) such that the control condition's IT_L5 spine density after
a day is 1.0 times its initial value.  (``experiments/fit_stress_gain.toml`` is a real fit: the
stress gains against the spine loss Radley et al. 2006 measured.)
"""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cortexsim.params import experiments_dir, load_model
from cortexsim.sweep import fit

k_form = load_model("structural").value("formation.k_form")
print("model value of k_form:", k_form)

out = Path("out") / "fit_tiny"
spec = out.parent / "fit_tiny.toml"
spec.parent.mkdir(parents=True, exist_ok=True)
spec.write_text(f"""
[fit]
name = "fit_tiny"
base = "{(experiments_dir() / "tiny.toml").as_posix()}"
n_trials = 4
sampler = "tpe"
sampler_seed = 0
seeds = [1]
batch = 2

[[parameters]]
path = "structural.formation.k_form"
low = {k_form / 3:.6g}
high = {k_form * 3:.6g}
log = true

[[metrics]]
name = "it5_density_24h"
var = "spine_density_rel"
condition = "control"
readout = "24h"
population = "IT_L5"

[[targets]]
metric = "it5_density_24h"
value = 1.0
tolerance = 0.01
""")

summary = fit.run_cli(spec, workers=2, scale=100, out=out, progress=False)
print({k: v for k, v in summary.items() if k in ("best_params", "best_loss", "n_trials")})
print(sorted(p.name for p in out.iterdir()))

# %%
# ``trials.csv``: one row per trial with its parameters, metrics and loss.
trials = pd.read_csv(out / "trials.csv")
print(
    trials.drop(
        columns=[c for c in trials.columns if c.startswith("datetime")], errors="ignore"
    ).to_string()
)
print((out / "best.toml").read_text())

# %%
pcol = [c for c in trials.columns if "k_form" in c][0]
lcol = "value" if "value" in trials.columns else [c for c in trials.columns if "loss" in c][0]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(trials[pcol], trials[lcol], "o")
ax.set_xscale("log")
ax.set_xlabel("structural.formation.k_form")
ax.set_ylabel("loss")
fig.tight_layout()
