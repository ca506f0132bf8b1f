"""Seeds derived from other seeds: the one mixer every random stream of the project comes from.

A run has one user-facing seed; the streams it needs (the data order of epoch e, rank r's
augmentation, the controller's n-th sample, trial t's child, the weights of a fixture key) each get
``derive_seed(seed, *parts)``. Parts are integers or strings; strings enter through a stable hash
(CRC-32 of their UTF-8 bytes), so the result is the same on every machine and Python version.
NumPy's SeedSequence does the mixing: nearby inputs give unrelated outputs, which ad-hoc
arithmetic such as ``seed * 1_000_003 + i`` does not guarantee. Imports nothing heavy.
"""

from __future__ import annotations

import zlib

import numpy as np

# Purposes: a distinct constant per kind of stream, so that e.g. epoch 3's data order and
# trial 3's child never share a seed. FINAL: a top-k retraining (a fresh seed, never a search child's).
DATA_ORDER, AUGMENT, RANK_RNG, CONTROLLER_SAMPLE, CHILD, FIXTURE, EVOLUTION, FINAL = 1, 2, 3, 4, 5, 6, 7, 8
LOCAL_SEARCH = 9    # local search's restarts and the order in which it tries a cell's neighbours


def _word(part: int | str) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    return int(part) & 0xFFFFFFFF


def derive_seed(*parts: int | str, bits: int = 63) -> int:
    """A non-negative seed of `bits` bits (at most 63) from integers and strings, well mixed."""
    state = np.random.SeedSequence([_word(p) for p in parts]).generate_state(2, np.uint64)[0]
    return int(state) >> (64 - bits)
