"""The NASNet search space: decision vocabularies, encode/decode, sampling, size (paper §3, App. A.2, B).

An architecture is 2 x 5B decisions: the first 5B describe the Normal Cell, the next 5B the
Reduction Cell. Each block contributes five decisions in the controller's order (paper §3, Steps
1-5): input 1, input 2, op 1, op 2, combiner. At block b the input vocabulary is the K cell inputs
plus the b earlier block outputs (K + b choices; K = 2 for NASNet-A/C, 4 for NASNet-B).

`decode` fills the cell output by the space's rule: the loose ends (block outputs no block consumes)
for the A and C spaces, every block output for the B space. Because the released NASNet-A does not
follow the loose-ends rule (docs/nasnet-a.md), `encode` keeps only the decisions; `decode(encode(g)) == g`
holds for every genotype the space itself produces. This module does not import torch.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from ..errors import NasnetError
from ..registry import Registry, unknown
from .genotype import COMBINERS, OPS, OUTPUT_MODES, Block, Cell, Genotype

# Decision kinds within a block, in the controller's order.
BLOCK_DECISIONS: tuple[str, ...] = ("input1", "input2", "op1", "op2", "combiner")

# What each kind chooses: a hidden state (an input), an operation, or a combiner. Strategies that
# edit architectures (regularized evolution's hidden-state and op mutations) need only this.
DECISION_ROLES: dict[str, str] = {"input1": "input", "input2": "input", "op1": "op", "op2": "op",
                                  "combiner": "combiner"}


@dataclass(frozen=True)
class SearchSpace:
    """A cell search space. The defaults are the NASNet-A space of the paper (B = 5, 13 ops)."""

    num_blocks: int = 5
    ops: tuple[str, ...] = OPS
    combiners: tuple[str, ...] = ("add", "concat")
    num_inputs: int = 2
    output: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "combiners", tuple(self.combiners))
        if self.num_blocks < 1:
            raise NasnetError(f"search space: num_blocks must be at least 1, got {self.num_blocks}")
        if self.num_inputs < 1:
            raise NasnetError(f"search space: num_inputs must be at least 1, got {self.num_inputs}")
        for kind, vocab, names in (("op", self.ops, OPS), ("combiner", self.combiners, COMBINERS)):
            if not vocab:
                raise NasnetError(f"search space: the {kind} list is empty")
            for item in vocab:
                if item not in names:
                    raise NasnetError(f"search space: {unknown(kind, item, names)}")
            if len(set(vocab)) != len(vocab):
                raise NasnetError(f"search space: the {kind} list has duplicates")
        if self.output not in OUTPUT_MODES:
            raise NasnetError(f"search space: unknown output mode {self.output!r}")
        if self.output == "split" and self.num_blocks < self.num_inputs:
            raise NasnetError("search space: a split-output space needs at least as many blocks as cell inputs")

    # -- vocabularies ----------------------------------------------------------------------
    @property
    def decisions_per_cell(self) -> int:
        return 5 * self.num_blocks

    @property
    def num_decisions(self) -> int:
        return 2 * self.decisions_per_cell

    def decision_sizes(self) -> list[int]:
        """Vocabulary size of each of the 2 x 5B decisions, in order."""
        sizes = []
        for _cell in range(2):
            for b in range(self.num_blocks):
                n_in = self.num_inputs + b
                sizes += [n_in, n_in, len(self.ops), len(self.ops), len(self.combiners)]
        return sizes

    def decision_kinds(self) -> list[tuple[str, int, str]]:
        """(cell name, block, decision kind) for each decision, in order."""
        return [
            (cell, b, kind)
            for cell in ("normal", "reduce")
            for b in range(self.num_blocks)
            for kind in BLOCK_DECISIONS
        ]

    def decision_roles(self) -> list[str]:
        """"input", "op" or "combiner" for each decision, in order (see DECISION_ROLES)."""
        return [DECISION_ROLES[kind] for _, _, kind in self.decision_kinds()]

    def size(self) -> int:
        """Exact number of distinct decision sequences: prod over cells and blocks of (K+b)^2 |ops|^2 |comb|."""
        return math.prod(self.decision_sizes())

    # -- encode / decode -------------------------------------------------------------------
    def _cell_output(self, blocks: tuple[Block, ...]) -> Cell:
        k = self.num_inputs
        if self.output == "split":
            n = k + len(blocks)
            return Cell(blocks, tuple(range(n - k, n)), k, "split")
        probe = Cell(blocks, (k + len(blocks) - 1,), k, "concat")
        return Cell(blocks, probe.loose_ends(), k, "concat")

    def decode(self, decisions: Sequence[int]) -> Genotype:
        """The genotype of a flat list of 2 x 5B decision indices."""
        sizes = self.decision_sizes()
        if len(decisions) != len(sizes):
            raise NasnetError(f"decode: expected {len(sizes)} decisions, got {len(decisions)}")
        for i, (d, n) in enumerate(zip(decisions, sizes)):
            if not isinstance(d, int) or not 0 <= d < n:
                cell, b, kind = self.decision_kinds()[i]
                raise NasnetError(f"decode: {cell} cell, block {b}, {kind}: index {d!r} out of range 0..{n - 1}")
        cells = []
        per = self.decisions_per_cell
        for c in range(2):
            chunk = decisions[c * per:(c + 1) * per]
            blocks = tuple(
                Block(chunk[5 * b], self.ops[chunk[5 * b + 2]], chunk[5 * b + 1], self.ops[chunk[5 * b + 3]],
                      self.combiners[chunk[5 * b + 4]])
                for b in range(self.num_blocks)
            )
            cells.append(self._cell_output(blocks))
        return Genotype(*cells)

    def encode(self, genotype: Genotype) -> list[int]:
        """The flat decision list of a genotype (its output list is not encoded; see the module doc)."""
        out: list[int] = []
        for name, cell in genotype.cells:
            if cell.num_blocks != self.num_blocks or cell.num_inputs != self.num_inputs:
                raise NasnetError(
                    f"encode: the {name} cell has {cell.num_blocks} blocks and {cell.num_inputs} inputs; "
                    f"this space has {self.num_blocks} and {self.num_inputs}"
                )
            for b, blk in enumerate(cell.blocks):
                for op in blk.ops:
                    if op not in self.ops:
                        raise NasnetError(f"encode: {name} cell, block {b}: op {op!r} is not in this space")
                if blk.combiner not in self.combiners:
                    raise NasnetError(f"encode: {name} cell, block {b}: combiner {blk.combiner!r} is not in this space")
                out += [blk.input1, blk.input2, self.ops.index(blk.op1), self.ops.index(blk.op2),
                        self.combiners.index(blk.combiner)]
        return out

    def contains(self, genotype: Genotype) -> bool:
        """Whether the space can produce exactly this genotype (decisions and output list)."""
        try:
            return self.decode(self.encode(genotype)) == genotype
        except NasnetError:
            return False

    # -- sampling --------------------------------------------------------------------------
    def sample_decisions(self, seed: random.Random | int | None = None) -> list[int]:
        """Uniform decisions (the paper's random-search baseline, §3); `seed` is an int or a random.Random."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        return [rng.randrange(n) for n in self.decision_sizes()]

    def sample(self, seed: random.Random | int | None = None) -> Genotype:
        """A uniformly sampled genotype; an int seed gives the same genotype every time."""
        return self.decode(self.sample_decisions(seed))


# The spaces of the paper: A (§3), B and C (Appendix B). Appendix B says B = 4 for NASNet-B (it must
# equal the 4 cell inputs); for NASNet-C its text only says that unused states are concatenated "like
# in NASNet-A", and the one statement of C's block count is Figure 9's caption: "B = 4 blocks".
# A name is read in any case, with "_" for "-" ("NASNet_A").
SPACES: Registry[SearchSpace] = Registry("search space", key=lambda name: name.lower().replace("_", "-"))
SPACES.register("nasnet-a", SearchSpace(), help="the paper's space, B = 5 (§3)")
SPACES.register("nasnet-b", SearchSpace(num_blocks=4, num_inputs=4, output="split", combiners=COMBINERS),
                help="Appendix B")
SPACES.register("nasnet-c", SearchSpace(num_blocks=4, combiners=COMBINERS), help="Appendix B")


def get_space(name: str) -> SearchSpace:
    """The space registered under `name` (SPACES), or a NasnetError listing the known ones."""
    return SPACES.lookup(name)
