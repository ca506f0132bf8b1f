"""Image folders, ImageNet style (docs/formats.md, "Data"; docs/training.md, "Datasets"): one
sub-folder of JPEG/PNG files per class, with train/ and val/ (and test/) sub-folders or split by seed.
Class indices follow the sorted class-folder names.

Every image is decoded once, converted to RGB, its shorter side resized to ``size`` (default 64)
and center-cropped to size x size, and kept in memory as uint8. Training then crops from these
stored images and evaluation center-crops them, so store them a little larger than the training
resolution for the Inception recipe (``folder:PATH,size=256`` trains at 224). Holding everything in
memory suits datasets up to a few GB.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import NasnetError, first_line
from .core import Dataset, DataSpec, Split, existing_path, finish

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
SPLIT_DIRS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def _class_files(root: Path) -> dict[str, list[Path]]:
    classes = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in EXTENSIONS and f.is_file())
        classes[d.name] = files
    return classes


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when that is enough
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
            left, top = (nw - size) // 2, (nh - size) // 2
            im = im.crop((left, top, left + size, top + size))
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise NasnetError(f"{path}: the image claims more than {limit:,} pixels (PIL's limit against decompression "
                          "bombs); shrink it or leave it out") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise NasnetError(f"{path}: cannot read image ({first_line(err)})") from None


def _load_split(root: Path, classes: list[str], size: int, what: str) -> Split:
    found = _class_files(root)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise NasnetError(f"{root}: class folder(s) {', '.join(unknown)} are not in the training classes")
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in found.get(c, []):
            files.append(f)
            labels.append(i)
    if not files:
        raise NasnetError(f"{root}: no images found for the {what} split (expected {root}/CLASS/*.jpg)")
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        it = pool.map(lambda f: _decode(f, size), files)
        images = list(tqdm(it, total=len(files), desc=f"decoding {what}", unit="img", leave=False,
                           disable=len(files) < 2000))
    return Split(np.stack(images), np.asarray(labels))


def load(spec: DataSpec) -> Dataset:
    root = existing_path(spec, "image folder", "folder")
    try:
        size = int(spec.option("size", "64"))
        if size < 8:
            raise ValueError
    except ValueError:
        raise NasnetError(f"data {spec}: size={spec.option('size')!r} must be an integer >= 8") from None
    sub = {name: next((root / d for d in dirs if (root / d).is_dir()), None) for name, dirs in SPLIT_DIRS.items()}
    base = sub["train"] or root
    classes = [c for c, files in _class_files(base).items() if files]
    if not classes:
        raise NasnetError(f"{base}: no class sub-folders with images (expected {base}/CLASS/*.jpg)")
    empty = [c for c, files in _class_files(base).items() if not files]
    if empty:
        raise NasnetError(f"{base}: class folder(s) without images: {', '.join(empty)}")
    train = _load_split(base, classes, size, "train")
    val = _load_split(sub["val"], classes, size, "val") if sub["train"] and sub["val"] else None
    test = _load_split(sub["test"], classes, size, "test") if sub["train"] and sub["test"] else None
    return finish(spec, train, val, test, len(classes), classes, default_val=0.1, default_test=0.1)
