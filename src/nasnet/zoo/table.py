"""The model zoo's table: named NASNet-A configurations with the paper's numbers beside them.

The zoo is a table of configs, not classes (a `ZooEntry` per name: the `ModelConfig`, the paper's
parameter and mult-add counts and top-1 where it reports them, and the input preprocessing of the
ImageNet entries). `nasnet.zoo.factory.create_model` builds an entry; this module only describes
them. The reference settings (docs/reference-configs.md has the sources):

    name                   N @ F     F0   stem  image  classes  notes
    nasnet_a_cifar         6 @ 768   32   3     32     10       drop-path k0 0.6, BN 0.1/1e-5
    nasnet_a_cifar_large   7 @ 2304  96   3     32     10
    nasnet_a_mobile        4 @ 1056  44   1     224    1000     TF padding, BN 3e-4/1e-3, dropout 0.5
    nasnet_a_large         6 @ 4032  168  3     331    1000     + skip-reduction input, k0 0.7
    nasnet_a_5_1538        5 @ 1536  64   3     299    1000     paper's 5 @ 1538 (not a multiple of 24)
    nasnet_a_7_1920        7 @ 1920  80   3     299    1000

Paper: Table 1 (CIFAR-10), Tables 2 and 3 (ImageNet), Figure 5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..model.network import ModelConfig
from ..model.preprocessing import Preprocessing
from ..registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    name: str
    config: ModelConfig
    description: str
    paper_params: int | None = None      # as printed in the paper (rounded)
    paper_mult_adds: int | None = None
    paper_top1: float | None = None      # ImageNet top-1 (%) the paper reports; quoted, never claimed
    preprocessing: Preprocessing | None = None  # None: no published weights / per-dataset (CIFAR)
    recipe: str | None = None            # the training preset of the reference's notes, when not the default


MODELS: Registry[ZooEntry] = Registry("model")


def register_model(entry: ZooEntry) -> ZooEntry:
    """Add a named configuration to the zoo (a name registered twice is an error)."""
    return MODELS.register(entry.name, entry, help=entry.description)


def list_models() -> list[str]:
    return list(MODELS)


def get_entry(name: str) -> ZooEntry:
    """The zoo's entry `name`, or a NasnetError listing the known names."""
    return MODELS.lookup(name)


def model_config(name: str, **overrides: Any) -> ModelConfig:
    cfg = get_entry(name).config
    return cfg.replace(**overrides) if overrides else cfg


_CIFAR = dict(skeleton="cifar", num_classes=10, image_size=32, stem_multiplier=3.0, aux_head=True,
              drop_path_keep=0.6, bn_eps=1e-5, bn_momentum=0.1)
# The published ImageNet checkpoints: TF "SAME" padding, BN decay 0.9997 (momentum 3e-4), eps 1e-3.
_IMAGENET = dict(skeleton="imagenet", num_classes=1000, aux_head=True, dropout=0.5, padding="same",
                 bn_eps=1e-3, bn_momentum=0.0003)

_INCEPTION = Preprocessing(input_size=224)  # input_size is set from each entry's image_size below

for _entry in (
    ZooEntry("nasnet_a_cifar", ModelConfig(normal_cells=6, filters=32, **_CIFAR),
             "NASNet-A 6 @ 768 for CIFAR-10 (paper Table 1)", 3_300_000),
    ZooEntry("nasnet_a_cifar_large", ModelConfig(normal_cells=7, filters=96, **_CIFAR),
             "NASNet-A 7 @ 2304 for CIFAR-10 (paper Table 1)", 27_600_000),
    ZooEntry("nasnet_a_mobile", ModelConfig(normal_cells=4, filters=44, image_size=224, stem_multiplier=1.0,
                                            drop_path_keep=1.0, **_IMAGENET),
             "NASNet-A Mobile 4 @ 1056, 224x224 (paper Table 3)", 5_300_000, 564_000_000, 74.0),
    ZooEntry("nasnet_a_large", ModelConfig(normal_cells=6, filters=168, image_size=331, stem_multiplier=3.0,
                                           drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A Large 6 @ 4032, 331x331 (paper Table 2)", 88_900_000, 23_800_000_000, 82.7,
             recipe="imagenet-large"),
    ZooEntry("nasnet_a_5_1538", ModelConfig(normal_cells=5, filters=64, image_size=299, stem_multiplier=3.0,
                                            drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A 5 @ 1538, 299x299 (paper Table 2; built as 5 @ 1536, F0 = 64)", 10_900_000, 2_350_000_000,
             78.6),
    ZooEntry("nasnet_a_7_1920", ModelConfig(normal_cells=7, filters=80, image_size=299, stem_multiplier=3.0,
                                            drop_path_keep=0.7, skip_reduction_input=True, **_IMAGENET),
             "NASNet-A 7 @ 1920, 299x299 (paper Table 2)", 22_600_000, 4_930_000_000, 80.8),
    # Tiny configurations for tests and quick experiments.
    ZooEntry("nasnet_a_tiny_cifar", ModelConfig(normal_cells=1, filters=8, **_CIFAR),
             "NASNet-A 1 @ 192 on the CIFAR skeleton, for tests"),
    ZooEntry("nasnet_a_tiny_imagenet", ModelConfig(normal_cells=1, filters=8, image_size=64, stem_multiplier=1.0,
                                                   **{**_IMAGENET, "num_classes": 10}),
             "NASNet-A 1 @ 192 on the ImageNet skeleton at 64x64, for tests"),
):
    if _entry.config.skeleton == "imagenet":
        _entry = replace(_entry, preprocessing=replace(_INCEPTION, input_size=_entry.config.image_size))
    register_model(_entry)
