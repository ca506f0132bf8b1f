"""Published NASNet-A weights: the reference PyTorch key layout, mapped exactly onto our models (SPEC §4).

The NASNet-A Large and Mobile ImageNet checkpoints that circulate in PyTorch (the pretrainedmodels
package's ``nasnetalarge`` / ``nasnetamobile`` and timm's ``nasnetalarge``, all ports of TensorFlow's
model-garden release) share one key layout, written cell by cell::

    conv0.conv.weight, conv0.bn.*                        the stem
    cell_stem_0.conv_1x1.conv.weight                     stem cell 0, input 0's ReLU-1x1-BN
    cell_stem_1.path_1.conv.weight, .final_path_bn.*     a factorized reduction of input 1
    cell_7.conv_prev_1x1.conv.weight                     input 1's ReLU-1x1-BN
    cell_7.comb_iter_0_left.separable_1.depthwise_conv2d.weight   block 0, first op, sep conv part 1
    reduction_cell_0..., cell_17..., last_linear.weight  reductions, normal cells, the classifier

Our networks are built from the genotype (DESIGN: hand-unrolled cells belong in a mapping table,
never in the model), so this module *derives* the table by walking a built model: every module of
every cell has exactly one counterpart, named by the rules below. ``comb_iter_{b}_left`` is block
b's first op and ``_right`` its second (SPEC §2 numbering: ``ops.{2b}`` and ``ops.{2b+1}``);
identity and pooling ops hold no weights. The reference numbers normal cells ``cell_{6 s + j}``
(stage s, j-th cell) in both models, so Mobile has ``cell_0..3, cell_6..9, cell_12..15``.

Loading is strict: every checkpoint key must be used and every model key found, with equal shapes;
otherwise one error lists the offending keys. BatchNorm ``num_batches_tracked`` counters are the
one exception - checkpoints written by old PyTorch versions lack them and they do not change any
output, so a missing counter is left at 0. Files are read with ``torch.load(weights_only=True)``:
nothing in a checkpoint is ever executed.

The 1001-class variant (TensorFlow's class 0 is "background") is converted by dropping row 0 of
the classifier, unless the caller asks to keep it.

``seeded_state_dict`` makes a deterministic, well-scaled weight set from key names and shapes alone.
The exactness fixture (``tests/fixtures/reference_nasnet.pt``, made by
``tools/make_reference_fixture.py`` with the reference implementations installed) stores the
reference layout and the reference logits for such weights; the tests regenerate the same weights
here, load them through this module and compare logits, without the reference installed.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import NasnetError, first_line
from .genotype import NASNET_A
from .layers import ConvBN, FactorizedReduce
from .network import ModelConfig, NASNet
from .ops import Identity, PoolOp, SepConv

# The zoo models that have published weights in this layout, and the stem width that tells them apart.
REFERENCE_MODELS: dict[str, int] = {"nasnet_a_large": 96, "nasnet_a_mobile": 32}
BACKGROUND_CLASSES = 1001  # TensorFlow's ImageNet head: class 0 is "background"
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
_COUNTER = "num_batches_tracked"


class CheckpointMismatch(NasnetError):
    """A checkpoint whose keys or shapes do not fit the model; the offending keys are attributes."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str], wrong_shape: list[str]):
        super().__init__(message)
        self.missing, self.unexpected, self.wrong_shape = missing, unexpected, wrong_shape


@dataclass(frozen=True)
class ImportInfo:
    """What a conversion found: the zoo model, the class count before/after, keys mapped."""

    model: str
    source_classes: int
    num_classes: int
    dropped_background: bool
    keys: int
    counters_missing: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "source_classes": self.source_classes, "num_classes": self.num_classes,
                "dropped_background": self.dropped_background, "keys": self.keys,
                "counters_missing": self.counters_missing, "layout": "pretrainedmodels/timm nasnet"}


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


def reference_config(model_name: str, num_classes: int = 1000) -> ModelConfig:
    """The zoo config the published weights load into: no auxiliary head (the ports dropped it)."""
    from .zoo import model_config

    if model_name not in REFERENCE_MODELS:
        raise NasnetError(f"no published-weights layout for {model_name!r} (known: {', '.join(REFERENCE_MODELS)})")
    return model_config(model_name, aux_head=False, num_classes=num_classes)


