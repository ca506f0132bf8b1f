"""A convolutional cell built from a genotype cell (paper §3, Figure 4, App. A.4).

Shapes are resolved when the cell is built, from what the network tells it about its inputs: their
channel counts and their resolution level (the number of stride-2 steps they have been through).
The wiring follows TensorFlow's released NASNet code and is written once, in docs/nasnet-a.md ("How
a cell is wired"): every input is brought to F channels at input 0's resolution (`_fit_inputs`), the
ops that read a cell input stride 2 in a reduction cell, and output states still at the input
resolution, or of another width, are fitted to the output (`_fit_outputs`). ScheduledDropPath masks
every non-identity op output with one draw per cell (nasnet.model.layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..arch.genotype import Cell
from .layers import ConvBN, FactorizedReduce, LayerStyle, drop_path_apply, drop_path_divisors
from .ops import make_op


@dataclass(frozen=True)
class StateInfo:
    """Static shape facts about a tensor flowing between cells."""

    channels: int
    level: int  # stride-2 steps since the stem output; the spatial size is about size / 2**level


class Combine(nn.Module):
    """A block's combiner: add, concat, or add followed by LayerNorm / InstanceNorm (App. B)."""

    def __init__(self, kind: str, channels: int):
        super().__init__()
        self.kind = kind
        if kind == "add_ln":
            self.norm = nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W) with per-channel affine
        elif kind == "add_in":
            self.norm = nn.InstanceNorm2d(channels, affine=True)

    def extra_repr(self) -> str:
        return self.kind

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.kind == "concat":
            return torch.cat([a, b], dim=1)
        out = a + b
        return out if self.kind == "add" else self.norm(out)


class CellModule(nn.Module):
    """One Normal or Reduction cell.

    Args:
        spec: the genotype cell.
        inputs: StateInfo of each cell input (index = state number); None where the network has no
            such input yet.
        filters: F, the width of every op output in this cell.
        reduction: whether ops on cell inputs have stride 2.
        style: padding and BatchNorm conventions.
    """

    def __init__(self, spec: Cell, inputs: Sequence[StateInfo | None], filters: int, reduction: bool,
                 style: LayerStyle):
        super().__init__()
        if len(inputs) != spec.num_inputs or inputs[0] is None:
            raise ValueError("a cell needs its first input and one entry per cell input")
        self.spec = spec
        self.reduction = reduction
        self.filters = filters
        self.out_level = out_level = inputs[0].level + (1 if reduction else 0)
        # modules are built in this order (inputs, then each block's ops and combiner, then the outputs),
        # which fixes both the random initial weights a seed gives and the state dict's key order
        self.preprocess, self.preprocess_relu, states = _fit_inputs(inputs, filters, style)
        self.ops, self.combine = nn.ModuleList(), nn.ModuleList()
        for blk in spec.blocks:
            for s, name in zip(blk.inputs, blk.ops):
                stride = 2 if reduction and s < spec.num_inputs else 1
                self.ops.append(make_op(name, states[s].channels, filters, stride, style))
            self.combine.append(Combine(blk.combiner, filters))
            states.append(StateInfo(2 * filters if blk.combiner == "concat" else filters, out_level))
        self.out_adapt, outputs = _fit_outputs(spec, states, filters, out_level, style)
        self.dropped_paths = sum(not op.is_identity for op in self.ops)   # paths ScheduledDropPath masks
        self.split = spec.output == "split"
        # What leaves the cell: one concatenated tensor, or (split) one tensor per listed state.
        self.outputs: list[StateInfo] = (
            outputs if self.split else [StateInfo(sum(o.channels for o in outputs), out_level)]
        )

    @property
    def out_channels(self) -> int:
        """Width of the concatenated output (the sum over outputs for a split cell)."""
        return sum(o.channels for o in self.outputs)

    def forward(self, inputs: Sequence[torch.Tensor | None],
                keep_prob: torch.Tensor | float | None = None) -> torch.Tensor | list[torch.Tensor]:
        x0 = inputs[0]
        states: list[torch.Tensor] = []
        for j, module in enumerate(self.preprocess):
            x = inputs[j] if inputs[j] is not None else x0
            states.append(module(torch.relu(x) if self.preprocess_relu[j] else x))

        relu_cache: dict[int, torch.Tensor] = {}
        divisors, dropped = None, 0     # ScheduledDropPath: every path's mask from one draw per cell
        for b, blk in enumerate(self.spec.blocks):
            branch = []
            for side, s in enumerate(blk.inputs):
                op = self.ops[2 * b + side]
                if op.relu_input:
                    if s not in relu_cache:
                        relu_cache[s] = torch.relu(states[s])
                    y = op(relu_cache[s])
                else:
                    y = op(states[s])
                if keep_prob is not None and not op.is_identity:
                    if divisors is None:
                        divisors = drop_path_divisors(self.dropped_paths, y, keep_prob)
                    y = drop_path_apply(y, divisors[dropped])
                    dropped += 1
                branch.append(y)
            states.append(self.combine[b](branch[0], branch[1]))

        outs = [adapt(states[s]) for adapt, s in zip(self.out_adapt, self.spec.concat)]
        return outs if self.split else torch.cat(outs, dim=1)


def _fit_inputs(inputs: Sequence[StateInfo | None], filters: int, style: LayerStyle
                ) -> tuple[nn.ModuleList, list[bool], list[StateInfo]]:
    """(the module bringing each cell input to F channels at input 0's resolution, whether it reads
    the ReLU of its input, the state each yields). A missing input stands for input 0, unchanged.

    Raises ValueError for an input coarser than input 0."""
    base = inputs[0]
    modules, relus, states = nn.ModuleList(), [], []
    for j, info in enumerate(inputs):
        fitted = StateInfo(filters, base.level)
        if j == 0:
            module, relu, state = ConvBN(base.channels, filters, 1, style=style), True, fitted
        elif info is None:
            module, relu, state = nn.Identity(), False, base
        elif info.level < base.level:
            stride = 2 ** (base.level - info.level)
            module, relu, state = FactorizedReduce(info.channels, filters, stride, style), True, fitted
        elif info.level > base.level:
            raise ValueError(f"cell input {j} is coarser than input 0")
        elif info.channels != filters:
            module, relu, state = ConvBN(info.channels, filters, 1, style=style), True, fitted
        else:
            module, relu, state = nn.Identity(), False, info
        modules.append(module)
        relus.append(relu)
        states.append(state)
    return modules, relus, states


def _fit_outputs(spec: Cell, states: list[StateInfo], filters: int, out_level: int, style: LayerStyle
                 ) -> tuple[nn.ModuleList, list[StateInfo]]:
    """(the module bringing each output state of `spec.concat` to the output resolution, and to F
    channels for a cell input of another width; the state each yields)."""
    modules, outputs = nn.ModuleList(), []
    for s in spec.concat:
        info = states[s]
        if info.level != out_level:
            module, info = FactorizedReduce(info.channels, filters, 2, style), StateInfo(filters, out_level)
        elif s < spec.num_inputs and info.channels != filters:
            module, info = FactorizedReduce(info.channels, filters, 1, style), StateInfo(filters, out_level)
        else:
            module = nn.Identity()
        modules.append(module)
        outputs.append(info)
    return modules, outputs
