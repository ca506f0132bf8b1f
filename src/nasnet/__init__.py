"""nasnet: the NASNet search space, model family and architecture search (Zoph et al., CVPR 2018)."""

from .errors import NasnetError
from .genotype import COMBINERS, NASNET_A, OPS, Block, Cell, Genotype
from .space import SPACES, SearchSpace, get_space

__version__ = "0.1.0"

__all__ = [
    "COMBINERS", "NASNET_A", "OPS", "SPACES", "Block", "Cell", "Genotype", "ModelConfig", "NASNet",
    "NasnetError", "SearchSpace", "build_model", "count", "create_model", "get_space", "list_models",
]

_LAZY = {
    "ModelConfig": "network", "NASNet": "network", "build_model": "network",
    "create_model": "zoo", "list_models": "zoo", "count": "counting",
}


def __getattr__(name: str):
    # torch-backed names load on first use, so `nasnet.Genotype` and the CLI's help stay light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'nasnet' has no attribute {name!r}")
