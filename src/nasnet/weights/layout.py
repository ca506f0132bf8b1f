"""One walk over a NASNet's weighted layers, shared by every foreign key layout (docs/weight-layouts.md).

`weighted_parts(model)` yields each module that owns weights once, as a `Part`: its path in our state
dict, its `Role` (the stem, a cell input's 1x1 conv or factorized reduction, a block's sep conv, an op's
width projection, a cell output's reduction, the auxiliary head, the classifier), its cell (`CellPlace`)
and its index there. A `Layout` - the PyTorch port's keys (reference.py), TF-Slim's variables
(tf_slim.py), Keras's layers (keras_h5.py) - supplies only its names: each part's layers (`scopes`)
and each kind of layer's tensors (`Leaves`). `Layout.table` joins them into ``our key -> Source``
(applied by mapping.apply_table) and refuses, in one line, a part the layout has no name for, a key
it leaves unmapped, or a table that is not one-to-one: the import is exact or it fails.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator, Mapping

from torch import nn

from ..errors import NasnetError
from ..model.layers import ConvBN, FactorizedReduce
from ..model.network import ModelConfig, NASNet
from ..model.ops import Identity, PoolOp, Projection, SepConv
from .io import COUNTER
from .mapping import CLASSES, CONV, DENSE, DEPTHWISE, PLAIN, Source


class Role(Enum):
    """What a weighted module is in the network, whatever a file calls it."""

    STEM = "stem"                  # ConvBN
    INPUT = "input"                # a cell input's 1x1 ConvBN (index: the input j)
    FACTORIZED = "factorized"      # a cell input at a finer resolution: FactorizedReduce, stride > 1
    SEP_CONV = "sep_conv"          # op k of a cell: block k // 2, left (k even) or right
    PROJECTION = "projection"      # op k's 1x1 ConvBN changing the width (an identity's, or a pool's)
    OUTPUT = "output"              # FactorizedReduce of a cell output (index: the hidden state)
    AUX_HEAD = "aux_head"
    CLASSIFIER = "classifier"      # nn.Linear
    OTHER = "other"                # weights that no layout names (e.g. plain conv ops)


# The weighted layers of each role: our sub-module path -> kind of layer (a field of `Leaves`).
_CONV_BN = {"conv": "conv", "bn": "bn"}
_FACTORIZED = {"conv_1": "conv", "conv_2": "conv", "bn": "bn"}      # at stride 1: conv, bn
_LAYERS: dict[Role, dict[str, str]] = {
    Role.STEM: _CONV_BN, Role.INPUT: _CONV_BN, Role.PROJECTION: _CONV_BN,
    Role.FACTORIZED: _FACTORIZED, Role.OUTPUT: _FACTORIZED,
    Role.SEP_CONV: {f"{layer}_{n}": layer for n in (1, 2) for layer in ("depthwise", "pointwise", "bn")},
    Role.AUX_HEAD: {"proj.conv": "conv", "proj.bn": "bn", "conv": "conv", "bn": "bn", "classifier": "dense"},
    Role.CLASSIFIER: {"": "dense"},
    Role.OTHER: {},
}
_SLOTS = {"preprocess": "input", "ops": "op", "out_adapt": "output"}


@dataclass(frozen=True)
class CellPlace:
    """Where a cell sits, in the terms every layout numbers cells by."""

    index: int      # in model.cells
    kind: str       # "stem", "reduce" or "normal" (ModelConfig.cell_plan)
    number: int     # among the cells of its kind, from 0
    stage: int      # reductions before it (a reduction cell opens stage `stage`)
    position: int   # a normal cell's place in its stage, from 0 (0 for the others)
    normals_before: int  # normal cells before it in the network


def cell_places(config: ModelConfig) -> list[CellPlace]:
    """The `CellPlace` of every cell of `config`'s network, in order."""
    out: list[CellPlace] = []
    counts: Counter[str] = Counter()
    stage = position = 0
    for i, (kind, _) in enumerate(config.cell_plan()):
        if kind == "reduce":
            stage, position = stage + 1, 0
        out.append(CellPlace(i, kind, counts[kind], stage, position if kind == "normal" else 0, counts["normal"]))
        counts[kind] += 1
        position += kind == "normal"
    return out


