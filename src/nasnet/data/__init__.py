"""Datasets behind one `--data` spec (paper A.1, A.7): the bundled digits, CIFAR-10 / CIFAR-100
archives, image folders and NumPy arrays (docs/training.md, "Datasets"; the files each kind reads:
docs/formats.md).

`load_dataset(spec)` returns a `Dataset` of uint8 (N, C, H, W) arrays with fixed seeded splits.
Loaded datasets are cached per process, so a worker that trains many children of a search reads its
data once. `KINDS` are the kinds a spec may name (its grammar: nasnet.data.core.parse_spec).
"""

from __future__ import annotations

from functools import lru_cache

from .core import SPLITS, Dataset, DataSpec, Split, parse_spec

KINDS = ("digits", "cifar10", "cifar100", "folder", "npz")

__all__ = ["KINDS", "SPLITS", "DataSpec", "Dataset", "Split", "clear_cache", "load_dataset", "parse_spec"]


def _loader(kind: str):
    if kind == "digits":
        from .digits import load
    elif kind in ("cifar10", "cifar100"):
        from .cifar import load
    elif kind == "folder":
        from .folder import load
    else:
        from .npz import load
    return load


def parse(spec: str) -> DataSpec:
    return parse_spec(spec, KINDS)


def load_dataset(spec: str = "digits") -> Dataset:
    """The dataset `spec` names (`parse_spec`), cached per process by its normalised spec.

    Raises NasnetError for a spec that does not parse, or data that cannot be read or used."""
    return _cached(str(parse(spec)))


@lru_cache(maxsize=4)
def _cached(normalised: str) -> Dataset:
    ds = parse(normalised)
    return _loader(ds.kind)(ds)


def clear_cache() -> None:
    _cached.cache_clear()
