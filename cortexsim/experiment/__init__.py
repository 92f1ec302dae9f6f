"""The timeline runner: stress days, stimulation sessions and follow-up, across timescales.

An experiment spec (TOML, see ``experiments/``) holds a **timeline** of phases shared by all
**conditions**; a condition switches phases on or off and says which protocol, intensity and
silencing it uses.  Phases:

``baseline`` / ``rest``
    slow phase: the structural core (:mod:`cortexsim.plasticity.structural`) advances the spine
    sites for ``days`` with the stress signal of the condition.
``stress``
    slow phase during which the condition's stress schedule runs (``hours_per_day``).
``stimulation``
    the condition's protocol schedule (e.g. ``aitbs_day``: 10 sessions, 50 min apart).  Every
    session is a **fast phase**: the Brian2 circuit (:class:`~cortexsim.circuit.network.Circuit`)
    is run pulse by pulse with the current spine state fed in (sites on/off, GB efficacy
    ``rho``); the gaps between sessions are slow phases.  A condition without stimulation
    (``protocol = "none"``) spends the same time as a slow phase.

Fast -> slow coupling (operator splitting, all in models/structural.toml ``[activity]``):

* each site's plasticity signal ``plast`` is its Graupner-Brunel efficacy ``rho`` at the end of
  the latest fast phase (potentiated spines stabilise, depressed ones are removed);
* each postsynaptic cell's **activity drive** is the excess, over the resting value measured in
  a baseline fast phase, of the time its synapses' calcium spent above the potentiation
  threshold (per second), times ``ltp_gain``; it decays with ``tau_h`` and raises formation and
  stabilisation of that cell's spines (LTP-driven spinogenesis and spine stabilisation).

Nothing here names a cell type: differences between IT and PT come from coupling thresholds,
intrinsic properties, connectivity and the plasticity rule (see README, "Mechanisms").

Network read-outs (population rates, evoked response) at each read-out time are computed after
the timeline from snapshots of the spine state, with one short compiled circuit.

Results are an :class:`cortexsim.results.Results` (xarray inside, full config attached).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError, check_number
from ..outdir import check_out_dir  # noqa: F401  (re-exported: it was defined here)
from ..outdir import claim_out_dir, storage_errors
from ..plasticity.spines import rho_after_session  # noqa: F401  (public: shared with benchmarks)
from .runner import _Runner
from .spec import (  # noqa: F401  (re-exported: the spec vocabulary)
    ABLATIONS,
    DEFAULT_SETTINGS,
    MODEL_NAMES,
    PHASE_KINDS,
    RESULT_VARIABLES,
    RUN_SETTINGS,
    SCALE_NAMES,
    SEED_MAX,
    model_trees,
    parse_spec,
    read_spec,
    resolve_settings,
)


def load_experiment(path) -> "Experiment":
    """Read and validate an experiment spec (TOML).  A spec may start from another one:
    ``extends = "aitbs_study.toml"`` (path relative to the spec) takes that spec and lays this
    one's tables over it (tables merge key by key; lists such as the timeline and criteria, and
    plain values, replace).

    Parameters
    ----------
    path : str or Path
        The spec (TOML).

    Returns
    -------
    Experiment

    Raises
    ------
    InputError
        Missing or malformed file or an invalid spec (one line naming the field).
    """
    from ..specs import spec_path

    p = spec_path(path)
    return Experiment(parse_spec(read_spec(p), source=str(p)), path=str(p))


# --------------------------------------------------------------------------- runner
class Experiment:
    """A validated experiment spec; :meth:`run` simulates it.

    Parameters
    ----------
    spec : dict
        The validated, normalised spec (from :func:`load_experiment` or :meth:`from_dict`).
    path : str, optional
        The spec's file.
    """

    def __init__(self, spec: dict, path: str | None = None):
        self.spec = spec
        self.path = path
        self.name = spec["experiment"]["name"]

    @classmethod
    def from_dict(cls, raw: dict) -> "Experiment":
        """An experiment from a raw spec (a dict as read from TOML, ``extends`` merged).

        Parameters
        ----------
        raw : dict
            The spec.

        Returns
        -------
        Experiment

        Raises
        ------
        InputError
            The first problem of the spec (:func:`cortexsim.experiment.spec.parse_spec`).
        """
        return cls(parse_spec(raw))

    def resolved_config(self, seed=None, scale=None, settings=None, workers: int = 1) -> dict:
        """The spec with seed, scale, the scale's own settings and ``settings`` applied.

        Parameters
        ----------
        seed : int, optional
            Replaces the spec's seed.
        scale : str or int, optional
            Replaces the spec's scale (a name or a neuron count).
        settings : dict, optional
            Run settings (``RunSettings`` fields) applied last.
        workers : int
            Worker processes (checked: 1 to 256).

        Returns
        -------
        dict
            The normalised config with ``settings`` resolved.

        Raises
        ------
        InputError
            Seed outside [0, 2**31 - 1], unknown scale, unknown or out-of-range setting.
        """
        cfg = copy.deepcopy(self.spec)
        if seed is not None:
            cfg["experiment"]["seed"] = check_seed(seed)
        cfg["settings"] = resolve_settings(cfg["settings"], scale, settings)
        check_number("workers", workers, min=1, max=256, integer=True)
        return cfg

    def run(
        self,
        seed=None,
        scale=None,
        progress: bool = True,
        checkpoint_dir=None,
        workers: int = 1,
        settings: dict | None = None,
        readouts: dict | None = None,
    ):
        """Run every condition (``workers`` > 1: conditions in parallel processes); returns
        :class:`cortexsim.results.Results`.  ``checkpoint_dir``: save each condition after
        every phase and resume finished phases on a re-run.

        Parameters
        ----------
        seed, scale, settings, workers
            As for :meth:`resolved_config`.
        progress : bool
            Show progress bars.
        checkpoint_dir : str or Path, optional
            Folder of the checkpoints (default: none kept).
        readouts : dict, optional
            Only these network read-outs (condition -> label -> ``"rates"`` or ``"evoked"``,
            :func:`cortexsim.experiment.readouts.needed_readouts`); the others' ``rate_readout``
            and ``evoked_response`` are NaN, every other number is the same.  Default: all.

        Returns
        -------
        cortexsim.results.Results

        Raises
        ------
        InputError
            As :meth:`resolved_config`.
        """
        cfg = self.resolved_config(seed, scale, settings, workers)
        return _Runner(
            cfg,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            workers=workers,
            readouts=readouts,
        ).run()


# --------------------------------------------------------------------------- CLI
def check_seed(seed, field: str = "seed") -> int:
    """A seed in [0, 2**31 - 1] (stored exactly in results.nc and used by every generator).

    Parameters
    ----------
    seed : int
        The seed given.
    field : str
        Name for the error message.

    Returns
    -------
    int

    Raises
    ------
    InputError
        Not an integer in range (a bool is not).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(field, f"expected an integer, got {seed!r}", f"0 ... {SEED_MAX}")
    if not 0 <= seed <= SEED_MAX:
        raise InputError(field, f"out of range: {seed}", f"0 ... {SEED_MAX}")
    return int(seed)


