"""TensorFlow checkpoints (the "tensor bundle" format) read with NumPy alone: no TensorFlow needed.

A checkpoint written by ``tf.compat.v1.train.Saver`` (format V2, which is how TF-Slim's released
NASNet-A checkpoints were written) is a prefix such as ``model.ckpt`` with two kinds of files:

``model.ckpt.index``
    A sorted string table in LevelDB's on-disk format: data blocks of prefix-compressed
    ``key -> value`` entries, an (empty) meta-index block, an index block pointing at the data
    blocks, and a 48-byte footer ending in the table magic number. Every block is followed by a
    one-byte compression type and the masked CRC-32C of the block and that byte. The empty key
    holds a ``BundleHeaderProto`` (number of shards, byte order); every other key is a variable
    name whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked CRC-32C
    of the tensor's bytes).
``model.ckpt.data-00000-of-00001`` (one file per shard)
    The tensors' raw bytes, back to back.

Why our own reader rather than ``tf.train.load_checkpoint``: TensorFlow is a large, optional
install that this project must not require, and the few protobuf fields needed here (a dozen
integers per variable) are decoded by hand in a few lines, so neither TensorFlow nor protobuf is a
dependency. The reader checks everything the format lets it check - the table magic, each block's
CRC-32C, each tensor's size against its dtype and shape, each tensor's CRC-32C - and turns every
problem into one `NasnetError` line naming the file. Blocks that TensorFlow compressed with Snappy
(TensorFlow's bundle writer does not compress, so checkpoints never have them) are refused with a
clear message. Partitioned variables ("slices") and string tensors are refused the same way; neither
occurs in NASNet checkpoints. ``tests/test_tensor_bundle.py`` checks the reader against the names,
shapes, dtypes and values that TensorFlow's own reader gave for a checkpoint TensorFlow wrote.

Accepted paths (`open_bundle`): the prefix (``.../model.ckpt``), the ``.index`` or a ``.data-*``
file, a folder holding one checkpoint, or a ``.tar.gz`` / ``.tgz`` / ``.tar`` release archive such as
``nasnet-a_mobile_04_10_2017.tar.gz`` (its index and data members are copied to a temporary folder,
by name only, which is removed when the bundle is closed).
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import NasnetError, first_line

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
_DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<shards>\d{5})$")

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


# --------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), as TensorFlow and LevelDB use it
# --------------------------------------------------------------------------------------------
def _make_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1).astype(np.uint32)
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(v) for v in _TABLE]
_SMALL = 4096  # below this many bytes a plain loop is faster than the vectorised path


def _byte_tables(images: np.ndarray) -> np.ndarray:
    """(4, 256) lookup tables of the GF(2)-linear map on 32-bit words whose value on bit i is images[i]."""
    values = np.arange(256, dtype=np.uint32)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for j in range(4):
        for bit in range(8):
            tables[j] ^= np.where((values >> bit) & 1, images[8 * j + bit], 0).astype(np.uint32)
    return tables


def _apply(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (tables[0][x & 0xFF] ^ tables[1][(x >> 8) & 0xFF] ^ tables[2][(x >> 16) & 0xFF]
            ^ tables[3][x >> 24])


def _zeros_operator(n: int) -> np.ndarray:
    """Images of the 32 unit vectors under "run the CRC register over n zero bytes" (a linear map)."""
    basis = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    step = _TABLE[basis & 0xFF] ^ (basis >> 8)          # one zero byte
    result = basis.copy()                                 # identity
    power = step
    while n:
        if n & 1:
            result = _apply(_byte_tables(power), result)
        n >>= 1
        if n:
            power = _apply(_byte_tables(power), power)
    return result


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-32C of `data` (initial value and final xor 0xFFFFFFFF, reflected polynomial 0x82F63B78).

    Large inputs are split into equal chunks whose registers are advanced together with NumPy (one
    vector operation per byte position), then joined pairwise with the linear "advance over n zero
    bytes" map - the same result as the byte-at-a-time loop, about a hundred times faster in Python.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).ravel()
    size = buf.size
    if size < _SMALL:
        crc, table = 0xFFFFFFFF, _TABLE_LIST
        for b in buf.tobytes():
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    # Starting the register at 0xFFFFFFFF equals starting at 0 with the first 4 bytes inverted; zero
    # bytes put in front of a message leave a register that starts at 0 unchanged.
    length = max(32, min(512, math.isqrt(size) // 2))
    chunks = -(-size // length)
    padded = np.zeros(chunks * length, dtype=np.uint8)
    padded[chunks * length - size:] = buf
    padded[chunks * length - size:chunks * length - size + 4] ^= 0xFF
    columns = np.ascontiguousarray(padded.reshape(chunks, length).T)
    reg = np.zeros(chunks, dtype=np.uint32)
    for i in range(length):
        reg = _TABLE[(reg ^ columns[i]) & 0xFF] ^ (reg >> 8)
    shift = _zeros_operator(length)
    while reg.size > 1:
        if reg.size % 2:
            reg = np.concatenate([np.zeros(1, dtype=np.uint32), reg])
        reg = _apply(_byte_tables(shift), reg[0::2]) ^ reg[1::2]
        shift = _apply(_byte_tables(shift), shift)
    return int(reg[0]) ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """TensorFlow/LevelDB's stored form of a CRC: rotated right by 15 bits plus a constant."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# Protobuf wire format: just enough to read BundleHeaderProto and BundleEntryProto
