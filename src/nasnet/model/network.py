"""NASNet networks: the CIFAR and ImageNet skeletons of stacked cells (paper §3, Figure 2; docs/nasnet-a.md).

CIFAR:    3x3 conv stem (F0 x stem_multiplier filters) -> [N normal, reduction] x R -> N normal -> head
ImageNet: 3x3 stride-2 conv stem (32 x stem_multiplier, no padding) -> two reduction "stem cells" at
          F0/4 and F0/2 -> the same body -> head

Filters double at every reduction. "N @ F" names a model by the normal cells per stage (N) and the
width of the penultimate layer (F): F = (normal-cell output width in units of F0) x F0 x 2**R, i.e.
24 x F0 for NASNet-A. The auxiliary head sits after the last normal cell before the last reduction
(2/3 of the way up, App. A.7). ScheduledDropPath's progress is an argument of `forward`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..arch.genotype import NASNET_A, Genotype
from ..errors import NasnetError
from ..options import replace_fields
from .cells import CellModule, StateInfo
from .layers import PADDINGS, Conv2d, ConvBN, LayerStyle, batch_norm, drop_path_keep

SKELETONS = ("cifar", "imagenet")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a network's structure. Frozen; JSON via to_dict / from_dict."""

    genotype: Genotype = NASNET_A
    skeleton: str = "cifar"
    normal_cells: int = 6          # N, normal cells per stage
    filters: int = 32              # F0, per-branch filters of the first stage
    num_classes: int = 10          # 0: no classifier, forward returns pooled features
    in_chans: int = 3
    image_size: int = 32           # the size the model is counted and exported at
    stem_multiplier: float = 3.0
    num_reductions: int = 2
    skip_reduction_input: bool = False
    aux_head: bool = False
    dropout: float = 0.0           # head dropout probability (TF's 1 - dense_dropout_keep_prob)
    drop_path_keep: float = 1.0    # k0 of ScheduledDropPath; 1.0 disables it
    padding: str = "symmetric"     # "same" (TensorFlow; the published checkpoints) or "keras" (its pools)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.genotype, Genotype):
            object.__setattr__(self, "genotype", Genotype.load(self.genotype))
        checks = [
            (self.skeleton in SKELETONS, f"skeleton must be one of {', '.join(SKELETONS)}, got {self.skeleton!r}"),
            (_is_int(self.normal_cells) and self.normal_cells >= 1,
             f"N (normal_cells) must be >= 1, got {self.normal_cells!r}"),
            (_is_int(self.filters) and self.filters >= 1, f"F0 (filters) must be >= 1, got {self.filters!r}"),
            (_is_int(self.num_classes) and self.num_classes >= 0,
             f"num_classes must be >= 0, got {self.num_classes!r}"),
            (_is_int(self.in_chans) and self.in_chans >= 1, f"in_chans must be >= 1, got {self.in_chans!r}"),
            (_is_int(self.image_size) and self.image_size >= 1, f"image_size must be >= 1, got {self.image_size!r}"),
            (self.stem_multiplier > 0, f"stem_multiplier must be > 0, got {self.stem_multiplier!r}"),
            (_is_int(self.num_reductions) and self.num_reductions >= 0, "num_reductions must be >= 0"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout!r}"),
            (0.0 < self.drop_path_keep <= 1.0, f"drop_path_keep must be in (0, 1], got {self.drop_path_keep!r}"),
            (self.padding in PADDINGS, f"padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}"),
            (self.bn_eps > 0 and 0 <= self.bn_momentum <= 1, "bn_eps must be > 0 and bn_momentum in [0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise NasnetError(f"model config: {msg}")
        for kind, filters in self.cell_plan():
            if filters < 2:
                raise NasnetError(
                    f"model config: a {kind} cell would have {filters} filter(s); raise F0 (filters={self.filters})"
                )
        if self.skeleton == "imagenet" and self.image_size < 32:
            raise NasnetError(f"model config: the imagenet skeleton needs image_size >= 32, got {self.image_size}")

    # -- derived structure -----------------------------------------------------------------
    def cell_plan(self) -> list[tuple[str, int]]:
        """(kind, filters) of every cell in order; kind is "stem", "normal" or "reduce"."""
        plan: list[tuple[str, int]] = []
        if self.skeleton == "imagenet":
            plan += [("stem", int(self.filters * 0.25)), ("stem", int(self.filters * 0.5))]
        for stage in range(self.num_reductions + 1):
            width = int(self.filters * 2**stage)
            if stage:
                plan.append(("reduce", width))
            plan += [("normal", width)] * self.normal_cells
        return plan

    @property
    def stem_filters(self) -> int:
        base = self.filters if self.skeleton == "cifar" else 32
        return int(base * self.stem_multiplier)

    @property
    def penultimate_filters(self) -> int:
        """F of the paper's "N @ F" notation: the width of the last cell's output."""
        return self.genotype.normal.output_multiple() * self.filters * 2**self.num_reductions

    @property
    def name(self) -> str:
        return f"{self.normal_cells} @ {self.penultimate_filters}"

    def feature_sizes(self) -> list[int]:
        """Spatial size after the stem and after every cell, at `image_size`."""
        size = self.image_size if self.skeleton == "cifar" else (self.image_size - 3) // 2 + 1
        sizes = [size]
        for kind, _ in self.cell_plan():
            if kind != "normal":
                size = math.ceil(size / 2)
            sizes.append(size)
        return sizes

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["genotype"] = str(self.genotype)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return cls().replace(**data)

    def replace(self, **overrides: Any) -> "ModelConfig":
        return replace_fields(self, "model config", overrides)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def filters_from_penultimate(genotype: Genotype, penultimate: int, num_reductions: int = 2) -> int:
    """F0 for an "N @ F" name: F / (normal output width in F0 units x 2**R), rounded to the nearest integer.

    NASNet-A's 4 @ 1056 gives 44 and 6 @ 4032 gives 168 exactly; the paper's 5 @ 1538 is not a
    multiple of 24 and rounds to 64 (docs/reference-configs.md).
    """
    per_f0 = genotype.normal.output_multiple() * 2**num_reductions
    return max(1, round(penultimate / per_f0))


class AuxHead(nn.Module):
    """Auxiliary classifier (paper A.7; docs/nasnet-a.md): ReLU, 5x5 avg pool stride 3, 1x1 conv 128, BN, ReLU,
    conv 768 covering the remaining map, BN, ReLU, linear."""

    def __init__(self, channels: int, size: int, num_classes: int, style: LayerStyle):
        super().__init__()
        self.pool_kernel = min(5, size)
        self.pool_stride = 3 if size >= 5 else 1
        self.out_size = (size - self.pool_kernel) // self.pool_stride + 1
        self.proj = ConvBN(channels, 128, 1, style=style)
        self.conv = Conv2d(128, 768, self.out_size, padding=0)
        self.bn = batch_norm(768, style)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(torch.relu(x), self.pool_kernel, self.pool_stride)
        if x.shape[-1] != self.out_size or x.shape[-2] != self.out_size:
            x = F.adaptive_avg_pool2d(x, self.out_size)  # another input size than the configured one
        x = torch.relu(self.proj(x))
        x = torch.relu(self.bn(self.conv(x)))
        return self.classifier(torch.flatten(x, 1))


class NASNet(nn.Module):
    """A network of stacked cells built from a ModelConfig.

    ``forward(x)`` returns logits. During training call
    ``forward(x, drop_path_progress=step / total_steps, return_aux=True)`` to get
    ``(logits, aux_logits)`` with ScheduledDropPath applied (aux_logits is None without an aux head).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = cfg = config
        style = LayerStyle(cfg.padding, cfg.bn_eps, cfg.bn_momentum)
        k = cfg.genotype.normal.num_inputs

        if cfg.skeleton == "cifar":
            self.stem = ConvBN(cfg.in_chans, cfg.stem_filters, 3, 1, style=style)
        else:
            # 'VALID' (no padding), as in the reference
            self.stem = ConvBN(cfg.in_chans, cfg.stem_filters, 3, 2, style=style, padding=0)
        history: list[list[StateInfo]] = [[StateInfo(cfg.stem_filters, 0)]]

        plan = cfg.cell_plan()
        sizes = cfg.feature_sizes()
        self.cells = nn.ModuleList()
        self.cell_kinds: list[str] = []
        self._wiring: list[list[tuple[int, int] | None]] = []  # per cell and input: (layers back, output index)
        last_reduce = max((i for i, (kind, _) in enumerate(plan) if kind == "reduce"), default=None)
        self.aux_index = None
        for i, (kind, filters) in enumerate(plan):
            after_reduce = i > 0 and plan[i - 1][0] == "reduce"
            wiring, infos = [], []
            for j in range(k):
                back = j + 1 + (1 if j >= 1 and cfg.skip_reduction_input and kind == "normal" and after_reduce else 0)
                if back > len(history):
                    wiring.append(None)
                    infos.append(None)
                    continue
                entry = history[-back]
                out = min(j, len(entry) - 1)
                wiring.append((back, out))
                infos.append(entry[out])
            spec = cfg.genotype.normal if kind == "normal" else cfg.genotype.reduce
            cell = CellModule(spec, infos, filters, reduction=kind != "normal", style=style)
            self.cells.append(cell)
            self.cell_kinds.append(kind)
            self._wiring.append(wiring)
            history.append(list(cell.outputs))
            if last_reduce is not None and i + 1 == last_reduce and kind == "normal":
                self.aux_index = i
                aux_channels, aux_size = cell.out_channels, sizes[i + 1]
        self.num_features = self.cells[-1].out_channels
        self.total_cells = len(self.cells)  # the drop-path schedule's T, kept if cells are cut (features.Backbone)
        self.aux_head = None
        if cfg.aux_head and cfg.num_classes and self.aux_index is not None:
            self.aux_head = AuxHead(aux_channels, aux_size, cfg.num_classes, style)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.feature_info = _feature_taps(cfg, self.cells, self.cell_kinds)
        # Input preprocessing (a zoo.Preprocessing), attached by the zoo and by model files; None when unknown.
        self.preprocessing = None

    # -- forward ---------------------------------------------------------------------------
    def _run_cells(self, x: torch.Tensor, drop_path_progress, want_aux: bool, taps: Collection[int] = (),
                   stop: int | None = None):
        """Stem and cells. Returns (last output, aux-head input, {cell index: output} for the cells in
        `taps`, -1 being the stem); `stop` = index of the last cell to run (None: all), for feature taps."""
        cfg = self.config
        use_drop = self.training and drop_path_progress is not None and cfg.drop_path_keep < 1.0
        history: list[list[torch.Tensor]] = [[self.stem(x)]]
        aux_in = None
        kept = {-1: history[0][0]} if -1 in taps else {}
        total = self.total_cells
        last = len(self.cells) - 1 if stop is None else stop
        for i, cell in enumerate(self.cells):
            if i > last:
                break
            inputs = [None if w is None else history[-w[0]][w[1]] for w in self._wiring[i]]
            keep = drop_path_keep(i, total, drop_path_progress, cfg.drop_path_keep) if use_drop else None
            out = cell(inputs, keep)
            outs = out if isinstance(out, list) else [out]
            history.append(outs)
            if len(history) > 8:
                del history[0]
            if want_aux and i == self.aux_index:
                aux_in = _joined(outs)
            if i in taps:
                kept[i] = _joined(outs)
        return _joined(history[-1]), aux_in, kept

    def forward_features(self, x: torch.Tensor, drop_path_progress=None) -> torch.Tensor:
        """The last cell's output after its ReLU: (batch, num_features, h, w)."""
        feats, _, _ = self._run_cells(x, drop_path_progress, want_aux=False)
        return torch.relu(feats)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor, drop_path_progress: float | torch.Tensor | None = None,
                return_aux: bool = False):
        want_aux = return_aux and self.aux_head is not None
        feats, aux_in, _ = self._run_cells(x, drop_path_progress, want_aux)
        logits = self.forward_head(torch.relu(feats))
        if return_aux:
            return logits, (self.aux_head(aux_in) if want_aux else None)
        return logits

    def cell_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every cell's output in order (for inspection and shape tests)."""
        kept = self._run_cells(x, None, False, taps=range(len(self.cells)))[2]
        return [kept[i] for i in range(len(self.cells))]

    def forward_stages(self, x: torch.Tensor, indices: Sequence[int] | None = None,
                       drop_path_progress=None) -> list[torch.Tensor]:
        """Multi-scale features for a backbone: the outputs of the taps in ``self.feature_info``.

        ``indices`` selects taps (negative counts from the end); by default the stage outputs
        (``feature_info`` entries with ``kind == "stage"``): strides 8 / 16 / 32 on the ImageNet
        skeleton, 1 / 2 / 4 on the CIFAR one. Each tap is ReLU'd - what the next cell reads - and the
        cells after the deepest requested tap are not run. See ``feature_info`` for channels/strides.
        """
        cells = [self.feature_info[t].cell for t in self._select_taps(indices)]
        _, _, kept = self._run_cells(x, drop_path_progress, False, taps=set(cells), stop=max(cells))
        return [torch.relu(kept[c]) for c in cells]

    def default_feature_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.feature_info) if f.kind == "stage"]

    def _select_taps(self, indices: Sequence[int] | None) -> list[int]:
        if indices is None:
            return self.default_feature_indices()
        n = len(self.feature_info)
        out = []
        for i in indices:
            if not _is_int(i) or not -n <= i < n:
                raise NasnetError(f"feature index {i!r} out of range: this model has {n} taps "
                                  f"({', '.join(f.name for f in self.feature_info)})")
            out.append(i % n)
        if not out:
            raise NasnetError("no feature taps requested")
        return out

    # -- classifier helpers ----------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and the aux head's) for `num_classes` classes, e.g. for transfer."""
        self.config = self.config.replace(num_classes=num_classes)
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if self.aux_head is not None:
            self.aux_head.classifier = nn.Linear(768, num_classes) if num_classes else nn.Identity()


