"""Published NASNet-A weights in PyTorch, mapped exactly onto our models: the key layout of the
pretrainedmodels package's and timm's ports of TensorFlow's release (``conv0.conv.weight``,
``cell_7.conv_prev_1x1.conv.weight``, ``cell_stem_0.comb_iter_0_left.separable_1.depthwise_conv2d.weight``,
``last_linear.weight``; docs/weight-layouts.md has the table and the cell numbering).

`REFERENCE` names the roles of the shared walk (layout.py) in this layout; `reference_key_map` turns
it into our key -> their key. Conversion is strict (`nasnet.weights.io.check_state_dict`) but for
BatchNorm step counters, set to 0 when absent; a 1001-class head loses its background row when the
target has 1000 classes. This module knows layouts, not zoo models: the caller (`nasnet.zoo.importer`)
builds the target `ModelConfig`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..arch.genotype import NASNET_A
from ..errors import NasnetError
from ..model.network import ModelConfig, NASNet
from .io import as_state_dict, check_state_dict
from .layout import PYTORCH_LEAVES, CellPlace, Layout, Part, Role
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


# --------------------------------------------------------------------------------------------
# The mapping table, derived from the model
# --------------------------------------------------------------------------------------------
class ReferenceLayout(Layout):
    """The PyTorch ports' module names: leaves as ours, ``comb_iter_{b}_{left,right}`` for op 2b / 2b + 1."""

    name = "the published-weights key layout"
    sep = "."
    leaves = PYTORCH_LEAVES
    stem_names = {"conv": "conv0.conv", "bn": "conv0.bn"}
    classifier_name = "last_linear"

    def problems(self, config: ModelConfig) -> list[str]:
        """The layout exists for NASNet-A on the ImageNet skeleton with <= 6 normal cells per stage."""
        problems = []
        if config.genotype != NASNET_A:
            problems.append("its genotype is not NASNet-A")
        if config.skeleton != "imagenet":
            problems.append(f"its skeleton is {config.skeleton!r}, not 'imagenet'")
        if config.num_reductions != 2:
            problems.append(f"it has {config.num_reductions} reductions, not 2")
        if config.normal_cells > NORMAL_CELL_STRIDE:
            problems.append(f"it has {config.normal_cells} normal cells per stage (the layout names at most 6)")
        return problems

    def cell_name(self, place: CellPlace) -> str:
        if place.kind == "stem":
            return f"cell_stem_{place.number}"
        if place.kind == "reduce":
            return f"reduction_cell_{place.number}"
        return f"cell_{NORMAL_CELL_STRIDE * place.stage + place.position}"

    def scopes(self, part: Part) -> dict[str, str] | None:
        if part.role is Role.AUX_HEAD:
            raise NasnetError("the published checkpoints have no auxiliary head: build the model with aux_head=False")
        cell = self.cell_name(part.cell)
        if part.role is Role.INPUT:
            target = f"{cell}.{'conv_1x1' if part.index == 0 else 'conv_prev_1x1'}"
            return {"conv": f"{target}.conv", "bn": f"{target}.bn"}
        if part.role is Role.FACTORIZED and part.index == 1:
            return {"conv_1": f"{cell}.path_1.conv", "conv_2": f"{cell}.path_2.conv", "bn": f"{cell}.final_path_bn"}
        if part.role is Role.SEP_CONV:
            target = f"{cell}.comb_iter_{part.block}_{part.side}"
            return {layer: f"{target}.{name}" for layer, name in _SEP_PARTS.items()}
        return None


REFERENCE = ReferenceLayout()


def reference_key_map(model: NASNet) -> dict[str, str]:
    """Every state-dict key of `model` -> its key in the reference layout (one-to-one)."""
    return {key: source.name for key, source in REFERENCE.table(model).items()}


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
