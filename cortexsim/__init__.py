"""cortexsim: TMS acting on prefrontal IT/PT circuits, from E-field to dendritic spines."""
from importlib.metadata import PackageNotFoundError, version

from .errors import InputError
from .params import load_model

try:
    __version__ = version("cortexsim")   # one place for the version: pyproject.toml
except PackageNotFoundError:             # imported from a source tree without any install
    __version__ = "0+unknown"

__all__ = ["InputError", "__version__", "load_model"]
