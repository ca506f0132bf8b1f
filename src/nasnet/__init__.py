"""nasnet: the NASNet search space, model family and architecture search (Zoph et al., CVPR 2018).

`nasnet.Genotype`, `nasnet.SearchSpace` and the other architecture names import no torch; the
model and zoo names load torch on first use.
"""

from .arch import COMBINERS, NASNET_A, OPS, SPACES, Block, Cell, Genotype, SearchSpace, get_space
from .errors import NasnetError

__version__ = "0.1.0"

__all__ = [
    "COMBINERS", "NASNET_A", "OPS", "SPACES", "Block", "Cell", "Genotype", "ModelConfig", "NASNet",
    "NasnetError", "SearchSpace", "build_model", "count", "create_model", "get_space", "import_weights", "list_models",
    "load_model",
]

_LAZY = {
    "ModelConfig": "model", "NASNet": "model", "build_model": "model", "count": "model",
    "create_model": "zoo", "import_weights": "zoo", "list_models": "zoo", "load_model": "zoo",
}


def __getattr__(name: str):
    # torch-backed names load on first use, so `nasnet.Genotype` and the CLI's help stay light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'nasnet' has no attribute {name!r}")
