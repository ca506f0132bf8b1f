"""CRC-32C (Castagnoli), as TensorFlow and LevelDB store it: the checksum of every block of a
checkpoint's ``.index`` table and of every tensor's bytes (docs/formats.md).

`crc32c` is the standard CRC (reflected polynomial 0x82F63B78, initial value and final xor
0xFFFFFFFF); `mask_crc` is the rotated-and-offset form the files store. Python's zlib has only
CRC-32, and a byte-at-a-time loop is too slow for the megabytes of a NASNet checkpoint, so large
inputs are split into chunks whose registers NumPy advances together, then joined with the linear
"advance over n zero bytes" map: the same value, about a hundred times faster.
"""

from __future__ import annotations

import math

import numpy as np


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
