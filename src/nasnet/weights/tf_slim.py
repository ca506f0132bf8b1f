"""TF-Slim's NASNet checkpoints (TensorFlow's model-garden release of NASNet-A), mapped exactly onto
our models with no TensorFlow installed: the checkpoint is read by tensor_bundle.py, and `TF_SLIM`
names the roles of the shared walk (layout.py) by TF-Slim's variable scopes (docs/weight-layouts.md).

`describe` reads the structure from the shapes; the target architecture is the caller's - a zoo model
(`nasnet.zoo.importer`) or `config_from_hparams` for other sizes - since TF-Slim's
``skip_reduction_layer_input`` is not visible in them. A 1001-class head loses its background row
unless kept; training bookkeeping (global step, optimizer slots, moving-average shadows) is ignored
and listed; anything else that does not fit is a one-line error naming the file. Tested against
checkpoints and logits that TensorFlow itself produced (tools/make_tf_slim_fixture.py).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import NasnetError
from ..model.network import ModelConfig, NASNet
from .formats import TF_CHECKPOINT
from .layout import CellPlace, Layout, Part, Role, tensorflow_leaves
from .mapping import BACKGROUND_CLASSES, ImportInfo, apply_table, check_structure

FORMAT = TF_CHECKPOINT
LAYOUT = "tf-slim nasnet"
# Training bookkeeping that may sit in a checkpoint beside the weights.
_BOOKKEEPING = re.compile(r"(^|/)global_step$|/(ExponentialMovingAverage|Momentum|RMSProp(_1)?|Adam(_1)?|"
                          r"Adagrad|Ftrl(_1)?)$|^(beta1_power|beta2_power)$")
_CELL = re.compile(r"^cell_(\d+)/")
_REDUCTION = re.compile(r"^reduction_cell_(\d+)/")
_AUX = re.compile(r"^aux_(\d+)/aux_logits/")


# --------------------------------------------------------------------------------------------
# The names
# --------------------------------------------------------------------------------------------
def _factorized(scope: str, stride: int) -> dict[str, str]:
    if stride == 1:
        return {"conv": f"{scope}/path_conv", "bn": f"{scope}/path_bn"}
    return {"conv_1": f"{scope}/path1_conv", "conv_2": f"{scope}/path2_conv", "bn": f"{scope}/final_path_bn"}


class TfSlimLayout(Layout):
    """TF-Slim's variable scopes; normal cells are numbered across the network."""

    name = "TF-Slim's NASNet layout"
    leaves = tensorflow_leaves("weights", "depthwise_weights", "pointwise_weights", ("weights", "biases"))
    stem_names = {"conv": "conv0", "bn": "conv0_bn"}
    classifier_name = "final_layer/FC"

    def problems(self, config: ModelConfig) -> list[str]:
        problems = []
        if config.skeleton != "imagenet":
            problems.append(f"its skeleton is {config.skeleton!r} (the released checkpoints are ImageNet models)")
        if config.genotype.normal.num_inputs != 2 or config.genotype.reduce.num_inputs != 2:
            problems.append("its cells have more than two inputs")
        combiners = {b.combiner for cell in (config.genotype.normal, config.genotype.reduce) for b in cell.blocks}
        if combiners != {"add"}:
            problems.append(f"its cells combine with {', '.join(sorted(combiners - {'add'}))}, TF-Slim's only add")
        if config.num_classes == 0:
            problems.append("it has no classifier (num_classes=0)")
        return problems

    def cell_name(self, place: CellPlace) -> str:
        prefix = {"stem": "cell_stem", "reduce": "reduction_cell", "normal": "cell"}[place.kind]
        return f"{prefix}_{place.number}"

    def scopes(self, part: Part) -> dict[str, str] | None:
        if part.role is Role.AUX_HEAD:       # after cell_K: aux_K
            aux = f"aux_{part.cell.number}/aux_logits"
            return {"proj.conv": f"{aux}/proj", "proj.bn": f"{aux}/aux_bn0", "conv": f"{aux}/Conv",
                    "bn": f"{aux}/aux_bn1", "classifier": f"{aux}/FC"}
        scope = self.cell_name(part.cell)
        if part.role is Role.INPUT and part.index < 2:
            conv, bn = (("1x1", "beginning_bn"), ("prev_1x1", "prev_bn"))[part.index]
            return {"conv": f"{scope}/{conv}", "bn": f"{scope}/{bn}"}
        if part.role is Role.FACTORIZED and part.index == 1:
            return _factorized(scope, part.module.stride)
        if part.role is Role.OUTPUT:
            return _factorized(f"{scope}/cell_output/reduction_{part.index}", part.module.stride)
        op = f"{scope}/comb_iter_{part.block}/{part.side}"
        if part.role is Role.SEP_CONV:
            size = part.module.depthwise_1.kernel_size[0]
            return {f"{layer}_{n}": f"{op}/{prefix}_{size}x{size}_{n}" for n in (1, 2)
                    for layer, prefix in (("depthwise", "separable"), ("pointwise", "separable"), ("bn", "bn_sep"))}
        if part.role is Role.PROJECTION:
            return {"conv": f"{op}/1x1", "bn": f"{op}/bn_1"}
        return None


