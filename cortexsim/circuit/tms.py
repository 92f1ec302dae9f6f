"""Per-cell TMS properties of the circuit from the coupling model (:mod:`cortexsim.coupling`):
each cell's activation threshold (V/m, sampled), its somatic polarisation per V/m, and the
fraction of afferent terminals a pulse recruits.  Each population uses the coupling model it
declares (``coupling = "<table of models/coupling.toml [cells]>"``), with the coupling
parameters the circuit is given (a spec's ``coupling.*`` overrides).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import check_choice
from ..params import ParamTree
from .layout import Layout


@dataclass(frozen=True)
class Coupling:
    """How a pulse reaches the cells.

    Attributes
    ----------
    waveform : str
        Pulse waveform (one of :data:`cortexsim.coupling.WAVEFORMS`).
    angle_deg : float
        Field direction relative to the somato-dendritic axis (degrees).
    pulse_width_us : float or None
        Pulse width (us); None: the waveform's default.
    params : ParamTree or None
        Coupling parameters (``models/coupling.toml`` with overrides); None: the model file.
    """

    waveform: str = "biphasic"
    angle_deg: float = 0.0
    pulse_width_us: float | None = None
    params: ParamTree | None = None

    def _kw(self) -> dict:
        return {"waveform": self.waveform, "angle_deg": self.angle_deg,
                "pulse_width_us": self.pulse_width_us, "params": self.params}

    def cell_properties(self, layout: Layout, rng: np.random.Generator):
        """Per-cell TMS thresholds and somatic polarisation gains.

        Parameters
        ----------
        layout : Layout
            The circuit's populations and their index ranges.
        rng : numpy.random.Generator
            Source of the threshold draws (population by population, in layout order).

        Returns
        -------
        thresholds : ndarray (N,)
            Activation threshold of each cell (V/m; inf where no terminal can fire).
        polarization : ndarray (N,)
            Somatic polarisation per unit field of each cell (mV per V/m).

        Raises
        ------
        InputError
            A population names a coupling model the coupling parameters do not declare
            (field ``circuit.populations.<name>.coupling``), or a bad coupling parameter.
        """
        from .. import coupling
        declared = coupling.cell_types(self.params)
        for name, pop in layout.populations.items():
            check_choice(f"circuit.populations.{name}.coupling", pop.coupling, declared)
        thr = np.empty(layout.N)
        pol = np.empty(layout.N)
        for name, pop in layout.populations.items():
            s = layout.slices[name]
            thr[s] = coupling.sample_thresholds(pop.coupling, layout.sizes[name], rng,
                                                **self._kw())
            pol[s] = coupling.somatic_polarization_mV(pop.coupling, 1.0, **self._kw())
        return thr, pol

    def afferent_fraction(self, field_vpm) -> np.ndarray:
        """Fraction of afferent terminals recruited by each pulse.

        Parameters
        ----------
        field_vpm : array_like
            Cell-level peak field of each pulse (V/m, >= 0).

        Returns
        -------
        ndarray
            Same shape as ``field_vpm``, in [0, 1] (0 where the field is 0).
        """
        from .. import coupling
        field_vpm = np.asarray(field_vpm, dtype=float)
        out = np.zeros_like(field_vpm)
        nz = field_vpm > 0
        if nz.any():
            out[nz] = coupling.recruitment("afferent", field_vpm[nz], **self._kw())
        return out
