"""cortexsim as an installable package (issue 9 kind 6): model files and the shipped experiment
specs are package data found through importlib.resources, every package is in the wheel, and a
wheel installed elsewhere finds its own model files (no repository needed)."""
import importlib.resources
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from cortexsim.params import ENV_MODELS, experiments_dir, load_model, models_dir

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAMES = sorted(p.stem for p in (ROOT / "models").glob("*.toml"))
EXPERIMENT_NAMES = sorted(p.stem for p in (ROOT / "experiments").glob("*.toml"))


def _setuptools_config() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def test_shipped_model_files_resolve_through_importlib_resources(monkeypatch):
    monkeypatch.delenv(ENV_MODELS, raising=False)
    shipped = importlib.resources.files("cortexsim.models")
    assert {"circuit", "cells", "synaptic", "structural", "stress", "coupling",
            "protocols"} <= set(MODEL_NAMES)
    for name in MODEL_NAMES:
        assert shipped.joinpath(f"{name}.toml").is_file(), name
    assert models_dir() == Path(str(shipped))
    # an editable install sees the repository's files themselves (edits take effect)
    assert models_dir().resolve() == (ROOT / "models").resolve()
    assert load_model("circuit").name == "circuit"


def test_shipped_experiments_resolve_and_load_by_name():
    from cortexsim.experiment import load_experiment
    shipped = importlib.resources.files("cortexsim.experiments")
    assert "aitbs_study" in EXPERIMENT_NAMES
    for name in EXPERIMENT_NAMES:
        assert shipped.joinpath(f"{name}.toml").is_file(), name
    assert experiments_dir() == Path(str(shipped))
    exp = load_experiment("aitbs_study")
    assert Path(exp.path) == experiments_dir() / "aitbs_study.toml"
    assert exp.name == "aitbs_study"


def test_user_model_folder_replaces_the_shipped_one(tmp_path, monkeypatch):
    shutil.copy(ROOT / "models" / "circuit.toml", tmp_path / "circuit.toml")
    monkeypatch.setenv(ENV_MODELS, str(tmp_path))
    assert models_dir() == tmp_path
    assert load_model("circuit").values() == load_model(ROOT / "models" / "circuit.toml").values()
    from cortexsim.errors import InputError
    with pytest.raises(InputError, match="allowed: circuit"):
        load_model("cells")


def test_version_comes_from_pyproject():
    import cortexsim
    with (ROOT / "pyproject.toml").open("rb") as fh:
        assert cortexsim.__version__ == tomllib.load(fh)["project"]["version"]


def test_every_package_is_listed_in_pyproject():
    """pyproject lists its packages (the data packages are mapped from the repository root):
    a new sub-package of cortexsim/ must be added there or the wheel lacks it."""
    cfg = _setuptools_config()
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "cortexsim").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    for pkg, folder in cfg["package-dir"].items():
        assert pkg in listed
        assert (ROOT / folder / "__init__.py").is_file(), folder
        assert cfg["package-data"][pkg] == ["*.toml"]


def test_wheel_contains_model_files_and_runs_outside_the_repository(tmp_path):
    """Build a wheel from a clean copy of the sources (no stale build/ folder), check its file
    list, install it into a plain folder and load a model and an experiment from there."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("cortexsim", "models", "experiments"):
        shutil.copytree(ROOT / d, src / d, ignore=skip)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    p = subprocess.run(pip + ["wheel", str(src), "--no-deps", "--no-build-isolation",
                              "-w", str(wheels)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    (whl,) = wheels.glob("cortexsim-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for name in MODEL_NAMES:
        assert f"cortexsim/models/{name}.toml" in names
    for name in EXPERIMENT_NAMES:
        assert f"cortexsim/experiments/{name}.toml" in names
    sources = {str(p.relative_to(src)) for p in (src / "cortexsim").rglob("*.py")}
    assert sources <= names, sorted(sources - names)

    target = tmp_path / "site"
    p = subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(target),
                              str(whl)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    code = ("import cortexsim, cortexsim.params as P\n"
            "from cortexsim.experiment import load_experiment\n"
            "print(cortexsim.__file__)\nprint(P.models_dir())\n"
            "print(P.load_model('circuit').name)\nprint(load_experiment('aitbs_study').name)\n")
    env = {k: v for k, v in os.environ.items() if k != ENV_MODELS}
    env["PYTHONPATH"] = str(target)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    pkg_file, mdir, model, exp = p.stdout.split()
    assert Path(pkg_file).is_relative_to(target)
    assert Path(mdir) == target / "cortexsim" / "models"
    assert (model, exp) == ("circuit", "aitbs_study")
