"""Which weight format a path holds, from its first bytes (never its name alone): for `nasnet import-weights`.

    pytorch        torch.save output: a zip archive (PyTorch >= 1.6) or a bare pickle (older)
    safetensors    an 8-byte little-endian header length, then the JSON header (a file cut short is still
                   recognised, for its reader to report); or a folder holding
                   model.safetensors (a hub snapshot) or a hub cache folder models--org--name/
    tf-checkpoint  a TensorFlow V2 checkpoint: its prefix, .index (ends in the table magic number) or
                   .data-* file, a folder holding one, or a .tar / .tar.gz release archive
    keras-h5       an HDF5 file (Keras's legacy weights layout is checked when it is read)
"""

from __future__ import annotations

import gzip
import re
import struct
import tarfile
import zlib
from pathlib import Path

from ..errors import NasnetError
from ..paths import input_path

PYTORCH, SAFETENSORS, TF_CHECKPOINT, KERAS_H5 = "pytorch", "safetensors", "tf-checkpoint", "keras-h5"
FORMATS = (PYTORCH, SAFETENSORS, TF_CHECKPOINT, KERAS_H5)
_DATA = re.compile(r"\.data-\d{5}-of-\d{5}$")


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _is_safetensors(head: bytes) -> bool:
    """A plausible header length (under 100 MB) followed by a JSON object: even when the file is cut short,
    so that the reader can say it is truncated."""
    if len(head) < 10:
        return False
    n = struct.unpack("<Q", head[:8])[0]
    return 2 <= n < 100_000_000 and head[8:10] in (b'{"', b"{}", b"{ ")


def detect_format(path: str | Path) -> str:
    """One of FORMATS, or a one-line NasnetError saying what the path is not."""
    from .tensor_bundle import looks_like_index

    path = Path(path).expanduser()
    where = repr(str(path))
    if path.is_dir():
        if any(path.glob("*.index")):
            return TF_CHECKPOINT
        if (path / "model.safetensors").exists() or (path / "snapshots").is_dir() or any(path.glob("*.safetensors")):
            return SAFETENSORS
        raise NasnetError(f"{where}: a folder without a TensorFlow checkpoint (*.index) or a .safetensors file")
    if not path.exists():
        if (path.parent / (path.name + ".index")).is_file():
            return TF_CHECKPOINT                    # a checkpoint prefix such as .../model.ckpt
        raise NasnetError(f"{where}: no such file")
    input_path(path)                                # a FIFO or a device is refused, never opened
    head = _head(path)
    if len(head) < 10:
        raise NasnetError(f"{where}: {len(head)} bytes, too short for any weight file (truncated?)")
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return KERAS_H5
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return PYTORCH
    if _is_safetensors(head):
        return SAFETENSORS
    if path.name.endswith(".index") and looks_like_index(path):
        return TF_CHECKPOINT
    if _DATA.search(path.name) and (path.parent / (_DATA.sub("", path.name) + ".index")).is_file():
        return TF_CHECKPOINT
    if head.startswith(b"\x1f\x8b") or path.name.endswith(".tar"):
        try:
            if head.startswith(b"\x1f\x8b"):
                with gzip.open(path) as g:
                    g.read(512)
            if tarfile.is_tarfile(path):
                return TF_CHECKPOINT
        except (OSError, EOFError, tarfile.TarError, zlib.error):
            pass
        raise NasnetError(f"{where}: a compressed file that is not a readable tar archive (truncated or damaged?)")
    raise NasnetError(f"{where}: not a weight file this importer knows (PyTorch, safetensors, TensorFlow "
                      "checkpoint, Keras .h5)")
