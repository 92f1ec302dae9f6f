"""The validation suite: published experiments declared as data (``validation/*.toml``).

Each suite file is one group of entries (cells, synapses, protocols, structure, the study, the
optogenetic study) and the experiments its entries read::

    [suite]
    group = "protocols"
    description = "..."

    [experiments.protocol_effects]
    spec = "validation_protocols"      # a shipped experiment (experiments/) or a path
                                       # relative to the suite folder (an experiment spec
                                       # in the folder itself is not read as a suite file)

    [[entries]]
    id = "huang2005_itbs600_facilitates"
    finding = "iTBS600 facilitates motor-evoked potentials"
    observable = { kind = "experiment", experiment = "protocol_effects", var = "session_dw_sum",
                   condition = "itbs600", other_condition = "sham", population = "PT_L5" }
    compare = "sign"
    published = { sign = "+", value = 35.0, unit = "% of baseline MEP" }
    tolerance = 0.002
    tolerance_reason = "..."
    source = { citation = "Huang et al. 2005 Neuron 45:201", where = "Fig. 2",
               species = "human", preparation = "in vivo, MEP" }

Observables (``kind``):

``cell``
    a simulated intrinsic property (:func:`cortexsim.circuit.characterize.characterize`).
``threshold``
    the median TMS threshold of a cell type (``threshold_vpm``, V/m at the cell) or the
    strength-duration time constant of the first-order fit (``tau_sd_us``).
``synapse``
    the Graupner-Brunel rule alone on one synapse at a given extracellular calcium
    (:func:`cortexsim.plasticity.synaptic.protocol_strength_change`).
``experiment``
    a number of a simulated experiment (a result variable or one of :data:`DERIVED_VARS`),
    a condition optionally minus another, at a read-out, for a population.

Any observable may subtract (``combine = "difference"``) or divide by (``"ratio"``) the same
quantity of ``other_population``.  Comparisons (``compare``):

=========  ======================================================================
``value``  ``|model - published.value| <= tolerance``
``sign``   the model's sign is ``published.sign`` and ``|model| > tolerance`` (the smallest
           effect that counts)
``none``   ``|model| <= tolerance`` (no change)
``range``  ``published.low <= model <= published.high`` (no tolerance: the range is the
           criterion)
=========  ======================================================================

Every entry is checked (:func:`load_suite`) before anything runs: a bad entry is one
:class:`~cortexsim.errors.InputError` naming the file, the entry and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from ..errors import InputError
from ..specs import StrictModel, validate

#: characterisation quantities (:mod:`cortexsim.circuit.characterize`)
CELL_QUANTITIES = (
    "v_rest_mV",
    "input_resistance_MOhm",
    "sag_ratio",
    "rheobase_pA",
    "adaptation_ratio",
    "fi_slope_Hz_per_nA",
    "resonance_Hz",
)
#: numbers computed from a result Dataset besides its variables
DERIVED_VARS = ("session_dw_sum", "turnover_per_day")
COMPARES = ("value", "sign", "none", "range")
GROUPS = ("cells", "synapses", "protocols", "structure", "study", "optogenetic")


def _pos(**kw):
    return Field(gt=0, **kw)


class Source(StrictModel):
    citation: Annotated[str, Field(min_length=3)]
    where: Annotated[str, Field(min_length=1)]
    species: Annotated[str, Field(min_length=1)]
    preparation: Annotated[str, Field(min_length=1)]


class Published(StrictModel):
    value: float | None = None
    sd: float | None = None
    sem: float | None = None
    n: int | str | None = None
    sign: Literal["+", "-"] | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None


class _Other(StrictModel):
    other_population: str | None = None
    combine: Literal["difference", "ratio"] = "difference"


class CellObs(_Other):
    kind: Literal["cell"]
    quantity: Literal[CELL_QUANTITIES]
    population: str


class ThresholdObs(_Other):
    kind: Literal["threshold"]
    quantity: Literal["threshold_vpm", "tau_sd_us"]
    population: str
    waveform: str = "biphasic"
    pulse_width_us: Annotated[float, _pos()] | None = None
    angle_deg: float = 0.0


class SynapseObs(StrictModel):
    kind: Literal["synapse"]
    protocol: Literal["pairs", "train", "theta_burst"]
    quantity: Literal["strength_change"] = "strength_change"
    ca_ext_mM: Annotated[float, Field(ge=0.5, le=5.0)]
    delta_t_ms: Annotated[float, Field(ge=-200, le=200)] | None = None
    freq_hz: Annotated[float, Field(gt=0, le=500)] | None = None
    n_pairs: Annotated[int, Field(ge=1, le=10_000)] | None = None
    n_pulses: Annotated[int, Field(ge=1, le=10_000)] | None = None
    n_bursts: Annotated[int, Field(ge=1, le=10_000)] | None = None
    pulses_per_burst: Annotated[int, Field(ge=1, le=100)] | None = None
    intra_hz: Annotated[float, Field(gt=0, le=500)] | None = None
    burst_hz: Annotated[float, Field(gt=0, le=100)] | None = None
    post: bool = False

    @model_validator(mode="after")
    def _needs(self):
        need = {
            "pairs": ("delta_t_ms", "freq_hz", "n_pairs"),
            "train": ("freq_hz", "n_pulses"),
            "theta_burst": ("n_bursts", "pulses_per_burst", "intra_hz", "burst_hz"),
        }
        for k in need[self.protocol]:
            if getattr(self, k) is None:
                raise ValueError(
                    InputError(
                        k,
                        f"missing: the {self.protocol!r} protocol needs "
                        f"{', '.join(need[self.protocol])}",
                    )
                )
        if self.post and self.delta_t_ms is None:
            raise ValueError(
                InputError(
                    "delta_t_ms",
                    "missing: post = true pairs each "
                    "presynaptic pulse with a postsynaptic "
                    "spike delta_t_ms later",
                )
            )
        return self


class ExperimentObs(StrictModel):
    kind: Literal["experiment"]
    experiment: str
    var: str
    condition: str
    other_condition: str | None = None
    readout: str | None = None
    #: observable = value at ``readout`` minus value at ``other_readout`` (e.g. recovery: 7d
    #: minus end of stress, within each condition)
    other_readout: str | None = None
    #: every variable but ``turnover_per_day`` (counted over all spine sites) needs one
    population: str | None = None
    other_population: str | None = None
    combine: Literal["difference", "ratio"] = "difference"
    #: ``turnover_per_day``: the days before the read-out it is counted over
    window_d: Annotated[float, _pos()] = 2.0


Observable = Annotated[
    Union[CellObs, ThresholdObs, SynapseObs, ExperimentObs], Field(discriminator="kind")
]


class Entry(StrictModel):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
    finding: Annotated[str, Field(min_length=3)]
    observable: Observable
    compare: Literal[COMPARES]
    published: Published
    tolerance: Annotated[float, _pos()] | None = None
    tolerance_reason: Annotated[str, Field(min_length=3)]
    source: Source
    note: str = ""
    quick: bool = False
    #: judged only when the entry it names passed (an effect to keep or abolish); otherwise
    #: "not applicable", never a pass that only says there was no effect
    requires: str | None = None

    @model_validator(mode="after")
    def _published_fits(self):
        pub = self.published
        need = {"value": ("value",), "sign": ("sign",), "none": (), "range": ("low", "high")}
        for k in need[self.compare]:
            if getattr(pub, k) is None:
                raise ValueError(
                    InputError(f"published.{k}", f"missing: compare = {self.compare!r} needs it")
                )
        if self.compare == "range":
            if pub.low > pub.high:
                raise ValueError(InputError("published.low", "must be <= published.high"))
            if self.tolerance is not None:
                raise ValueError(
                    InputError(
                        "tolerance", "a range entry takes no tolerance: the range is the criterion"
                    )
                )
        elif self.tolerance is None:
            raise ValueError(
                InputError(
                    "tolerance", f"missing: compare = {self.compare!r} needs a tolerance > 0"
                )
            )
        return self


class ExperimentRef(StrictModel):
    spec: Annotated[str, Field(min_length=1)]


class SuiteMeta(StrictModel):
    group: Literal[GROUPS]
    description: str = ""


class SuiteFile(StrictModel):
    suite: SuiteMeta
    experiments: dict[str, ExperimentRef] = {}
    entries: Annotated[list[Entry], Field(min_length=1)]


class Suite:
    """The loaded, checked suite.

    Attributes
    ----------
    entries : list of dict
        Every entry (``Entry.model_dump()`` plus ``group`` and ``file``), in file order.
    experiments : dict
        Experiment name -> path of its spec (TOML).
    folder : Path
        The suite folder.
    """

    def __init__(self, entries: list[dict], experiments: dict, folder: Path):
        self.entries = entries
        self.experiments = experiments
        self.folder = folder

    def select(self, quick: bool = False, ids=None) -> list[dict]:
        """Entries to score: all, the ``quick`` subset, or those named in ``ids``; with the
        entries they ``require`` (transitively), which decide whether they apply.

        Parameters
        ----------
        quick : bool
            Only the entries marked ``quick``.
        ids : iterable of str, optional
            Only these entries.

        Returns
        -------
        list of dict
            The entries, in the suite's order.

        Raises
        ------
        InputError
            An unknown id (field ``--entries``).
        """
        out = [e for e in self.entries if (not quick or e["quick"])]
        if ids:
            known = [e["id"] for e in self.entries]
            for i in ids:
                if i not in known:
                    raise InputError("--entries", f"unknown entry {i!r}", known)
            out = [e for e in out if e["id"] in ids]
        by_id = {e["id"]: e for e in self.entries}
        want = {e["id"] for e in out}
        todo = list(want)
        while todo:
            req = by_id[todo.pop()]["requires"]
            if req is not None and req not in want:
                want.add(req)
                todo.append(req)
        return [e for e in self.entries if e["id"] in want]


def suite_dir() -> Path:
    """The shipped suite folder (``validation/``, installed as ``cortexsim.validation_suite``)."""
    from ..params import _shipped

    return _shipped("validation_suite")


def require_experiment_spec(path: Path, field: str = "spec") -> Path:
    """``path`` is an experiment spec (``[experiment]``, or one that ``extends`` one), not a
    sweep, fit, sensitivity or suite spec.

    Parameters
    ----------
    path : Path
        A spec file.
    field : str
        Name for the error message.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        Another kind of spec, or not a spec (naming ``field`` and the kind found).
    """
    from ..cost import spec_kind

    try:
        kind, _ = spec_kind(path)
    except InputError as exc:
        raise InputError(field, f"{path}: {exc.message}", exc.allowed) from None
    if kind != "experiment":
        raise InputError(
            field,
            f"{path} is a {kind} spec ([{kind}]), not an experiment spec",
            _shipped_experiments(),
        )
    return path


def _shipped_experiments() -> list[str]:
    """Names of the shipped experiment specs (not the sweep, fit or sensitivity specs)."""
    from ..params import experiments_dir, read_toml

    out = []
    for x in sorted(experiments_dir().glob("*.toml")):
        try:
            raw = read_toml(x, field="spec")
        except InputError:
            continue
        if "experiment" in raw or "timeline" in raw or "conditions" in raw:
            out.append(x.stem)
    return out


def _spec_path(ref: str, folder: Path) -> Path:
    from ..params import experiments_dir

    p = folder / ref
    if p.is_file():
        return require_experiment_spec(p.resolve())
    q = experiments_dir() / (ref if ref.endswith(".toml") else f"{ref}.toml")
    if q.is_file():
        return require_experiment_spec(q)
    raise InputError(
        "spec",
        f"no experiment spec {ref!r} (neither {p} nor a shipped name)",
        _shipped_experiments(),
    )


def load_suite(folder=None) -> Suite:
    """Read and check every ``*.toml`` of the suite folder.

    Parameters
    ----------
    folder : str or Path, optional
        Suite folder (default: the shipped one, :func:`suite_dir`).

    Returns
    -------
    Suite

    Raises
    ------
    InputError
        A malformed file or entry (field ``<file>: entries[k] (<id>).<field>``), a duplicate
        id, an experiment, variable, condition, read-out or population that does not exist.
    """
    from ..params import read_toml

    folder = Path(folder) if folder is not None else suite_dir()
    if not folder.is_dir():
        raise InputError("suite", f"not a folder: {folder}")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise InputError("suite", f"no *.toml suite files in {folder}")
    entries, experiments, seen, n_suite = [], {}, {}, 0
    for f in files:
        raw = read_toml(f, field="suite")
        if _is_experiment_spec(raw):
            continue  # an experiment spec an entry reads, not a suite file
        n_suite += 1
        for k, e in enumerate(raw.get("entries") or []):
            if not isinstance(e, dict):
                raise InputError(f"{f.name}: entries[{k}]", "must be a table")
        try:
            parsed = validate(SuiteFile, raw)
        except InputError as exc:
            raise _name_entry(exc, f, raw) from None
        for name, ref in parsed.experiments.items():
            try:
                path = _spec_path(ref.spec, folder)
            except InputError as exc:
                raise exc.within(f"{f.name}: experiments.{name}.") from None
            if name in experiments and experiments[name] != path:
                raise InputError(
                    f"{f.name}: experiments.{name}",
                    f"declared twice with different specs ({experiments[name]})",
                )
            experiments[name] = path
        for k, e in enumerate(parsed.entries):
            where = f"{f.name}: entries[{k}] ({e.id})"
            if e.id in seen:
                raise InputError(f"{where}.id", f"duplicate id (also in {seen[e.id]})")
            seen[e.id] = f.name
            entries.append(dict(e.model_dump(), group=parsed.suite.group, file=f.name, where=where))
    if not n_suite:
        raise InputError(
            "suite", f"no suite files ([suite] and [[entries]]) in {folder}, only experiment specs"
        )
    _check_requires(entries)
    _check_references(entries, experiments)
    return Suite(entries, experiments, folder)


def _check_requires(entries: list[dict]) -> None:
    """Every ``requires`` names another entry of the suite, and no chain of them loops (the
    verdicts would depend on the order they are settled in)."""
    req = {e["id"]: e["requires"] for e in entries}
    for e in entries:
        if e["requires"] is not None and e["requires"] not in req:
            raise InputError(f"{e['where']}.requires", f"unknown entry {e['requires']!r}")
        if e["requires"] == e["id"]:
            raise InputError(f"{e['where']}.requires", "an entry cannot require itself")
    for e in entries:
        chain, i = [e["id"]], e["requires"]
        while i is not None and i not in chain:
            chain.append(i)
            i = req[i]
        if i is not None:
            raise InputError(
                f"{e['where']}.requires",
                "a cycle of requires: " + " -> ".join(chain[chain.index(i) :] + [i]),
            )


def _is_experiment_spec(raw: dict) -> bool:
    """A TOML file of the suite folder that is an experiment spec (read by an
    ``[experiments]`` table), not a suite file."""
    return (
        "suite" not in raw
        and "entries" not in raw
        and any(k in raw for k in ("experiment", "timeline", "conditions", "extends"))
    )


def _name_entry(exc: InputError, f: Path, raw: dict) -> InputError:
    """An error inside ``entries[k]`` names the entry's id too."""
    field = exc.field
    if field.startswith("entries["):
        k = int(field[len("entries[") : field.index("]")])
        eid = (raw["entries"][k] or {}).get("id", "?")
        field = f"entries[{k}] ({eid}){field[field.index(']') + 1 :]}"
    return InputError(f"{f.name}: {field}", exc.message, exc.allowed)


