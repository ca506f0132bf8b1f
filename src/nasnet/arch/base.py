"""What every search space offers, so that strategies, the store, `show`, the report and the CLI work on
any of them without knowing which (paper §3: the controller sees only decisions).

A space turns a flat list of decision indices into an architecture and back. Each decision has a
vocabulary size and a role ("input": a hidden state to read; "op": an operation; "combiner": how two
results are joined); strategies know nothing else. An architecture is an immutable value whose
`str()` is the space's text form, with `to_dict()` its JSON form; `space.parse(text)` reads the text
form and `space.load(spec)` also a name, JSON or a file. Subclasses implement `decision_sizes`,
`decision_roles`, `decision_labels`, `decode`, `encode` and `load`; sampling, the size and
membership follow from those. This module does not import torch.
"""

from __future__ import annotations

import math
import random
from typing import Any, Sequence

from ..errors import NasnetError

ROLES: tuple[str, ...] = ("input", "op", "combiner")


class Space:
    """The interface of a search space (see the module doc)."""

    # -- vocabularies ----------------------------------------------------------------------
    def decision_sizes(self) -> list[int]:
        """Vocabulary size of each decision, in order."""
        raise NotImplementedError

    def decision_roles(self) -> list[str]:
        """The role of each decision (one of ROLES), in order."""
        raise NotImplementedError

    def decision_labels(self) -> list[str]:
        """A short human-readable name of each decision, in order (for errors and tables)."""
        raise NotImplementedError

    @property
    def num_decisions(self) -> int:
        return len(self.decision_sizes())

    def size(self) -> int:
        """Exact number of distinct decision sequences: the product of the vocabulary sizes."""
        return math.prod(self.decision_sizes())

    # -- architectures -----------------------------------------------------------------------
    def decode(self, decisions: Sequence[int]) -> Any:
        """The architecture of a flat list of decision indices."""
        raise NotImplementedError

    def encode(self, arch: Any) -> list[int]:
        """The flat decision list of an architecture of this space."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """An architecture from its text form (the inverse of `str(arch)`)."""
        return self.load(text)

    def load(self, spec: Any) -> Any:
        """An architecture from a name, its text form, its JSON form, or a file holding one of those."""
        raise NotImplementedError

    def contains(self, arch: Any) -> bool:
        """Whether the space can produce exactly this architecture."""
        try:
            return self.decode(self.encode(arch)) == arch
        except NasnetError:
            return False

    def check_decisions(self, decisions: Sequence[int]) -> None:
        """Raise NasnetError naming the first decision that is not an index into its vocabulary."""
        sizes = self.decision_sizes()
        if len(decisions) != len(sizes):
            raise NasnetError(f"decode: expected {len(sizes)} decisions, got {len(decisions)}")
        for i, (d, n) in enumerate(zip(decisions, sizes)):
            if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d < n:
                raise NasnetError(f"decode: {self.decision_labels()[i]}: index {d!r} out of range 0..{n - 1}")

    # -- sampling --------------------------------------------------------------------------
    def sample_decisions(self, seed: random.Random | int | None = None) -> list[int]:
        """Uniform decisions (the paper's random-search baseline, §3); `seed` is an int or a random.Random."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        return [rng.randrange(n) for n in self.decision_sizes()]

    def sample(self, seed: random.Random | int | None = None) -> Any:
        """A uniformly sampled architecture; an int seed gives the same one every time."""
        return self.decode(self.sample_decisions(seed))
