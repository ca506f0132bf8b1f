"""Arrays from a NumPy .npz file (docs/formats.md, "Data"): ``x`` (images) and ``y`` (integer labels),
optionally with ``x_val``/``y_val`` and ``x_test``/``y_test``; missing splits are carved out of (x, y)
by seed (default 10% validation, 20% test).

Images may be (N, H, W) grey, (N, H, W, C) channels-last or (N, C, H, W) channels-first with C in
{1, 3}, uint8 0..255, or floating point in [0, 1]. The number of classes is max(label) + 1 unless
a ``classes`` array of names is present; labels that number far more classes than occur (above 1,000
and more than twice the distinct labels) are refused as a labelling mistake.
"""

from __future__ import annotations

import zipfile

import numpy as np

from ..errors import NasnetError, first_line
from .core import Dataset, DataSpec, Split, existing_path, finish

MAX_SPARSE_CLASSES = 1000   # more classes than this must mostly occur in the labels (see load)


def _images(a: np.ndarray, where: str) -> np.ndarray:
    shape = tuple(a.shape)
    if a.ndim == 3:
        a, layout = a[:, None], "(N, H, W)"
    elif a.ndim == 4 and a.shape[3] in (1, 3) and a.shape[1] not in (1, 3):
        a, layout = a.transpose(0, 3, 1, 2), "(N, H, W, C)"
    elif a.ndim == 4 and a.shape[1] in (1, 3):
        layout = "(N, C, H, W)"          # also when both C positions could be channels: channels first
    else:
        raise NasnetError(f"{where}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3, "
                          f"got shape {shape}")
    if a.shape[2] != a.shape[3]:
        c = a.shape[1]
        raise NasnetError(f"{where}: images must be square; shape {shape} was read as {layout}: {a.shape[0]:,} images "
                          f"of {c} channel{'s' if c != 1 else ''}, {a.shape[2]}x{a.shape[3]}; pad or resize them")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        if a.size and (np.nanmin(a) < 0 or np.nanmax(a) > 1 or np.isnan(a).any()):
            raise NasnetError(f"{where}: float images must lie in [0, 1]; store uint8 0..255 otherwise")
        return np.ascontiguousarray(np.rint(a * 255).astype(np.uint8))
    raise NasnetError(f"{where}: images must be uint8 or float in [0, 1], got {a.dtype}")


def _labels(a: np.ndarray, n: int, where: str) -> np.ndarray:
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise NasnetError(f"{where}: labels must be {n} integers, got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def load(spec: DataSpec) -> Dataset:
    path = existing_path(spec, ".npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):   # np.load reads a .npy file as one bare array
            raise NasnetError(f"{path}: a single .npy array, not an .npz archive of named arrays; save x and y "
                              "with numpy.savez")
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise NasnetError(f"{path}: not a readable .npz file ({first_line(err)})") from None
    if "x" not in arrays or "y" not in arrays:
        raise NasnetError(f"{path}: needs arrays 'x' and 'y', found {', '.join(arrays) or 'none'}")
    splits: dict[str, Split | None] = {}
    for name, sfx in (("train", ""), ("val", "_val"), ("test", "_test")):
        xk, yk = "x" + sfx, "y" + sfx
        if xk in arrays or yk in arrays:
            if xk not in arrays or yk not in arrays:
                raise NasnetError(f"{path}: '{xk}' and '{yk}' go together")
            x = _images(arrays[xk], f"{path}:{xk}")
            if name == "train" and len(x) == 0:
                raise NasnetError(f"{path}: '{xk}' holds no images")
            splits[name] = Split(x, _labels(arrays[yk], len(x), f"{path}:{yk}"))
        else:
            splits[name] = None
    names = [str(c) for c in arrays["classes"]] if "classes" in arrays else []
    labels = np.concatenate([s.y for s in splits.values() if s is not None])
    if labels.size and labels.min() < 0:
        raise NasnetError(f"{path}: labels must be >= 0")
    num_classes = len(names) or int(labels.max()) + 1
    used = len(np.unique(labels))
    if not names and num_classes > max(MAX_SPARSE_CLASSES, 2 * used):
        # a classifier over max(label) + 1 classes of which almost none occur: a labelling mistake, and
        # the model's last layer would not fit in memory
        raise NasnetError(f"{path}: labels reach {num_classes - 1:,} but only {used:,} distinct values occur; "
                          "number the classes 0..K-1 (or store their names as a 'classes' array)")
    return finish(spec, splits["train"], splits["val"], splits["test"], num_classes, names,
                  default_val=0.1, default_test=0.2)
