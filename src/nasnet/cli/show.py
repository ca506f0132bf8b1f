"""`nasnet show GENOTYPE`: both cells of a genotype (or a NAS-Bench-201 cell's edges) as readable tables."""

from __future__ import annotations

import argparse

from ..arch.genotype import NAMED_GENOTYPES
from ..arch.nb201 import NB201Cell
from ..arch.space import load_architecture
from ._table import format_table

COMMAND = "show"
HELP = "print a genotype's cells as tables (nasnet-a, a genotype string, or a file)"
ORDER = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("genotype", help=f"a name ({', '.join(NAMED_GENOTYPES)}), a genotype text, a NAS-Bench-201 cell "
                   "string, or a file holding one (text or JSON, such as a search's best.json)")
    p.add_argument("--json", action="store_true", help="print the genotype's JSON form")
    p.add_argument("--out", metavar="FILE",
                   help="also draw both cells to FILE (.svg, .png or .pdf: the suffix chooses), like Figure 4")


def cell_table(name: str, cell) -> str:
    k = cell.num_inputs
    def state(s: int) -> str:
        return f"{s} (block {s - k})" if s >= k else f"{s} (input)"

    rows = [[b, state(blk.input1), blk.op1, state(blk.input2), blk.op2, blk.combiner]
            for b, blk in enumerate(cell.blocks)]
    head = f"{name} cell ({cell.num_blocks} blocks, {k} inputs)"
    table = format_table(["block", "input 1", "op 1", "input 2", "op 2", "combine"], rows)
    verb = "concat" if cell.output == "concat" else "outputs (split)"
    return f"{head}\n{table}\n{verb}: states {', '.join(str(s) for s in cell.concat)}"


def nb201_table(cell: NB201Cell) -> str:
    rows = [[f"{i} -> {j}", op] for i, j, op in cell.edges()]
    note = "" if cell.connected() else "\nthe output cannot be reached from the input: this cell outputs zeros"
    return (f"NAS-Bench-201 cell: node 0 = the cell's input, node 3 = its output; each node sums its incoming "
            f"edges\n{format_table(['edge', 'op'], rows)}{note}\n")


def run(args: argparse.Namespace) -> int:
    g = load_architecture(args.genotype)
    if args.out:
        from ..report.drawing import check_figure_path

        check_figure_path(args.out)          # before anything is printed
    if args.json:
        print(g.to_json())
        return 0
    if isinstance(g, NB201Cell):
        print(nb201_table(g))
    else:
        k = g.normal.num_inputs
        print(f"states: 0 = previous cell, 1 = two cells back, ..., {k} + b = output of block b\n")
        for name, cell in g.cells:
            print(cell_table(name, cell))
            print()
    print(f"text form: {g}")
    if args.out:
        from ..report.drawing import draw_genotype

        print(f"drawn to {draw_genotype(g, args.out, title=getattr(g, 'name', None))}")
    return 0
