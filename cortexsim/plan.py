"""What a resolved experiment config will run, worked out without building or running anything.

:func:`condition_plans` places every condition's phases, read-outs, stimulation sessions and
pulses on the experiment's clock (time 0 = start of the timeline), as the runner
(:mod:`cortexsim.experiment.phases`) will; :func:`network_runs` lists the Brian2 network runs of
the runner's three passes (pass 1: resting statistics; pass 2: the sessions and their rest
references; pass 3: the read-outs), merged where the runner shares them between conditions.
:func:`synapse_count` gives the expected number of synapses of a scale from the circuit model.
Used by ``cortexsim check`` (:mod:`cortexsim.cost`) and the NWB export (:mod:`cortexsim.nwb`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SECONDS_PER_DAY = 86400.0


@dataclass
class ConditionPlan:
    """One condition's timeline on the experiment clock.

    Attributes
    ----------
    name : str
        Condition name.
    cond : dict
        The condition's normalised spec (``stress``, ``protocol``, ``silence``, ...).
    protocol : cortexsim.protocols.Protocol or None
        Its protocol (None: no stimulation).
    phases : list of dict
        ``label``, ``kind``, ``start_d``, ``days``, ``readout`` (label or None), in order.
    session_starts_s : ndarray, shape (n_sessions,)
        Start of every stimulation session (s from the start of the timeline).
    session_len_s : float
        Length of one session: first to last pulse plus ``settings.session_tail_s`` (s).
    simulated_s : float
        Part of each session simulated pulse by pulse (s; ``settings.session_sample_s``); the
        rest is carried by the GB mean field.
    """

    name: str
    cond: dict
    protocol: object
    phases: list = field(default_factory=list)
    session_starts_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    session_len_s: float = 0.0
    simulated_s: float = 0.0

    @property
    def modality(self) -> str:
        """``"tms"`` or ``"light"``."""
        return self.cond.get("modality", "tms")

    @property
    def intensity_pct_rmt(self) -> float | None:
        """TMS intensity of the sessions (% RMT): the condition's, else the protocol's, else
        100; None for light or without a protocol."""
        if self.protocol is None or self.modality == "light":
            return None
        pct = self.cond["intensity_pct_rmt"]
        if pct is None:
            pct = self.protocol.intensity_pct_rmt or 100.0
        return float(pct)

    @property
    def stimulates(self) -> bool:
        """Whether the sessions deliver anything (a protocol that is not sham)."""
        return self.protocol is not None and not self.protocol.sham

    def pulses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pulse of the schedule on the experiment clock.

        Returns
        -------
        times_s : ndarray, shape (n_pulses,)
            Pulse times (s from the start of the timeline), ascending.
        session : ndarray of int, shape (n_pulses,)
            Session index (0-based) of each pulse.
        amplitude : ndarray, shape (n_pulses,)
            Relative amplitude: 1.0, or 0.0 for sham pulses.
        """
        if self.protocol is None:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
        t = self.protocol.pulse_times()
        times = np.add.outer(self.session_starts_s, t).ravel()
        session = np.repeat(np.arange(self.session_starts_s.size), t.size)
        amp = np.tile(self.protocol.intensities(), self.session_starts_s.size)
        return times, session, amp

    def stim_fraction(self) -> float:
        """Fraction of a simulated session inside pulse trains (0 for sham or none)."""
        p = self.protocol
        if not self.stimulates:
            return 0.0
        return float(min(1.0, p.train_duration_s / p.train_period_s))


def condition_plans(cfg: dict) -> dict[str, ConditionPlan]:
    """Every condition's phases, read-outs and sessions on the experiment clock.

    Parameters
    ----------
    cfg : dict
        A resolved config (:meth:`cortexsim.experiment.Experiment.resolved_config`) or the
        ``config`` attribute of a results file.

    Returns
    -------
    dict
        Condition name -> :class:`ConditionPlan`, in the spec's order.
    """
    from .experiment.phases import _simulated_session_s, phase_days
    from .protocols import get_protocol

    st = cfg["settings"]
    out = {}
    for cname, cond in cfg["conditions"].items():
        proto = get_protocol(cond["protocol"]) if cond["protocol"] != "none" else None
        plan = ConditionPlan(cname, cond, proto)
        t = 0.0
        for ph in cfg["timeline"]:
            days = phase_days(ph, proto)
            plan.phases.append(
                {
                    "label": ph["label"],
                    "kind": ph["kind"],
                    "start_d": t,
                    "days": days,
                    "readout": ph["readout"],
                }
            )
            if ph["kind"] == "stimulation" and proto is not None:
                plan.session_starts_s = t * SECONDS_PER_DAY + proto.session_starts_s()
            t += days
        if proto is not None:
            plan.session_len_s = proto.duration_s + st["session_tail_s"]
            plan.simulated_s = _simulated_session_s(
                proto, plan.session_len_s, st["session_sample_s"]
            )
        out[cname] = plan
    return out


