"""Plain-text tables for the command line."""

from __future__ import annotations


def format_table(headers: list[str], rows: list[list[object]], align: str | None = None) -> str:
    """Columns padded to width; `align` holds 'l' or 'r' per column (default: left)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(r: list[str]) -> str:
        return "  ".join(v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(r, widths, align)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])
