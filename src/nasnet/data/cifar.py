"""CIFAR-10 and CIFAR-100 from the user's "python version" archive (paper A.1; docs/formats.md, "Data").

The archive is the .tar.gz as distributed, or the folder it extracts to (or that folder's parent);
docs/formats.md describes its members. They are read with an unpickler that only accepts plain
containers and numpy arrays, so a doctored archive cannot run code. The 50,000 training images are
split into 45,000 train and 5,000 validation by a fixed seed (the paper's held-out set for the
controller's reward); the 10,000 test images are the test split.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import NasnetError
from .core import Dataset, DataSpec, Split, existing_path, finish

LAYOUTS = {
    "cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)],
                    test=["test_batch"], meta="batches.meta", labels="labels", names="label_names", classes=10),
    "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"], meta="meta",
                     labels="fine_labels", names="fine_label_names", classes=100),
}

# numpy array reconstruction is all a CIFAR pickle needs (numpy 1.x and 2.x module names).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise NasnetError(f"{where}: truncated or not a CIFAR python-version pickle ({err or type(err).__name__})") \
            from None
    if not isinstance(obj, dict):
        raise NasnetError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


class _Source:
    """Members of a .tar.gz archive or files of a folder, looked up by base name."""

    def __init__(self, path: Path, folder: str):
        self.path = path
        self.tar = None
        if path.is_dir():
            self.dir = path / folder if (path / folder).is_dir() else path
        else:
            try:
                self.tar = tarfile.open(path, "r:*")
                self.members = {Path(m.name).name: m for m in self.tar.getmembers() if m.isfile()}
            except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
                raise NasnetError(f"{path}: not a readable CIFAR archive ({err})") from None

    def where(self, name: str) -> str:
        return f"{self.path}:{name}" if self.tar else str(self.dir / name)

    def read(self, name: str, kind: str) -> bytes:
        layout = LAYOUTS[kind]
        expected = ", ".join(layout["train"] + layout["test"] + [layout["meta"]])
        if self.tar is None:
            f = self.dir / name
            if not f.is_file():
                raise NasnetError(f"{f}: missing (a {kind} python-version folder holds {expected})")
            return f.read_bytes()
        member = self.members.get(name)
        if member is None:
            raise NasnetError(f"{self.path}: member {name} is missing (a {kind} python-version archive holds "
                              f"{layout['folder']}/ with {expected})")
        try:
            return self.tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            raise NasnetError(f"{self.where(name)}: truncated or corrupt archive ({err})") from None

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _batch(src: _Source, name: str, kind: str) -> Split:
    where = src.where(name)
    d = _unpickle(src.read(name, kind), where)
    key = LAYOUTS[kind]["labels"]
    if "data" not in d or key not in d:
        raise NasnetError(f"{where}: expected keys 'data' and '{key}', found {', '.join(map(str, d)) or 'none'}")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", type(data).__name__)
        raise NasnetError(f"{where}: 'data' must be a uint8 array N x 3072 (R, G, B planes of 32x32), got {shape}")
    if data.dtype != np.uint8:
        raise NasnetError(f"{where}: 'data' must be uint8, got {data.dtype}")
    labels = np.asarray(d[key])
    if labels.shape != (len(data),):
        raise NasnetError(f"{where}: {len(data)} images but {labels.size} {key}")
    classes = LAYOUTS[kind]["classes"]
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise NasnetError(f"{where}: {key} must lie in 0..{classes - 1}")
    return Split(np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), labels.astype(np.int64))


def _concat(parts: list[Split]) -> Split:
    return Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


def load(spec: DataSpec) -> Dataset:
    kind = spec.kind
    layout = LAYOUTS[kind]
    path = existing_path(spec, f"{kind} python-version archive (.tar.gz) or its folder", "file or folder")
    src = _Source(path, layout["folder"])
    try:
        train = _concat([_batch(src, n, kind) for n in layout["train"]])
        test = _concat([_batch(src, n, kind) for n in layout["test"]])
        meta = _unpickle(src.read(layout["meta"], kind), src.where(layout["meta"]))
    finally:
        src.close()
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(layout["names"], [])]
    if names and len(names) != layout["classes"]:
        raise NasnetError(f"{src.where(layout['meta'])}: {len(names)} class names, expected {layout['classes']}")
    return finish(spec, train, None, test, layout["classes"], names, default_val=5000)
