"""TensorFlow-Slim NASNet-A checkpoints (the original release), mapped exactly onto our models.

TF-Slim's NASNet (``research/slim/nets/nasnet`` of TensorFlow's model garden) released NASNet-A
Mobile and Large as ``nasnet-a_mobile_04_10_2017.tar.gz`` / ``nasnet-a_large_04_10_2017.tar.gz``:
a V2 checkpoint (``model.ckpt.index`` + ``model.ckpt.data-00000-of-00001``) with 1001 classes
(class 0 is "background") and the auxiliary head. It is read here with our own reader of the
format (tensor_bundle.py: no TensorFlow needed) and mapped by a table derived, like the PyTorch
layout's in reference.py, by walking a built model. TF-Slim names variables this way::

    conv0/weights, conv0_bn/{gamma,beta,moving_mean,moving_variance}      the stem (3x3, stride 2, VALID)
    cell_stem_0, cell_stem_1                                              the two stem (reduction) cells
    cell_K                                  the normal cells, numbered 0, 1, 2, ... across the network
    reduction_cell_0, reduction_cell_1      inserted before cell_N and cell_2N (N normal cells a stage)
    <cell>/1x1/weights, <cell>/beginning_bn/...        input 0: ReLU, 1x1 conv, BN
    <cell>/prev_1x1/weights, <cell>/prev_bn/...         input 1 when only its width differs
    <cell>/path1_conv, path2_conv, final_path_bn        input 1 at twice the resolution (factorized reduction)
    <cell>/comb_iter_B/{left,right}/separable_KxK_{1,2}/{depthwise_weights,pointwise_weights}
    <cell>/comb_iter_B/{left,right}/bn_sep_KxK_{1,2}/...                block B's two ops (sep convs)
    <cell>/comb_iter_B/{left,right}/1x1/weights, bn_1/...               a pool or identity that changes width
    aux_K/aux_logits/{proj/weights, aux_bn0, Conv/weights, aux_bn1, FC/{weights,biases}}
                                            the auxiliary head, after cell_K (the last before the last reduction)
    final_layer/FC/{weights,biases}         the classifier
    global_step                             training bookkeeping (ignored)

TF-Slim's hidden states are numbered as ours (0: the previous cell after its 1x1 conv, 1: the one
before, 2 + b: block b) and comb_iter_B's left / right ops are our ``ops.{2B}`` / ``ops.{2B+1}``.
Kernels are HWIO (ours OIHW), depthwise kernels H x W x C x 1 (ours C x 1 x H x W), dense kernels
(in, out) (ours (out, in)). BatchNorm: gamma/beta/moving_mean/moving_variance are our
weight/bias/running_mean/running_var; TF-Slim's NASNet uses epsilon 1e-3 and decay 0.9997, which
is what our zoo's ImageNet models use (bn_eps 1e-3, momentum 3e-4), with TensorFlow's "SAME" padding.

`describe` reads the structure from the shapes (stem width, F0 = cell_0's width, normal cells,
reductions, classes, the auxiliary head); the target architecture is the caller's - a zoo model
chosen by name or by that structure (`nasnet.zoo.importer`), or `config_from_hparams` for
checkpoints of other sizes - because TF-Slim's ``skip_reduction_layer_input`` (on for Large) cannot
be seen in the shapes. Both classifiers lose row 0 of a 1001-class head unless ``keep_background``. Variables that are
training bookkeeping (the global step, optimizer slots, moving-average shadows) are left out and
listed in the import's ``ignored``; anything else left over, missing or misshapen is an error naming
the file and the first offending variables.

``tests/test_weights_tf_slim.py`` checks the mapping against checkpoints that TensorFlow itself wrote
from TF-Slim's builder, and TensorFlow's logits for them (tools/make_tf_slim_fixture.py).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import NasnetError
from ..model.layers import ConvBN, FactorizedReduce
from ..model.network import ModelConfig, NASNet
from ..model.ops import Identity, PoolOp, Projection, SepConv
from .formats import TF_CHECKPOINT
from .mapping import (BACKGROUND_CLASSES, CLASSES, CONV, DENSE, DEPTHWISE, ImportInfo, Source, apply_table,
                      check_structure)

FORMAT = TF_CHECKPOINT
LAYOUT = "tf-slim nasnet"
BN_LEAVES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
# Training bookkeeping that may sit in a checkpoint beside the weights.
_BOOKKEEPING = re.compile(r"(^|/)global_step$|/(ExponentialMovingAverage|Momentum|RMSProp(_1)?|Adam(_1)?|"
                          r"Adagrad|Ftrl(_1)?)$|^(beta1_power|beta2_power)$")
_CELL = re.compile(r"^cell_(\d+)/")
_REDUCTION = re.compile(r"^reduction_cell_(\d+)/")
_AUX = re.compile(r"^aux_(\d+)/aux_logits/")


# --------------------------------------------------------------------------------------------
# The name table, derived from a built model
# --------------------------------------------------------------------------------------------
def tf_slim_cell_names(config: ModelConfig) -> list[str]:
    """TF-Slim's scope of every cell of an ImageNet-skeleton network, in our cell order."""
    names, counts = [], {"stem": 0, "reduce": 0, "normal": 0}
    for kind, _ in config.cell_plan():
        n = counts[kind]
        counts[kind] += 1
        names.append({"stem": f"cell_stem_{n}", "reduce": f"reduction_cell_{n}", "normal": f"cell_{n}"}[kind])
    return names


