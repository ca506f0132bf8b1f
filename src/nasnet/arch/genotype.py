"""Genotypes: an architecture as an immutable, hashable value (paper §3, Figure 3; docs/nasnet-a.md).

A genotype holds two cells, the Normal Cell and the Reduction Cell. A cell is B blocks; each block
picks two hidden states, applies one op to each and combines the results. One state numbering is
used everywhere in this package (docs/nasnet-a.md):

    0          the previous cell's output (after its 1x1 conv to F channels)
    1          the output two cells back (brought to F channels and to this cell's size)
    2 .. K-1   further cell inputs, for the NASNet-B space (K = number of cell inputs)
    K + b      the output of block b (blocks are numbered from 0)

A cell's output is an explicit list of states. NASNet-A as released does not follow the loose-ends
rule (docs/nasnet-a.md), so the list is stored, never recomputed; the loose-ends rule only fills it for
sampled cells (see `Cell.loose_ends`). `output` says how the listed states leave the cell: "concat"
(NASNet-A/C: concatenated along channels) or "split" (NASNet-B, Appendix B: each listed state is fed
to one of the next layers, the i-th to the layer i+1 above).

Text form (round-trips through `Genotype.parse(str(g)) == g`)::

    normal[0 sep_conv_5x5 1 sep_conv_3x3 add | ... ; concat 1 2 3 4 5 6] reduce[... ; concat 3 4 5 6]

Each block reads "input1 op1 input2 op2 combiner". A cell with more than two inputs starts with
"inputs K ;". This module does not import torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import NasnetError
from ..registry import unknown

# The paper's 13 operations (§3), in the paper's order; the order fixes the decision indices.
OPS: tuple[str, ...] = (
    "identity",
    "conv_1x7_7x1",
    "avg_pool_3x3",
    "max_pool_5x5",
    "conv_1x1",
    "sep_conv_3x3",
    "sep_conv_7x7",
    "conv_1x3_3x1",
    "dil_conv_3x3",
    "max_pool_3x3",
    "max_pool_7x7",
    "conv_3x3",
    "sep_conv_5x5",
)

# add / concat (NASNet-A), and the add+LayerNorm / add+InstanceNorm of the B and C spaces (Appendix B).
COMBINERS: tuple[str, ...] = ("add", "concat", "add_ln", "add_in")

OUTPUT_MODES: tuple[str, ...] = ("concat", "split")

CELL_NAMES: tuple[str, str] = ("normal", "reduce")


@dataclass(frozen=True)
class Block:
    """One block: op1(state input1) combined with op2(state input2)."""

    input1: int
    op1: str
    input2: int
    op2: str
    combiner: str = "add"

    @property
    def inputs(self) -> tuple[int, int]:
        return (self.input1, self.input2)

    @property
    def ops(self) -> tuple[str, str]:
        return (self.op1, self.op2)

    def __str__(self) -> str:
        return f"{self.input1} {self.op1} {self.input2} {self.op2} {self.combiner}"


@dataclass(frozen=True)
class Cell:
    """B blocks plus the explicit list of states that form the cell's output."""

    blocks: tuple[Block, ...]
    concat: tuple[int, ...]
    num_inputs: int = 2
    output: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "concat", tuple(self.concat))
        self._validate()

    # -- structure -------------------------------------------------------------------------
    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def num_states(self) -> int:
        return self.num_inputs + len(self.blocks)

    def used_states(self) -> set[int]:
        """States consumed by some block."""
        return {i for blk in self.blocks for i in blk.inputs}

    def loose_ends(self) -> tuple[int, ...]:
        """Block outputs that no block consumes: the paper's default cell output (§3)."""
        used = self.used_states()
        return tuple(s for s in range(self.num_inputs, self.num_states) if s not in used)

    def channel_multiples(self) -> list[int]:
        """Width of every state in units of the cell's F (a concat combiner gives 2F).

        Cell inputs count as F: the cell brings them to F channels before any block reads them.
        """
        widths = [1] * self.num_inputs
        widths += [2 if blk.combiner == "concat" else 1 for blk in self.blocks]
        return widths

    def output_multiple(self) -> int:
        """Width of the concatenated output in units of F (6 for the NASNet-A normal cell)."""
        widths = self.channel_multiples()
        return sum(widths[s] for s in self.concat)

    # -- validation ------------------------------------------------------------------------
    def _validate(self) -> None:
        if not isinstance(self.num_inputs, int) or self.num_inputs < 1:
            raise NasnetError(f"inputs: the number of cell inputs must be a positive integer, got {self.num_inputs!r}")
        if not self.blocks:
            raise NasnetError("a cell needs at least one block")
        for b, blk in enumerate(self.blocks):
            if not isinstance(blk, Block):
                raise NasnetError(f"block {b}: expected a Block, got {type(blk).__name__}")
            available = self.num_inputs + b
            for which, (state, op) in enumerate(zip(blk.inputs, blk.ops), start=1):
                if not isinstance(state, int) or isinstance(state, bool):
                    raise NasnetError(f"block {b}, input {which}: {state!r} is not a state number")
                if not 0 <= state < available:
                    raise NasnetError(
                        f"block {b}, input {which}: state {state} is not defined yet "
                        f"(block {b} can use states 0..{available - 1})"
                    )
                if op not in OPS:
                    raise NasnetError(f"block {b}, op {which}: {unknown('op', op, OPS)}")
            if blk.combiner not in COMBINERS:
                raise NasnetError(f"block {b}, combiner: {unknown('combiner', blk.combiner, COMBINERS)}")
        if self.output not in OUTPUT_MODES:
            raise NasnetError(f"output: {unknown('output mode', self.output, OUTPUT_MODES)}")
        if not self.concat:
            raise NasnetError(f"{self.output}: the output list is empty")
        for s in self.concat:
            if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < self.num_states:
                raise NasnetError(
                    f"{self.output}: state {s!r} does not exist (this cell has states 0..{self.num_states - 1})"
                )
        if len(set(self.concat)) != len(self.concat):
            raise NasnetError(f"{self.output}: a state is listed twice in {list(self.concat)}")
        if self.output == "split" and len(self.concat) != self.num_inputs:
            raise NasnetError(
                f"split: a split cell must emit as many states as it has inputs "
                f"({self.num_inputs}), got {len(self.concat)}"
            )

    # -- text and JSON ---------------------------------------------------------------------
    def __str__(self) -> str:
        head = f"inputs {self.num_inputs} ; " if self.num_inputs != 2 else ""
        blocks = " | ".join(str(b) for b in self.blocks)
        tail = " ".join(str(s) for s in self.concat)
        return f"[{head}{blocks} ; {self.output} {tail}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocks": [[b.input1, b.op1, b.input2, b.op2, b.combiner] for b in self.blocks],
            self.output: list(self.concat),
            "inputs": self.num_inputs,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "cell") -> "Cell":
        if not isinstance(data, dict) or "blocks" not in data:
            raise NasnetError(f"{where}: expected an object with 'blocks' and 'concat' (or 'split')")
        modes = [m for m in OUTPUT_MODES if m in data]
        if len(modes) != 1:
            raise NasnetError(f"{where}: give exactly one of 'concat' or 'split'")
        inputs, states = data.get("inputs", 2), data[modes[0]]
        if not isinstance(data["blocks"], list) or not isinstance(states, list):
            raise NasnetError(f"{where}: 'blocks' and '{modes[0]}' must be lists")
        if isinstance(inputs, bool) or not isinstance(inputs, int):
            raise NasnetError(f"{where}: 'inputs' must be a whole number, got {inputs!r}")
        blocks = []
        for b, raw in enumerate(data["blocks"]):
            if not isinstance(raw, (list, tuple)) or len(raw) != 5:
                raise NasnetError(f"{where}, block {b}: expected [input1, op1, input2, op2, combiner]")
            blocks.append(Block(*raw))
        try:
            return cls(tuple(blocks), tuple(states), inputs, modes[0])
        except NasnetError as err:
            raise NasnetError(f"{where}, {err}") from None