def _check_references(entries: list[dict], experiments: dict) -> None:
    """Every name an entry uses exists: experiments, their conditions, read-outs and result
    variables; populations; coupling cell types."""
    from ..coupling import cell_types
    from ..experiment import load_experiment
    from ..populations import population_table, populations

    pops = list(populations())
    specs = {}
    for e in entries:
        o, where = e["observable"], e["where"] + ".observable"
        for key in ("population", "other_population"):
            if o.get(key) is not None and o[key] not in pops:
                raise InputError(f"{where}.{key}", f"unknown population {o[key]!r}", pops)
        if (
            o["kind"] == "threshold"
            and population_table()[o["population"]].coupling not in cell_types()
        ):
            raise InputError(f"{where}.population", "has no coupling cell type")
        if o["kind"] != "experiment":
            continue
        if o["experiment"] not in experiments:
            raise InputError(
                f"{where}.experiment",
                f"unknown experiment {o['experiment']!r}",
                list(experiments) or "declare it under [experiments]",
            )
        if o["experiment"] not in specs:
            try:
                specs[o["experiment"]] = load_experiment(experiments[o["experiment"]]).spec
            except InputError as exc:
                raise exc.within(
                    f"experiments.{o['experiment']} ({experiments[o['experiment']]}): "
                ) from None
        _check_experiment_observable(o, where, specs[o["experiment"]], pops)


