"""
A what-if spec (``extends``)
============================

A what-if starts from another spec and changes only what differs.  Here the tiny study is
re-run with the stimulation at 120 % of the resting motor threshold and with a larger gain
from a session's activity to spine formation (a model value, addressed by its dotted path in
``models/structural.toml``).  Shipped examples of the same form:
``experiments/whatif_slice_calcium.toml`` and ``experiments/aitbs_study_mechanisms.toml``.

Tables merge key by key; lists (the timeline, criteria) and plain values replace.  A model
value may be given with its unit (``{ value = 50, unit = "us" }``); every value is checked
against its range before anything runs.
"""

from pathlib import Path

import matplotlib.pyplot as plt

from cortexsim.experiment import load_experiment
from cortexsim.params import experiments_dir

out = Path("out") / "whatif"
out.mkdir(parents=True, exist_ok=True)
base = experiments_dir() / "tiny.toml"
spec = out / "whatif_strong.toml"
spec.write_text(f"""
extends = "{base.as_posix()}"    # relative to this file, or absolute

[experiment]
name = "whatif_strong"

[conditions.stim]
intensity_pct_rmt = 120

[overrides]
"structural.activity.ltp_gain" = 4.0
""")
print(spec.read_text())

# %%
# The spec resolves to the base with these changes; running it works as for any spec.
whatif = load_experiment(spec)
print(whatif.spec["conditions"]["stim"]["intensity_pct_rmt"], whatif.spec["overrides"])
res_w = whatif.run(seed=1, scale=100, progress=False)
res_b = load_experiment(base).run(seed=1, scale=100, progress=False)

# %%
# Compare the two: the session's rates and the spine density at 24 h in the stimulated
# condition.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
pops = ["IT_L23", "IT_L5", "PT_L5", "PV", "SST"]
for k, (label, res) in enumerate([("tiny (90 % RMT)", res_b), ("what-if (120 % RMT)", res_w)]):
    rate = res.data.session_rate.sel(condition="stim", session=1, population=pops)
    axes[0].bar([i + 0.4 * k for i in range(len(pops))], rate, width=0.4, label=label)
    dens = res.data.spine_density_rel.sel(condition="stim", population=pops[:3]).isel(time_d=-1)
    axes[1].bar([i + 0.4 * k for i in range(3)], dens - 1, width=0.4, label=label)
axes[0].set_xticks(range(len(pops)), pops)
axes[0].set_ylabel("rate in the session (Hz)")
axes[1].set_xticks(range(3), pops[:3])
axes[1].set_ylabel("spine density / day 0 - 1 (end)")
axes[0].legend(fontsize=8)
fig.tight_layout()
print(
    "field at the cells (V/m):",
    float(res_b.data.field_cell_vpm.sel(condition="stim")),
    "->",
    float(res_w.data.field_cell_vpm.sel(condition="stim")),
)
