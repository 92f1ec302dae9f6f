"""The fast-to-slow contract: what a plasticity rule gives the structural (spine) core.

A rule whose synapses are spine sites (``structural = True``) declares, through
:class:`SpineContract` (a base of every :class:`cortexsim.plasticity.rules.PlasticityRule`):

* its **per-site state** (:attr:`SpineContract.site_state`): the arrays, one value per spine
  site, carried from one fast phase to the next (checkpointed, snapshotted at read-outs, given
  to the network as run-time values with the sites' presence: :meth:`SpineContract.run_spines`),
  and their values at the start (:meth:`SpineContract.initial_sites`);
* its **plasticity signal** (:meth:`SpineContract.plasticity_signal`): per site, in [0, 1], the
  structural core's ``plast`` (stabilisation of a spine);
* its **activity signals** (:meth:`SpineContract.activity_signals`): per cell, from one fast
  phase, the two signals :func:`cortexsim.plasticity.structural.session_drive` counts against
  rest (``ltp``, the LTP signal; ``nmda``, the NMDA-receptor calcium);
* how the per-site state goes on over a session (:meth:`SpineContract.after_session`) and how a
  **new spine's synapse starts** (:meth:`SpineContract.new_spine_sites`);
* the efficacy the recorder averages per population (:meth:`SpineContract.efficacy`).

The experiment (:mod:`cortexsim.experiment.phases`, :mod:`cortexsim.experiment.shared`) calls
only these; :class:`GBSpines` is Graupner-Brunel's side of it.  A new spine-driving rule is one
module (a :class:`~cortexsim.plasticity.rules.PlasticityRule` subclass that implements these
methods, decorated with :func:`~cortexsim.plasticity.rules.register`) plus its module's name in
:data:`cortexsim.plasticity.rules.RULE_MODULES` (example: :mod:`cortexsim.plasticity.rate_spines`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

__all__ = [
    "GBSpines",
    "SpineContract",
    "ltp_time_per_cell",
    "mean_per_cell",
    "nmda_calcium_per_cell",
    "reset_new_spines",
    "rho_after_session",
]


class SpineContract:
    """What a spine-driving rule declares for the structural core (see the module docstring).

    The defaults are those of a rule whose synapses are no spine sites; a rule with
    ``structural = True`` implements :meth:`plasticity_signal` and :meth:`activity_signals`
    and, if it keeps per-site state, :attr:`site_state` and the methods that use it.

    Attributes
    ----------
    site_state : tuple of str
        Names of the per-site state arrays (each also an entry of the rule's
        :meth:`~cortexsim.plasticity.rules.PlasticityRule.initial_state`).
    """

    site_state: ClassVar[tuple[str, ...]] = ()

    def initial_sites(self, drawn_state: dict) -> dict[str, np.ndarray]:
        """The per-site state at the start of every condition.

        Parameters
        ----------
        drawn_state : dict
            The spine-site group's initial state as drawn
            (:attr:`cortexsim.circuit.drawn.DrawnCircuit.state`).

        Returns
        -------
        dict
            Name -> float64 array (n_sites,), copies.
        """
        return {k: np.asarray(drawn_state[k], dtype=float).copy() for k in self.site_state}

    def run_spines(self, on, sites: dict) -> dict:
        """Run-time values of the spine sites for ``Circuit.run(spines=...)``.

        Parameters
        ----------
        on : ndarray (n_sites,)
            Presence of each site (1 present, 0 empty).
        sites : dict
            The per-site state.

        Returns
        -------
        dict
            ``on`` and the per-site state (names the rule's ``settable`` accepts).
        """
        return {"on": on, **sites}

    def plasticity_signal(self, sites: dict) -> np.ndarray:
        """The structural core's plasticity signal of every site, in [0, 1].

        Parameters
        ----------
        sites : dict
            The per-site state.

        Returns
        -------
        ndarray (n_sites,)
        """
        raise NotImplementedError(f"{type(self).__name__} drives no spines")

    def activity_signals(self, res, site_post, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
        """The activity signals of one fast phase per cell: ``(ltp, nmda)``, counted against
        the same signals at rest by :func:`cortexsim.plasticity.structural.session_drive`.

        Parameters
        ----------
        res : PhaseResult
            The fast phase.
        site_post : ndarray of int (n_sites,)
            Postsynaptic cell of each site.
        n_cells : int
            Number of cells.

        Returns
        -------
        ltp, nmda : ndarray (n_cells,)
        """
        raise NotImplementedError(f"{type(self).__name__} drives no spines")

    def after_session(self, res, sites: dict, on, session_s: float) -> dict:
        """The per-site state at the end of a session of ``session_s`` seconds whose fast
        phase ``res`` simulated its start (default: unchanged).

        Parameters
        ----------
        res : PhaseResult
            The session's fast phase.
        sites : dict
            The per-site state the session started with.
        on : ndarray (n_sites,)
            Presence of each site during the session.
        session_s : float
            Session length (s).

        Returns
        -------
        dict
        """
        return dict(sites)

    def new_spine_sites(self, sites: dict, new) -> dict:
        """The per-site state with the synapses of new spines (``new``) at their start
        (default: unchanged).

        Parameters
        ----------
        sites : dict
            The per-site state.
        new : ndarray of bool (n_sites,)
            Sites present now that were empty at the latest fast phase or read-out.

        Returns
        -------
        dict
        """
        return dict(sites)

    def efficacy(self, sites: dict) -> np.ndarray:
        """Efficacy of every site's synapse, as the recorder averages it (default: 1).

        Parameters
        ----------
        sites : dict
            The per-site state.

        Returns
        -------
        ndarray (n_sites,)
        """
        n = len(next(iter(sites.values()))) if sites else 0
        return np.ones(n)


class GBSpines(SpineContract):
    """Graupner-Brunel's side of the contract: the per-site state is the efficacy ``rho``;
    its plasticity signal ``clip(rho, 0, 1)``; its activity signals the mean time per second a
    cell's present synapses spent above theta_p (:func:`ltp_time_per_cell`) and their mean
    presynaptic NMDA calcium (:func:`nmda_calcium_per_cell`); over a session's unsimulated rest
    the GB mean field (:func:`rho_after_session`); a new spine starts depressed
    (:func:`reset_new_spines`)."""

    site_state = ("rho",)

    def plasticity_signal(self, sites):
        return np.clip(sites["rho"], 0.0, 1.0)

    def activity_signals(self, res, site_post, n_cells):
        return (
            ltp_time_per_cell(res, site_post, n_cells, res.duration_s),
            nmda_calcium_per_cell(res, self, site_post, n_cells),
        )

    def after_session(self, res, sites, on, session_s):
        return {"rho": np.where(on > 0, rho_after_session(res, session_s, self), sites["rho"])}

    def new_spine_sites(self, sites, new):
        return {"rho": np.where(new, 0.0, sites["rho"])}

    def efficacy(self, sites):
        return sites["rho"]


# --------------------------------------------------------------------------- GB helpers
def rho_after_session(res, sess_len: float, rule) -> np.ndarray:
    """Efficacy of every spine-site synapse at the end of a session of ``sess_len`` s whose
    fast phase ``res`` simulated its start: over the rest, the plasticity rule's carry-over
    (:meth:`cortexsim.plasticity.rules.PlasticityRule.carry_over`; for Graupner-Brunel the GB
    mean field with the fractions of time each synapse's calcium spent above the thresholds in
    the simulated part).

    Parameters
    ----------
    res : PhaseResult
        The simulated start of the session.
    sess_len : float
        Session length (s).
    rule : PlasticityRule
        The spine sites' rule.

    Returns
    -------
    ndarray (n_sites,)
    """
    rho = np.asarray(res.syn["rho"], dtype=float)
    rest = sess_len - res.duration_s
    if rest <= 1e-9:
        return rho
    signals = rule.structural_signals(res.syn, res.duration_s)
    return np.asarray(rule.carry_over({"rho": rho}, signals, rest)["rho"], dtype=float)


def ltp_time_per_cell(res, site_post, n_cells, duration_s) -> np.ndarray:
    """Mean time per second that a cell's present synapses spent above theta_p (0 for a cell
    without present plastic synapses).

    Parameters
    ----------
    res : PhaseResult
        A fast phase (its spine sites' ``t_above_p``, s, and ``on``).
    site_post : ndarray of int (n_sites,)
        Postsynaptic cell of each site.
    n_cells : int
        Number of cells.
    duration_s : float
        Length of the phase (s).

    Returns
    -------
    ndarray (n_cells,)
        Seconds above theta_p per second, averaged over the cell's present synapses.
    """
    return mean_per_cell(res.syn["t_above_p"], res.syn["on"], site_post, n_cells) / duration_s


def nmda_calcium_per_cell(res, rule, site_post, n_cells) -> np.ndarray:
    """Mean presynaptic (NMDA-receptor) calcium per second of a cell's present synapses (the
    rule's structural signal ``nmda_ca``; 0 for a cell without present plastic synapses).

    Parameters
    ----------
    res : PhaseResult
        A fast phase.
    rule : PlasticityRule
        The spine sites' rule (its :meth:`structural_signals` give ``nmda_ca``).
    site_post : ndarray of int (n_sites,)
        Postsynaptic cell of each site.
    n_cells : int
        Number of cells.

    Returns
    -------
    ndarray (n_cells,)
        Normalised calcium (theta_d = 1), time integral of the transients per second.
    """
    sig = rule.structural_signals(res.syn, res.duration_s)
    return mean_per_cell(sig["nmda_ca"], res.syn["on"], site_post, n_cells)


def mean_per_cell(values, on, site_post, n_cells) -> np.ndarray:
    """Mean of a per-site value over each cell's present sites (0 for a cell without any).

    Parameters
    ----------
    values, on : ndarray (n_sites,)
        The value and the presence of each site.
    site_post : ndarray of int (n_sites,)
        Postsynaptic cell of each site.
    n_cells : int
        Number of cells.

    Returns
    -------
    ndarray (n_cells,)
    """
    on = np.asarray(on) > 0
    v = np.asarray(values, dtype=float)
    num = np.bincount(site_post[on], weights=v[on], minlength=n_cells)
    den = np.bincount(site_post[on], minlength=n_cells)
    return np.where(den > 0, num / np.maximum(den, 1), 0.0)


def reset_new_spines(rho, on, prev_on):
    """A spine that formed since the last fast phase starts in the DOWN state (rho = 0): new
    spines are small and weak (Holtmaat et al. 2005; Knott et al. 2006) and must be potentiated
    to stabilise.

    Parameters
    ----------
    rho : ndarray (n_sites,)
        Efficacies.
    on : ndarray (n_sites,)
        Present now.
    prev_on : ndarray (n_sites,)
        Present at the last fast phase.

    Returns
    -------
    ndarray (n_sites,)
    """
    return np.where((on > 0) & (prev_on == 0), 0.0, rho)
