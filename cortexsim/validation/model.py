"""The model being scored and its fit provenance.

A model is the default (the model files as shipped, or ``$CORTEXSIM_MODELS``) or a what-if
spec: its ``[overrides]`` and ``ablations`` (from every file of its ``extends`` chain) and the
``[settings]`` of the chain's files that have no timeline of their own (what a what-if changes;
the experiment it extends keeps its own timing).  The suite's experiments are run with that
model laid over them.

Which suite entries the model was **fitted** to is computed, never typed into an entry:

* a spec's ``[provenance]`` table (written by ``cortexsim fit`` into ``best.toml``) names the
  fit spec (``fit``, a path relative to the file that declares it) and/or lists the fit's
  targets as observables (``targets``); an experiment entry whose observable (experiment,
  variable, condition, reference condition, read-out, population) is one of those targets is
  fitted;
* the default model's own calibrations are recorded in ``models/provenance.toml``: groups of
  model parameters with the entries they were fitted or calibrated to; an entry is fitted
  while at least one parameter of its group keeps its model-file value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError


@dataclass
class Model:
    """A model to score.

    Attributes
    ----------
    name : str
        ``"default"`` or the spec's experiment name.
    path : str or None
        The spec file.
    overrides : dict
        Dotted model path -> value.
    ablations : list of str
    settings : dict
        Run settings a what-if changes (e.g. ``session_reference``).
    targets : list of dict
        Fit targets as observables (``experiment``, ``var``, ``condition``,
        ``minus_condition``, ``readout``, ``populations``) with ``fit`` (where they come from).
    """

    name: str
    path: str | None = None
    overrides: dict = field(default_factory=dict)
    ablations: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The fields as a JSON-able dict (the scorecard's ``model``)."""
        return dict(
            name=self.name,
            path=self.path,
            overrides=self.overrides,
            ablations=self.ablations,
            settings=self.settings,
            targets=self.targets,
        )

    def apply(self, raw: dict) -> dict:
        """A copy of the raw experiment spec ``raw`` with this model laid over it: its
        overrides win over the spec's, its ablations are added, its settings merged; the
        spec's ``provenance`` is dropped.

        Parameters
        ----------
        raw : dict
            A raw experiment spec (not changed).

        Returns
        -------
        dict
        """
        from ..specs import merge_tables

        raw = copy.deepcopy(raw)
        raw.pop("provenance", None)
        raw["overrides"] = {**raw.get("overrides", {}), **self.overrides}
        raw["ablations"] = list(dict.fromkeys(list(raw.get("ablations", [])) + self.ablations))
        if self.settings:
            raw["settings"] = merge_tables(raw.get("settings", {}), self.settings)
        return raw


def _chain(path: Path) -> list[dict]:
    """The raw files of a spec's ``extends`` chain, the spec itself first."""
    from ..experiment.spec import _read_one_spec

    out, p, seen = [], Path(path), set()
    while True:
        raw = _read_one_spec(p)
        out.append((p, raw))
        base = raw.get("extends")
        if not isinstance(base, str) or p.resolve() in seen:
            return out
        seen.add(p.resolve())
        p = (p.parent / base).resolve()


def load_model(spec=None) -> Model:
    """The model of a what-if spec (path or shipped name), or the default model (``None``).

    Parameters
    ----------
    spec : str or Path, optional
        An experiment spec.

    Returns
    -------
    Model

    Raises
    ------
    InputError
        Missing or invalid spec; a ``provenance.fit`` that cannot be read.
    """
    if spec is None:
        return Model("default")
    from ..experiment import load_experiment
    from ..specs import spec_path
    from .suite import require_experiment_spec

    require_experiment_spec(spec_path(spec), "spec")  # not a sweep, fit or suite spec
    exp = load_experiment(spec)  # validates the whole spec first
    chain = _chain(Path(exp.path))
    settings: dict = {}
    from ..specs import merge_tables

    for _, raw in reversed(chain):
        if "timeline" not in raw and isinstance(raw.get("settings"), dict):
            settings = merge_tables(settings, raw["settings"])
    targets = []
    for p, raw in chain:
        prov = raw.get("provenance")
        if not isinstance(prov, dict):
            continue
        if prov.get("fit"):
            targets += fit_targets((p.parent / prov["fit"]).resolve())
        for t in prov.get("targets", []):
            # the experiment a target names may be any spec of this file's chain (a fit whose
            # base is a what-if of the suite's experiment: the same conditions)
            targets.append(dict(t, fit=_display(p), aliases=_chain_names(p)))
    name = exp.spec["experiment"]["name"]
    return Model(
        name,
        _display(exp.path),
        dict(exp.spec["overrides"]),
        list(exp.spec["ablations"]),
        settings,
        targets,
    )


