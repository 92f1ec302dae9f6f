"""cortexsim: TMS acting on prefrontal IT/PT circuits, from E-field to dendritic spines."""
from .errors import InputError
from .params import load_model

__version__ = "0.1.0"

__all__ = ["InputError", "load_model", "__version__"]
