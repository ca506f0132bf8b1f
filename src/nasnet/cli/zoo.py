"""`nasnet zoo`: every zoo model with its parameter and mult-add counts beside the paper's.

The published counts and their sources are in docs/reference-configs.md.
"""

from __future__ import annotations

import argparse
import json

from ._table import format_table

COMMAND = "zoo"
HELP = "list the model zoo with parameter and mult-add counts beside the paper's"
ORDER = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--plot", metavar="OUT.png",
                   help="also plot the zoo on the paper's Figure 5 axes (top-1 vs mult-adds and vs params)")


def zoo_rows() -> list[dict]:
    """One dict per zoo model: our counts and the paper's numbers."""
    from ..model.counting import count
    from ..zoo.table import get_entry, list_models

    rows = []
    for name in list_models():
        entry = get_entry(name)
        cfg = entry.config
        c = count(cfg)
        rows.append({
            "name": name,
            "n_at_f": cfg.name,
            "params": c.params,
            "params_with_bn_stats": c.params_with_bn_stats,
            "mult_adds": c.mult_adds,
            "image_size": cfg.image_size,
            "num_classes": cfg.num_classes,
            "paper_params": entry.paper_params,
            "paper_mult_adds": entry.paper_mult_adds,
            "paper_top1": entry.paper_top1,
            "description": entry.description,
        })
    return rows


def _plot(rows: list[dict], path) -> None:
    import sys

    from ..report.drawing import save_figure
    from ..report.plots import zoo_figure

    save_figure(zoo_figure(rows), path, dpi=150)
    print(f"plot written to {path}", file=sys.stderr)


def _millions(v: int | None) -> str:
    return "-" if v is None else f"{v / 1e6:,.1f}M"


def run(args: argparse.Namespace) -> int:
    from ..report.drawing import check_figure_path

    plot = check_figure_path(args.plot, "plot") if args.plot else None
    rows = zoo_rows()
    if plot:
        _plot(rows, plot)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [
        [r["name"], r["n_at_f"], r["image_size"], r["num_classes"], f"{r['params']:,}",
         f"{r['params_with_bn_stats']:,}", _millions(r["mult_adds"]), _millions(r["paper_params"]),
         _millions(r["paper_mult_adds"])]
        for r in rows
    ]
    print(format_table(
        ["model", "N @ F", "image", "classes", "params", "params+BN stats", "mult-adds", "paper params",
         "paper mult-adds"],
        table, "llrrrrrrr"))
    print("\nparams: trainable, without the auxiliary head; mult-adds: conv + linear, one image at the "
          "model's size.\nThe paper's 7 @ 2304, 5 @ 1538 and 7 @ 1920 are not reproducible from the released "
          "code with the plain N @ F reading (see docs/reference-configs.md).")
    return 0
