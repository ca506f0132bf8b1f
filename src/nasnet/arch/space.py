"""The NASNet search spaces: decision vocabularies, encode/decode, sampling, size (paper §3, App. A.2, B),
and the registry of every space `--space` can name (the NASNet spaces and NAS-Bench-201's, arch/nb201.py).

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

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import NasnetError
from ..registry import Registry, unknown
from .base import Space
from .genotype import COMBINERS, OPS, OUTPUT_MODES, Block, Cell, Genotype
from .nb201 import NB201Cell, NB201Space

# Decision kinds within a block, in the controller's order.
BLOCK_DECISIONS: tuple[str, ...] = ("input1", "input2", "op1", "op2", "combiner")

# What each kind chooses: a hidden state (an input), an operation, or a combiner. Strategies that
# edit architectures (regularized evolution's hidden-state and op mutations) need only this.
DECISION_ROLES: dict[str, str] = {"input1": "input", "input2": "input", "op1": "op", "op2": "op",
                                  "combiner": "combiner"}


@dataclass(frozen=True)
class SearchSpace(Space):
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

    def decision_labels(self) -> list[str]:
        return [f"{cell} cell, block {b}, {kind}" for cell, b, kind in self.decision_kinds()]

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
        self.check_decisions(decisions)
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

    def load(self, spec: Any) -> Genotype:
        """A genotype from a name, its text or JSON form, or a file (`Genotype.load`)."""
        return Genotype.load(spec)


# The spaces of the paper: A (§3), B and C (Appendix B). Appendix B says B = 4 for NASNet-B (it must
# equal the 4 cell inputs); for NASNet-C its text only says that unused states are concatenated "like
# in NASNet-A", and the one statement of C's block count is Figure 9's caption: "B = 4 blocks".
# A name is read in any case, with "_" for "-" ("NASNet_A"). NAS-Bench-201's cell space (Dong & Yang, ICLR
# 2020) sits beside them: every one of its cells was trained, so a search in it can be measured against
# published ground truth (docs/nb201.md).
SPACES: Registry[Space] = Registry("search space", key=lambda name: name.lower().replace("_", "-"))
SPACES.register("nasnet-a", SearchSpace(), help="the paper's space, B = 5 (§3)")
SPACES.register("nasnet-b", SearchSpace(num_blocks=4, num_inputs=4, output="split", combiners=COMBINERS),
                help="Appendix B")
SPACES.register("nasnet-c", SearchSpace(num_blocks=4, combiners=COMBINERS), help="Appendix B")
SPACES.register("nb201", NB201Space(), help="NAS-Bench-201's cell space")
# The spaces whose architectures are NASNet genotypes (the model layer builds networks from them).
NASNET_SPACES: tuple[str, ...] = tuple(name for name, space in SPACES.items() if isinstance(space, SearchSpace))


def get_space(name: str) -> Space:
    """The space registered under `name` (SPACES), or a NasnetError listing the known ones."""
    return SPACES.lookup(name)


def space_of(arch: Any) -> Space:
    """The space an architecture value belongs to (a Genotype: its NASNet space, else nasnet-a's)."""
    if isinstance(arch, NB201Cell):
        return SPACES["nb201"]
    for space in SPACES.values():
        if isinstance(space, SearchSpace) and space.contains(arch):
            return space
    return SPACES["nasnet-a"]


def load_architecture(spec: Any, space: str | None = None) -> Any:
    """An architecture of any space from a name, text, JSON or a file (such as a search's best.json).

    With `space` given, that space reads it; otherwise a NAS-Bench-201 cell string (or a file or JSON
    holding one) is read as such and anything else as a NASNet genotype."""
    if space is not None:
        return get_space(space).load(spec)
    if isinstance(spec, (Genotype, NB201Cell)):
        return spec
    return (SPACES["nb201"] if NB201Space.looks_like(spec) else SPACES["nasnet-a"]).load(spec)
