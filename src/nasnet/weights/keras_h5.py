"""Keras Applications NASNet-A weights (``NASNet-mobile.h5``, ``NASNet-large.h5`` and their ``-no-top``
variants), read with h5py and mapped exactly onto our models.

The files are ``save_weights`` output in Keras's legacy HDF5 layout: the root attribute
``layer_names`` lists the layers in order; each layer's group has a ``weight_names`` attribute
(``separable_conv_1_normal_left1_0/depthwise_kernel:0``, ``stem_bn1/gamma:0``, ...) naming its
datasets. An attribute too large for an HDF5 object header is stored in chunks ``layer_names0``,
``layer_names1``, ...; a whole-model file (``model.save``) keeps the same layout under
``model_weights``. Nothing in the file is executed, and no Keras or TensorFlow is needed.

Keras's NASNet (``keras.applications.nasnet``) builds the same network as TF-Slim's, with its own
names. Per cell, with block id B (``stem_1``, ``stem_2``, ``0`` .. ``N-1``, ``reduce_N``, ``N+1`` ..
``2N``, ``reduce_2N``, ``2N+1`` .. ``3N``) and kind ``normal`` or ``reduction`` (the stem cells are
reduction cells)::

    {kind}_conv_1_B, {kind}_bn_1_B                       input 0: ReLU, 1x1 conv, BN
    adjust_conv_1_B, adjust_conv_2_B, adjust_bn_B        input 1 at twice the resolution (factorized)
    adjust_conv_projection_B, adjust_bn_B                input 1 of another width
    separable_conv_{1,2}_{op}_B, separable_conv_{1,2}_bn_{op}_B    a sep conv op, twice
    stem_conv1, stem_bn1; predictions (the 1000-class top; no auxiliary head, no background class)

where ``op`` names block b's sep-conv ops: normal_left1/right1 (block 0), normal_left2/right2
(block 1), normal_left5 (block 4); reduction_left1/right1 (block 0), reduction_right2 (block 1),
reduction_right3 (block 2) and - Keras's name for block 4's sep conv - reduction_left4. The blocks,
their inputs and the concatenation order are TF-Slim's NASNet-A (checked op by op against Keras's
``_normal_a_cell`` / ``_reduction_a_cell``). BatchNorm epsilon 1e-3, momentum 0.9997 (our 3e-4).

Keras's numerics differ from TensorFlow's NASNet in one place. Its stride-2 pools in the reduction
cells zero-pad the input (``ZeroPadding2D(correct_pad(x, 3))``) and then pool "valid", so the
average pools count the padded zeros and the max pools see zeros, where TF-Slim's "SAME" pools (and
ours, padding="same") ignore padding. Its other pools and its convolutions (padded the same way,
then "valid") equal TensorFlow's "SAME". Our models compute Keras's arithmetic when built with
``padding="keras"`` (nasnet.model.layers): the conversion here is the same for both, the config's
padding decides the numerics. ``correct_pad`` pads like "SAME" only for the fixed input size a Keras
model is built at (224 / 331 for the Applications); a Keras model built with an unknown input size
pads differently.

`describe` reads the structure from the shapes; the target architecture is the caller's (a zoo model
by name or by structure: `nasnet.zoo.importer`), since Keras's ``skip_reduction`` is not visible in
the shapes.

``tests/test_weights_keras.py`` checks the mapping against files Keras wrote and Keras's outputs
(tools/make_keras_fixture.py), and measures what the TensorFlow-exact model gives on them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..arch.genotype import NASNET_A
from ..errors import NasnetError, first_line
from ..model.layers import ConvBN, FactorizedReduce
from ..model.network import ModelConfig, NASNet
from ..model.ops import Identity, PoolOp, SepConv
from .formats import KERAS_H5
from .mapping import CLASSES, CONV, DENSE, DEPTHWISE, ImportInfo, Source, apply_table, check_structure

FORMAT = KERAS_H5
LAYOUT = "keras nasnet"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
BN_LEAVES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
# Keras's names for NASNet-A's sep-conv ops: (cell kind, block, 0 = left / 1 = right) -> name.
SEP_NAMES = {
    ("normal", 0, 0): "normal_left1", ("normal", 0, 1): "normal_right1",
    ("normal", 1, 0): "normal_left2", ("normal", 1, 1): "normal_right2",
    ("normal", 4, 0): "normal_left5",
    ("reduction", 0, 0): "reduction_left1", ("reduction", 0, 1): "reduction_right1",
    ("reduction", 1, 1): "reduction_right2", ("reduction", 2, 1): "reduction_right3",
    ("reduction", 4, 0): "reduction_left4",
}
_NORMAL_CONV = re.compile(r"^normal_conv_1_(\d+)/kernel$")


# --------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------
def _text(v: Any) -> str:
    return v.decode("utf8") if isinstance(v, bytes | np.bytes_) else str(v)


def _attr_list(group: Any, name: str) -> list[str]:
    """A list attribute, joined from its chunks ``name0``, ``name1``, ... when Keras had to split it."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    out, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        out += [_text(v) for v in np.atleast_1d(group.attrs[f"{name}{chunk}"])]
        chunk += 1
    if chunk == 0:
        raise KeyError(name)
    return out