@dataclass(frozen=True)
class Part:
    """One module that owns weights: our path, what it is, where it sits."""

    path: str                        # our module path: "stem", "cells.3.ops.4", "cells.3.ops.5.project"
    role: Role
    module: nn.Module
    cell: CellPlace | None = None    # None for the stem and the classifier
    index: int = 0                   # input j, op k, or (Role.OUTPUT) the hidden state reduced

    @property
    def block(self) -> int:
        return self.index // 2

    @property
    def side(self) -> str:
        return "left" if self.index % 2 == 0 else "right"

    @property
    def layers(self) -> dict[str, str]:
        """Our sub-module path -> kind of layer, for every weighted layer of the part."""
        if self.role in (Role.FACTORIZED, Role.OUTPUT) and self.module.stride == 1:
            return _CONV_BN
        return _LAYERS[self.role]

    @property
    def where(self) -> str:
        """The part in messages: "cell 3 op 4", "aux_head"."""
        p = self.path.split(".")
        return f"cell {p[1]} {_SLOTS[p[2]]} {p[3]}" if p[0] == "cells" else self.path


def weighted_parts(model: NASNet) -> Iterator[Part]:
    """Every module of `model` that owns weights, once, in network order; weightless ones are skipped."""
    places = cell_places(model.config)
    yield Part("stem", Role.STEM, model.stem)
    for place, cell in zip(places, model.cells):
        yield from _cell_parts(cell, place)
    if model.aux_head is not None:
        yield Part("aux_head", Role.AUX_HEAD, model.aux_head, places[model.aux_index])
    if isinstance(model.classifier, nn.Linear):
        yield Part("classifier", Role.CLASSIFIER, model.classifier)


def _cell_parts(cell: nn.Module, place: CellPlace) -> Iterator[Part]:
    at = f"cells.{place.index}"
    for j, module in enumerate(cell.preprocess):
        if isinstance(module, ConvBN):
            yield Part(f"{at}.preprocess.{j}", Role.INPUT, module, place, j)
        elif isinstance(module, FactorizedReduce) and module.stride > 1:
            yield Part(f"{at}.preprocess.{j}", Role.FACTORIZED, module, place, j)
        elif not isinstance(module, Identity | nn.Identity):
            yield Part(f"{at}.preprocess.{j}", Role.OTHER, module, place, j)
    for k, op in enumerate(cell.ops):
        if isinstance(op, SepConv):
            yield Part(f"{at}.ops.{k}", Role.SEP_CONV, op, place, k)
        elif isinstance(op, PoolOp) and op.project is not None:
            yield Part(f"{at}.ops.{k}.project", Role.PROJECTION, op.project, place, k)
        elif isinstance(op, Projection):
            yield Part(f"{at}.ops.{k}", Role.PROJECTION, op, place, k)
        elif not isinstance(op, PoolOp | Identity):
            yield Part(f"{at}.ops.{k}", Role.OTHER, op, place, k)
    for n, adapt in enumerate(cell.out_adapt):
        if isinstance(adapt, FactorizedReduce):
            yield Part(f"{at}.out_adapt.{n}", Role.OUTPUT, adapt, place, cell.spec.concat[n])
        elif not isinstance(adapt, nn.Identity):
            yield Part(f"{at}.out_adapt.{n}", Role.OTHER, adapt, place, n)


# --------------------------------------------------------------------------------------------
# A layout: the names, and the one table builder
# --------------------------------------------------------------------------------------------
Leaf = tuple[str, str]   # (the file's name for a tensor, how its array is laid out: a mapping kind)


@dataclass(frozen=True)
class Leaves:
    """How a layout names each tensor of each kind of layer: our leaf ("weight", ...) -> `Leaf`."""

    conv: Mapping[str, Leaf]
    depthwise: Mapping[str, Leaf]
    pointwise: Mapping[str, Leaf]
    bn: Mapping[str, Leaf]
    dense: Mapping[str, Leaf]


