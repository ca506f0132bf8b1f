"""TensorFlow checkpoints (the "tensor bundle" format, V2, as ``tf.compat.v1.train.Saver`` and TF-Slim's
NASNet release wrote them) read with NumPy alone: no TensorFlow needed (docs/formats.md).

The ``.index`` table (sstable.py) maps the empty key to a ``BundleHeaderProto`` (shards, byte order)
and each variable name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size, CRC-32C), decoded
here into `BundleEntry`; the ``.data-*`` shards hold the raw bytes (bundle_files.py finds them, in a
folder or a release archive). `TensorBundle.read` checks each tensor's size against its dtype and
shape and its CRC-32C (crc32c.py) before returning it; every problem is one `NasnetError` line naming
the file. Partitioned variables ("slices") and string tensors are refused: NASNet checkpoints have
none. tests/test_tensor_bundle.py checks the reader against what TensorFlow's own reader gave.
"""

from __future__ import annotations

import math
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NasnetError
from .bundle_files import data_path, extract_archive, is_archive, resolve_prefix
from .crc32c import crc32c, mask_crc
from .sstable import FOOTER_SIZE, TABLE_MAGIC, Corrupt, fields, signed64, table_entries

# TensorFlow DataType enum values -> NumPy dtypes (little-endian). DT_BFLOAT16 (14) is widened to
# float32 when read; DT_STRING (7), DT_RESOURCE and the quantized types are refused.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 14: np.dtype("<u2"), 17: np.dtype("<u2"),
    19: np.dtype("<f2"), 22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
_DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
                9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}
