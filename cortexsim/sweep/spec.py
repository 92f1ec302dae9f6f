"""Sweep, fit and sensitivity specs: validation (pydantic, unknown keys rejected) and the
mapping of a parameter's dotted path onto an experiment spec.

A sweep spec (TOML)::

    [sweep]
    name = "sweep_intensity"
    base = "aitbs_study.toml"          # experiment spec, relative to this file
    design = "grid"                    # grid | list | sobol | lhs
    seeds = [1, 2]                     # replicate seeds of every point
    # n_samples = 16, sample_seed = 0  # sobol / lhs

    [[parameters]]                     # grid: values, or low/high/n (log = true: log-spaced)
    path = "conditions.stress_aitbs.intensity_pct_rmt"
    values = [70, 90, 110]

    [[points]]                         # design = "list": one table per point
    "structural.activity.ltp_gain" = 0.5

    [[metrics]]                        # a reduction of a result variable ...
    name = "it_l5_24h"
    var = "spine_density_rel"
    condition = "stress_aitbs"
    minus_condition = "stress_sham"
    readout = "24h"
    population = "IT_L5"
    [[metrics]]                        # ... or a criterion's observed value
    name = "loss"
    criterion = "stress lowers spines"
    population = "IT_L5"

A parameter path whose first component is a model file name (``circuit``, ``cells``,
``synaptic``, ``structural``, ``stress``, ``coupling``) becomes an entry of the spec's
``[overrides]`` table; any other path sets that key in the experiment spec (its tables must
exist; the key itself is checked by the experiment's own validation).  The models are
validated on the experiment spec's path (:mod:`cortexsim.specs`: strict types, no unknown keys,
NaN and infinities rejected, with the number checks of :func:`cortexsim.errors.check_number`);
every error is an :class:`~cortexsim.errors.InputError` naming the field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import model_validator

from ..errors import InputError, check_number
from ..specs import StrictModel
from ..specs import validate as validate_model


def _number(v):
    """A finite number, not a boolean or a string (:func:`~cortexsim.errors.check_number`)."""
    return check_number("value", v)


def _finite(v):
    """A number is finite (:func:`_number`); a boolean or a string is left to its type."""
    return v if isinstance(v, (bool, str)) else _number(v)


#: a number of a spec (an int or a float, finite)
Number = Annotated[Union[StrictInt, StrictFloat], BeforeValidator(_number)]
#: a value a parameter may take (a finite number, a boolean or a string)
Scalar = Annotated[Union[StrictBool, StrictInt, StrictFloat, StrictStr], BeforeValidator(_finite)]
DESIGNS = ("grid", "list", "sobol", "lhs")


class Parameter(StrictModel):
    """One swept or fitted parameter: explicit ``values``, or a range ``low``..``high``
    (``n`` values for a grid; bounds for samples, fits and sensitivity), optionally log."""

    path: StrictStr = Field(min_length=1)
    values: list[Scalar] | None = None
    low: Number | None = None
    high: Number | None = None
    n: StrictInt | None = Field(default=None, ge=1)
    log: StrictBool = False
    reason: StrictStr = ""  # why this range (a fit reports it with its result)

    @model_validator(mode="after")
    def _check(self):
        if self.values is not None:
            if self.low is not None or self.high is not None or self.n is not None:
                raise ValueError("give either values or low/high, not both")
            if not self.values:
                raise ValueError("values: empty list")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs values, or low and high")
        if self.high <= self.low:
            raise ValueError(f"empty or inverted range: low {self.low} >= high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log range needs low > 0")
        return self

    @property
    def is_range(self) -> bool:
        """A range ``low``..``high`` (not a list of values)."""
        return self.values is None


class Metric(StrictModel):
    """A number per run: ``var`` at condition/read-out/population (minus another condition),
    or the observed value of the criterion named ``criterion`` for ``population``."""

    name: StrictStr = Field(min_length=1)
    var: StrictStr | None = None
    criterion: StrictStr | None = None
    condition: StrictStr | None = None
    minus_condition: StrictStr | None = None
    readout: StrictStr | None = None
    population: StrictStr | None = None

    @model_validator(mode="after")
    def _check(self):
        if (self.var is None) == (self.criterion is None):
            raise ValueError("give exactly one of var or criterion")
        if self.var is not None and self.condition is None:
            raise ValueError("a var metric needs a condition")
        if self.criterion is not None and (self.condition or self.minus_condition or self.readout):
            raise ValueError("a criterion metric takes only population")
        return self


class SweepTable(StrictModel):
    name: StrictStr = Field(min_length=1)
    base: StrictStr = Field(min_length=1)
    design: Literal["grid", "list", "sobol", "lhs"] = "grid"
    seeds: list[StrictInt] = Field(default_factory=lambda: [1], min_length=1)
    n_samples: StrictInt | None = Field(default=None, ge=1)
    sample_seed: StrictInt = Field(default=0, ge=0)
    description: StrictStr = ""


class SweepSpec(StrictModel):
    sweep: SweepTable
    parameters: list[Parameter] = Field(default_factory=list)
    points: list[dict[str, Scalar]] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        self._check_unique()
        self._check_design()
        return self

    def _check_unique(self) -> None:
        """Seeds non-negative and distinct; metric names and parameter paths distinct."""
        if any(s < 0 for s in self.sweep.seeds):
            raise ValueError("sweep.seeds: seeds must be >= 0")
        if len(set(self.sweep.seeds)) != len(self.sweep.seeds):
            raise ValueError("sweep.seeds: repeated seed")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metrics: repeated metric name")
        paths = [p.path for p in self.parameters]
        if len(set(paths)) != len(paths):
            raise ValueError("parameters: repeated path")

    def _check_design(self) -> None:
        """The tables the design takes: ``[[points]]`` for a list, ``[[parameters]]`` for the
        others (ranges with ``n_samples`` for samples, ``n`` for a grid's ranges)."""
        d = self.sweep.design
        if d == "list":
            if not self.points:
                raise ValueError("design 'list' needs [[points]]")
            if self.parameters:
                raise ValueError("design 'list' takes [[points]], not [[parameters]]")
            return
        if self.points:
            raise ValueError(f"[[points]] only with design 'list' (design is {d!r})")
        if not self.parameters:
            raise ValueError(f"design {d!r} needs at least one [[parameters]] table")
        if d in ("sobol", "lhs"):
            if self.sweep.n_samples is None:
                raise ValueError(f"sweep.n_samples: design {d!r} needs n_samples")
            for p in self.parameters:
                if not p.is_range:
                    raise ValueError(f"parameters ({p.path}): design {d!r} needs low/high")
        if d == "grid":
            for p in self.parameters:
                if p.is_range and p.n is None:
                    raise ValueError(f"parameters ({p.path}): a grid range needs n")


def validate(model: type[StrictModel], raw: dict, where: str):
    """``model.model_validate(raw)`` with the first error as an InputError naming the field
    (:func:`cortexsim.specs.validate`, the experiment spec's validation).

    Parameters
    ----------
    model : type
        A pydantic model.
    raw : dict
        What to validate.
    where : str
        Dotted prefix of the field names.

    Returns
    -------
    pydantic.BaseModel

    Raises
    ------
    InputError
        The first validation error.
    """
    if not isinstance(raw, dict):
        raise InputError(where, "must be a table")
    return validate_model(model, raw, f"{where}.")


# --------------------------------------------------------------------------- paths
def apply_params(base_raw: dict, params: dict[str, Any]) -> dict:
    """A copy of the raw experiment spec with the parameter values set by dotted path
    (model paths into ``[overrides]``; other paths walk existing tables, or list items by
    index, and set the last key).

    Parameters
    ----------
    base_raw : dict
        The raw experiment spec (not changed).
    params : dict
        Dotted path -> value.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        A path that does not lead to an existing table or list item.
    """
    from ..experiment import MODEL_NAMES

    raw = copy.deepcopy(base_raw)
    for path, value in params.items():
        field = f"parameters.{path}"
        head, _, rest = path.partition(".")
        if head in MODEL_NAMES:
            if not rest:
                raise InputError(field, "needs a parameter inside the model file")
            raw.setdefault("overrides", {})[path] = value
            continue
        if head not in raw or not rest:
            raise InputError(
                field,
                f"unknown first component {head!r}",
                list(MODEL_NAMES) + [k for k in raw if isinstance(raw[k], dict)],
            )
        parts = path.split(".")
        node = raw
        for k, part in enumerate(parts[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                have = sorted(node) if isinstance(node, dict) else None
                raise InputError(
                    field, f"no table {'.'.join(parts[: k + 1])!r} in the base spec", have
                )
            if not isinstance(node, (dict, list)):
                raise InputError(field, f"{'.'.join(parts[: k + 1])!r} is a value, not a table")
        if not isinstance(node, dict):
            raise InputError(field, f"{'.'.join(parts[:-1])!r} is not a table")
        node[parts[-1]] = value
    return raw


def needed_conditions(raw: dict, metrics: list[dict], criteria=()) -> dict:
    """A copy of the raw experiment spec with only the conditions that the metrics and the
    criterion targets read, and only the criteria that can be judged on them.

    Needed are the ``condition`` and ``minus_condition`` of every metric and of every criterion
    named by a metric (``criterion``) or in ``criteria``, following each such criterion's
    ``requires`` chain (so that a required criterion is judged, not dropped).  Of the other
    criteria, those whose conditions are all kept (and whose ``requires`` is kept) stay, in
    their order.  With no metrics and no criteria nothing says what is needed: the spec is
    returned whole.

    Parameters
    ----------
    raw : dict
        The raw experiment spec (not changed).
    metrics : list of dict
        Metrics as dicts (``criterion``, ``condition``, ``minus_condition`` keys).
    criteria : iterable of str
        Names of criteria whose observed values are needed (a fit's criterion targets).

    Returns
    -------
    dict

    Raises
    ------
    InputError
        A criterion name that the spec does not define.
    """
    raw = copy.deepcopy(raw)
    crit_list = raw.get("criteria") if isinstance(raw.get("criteria"), list) else []
    by_name = {c.get("name"): c for c in crit_list if isinstance(c, dict)}
    wanted = [m["criterion"] for m in metrics if m.get("criterion")] + list(criteria)
    if not metrics and not wanted:
        return raw
    conds = {m[k] for m in metrics for k in ("condition", "minus_condition") if m.get(k)}
    for name in wanted:
        while name is not None:
            if name not in by_name:
                raise InputError("criterion", f"unknown criterion {name!r}", list(by_name))
            c = by_name[name]
            conds |= {c[k] for k in ("condition", "minus_condition") if c.get(k)}
            name = c.get("requires")
    if isinstance(raw.get("conditions"), dict):
        raw["conditions"] = {k: v for k, v in raw["conditions"].items() if k in conds}
    if isinstance(raw.get("criteria"), list):
        kept, names = [], set()
        for c in crit_list:
            if not isinstance(c, dict):  # left for the experiment's validation
                kept.append(c)
                continue
            uses = {c.get(k) for k in ("condition", "minus_condition") if c.get(k)}
            req = c.get("requires")
            if uses <= conds and (req is None or req in names):
                kept.append(c)
                names.add(c.get("name"))
        raw["criteria"] = kept
    return raw


def resolve_base(spec_path: Path, base: str, field: str = "sweep.base") -> Path:
    """The base experiment spec of a sweep/fit/sensitivity spec: ``base`` relative to the spec's
    folder, else among the shipped experiments.

    Parameters
    ----------
    spec_path : Path
        The sweep spec.
    base : str
        Its ``base`` (a file name or relative path).
    field : str
        Name of the field in the error.

    Returns
    -------
    Path
        Absolute path.

    Raises
    ------
    InputError
        Neither file exists (naming ``field``).
    """
    p = spec_path.parent / base
    if not p.is_file():
        from ..params import experiments_dir

        q = experiments_dir() / base
        if q.is_file():
            return q.resolve()
        raise InputError(field, f"file not found: {p}")
    return p.resolve()
