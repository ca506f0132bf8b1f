"""Datasets behind one `--data` spec (paper A.1, A.7): the bundled digits, CIFAR-10 / CIFAR-100
archives, image folders and NumPy arrays (docs/training.md, "Datasets"; the files each kind reads:
docs/formats.md).

`load_dataset(spec)` returns a `Dataset` of uint8 (N, C, H, W) arrays with fixed seeded splits.
Loaded datasets are cached per process, so a worker that trains many children of a search reads its
data once. `KINDS` are the kinds a spec may name, each with its loader (its grammar:
nasnet.data.core.parse_spec).
"""

from __future__ import annotations

from functools import lru_cache

from ..registry import Registry
from .core import SPLITS, Dataset, DataSpec, Split, parse_spec

# kind -> the loader of its module (imported when first used)
KINDS = Registry("kind", {"digits": "nasnet.data.digits:load", "cifar10": "nasnet.data.cifar:load",
                               "cifar100": "nasnet.data.cifar:load", "folder": "nasnet.data.folder:load",
                               "npz": "nasnet.data.npz:load"}, lazy=True)

__all__ = ["KINDS", "SPLITS", "DataSpec", "Dataset", "Split", "clear_cache", "load_dataset", "parse_spec"]


def parse(spec: str) -> DataSpec:
    return parse_spec(spec, KINDS)


def load_dataset(spec: str = "digits") -> Dataset:
    """The dataset `spec` names (`parse_spec`), cached per process by its normalised spec.

    Raises NasnetError for a spec that does not parse, or data that cannot be read or used."""
    return _cached(str(parse(spec)))


@lru_cache(maxsize=4)
def _cached(normalised: str) -> Dataset:
    ds = parse(normalised)
    return KINDS[ds.kind](ds)


def clear_cache() -> None:
    _cached.cache_clear()
