"""The containers of a TensorFlow checkpoint's ``.index`` file: LevelDB's sorted string table (as
TensorFlow writes it) and the protobuf wire format of its values (docs/formats.md).

`table_entries` walks a table - footer and magic number, index block, data blocks of
prefix-compressed ``key -> value`` entries, each block checked against its masked CRC-32C - and
`fields` splits a serialized protobuf message into (field number, wire type, value). They are
written by hand because the few fields needed do not justify TensorFlow or protobuf as
dependencies. Damage raises `Corrupt`, which the bundle reader turns into one line naming the file;
Snappy-compressed blocks are refused (TensorFlow's bundle writer never compresses).
"""

from __future__ import annotations

import struct
from typing import Iterator

from .crc32c import crc32c, mask_crc

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1


class Corrupt(Exception):
    """Raised inside the parsers; turned into a NasnetError naming the file."""


# --------------------------------------------------------------------------------------------
# Protobuf wire format
# --------------------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise Corrupt("a number runs past the end of its record")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Corrupt("a number is longer than 10 bytes")


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized protobuf message; unknown fields included."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise Corrupt("a fixed64 field runs past the end of its record")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise Corrupt("a length-delimited field runs past the end of its record")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise Corrupt("a fixed32 field runs past the end of its record")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise Corrupt(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def _block(data: bytes, offset: int, size: int, what: str) -> bytes:
    end = offset + size + BLOCK_TRAILER_SIZE
    if offset < 0 or size < 0 or end > len(data) - FOOTER_SIZE:
        raise Corrupt(f"its {what} block lies past the end of the file")
    contents = data[offset:offset + size]
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if mask_crc(crc32c(data[offset:offset + size + 1])) != stored:
        raise Corrupt(f"its {what} block fails its CRC-32C check")
    if kind == SNAPPY_COMPRESSION:
        raise Corrupt(f"its {what} block is Snappy-compressed, which this reader does not decode "
                       "(TensorFlow writes checkpoints uncompressed; re-save it with tf.train.Saver)")
    if kind != NO_COMPRESSION:
        raise Corrupt(f"its {what} block has unknown compression type {kind}")
    return contents


def _block_entries(block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise Corrupt(f"its {what} block is too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise Corrupt(f"its {what} block has a bad restart array")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise Corrupt(f"its {what} block has a damaged entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def table_entries(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of the table whose file bytes are `data`, in file order; each block CRC-checked."""
    if len(data) < FOOTER_SIZE:
        raise Corrupt(f"it has {len(data)} bytes, fewer than a table footer (truncated?)")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != TABLE_MAGIC:
        raise Corrupt("it does not end in the table magic number (not a TensorFlow checkpoint index, or truncated)")
    _, _, pos = _handle(footer)               # meta-index block: unused
    index_offset, index_size, _ = _handle(footer, pos)
    index = _block(data, index_offset, index_size, "index")
    for _, handle in _block_entries(index, "index"):
        offset, size, _ = _handle(handle)
        yield from _block_entries(_block(data, offset, size, "data"), "data")
