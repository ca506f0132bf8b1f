"""Architectures as values: genotypes (the cells) and search spaces (paper §3, Appendix B).

Plain Python, no torch: importing `nasnet.arch` does not import torch, so the search's driver,
the command line's help and anything that only reads or writes architectures stay light.
"""

from .genotype import COMBINERS, NAMED_GENOTYPES, NASNET_A, OPS, Block, Cell, Genotype, make_cell
from .space import SPACES, SearchSpace, get_space

__all__ = ["COMBINERS", "NAMED_GENOTYPES", "NASNET_A", "OPS", "SPACES", "Block", "Cell", "Genotype", "SearchSpace",
           "get_space", "make_cell"]
