"""The in-memory dataset every loader returns, the `--data` spec grammar and the seeded splits
(paper A.1; docs/training.md, "Datasets").

A dataset is three splits of uint8 images in (N, C, H, W) layout with int64 labels, held in memory:
augmentation then runs on whole batches as tensors (on the GPU when training there). Splits a source
lacks are drawn by a seed independent of the training seed, so every child of a search is scored on
the same validation images (the paper holds 5,000 of CIFAR-10's 50,000 training images out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

import numpy as np

from ..errors import NasnetError
from ..paths import input_path
from ..registry import unknown
from ..text import plural

SPLITS = ("train", "val", "test")
OPTION_KEYS = ("val", "test", "size", "split_seed")


@dataclass(eq=False)
class Split:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"split images must be uint8 (N, C, H, W), got {self.x.dtype} {self.x.shape}")
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.y.shape != (len(self.x),):
            raise ValueError(f"labels {self.y.shape} do not match {len(self.x)} images")

    def __len__(self) -> int:
        return len(self.x)


@dataclass(eq=False)
class Dataset:
    """A loaded dataset: `splits` holds "train", "val" and "test" (any may be empty)."""

    spec: str
    kind: str
    splits: dict[str, Split]
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    # the val split was carved out of the training images by the loader's default (no val= in the
    # spec): final training may train on it instead (TrainConfig.holdout_val, `with_val_trained`)
    default_holdout: bool = False
    # a mirror image keeps its label (photographs); False where it does not (a mirrored 2, 3, 4, 7 or
    # 9 is no digit, or another one): a recipe's random horizontal flips are then off (TrainConfig.flip)
    mirror_safe: bool = True

    def with_val_trained(self) -> "Dataset":
        """The dataset with a default-held-out val split moved back into train (train first, then val);
        itself when there is none. The spec stays the same: the recipe, not the data, decides this."""
        if not self.default_holdout or not len(self.splits["val"]):
            return self
        train, val = self.splits["train"], self.splits["val"]
        merged = Split(np.concatenate([train.x, val.x]), np.concatenate([train.y, val.y]))
        return Dataset(self.spec, self.kind, {"train": merged, "val": Split(val.x[:0], val.y[:0]),
                                              "test": self.splits["test"]}, self.num_classes, self.class_names,
                       mirror_safe=self.mirror_safe)

    @property
    def channels(self) -> int:
        return int(self.splits["train"].x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.splits["train"].x.shape[2])

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise NasnetError(unknown("split", name, SPLITS))
        s = self.splits.get(name)
        if s is None or len(s) == 0:
            raise NasnetError(f"data {self.spec!r} has no {name} split")
        return s

    def summary(self) -> str:
        sizes = " / ".join(f"{len(self.splits[s]):,} {s}" for s in SPLITS if s in self.splits)
        c, h = self.channels, self.image_size
        return f"{self.spec}: {sizes}; {c}x{h}x{h} images, {plural(self.num_classes, 'class', 'classes')}"


@dataclass(frozen=True)
class DataSpec:
    kind: str
    path: str | None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str, default=None):
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        text = self.kind + (f":{self.path}" if self.path is not None else "")
        return text + "".join(f",{k}={v}" for k, v in self.options)


_OPTION = re.compile(r",([a-z_]+)=([^,]*)$")


def parse_spec(spec: str, kinds: Collection[str]) -> DataSpec:
    """Split a `--data` string, KIND[:PATH][,key=value]..., into kind, path and options (options are taken
    from the right, so a path may hold commas). Options: `val` and `test` (a fraction in (0, 1) or a
    count of images, for sources that lack that split), `size` (folder: the stored image side),
    `split_seed` (the seed of the fixed split, default 0). E.g. `cifar10:~/data/cifar-10-python.tar.gz`,
    `folder:/data/flowers,size=96,val=0.1`.

    Raises NasnetError for an empty spec, an unknown kind, or a bad option."""
    text = str(spec).strip()
    if not text:
        raise NasnetError(f"empty data spec (use one of: {', '.join(kinds)})")
    options: list[tuple[str, str]] = []
    while True:
        m = _OPTION.search(text)
        if not m or m.group(1) not in OPTION_KEYS:
            break
        options.insert(0, (m.group(1), m.group(2)))
        text = text[: m.start()]
    kind, sep, path = text.partition(":")
    kind = kind.strip().lower()
    if "," in kind:  # "digits,colour=red": an option we do not know
        kind, _, bad = kind.partition(",")
        raise NasnetError(f"data {spec!r}: {unknown('option', bad.split('=')[0], OPTION_KEYS)}")
    if kind not in kinds:
        raise NasnetError(f"data {spec!r}: {unknown('kind', kind, kinds, hint='e.g. cifar10:PATH')}")
    return DataSpec(kind, path.strip() if sep else None, tuple(options))


def amount(value, total: int, what: str, spec) -> int:
    """A split size from an option: a fraction of `total` in (0, 1), or a count."""
    if value is None:
        return 0
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NasnetError(f"data {spec}: {what}={value!r} is not a number") from None
    n = int(round(v * total)) if 0 < v < 1 else int(v)
    if v < 0 or v != v or (v >= 1 and v != int(v)) or n >= total:
        raise NasnetError(f"data {spec}: {what}={value} must be a fraction in (0, 1) or a count below {total}")
    return n


def seeded_split(x: np.ndarray, y: np.ndarray, holdout: int, seed: int) -> tuple[Split, Split]:
    """Hold `holdout` random examples out of (x, y): returns (kept, held out), a fixed seeded draw."""
    order = np.random.default_rng(seed).permutation(len(x))
    held, kept = np.sort(order[:holdout]), np.sort(order[holdout:])
    return Split(x[kept], y[kept]), Split(x[held], y[held])


def split_seed(spec: DataSpec) -> int:
    value = spec.option("split_seed", "0")
    try:
        return int(value)
    except ValueError:
        raise NasnetError(f"data {spec}: split_seed={value!r} is not an integer") from None


def existing_path(spec: DataSpec, what: str, want: str = "file") -> Path:
    """The spec's PATH, which must be a regular file or a folder as `want` says ("file", "folder", "file or
    folder"; nasnet.paths.input_path): a FIFO or a device is refused before it is opened."""
    if not spec.path:
        raise NasnetError(f"data {spec}: give the {what} as {spec.kind}:PATH")
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise NasnetError(f"data {spec}: {path} does not exist")
    try:
        return input_path(path, want)
    except NasnetError as err:
        raise NasnetError(f"data {spec}: {err}") from None


