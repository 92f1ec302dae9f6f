"""Sphinx configuration of the cortexsim documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Why this toolchain: Sphinx with sphinx-gallery and numpydoc is what the field's simulators
(Brian2, MNE, hnn-core, NetPyNE) use, so a user finds the same layout: tutorials that are
runnable scripts executed at build time (sphinx-gallery), an API reference from the numpydoc
docstrings the code already has (autodoc + autosummary + numpydoc), the command line from its
argparse parser (sphinx-argparse), and the Markdown pages of ``docs/`` read as they are
(myst-parser).  The model's parameter tables are generated from ``models/*.toml`` by the small
extension ``docs/_ext/model_tables.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))

# The documentation describes the shipped model: a user's model folder in the environment
# would change the generated tables (and the examples' runs).
os.environ.pop("CORTEXSIM_MODELS", None)
# Examples draw figures without a display.
os.environ.setdefault("MPLBACKEND", "Agg")

import cortexsim  # noqa: E402

project = "cortexsim"
author = "the cortexsim developers"
copyright = "the cortexsim developers (MIT licence)"
release = cortexsim.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "myst_parser",
    "model_tables",
]

# Docstrings write absolute values as |x| (|E|, |observed|): shown as written, not read as
# reStructuredText substitutions.
_ABS = ["E", "e", "Z", "Z(f)", "V(f)", "I(f)", "observed"]
rst_prolog = "\n".join(f".. |{x}| replace:: \\|{x}\\|" for x in _ABS) + "\n"

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "results/**",  # run reports (docs/results/): linked from the pages, not rendered
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.md5",
    "auto_examples/*.pickle",
    "**/sg_execution_times.rst",
]
templates_path = ["_templates"]
suppress_warnings = ["myst.header"]  # docs/*.md start at "#" then skip levels in places
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# -- API reference ---------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping = {}  # the build reaches no network (CI, offline machines)

# -- the gallery ------------------------------------------------------------------------------
# Every examples/plot_*.py is run when the docs are built (tiny scale: 100 neurons, one day,
# a few pulses); other files (examples/dask_sweep.py) are shown, not run.  The examples run in
# one process, one after another, from the examples/ folder; their outputs go to
# examples/out/ (ignored by git), and the compiled networks to the build cache, so later
# examples and later builds reuse them.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|_common)\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "plot_gallery": "True",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 0,
    "write_computation_times": True,
}

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"cortexsim {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