@dataclass(frozen=True)
class Genotype:
    """A NASNet architecture: the Normal Cell and the Reduction Cell."""

    normal: Cell
    reduce: Cell
    name: str | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        for cell_name in CELL_NAMES:
            if not isinstance(getattr(self, cell_name), Cell):
                raise NasnetError(f"genotype: the {cell_name} cell must be a Cell")
        if self.normal.num_inputs != self.reduce.num_inputs or self.normal.output != self.reduce.output:
            raise NasnetError("genotype: the normal and reduce cells must have the same inputs and output mode")

    @property
    def cells(self) -> tuple[tuple[str, Cell], tuple[str, Cell]]:
        return (("normal", self.normal), ("reduce", self.reduce))

    def __str__(self) -> str:
        return f"normal{self.normal} reduce{self.reduce}"

    def __repr__(self) -> str:
        return f"Genotype.parse({str(self)!r})"

    # -- parsing ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "Genotype":
        """Parse the text form; a mistake raises NasnetError naming the cell, block and field."""
        if not isinstance(text, str):
            raise NasnetError(f"genotype: expected text, got {type(text).__name__}")
        m = re.fullmatch(r"\s*normal\s*\[(?P<normal>[^\[\]]*)\]\s*reduce\s*\[(?P<reduce>[^\[\]]*)\]\s*", text)
        if not m:
            raise NasnetError(
                "genotype: expected 'normal[<blocks> ; concat <states>] reduce[<blocks> ; concat <states>]'"
            )
        cells = [_parse_cell(m.group(name), name) for name in CELL_NAMES]
        try:
            return cls(*cells)
        except NasnetError as err:
            raise NasnetError(str(err)) from None

    def to_dict(self) -> dict[str, Any]:
        return {name: cell.to_dict() for name, cell in self.cells}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "Genotype":
        if not isinstance(data, dict) or not all(k in data for k in CELL_NAMES):
            raise NasnetError("genotype: expected an object with 'normal' and 'reduce' cells")
        return cls(*(Cell.from_dict(data[name], f"genotype: {name} cell") for name in CELL_NAMES))

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        return cls.from_dict(strict_json(text))

    @classmethod
    def load(cls, spec: "str | Path | Genotype") -> "Genotype":
        """A genotype from a name (`nasnet-a`), a text form, JSON text, or a file holding any of those.

        A JSON file may hold the genotype object itself, or an object with a "genotype" key whose
        value is the text or the object (as written to a search's best.json).
        """
        if isinstance(spec, Genotype):
            return spec
        text = str(spec).strip()
        named = NAMED_GENOTYPES.get(text.lower().replace("_", "-"))
        if named is not None:
            return named
        if not text.startswith(("normal", "{")):
            path = Path(text).expanduser()
            if not _is_file(path):
                shown = text if len(text) <= 80 else text[:77] + "..."
                raise NasnetError(f"genotype: {shown!r} is not a known name ({', '.join(NAMED_GENOTYPES)}), "
                                  "a genotype text, or an existing file")
            try:
                text = path.read_text().strip()
            except (OSError, UnicodeDecodeError) as err:
                raise NasnetError(f"genotype: cannot read {path}: {err}") from None
        if text.startswith("{"):
            data = strict_json(text)
            if isinstance(data, dict) and "genotype" in data:
                data = data["genotype"]
                if isinstance(data, str):
                    return cls.parse(data)
            return cls.from_dict(data)
        return cls.parse(text)


