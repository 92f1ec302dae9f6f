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
    assert {"circuit", "cells", "synaptic", "structural", "stress", "coupling", "protocols"} <= set(
        MODEL_NAMES
    )
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


def _imported_distributions() -> dict[str, list[str]]:
    """Third-party modules imported anywhere in cortexsim/ -> the distributions providing them."""
    import ast
    from importlib.metadata import packages_distributions

    mods = set()
    for f in (ROOT / "cortexsim").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    mods -= set(sys.stdlib_module_names) | {"cortexsim"}
    provided = packages_distributions()
    return {m: provided.get(m, [m]) for m in sorted(mods)}


def test_every_imported_package_is_a_declared_dependency():
    """A plain `pip install` of the wheel gets what the code imports: each third-party module is
    a declared dependency (core or optional), or a requirement of one (with its extras)."""
    from importlib.metadata import PackageNotFoundError, requires
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for reqs in project["optional-dependencies"].values() for r in reqs]
    allowed = {canonicalize_name(r.name) for r in declared}
    for r in declared:
        try:
            sub = [Requirement(x) for x in requires(r.name) or []]
        except PackageNotFoundError:
            continue
        for x in sub:
            env = [{"extra": e} for e in r.extras] or [{"extra": ""}]
            if x.marker is None or any(x.marker.evaluate(e) for e in env):
                allowed.add(canonicalize_name(x.name))
    missing = {
        m: d
        for m, d in _imported_distributions().items()
        if not any(canonicalize_name(x) in allowed for x in d)
    }
    assert not missing, f"imported but not declared in pyproject [project] dependencies: {missing}"


def test_version_comes_from_pyproject():
    import cortexsim

    with (ROOT / "pyproject.toml").open("rb") as fh:
        assert cortexsim.__version__ == tomllib.load(fh)["project"]["version"]


def test_every_package_is_listed_in_pyproject():
    """pyproject lists its packages (the data packages are mapped from the repository root):
    a new sub-package of cortexsim/ must be added there or the wheel lacks it."""
    cfg = _setuptools_config()
    listed = set(cfg["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "cortexsim").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
    for pkg, folder in cfg["package-dir"].items():
        assert pkg in listed
        assert (ROOT / folder / "__init__.py").is_file(), folder
        # every TOML file of the data folder (sub-folders included) is package data
        pats = cfg["package-data"][pkg]
        for f in (ROOT / folder).rglob("*.toml"):
            rel = f.relative_to(ROOT / folder)
            assert any(rel.match(pat) and len(rel.parts) == len(Path(pat).parts) for pat in pats), (
                f"{folder}/{rel} is not package data ({pats})"
            )


def test_wheel_contains_model_files_and_runs_outside_the_repository(tmp_path):
    """Build a wheel from a clean copy of the sources (no stale build/ folder), check its file
    list, install it into a plain folder and load a model and an experiment from there."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("cortexsim", "models", "experiments", "validation"):
        shutil.copytree(ROOT / d, src / d, ignore=skip)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    p = subprocess.run(
        pip + ["wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (whl,) = wheels.glob("cortexsim-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for name in MODEL_NAMES:
        assert f"cortexsim/models/{name}.toml" in names
    for name in EXPERIMENT_NAMES:
        assert f"cortexsim/experiments/{name}.toml" in names
    for f in (src / "validation").glob("*.toml"):  # the validation suite
        assert f"cortexsim/validation_suite/{f.name}" in names
    shipped = {
        f"cortexsim/experiments/{p.relative_to(src / 'experiments').as_posix()}"
        for p in (src / "experiments").rglob("*.toml")
    }
    assert shipped <= names, sorted(shipped - names)  # sub-folders too (mechanism_search/)
    sources = {str(p.relative_to(src)) for p in (src / "cortexsim").rglob("*.py")}
    assert sources <= names, sorted(sources - names)

    target = tmp_path / "site"
    p = subprocess.run(
        pip + ["install", "--no-deps", "--no-index", "--target", str(target), str(whl)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    code = (
        "import cortexsim, cortexsim.params as P\n"
        "from cortexsim.experiment import load_experiment\n"
        "print(cortexsim.__file__)\nprint(P.models_dir())\n"
        "print(P.load_model('circuit').name)\nprint(load_experiment('aitbs_study').name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_MODELS}
    env["PYTHONPATH"] = str(target)
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    pkg_file, mdir, model, exp = p.stdout.split()
    assert Path(pkg_file).is_relative_to(target)
    assert Path(mdir) == target / "cortexsim" / "models"
    assert (model, exp) == ("circuit", "aitbs_study")