def _conv(table: dict, ours: str, theirs: str) -> None:
    table[f"{ours}.weight"] = Source(f"{theirs}/weights", CONV)


def _bn(table: dict, ours: str, theirs: str) -> None:
    for leaf, ours_leaf in BN_LEAVES.items():
        table[f"{ours}.{ours_leaf}"] = Source(f"{theirs}/{leaf}")


def _conv_bn(table: dict, ours: str, conv: str, bn: str) -> None:
    _conv(table, f"{ours}.conv", conv)
    _bn(table, f"{ours}.bn", bn)


def _factorized(table: dict, ours: str, module: FactorizedReduce, scope: str) -> None:
    if module.stride == 1:
        _conv(table, f"{ours}.conv", f"{scope}/path_conv")
        _bn(table, f"{ours}.bn", f"{scope}/path_bn")
    else:
        _conv(table, f"{ours}.conv_1", f"{scope}/path1_conv")
        _conv(table, f"{ours}.conv_2", f"{scope}/path2_conv")
        _bn(table, f"{ours}.bn", f"{scope}/final_path_bn")


def check_tf_slim_compatible(config: ModelConfig) -> None:
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
    if problems:
        raise NasnetError("TF-Slim's NASNet layout does not fit this model: " + "; ".join(problems))


def variable_table(model: NASNet) -> dict[str, Source]:
    """Every state-dict key of `model` (BN counters aside) -> the TF-Slim variable it comes from."""
    check_tf_slim_compatible(model.config)
    names = tf_slim_cell_names(model.config)
    table: dict[str, Source] = {}
    _conv_bn(table, "stem", "conv0", "conv0_bn")
    for i, cell in enumerate(model.cells):
        scope = names[i]
        for j, module in enumerate(cell.preprocess):
            ours = f"cells.{i}.preprocess.{j}"
            if isinstance(module, Identity | nn.Identity):
                continue
            if j == 0 and isinstance(module, ConvBN):
                _conv_bn(table, ours, f"{scope}/1x1", f"{scope}/beginning_bn")
            elif j == 1 and isinstance(module, ConvBN):
                _conv_bn(table, ours, f"{scope}/prev_1x1", f"{scope}/prev_bn")
            elif j == 1 and isinstance(module, FactorizedReduce) and module.stride > 1:
                _factorized(table, ours, module, scope)
            else:
                raise NasnetError(f"{scope} input {j}: a {type(module).__name__} has no counterpart in TF-Slim")
        for k, op in enumerate(cell.ops):
            b, side = divmod(k, 2)
            ours, theirs = f"cells.{i}.ops.{k}", f"{scope}/comb_iter_{b}/{'left' if side == 0 else 'right'}"
            if isinstance(op, SepConv):
                size = op.depthwise_1.kernel_size[0]
                for part in (1, 2):
                    sep = f"{theirs}/separable_{size}x{size}_{part}"
                    table[f"{ours}.depthwise_{part}.weight"] = Source(f"{sep}/depthwise_weights", DEPTHWISE)
                    table[f"{ours}.pointwise_{part}.weight"] = Source(f"{sep}/pointwise_weights", CONV)
                    _bn(table, f"{ours}.bn_{part}", f"{theirs}/bn_sep_{size}x{size}_{part}")
            elif isinstance(op, PoolOp) and op.project is not None:
                _conv_bn(table, f"{ours}.project", f"{theirs}/1x1", f"{theirs}/bn_1")
            elif isinstance(op, Projection):
                _conv_bn(table, ours, f"{theirs}/1x1", f"{theirs}/bn_1")
            elif not isinstance(op, PoolOp | Identity):
                raise NasnetError(f"{scope} op {k}: a {type(op).__name__} has no counterpart in TF-Slim")
        for n, adapt in enumerate(cell.out_adapt):
            if isinstance(adapt, FactorizedReduce):
                _factorized(table, f"cells.{i}.out_adapt.{n}", adapt,
                            f"{scope}/cell_output/reduction_{cell.spec.concat[n]}")
            elif not isinstance(adapt, nn.Identity):
                raise NasnetError(f"{scope} output {n}: a {type(adapt).__name__} has no counterpart in TF-Slim")
    if model.aux_head is not None:
        aux = f"aux_{names[model.aux_index].rpartition('_')[2]}/aux_logits"
        _conv_bn(table, "aux_head.proj", f"{aux}/proj", f"{aux}/aux_bn0")
        _conv(table, "aux_head.conv", f"{aux}/Conv")
        _bn(table, "aux_head.bn", f"{aux}/aux_bn1")
        table["aux_head.classifier.weight"] = Source(f"{aux}/FC/weights", DENSE, classifier=True)
        table["aux_head.classifier.bias"] = Source(f"{aux}/FC/biases", CLASSES, classifier=True)
    table["classifier.weight"] = Source("final_layer/FC/weights", DENSE, classifier=True)
    table["classifier.bias"] = Source("final_layer/FC/biases", CLASSES, classifier=True)
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    unmapped = [k for k in keys if k not in table]
    if unmapped:
        raise NasnetError(f"model keys without a TF-Slim counterpart: {', '.join(unmapped[:8])}")
    if len({s.name for s in table.values()}) != len(table):
        raise AssertionError("the TF-Slim variable table is not one-to-one")
    return table


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
    table = variable_table(skeleton)
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
