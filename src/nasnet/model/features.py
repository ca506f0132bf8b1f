"""NASNet as a multi-scale backbone, e.g. for a detector (paper §4.3, Table 4: Faster R-CNN on COCO).

``Backbone(model, out_indices)`` wraps a NASNet and returns an ordered dict of feature maps, one per
tap of ``model.feature_info`` (by default the three stage outputs: strides 8 / 16 / 32 on the
ImageNet skeleton, 1 / 2 / 4 on CIFAR), with ``out_channels`` and ``strides`` beside them - the
interface feature-pyramid heads expect (torchvision's ``BackboneWithFPN`` takes ``out_channels`` as
its ``in_channels_list``). The classifier and auxiliary head are dropped and cells after the deepest
tap are never run::

    backbone = nasnet.create_model("nasnet_a_mobile", checkpoint="mobile.pt", features_only=True)
    feats = backbone(images)          # {"stage_0": (B, 264, H/8, W/8), "stage_1": ..., "stage_2": ...}
    backbone.out_channels             # [264, 528, 1056]
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from .network import FeatureInfo, NASNet


class Backbone(nn.Module):
    """Multi-scale features of a NASNet; see the module docstring.

    The Backbone takes the model over: its classifier, dropout and aux head are removed and the cells
    after the deepest tap are cut, so every parameter left is used (as distributed training wants).
    ScheduledDropPath keeps the full network's schedule (cell i of the original T).
    """

    def __init__(self, model: NASNet, out_indices: Sequence[int] | None = None):
        super().__init__()
        taps = model._select_taps(out_indices)
        last = max(model.feature_info[t].cell for t in taps)
        self.taps = taps
        self.feature_info: list[FeatureInfo] = [model.feature_info[t] for t in taps]
        self.preprocessing = getattr(model, "preprocessing", None)
        model.classifier = nn.Identity()
        model.dropout = nn.Identity()
        model.aux_head = None
        model.cells = nn.ModuleList(list(model.cells)[: last + 1])
        self.body = model

    @property
    def config(self):
        return self.body.config

    @property
    def out_channels(self) -> list[int]:
        return [f.channels for f in self.feature_info]

    @property
    def strides(self) -> list[int]:
        return [f.stride for f in self.feature_info]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.feature_info]

    def forward(self, x: torch.Tensor, drop_path_progress=None) -> "OrderedDict[str, torch.Tensor]":
        outs = self.body.forward_stages(x, self.taps, drop_path_progress)
        return OrderedDict(zip(self.names, outs))
