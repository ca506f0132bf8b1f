"""Keras Applications' NASNet-A weights (``NASNet-mobile.h5``, ``NASNet-large.h5``, their ``-no-top``
variants), read with h5py and mapped exactly onto our models; nothing in a file is executed.

`read_keras_h5` reads Keras's legacy HDF5 weights layout (docs/formats.md): the ``layer_names`` and
``weight_names`` attributes (chunked when large), or the same under ``model_weights`` in a whole-model
file. `KERAS` names the roles of the shared walk (layout.py) by Keras's layer names: block ids and
per-op sep-conv names (docs/weight-layouts.md). `describe` reads the structure from the shapes; the
target architecture is the caller's (`nasnet.zoo.importer`), since Keras's ``skip_reduction`` is not
visible in them. The conversion is the same for both numerics: the config's padding ("same", or
"keras" for Keras's zero-padded strided pools) decides the outputs. Tested against files and outputs
that Keras itself produced (tools/make_keras_fixture.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arch.genotype import NASNET_A
from ..errors import NasnetError, first_line
from ..model.network import ModelConfig, NASNet
from .formats import KERAS_H5
from .layout import CellPlace, Layout, Part, Role, tensorflow_leaves
from .mapping import ImportInfo, apply_table, check_structure

FORMAT = KERAS_H5
LAYOUT = "keras nasnet"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
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
# The names
# --------------------------------------------------------------------------------------------
class KerasLayout(Layout):
    """Keras's layer names: each cell's layers end in its block id; sep convs are named per op (SEP_NAMES)."""

    name = "Keras's NASNet layout"
    leaves = tensorflow_leaves("kernel", "depthwise_kernel", "pointwise_kernel", ("kernel", "bias"))
    background = False       # 1000 classes, none of them background
    stem_names = {"conv": "stem_conv1", "bn": "stem_bn1"}
    classifier_name = "predictions"

    def problems(self, config: ModelConfig) -> list[str]:
        problems = []
        if config.genotype != NASNET_A:
            problems.append("its genotype is not NASNet-A (Keras builds only NASNet-A)")
        if config.skeleton != "imagenet" or config.num_reductions != 2:
            problems.append("it is not on the ImageNet skeleton with 2 reductions")
        if config.aux_head:
            problems.append("it has an auxiliary head (Keras's NASNet has none): build it with aux_head=False")
        return problems

    def cell_name(self, place: CellPlace) -> tuple[str, str]:
        """(cell kind, Keras block id). Keras numbers the normal cells of stage 0 as 0 .. N-1, of stage
        s >= 1 as s N + 1 .. s N + N, and the reductions reduce_N, reduce_2N."""
        if place.kind == "stem":
            return "reduction", f"stem_{place.number + 1}"
        if place.kind == "reduce":
            return "reduction", f"reduce_{place.normals_before}"
        return "normal", str(place.normals_before + (place.stage > 0))

    def scopes(self, part: Part) -> dict[str, str] | None:
        if part.role is Role.AUX_HEAD:
            return None
        kind, block = self.cell_name(part.cell)
        if part.role is Role.INPUT and part.index == 0:
            return {"conv": f"{kind}_conv_1_{block}", "bn": f"{kind}_bn_1_{block}"}
        if part.role is Role.INPUT and part.index == 1:
            return {"conv": f"adjust_conv_projection_{block}", "bn": f"adjust_bn_{block}"}
        if part.role is Role.FACTORIZED and part.index == 1 and part.module.stride == 2:
            return {"conv_1": f"adjust_conv_1_{block}", "conv_2": f"adjust_conv_2_{block}", "bn": f"adjust_bn_{block}"}
        if part.role is Role.SEP_CONV and (kind, part.block, part.index % 2) in SEP_NAMES:
            name = f"{SEP_NAMES[kind, part.block, part.index % 2]}_{block}"
            return {f"{layer}_{n}": f"separable_conv_{n}_{'bn_' if layer == 'bn' else ''}{name}"
                    for n in (1, 2) for layer in ("depthwise", "pointwise", "bn")}
        return None


KERAS = KerasLayout()


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
    table = KERAS.table(skeleton)
    what = f"{name or 'the model'} (Keras layout, {'with' if found['classes'] else 'without'} the top)"
    state, counters = apply_table(table, skeleton.state_dict(), lambda n: weights[n].shape, weights.__getitem__,
                                  list(weights), where, what)
    notes = () if found["classes"] else ("no top: the model has no classifier and returns pooled features",)
    info = ImportInfo(name, found["classes"], found["classes"], False, len(weights), counters, LAYOUT, FORMAT,
                      (), notes)
    return config, state, info