def reference_shapes(model_name: str, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the reference layout, derived from our model (built on the meta device)."""
    with torch.device("meta"):
        model = NASNet(reference_config(model_name, num_classes))
    keymap = reference_key_map(model)
    return {keymap[k]: tuple(v.shape) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------
# Reading files and converting state dicts
# --------------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> Any:
    """torch.load(weights_only=True) with one-line errors: missing file, not a checkpoint, code inside."""
    path = Path(path)
    if not path.is_file():
        raise NasnetError(f"checkpoint {str(path)!r}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        reason = next((ln.strip() for ln in text.splitlines() if "WeightsUnpickler error" in ln),
                      first_line(err))
        if "Unsupported global" in text or "Unsupported class" in text:
            raise NasnetError(
                f"checkpoint {str(path)!r} refers to Python code or classes besides tensors and plain data; it was "
                f"not loaded (files are read with weights_only=True, nothing in them is executed): {reason}") from None
        raise NasnetError(f"{str(path)!r} is not a PyTorch checkpoint ({reason})") from None
    except Exception as err:  # garbage makes the unpickler fail in many ways (IndexError, KeyError, ...)
        raise NasnetError(f"{str(path)!r} is not a PyTorch checkpoint ({first_line(err)})") from None


def as_state_dict(obj: Any, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A flat key -> tensor dict, from a state dict or a dict wrapping one under 'state_dict'/'model'/'module'
    (the last is how a training checkpoint stores its weight EMA)."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model", "module"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping) and not isinstance(obj[wrapper], torch.Tensor):
                inner = obj[wrapper]
                if inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                    obj = inner
                    break
    if not isinstance(obj, Mapping) or not obj:
        raise NasnetError(f"{where} is not a state dict (a mapping of parameter names to tensors)")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise NasnetError(f"{where} is not a state dict: {len(bad)} entries are not tensors "
                          f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})")
    state = dict(obj)
    if "n_averaged" in state and len(state) > 1:  # torch.optim.swa_utils.AveragedModel (weight EMA)
        state.pop("n_averaged")
    if all(k.startswith("module.") for k in state):  # DataParallel / DDP / AveragedModel wrappers
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


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


def _listed(keys: list[str], limit: int = 40) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def convert_reference_state_dict(state: Mapping[str, torch.Tensor], model: str | None = None,
                                 keep_background: bool = False) -> tuple[ModelConfig, dict[str, torch.Tensor],
                                                                          ImportInfo]:
    """A reference-layout state dict -> (our ModelConfig, our state dict, ImportInfo).

    `model` (a REFERENCE_MODELS name) is checked against the checkpoint; None detects it. Raises
    CheckpointMismatch listing missing, unexpected and wrongly shaped keys.
    """
    state = as_state_dict(state)
    detected = detect_reference_model(state)
    if model is not None and model != detected:
        if model not in REFERENCE_MODELS:
            raise NasnetError(f"no published-weights layout for {model!r} (known: {', '.join(REFERENCE_MODELS)})")
        raise NasnetError(f"the checkpoint is {detected} (its stem has {state['conv0.conv.weight'].shape[0]} "
                          f"filters), not {model}")
    head = state["last_linear.weight"]
    source_classes = head.shape[0] if head.dim() == 2 else -1
    drop = source_classes == BACKGROUND_CLASSES and not keep_background
    num_classes = source_classes - 1 if drop else source_classes
    if num_classes < 1:
        raise NasnetError(f"last_linear.weight has shape {tuple(head.shape)}; expected (classes, features)")
    config = reference_config(detected, num_classes=num_classes)
    with torch.device("meta"):
        skeleton = NASNet(config)
    ours = skeleton.state_dict()
    keymap = reference_key_map(skeleton)

    wanted = {ref: k for k, ref in keymap.items()}
    missing = sorted(r for r in wanted if r not in state and not r.endswith(_COUNTER))
    unexpected = sorted(k for k in state if k not in wanted)
    wrong = []
    out: dict[str, torch.Tensor] = {}
    for ref, key in wanted.items():
        if ref not in state:
            continue
        tensor = state[ref]
        if drop and ref.startswith("last_linear."):
            tensor = tensor[1:]
        if tuple(tensor.shape) != tuple(ours[key].shape):
            shown = tuple(state[ref].shape)
            wrong.append(f"{ref} {shown} (model expects {tuple(ours[key].shape)})")
            continue
        out[key] = tensor.to(ours[key].dtype).clone()
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listed(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
        if wrong:
            parts.append(f"{len(wrong)} key(s) with the wrong shape: {_listed(wrong, 20)}")
        raise CheckpointMismatch(f"the checkpoint does not fit {detected}: " + "; ".join(parts),
                                 missing, unexpected, wrong)
    counters = 0
    for key, tensor in ours.items():
        if key not in out:  # only BN counters can get here
            out[key] = torch.zeros((), dtype=tensor.dtype)
            counters += 1
    info = ImportInfo(detected, source_classes, num_classes, drop, len(state), counters)
    return config, out, info


def to_reference_state_dict(model: NASNet) -> dict[str, torch.Tensor]:
    """Our model's weights in the reference layout (the inverse of the import), e.g. to feed a reference port."""
    keymap = reference_key_map(model)
    return {keymap[k]: v for k, v in model.state_dict().items()}


def load_reference_weights(model: NASNet, state: Mapping[str, torch.Tensor], keep_background: bool = False
                           ) -> ImportInfo:
    """Load a reference-layout state dict into an existing model built with `reference_config`."""
    config, converted, info = convert_reference_state_dict(state, keep_background=keep_background)
    if config != model.config:
        raise NasnetError(f"the checkpoint is {info.model} with {info.num_classes} classes; the model's config "
                          "differs (build it with nasnet.pretrained.reference_config)")
    model.load_state_dict(converted, strict=True)
    return info


def import_reference_model(state_or_path: Mapping[str, torch.Tensor] | str | Path, model: str | None = None,
                           keep_background: bool = False) -> tuple[NASNet, ImportInfo]:
    """Build the zoo model, load published weights into it, attach its preprocessing; eval mode."""
    from .model_file import build_with_weights
    from .zoo import get_entry

    state = read_checkpoint(state_or_path) if isinstance(state_or_path, (str, Path)) else state_or_path
    config, converted, info = convert_reference_state_dict(state, model, keep_background)
    net = build_with_weights(config, converted).eval()
    net.preprocessing = get_entry(info.model).preprocessing
    return net, info


# --------------------------------------------------------------------------------------------
# Seeded weights for the exactness fixture
# --------------------------------------------------------------------------------------------
def _generator(seed: int, key: str) -> torch.Generator:
    # Per-key seeds: a key's tensor does not depend on which other keys exist or their order, so a
    # 1000- and a 1001-class layout share every weight but the classifier's.
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(key.encode())) % (2**63))


