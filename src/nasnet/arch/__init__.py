"""Architectures as values: genotypes (the cells), NAS-Bench-201 cells, and search spaces (paper §3, Appendix B).

Plain Python, no torch: importing `nasnet.arch` does not import torch, so the search's driver,
the command line's help and anything that only reads or writes architectures stay light.
"""

from .genotype import COMBINERS, NAMED_GENOTYPES, NASNET_A, OPS, Block, Cell, Genotype, make_cell
from .base import Space
from .nb201 import NB201_OPS, NB201Cell, NB201Space
from .space import SPACES, SearchSpace, get_space, load_architecture

__all__ = ["COMBINERS", "NAMED_GENOTYPES", "NASNET_A", "NB201_OPS", "OPS", "SPACES", "Block", "Cell", "Genotype",
           "NB201Cell", "NB201Space", "SearchSpace", "Space", "get_space", "load_architecture", "make_cell"]
