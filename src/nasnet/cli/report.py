"""`nasnet report RUN_DIR [RUN_DIR ...]`: a search's plots and a self-contained HTML page.

One run directory gives its report in RUN_DIR/report/; several (or a `nasnet compare` folder, which
stands for all its runs) are overlaid on the same axes. `--watch` keeps the report current while
the search runs.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

from ..errors import NasnetError
from ..paths import output_folder
from ..report import default_out_dir, make_report
from ..report.data import find_runs
from ..text import plural
from ._parse import count

COMMAND = "report"
HELP = "plots and a self-contained report.html of search runs (overlaid when several); --watch keeps it current"
ORDER = 50
INERT = [(flag, lambda a: a.watch, "without --watch") for flag in ("interval", "refresh")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="a search run directory, or a nasnet compare folder (all its runs); several are overlaid")
    p.add_argument("--out", metavar="DIR", help="folder for report.html and the plots (default: RUN_DIR/report, "
                                                "or report/ beside several runs that share a folder)")
    p.add_argument("--cells", type=count(0), default=3, metavar="K",
                   help="draw each run's K best distinct cells (default 3; 0: none)")
    p.add_argument("--watch", action="store_true",
                   help="regenerate whenever the runs change, until Ctrl-C; the page reloads itself meanwhile")
    p.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help="--watch: seconds between checks for changes (default 5)")
    p.add_argument("--refresh", type=float, default=5.0, metavar="S",
                   help="--watch: the page reloads itself every S seconds (default 5)")


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if not (0 < args.interval < math.inf and 0 < args.refresh < math.inf):
        raise NasnetError("--interval and --refresh must be positive numbers of seconds")
    out = output_folder(args.out) if args.out else None
    if args.watch:
        from ..report.watch import watch

        if out is None:
            out = default_out_dir([Path(p) for p in args.run_dirs])
        previous = signal.signal(signal.SIGTERM, _sigterm)
        try:
            print(f"watching {', '.join(args.run_dirs)}; report: {out / 'report.html'} (Ctrl-C to stop)",
                  file=sys.stderr)
            watch(args.run_dirs, out, interval=args.interval, refresh=args.refresh, cells=args.cells,
                  log=lambda m: print(m, file=sys.stderr, flush=True))
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0
    runs = find_runs(args.run_dirs)
    result = make_report(runs, out, cells=args.cells)
    counts = [r.counts() for r in result.runs]
    failed = sum(c["failed"] + c["diverged"] for c in counts)
    print(f"report: {result.path} ({plural(len(result.runs), 'run')}, {plural(result.trials, 'trial')}, {failed} "
          f"failed or diverged; {result.seconds:.1f} s)")
    print(f"plots: {', '.join(p.name for p in result.files if p.suffix == '.png')} in {result.path.parent}")
    return 0
