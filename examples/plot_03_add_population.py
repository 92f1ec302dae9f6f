"""
Adding a population (a user's model folder)
===========================================

The circuit is data: its populations (``[populations.<name>]``) and projections
(``[conn.<pre>.<post>]``, with receptors, target, plasticity rule and short-term dynamics) are
declared in ``models/circuit.toml``, and each population's cell model in
``models/cells.toml``.  A new population, here VIP interneurons, is a change of model files
alone: copy the shipped files into a folder of your own, add the population, and point
``CORTEXSIM_MODELS`` at it.  Nothing in the code changes.

The VIP values below are placeholders (SST's cell model with its own capacitance, a made-up
wiring) to show the mechanics; every value of a real model needs a ``source``.
"""

import json
import os
import shutil
import tomllib
from pathlib import Path

import matplotlib.pyplot as plt

from cortexsim.params import models_dir

folder = Path("out") / "vip_models"
if folder.exists():
    shutil.rmtree(folder)
folder.mkdir(parents=True)
for f in models_dir().glob("*.toml"):  # the shipped model files
    shutil.copy(f, folder / f.name)

# %%
# The cell model: SST's parameters with another capacitance.  A value may be given in any
# unit of its dimension (``nF`` here); it is converted when the file is read.
with (folder / "cells.toml").open("rb") as fh:
    sst = tomllib.load(fh)["SST"]


def inline(node):
    """A TOML inline table (JSON spells strings, numbers and lists as TOML does)."""
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in node.items()) + " }"


lines = ["", "[VIP]"]
for key, node in sst.items():
    if key in ("target", "dendrite"):
        continue
    node = dict(node, source="assumption: tutorial population (SST's value)")
    if key == "C":
        node.update(value=0.05, unit="nF", source="assumption: tutorial value")
    lines.append(f"{key} = {inline(node)}")
with (folder / "cells.toml").open("a") as fh:
    fh.write("\n".join(lines) + "\n")

# %%
# The population and two projections (IT_L23 -> VIP, VIP -> SST: VIP cells inhibit SST
# cells).
src = 'source = "assumption: tutorial wiring"'
with (folder / "circuit.toml").open("a") as fh:
    fh.write(f"""
[populations.VIP]
cell = "VIP"
coupling = "SST"          # TMS thresholds of the SST cell type's terminals
layer = "L2/3"
type = "inhibitory"
spine_sites = false
fraction = {{ value = 0.06, unit = "1", {src} }}
g_background = {{ value = 0.5, unit = "nS", {src} }}

[conn.IT_L23.VIP]
receptors = ["AMPA", "NMDA"]
target = "soma"
plasticity = "none"
short_term = "depression"
p = {{ value = 0.3, unit = "1", {src} }}
g = {{ value = 1.0, unit = "nS", {src} }}

[conn.VIP.SST]
receptors = ["GABA_A"]
target = "soma"
plasticity = "none"
short_term = "none"
p = {{ value = 0.5, unit = "1", {src} }}
g = {{ value = 1.0, unit = "nS", {src} }}
""")

# %%
# Run the tiny study with this model folder.  ``CORTEXSIM_MODELS`` is read whenever a model
# file is loaded; set it in the shell (``CORTEXSIM_MODELS=/path cortexsim run ...``) or, as
# here, in Python.  The new population gets its own build of the network.
from cortexsim.experiment import load_experiment
from cortexsim.params import experiments_dir
from cortexsim.populations import populations

os.environ["CORTEXSIM_MODELS"] = str(folder.resolve())
try:
    print("populations:", populations())
    res = load_experiment(experiments_dir() / "tiny.toml").run(seed=1, scale=100, progress=False)
finally:
    del os.environ["CORTEXSIM_MODELS"]  # back to the shipped model
print("after:", populations())

# %%
# VIP now appears in every result that has a population dimension.
rates = res.data.session_rate.sel(condition="stim", session=1)
print(rates.to_pandas().round(2))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(rates.population.values.astype(str), rates.values)
ax.set_ylabel("rate in the session (Hz)")
ax.set_title("tiny study with a VIP population")
fig.tight_layout()