def _history(cfg: dict, plan: ConditionPlan, network: str, upto: int) -> tuple:
    """What a condition's spine state after timeline phase ``upto`` depends on: its network
    and model values, and what each phase so far did to it."""
    steps = []
    for ph in cfg["timeline"][: upto + 1]:
        if ph["kind"] == "stress":
            steps.append(("stress", bool(plan.cond["stress"])))
        elif ph["kind"] == "stimulation":
            c = plan.cond
            steps.append(
                (
                    "stimulation",
                    str(c["protocol"]),
                    plan.intensity_pct_rmt,
                    tuple(c["silence"]),
                    plan.modality,
                    tuple(c.get("light_populations") or ()),
                )
            )
        else:
            steps.append((ph["kind"], ph["days"]))
    return (network, tuple(steps))


def network_runs(cfg: dict, plans: dict | None = None) -> list[dict]:
    """The network runs of ``cortexsim run`` for a resolved config, as the runner makes them
    (:class:`cortexsim.experiment.runner._Runner`); runs the runner shares between conditions
    with the same history (pass 1, read-outs of a shared history, the sessions' rest
    reference) are listed once.

    Parameters
    ----------
    cfg : dict
        A resolved config.
    plans : dict, optional
        :func:`condition_plans` of ``cfg`` (computed if not given).

    Returns
    -------
    list of dict
        One per run: ``pass`` (1, 2, 3), ``what`` (rest, session, session_reference, readout,
        evoked), ``conditions`` (names sharing it), ``bio_s`` (biological seconds simulated),
        ``stim_fraction`` (of ``bio_s`` inside pulse trains), ``build`` (key of the compiled
        network it runs on: network configuration and phase length).
    """
    from .experiment.store import digest

    plans = plans if plans is not None else condition_plans(cfg)
    st = cfg["settings"]
    short = st["baseline_fast_s"]
    runs: dict[tuple, dict] = {}

    def add(key, **kw):
        r = runs.setdefault(key, {**kw, "conditions": []})
        r["conditions"].append(kw.pop("condition"))

    labels = {k: ph["readout"] for k, ph in enumerate(cfg["timeline"]) if ph["readout"]}
    stim_k = next((k for k, ph in enumerate(cfg["timeline"]) if ph["kind"] == "stimulation"), None)
    for cname, plan in plans.items():
        c = plan.cond
        # the network configuration: model values follow from the overrides and ablations
        net = digest(
            {**cfg["overrides"], **c["overrides"]}, sorted(list(cfg["ablations"]) + c["ablations"])
        )
        add(
            ("rest", net),
            condition=cname,
            **{"pass": 1},
            what="rest",
            bio_s=short,
            stim_fraction=0.0,
            build=(net, short),
        )
        if plan.protocol is not None:
            before = [k for k in labels if stim_k is not None and k < stim_k]
            if st["session_reference"] == "before_sessions" and before:
                add(
                    ("reference", _history(cfg, plan, net, before[-1])),
                    condition=cname,
                    **{"pass": 2},
                    what="session_reference",
                    bio_s=short,
                    stim_fraction=0.0,
                    build=(net, short),
                )
            build = (net, plan.simulated_s, plan.modality)
            for s in range(plan.session_starts_s.size):
                add(
                    ("session", cname, s),
                    condition=cname,
                    **{"pass": 2},
                    what="session",
                    bio_s=plan.simulated_s,
                    stim_fraction=plan.stim_fraction(),
                    build=build,
                )
                rest = not plan.stimulates and not c["silence"]
                if st["session_reference"] == "each_session" and not rest:
                    add(
                        ("session_ref", cname, s),
                        condition=cname,
                        **{"pass": 2},
                        what="session_reference",
                        bio_s=plan.simulated_s,
                        stim_fraction=0.0,
                        build=build,
                    )
        for k, label in labels.items():
            h = _history(cfg, plan, net, k)
            for what in ("readout", "evoked"):
                add(
                    (what, h),
                    condition=cname,
                    **{"pass": 3},
                    what=what,
                    bio_s=short,
                    stim_fraction=0.0,
                    build=(net, short),
                    readout=label,
                )
    return list(runs.values())


def synapse_count(n_neurons: int, tree=None) -> dict:
    """Expected numbers of synapses of a network of ``n_neurons`` cells from the circuit
    model, as :func:`cortexsim.circuit.connectivity.draw` draws them: probabilities apply at
    the reference size and scale by reference / N (at most 1); the plastic synapses onto
    populations with spine sites are potential synapses, drawn with p / site occupancy.

    Parameters
    ----------
    n_neurons : int
        Total neuron count.
    tree : ParamTree, optional
        The circuit model (default: ``models/circuit.toml``).

    Returns
    -------
    dict
        ``total`` (every drawn synapse or site) and ``sites`` (spine sites), expected values.
    """
    from .circuit.connectivity import projections
    from .circuit.layout import Layout
    from .params import load_model

    tree = tree if tree is not None else load_model("circuit")
    layout = Layout.build(int(n_neurons), tree)
    f = tree.value("scale.reference") / layout.N
    occupancy = tree.value("plasticity.site_occupancy")
    total = sites = 0.0
    for pr in projections(tree, layout):
        is_site = pr.plasticity != "none" and layout.populations[pr.post].spine_sites
        p = min(1.0, pr.p * f / (occupancy if is_site else 1.0))
        n_pre = layout.sizes[pr.pre] - (pr.pre == pr.post)
        n = p * n_pre * layout.sizes[pr.post]
        total += n
        sites += n if is_site else 0.0
    return {"total": total, "sites": sites}