def fit_targets(fit_path) -> list[dict]:
    """The targets of a fit spec as observables of its base experiment.

    Parameters
    ----------
    fit_path : str or Path
        A fit spec (``cortexsim fit``).

    Returns
    -------
    list of dict
        ``experiment`` (the base spec's experiment name), ``var``, ``condition``,
        ``minus_condition``, ``readout``, ``populations``, ``fit`` (the fit spec's path) and
        ``aliases`` (the experiment names of the base's ``extends`` chain: a target on a
        what-if of the suite's experiment is a target on that experiment's observable).

    Raises
    ------
    InputError
        The fit spec or its base cannot be read.
    """
    from ..sweep.fit import load_fit, spec_targets

    try:
        spec, base_path, base_raw = load_fit(fit_path)
    except InputError as exc:
        raise exc.within("provenance.fit: ") from None
    aliases = _chain_names(base_path)
    return [dict(t, fit=_display(fit_path), aliases=aliases) for t in spec_targets(spec, base_raw)]


def _chain_names(path) -> list[str]:
    """The experiment names of a spec and of every spec it extends."""
    return [
        raw["experiment"]["name"]
        for _, raw in _chain(Path(path))
        if isinstance(raw.get("experiment"), dict) and raw["experiment"].get("name")
    ]


def _display(path) -> str:
    """A spec's path for the scorecard: relative to the shipped experiments' folder
    (``experiments/...``) when it lies there, else as given."""
    from ..params import experiments_dir

    p, root = Path(path).resolve(), experiments_dir().resolve()
    return f"experiments/{p.relative_to(root).as_posix()}" if p.is_relative_to(root) else str(p)


def _matches(target: dict, entry: dict, exp_name: str) -> bool:
    o = entry["observable"]
    names = {target.get("experiment")}
    if target.get("experiment") in target.get("aliases", []):
        names |= set(target["aliases"])
    return (
        exp_name in names
        and target.get("var") == o["var"]
        and target.get("condition") == o["condition"]
        and target.get("minus_condition") == o.get("other_condition")
        and target.get("readout") == o.get("readout")
        and (not target.get("populations") or o.get("population") in target["populations"])
    )


def calibrations() -> list[dict]:
    """The default model's recorded calibrations (``provenance.toml`` of the model folder):
    ``[[fitted]]`` groups with ``parameters`` (dotted model paths), ``entries`` (suite ids)
    and ``how``.  An absent file means none."""
    from ..params import models_dir, read_toml

    p = models_dir() / "provenance.toml"
    if not p.is_file():
        return []
    from ..params import load_model as load_tree

    raw = read_toml(p, field="provenance")
    groups = raw.get("fitted", [])
    trees = {}
    for k, g in enumerate(groups):
        for key in ("parameters", "entries", "how"):
            if key not in g:
                raise InputError(f"provenance.toml: fitted[{k}].{key}", "missing (required)")
        for path in g["parameters"]:
            model, _, rest = path.partition(".")
            try:
                tree = trees.setdefault(model, load_tree(model))
                known = tree.has(rest)
            except InputError:
                known = False
            if not known:
                raise InputError(
                    f"provenance.toml: fitted[{k}].parameters", f"no model parameter {path!r}"
                )
    return groups


