"""scikit-learn's bundled handwritten digits: 1,797 8x8 grey images of 10 classes, no download
(docs/training.md, "Datasets").

Pixel values are 0..16 in the source; they are scaled to uint8 0..255. The default split holds out
20% for test and 10% for validation (1,257 / 180 / 360 images), fixed by `split_seed`. A mirrored
digit is no digit or another one, so the data says it is not mirror-safe: recipes do not flip it.
"""

from __future__ import annotations

import numpy as np

from ..errors import NasnetError
from .core import Dataset, DataSpec, Split, finish


def load(spec: DataSpec) -> Dataset:
    if spec.path:
        raise NasnetError(f"data {spec}: digits takes no path (it is bundled with scikit-learn)")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    return finish(spec, Split(x, y), None, None, 10, [str(i) for i in range(10)],
                  default_val=180, default_test=360, mirror_safe=False)
