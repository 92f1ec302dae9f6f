"""E-field -> membrane coupling: waveforms, field at the target, membrane response per cell type.

Pure numpy/scipy.  See docs/coupling.md for the model, its derivation and its validation.
Every number a user gives is checked up front against a documented range
(:mod:`cortexsim.coupling.limits`).
"""
from . import limits
from .cable import (
                    cable_threshold_vpm,
                    fit_sd_time_constant,
                    reduced_end_potential,
                    reduced_terminal_threshold_vpm,
                    solve_cable,
                    strength_duration,
)
from .field import (
                    FieldSamples,
                    cell_field_vpm,
                    field_at_target,
                    load_field_samples,
                    macroscopic_field_vpm,
                    macroscopic_to_cell_vpm,
                    pct_rmt_from_cell_field,
                    pct_rmt_from_macroscopic,
)
from .membrane import (
                    CELL_TYPES,
                    cell_types,
                    recruitment,
                    response_peaks,
                    sample_thresholds,
                    somatic_polarization_mV,
                    step_response,
                    terminal_response,
                    threshold_report,
                    threshold_vpm,
)
from .waveforms import WAVEFORMS, Waveform, check_width, from_samples, get_waveform

__all__ = [
                    "CELL_TYPES",
                    "WAVEFORMS",
                    "FieldSamples",
                    "Waveform",
                    "cable_threshold_vpm",
                    "cell_field_vpm",
                    "cell_types",
                    "check_width",
                    "field_at_target",
                    "fit_sd_time_constant",
                    "from_samples",
                    "get_waveform",
                    "limits",
                    "load_field_samples",
                    "macroscopic_field_vpm",
                    "macroscopic_to_cell_vpm",
                    "pct_rmt_from_cell_field",
                    "pct_rmt_from_macroscopic",
                    "recruitment",
                    "reduced_end_potential",
                    "reduced_terminal_threshold_vpm",
                    "response_peaks",
                    "sample_thresholds",
                    "solve_cable",
                    "somatic_polarization_mV",
                    "step_response",
                    "strength_duration",
                    "terminal_response",
                    "threshold_report",
                    "threshold_vpm",
]
