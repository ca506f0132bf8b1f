"""`nasnet search`: architecture search with PPO / REINFORCE / random search (paper §3, A.2-A.3).

A run is a directory (RUN_DIR/config.json, trials.db, controller.pt, best.json, trials.csv);
`nasnet search --run-dir DIR` on an existing run continues it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from ..atomic import check_writable_dir
from ..search.config import DEFAULT_CHILD_FN
from ..search.run_dir import is_run_dir, load_run_config
from ..text import plural
from ._search_args import add_search_arguments, changes_from_args, check_child, fresh_config

COMMAND = "search"
HELP = "search for a cell: controller + work queue of child trainings (continue a run with --run-dir)"
ORDER = 40


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", help="run directory; an existing run is continued (default: runs/search-TIMESTAMP)")
    add_search_arguments(p)
    t = p.add_argument_group("top-k stage")
    t.add_argument("--top-k", type=int, help="after the search, retrain the K best architectures (default 0)")
    t.add_argument("--final-epochs", type=int, help="epochs of that retraining")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", action="store_true",
                   help="write RUN_DIR/report/report.html (nasnet report) after every controller update and at "
                        "the end")


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def resolve_config(args: argparse.Namespace, run_dir: Path):
    stored = load_run_config(run_dir)
    base = stored if stored is not None else fresh_config(args)
    return base.replace(**changes_from_args(args, base))


class _Reporter:
    """`--report`: regenerate the run's report; a failure is logged once and never stops the search."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.search = None
        self.warned = False

    def __call__(self, update=None) -> None:
        from ..report import make_report

        try:
            make_report([self.run_dir], self.run_dir / "report")
        except Exception as err:   # noqa: BLE001 - the report is a view; the search goes on without it
            if not self.warned:
                message = f"warning: could not write the report ({type(err).__name__}: {err})"
                self.search.log(message) if self.search is not None else print(message, file=sys.stderr)
                self.warned = True


def run(args: argparse.Namespace) -> int:
    import json

    from ..search.loop import Search  # imports torch (the controller)

    run_dir = Path(args.run_dir or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    config = resolve_config(args, run_dir)
    check_child(config)
    check_writable_dir(run_dir)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    reporter = _Reporter(run_dir) if args.report else None
    search = Search(config, run_dir, progress=not args.quiet and not args.json, on_update=reporter)
    if reporter is not None:
        reporter.search = search
    try:
        summary = search.run()
    except KeyboardInterrupt:
        if reporter is not None and is_run_dir(run_dir):
            reporter()
        print(f"nasnet search: interrupted; the run is saved. Continue it with: nasnet search --run-dir {run_dir}",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if reporter is not None:
        reporter()
        print(f"report: {run_dir / 'report' / 'report.html'}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "run_dir": str(summary.run_dir), "best_genotype": summary.best_genotype, "best_reward": summary.best_reward,
            "best_trial": summary.best_trial, "stage": summary.stage, "counts": summary.counts,
            "updates": summary.updates, "wall_seconds": summary.wall_seconds,
        }, indent=2))
        return 0
    c = summary.counts
    print(f"run directory: {run_dir}")
    print(f"children: {c['done']} done, {c['failed']} failed, {c['diverged']} diverged; "
          f"{plural(summary.updates, 'controller update')}; {summary.wall_seconds:.1f} s")
    if summary.best_genotype is None:
        print("no child finished successfully; see trials.csv for the errors")
        return 1
    what = ("reward after the top-k retraining" if summary.stage == "final" else
            "reward (validation accuracy)" if config.child.fn == DEFAULT_CHILD_FN else "reward")
    print(f"best: trial {summary.best_trial}, {what} {summary.best_reward:.4f}")
    print(f"genotype: {summary.best_genotype}")
    return 0