BFLOAT16 = 14


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives: TensorFlow's BundleEntryProto, the fields this reader uses."""

    name: str
    dtype: int             # TensorFlow DataType enum value
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None     # masked, as stored; None when the entry has none
    sliced: bool = False

    @property
    def dtype_name(self) -> str:
        return _DTYPE_NAMES.get(self.dtype, f"DataType {self.dtype}")


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for number, wire, value in fields(buf):
        if number == 2 and wire == 2:
            size = 0
            for n2, w2, v2 in fields(value):  # TensorShapeProto.Dim
                if n2 == 1 and w2 == 0:
                    size = signed64(v2)
            dims.append(size)
        elif number == 3 and wire == 0 and value:
            raise Corrupt("a tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for number, wire, value in fields(buf):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and wire == 2:
            shape = _parse_shape(value)
        elif number == 3 and wire == 0:
            shard = value
        elif number == 4 and wire == 0:
            offset = signed64(value)
        elif number == 5 and wire == 0:
            size = signed64(value)
        elif number == 6 and wire == 5:
            crc = value
        elif number == 7:
            sliced = True
    return BundleEntry(name, dtype, shape, shard, offset, size, crc, sliced)


def _parse_header(buf: bytes) -> tuple[int, str]:
    shards, endian = 1, 0
    for number, wire, value in fields(buf):
        if number == 1 and wire == 0:
            shards = value
        elif number == 2 and wire == 0:
            endian = value
    return shards, "big" if endian == 1 else "little"


def read_index(data: bytes) -> tuple[dict[str, BundleEntry], int, str]:
    """Parse the bytes of a ``.index`` file: ({name: entry} in file order, number of shards, byte order)."""
    entries: dict[str, BundleEntry] = {}
    shards, order = 1, "little"
    header_seen = False
    for key, value in table_entries(data):
        if key == b"":
            shards, order = _parse_header(value)
            header_seen = True
            continue
        name = key.decode("utf-8", errors="replace")
        entries[name] = _parse_entry(name, value)
    if not header_seen:
        raise Corrupt("it has no bundle header (not a TensorFlow V2 checkpoint index)")
    return entries, shards, order


# --------------------------------------------------------------------------------------------
# The bundle
# --------------------------------------------------------------------------------------------
class TensorBundle:
    """An open TensorFlow checkpoint. Use as a context manager (archives are unpacked to a temporary
    folder that `close` removes). ``entries`` maps every variable name to its `BundleEntry`."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._tmp: tempfile.TemporaryDirectory | None = None
        if is_archive(self.path):
            self._tmp = tempfile.TemporaryDirectory(prefix="nasnet-ckpt-")
            try:
                self.prefix = extract_archive(self.path, Path(self._tmp.name))
            except BaseException:
                self.close()
                raise
            self.shown = lambda p: f"{str(self.path)!r} (member {p.name})"
        else:
            self.prefix = resolve_prefix(self.path)
            self.shown = lambda p: repr(str(p))
        index = self.prefix.parent / (self.prefix.name + ".index")
        try:
            self.entries, self.num_shards, self.byte_order = read_index(index.read_bytes())
        except Corrupt as err:
            self.close()
            raise NasnetError(f"{self.shown(index)} is not a readable TensorFlow checkpoint index: {err}") from None
        except BaseException:
            self.close()
            raise
        self._sizes: dict[int, int] = {}

    # -- context management --------------------------------------------------------------------
    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "TensorBundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def shard_path(self, shard: int) -> Path:
        return data_path(self.prefix, shard, self.num_shards)

    def read(self, name: str) -> np.ndarray:
        """One tensor as a NumPy array (native byte order; bfloat16 widened to float32), CRC-checked."""
        if name not in self.entries:
            raise NasnetError(f"{self.shown(self.prefix)}: no variable {name!r} in the checkpoint")
        e = self.entries[name]
        data_file = self.shard_path(e.shard)
        where = self.shown(data_file)
        if e.sliced:
            raise NasnetError(f"{where}: variable {name!r} is partitioned into slices, which this reader does not "
                              "support")
        if e.dtype not in _DTYPES:
            raise NasnetError(f"{where}: variable {name!r} has type {e.dtype_name}, which this reader does not "
                              "support")
        dtype = _DTYPES[e.dtype]
        if self.byte_order == "big":
            dtype = dtype.newbyteorder(">")
        count = math.prod(e.shape)
        if any(d < 0 for d in e.shape) or count * dtype.itemsize != e.size:
            raise NasnetError(f"{where}: variable {name!r} has {e.size} bytes, but a {e.dtype_name} tensor of shape "
                              f"{list(e.shape)} needs {count * dtype.itemsize} (the index is damaged)")
        if e.shard not in self._sizes:
            if not data_file.is_file():
                raise NasnetError(f"{where}: no such file (the checkpoint's data shard {e.shard} is missing)")
            self._sizes[e.shard] = data_file.stat().st_size
        if e.offset < 0 or e.offset + e.size > self._sizes[e.shard]:
            raise NasnetError(f"{where} is truncated: variable {name!r} needs bytes {e.offset}..{e.offset + e.size} "
                              f"but the file has {self._sizes[e.shard]}")
        with open(data_file, "rb") as f:
            f.seek(e.offset)
            raw = f.read(e.size)
        if len(raw) != e.size:
            raise NasnetError(f"{where} is truncated: variable {name!r} could not be read in full")
        if e.crc32c is not None and mask_crc(crc32c(raw)) != e.crc32c:
            raise NasnetError(f"{where}: variable {name!r} fails its CRC-32C check (the data file is damaged)")
        array = np.frombuffer(raw, dtype=dtype).reshape(e.shape)
        if e.dtype == BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array.astype(array.dtype.newbyteorder("="), copy=True)

    def read_all(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        return {n: self.read(n) for n in (self.names if names is None else names)}


def open_bundle(path: str | Path) -> TensorBundle:
    """Open a TensorFlow checkpoint (prefix, .index/.data file, folder, or .tar.gz release archive)."""
    return TensorBundle(path)


def read_tensor_bundle(path: str | Path, skip_unsupported: bool = False) -> dict[str, np.ndarray]:
    """Every variable of a checkpoint as NumPy arrays. `skip_unsupported` leaves out string tensors and
    other types this reader cannot decode (they are never weights) instead of failing on them."""
    with open_bundle(path) as bundle:
        names = [n for n, e in bundle.entries.items()
                 if not skip_unsupported or (e.dtype in _DTYPES and not e.sliced)]
        return bundle.read_all(names)


def looks_like_index(path: str | Path) -> bool:
    """Cheap test for the CLI's format detection: does the file end in the table magic number?"""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < FOOTER_SIZE:
                return False
            f.seek(-8, 2)
            return struct.unpack("<Q", f.read(8))[0] == TABLE_MAGIC
    except OSError:
        return False