@dataclass(frozen=True)
class FeatureInfo:
    """One multi-scale feature tap: where it is, how wide, how far down-sampled.

    ``cell`` is the index into ``model.cells`` whose output is tapped (-1: the stem); ``stride`` is
    the input size over the feature size (exact for sizes divisible by it; TF "SAME" rounds up).
    ``kind`` is "stem" for the stem and the ImageNet stem cells, "stage" for the last cell of each stage.
    """

    name: str
    cell: int
    channels: int
    stride: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _feature_taps(cfg: ModelConfig, cells: nn.ModuleList, kinds: list[str]) -> list[FeatureInfo]:
    """The stem, the ImageNet stem cell at stride 4, and the last cell of every stage (paper Figure 2)."""
    base = 2 if cfg.skeleton == "imagenet" else 1
    taps = [FeatureInfo("stem", -1, cfg.stem_filters, base, "stem")]
    stage = 0
    for i, (cell, kind) in enumerate(zip(cells, kinds)):
        stride = base * 2**cell.out_level
        nxt = kinds[i + 1] if i + 1 < len(kinds) else None
        if kind == "stem" and nxt == "stem":
            taps.append(FeatureInfo(f"stem_cell_{i}", i, cell.out_channels, stride, "stem"))
        elif kind == "normal" and nxt != "normal":
            taps.append(FeatureInfo(f"stage_{stage}", i, cell.out_channels, stride, "stage"))
            stage += 1
    return taps


def _joined(outs: list[torch.Tensor]) -> torch.Tensor:
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def build_model(config: ModelConfig | dict | None = None, **overrides: Any) -> NASNet:
    """A NASNet from a ModelConfig (or its dict form), with field overrides."""
    if config is None:
        config = ModelConfig()
    elif isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if overrides:
        config = config.replace(**overrides)
    return NASNet(config)
