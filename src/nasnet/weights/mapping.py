"""What every importer of weights shares: the one `ImportInfo`, the background class, and a name table
applied strictly (docs/weight-layouts.md).

`ImportInfo` is what an import found (format, key layout, model, classes before and after, entries
used, entries deliberately left out, notes); every importer returns one and `nasnet import-weights`
prints it. TensorFlow's 1001-class ImageNet heads hold class 0 "background": `head_classes` says what
becomes of them. A `Source` is where one of our tensors comes from (name in the file, array layout);
layout.py derives the table ``our key -> Source`` from a built model, and `apply_table` converts every
array (HWIO -> OIHW, (in, out) -> (out, in)), checks every shape first and reports every misfit at once
through `nasnet.weights.io.mismatch`: one line naming the file and the first offending names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..errors import NasnetError
from ..model.network import ModelConfig
from .io import COUNTER, mismatch

BACKGROUND_CLASSES = 1001   # TensorFlow's ImageNet heads: class 0 is "background"
REFERENCE_LAYOUT = "pretrainedmodels/timm nasnet"

# How a source array becomes our tensor.
CONV = "conv"            # (h, w, in, out) -> (out, in, h, w)
DEPTHWISE = "depthwise"  # (h, w, channels, multiplier) -> (channels * multiplier, 1, h, w)
DENSE = "dense"          # (in, out) -> (out, in); a classifier's rows are classes
CLASSES = "classes"      # a classifier's bias: one entry per class
PLAIN = "plain"          # as it is (BatchNorm vectors)


@dataclass(frozen=True)
class ImportInfo:
    """What an import found: the file's format and layout, the model, the classes, what was mapped."""

    model: str | None                      # the zoo model the weights went into (None: a config, no name)
    source_classes: int                    # classifier rows in the file (0: no classifier)
    num_classes: int                       # classes of the imported model
    dropped_background: bool               # a 1001-class head lost its background class 0
    keys: int                              # entries of the file that became weights
    counters_missing: int = 0              # BatchNorm num_batches_tracked absent from the file, set to 0
    layout: str = REFERENCE_LAYOUT
    format: str = "pytorch"
    ignored: tuple[str, ...] = ()          # entries deliberately left out (global step, optimizer slots, ...)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "layout": self.layout, "model": self.model,
                "source_classes": self.source_classes, "num_classes": self.num_classes,
                "dropped_background": self.dropped_background, "keys": self.keys,
                "counters_missing": self.counters_missing, "ignored": list(self.ignored), "notes": list(self.notes)}


def head_classes(rows: int, keep_background: bool = False) -> int:
    """Classes of the converted model for a classifier of `rows` rows: 1001 loses its background class."""
    if rows < 1:
        raise NasnetError(f"the classifier has {rows} rows; expected (classes, features)")
    return rows - 1 if rows == BACKGROUND_CLASSES and not keep_background else rows


def structure(config: ModelConfig) -> tuple[int, int, int, int]:
    """What the weights' shapes show of an ImageNet-skeleton NASNet: (stem width, F0, N, reductions)."""
    return config.stem_filters, config.filters, config.normal_cells, config.num_reductions


def describe_structure(found: tuple[int, int, int, int]) -> str:
    stem, f0, n, reductions = found
    return f"stem {stem} filters, F0 {f0}, {n} normal cells a stage, {reductions} reductions"


def check_structure(found: tuple[int, int, int, int], config: ModelConfig, where: str, kind: str, name: str | None
                    ) -> None:
    """A one-line error unless the file's structure is `config`'s (`name`: what to call the config)."""
    if found != structure(config):
        raise NasnetError(f"{where}: the file is a {kind} with {describe_structure(found)}; "
                          f"{name or 'the given config'} has {describe_structure(structure(config))}")


@dataclass(frozen=True)
class Source:
    name: str
    kind: str = PLAIN
    classifier: bool = False   # rows are classes: row 0 is dropped with the background class


