"""Numpydoc docstrings on the public API (issue 10): every public function and class defined
in ``cortexsim/*.py`` and in the packages ``circuit``, ``coupling``, ``plasticity``,
``experiment`` and ``sweep`` has a docstring, with a ``Parameters`` section when it takes
arguments (a class: ``Parameters`` or, for a dataclass, ``Attributes``).

Walks the modules (no Brian2 build); cheap.
"""
import importlib
import inspect
import pkgutil
import re

import pydantic

import cortexsim

PACKAGES = ("circuit", "coupling", "plasticity", "experiment", "sweep")

#: Exempt, with the reason:
#: - ``cortexsim.cli.cmd_*``: argparse handlers taking the parsed namespace; their arguments are
#:   the sub-command's options, documented by ``cortexsim <command> --help`` (tests/test_cli.py).
#: - pydantic models (subclasses of ``pydantic.BaseModel``): their parameters are the spec's
#:   fields, documented as typed fields and validated with one-line errors naming each.
EXEMPT_PREFIXES = ("cortexsim.cli.cmd_",)

_SECTION = r"^{}\n-{{3,}}$"


def _modules():
    names = ["cortexsim"] + [f"cortexsim.{m.name}" for m in pkgutil.iter_modules(cortexsim.__path__)
                             if not m.ispkg]
    for pkg in PACKAGES:
        mod = importlib.import_module(f"cortexsim.{pkg}")
        names += [mod.__name__] + [f"{mod.__name__}.{m.name}"
                                   for m in pkgutil.iter_modules(mod.__path__)]
    return names


def _takes_arguments(obj) -> bool:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls") for name in sig.parameters)


def _public_api():
    for name in _modules():
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{name}.{attr}", obj


def _problem(qualname: str, obj) -> str | None:
    doc = inspect.getdoc(obj)
    if not doc:
        return "no docstring"
    if not _takes_arguments(obj):
        return None
    sections = ("Parameters", "Attributes") if inspect.isclass(obj) else ("Parameters",)
    if not any(re.search(_SECTION.format(s), doc, re.M) for s in sections):
        return f"no {' or '.join(sections)} section"
    return None


def test_the_walk_finds_the_public_api():
    found = dict(_public_api())
    for name in ("cortexsim.coupling.membrane.threshold_vpm", "cortexsim.circuit.network.Circuit",
                 "cortexsim.plasticity.synaptic.get_params", "cortexsim.experiment.spec.model_trees",
                 "cortexsim.sweep.design.design_points", "cortexsim.protocols.get_protocol"):
        assert name in found
    assert not any(n.rsplit(".", 1)[1].startswith("_") for n in found)


def test_public_api_has_numpydoc_docstrings():
    missing = []
    for qualname, obj in _public_api():
        if qualname.startswith(EXEMPT_PREFIXES) or (
                inspect.isclass(obj) and issubclass(obj, pydantic.BaseModel)):
            continue
        problem = _problem(qualname, obj)
        if problem:
            missing.append(f"{qualname}: {problem}")
    assert not missing, "\n".join(missing)


def test_the_check_detects_a_missing_section():
    def documented(x):
        """Do it.

        Parameters
        ----------
        x : int
            A number.
        """

    def undocumented(x):
        """Do it with x."""
    assert _problem("documented", documented) is None
    assert _problem("undocumented", undocumented) == "no Parameters section"
    assert _problem("bare", lambda: None) == "no docstring"
