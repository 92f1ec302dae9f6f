"""
The validation scorecard
========================

``cortexsim validate`` scores a model (the default, or a what-if spec) against the validation
suite (``validation/*.toml``): published findings, each with the model observable that stands
for it, the published value or sign, a tolerance with its reason, and the source.  Each entry
is judged and marked **fitted** (the model was calibrated to it, ``models/provenance.toml``) or
**predicted**.  Output: ``scorecard.json``, ``scorecard.md``, ``scorecard.png``.

``quick=True`` is the CI subset (one entry of every kind, 100 neurons, one seed; about two
minutes).  To keep this page fast it scores four of those entries: an intrinsic property
(Hattox & Nelson 2007, from the current-step protocols of ``cortexsim celltypes``), a coupling
threshold (Aberra et al. 2020), the plasticity rule on one synapse (Inglebert et al. 2020) and
one protocol experiment (iTBS vs a sham of the same timing, run at 100 neurons in a worker
process).
``cortexsim validate`` without ``--quick`` runs the whole suite at ``--scale small`` on three
seeds.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt

from cortexsim.validation import load_suite, run_validation

suite = load_suite()
quick = suite.select(quick=True)
print(len(quick), "quick entries:", [e["id"] for e in quick])

entries = [
    "hattox2007_rin_it_minus_pt",
    "aberra2020_threshold_l23_above_l5",
    "inglebert2020_pre_post_1p3mM_no_change",
    "huang2005_itbs600_facilitates_dw",
]
out = Path("out") / "validation_quick"
card = run_validation(None, quick=True, entry_ids=entries, out=out, progress=False)
print(sorted(p.name for p in out.iterdir()))

# %%
# ``scorecard.json`` has stable keys; ``scorecard.md`` is the same as a table.
print(json.dumps(card.get("summary", {}), indent=1))
print((out / "scorecard.md").read_text()[:3000])

# %%
# The figure the command writes.
img = plt.imread(out / "scorecard.png")
fig, ax = plt.subplots(figsize=(8, 8 * img.shape[0] / img.shape[1]))
ax.imshow(img)
ax.axis("off")
fig.tight_layout()
