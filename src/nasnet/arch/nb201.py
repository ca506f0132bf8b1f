"""NAS-Bench-201's cell space (Dong & Yang, ICLR 2020): 6 decisions, one operation per edge of a 4-node cell.

A cell is a small directed acyclic graph: node 0 is the cell's input, every later node j sums one
operation applied to each earlier node i < j, and node 3 is the cell's output. The six edges, in
the order of NAS-Bench-201's own cell string, are 0->1, 0->2, 1->2, 0->3, 1->3, 2->3; each carries
one of five operations, in NAS-Bench-201's order:

    none  skip_connect  nor_conv_1x1  nor_conv_3x3  avg_pool_3x3

("none" is the zero operation, which removes the edge; "nor_conv" is ReLU-conv-BatchNorm). That
makes 5^6 = 15,625 cells, every one of which the benchmark trained (docs/nb201.md). The text form
is NAS-Bench-201's cell string, one group per node, each entry "op~input node"::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

`NB201Cell.parse(str(c)) == c` for every cell. Decision i is the op of edge i, as an index into
`NB201_OPS`; every decision's role is "op". This module does not import torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import NasnetError
from ..registry import unknown
from .base import Space
from .genotype import strict_json

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_NODES = 4
# (from node, to node) of each edge, in the cell string's order (grouped by the node they feed).
NB201_EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for j in range(1, NB201_NODES) for i in range(j))

_CELL = re.compile(r"\|[^|~]+~\d+(?:\|[^|~]+~\d+)*\|")


@dataclass(frozen=True)
class NB201Cell:
    """One NAS-Bench-201 cell: the op of each edge, in the order of NB201_EDGES."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != len(NB201_EDGES):
            raise NasnetError(f"nb201 cell: expected {len(NB201_EDGES)} edge ops, got {len(self.ops)}")
        for (i, j), op in zip(NB201_EDGES, self.ops):
            if op not in NB201_OPS:
                raise NasnetError(f"nb201 cell: edge {i}->{j}: {unknown('op', op, NB201_OPS)}")

    def edges(self) -> list[tuple[int, int, str]]:
        """(from node, to node, op) of every edge, in the cell string's order."""
        return [(i, j, op) for (i, j), op in zip(NB201_EDGES, self.ops)]

    def connected(self) -> bool:
        """Whether the output node is reachable from the input through edges that are not "none".

        A disconnected cell outputs zeros: the benchmark's networks built from it learn nothing (about
        10 % accuracy on CIFAR-10)."""
        reach = {0}
        for i, j, op in self.edges():
            if op != "none" and i in reach:
                reach.add(j)
        return NB201_NODES - 1 in reach

    # -- text and JSON ---------------------------------------------------------------------
    def __str__(self) -> str:
        groups = []
        for j in range(1, NB201_NODES):
            groups.append("|" + "|".join(f"{op}~{i}" for i, jj, op in self.edges() if jj == j) + "|")
        return "+".join(groups)

    def __repr__(self) -> str:
        return f"NB201Cell.parse({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> "NB201Cell":
        """Read NAS-Bench-201's cell string; a mistake raises NasnetError naming the node and entry."""
        if not isinstance(text, str):
            raise NasnetError(f"nb201 cell: expected text, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != NB201_NODES - 1:
            raise NasnetError(f"nb201 cell: expected {NB201_NODES - 1} node groups joined by '+' "
                              f"('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'), got {len(groups)}")
        ops = []
        for j, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise NasnetError(f"nb201 cell: node {j}: expected '|op~input|...|', got {group!r}")
            entries = group[1:-1].split("|")
            if len(entries) != j:
                raise NasnetError(f"nb201 cell: node {j} takes {j} input(s), got {len(entries)}: {group!r}")
            for i, entry in enumerate(entries):
                op, sep, node = entry.partition("~")
                if not sep or node != str(i):
                    raise NasnetError(f"nb201 cell: node {j}, entry {entry!r}: expected 'op~{i}'")
                ops.append(op)
        return cls(tuple(ops))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": [[i, j, op] for i, j, op in self.edges()]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "NB201Cell":
        edges = data.get("edges") if isinstance(data, dict) else None
        if not isinstance(edges, list) or len(edges) != len(NB201_EDGES):
            raise NasnetError(f"nb201 cell: expected an object with 'edges', a list of {len(NB201_EDGES)} "
                              "[from, to, op] entries")
        ops = []
        for k, ((i, j), entry) in enumerate(zip(NB201_EDGES, edges)):
            if not isinstance(entry, list) or len(entry) != 3 or entry[:2] != [i, j]:
                raise NasnetError(f"nb201 cell: edge {k}: expected [{i}, {j}, op], got {entry!r}")
            ops.append(entry[2])
        return cls(tuple(ops))


def _spec_text(spec: Any) -> str:
    """The text a spec stands for: the spec itself, or the contents of the file it names."""
    text = str(spec).strip()
    if text.startswith(("|", "{")):
        return text
    path = Path(text).expanduser()
    try:
        if path.is_file():
            return path.read_text().strip()
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    return text


class NB201Space(Space):
    """The 15,625 cells of NAS-Bench-201 (see the module doc)."""

    ops: tuple[str, ...] = NB201_OPS

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NB201Space)

    def __hash__(self) -> int:
        return hash(NB201Space)

    def __repr__(self) -> str:
        return "NB201Space()"

    def decision_sizes(self) -> list[int]:
        return [len(NB201_OPS)] * len(NB201_EDGES)

    def decision_roles(self) -> list[str]:
        return ["op"] * len(NB201_EDGES)

    def decision_labels(self) -> list[str]:
        return [f"edge {i}->{j}" for i, j in NB201_EDGES]

    def decode(self, decisions: Sequence[int]) -> NB201Cell:
        self.check_decisions(decisions)
        return NB201Cell(tuple(NB201_OPS[d] for d in decisions))

    def encode(self, arch: NB201Cell) -> list[int]:
        if not isinstance(arch, NB201Cell):
            raise NasnetError(f"encode: a NAS-Bench-201 space encodes NB201 cells, not {type(arch).__name__}")
        return [NB201_OPS.index(op) for op in arch.ops]

    @staticmethod
    def looks_like(spec: Any) -> bool:
        """Whether a spec (text, JSON or a file) holds a NAS-Bench-201 cell rather than a NASNet genotype."""
        if isinstance(spec, NB201Cell):
            return True
        text = _spec_text(spec)
        return bool(_CELL.search(text)) or '"edges"' in text

    def load(self, spec: Any) -> NB201Cell:
        """A cell from its string, its JSON form, a search's best.json (its "genotype"), or a file of any."""
        if isinstance(spec, NB201Cell):
            return spec
        text = _spec_text(spec)
        if text.startswith("{"):
            data = strict_json(text, "nb201 cell")
            if isinstance(data, dict) and "genotype" in data:
                data = data["genotype"]
            return NB201Cell.parse(data) if isinstance(data, str) else NB201Cell.from_dict(data)
        if not text.startswith("|"):
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise NasnetError(f"nb201 cell: {shown!r} is neither a cell string '|op~0|+|op~0|op~1|+...' nor a "
                              "file holding one")
        return NB201Cell.parse(text)
