"""Per-cell TMS properties of the circuit from the coupling model (:mod:`cortexsim.coupling`):
each cell's activation threshold (V/m, sampled), its somatic polarisation per V/m, and the
fraction of afferent terminals a pulse recruits.  Each population uses the coupling model it
declares (``coupling = "<table of models/coupling.toml [cells]>"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Layout


@dataclass(frozen=True)
class Coupling:
    """How a pulse reaches the cells: waveform, field angle and pulse width (None: the
    waveform's default)."""

    waveform: str = "biphasic"
    angle_deg: float = 0.0
    pulse_width_us: float | None = None

    def _kw(self) -> dict:
        return {"waveform": self.waveform, "angle_deg": self.angle_deg,
                    "pulse_width_us": self.pulse_width_us}

    def cell_properties(self, layout: Layout, rng: np.random.Generator):
        """Per-cell thresholds (V/m; drawn from ``rng`` population by population, in order) and
        somatic polarisation gains (mV per V/m)."""
        from .. import coupling
        thr = np.empty(layout.N)
        pol = np.empty(layout.N)
        for name, pop in layout.populations.items():
            s = layout.slices[name]
            thr[s] = coupling.sample_thresholds(pop.coupling, layout.sizes[name], rng,
                                                **self._kw())
            pol[s] = coupling.somatic_polarization_mV(pop.coupling, 1.0, **self._kw())
        return thr, pol

    def afferent_fraction(self, field_vpm) -> np.ndarray:
        """Fraction of afferent terminals recruited by each pulse's cell-level field (V/m)."""
        from .. import coupling
        field_vpm = np.asarray(field_vpm, dtype=float)
        out = np.zeros_like(field_vpm)
        nz = field_vpm > 0
        if nz.any():
            out[nz] = coupling.recruitment("afferent", field_vpm[nz], **self._kw())
        return out
