"""Datasets behind one `--data` spec (paper A.1, A.7; docs/formats.md).

    digits                the default: scikit-learn's bundled 8x8 digits, 1,257 / 180 / 360 images
    cifar10:PATH          the CIFAR-10 python-version archive (.tar.gz or its folder): 45,000 / 5,000 / 10,000
    cifar100:PATH         the CIFAR-100 python-version archive, same split
    folder:PATH           one sub-folder per class (with train/ and val/ sub-folders, or split by seed)
    npz:PATH              arrays x, y (and optionally x_val, y_val, x_test, y_test)

`load_dataset(spec)` returns a `Dataset` of uint8 (N, C, H, W) arrays. Loaded datasets are cached
per process, so a worker that trains many children of a search reads its data once.
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
    """The dataset named by `spec` (see the module docstring), cached per process by its normalised spec."""
    return _cached(str(parse(spec)))


@lru_cache(maxsize=4)
def _cached(normalised: str) -> Dataset:
    ds = parse(normalised)
    return _loader(ds.kind)(ds)


def clear_cache() -> None:
    _cached.cache_clear()