def finish(spec: DataSpec, train: Split, val: Split | None, test: Split | None, num_classes: int,
           class_names: list[str], default_val: float | int = 0, default_test: float | int = 0,
           mirror_safe: bool = True) -> "Dataset":
    """Carve missing val/test splits out of train (seeded) and check labels; the shared tail of every loader."""
    seed = split_seed(spec)
    total = len(train)  # fractions are of the source's training images, before anything is held out
    if test is None:
        n = amount(spec.option("test", default_test), total, "test", spec)
        train, test = seeded_split(train.x, train.y, n, seed + 1)
    elif spec.option("test") is not None:
        raise NasnetError(f"data {spec}: the source has its own test split; drop the test= option")
    default_holdout = val is None and spec.option("val") is None
    if val is None:
        n = amount(spec.option("val", default_val), total, "val", spec)
        if n >= len(train):
            raise NasnetError(f"data {spec}: val and test leave no training images")
        train, val = seeded_split(train.x, train.y, n, seed)
    elif spec.option("val") is not None:
        raise NasnetError(f"data {spec}: the source has its own validation split; drop the val= option")
    for name, s in (("train", train), ("val", val), ("test", test)):
        if len(s) and (s.y.min() < 0 or s.y.max() >= num_classes):
            raise NasnetError(f"data {spec}: {name} labels must lie in 0..{num_classes - 1}")
        if len(s) and s.x.shape[1:] != train.x.shape[1:]:
            raise NasnetError(f"data {spec}: {name} images are {s.x.shape[1:]}, train images {train.x.shape[1:]}")
    if len(train) == 0:
        raise NasnetError(f"data {spec}: no training images left")
    return Dataset(str(spec), spec.kind, {"train": train, "val": val, "test": test}, num_classes, class_names,
                   default_holdout, mirror_safe)