def strict_json(text: str, what: str = "genotype") -> Any:
    """Strict JSON for an architecture (`what` begins each message): NaN and Infinity (which JSON does not
    have), a key twice in one object (which would silently keep the last) and nesting too deep to read are
    refused, each in one line."""
    def constant(name: str):
        raise NasnetError(f"{what}: invalid JSON ({name} is not a JSON number)")

    def unique(pairs: list) -> dict:
        keys: set = set()
        for key, _ in pairs:
            if key in keys:
                raise NasnetError(f"{what}: invalid JSON (the key {key!r} appears twice in one object)")
            keys.add(key)
        return dict(pairs)

    try:
        return json.loads(text, parse_constant=constant, object_pairs_hook=unique)
    except json.JSONDecodeError as err:
        raise NasnetError(f"{what}: invalid JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise NasnetError(f"{what}: invalid JSON (nested too deeply to be a {what})") from None


def _is_file(path: Path) -> bool:
    """Whether `path` names a readable file; False for text that cannot be a path (too long a name, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):   # ENAMETOOLONG, embedded NUL, ...
        return False


_INT = re.compile(r"-?\d+")


def _parse_state(token: str, where: str) -> int:
    if not _INT.fullmatch(token):
        raise NasnetError(f"{where}: {token!r} is not a state number")
    return int(token)


def _parse_cell(body: str, name: str) -> Cell:
    where = f"genotype: {name} cell"
    sections = [s.strip() for s in body.split(";")]
    num_inputs = 2
    if sections and sections[0].startswith("inputs"):
        parts = sections.pop(0).split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) < 1:
            raise NasnetError(f"{where}, inputs: expected 'inputs K' with K a positive integer")
        num_inputs = int(parts[1])
    if len(sections) != 2:
        raise NasnetError(f"{where}: expected '<blocks> ; concat <states>' (blocks separated by '|')")
    block_text, output_text = sections
    blocks = []
    for b, chunk in enumerate(block_text.split("|")):
        fields = chunk.split()
        if len(fields) != 5:
            raise NasnetError(
                f"{where}, block {b}: expected 5 fields 'input1 op1 input2 op2 combiner', got {len(fields)}"
            )
        in1 = _parse_state(fields[0], f"{where}, block {b}, input 1")
        in2 = _parse_state(fields[2], f"{where}, block {b}, input 2")
        blocks.append(Block(in1, fields[1], in2, fields[3], fields[4]))
    out_fields = output_text.split()
    if not out_fields or out_fields[0] not in OUTPUT_MODES:
        raise NasnetError(f"{where}, output: expected 'concat <states>' or 'split <states>'")
    states = tuple(_parse_state(t, f"{where}, {out_fields[0]}") for t in out_fields[1:])
    try:
        return Cell(tuple(blocks), states, num_inputs, out_fields[0])
    except NasnetError as err:
        raise NasnetError(f"{where}, {err}") from None


def make_cell(blocks: Iterable[tuple], concat: Iterable[int] | None = None, num_inputs: int = 2,
              output: str = "concat") -> Cell:
    """A cell from (input1, op1, input2, op2, combiner) tuples; concat defaults to the loose ends."""
    blks = tuple(Block(*b) for b in blocks)
    if concat is None:
        probe = Cell(blks, (num_inputs + len(blks) - 1,), num_inputs, "concat")
        concat = probe.loose_ends() if output == "concat" else tuple(
            range(probe.num_states - num_inputs, probe.num_states))
    return Cell(blks, tuple(concat), num_inputs, output)


# NASNet-A as released in TensorFlow's model garden (docs/nasnet-a.md), in this package's state numbering.
NASNET_A = Genotype(
    normal=make_cell(
        [
            (0, "sep_conv_5x5", 1, "sep_conv_3x3", "add"),
            (1, "sep_conv_5x5", 1, "sep_conv_3x3", "add"),
            (0, "avg_pool_3x3", 1, "identity", "add"),
            (1, "avg_pool_3x3", 1, "avg_pool_3x3", "add"),
            (0, "sep_conv_3x3", 0, "identity", "add"),
        ],
        concat=(1, 2, 3, 4, 5, 6),
    ),
    reduce=make_cell(
        [
            (0, "sep_conv_5x5", 1, "sep_conv_7x7", "add"),
            (0, "max_pool_3x3", 1, "sep_conv_7x7", "add"),
            (0, "avg_pool_3x3", 1, "sep_conv_5x5", "add"),
            (3, "identity", 2, "avg_pool_3x3", "add"),
            (2, "sep_conv_3x3", 0, "max_pool_3x3", "add"),
        ],
        concat=(3, 4, 5, 6),
    ),
    name="nasnet-a",
)

NAMED_GENOTYPES: dict[str, Genotype] = {"nasnet-a": NASNET_A}