TF_SLIM = TfSlimLayout()


# --------------------------------------------------------------------------------------------
# What a checkpoint is
# --------------------------------------------------------------------------------------------
def config_from_hparams(hparams: Mapping[str, Any], num_classes: int, image_size: int,
                        aux_head: bool | None = None) -> ModelConfig:
    """Our ModelConfig for a TF-Slim ImageNet NASNet-A built with these hparams (``mobile_imagenet_config()``
    / ``large_imagenet_config()`` with changes): num_cells = 3 N, num_conv_filters = F0,
    stem_multiplier, skip_reduction_layer_input, use_aux_head. `image_size` fixes the auxiliary head's
    last kernel (TF-Slim sizes it to the feature map at build time)."""
    h = dict(hparams)
    cells, reductions = int(h.get("num_cells", 12)), int(h.get("num_reduction_layers", 2))
    if h.get("filter_scaling_rate", 2.0) != 2.0:
        raise NasnetError(f"TF-Slim hparams: filter_scaling_rate {h['filter_scaling_rate']} (ours doubles, 2.0)")
    if h.get("use_bounded_activation"):
        raise NasnetError("TF-Slim hparams: use_bounded_activation (ReLU6 and clipping) is not supported")
    if cells % (reductions + 1):
        raise NasnetError(f"TF-Slim hparams: num_cells {cells} is not a multiple of {reductions + 1}; our models "
                          "have the same number of normal cells in every stage")
    base = {"skeleton": "imagenet", "padding": "same", "bn_eps": 1e-3, "bn_momentum": 0.0003}
    return ModelConfig(normal_cells=cells // (reductions + 1), filters=int(h.get("num_conv_filters", 44)),
                       num_reductions=reductions, stem_multiplier=float(h.get("stem_multiplier", 1.0)),
                       skip_reduction_input=bool(h.get("skip_reduction_layer_input", 0)),
                       aux_head=bool(h.get("use_aux_head", 1)) if aux_head is None else aux_head,
                       dropout=1.0 - float(h.get("dense_dropout_keep_prob", 0.5)),
                       drop_path_keep=float(h.get("drop_path_keep_prob", 1.0)),
                       num_classes=num_classes, image_size=image_size, **base)


def _shape(variables: Any, name: str) -> tuple[int, ...]:
    if hasattr(variables, "entries"):      # an open TensorBundle: shapes without reading
        return tuple(variables.entries[name].shape)
    return tuple(np.shape(variables[name]))


def _names(variables: Any) -> list[str]:
    return list(variables.entries) if hasattr(variables, "entries") else list(variables)