def seeded_state_dict(shapes: Mapping[str, tuple[int, ...] | list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """A deterministic weight set for the given key -> shape layout, scaled so a deep NASNet stays O(1).

    Rules by key: conv/linear weights ~ N(0, gain^2 / fan_in) (gain sqrt(2) for convs, 1 for linear
    layers); BN weight ~ U(0.5, 1), bias and running_mean ~ N(0, 0.1^2), running_var ~ U(1, 2)
    (positive); linear bias ~ N(0, 0.1^2); BN counters 0. Identical on every machine for a given
    torch version (CPU generator, float32), which is what lets the fixture test run anywhere.
    """
    out: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        g = _generator(seed, key)
        leaf = key.rpartition(".")[2]
        if leaf == _COUNTER:
            out[key] = torch.zeros((), dtype=torch.long)
        elif leaf == "running_var":
            out[key] = 1.0 + torch.rand(shape, generator=g)
        elif leaf == "running_mean":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "weight" and len(shape) == 1:  # BatchNorm scale
            out[key] = 0.5 + 0.5 * torch.rand(shape, generator=g)
        elif leaf == "bias":
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif leaf == "weight":
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            gain = 2.0**0.5 if len(shape) == 4 else 1.0
            out[key] = torch.randn(shape, generator=g) * (gain / fan_in**0.5)
        else:
            raise NasnetError(f"seeded_state_dict: no rule for key {key!r}")
    return out


def seeded_input(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A deterministic input batch in roughly the models' [-1, 1] input range."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).clamp_(-2.5, 2.5) * 0.4
