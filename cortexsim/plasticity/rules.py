"""Fast synaptic plasticity rules behind one interface, chosen by name per projection.

A projection declared in ``models/circuit.toml`` names its rule (``plasticity = "..."``).  The
circuit asks the rule, through :class:`PlasticityRule`, for everything rule-specific:

* the Brian2 synapse model (per-synapse variables, event code, namespace) and how the rule's
  weight scales each receptor's conductance (:meth:`PlasticityRule.synapse_code`,
  :meth:`PlasticityRule.receptor_scale`);
* the initial per-synapse state (:meth:`PlasticityRule.initial_state`) and how it, and the
  transmission delay, are put on the Brian2 object (:meth:`PlasticityRule.setup`);
* what ``Circuit.run`` may set per synapse as a run-time value (:attr:`PlasticityRule.settable`)
  and what it returns per synapse after a run (:meth:`PlasticityRule.collect`);
* the per-cell variables its code reads from the postsynaptic cell
  (:meth:`PlasticityRule.post_variables`, e.g. a sliding threshold's scale) and their run-time
  values from the cells' slow-average rates (:meth:`PlasticityRule.post_values`);
* the carry-over of the state over unsimulated time of a session
  (:meth:`PlasticityRule.carry_over`);
* the per-synapse signals that drive the structural (spine) model
  (:meth:`PlasticityRule.structural_signals`);
* for a rule whose synapses are spine sites, the fast-to-slow contract
  (:class:`cortexsim.plasticity.spines.SpineContract`): per-site state, plasticity and activity
  signals of the structural core, how a new spine's synapse starts.

:class:`GraupnerBrunel` (Graupner & Brunel 2012 PNAS, :mod:`cortexsim.plasticity.synaptic`) is
the first implementation, :class:`Static` (``"none"``) the second.  A new rule subclasses
:class:`PlasticityRule` in its own module, decorates itself with :func:`register`, and its module
is named in :data:`RULE_MODULES`; it is then available to every projection by its name; neither
the circuit nor the runner changes (:mod:`cortexsim.plasticity.rate_spines`, the third rule,
is the example).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import InputError, check_choice
from . import synaptic
from .spines import GBSpines, SpineContract

#: rule name -> class (see :func:`register`)
RULES: dict[str, type[PlasticityRule]] = {}


def register(cls: type[PlasticityRule]) -> type[PlasticityRule]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    RULES[cls.name] = cls
    return cls


def rule_names() -> tuple[str, ...]:
    """Names of the registered rules."""
    return tuple(RULES)


def get_rule(name: str, params=None, *, field: str = "plasticity") -> PlasticityRule:
    """The rule registered as ``name``, built with ``params``.

    Parameters
    ----------
    name : str
        Registered name (``"graupner_brunel"``, ``"none"``).
    params
        The rule's parameters (for Graupner-Brunel: anything
        :func:`cortexsim.plasticity.synaptic.get_params` accepts); ignored by rules without any.
    field : str
        Field named in the error.

    Raises
    ------
    InputError
        Unknown rule name.
    """
    check_choice(field, name, rule_names())
    return RULES[name](params)


@dataclass
class SynapseCode(synaptic.TransmissionPathway):
    """Brian2 pieces a rule contributes to a ``Synapses`` group.

    Attributes
    ----------
    model : str
        Per-synapse variable declarations and subexpressions ('' for none).
    on_pre : dict
        Pathway name -> code.  The transmission pathway (:attr:`transmission_pathway`) receives
        the circuit's conductance update after the rule's own code.
    on_post : dict or None
        Pathway name -> code run at postsynaptic spikes.
    namespace : dict
        Constants the code refers to.
    transmission_pathway : str
        Name of the pathway that carries synaptic transmission.
    """

    model: str = ""
    on_pre: dict = field(default_factory=lambda: {"pre": ""})
    on_post: dict | None = None
    namespace: dict = field(default_factory=dict)
    transmission_pathway: str = "pre"


class PlasticityRule(SpineContract, ABC):
    """Interface of a fast plasticity rule (see the module docstring).

    Attributes
    ----------
    name : str
        Registry name, as written in a projection's ``plasticity``.
    short : str
        Short tag used in the names of the Brian2 groups that run it ('' for static synapses).
    structural : bool
        The rule supplies signals to the structural model: its synapses onto populations with
        ``spine_sites = true`` are spine sites (switched on/off, occupancy at build).
    settable : tuple of str
        Per-synapse variables ``Circuit.run`` may set as run-time values (length: synapses).
    """

    name: ClassVar[str]
    short: ClassVar[str] = ""
    structural: ClassVar[bool] = False
    settable: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params=None):
        self.params = params

    @abstractmethod
    def synapse_code(self) -> SynapseCode:
        """The Brian2 model, event code and namespace of the rule."""

    def receptor_scale(self, receptor: str) -> tuple[str, str]:
        """Code around ``g0`` in the conductance update of ``receptor``: ``(before, after)``
        such that the increment reads ``<before>g0<after>`` (e.g. ``("w*", "/w_ref")``).

        Parameters
        ----------
        receptor : str
            Receptor of the conductance (``"AMPA"``, ``"NMDA"``, ``"GABA_A"``...).

        Returns
        -------
        tuple of str
        """
        return "", ""

    def initial_state(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Initial per-synapse state of ``n`` synapses (draws from ``rng``, in a fixed order).

        Parameters
        ----------
        n : int
            Number of synapses.
        rng : numpy.random.Generator
            Source of the draws.

        Returns
        -------
        dict
            Variable name -> ndarray (n,).
        """
        return {}

    def transmission_namespace(self, state: dict) -> dict:
        """Constants of the transmission code that depend on the initial state.

        Parameters
        ----------
        state : dict
            The initial state (:meth:`initial_state`).

        Returns
        -------
        dict
            Name -> value, added to the ``Synapses`` namespace.
        """
        return {}

    def synapses_kwargs(self, delay) -> dict:
        """Extra keyword arguments of ``brian2.Synapses`` (default: one homogeneous delay).

        Parameters
        ----------
        delay : brian2.Quantity
            The projection's transmission delay.

        Returns
        -------
        dict
        """
        return {"delay": delay}

    def setup(self, S, state: dict, delay) -> None:  # noqa: B027 (optional hook)
        """Put the initial state (and anything not given to the constructor) on ``S``;
        default: nothing (the delay went to the constructor, no per-synapse state).

        Parameters
        ----------
        S : brian2.Synapses
            The group, built from :meth:`synapse_code`.
        state : dict
            Initial per-synapse state (:meth:`initial_state`).
        delay : brian2.Quantity
            The transmission delay (rules with delayed pathways set theirs here).
        """
        return None

    def post_variables(self) -> dict[str, float]:
        """Dimensionless per-cell variables the rule's code reads from the postsynaptic cell
        (as ``<name>_post``), name -> neutral value; the circuit declares them on its cells
        and sets them per run (``Circuit.run(overrides={"cells.<name>": ...})``).  Default:
        none."""
        return {}

    def post_values(self, rate, rate_ref) -> dict[str, np.ndarray]:
        """Run-time values of :meth:`post_variables` per cell from each cell's slow-average
        rate and its reference rate (Hz, arrays of the cells).  Default: none.

        Parameters
        ----------
        rate : ndarray (n_cells,)
            Each cell's slow-average rate (Hz).
        rate_ref : ndarray (n_cells,)
            Its reference rate (Hz).

        Returns
        -------
        dict
            Variable name -> ndarray (n_cells,).
        """
        return {}

    def post_code(self) -> dict:
        """Per-cell state the rule's code keeps on the postsynaptic cells: ``model`` (Brian2
        declarations), ``reset`` (code appended to the cells' reset), ``init`` (values at the
        start of every run) and ``namespace``.  Default: none ({})."""
        return {}

    def run_values(self, S, values: dict) -> dict:
        """Brian2 variable -> array for the run-time values ``values`` (names in
        :attr:`settable`).

        Parameters
        ----------
        S : brian2.Synapses
            The group.
        values : dict
            Variable name -> ndarray (n_synapses,).

        Returns
        -------
        dict

        Raises
        ------
        InputError
            A name not in :attr:`settable`.
        """
        out = {}
        for k, v in values.items():
            check_choice("spines", k, self.settable)
            out[getattr(S, k)] = v
        return out

    def collect(
        self, S, duration_s: float, i: np.ndarray, j: np.ndarray, counts: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per-synapse results after a run of ``duration_s`` (state brought to the end of the
        phase).  ``i``, ``j``: pre/post cell of each synapse; ``counts``: spikes per cell.

        Parameters
        ----------
        S : brian2.Synapses
            The group after the run.
        duration_s : float
            The run's length (s).
        i, j : ndarray of int (n_synapses,)
            Pre- and postsynaptic cell of each synapse.
        counts : ndarray (n_cells,)
            Spikes of each cell in the run.

        Returns
        -------
        dict
            Name -> ndarray (n_synapses,) (copies, not views of the group's arrays).
        """
        return {}

    def carry_over(self, state: dict, signals: dict, duration_s: float) -> dict:
        """The state after ``duration_s`` (s) of unsimulated activity with the statistics
        ``signals`` measured in a simulated sample (default: unchanged).

        Parameters
        ----------
        state : dict
            Per-synapse state (name -> ndarray).
        signals : dict
            Statistics of the sample (:meth:`structural_signals`).
        duration_s : float
            Unsimulated time (s).

        Returns
        -------
        dict
            The new state.
        """
        return dict(state)

    def structural_signals(self, syn: dict, duration_s: float) -> dict[str, np.ndarray]:
        """Per-synapse signals for the structural model from one run's results.

        Parameters
        ----------
        syn : dict
            Results of :meth:`collect`.
        duration_s : float
            The run's length (s; > 0).

        Returns
        -------
        dict
            Name -> ndarray (n_synapses,).

        Raises
        ------
        InputError
            A run length <= 0 (rules that divide by it).
        """
        return {}


@register
class Static(PlasticityRule):
    """Static synapses: fixed conductance, no per-synapse plasticity state.

    Parameters
    ----------
    params : object, optional
        Unused (the interface's parameter slot).
    """

    name = "none"

    def synapse_code(self) -> SynapseCode:
        return SynapseCode()


@register
class GraupnerBrunel(GBSpines, PlasticityRule):
    """Calcium-based rule of Graupner & Brunel 2012 PNAS (event-driven; see
    :mod:`cortexsim.plasticity.synaptic`).

    The AMPA conductance scales with the efficacy ``w`` relative to the mean initial efficacy
    ``w_ref`` (so the mean unitary conductance at build is the declared ``g``); NMDA only with
    the presence ``on`` of the spine.  With a sliding threshold (``metaplasticity.exponent``
    != 0 in ``models/synaptic.toml``) both thresholds of a synapse are multiplied by its
    postsynaptic cell's ``theta_scale`` (:func:`cortexsim.plasticity.synaptic.bcm_theta_scale`
    of the cell's rates); with the fast one (``fast_metaplasticity.exponent`` != 0) by the
    scale of the cell's spike trace over seconds relative to rest
    (:func:`cortexsim.plasticity.synaptic.fast_theta_scale`; per-cell state
    :meth:`post_code`, jump per spike ``fm_inc`` from the cell's resting rate).  Signals for the structural model: ``rho``, the time the
    calcium spent above theta_p (``t_above_p``, and its fraction of the run) and the mean
    presynaptic (NMDA-receptor) calcium of the run (``nmda_ca``: the time integral of the
    presynaptic transients, each ``c_pre`` times the Mg2+ unblock at the postsynaptic voltage,
    per second of run; normalised calcium, theta_d = 1).

    Parameters
    ----------
    params : ParamTree, GBParams or dict, optional
        Rule parameters (see :func:`cortexsim.plasticity.synaptic.get_params`; default
        ``models/synaptic.toml``).
    """

    name = "graupner_brunel"
    short = "gb"
    structural = True
    settable = ("on", "rho")
    #: per-synapse variables read back after a run (spike counters derived from cell counts)
    STATE = ("on", "rho", "c", "t_last", "t_above_p", "t_above_d", "nmda_ca")

    def __init__(self, params=None):
        super().__init__(synaptic.get_params(params))

    def synapse_code(self) -> SynapseCode:
        sm = synaptic.synapse_model(params=self.params, counters=False)
        return SynapseCode(sm.model, sm.on_pre, sm.on_post, sm.namespace, sm.transmission_pathway)

    def receptor_scale(self, receptor: str) -> tuple[str, str]:
        return {"AMPA": ("w*", "/w_ref"), "NMDA": ("on*", "")}.get(receptor, ("", ""))

    def initial_state(self, n, rng):
        return {"rho": synaptic.initial_rho(n, rng, params=self.params)}

    def transmission_namespace(self, state):
        rho0, p = state["rho"], self.params
        # conductance per unit w, so that the mean initial unitary conductance is the declared g
        return {
            "w_ref": float(np.mean(p.w_down + rho0 * (p.w_up - p.w_down))) if rho0.size else 1.0
        }

    def synapses_kwargs(self, delay) -> dict:
        return {}

    def post_variables(self):
        out = {}
        if synaptic.sliding_threshold(self.params):
            out[synaptic.THETA_SCALE] = 1.0
        if synaptic.fast_sliding(self.params):
            out[synaptic.FAST_INC] = 0.0  # no jumps: the fast scale stays 1
        return out

    def post_values(self, rate, rate_ref):
        """The slow scale from the rates (:func:`synaptic.bcm_theta_scale`); the fast sliding
        threshold's jump per spike from ``rate``, the cell's resting rate at the most recent
        read-out (:func:`synaptic.fast_increment`).

        Parameters
        ----------
        rate : ndarray (n_cells,)
            Each cell's slow-average rate (Hz; for the fast jump: its resting rate at the most
            recent read-out).
        rate_ref : ndarray (n_cells,)
            Its reference rate (Hz).

        Returns
        -------
        dict
            :data:`synaptic.THETA_SCALE` (when the thresholds slide) and
            :data:`synaptic.FAST_INC` (when the fast threshold slides) -> ndarray (n_cells,);
            empty without metaplasticity.
        """
        out = {}
        if synaptic.sliding_threshold(self.params):
            out[synaptic.THETA_SCALE] = synaptic.bcm_theta_scale(rate, rate_ref, self.params)
        if synaptic.fast_sliding(self.params):
            out[synaptic.FAST_INC] = synaptic.fast_increment(rate, self.params)
        return out

    def post_code(self):
        return synaptic.fast_cell_code(self.params)

    def setup(self, S, state, delay):
        import brian2 as b2

        S.on = state["on"]
        S.rho = state["rho"]
        S.t_last = 0 * b2.second
        synaptic.set_delays(S, delay, params=self.params)

    def collect(self, S, duration_s, i, j, counts):
        # copies: the runtime device may hand out views of its live arrays, which the next
        # run would overwrite
        syn = {name: np.array(getattr(S, name + "_")[:], dtype=float) for name in self.STATE}
        # spike counts per synapse while present ("on" is fixed during a run)
        syn["n_pre_spikes"] = syn["on"] * counts[i]
        syn["n_post_spikes"] = syn["on"] * counts[j]
        # bring rho and the threshold statistics to the end of the phase (as at events)
        # (no noise draw: t_last is left at the last event)
        scale = synaptic.post_theta_scale(S.target, j, duration_s, self.params)
        syn["c"], syn["rho"], syn["t_above_p"], syn["t_above_d"] = synaptic.advance_to(
            duration_s,
            syn["c"],
            syn["rho"],
            syn["t_last"],
            syn["on"],
            syn["t_above_p"],
            syn["t_above_d"],
            self.params,
            scale,
        )
        return syn

    def carry_over(self, state, signals, duration_s):
        """GB's mean field (:func:`synaptic.advance_fractions`): ``signals`` holds the fractions
        of time above theta_p / theta_d (``frac_p``, ``frac_d``) of the simulated sample.

        Parameters
        ----------
        state : dict
            Per-synapse state (``rho`` among it).
        signals : dict
            ``frac_p``, ``frac_d``: ndarray (n_synapses,).
        duration_s : float
            Unsimulated time (s).

        Returns
        -------
        dict
            ``state`` with ``rho`` advanced.
        """
        out = dict(state)
        out["rho"] = synaptic.advance_fractions(
            state["rho"], signals["frac_p"], signals["frac_d"], duration_s, self.params
        )
        return out

    def structural_signals(self, syn, duration_s):
        if duration_s <= 0:
            raise InputError("duration_s", f"must be > 0, got {duration_s!r}")
        out = {
            "rho": syn["rho"],
            "t_above_p": syn["t_above_p"],
            "frac_p": syn["t_above_p"] / duration_s,
            "frac_d": syn["t_above_d"] / duration_s,
        }
        if "nmda_ca" in syn:  # results of collect() have it; hand-made dicts may not
            out["nmda_ca"] = np.asarray(syn["nmda_ca"], float) * self.params.tau_ca / duration_s
        return out


#: modules of further rules, imported here so that they register themselves (a new rule: its
#: module, and its name added here)
RULE_MODULES = ("cortexsim.plasticity.rate_spines",)


def _import_rule_modules() -> None:
    import importlib

    for mod in RULE_MODULES:
        importlib.import_module(mod)


_import_rule_modules()
