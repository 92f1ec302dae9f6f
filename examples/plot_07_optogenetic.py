"""
An optogenetic condition
========================

A condition may deliver its protocol's pulses as light instead of TMS: ``modality = "light"``
with ``light_populations``, the cells that express channelrhodopsin-2 (three-state kinetics;
irradiance and pulse width in ``models/opto.toml``, e.g. override ``opto.light.irradiance``).
The light pulses are the protocol's own pulse times; a sham protocol gives light off.
``experiments/optogenetic_aitbs.toml`` is the optogenetic aiTBS study.

Here: the tiny study's 30 iTBS pulses as TMS, as light to IT cells only, and as light to
every excitatory population.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from cortexsim.experiment import load_experiment
from cortexsim.params import experiments_dir

out = Path("out") / "optogenetic"
out.mkdir(parents=True, exist_ok=True)
spec = out / "tiny_light.toml"
spec.write_text(f"""
extends = "{(experiments_dir() / "tiny.toml").as_posix()}"

[experiment]
name = "tiny_light"

[conditions.light_it]
stress = false
protocol = {{ base = "itbs600", n_pulses = 30 }}
modality = "light"
light_populations = ["IT_L23", "IT_L5"]

[conditions.light_exc]
stress = false
protocol = {{ base = "itbs600", n_pulses = 30 }}
modality = "light"
light_populations = ["IT_L23", "IT_L5", "PT_L5"]
""")

exp = load_experiment(spec)
print(list(exp.spec["conditions"]))
res = exp.run(seed=1, scale=100, progress=False)  # TMS and light builds, compiled once each

# %%
# Rates during the session: light drives only the cells that express the opsin (and, through
# the circuit, their targets); TMS recruits cells by their coupling thresholds.
pops = ["IT_L23", "IT_L5", "PT_L5", "PV", "SST"]
conds = ["control", "stim", "light_it", "light_exc"]
rate = res.data.session_rate.sel(session=1, population=pops, condition=conds)
print(rate.to_pandas().round(2))
fig, ax = plt.subplots(figsize=(7, 3.2))
w = 0.2
for k, c in enumerate(conds):
    ax.bar(np.arange(len(pops)) + w * k, rate.sel(condition=c), width=w, label=c)
ax.set_xticks(np.arange(len(pops)) + 1.5 * w, pops)
ax.set_ylabel("rate in the session (Hz)")
ax.legend(fontsize=8, ncol=4)
fig.tight_layout()
