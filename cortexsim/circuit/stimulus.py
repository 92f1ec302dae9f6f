"""Drive of a fast phase: pulse times with the cell-level TMS field or the light irradiance of
each pulse, the pulse grid a compiled circuit is built for, and the channelrhodopsin-2
photocurrent of one cell (:func:`photocurrent`, the network's equations on a clamped cell)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, check_number


@dataclass
class Stimulus:
    """Drive of one fast phase: pulse times (s from phase start) and, per pulse, the cell-level
    TMS field (V/m, peak of the waveform at the target, after the macroscopic-to-cell scaling)
    or, for light pulses, the irradiance at the cells (mW/mm^2; None: no light).  Light pulses
    last ``models/opto.toml``'s ``light.pulse_width`` and open channelrhodopsin-2 in the cells
    that express it (``Circuit.run(light_populations=...)``).

    Parameters
    ----------
    pulse_times_s : ndarray (n,)
        Pulse times (s from the phase start).
    field_vpm : float or ndarray (n,)
        Cell-level field per pulse (V/m).
    waveform : str
        Pulse waveform.
    angle_deg : float
        Field direction re the somato-dendritic axis (deg).
    pulse_width_us : float, optional
        Pulse width (us; None: the waveform's default).
    irradiance_mw_mm2 : ndarray (n,), optional
        Light per pulse (mW/mm^2); None: no light.
    """

    pulse_times_s: np.ndarray
    field_vpm: np.ndarray
    waveform: str = "biphasic"
    angle_deg: float = 0.0
    pulse_width_us: float | None = None
    irradiance_mw_mm2: np.ndarray | None = None

    def __post_init__(self):
        self.pulse_times_s = np.asarray(self.pulse_times_s, dtype=float)
        self.field_vpm = np.broadcast_to(
            np.asarray(self.field_vpm, dtype=float), self.pulse_times_s.shape
        ).copy()
        if np.any(~np.isfinite(self.field_vpm)) or np.any(self.field_vpm < 0):
            raise InputError("stimulus.field_vpm", "must be finite and >= 0")
        if self.irradiance_mw_mm2 is not None:
            self.irradiance_mw_mm2 = np.broadcast_to(
                np.asarray(self.irradiance_mw_mm2, dtype=float), self.pulse_times_s.shape
            ).copy()
            if np.any(~np.isfinite(self.irradiance_mw_mm2)) or np.any(self.irradiance_mw_mm2 < 0):
                raise InputError("stimulus.irradiance_mw_mm2", "must be finite and >= 0")
        if np.any(~np.isfinite(self.pulse_times_s)) or np.any(self.pulse_times_s < 0):
            raise InputError("stimulus.pulse_times_s", "must be finite and >= 0")

    @classmethod
    def from_protocol(cls, protocol, cell_field_vpm: float, offset_s: float = 0.0, **kw):
        """Pulses of one session of ``protocol`` (a Protocol or name), starting at ``offset_s``.

        Parameters
        ----------
        protocol : Protocol or str
            The protocol (a shipped name or a Protocol).
        cell_field_vpm : float
            Cell-level field (V/m) of a pulse at relative intensity 1.
        offset_s : float
            Time of the session's start in the phase (s).
        **kw
            ``waveform``, ``angle_deg``, ``pulse_width_us`` (see the class).

        Returns
        -------
        Stimulus

        Raises
        ------
        InputError
            Unknown protocol, a negative field.
        """
        from ..protocols import get_protocol

        p = get_protocol(protocol)
        check_number("cell_field_vpm", cell_field_vpm, min=0)
        return cls(p.pulse_times() + offset_s, p.intensities() * cell_field_vpm, **kw)

    @classmethod
    def light(cls, protocol, irradiance_mw_mm2: float, offset_s: float = 0.0):
        """Light pulses at the pulse times of one session of ``protocol`` (a Protocol or name),
        starting at ``offset_s``: each pulse's irradiance is ``irradiance_mw_mm2`` times the
        protocol's relative intensity (0 for a sham protocol); no TMS field.

        Parameters
        ----------
        protocol : Protocol or str
            The protocol.
        irradiance_mw_mm2 : float
            Irradiance (mW/mm^2) at relative intensity 1.
        offset_s : float
            Time of the session's start in the phase (s).

        Returns
        -------
        Stimulus

        Raises
        ------
        InputError
            Unknown protocol, a negative irradiance.
        """
        from ..protocols import get_protocol

        p = get_protocol(protocol)
        check_number("irradiance_mw_mm2", irradiance_mw_mm2, min=0)
        t = p.pulse_times() + offset_s
        return cls(t, np.zeros(t.shape), irradiance_mw_mm2=p.intensities() * irradiance_mw_mm2)

    @classmethod
    def none(cls):
        """No pulses (a phase without stimulation)."""
        return cls(np.zeros(0), np.zeros(0))

    @property
    def is_light(self) -> bool:
        """True for light pulses (an irradiance per pulse)."""
        return self.irradiance_mw_mm2 is not None

    def until(self, t_end_s: float, dt_s: float) -> Stimulus:
        """The pulses that a phase of length ``t_end_s`` (step ``dt_s``) delivers.

        Parameters
        ----------
        t_end_s : float
            Phase length (s).
        dt_s : float
            Simulation step (s): a pulse within half a step of the end is dropped.

        Returns
        -------
        Stimulus
            A new stimulus with the pulses before the end.
        """
        keep = self.pulse_times_s < t_end_s - 0.5 * dt_s
        return Stimulus(
            self.pulse_times_s[keep],
            self.field_vpm[keep],
            self.waveform,
            self.angle_deg,
            self.pulse_width_us,
            None if self.irradiance_mw_mm2 is None else self.irradiance_mw_mm2[keep],
        )


def pulse_slot_s(times_s: np.ndarray, dt_s: float, max_slot_s: float = 0.02) -> float:
    """Largest grid (a multiple of dt, <= ``max_slot_s``) on which every pulse time, rounded to
    the nearest time step, lies.  Any protocol can be simulated: a pulse off the dt grid is
    delivered at the nearest step (at most dt/2 early or late, as in every clock-driven
    simulator); a protocol whose pulses share no coarser grid runs on the dt grid itself.

    Parameters
    ----------
    times_s : ndarray
        Pulse times (s).
    dt_s : float
        Simulation time step (s).
    max_slot_s : float
        Coarsest grid allowed (s).

    Returns
    -------
    float
        The grid (s), a multiple of ``dt_s``.
    """
    steps = np.round(np.asarray(times_s, dtype=float) / dt_s).astype(np.int64)
    g = int(np.gcd.reduce(steps)) if steps.size and steps.any() else round(max_slot_s / dt_s)
    best = 1
    for d in range(1, round(max_slot_s / dt_s) + 1):
        if g % d == 0:
            best = d
    return best * dt_s


def photocurrent(
    irradiance_mw_mm2: float,
    *,
    v_mV: float = -70.0,
    pulse_ms: float | None = None,
    duration_ms: float = 100.0,
    onset_ms: float = 10.0,
    opto=None,
    dt_ms: float = 0.01,
) -> dict:
    """Channelrhodopsin-2 photocurrent of one cell held at ``v_mV`` (voltage clamp) for one light
    pulse: the network's own equations (:data:`.equations.OPTO_EQS`) on a single cell.

    Parameters
    ----------
    irradiance_mw_mm2 : float
        Irradiance during the pulse (mW/mm^2), in the range ``models/opto.toml`` allows.
    v_mV : float
        Holding potential (mV).
    pulse_ms : float, optional
        Pulse width (ms); default ``light.pulse_width`` of the opto model.
    duration_ms, onset_ms, dt_ms : float
        Simulated time, pulse onset and integration step (ms).
    opto : ParamTree, optional
        Opto model (default ``models/opto.toml``).

    Returns
    -------
    dict
        ``t_ms``, ``open`` (open fraction O), ``desensitised`` (D) and ``current_pA``
        (``g_max O (E - v)``: the current into the cell, pA; positive = depolarising).

    Raises
    ------
    InputError
        Irradiance or pulse width out of the opto model's range; bad times.
    """
    import brian2 as b2

    from ..params import ParamTree, load_model
    from . import equations as eq

    tree = ParamTree.from_dict(dict(load_model("opto") if opto is None else opto), name="opto")
    tree.set("light.irradiance", irradiance_mw_mm2)  # checks the range
    if pulse_ms is not None:
        tree.set("light.pulse_width", pulse_ms)
    check_number("v_mV", v_mV, min=-150, max=100)
    check_number("dt_ms", dt_ms, min=0.001, max=0.2)
    check_number("duration_ms", duration_ms, min=dt_ms, max=60_000)
    check_number("onset_ms", onset_ms, min=0, max=duration_ms)
    ov = tree.values()
    # a runtime (numpy) simulation of its own, whatever device a circuit build left active
    b2.set_device("runtime")
    b2.prefs.codegen.target = "numpy"
    net = b2.Network()
    n_slots = int(round(duration_ms / dt_ms)) + 2
    light = np.zeros(n_slots)
    light[int(round(onset_ms / dt_ms))] = ov["light"]["irradiance"]
    light_I = b2.TimedArray(light, dt=dt_ms * b2.ms)
    ns = dict(eq.opto_namespace(ov), light_I=light_I)
    eqs = eq.OPTO_EQS + "v : volt (constant)\n"
    G = b2.NeuronGroup(1, eqs, method="euler", namespace=ns, dt=dt_ms * b2.ms)
    G.v = v_mV * b2.mV
    G.g_chr2 = eq.quantity(ov["chr2"]["g_max"], "nS")
    G.t_light_end = -1 * b2.second
    G.run_regularly(eq.LIGHT_PULSE, dt=dt_ms * b2.ms, when="start")
    mon = b2.StateMonitor(G, ["o_chr2", "d_chr2", "I_chr2"], record=0, dt=dt_ms * b2.ms)
    net.add(G, mon)
    net.run(duration_ms * b2.ms, namespace={})
    return {
        "t_ms": np.asarray(mon.t / b2.ms),
        "open": np.asarray(mon.o_chr2[0]),
        "desensitised": np.asarray(mon.d_chr2[0]),
        "current_pA": np.asarray(mon.I_chr2[0] / b2.pA),
    }
