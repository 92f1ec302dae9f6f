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
from pathlib import Path

from ..errors import check_choice, check_number
from .runner import _Runner, rho_after_session  # noqa: F401  (public: shared with benchmarks)
from .spec import (  # noqa: F401  (re-exported: the spec vocabulary)
    ABLATIONS, MODEL_NAMES, PHASE_KINDS, RESULT_VARIABLES, RUN_SETTINGS, SCALE_NAMES,
    _check_keys, _check_settings, parse_spec, read_spec,
)


def load_experiment(path) -> "Experiment":
    """Read and validate an experiment spec (TOML).  A spec may start from another one:
    ``extends = "aitbs_study.toml"`` (path relative to the spec) takes that spec and lays this
    one's tables over it (tables merge key by key; lists such as the timeline and criteria, and
    plain values, replace)."""
    p = Path(path)
    if not p.is_file() and not p.suffix:
        from ..params import experiments_dir
        p = experiments_dir() / f"{path}.toml"
    return Experiment(parse_spec(read_spec(p), source=str(p)), path=str(p))



# --------------------------------------------------------------------------- runner
class Experiment:
    def __init__(self, spec: dict, path: str | None = None):
        self.spec = spec
        self.path = path
        self.name = spec["experiment"]["name"]

    @classmethod
    def from_dict(cls, raw: dict) -> "Experiment":
        return cls(parse_spec(raw))

    def resolved_config(self, seed=None, scale=None, settings=None) -> dict:
        """The spec with seed, scale, the scale's own settings and ``settings`` applied."""
        cfg = copy.deepcopy(self.spec)
        if seed is not None:
            cfg["experiment"]["seed"] = int(check_number("seed", seed, min=0, integer=True))
        if scale is not None:
            cfg["settings"]["scale"] = int(scale) if str(scale).isdigit() else scale
        sc = cfg["settings"]["scale"]
        if isinstance(sc, str):
            check_choice("scale", sc, SCALE_NAMES)
            cfg["settings"].update(cfg["settings"].get("by_scale", {}).get(sc, {}))
        else:
            check_number("scale", sc, min=50, integer=True)
        if settings:
            _check_keys(settings, RUN_SETTINGS, "settings")
            cfg["settings"].update(settings)
            _check_settings(cfg["settings"], "settings")
        return cfg

    def run(self, seed=None, scale=None, progress: bool = True, checkpoint_dir=None,
            workers: int = 1, settings: dict | None = None):
        """Run every condition (``workers`` > 1: conditions in parallel processes); returns
        :class:`cortexsim.results.Results`.  ``checkpoint_dir``: save each condition after
        every phase and resume finished phases on a re-run."""
        cfg = self.resolved_config(seed, scale, settings)
        return _Runner(cfg, progress=progress, checkpoint_dir=checkpoint_dir,
                       workers=workers).run()


# --------------------------------------------------------------------------- CLI
def run_cli(spec, scale=None, out=None, seed=None, progress=True, workers=1,
            settings=None) -> dict:
    exp = load_experiment(spec)
    if out is None:
        out = Path("out") / exp.name
    res = exp.run(seed=seed, scale=scale, progress=progress,
                  checkpoint_dir=Path(out) / "checkpoints", workers=workers, settings=settings)
    res.save(out)
    return {"out": str(out), **res.summary()}

