"""Published NASNet-A weights in PyTorch: the reference key layout, mapped exactly onto our models.

The NASNet-A Large and Mobile ImageNet checkpoints that circulate in PyTorch (the pretrainedmodels
package's ``nasnetalarge`` / ``nasnetamobile`` and timm's ``nasnetalarge``, all ports of TensorFlow's
model-garden release; docs/formats.md) share one key layout, written cell by cell::

    conv0.conv.weight, conv0.bn.*                        the stem
    cell_stem_0.conv_1x1.conv.weight                     stem cell 0, input 0's ReLU-1x1-BN
    cell_stem_1.path_1.conv.weight, .final_path_bn.*     a factorized reduction of input 1
    cell_7.conv_prev_1x1.conv.weight                     input 1's ReLU-1x1-BN
    cell_7.comb_iter_0_left.separable_1.depthwise_conv2d.weight   block 0, first op, sep conv part 1
    reduction_cell_0..., cell_17..., last_linear.weight  reductions, normal cells, the classifier

Our networks are built from the genotype (hand-unrolled cells belong in a mapping table, never in
the model), so this module *derives* the table by walking a built model: every module of every
cell has exactly one counterpart, named by the rules below. ``comb_iter_{b}_left`` is block b's
first op and ``_right`` its second (``ops.{2b}`` and ``ops.{2b+1}`` in our numbering); identity and
pooling ops hold no weights. The reference numbers normal cells ``cell_{6 s + j}`` (stage s, j-th
cell) in both models, so Mobile has ``cell_0..3, cell_6..9, cell_12..15``.

Conversion is strict (`nasnet.weights.io.check_state_dict`): every checkpoint key must be used and
every model key found, with equal shapes. BatchNorm ``num_batches_tracked`` counters are the one
exception - files written by old PyTorch versions lack them and they change no output, so a
missing counter is left at 0. The 1001-class variant (TensorFlow's class 0 is "background") is
converted by dropping row 0 of the classifier when the target model has 1000 classes.

This module knows layouts, not model names' configurations: the caller (`nasnet.zoo.importer`)
builds the target `ModelConfig` from the zoo.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..arch.genotype import NASNET_A
from ..errors import NasnetError
from ..model.layers import ConvBN, FactorizedReduce
from ..model.network import ModelConfig, NASNet
from ..model.ops import Identity, PoolOp, SepConv
from .io import as_state_dict, check_state_dict
from .mapping import BACKGROUND_CLASSES, ImportInfo

# The zoo models that have published weights in this layout, and the stem width that tells them apart.
REFERENCE_MODELS: dict[str, int] = {"nasnet_a_large": 96, "nasnet_a_mobile": 32}
NORMAL_CELL_STRIDE = 6     # the reference names stage s's j-th normal cell cell_{6 s + j}

_SEP_PARTS = {
    "depthwise_1": "separable_1.depthwise_conv2d",
    "pointwise_1": "separable_1.pointwise_conv2d",
    "bn_1": "bn_sep_1",
    "depthwise_2": "separable_2.depthwise_conv2d",
    "pointwise_2": "separable_2.pointwise_conv2d",
    "bn_2": "bn_sep_2",
}
_FACTORIZED_PARTS = {"conv_1": "path_1.conv", "conv_2": "path_2.conv", "bn": "final_path_bn"}


# --------------------------------------------------------------------------------------------
# The mapping table, derived from the model
# --------------------------------------------------------------------------------------------
def reference_cell_names(config: ModelConfig) -> list[str]:
    """The reference name of every cell of an ImageNet-skeleton NASNet-A, in our cell order."""
    names, stage, j = [], 0, 0
    stems = reductions = 0
    for kind, _ in config.cell_plan():
        if kind == "stem":
            names.append(f"cell_stem_{stems}")
            stems += 1
        elif kind == "reduce":
            names.append(f"reduction_cell_{reductions}")
            reductions += 1
            stage, j = stage + 1, 0
        else:
            names.append(f"cell_{NORMAL_CELL_STRIDE * stage + j}")
            j += 1
    return names


def check_reference_compatible(config: ModelConfig) -> None:
    """The reference layout exists for NASNet-A on the ImageNet skeleton with <= 6 normal cells per stage."""
    problems = []
    if config.genotype != NASNET_A:
        problems.append("its genotype is not NASNet-A")
    if config.skeleton != "imagenet":
        problems.append(f"its skeleton is {config.skeleton!r}, not 'imagenet'")
    if config.num_reductions != 2:
        problems.append(f"it has {config.num_reductions} reductions, not 2")
    if config.normal_cells > NORMAL_CELL_STRIDE:
        problems.append(f"it has {config.normal_cells} normal cells per stage (the layout names at most 6)")
    if problems:
        raise NasnetError("the published-weights key layout does not fit this model: " + "; ".join(problems))


def _module_prefix_map(model: NASNet) -> dict[str, str]:
    """Our module path -> reference module path, for every module that owns weights."""
    names = reference_cell_names(model.config)
    table: dict[str, str] = {"stem.conv": "conv0.conv", "stem.bn": "conv0.bn", "classifier": "last_linear"}
    for i, cell in enumerate(model.cells):
        ref = names[i]
        for j, module in enumerate(cell.preprocess):
            ours = f"cells.{i}.preprocess.{j}"
            if isinstance(module, Identity | nn.Identity):
                continue
            if isinstance(module, ConvBN):
                target = "conv_1x1" if j == 0 else "conv_prev_1x1"
                table[f"{ours}.conv"], table[f"{ours}.bn"] = f"{ref}.{target}.conv", f"{ref}.{target}.bn"
            elif isinstance(module, FactorizedReduce) and j == 1 and module.stride > 1:
                for part, target in _FACTORIZED_PARTS.items():
                    table[f"{ours}.{part}"] = f"{ref}.{target}"
            else:
                raise NasnetError(f"cell {i} input {j}: a {type(module).__name__} has no counterpart in the layout")
        for k, op in enumerate(cell.ops):
            b, side = divmod(k, 2)
            ours, target = f"cells.{i}.ops.{k}", f"{ref}.comb_iter_{b}_{'left' if side == 0 else 'right'}"
            if isinstance(op, SepConv):
                for part, sub in _SEP_PARTS.items():
                    table[f"{ours}.{part}"] = f"{target}.{sub}"
            elif (isinstance(op, PoolOp) and op.project is None) or isinstance(op, Identity):
                continue
            else:
                raise NasnetError(f"cell {i} op {k}: a {type(op).__name__} has no counterpart in the layout")
        for k, adapt in enumerate(cell.out_adapt):
            if not isinstance(adapt, nn.Identity):
                raise NasnetError(f"cell {i} output {k}: an adapter has no counterpart in the layout")
    if model.aux_head is not None:
        raise NasnetError("the published checkpoints have no auxiliary head: build the model with aux_head=False")
    return table


def reference_key_map(model: NASNet) -> dict[str, str]:
    """Every state-dict key of `model` -> its key in the reference layout (one-to-one)."""
    check_reference_compatible(model.config)
    prefixes = _module_prefix_map(model)
    out: dict[str, str] = {}
    for key in model.state_dict():
        module, _, leaf = key.rpartition(".")
        if module not in prefixes:
            raise NasnetError(f"model key {key!r} has no counterpart in the reference layout")
        out[key] = f"{prefixes[module]}.{leaf}"
    if len(set(out.values())) != len(out):  # the table must be one-to-one
        raise AssertionError("reference key map is not one-to-one")
    return out


def reference_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference layout for `config`, derived from our model (built on the meta device)."""
    with torch.device("meta"):
        model = NASNet(config)
    keymap = reference_key_map(model)
    return {keymap[k]: tuple(v.shape) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------
# Converting state dicts
# --------------------------------------------------------------------------------------------
def is_reference_layout(state: Mapping[str, Any]) -> bool:
    return "conv0.conv.weight" in state and "last_linear.weight" in state


def detect_reference_model(state: Mapping[str, torch.Tensor]) -> str:
    """Which published model a reference-layout state dict is, from its stem width."""
    if not is_reference_layout(state):
        raise NasnetError("the checkpoint is not in the published NASNet-A layout (no conv0.conv.weight / "
                          "last_linear.weight keys)")
    width = state["conv0.conv.weight"].shape[0]
    for name, stem in REFERENCE_MODELS.items():
        if stem == width:
            return name
    raise NasnetError(f"the checkpoint's stem has {width} filters; the published models have "
                      + ", ".join(f"{n}: {w}" for n, w in REFERENCE_MODELS.items()))


def convert_reference_state_dict(state: Mapping[str, torch.Tensor], config: ModelConfig, model: str = "",
                                 ) -> tuple[dict[str, torch.Tensor], ImportInfo]:
    """A reference-layout state dict -> (our state dict for `config`, ImportInfo).

    `config.num_classes` decides the head: a 1001-row classifier going into 1000 classes loses row 0.
    Raises CheckpointMismatch listing missing, unexpected and wrongly shaped keys.
    """
    state = as_state_dict(state)
    head = state["last_linear.weight"]
    source_classes = head.shape[0] if head.dim() == 2 else -1
    drop = source_classes == BACKGROUND_CLASSES and config.num_classes == BACKGROUND_CLASSES - 1
    with torch.device("meta"):
        skeleton = NASNet(config)
    ours = skeleton.state_dict()
    keymap = reference_key_map(skeleton)
    converted = {ref: (t[1:] if drop and ref.startswith("last_linear.") else t) for ref, t in state.items()}
    check_state_dict({keymap[k]: v for k, v in ours.items()}, converted,
                     f"the checkpoint does not fit {model or config.name}")
    out: dict[str, torch.Tensor] = {}
    counters = 0
    for key, tensor in ours.items():
        ref = keymap[key]
        if ref in converted:
            out[key] = converted[ref].to(tensor.dtype).clone()
        else:  # only BN counters can get here
            out[key] = torch.zeros((), dtype=tensor.dtype)
            counters += 1
    info = ImportInfo(model or config.name, source_classes, config.num_classes, drop, len(state), counters)
    return out, info


def to_reference_state_dict(model: NASNet) -> dict[str, torch.Tensor]:
    """Our model's weights in the reference layout (the inverse of the import), e.g. to feed a reference port."""
    keymap = reference_key_map(model)
    return {keymap[k]: v for k, v in model.state_dict().items()}
