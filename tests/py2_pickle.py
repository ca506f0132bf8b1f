"""Pickles written opcode by opcode as Python 2's cPickle wrote the CIFAR python-version files.

The distributed CIFAR batches were pickled under Python 2 (protocol 2): every `str` (dict keys, the
pixel data, file names) is a byte string stored with SHORT_BINSTRING / BINSTRING, the arrays are
rebuilt through the global `numpy.core.multiarray._reconstruct` with the dtype state numpy 1.x
wrote, and every container is memoised with BINPUT. Python 3's `pickle.dumps(..., protocol=2)`
writes none of this (SHORT_BINBYTES / `_codecs.encode` and BINUNICODE instead), so a fixture made
with it does not exercise what a reader of the real files must handle: `encoding=` on the
unpickler, bytes keys, and the old numpy module path. This module writes the bytes itself, from
the opcode table of the pickle protocol (as `pickletools` documents it), without `pickle.dumps`.
"""

from __future__ import annotations

import struct

import numpy as np


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")          # PROTO 2
        self.memo = 0

    def put(self) -> None:                          # BINPUT / LONG_BINPUT: cPickle memoises every object
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def string(self, b: bytes) -> None:             # a Python 2 str
        if len(b) < 256:
            self.out += b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING
        else:
            self.out += b"T" + struct.pack("<i", len(b)) + b   # BINSTRING
        self.put()

    def integer(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])          # BININT1
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)   # BININT2
        else:
            self.out += b"J" + struct.pack("<i", v)   # BININT

    def global_(self, module: bytes, name: bytes) -> None:
        self.out += b"c" + module + b"\n" + name + b"\n"   # GLOBAL
        self.put()

    def value(self, v) -> None:
        if isinstance(v, bytes):
            self.string(v)
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"  # NEWTRUE / NEWFALSE
        elif isinstance(v, int):
            self.integer(v)
        elif v is None:
            self.out += b"N"
        elif isinstance(v, list):
            self.out += b"]"                        # EMPTY_LIST, then MARK items APPENDS
            self.put()
            if v:
                self.out += b"("
                for item in v:
                    self.value(item)
                self.out += b"e"
        elif isinstance(v, dict):
            self.out += b"}"                        # EMPTY_DICT, then MARK key value ... SETITEMS
            self.put()
            if v:
                self.out += b"("
                for key, item in v.items():
                    self.value(key)
                    self.value(item)
                self.out += b"u"
        elif isinstance(v, np.ndarray):
            self.array(v)
        else:
            raise TypeError(f"no Python 2 form written here for {type(v).__name__}")

    def array(self, a: np.ndarray) -> None:
        """ndarray.__reduce__ under numpy 1.x / Python 2: _reconstruct(ndarray, (0,), 'b'), then
        __setstate__((1, shape, dtype, is_fortran, raw bytes)); the dtype is dtype('u1', 0, 1) with
        __setstate__((3, '|', None, None, None, -1, -1, 0))."""
        if a.dtype != np.uint8:
            raise TypeError("only uint8 arrays (CIFAR's pixels) are written here")
        self.global_(b"numpy.core.multiarray", b"_reconstruct")
        self.global_(b"numpy", b"ndarray")
        self.integer(0)
        self.out += b"\x85"                         # TUPLE1: the shape (0,)
        self.put()
        self.string(b"b")
        self.out += b"\x87"                         # TUPLE3
        self.put()
        self.out += b"R"                            # REDUCE
        self.put()
        self.out += b"("                            # MARK: the state tuple
        self.integer(1)
        if len(a.shape) == 2:
            self.integer(a.shape[0])
            self.integer(a.shape[1])
            self.out += b"\x86"                     # TUPLE2
        else:
            self.out += b"("
            for d in a.shape:
                self.integer(d)
            self.out += b"t"
        self.put()
        self.global_(b"numpy", b"dtype")
        self.string(b"u1")
        self.integer(0)
        self.integer(1)
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.integer(3)
        self.string(b"|")
        self.out += b"NNN" + b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.integer(0)
        self.out += b"t"
        self.put()
        self.out += b"b"                            # BUILD: the dtype's state
        self.out += b"\x89"                         # not Fortran-ordered
        self.string(np.ascontiguousarray(a).tobytes())
        self.out += b"t"
        self.put()
        self.out += b"b"                            # BUILD: the array's state


def py2_dumps(obj) -> bytes:
    """`obj` (dicts, lists, bytes as Python 2 str, ints, None, bools, uint8 arrays) pickled as Python 2 did."""
    w = _Writer()
    w.value(obj)
    w.out += b"."                                   # STOP
    return bytes(w.out)
