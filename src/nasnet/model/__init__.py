"""The networks (PyTorch): layers, the 13 ops, cells, the CIFAR and ImageNet skeletons, counting and
multi-scale features (paper §3, Figure 2, Figure 4, Appendix A.4-A.5; docs/nasnet-a.md, the
conventions every cell is built with, and docs/reference-configs.md, the released configurations).
"""

from .counting import ModelCounts, count
from .features import Backbone
from .network import FeatureInfo, ModelConfig, NASNet, build_model, filters_from_penultimate
from .preprocessing import Preprocessing

__all__ = ["Backbone", "FeatureInfo", "ModelConfig", "ModelCounts", "NASNet", "Preprocessing", "build_model", "count",
           "filters_from_penultimate"]
