"""TMS drive of a fast phase: pulse times and the cell-level field of each pulse, and the pulse
grid a compiled circuit is built for."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, check_number


@dataclass
class Stimulus:
    """TMS drive of one fast phase: pulse times (s from phase start) and the cell-level field
    (V/m, peak of the waveform at the target, after the macroscopic-to-cell scaling) per pulse."""

    pulse_times_s: np.ndarray
    field_vpm: np.ndarray
    waveform: str = "biphasic"
    angle_deg: float = 0.0
    pulse_width_us: float | None = None

    def __post_init__(self):
        self.pulse_times_s = np.asarray(self.pulse_times_s, dtype=float)
        self.field_vpm = np.broadcast_to(np.asarray(self.field_vpm, dtype=float),
                                         self.pulse_times_s.shape).copy()
        if np.any(~np.isfinite(self.field_vpm)) or np.any(self.field_vpm < 0):
            raise InputError("stimulus.field_vpm", "must be finite and >= 0")
        if np.any(~np.isfinite(self.pulse_times_s)) or np.any(self.pulse_times_s < 0):
            raise InputError("stimulus.pulse_times_s", "must be finite and >= 0")

    @classmethod
    def from_protocol(cls, protocol, cell_field_vpm: float, offset_s: float = 0.0, **kw):
        """Pulses of one session of ``protocol`` (a Protocol or name), starting at ``offset_s``."""
        from ..protocols import get_protocol
        p = get_protocol(protocol)
        check_number("cell_field_vpm", cell_field_vpm, min=0)
        return cls(p.pulse_times() + offset_s, p.intensities() * cell_field_vpm, **kw)

    @classmethod
    def none(cls):
        return cls(np.zeros(0), np.zeros(0))

    def until(self, t_end_s: float, dt_s: float) -> Stimulus:
        """The pulses that a phase of length ``t_end_s`` (step ``dt_s``) delivers."""
        keep = self.pulse_times_s < t_end_s - 0.5 * dt_s
        return Stimulus(self.pulse_times_s[keep], self.field_vpm[keep], self.waveform,
                        self.angle_deg, self.pulse_width_us)


def pulse_slot_s(times_s: np.ndarray, dt_s: float, max_slot_s: float = 0.02) -> float:
    """Largest grid (a multiple of dt, <= ``max_slot_s``) on which every pulse time, rounded to
    the nearest time step, lies.  Any protocol can be simulated: a pulse off the dt grid is
    delivered at the nearest step (at most dt/2 early or late, as in every clock-driven
    simulator); a protocol whose pulses share no coarser grid runs on the dt grid itself."""
    steps = np.round(np.asarray(times_s, dtype=float) / dt_s).astype(np.int64)
    g = int(np.gcd.reduce(steps)) if steps.size and steps.any() else round(max_slot_s / dt_s)
    best = 1
    for d in range(1, round(max_slot_s / dt_s) + 1):
        if g % d == 0:
            best = d
    return best * dt_s


