"""Cell diagrams in the style of the paper's Figure 4 (paper §3; Figure 4 and Appendix B figures).

Each cell is drawn bottom-up: the cell inputs (state 0 = h_i, the previous cell; state 1 = h_{i-1},
two cells back), each block's two op boxes (yellow) above the states they read, the block's
combiner (green; "add + LN" and "add + IN" are the B/C spaces' add + LayerNorm / InstanceNorm)
above its ops, and the cell output (pink) on top, fed by the states it
concatenates (or, for a NASNet-B "split" cell, the states it passes on). Ops that read a cell input
in a reduction cell carry "stride 2". Inputs no block or output uses are drawn dashed and grey.

Rows come from the data-flow depth of each state, so any valid genotype is laid out without
overlaps. Rendering uses matplotlib (Agg); SVG output keeps text as text so labels are searchable,
and PNG output records the architecture's text form (hence every op label) in its "Description"
metadata.

A NAS-Bench-201 cell (arch/nb201.py) is drawn as its graph: nodes 0 (input) to 3 (output) left to
right, each edge labelled with its op; "none" edges, which carry nothing, are dashed and grey, and a
cell whose output cannot be reached from its input says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..arch.genotype import Cell, Genotype
from ..arch.nb201 import NB201_NODES, NB201Cell
from ..atomic import replacing
from ..errors import NasnetError
from ..paths import output_file

COLORS = {"input": "#d9d9d9", "op": "#fde68a", "combine": "#86efac", "output": "#f9a8d4", "edge": "#4b5563"}
COMBINER_LABELS = {"add": "add", "concat": "concat", "add_ln": "add + LN", "add_in": "add + IN"}
FORMATS = (".svg", ".png", ".pdf")

BOX_W, BOX_H, COL_W, ROW_H = 1.9, 0.55, 2.3, 1.25


@dataclass
class _Node:
    kind: str          # input | op | combine | output
    label: str
    x: float
    y: float
    sub: str = ""      # second, smaller line of text
    muted: bool = False


def _depths(cell: Cell) -> list[int]:
    depth = [0] * cell.num_inputs
    for blk in cell.blocks:
        depth.append(1 + max(depth[i] for i in blk.inputs))
    return depth


def layout_cell(cell: Cell, reduction: bool) -> tuple[list[_Node], list[tuple[int, int]]]:
    """Nodes with positions and edges (index pairs) for one cell."""
    k = cell.num_inputs
    depth = _depths(cell)
    levels = max(depth)
    by_level: dict[int, list[int]] = {}
    for b in range(cell.num_blocks):
        by_level.setdefault(depth[k + b], []).append(b)
    width = max([len(v) * 2 for v in by_level.values()] + [k])

    nodes: list[_Node] = []
    state_node: dict[int, int] = {}
    used = cell.used_states() | set(cell.concat)
    names = ["h_i", "h_{i-1}"] + [f"h_{{i-{j}}}" for j in range(2, k)]
    for s in range(k):
        x = (s + 0.5) * width / k * COL_W
        sub = "previous cell" if s == 0 else f"{s + 1} cells back"
        state_node[s] = len(nodes)
        nodes.append(_Node("input", f"{s}: ${names[s]}$", x, 0.0, sub, muted=s not in used))

    edges: list[tuple[int, int]] = []
    for level, blocks in sorted(by_level.items()):
        span = len(blocks) * 2
        left = (width - span) / 2
        for pos, b in enumerate(blocks):
            blk = cell.blocks[b]
            op_ids = []
            for side, (s, op) in enumerate(zip(blk.inputs, blk.ops)):
                x = (left + 2 * pos + side + 0.5) * COL_W
                strided = reduction and s < k
                sub = "stride 2" if strided else ""
                op_ids.append(len(nodes))
                nodes.append(_Node("op", op, x, (2 * level - 1) * ROW_H, sub))
                edges.append((state_node[s], op_ids[-1]))
            cx = (left + 2 * pos + 1) * COL_W
            state_node[k + b] = len(nodes)
            nodes.append(_Node("combine", COMBINER_LABELS[blk.combiner], cx, 2 * level * ROW_H, f"state {k + b}"))
            edges += [(op_ids[0], state_node[k + b]), (op_ids[1], state_node[k + b])]

    states = ", ".join(str(s) for s in cell.concat)
    out_label, out_sub = ("concat", f"states {states}") if cell.output == "concat" else ("split", f"{states} -> next")
    out = len(nodes)
    nodes.append(_Node("output", out_label, width * COL_W / 2, (2 * levels + 1) * ROW_H, out_sub))
    edges += [(state_node[s], out) for s in cell.concat]
    return nodes, edges


def _draw_cell(ax, cell: Cell, title: str, reduction: bool) -> None:
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    nodes, edges = layout_cell(cell, reduction)
    for a, b in edges:
        na, nb = nodes[a], nodes[b]
        ax.add_patch(FancyArrowPatch((na.x, na.y + BOX_H / 2), (nb.x, nb.y - BOX_H / 2), arrowstyle="-|>",
                                     mutation_scale=9, color=COLORS["edge"], lw=0.8, shrinkA=0, shrinkB=1,
                                     zorder=1))
    for n in nodes:
        ax.add_patch(FancyBboxPatch((n.x - BOX_W / 2, n.y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc="#f3f4f6" if n.muted else COLORS[n.kind],
                                    ec="#9ca3af" if n.muted else "#374151", lw=0.9,
                                    ls="--" if n.muted else "-", zorder=2))
        dy = 0.08 if n.sub else 0.0
        ax.text(n.x, n.y + dy, n.label, ha="center", va="center", fontsize=8, zorder=3,
                color="#6b7280" if n.muted else "#111827", fontfamily="DejaVu Sans")
        if n.sub:
            ax.text(n.x, n.y - 0.16, n.sub, ha="center", va="center", fontsize=6, zorder=3, color="#374151")
    xs = [n.x for n in nodes]
    ys = [n.y for n in nodes]
    ax.set_xlim(min(xs) - BOX_W, max(xs) + BOX_W)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 0.8)
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.axis("off")


def _nb201_figure(cell: NB201Cell, title: str | None):
    """A NAS-Bench-201 cell as its graph (see the module doc)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(9.0, 4.2))
    xs = [3.2 * n for n in range(NB201_NODES)]
    for i, j, op in cell.edges():
        span = j - i
        rad = 0.0 if span == 1 else (-0.45 if span == 2 else 0.42)      # span 2 above, span 3 below
        (x0, x1), muted = (xs[i], xs[j]), op == "none"
        ax.add_patch(FancyArrowPatch((x0 + 0.45, 0), (x1 - 0.45, 0), connectionstyle=f"arc3,rad={rad}",
                                     arrowstyle="-|>", mutation_scale=10, lw=0.9, zorder=1,
                                     color="#9ca3af" if muted else COLORS["edge"], ls="--" if muted else "-"))
        lx, ly = (x0 + x1) / 2, -0.5 * rad * (x1 - x0 - 0.9)              # the arc's midpoint
        ax.add_patch(FancyBboxPatch((lx - BOX_W / 2, ly - BOX_H / 2), BOX_W, BOX_H, zorder=2, lw=0.9,
                                    boxstyle="round,pad=0.02,rounding_size=0.12", ls="--" if muted else "-",
                                    fc="#f3f4f6" if muted else COLORS["op"], ec="#9ca3af" if muted else "#374151"))
        ax.text(lx, ly, op, ha="center", va="center", fontsize=8, zorder=3, color="#6b7280" if muted else "#111827")
    for n, x in enumerate(xs):
        kind = "input" if n == 0 else ("output" if n == NB201_NODES - 1 else "combine")
        ax.add_patch(FancyBboxPatch((x - 0.45, -0.3), 0.9, 0.6, boxstyle="round,pad=0.02,rounding_size=0.2",
                                    fc=COLORS[kind], ec="#374151", lw=0.9, zorder=2))
        sub = {0: "input", NB201_NODES - 1: "output"}.get(n, "sum")
        ax.text(x, 0.06, str(n), ha="center", va="center", fontsize=9, zorder=3)
        ax.text(x, -0.17, sub, ha="center", va="center", fontsize=6, zorder=3, color="#374151")
    note = "" if cell.connected() else "  (disconnected: no path from the input to the output)"
    ax.set_title("NAS-Bench-201 cell" + note, fontsize=10)
    ax.set_xlim(xs[0] - 1.2, xs[-1] + 1.2)
    ax.set_ylim(-2.3, 2.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def figure_for(genotype: Genotype | NB201Cell, title: str | None = None):
    """A matplotlib Figure of an architecture: a genotype's two cells, the Normal Cell above the Reduction
    Cell, or a NAS-Bench-201 cell's graph."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if isinstance(genotype, NB201Cell):
        return _nb201_figure(genotype, title)
    sizes = []
    for _, cell in genotype.cells:
        nodes, _ = layout_cell(cell, False)
        sizes.append((max(n.x for n in nodes) + 2 * BOX_W, max(n.y for n in nodes) + 2))
    # Stacked (normal above reduction): cells are wider than tall, so this keeps the text legible.
    w = max(s[0] for s in sizes)
    h = sum(s[1] for s in sizes)
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, w * 0.55), max(5.0, h * 0.55) + 0.4),
                             gridspec_kw={"height_ratios": [s[1] for s in sizes]})
    for ax, (name, cell) in zip(axes, genotype.cells):
        label = "Normal Cell" if name == "normal" else "Reduction Cell"
        _draw_cell(ax, cell, label, reduction=name == "reduce")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def op_labels(genotype: Genotype | NB201Cell) -> list[str]:
    """Every op name the drawing shows, in order of appearance."""
    if isinstance(genotype, NB201Cell):
        return list(genotype.ops)
    return [op for _, cell in genotype.cells for blk in cell.blocks for op in blk.ops]


def check_figure_path(path: str | Path, what: str = "draw") -> Path:
    """A path a figure can be written to: a FORMATS suffix (which chooses the format), an existing folder, and
    a new path or a regular file (nasnet.paths.output_file). Checked before anything is drawn or printed."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in FORMATS:
        raise NasnetError(f"cannot {what} to {path.name!r}: use a file ending in {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise NasnetError(f"cannot {what} to {path}: folder {path.parent} does not exist")
    return output_file(path)


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """Write a matplotlib figure atomically (its format from the suffix), then close it."""
    import matplotlib
    import matplotlib.pyplot as plt

    path = Path(path)
    with replacing(path) as tmp, matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(tmp, format=path.suffix.lower()[1:], **kwargs)
    plt.close(fig)
    return path


def draw_genotype(genotype: Genotype | NB201Cell, path: str | Path, title: str | None = None) -> Path:
    """Draw an architecture (both cells of a genotype, or a NAS-Bench-201 cell) to `path` (.svg, .png or
    .pdf). Returns the path written."""
    import matplotlib

    matplotlib.use("Agg", force=False)

    path = check_figure_path(path)
    fig = figure_for(genotype, title)
    meta = {"Title": title or ("NAS-Bench-201 cell" if isinstance(genotype, NB201Cell) else "NASNet cells")}
    if path.suffix.lower() == ".png":
        meta["Description"] = f"{genotype}"
    return save_figure(fig, path, dpi=150, metadata=meta)