def _read(variables: Any, name: str) -> np.ndarray:
    return variables.read(name) if hasattr(variables, "entries") else np.asarray(variables[name])


def describe(variables: Any, where: str = "the checkpoint") -> dict[str, Any]:
    """What a TF-Slim NASNet checkpoint's shapes show: ``structure`` (stem width, F0, normal cells a
    stage, reductions; see mapping.structure), ``classes`` and ``aux_cell`` (None: no auxiliary head)."""
    names = _names(variables)
    if "conv0/weights" not in names or "final_layer/FC/weights" not in names or "cell_0/1x1/weights" not in names:
        raise NasnetError(f"{where} is not a TF-Slim NASNet ImageNet checkpoint (no conv0/weights, cell_0/1x1/weights "
                          "or final_layer/FC/weights)")
    cells = {int(m.group(1)) for n in names if (m := _CELL.match(n))}
    reductions = len({int(m.group(1)) for n in names if (m := _REDUCTION.match(n))})
    aux = sorted({int(m.group(1)) for n in names if (m := _AUX.match(n))})
    if reductions < 1 or len(cells) % (reductions + 1):
        raise NasnetError(f"{where}: {len(cells)} normal cells around {reductions} reductions do not make equal "
                          "stages, which our models need")
    stem, f0 = _shape(variables, "conv0/weights")[3], _shape(variables, "cell_0/1x1/weights")[3]
    return {"structure": (stem, f0, len(cells) // (reductions + 1), reductions),
            "classes": _shape(variables, "final_layer/FC/weights")[1], "aux_cell": aux[0] if aux else None}


def convert_tf_slim(variables: Any, config: ModelConfig, keep_background: bool = False, aux_head: bool | None = None,
                    where: str = "the checkpoint", name: str | None = None
                    ) -> tuple[ModelConfig, dict[str, torch.Tensor], ImportInfo]:
    """TF-Slim NASNet variables -> (our ModelConfig, our state dict, ImportInfo), into `config`'s architecture.

    `variables`: a mapping name -> array, or an open `TensorBundle` (then only the needed tensors are
    read). The structure the shapes show must be `config`'s (`name`: the config's name in messages
    and in the ImportInfo). The classes come from the file. `aux_head`: None keeps the auxiliary
    head when the checkpoint has one, False leaves it out (its variables are then ignored), True
    requires it.
    """
    found = describe(variables, where)
    check_structure(found["structure"], config, where, "TF-Slim NASNet", name)
    classes = found["classes"]
    drop = classes == BACKGROUND_CLASSES and not keep_background
    has_aux = found["aux_cell"] is not None
    if aux_head and not has_aux:
        raise NasnetError(f"{where}: the checkpoint has no auxiliary head (no aux_*/aux_logits variables)")
    keep_aux = has_aux if aux_head is None else bool(aux_head)
    config = config.replace(num_classes=classes - 1 if drop else classes, aux_head=keep_aux)
    with torch.device("meta"):
        skeleton = NASNet(config)
    table = TF_SLIM.table(skeleton)
    names = _names(variables)
    ignored = {n for n in names if _BOOKKEEPING.search(n)}
    notes = []
    if has_aux and not keep_aux:
        aux_vars = {n for n in names if _AUX.match(n)}
        ignored |= aux_vars
        notes.append(f"auxiliary head left out ({len(aux_vars)} variables)")
    what = f"{name or 'the model'} (TF-Slim layout)"
    state, counters = apply_table(table, skeleton.state_dict(), lambda n: _shape(variables, n),
                                  lambda n: _read(variables, n), names, where, what, drop, ignored)
    mapped = len({s.name for s in table.values()})
    info = ImportInfo(name, classes, config.num_classes, drop, mapped, counters, LAYOUT, FORMAT,
                      tuple(sorted(ignored)), tuple(notes))
    return config, state, info