# --------------------------------------------------------------------------------------------
class _Corrupt(Exception):
    """Raised inside the parsers; turned into a NasnetError naming the file."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Corrupt("a number runs past the end of its record")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Corrupt("a number is longer than 10 bytes")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized protobuf message; unknown fields included."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _Corrupt("a fixed64 field runs past the end of its record")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise _Corrupt("a length-delimited field runs past the end of its record")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _Corrupt("a fixed32 field runs past the end of its record")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


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
    for number, wire, value in _fields(buf):
        if number == 2 and wire == 2:
            size = 0
            for n2, w2, v2 in _fields(value):  # TensorShapeProto.Dim
                if n2 == 1 and w2 == 0:
                    size = _signed64(v2)
            dims.append(size)
        elif number == 3 and wire == 0 and value:
            raise _Corrupt("a tensor of unknown rank")
    return tuple(dims)


def _parse_entry(name: str, buf: bytes) -> BundleEntry:
    dtype = shard = offset = size = 0
    shape: tuple[int, ...] = ()
    crc = None
    sliced = False
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 0:
            dtype = value
        elif number == 2 and wire == 2:
            shape = _parse_shape(value)
        elif number == 3 and wire == 0:
            shard = value
        elif number == 4 and wire == 0:
            offset = _signed64(value)
        elif number == 5 and wire == 0:
            size = _signed64(value)
        elif number == 6 and wire == 5:
            crc = value
        elif number == 7:
            sliced = True
    return BundleEntry(name, dtype, shape, shard, offset, size, crc, sliced)


def _parse_header(buf: bytes) -> tuple[int, str]:
    shards, endian = 1, 0
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 0:
            shards = value
        elif number == 2 and wire == 0:
            endian = value
    return shards, "big" if endian == 1 else "little"


# --------------------------------------------------------------------------------------------
# The LevelDB-format table of the .index file
# --------------------------------------------------------------------------------------------
def _block(data: bytes, offset: int, size: int, what: str) -> bytes:
    end = offset + size + BLOCK_TRAILER_SIZE
    if offset < 0 or size < 0 or end > len(data) - FOOTER_SIZE:
        raise _Corrupt(f"its {what} block lies past the end of the file")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if mask_crc(crc32c(data[offset:offset + size + 1])) != stored:
        raise _Corrupt(f"its {what} block fails its CRC-32C check")
    if kind == SNAPPY_COMPRESSION:
        raise _Corrupt(f"its {what} block is Snappy-compressed, which this reader does not decode "
                       "(TensorFlow writes checkpoints uncompressed; re-save it with tf.train.Saver)")
    if kind != NO_COMPRESSION:
        raise _Corrupt(f"its {what} block has unknown compression type {kind}")
    return contents


def _block_entries(block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Corrupt(f"its {what} block is too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise _Corrupt(f"its {what} block has a bad restart array")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise _Corrupt(f"its {what} block has a damaged entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def read_index(data: bytes) -> tuple[dict[str, BundleEntry], int, str]:
    """Parse the bytes of a ``.index`` file: ({name: entry} in file order, number of shards, byte order)."""
    if len(data) < FOOTER_SIZE:
        raise _Corrupt(f"it has {len(data)} bytes, fewer than a table footer (truncated?)")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != TABLE_MAGIC:
        raise _Corrupt("it does not end in the table magic number (not a TensorFlow checkpoint index, or truncated)")
    _, _, pos = _handle(footer)               # meta-index block: unused
    index_offset, index_size, _ = _handle(footer, pos)
    index = _block(data, index_offset, index_size, "index")
    entries: dict[str, BundleEntry] = {}
    shards, order = 1, "little"
    header_seen = False
    for _, handle in _block_entries(index, "index"):
        offset, size, _ = _handle(handle)
        for key, value in _block_entries(_block(data, offset, size, "data"), "data"):
            if key == b"":
                shards, order = _parse_header(value)
                header_seen = True
                continue
            name = key.decode("utf-8", errors="replace")
            entries[name] = _parse_entry(name, value)
    if not header_seen:
        raise _Corrupt("it has no bundle header (not a TensorFlow V2 checkpoint index)")
    return entries, shards, order


# --------------------------------------------------------------------------------------------
# Finding the files, and the bundle itself
# --------------------------------------------------------------------------------------------
def _data_path(prefix: Path, shard: int, shards: int) -> Path:
    return prefix.parent / f"{prefix.name}.data-{shard:05d}-of-{shards:05d}"


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and (name.endswith(".tar.gz") or name.endswith(".tgz") or name.endswith(".tar"))


def resolve_prefix(path: str | Path) -> Path:
    """The checkpoint prefix for a prefix, an .index or .data file, or a folder holding one checkpoint."""
    path = Path(path).expanduser()
    where = repr(str(path))
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        state = path / "checkpoint"  # tf.train's state file names the newest checkpoint
        if len(indexes) > 1 and state.is_file():
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
            if m:
                prefix = Path(m.group(1))
                return prefix if prefix.is_absolute() else path / prefix
        if not indexes:
            raise NasnetError(f"{where}: no TensorFlow checkpoint in this folder (no *.index file)")
        raise NasnetError(f"{where} holds {len(indexes)} checkpoints ({', '.join(p.name for p in indexes[:5])}); "
                          "name one of them")
    if path.name.endswith(".index"):
        prefix = path.with_suffix("")
    elif m := _DATA_RE.match(path.name):
        prefix = path.parent / m.group("prefix")
    else:
        prefix = path
    index = prefix.parent / (prefix.name + ".index")
    if not index.is_file():
        if not path.exists():
            raise NasnetError(f"{where}: no such file or checkpoint")
        raise NasnetError(f"{where}: not a TensorFlow checkpoint ({index.name} not found beside it)")
    return prefix


def _extract_archive(path: Path, into: Path) -> Path:
    """Copy the index and data members of one checkpoint out of a tar archive; return its prefix."""
    where = repr(str(path))
    try:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            indexes = [m for m in members if m.name.endswith(".index")]
            if not indexes:
                raise NasnetError(f"{where}: the archive holds no TensorFlow checkpoint (no *.index member)")
            if len(indexes) > 1:
                names = ", ".join(m.name for m in indexes[:5])
                raise NasnetError(f"{where}: the archive holds {len(indexes)} checkpoints ({names}); extract it "
                                  "and name one")
            prefix = Path(indexes[0].name).name[: -len(".index")]
            wanted = [indexes[0]] + [m for m in members if (d := _DATA_RE.match(Path(m.name).name))
                                     and d.group("prefix") == prefix]
            for member in wanted:
                source = tar.extractfile(member)
                if source is None:
                    raise NasnetError(f"{where}: archive member {member.name!r} cannot be read")
                with source, open(into / Path(member.name).name, "wb") as out:  # by name only: no paths
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise NasnetError(f"{where} is not a readable tar archive (truncated or damaged: {first_line(err)})") from None
    return into / prefix


class TensorBundle:
    """An open TensorFlow checkpoint. Use as a context manager (archives are unpacked to a temporary
    folder that `close` removes). ``entries`` maps every variable name to its `BundleEntry`."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._tmp: tempfile.TemporaryDirectory | None = None
        if is_archive(self.path):
            self._tmp = tempfile.TemporaryDirectory(prefix="nasnet-ckpt-")
            try:
                self.prefix = _extract_archive(self.path, Path(self._tmp.name))
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
        except _Corrupt as err:
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
        return _data_path(self.prefix, shard, self.num_shards)

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