def _check_experiment_observable(o: dict, where: str, spec: dict, pops: list) -> None:
    """An ``experiment`` observable against its experiment's validated spec."""
    from ..experiment import RESULT_VARIABLES

    allowed_vars = list(RESULT_VARIABLES) + list(DERIVED_VARS)
    if o["var"] not in allowed_vars:
        raise InputError(f"{where}.var", f"unknown variable {o['var']!r}", allowed_vars)
    for key in ("condition", "other_condition"):
        if o.get(key) is not None and o[key] not in spec["conditions"]:
            raise InputError(
                f"{where}.{key}",
                f"unknown condition {o[key]!r} of experiment {o['experiment']!r}",
                list(spec["conditions"]),
            )
    if o["var"] == "turnover_per_day":
        if o.get("population") is not None:
            raise InputError(
                f"{where}.population",
                "turnover_per_day is counted over all spine sites: give no population",
            )
    elif o.get("population") is None:
        raise InputError(f"{where}.population", f"missing: {o['var']} is per population", pops)
    labels = [p["readout"] for p in spec["timeline"] if p["readout"]]
    needs_readout = o["var"] not in ("session_rate", "session_dw_sum")
    if needs_readout and o.get("readout") not in labels:
        raise InputError(
            f"{where}.readout",
            f"{o['var']} needs a read-out of experiment {o['experiment']!r}",
            labels,
        )
    if o.get("other_readout") is not None and o["other_readout"] not in labels:
        raise InputError(
            f"{where}.other_readout", f"unknown read-out of experiment {o['experiment']!r}", labels
        )
    if not needs_readout and o.get("readout") is not None:
        raise InputError(
            f"{where}.readout", f"{o['var']} is a sum or mean over sessions and takes no read-out"
        )
