"""`nasnet show GENOTYPE`: both cells of a genotype as readable tables."""

from __future__ import annotations

import argparse

from ..arch.genotype import NAMED_GENOTYPES, Genotype
from ._table import format_table

COMMAND = "show"
HELP = "print a genotype's cells as tables (nasnet-a, a genotype string, or a file)"
ORDER = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("genotype", help=f"a name ({', '.join(NAMED_GENOTYPES)}), a genotype text, or a file holding one "
                   "(text or JSON)")
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


def run(args: argparse.Namespace) -> int:
    g = Genotype.load(args.genotype)
    if args.out:
        from ..report.drawing import check_figure_path

        check_figure_path(args.out)          # before anything is printed
    if args.json:
        print(g.to_json())
        return 0
    k = g.normal.num_inputs
    print(f"states: 0 = previous cell, 1 = two cells back, ..., {k} + b = output of block b\n")
    for name, cell in g.cells:
        print(cell_table(name, cell))
        print()
    print(f"text form: {g}")
    if args.out:
        from ..report.drawing import draw_genotype

        print(f"drawn to {draw_genotype(g, args.out, title=g.name)}")
    return 0