def read_keras_h5(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every weight of a Keras legacy-HDF5 weights file: ({"layer/leaf": array}, file attributes).

    ``leaf`` is the weight's own name (kernel, depthwise_kernel, gamma, moving_mean, ...), so the key
    does not depend on the suffixes Keras adds to weight names. Errors are one line naming the file.
    """
    try:
        import h5py
    except ImportError:
        raise NasnetError("reading Keras .h5 files needs the h5py package: pip install 'nasnet[weights]'") from None
    path = Path(path).expanduser()
    where = repr(str(path))
    if not path.is_file():
        raise NasnetError(f"{where}: no such file")
    with open(path, "rb") as fh:
        if fh.read(8) != HDF5_SIGNATURE:
            raise NasnetError(f"{where} is not an HDF5 file (no HDF5 signature)")
    try:
        with h5py.File(path, "r") as f:
            root = f
            if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and "model_weights" in f:
                root = f["model_weights"]          # a whole-model file from model.save(...h5)
            try:
                layers = _attr_list(root, "layer_names")
            except KeyError:
                if "layers" in f and "vars" not in f:
                    raise NasnetError(f"{where} is a Keras 3 '.weights.h5' file; this reader takes the legacy HDF5 "
                                      "layout (tf_keras's save_weights('x.h5'), Keras Applications' files)") from None
                raise NasnetError(f"{where} has no 'layer_names' attribute: not a Keras weights file (legacy HDF5 "
                                  "layout)") from None
            attrs = {k: _text(root.attrs[k]) for k in ("keras_version", "backend") if k in root.attrs}
            out: dict[str, np.ndarray] = {}
            for layer in layers:
                if layer not in root:
                    raise NasnetError(f"{where}: layer {layer!r} is listed in layer_names but has no group")
                group = root[layer]
                try:
                    names = _attr_list(group, "weight_names")
                except KeyError:
                    raise NasnetError(f"{where}: layer {layer!r} has no weight_names attribute") from None
                for wname in names:
                    leaf = wname.rsplit("/", 1)[-1].split(":")[0]
                    if wname not in group:
                        raise NasnetError(f"{where}: weight {wname!r} of layer {layer!r} is missing")
                    key = f"{layer}/{leaf}"
                    if key in out:
                        raise NasnetError(f"{where}: layer {layer!r} has two weights named {leaf!r}")
                    out[key] = np.asarray(group[wname])
            return out, {"layers": len(layers), **attrs}
    except NasnetError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as err:
        raise NasnetError(f"{where} is not a readable HDF5 file (truncated or damaged: {first_line(err)})") from None


# --------------------------------------------------------------------------------------------
# The name table, derived from a built model
# --------------------------------------------------------------------------------------------
def keras_block_ids(config: ModelConfig) -> list[tuple[str, str]]:
    """(cell kind, Keras block id) of every cell, in our cell order. Keras numbers the normal cells of
    stage 0 as 0 .. N-1, of stage s >= 1 as s N + 1 .. s N + N, and the reductions reduce_N, reduce_2N."""
    out, stems, stage, j = [], 0, 0, 0
    n = config.normal_cells
    for kind, _ in config.cell_plan():
        if kind == "stem":
            stems += 1
            out.append(("reduction", f"stem_{stems}"))
        elif kind == "reduce":
            stage, j = stage + 1, 0
            out.append(("reduction", f"reduce_{stage * n}"))
        else:
            out.append(("normal", str(j if stage == 0 else stage * n + 1 + j)))
            j += 1
    return out


def _conv(table: dict, ours: str, layer: str) -> None:
    table[f"{ours}.weight"] = Source(f"{layer}/kernel", CONV)


def _bn(table: dict, ours: str, layer: str) -> None:
    for leaf, ours_leaf in BN_LEAVES.items():
        table[f"{ours}.{ours_leaf}"] = Source(f"{layer}/{leaf}")


def check_keras_compatible(config: ModelConfig) -> None:
    problems = []
    if config.genotype != NASNET_A:
        problems.append("its genotype is not NASNet-A (Keras builds only NASNet-A)")
    if config.skeleton != "imagenet" or config.num_reductions != 2:
        problems.append("it is not on the ImageNet skeleton with 2 reductions")
    if config.aux_head:
        problems.append("it has an auxiliary head (Keras's NASNet has none): build it with aux_head=False")
    if problems:
        raise NasnetError("Keras's NASNet layout does not fit this model: " + "; ".join(problems))


def weight_table(model: NASNet) -> dict[str, Source]:
    """Every state-dict key of `model` (BN counters aside) -> the Keras weight ("layer/leaf") it comes from."""
    check_keras_compatible(model.config)
    table: dict[str, Source] = {}
    _conv(table, "stem.conv", "stem_conv1")
    _bn(table, "stem.bn", "stem_bn1")
    for i, (cell, (kind, block)) in enumerate(zip(model.cells, keras_block_ids(model.config))):
        for j, module in enumerate(cell.preprocess):
            ours = f"cells.{i}.preprocess.{j}"
            if isinstance(module, Identity | nn.Identity):
                continue
            if j == 0 and isinstance(module, ConvBN):
                _conv(table, f"{ours}.conv", f"{kind}_conv_1_{block}")
                _bn(table, f"{ours}.bn", f"{kind}_bn_1_{block}")
            elif j == 1 and isinstance(module, ConvBN):
                _conv(table, f"{ours}.conv", f"adjust_conv_projection_{block}")
                _bn(table, f"{ours}.bn", f"adjust_bn_{block}")
            elif j == 1 and isinstance(module, FactorizedReduce) and module.stride == 2:
                _conv(table, f"{ours}.conv_1", f"adjust_conv_1_{block}")
                _conv(table, f"{ours}.conv_2", f"adjust_conv_2_{block}")
                _bn(table, f"{ours}.bn", f"adjust_bn_{block}")
            else:
                raise NasnetError(f"cell {i} input {j}: a {type(module).__name__} has no counterpart in Keras's NASNet")
        for k, op in enumerate(cell.ops):
            b, side = divmod(k, 2)
            if isinstance(op, SepConv) and (kind, b, side) in SEP_NAMES:
                name = f"{SEP_NAMES[kind, b, side]}_{block}"
                for part in (1, 2):
                    layer = f"separable_conv_{part}_{name}"
                    table[f"cells.{i}.ops.{k}.depthwise_{part}.weight"] = Source(f"{layer}/depthwise_kernel", DEPTHWISE)
                    table[f"cells.{i}.ops.{k}.pointwise_{part}.weight"] = Source(f"{layer}/pointwise_kernel", CONV)
                    _bn(table, f"cells.{i}.ops.{k}.bn_{part}", f"separable_conv_{part}_bn_{name}")
            elif not ((isinstance(op, PoolOp) and op.project is None) or isinstance(op, Identity)):
                raise NasnetError(f"cell {i} op {k}: a {type(op).__name__} has no counterpart in Keras's NASNet")
        if any(not isinstance(a, nn.Identity) for a in cell.out_adapt):
            raise NasnetError(f"cell {i}: an output adapter has no counterpart in Keras's NASNet")
    if isinstance(model.classifier, nn.Linear):
        table["classifier.weight"] = Source("predictions/kernel", DENSE)
        table["classifier.bias"] = Source("predictions/bias", CLASSES)
    return table


# --------------------------------------------------------------------------------------------
# What a file is, and the conversion
# --------------------------------------------------------------------------------------------
def config_from_keras(penultimate_filters: int = 4032, num_blocks: int = 6, stem_block_filters: int = 96,
                      skip_reduction: bool = True, filter_multiplier: int = 2, include_top: bool = True,
                      classes: int = 1000, image_size: int = 331) -> ModelConfig:
    """Our ModelConfig for ``keras.applications.nasnet.NASNet(...)`` with these arguments
    (NASNetMobile: 1056, 4, 32, False; NASNetLarge: 4032, 6, 96, True)."""
    if filter_multiplier != 2:
        raise NasnetError(f"Keras NASNet: filter_multiplier {filter_multiplier} (ours doubles the width, 2)")
    if penultimate_filters % 24:
        raise NasnetError(f"Keras NASNet: penultimate_filters {penultimate_filters} is not a multiple of 24")
    return ModelConfig(skeleton="imagenet", normal_cells=num_blocks, filters=penultimate_filters // 24,
                       stem_multiplier=stem_block_filters / 32, skip_reduction_input=skip_reduction,
                       num_classes=classes if include_top else 0, image_size=image_size, aux_head=False,
                       padding="same", bn_eps=1e-3, bn_momentum=0.0003)


def describe(weights: dict[str, np.ndarray], where: str = "the file") -> dict[str, Any]:
    """What a Keras NASNet file's shapes show: ``structure`` (stem width, F0, normal cells a stage, 2
    reductions; see mapping.structure) and ``classes`` (0: a no-top file)."""
    if "stem_conv1/kernel" not in weights or "normal_conv_1_0/kernel" not in weights:
        raise NasnetError(f"{where} is not a Keras NASNet weights file (no stem_conv1 or normal_conv_1_0 layer)")
    normals = sum(1 for k in weights if _NORMAL_CONV.match(k))
    if normals % 3:
        raise NasnetError(f"{where}: {normals} normal cells are not 3 equal stages")
    top = weights.get("predictions/kernel")
    return {"structure": (weights["stem_conv1/kernel"].shape[3], weights["normal_conv_1_0/kernel"].shape[3],
                          normals // 3, 2),
            "classes": int(top.shape[1]) if top is not None and top.ndim == 2 else 0}


def convert_keras(weights: dict[str, np.ndarray], config: ModelConfig, where: str = "the file",
                  name: str | None = None) -> tuple[ModelConfig, dict[str, torch.Tensor], ImportInfo]:
    """Keras NASNet weights ({"layer/leaf": array}) -> (our ModelConfig, our state dict, ImportInfo).

    The structure the shapes show must be `config`'s (`name`: the config's name in messages and in
    the ImportInfo). The classes come from the file; a no-top file gives a model without classifier
    (num_classes=0: it returns pooled features). Keras's NASNet has no auxiliary head. `config.padding`
    ("same" or "keras") decides the numerics, not the conversion.
    """
    found = describe(weights, where)
    check_structure(found["structure"], config, where, "Keras NASNet", name)
    config = config.replace(num_classes=found["classes"], aux_head=False)
    with torch.device("meta"):
        skeleton = NASNet(config)
    table = weight_table(skeleton)
    what = f"{name or 'the model'} (Keras layout, {'with' if found['classes'] else 'without'} the top)"
    state, counters = apply_table(table, skeleton.state_dict(), lambda n: weights[n].shape, weights.__getitem__,
                                  list(weights), where, what)
    notes = () if found["classes"] else ("no top: the model has no classifier and returns pooled features",)
    info = ImportInfo(name, found["classes"], found["classes"], False, len(weights), counters, LAYOUT, FORMAT,
                      (), notes)
    return config, state, info