def run_cli(spec, scale=None, out=None, seed=None, progress=True, workers=1, settings=None) -> dict:
    """What ``cortexsim run`` does: validate everything (spec, options, ``out``), run, save.

    Returns the summary dict (``out``, ``metrics``, ``criteria``) and writes results.nc,
    summary.json, report.md and figures into ``out`` (default ``out/<experiment name>``);
    checkpoints go to ``out/checkpoints`` so that a stopped run resumes.  ``out`` is claimed
    for the whole run (:func:`cortexsim.outdir.claim_out_dir`): another process writing it
    now is refused at once.

    Parameters
    ----------
    spec : str or Path
        The spec file.
    scale : str or int, optional
        Replaces the spec's scale.
    out : str or Path, optional
        Output folder.
    seed : int, optional
        Replaces the spec's seed.
    progress : bool
        Draw progress bars.
    workers : int
        Worker processes (one condition each).
    settings : dict, optional
        Run options overriding the spec's settings.

    Returns
    -------
    dict

    Raises
    ------
    InputError
        Any bad input, before the run starts; ``out`` in use by another process.
    StorageError
        A file of ``out`` could not be written (disk full, permission denied).
    """
    exp = load_experiment(spec)
    cfg = exp.resolved_config(seed, scale, settings, workers)  # every option checked here
    from ..validation.model import criteria_provenance

    fitted_to = criteria_provenance(exp.path, cfg["criteria"])  # fitted or predicted
    if out is None:
        out = Path("out") / exp.name
    st = cfg["settings"]
    with claim_out_dir(out) as out:
        if progress and not isinstance(st["scale"], str):
            print(
                f"scale {st['scale']} neurons: settings of scale {st['settings_scale']!r} "
                f"apply (session_sample_s = {st['session_sample_s']})",
                file=sys.stderr,
            )
        res = exp.run(
            seed=seed,
            scale=scale,
            progress=progress,
            checkpoint_dir=out / "checkpoints",
            workers=workers,
            settings=settings,
        )
        for c, by in zip(res.criteria, fitted_to):
            c["fitted_to"] = by
        with storage_errors(out):
            res.save(out)
    return {"out": str(out), **res.summary()}