def fitted_entries(model: Model, entries: list[dict], exp_names: dict) -> dict:
    """Which entries the model was fitted to, and by what.

    Parameters
    ----------
    model : Model
    entries : list of dict
        Suite entries.
    exp_names : dict
        Suite experiment name -> the experiment name in its spec (``[experiment] name``).

    Returns
    -------
    dict
        Entry id -> list of str (each a fit spec or a calibration that targets it).
    """
    out: dict[str, list] = {}
    ids = {e["id"] for e in entries}
    for g in calibrations():
        kept = [p for p in g["parameters"] if p not in model.overrides]
        if not kept:
            continue
        for i in g["entries"]:
            if i in ids:
                out.setdefault(i, []).append(f"models/provenance.toml: {g['how']}")
    for e in entries:
        o = e["observable"]
        if o["kind"] != "experiment":
            continue
        for t in model.targets:
            if _matches(t, e, exp_names[o["experiment"]]):
                out.setdefault(e["id"], []).append(f"fit {t['fit']}")
    return {k: sorted(set(v)) for k, v in out.items()}


def criteria_provenance(spec, criteria: list) -> list[list[str]]:
    """For each criterion of an experiment spec: what its model was fitted to that the
    criterion reads (empty list: the criterion is a prediction of the model).

    A criterion reads, per population, one observable (variable, condition, reference
    condition, read-out); it counts as fitted when a fit target of the spec's ``[provenance]``
    is that observable (:func:`fitted_entries`' rule, for any experiment of the spec's
    ``extends`` chain), or when a validation-suite entry with that observable is covered by a
    calibration of ``models/provenance.toml`` that the spec does not override.

    Parameters
    ----------
    spec : str or Path
        An experiment spec (path or shipped name).
    criteria : list of dict
        The spec's criteria (``name``, ``var``, ``condition``, ``minus_condition``,
        ``readout``, ``populations``).

    Returns
    -------
    list of list of str
        Per criterion (same order), the sorted fits/calibrations it was fitted to.

    Raises
    ------
    InputError
        The spec, its provenance or the suite cannot be read.
    """
    from ..experiment import load_experiment
    from ..params import read_toml
    from .suite import _spec_path, suite_dir

    model = load_model(spec)
    names = {
        raw["experiment"]["name"]
        for _, raw in _chain(Path(load_experiment(spec).path))
        if isinstance(raw.get("experiment"), dict) and raw["experiment"].get("name")
    }
    # the suite's experiment entries, read as written (the suite is checked by its own
    # command; a criterion only looks its observables up)
    entries, exp_names = [], {}
    for f in sorted(suite_dir().glob("*.toml")):
        raw = read_toml(f, field="validation suite")
        refs = {
            n: _chain(_spec_path(r["spec"], f.parent))[0][1].get("experiment", {}).get("name")
            for n, r in raw.get("experiments", {}).items()
        }
        exp_names.update(refs)
        for e in raw.get("entries", []):
            o = e.get("observable", {})
            if o.get("kind") == "experiment" and refs.get(o.get("experiment")) in names:
                entries.append(e)
    keys = ("var", "condition", "other_condition", "readout", "population")
    wanted: list[list[tuple]] = []
    for c in criteria:
        obs = [
            {
                "kind": "experiment",
                "var": c.get("var"),
                "condition": c.get("condition"),
                "other_condition": c.get("minus_condition"),
                "readout": c.get("readout"),
                "population": pop,
            }
            for pop in (c.get("populations") or [None])
        ]
        wanted.append([tuple(o[k] for k in keys) for o in obs])
        c["_obs"] = obs
    same = [
        e
        for e in entries
        if not e["observable"].get("other_population") and not e["observable"].get("other_readout")
    ]
    fitted = fitted_entries(model, same, exp_names) if same else {}
    out = []
    for c, want in zip(criteria, wanted):
        obs = c.pop("_obs")
        by = {
            f"fit {t['fit']}"
            for t in model.targets
            for o in obs
            for name in names
            if _matches(t, {"observable": o}, name)
        }
        for e in same:
            if tuple(e["observable"].get(k) for k in keys) in want:
                by |= set(fitted.get(e["id"], []))
        out.append(sorted(by))
    return out
