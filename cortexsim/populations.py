"""Population (cell-type) names used everywhere in cortexsim."""
from __future__ import annotations

from .errors import check_choice

#: Cortical populations of the prefrontal slab.
POPULATIONS = ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")
#: Excitatory projection-neuron classes (carry the spines of the structural model).
EXCITATORY = ("IT_L23", "IT_L5", "PT_L5")
INHIBITORY = ("PV", "SST")


def check_population(name: str, field: str = "cell_type") -> str:
    """Return ``name`` if it is a known population, else raise InputError naming ``field``."""
    return check_choice(field, name, POPULATIONS)