def convert(array: np.ndarray, kind: str) -> np.ndarray:
    a = np.asarray(array)
    if kind == CONV and a.ndim == 4:
        return a.transpose(3, 2, 0, 1)
    if kind == DEPTHWISE and a.ndim == 4:
        h, w, c, m = a.shape
        return a.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w)
    if kind == DENSE and a.ndim == 2:
        return a.T
    return a  # PLAIN, CLASSES, or an array of unexpected rank (its shape check then fails)


def apply_table(table: Mapping[str, Source], expected: Mapping[str, torch.Tensor], shape_of: Callable[[str], tuple],
                read: Callable[[str], np.ndarray], names: list[str], where: str, what: str,
                drop_background: bool = False, ignored: set[str] | frozenset[str] = frozenset()
                ) -> tuple[dict[str, torch.Tensor], int]:
    """Our state dict from a file's arrays, by `table` (our key -> Source); strict.

    `expected` is our model's state dict (shapes and dtypes; meta tensors are fine), `names` every
    array name in the file, `shape_of` / `read` look one up. Names in `ignored` may be left unused.
    BatchNorm counters (absent from foreign files) are set to 0. Returns (state dict, counters set).
    Nothing is read until every name and shape has been checked.
    """
    wanted = {src.name for src in table.values()}
    present = set(names)
    missing = sorted({src.name for src in table.values() if src.name not in present})
    unexpected = sorted(n for n in names if n not in wanted and n not in ignored)
    wrong: list[str] = []
    for key, src in table.items():
        if src.name not in present:
            continue
        shape = tuple(int(s) for s in shape_of(src.name))
        out_shape = converted_shape(shape, src.kind)
        if drop_background and src.classifier and out_shape:
            out_shape = (out_shape[0] - 1, *out_shape[1:])
        if out_shape != tuple(expected[key].shape):
            want = source_shape(tuple(expected[key].shape), src, drop_background)
            wrong.append(f"{src.name} {shape} (model expects {want})")
    if missing or unexpected or wrong:
        raise mismatch(f"{where} does not fit {what}", missing, unexpected, sorted(set(wrong)))
    state: dict[str, torch.Tensor] = {}
    cache: dict[str, np.ndarray] = {}
    for key, src in table.items():
        if src.name not in cache:
            cache[src.name] = np.asarray(read(src.name))
        array = convert(cache[src.name], src.kind)
        if drop_background and src.classifier:
            array = array[1:]
        state[key] = torch.from_numpy(np.ascontiguousarray(array)).to(expected[key].dtype)
    counters = 0
    for key, tensor in expected.items():
        if key not in state and key.endswith(COUNTER):
            state[key] = torch.zeros((), dtype=tensor.dtype)
            counters += 1
    return state, counters


def converted_shape(shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """Our shape for a source array of `shape` laid out as `kind`."""
    if kind == CONV and len(shape) == 4:
        h, w, i, o = shape
        return (o, i, h, w)
    if kind == DEPTHWISE and len(shape) == 4:
        h, w, c, m = shape
        return (c * m, 1, h, w)
    if kind == DENSE and len(shape) == 2:
        return (shape[1], shape[0])
    return shape


def source_shape(ours: tuple[int, ...], src: Source, drop_background: bool = False) -> tuple[int, ...]:
    """The shape the file should have had for our tensor of shape `ours` (error messages, test stand-ins)."""
    if drop_background and src.classifier and ours:
        ours = (ours[0] + 1, *ours[1:])
    if src.kind == CONV and len(ours) == 4:
        o, i, h, w = ours
        return (h, w, i, o)
    if src.kind == DEPTHWISE and len(ours) == 4:
        c, _, h, w = ours
        return (h, w, c, 1)
    if src.kind == DENSE and len(ours) == 2:
        return (ours[1], ours[0])
    return ours
