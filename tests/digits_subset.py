"""A small learnable dataset for fast training tests: a fixed subset of scikit-learn's digits as .npz."""

from pathlib import Path

import numpy as np


def write_digits_npz(path: Path, n_train: int = 256, n_val: int = 64, n_test: int = 64) -> str:
    """Write digits images (uint8, 8x8, grey) split into train/val/test; returns the `npz:` data spec."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images * 255 / 16).astype(np.uint8)
    y = d.target
    order = np.random.default_rng(0).permutation(len(x))
    a, b, c = n_train, n_train + n_val, n_train + n_val + n_test
    np.savez(path, x=x[order[:a]], y=y[order[:a]], x_val=x[order[a:b]], y_val=y[order[a:b]],
             x_test=x[order[b:c]], y_test=y[order[b:c]])
    return f"npz:{path}"