def tensorflow_leaves(kernel: str, depthwise: str, pointwise: str, dense: tuple[str, str]) -> Leaves:
    """TensorFlow's tensors: HWIO kernels under the given names, (in, out) dense kernels and a bias,
    BatchNorm's gamma / beta / moving statistics (no step counter)."""
    bn = {"weight": ("gamma", PLAIN), "bias": ("beta", PLAIN), "running_mean": ("moving_mean", PLAIN),
          "running_var": ("moving_variance", PLAIN)}
    return Leaves({"weight": (kernel, CONV)}, {"weight": (depthwise, DEPTHWISE)}, {"weight": (pointwise, CONV)},
                  bn, {"weight": (dense[0], DENSE), "bias": (dense[1], CLASSES)})


def _same(*leaves: str) -> dict[str, Leaf]:
    return {leaf: (leaf, PLAIN) for leaf in leaves}


# PyTorch's tensors: named and laid out as ours, BatchNorm's step counter included.
PYTORCH_LEAVES = Leaves(_same("weight"), _same("weight"), _same("weight"),
                        _same("weight", "bias", "running_mean", "running_var", COUNTER), _same("weight", "bias"))


class Layout:
    """How one file format names a NASNet's weights. A subclass sets `name` (for messages), `sep`
    (between a layer's name and its tensors'), `leaves`, `background` (its classifiers may hold
    TensorFlow's background class 0), the stem's and the classifier's names, and names the cells
    and the cells' (and the auxiliary head's) parts."""

    name = "the layout"
    sep = "/"
    leaves: Leaves
    background = True
    stem_names: Mapping[str, str]     # the stem's "conv" and "bn" -> their names
    classifier_name: str

    def problems(self, config: ModelConfig) -> list[str]:
        """Why the layout cannot hold `config`'s network at all ([]: it may)."""
        return []

    def check(self, config: ModelConfig) -> None:
        """A one-line NasnetError listing `problems`, if any."""
        problems = self.problems(config)
        if problems:
            raise NasnetError(f"{self.name} does not fit this model: " + "; ".join(problems))

    def cell_name(self, place: CellPlace) -> Any:
        raise NotImplementedError

    def scopes(self, part: Part) -> Mapping[str, str] | None:
        """For a part of a cell or the auxiliary head: each of `part.layers` -> the layer's name in the
        file; None: no counterpart in the layout."""
        raise NotImplementedError

    def names(self, part: Part) -> Mapping[str, str] | None:
        """Each of `part.layers` -> the layer's name in the file; None: no counterpart in the layout."""
        if part.role is Role.STEM:
            return self.stem_names
        if part.role is Role.CLASSIFIER:
            return {"": self.classifier_name}
        return None if part.role is Role.OTHER else self.scopes(part)

    def cell_names(self, config: ModelConfig) -> list[Any]:
        """The layout's name of every cell of `config`'s network, in our cell order."""
        return [self.cell_name(place) for place in cell_places(config)]

    def table(self, model: NASNet) -> dict[str, Source]:
        """Every state-dict key of `model` -> the tensor of the file it comes from (BatchNorm step
        counters only where the layout names them); strict, one-to-one."""
        self.check(model.config)
        table: dict[str, Source] = {}
        for part in weighted_parts(model):
            scopes = self.names(part)
            if scopes is None:
                raise NasnetError(f"{part.where}: a {type(part.module).__name__} has no counterpart in {self.name}")
            for layer, kind in part.layers.items():
                ours = f"{part.path}.{layer}" if layer else part.path
                for leaf, (theirs, array) in getattr(self.leaves, kind).items():
                    table[f"{ours}.{leaf}"] = Source(f"{scopes[layer]}{self.sep}{theirs}", array,
                                                       self.background and kind == "dense")
        keys = model.state_dict().keys()
        unmapped = [k for k in keys if k not in table and not k.endswith(COUNTER)]
        if unmapped:
            raise NasnetError(f"model keys without a counterpart in {self.name}: {', '.join(unmapped[:8])}")
        if any(k not in keys for k in table) or len({s.name for s in table.values()}) != len(table):
            raise AssertionError(f"the table of {self.name} does not map the model's keys one-to-one")
        return table
