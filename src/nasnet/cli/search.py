"""`nasnet search`: architecture search with PPO / REINFORCE / random search / regularized evolution,
optionally with ASHA early stopping and a cost-aware reward (paper §3, A.2-A.3).

A run is a directory (RUN_DIR/config.json, trials.db, controller.pt, best.json, trials.csv);
`nasnet search --run-dir DIR` on an existing run continues it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from ..arch.space import NASNET_SPACES
from ..paths import output_folder
from ..search.run_dir import CONFIG_FILE, check_start, is_run_dir, load_run_config
from ..text import plural
from ._search_args import add_search_arguments
from ._search_flags import flag_words, resolve

COMMAND = "search"
HELP = "search for a cell: controller + work queue of child trainings (continue a run with --run-dir)"
ORDER = 40


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", help="run directory; an existing run is continued (default: runs/search-TIMESTAMP)")
    add_search_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--report", action="store_true",
                   help="write RUN_DIR/report/report.html (nasnet report) after every controller update and at "
                        "the end")


def _sigterm(signum, frame):
    raise KeyboardInterrupt


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
    run_dir = Path(args.run_dir or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")
    output_folder(run_dir)
    with flag_words(args, stored=(run_dir / CONFIG_FILE).is_file()):
        config = resolve(args, load_run_config(run_dir), run_dir)
        from ..search.children import check_child_settings

        check_child_settings(config)        # the child's settings and its data
        check_start(config, run_dir)
        return _search(args, config, run_dir)


def _search(args: argparse.Namespace, config, run_dir: Path) -> int:
    import json

    from ..search.loop import Search  # imports torch (the controller): after the checks, so a mistake is told at once
    from ..search.progress import ProgressBar

    previous = signal.signal(signal.SIGTERM, _sigterm)
    reporter = _Reporter(run_dir) if args.report else None
    progress = ProgressBar() if not args.quiet and not args.json else False
    search = Search(config, run_dir, progress=progress, on_update=reporter)
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
        print(json.dumps(_summary_json(summary), indent=2))
        return 0
    c = summary.counts
    print(f"run directory: {run_dir}")
    promoted = f", {plural(summary.promotions, 'ASHA promotion')}" if summary.promotions else ""
    print(f"children: {c['done']} done, {c['failed']} failed, {c['diverged']} diverged{promoted}; "
          f"{plural(summary.epochs, 'child-epoch')}; {plural(summary.updates, 'controller update')}; "
          f"{summary.wall_seconds:.1f} s")
    print(summary.controller_note())
    if note := summary.samples_note():
        print(note)
    if summary.best_genotype is None:
        print("no child finished successfully; see trials.csv for the errors")
        return 1
    what = "reward after the top-k retraining" if summary.stage == "final" else "reward"
    print(f"best: trial {summary.best_trial}, {what} {summary.best_reward:.4f}")
    if summary.pick and summary.pick.get("mean") is not None:
        p = summary.pick
        spread = f" +- {p['std']:.4f}" if p.get("std") is not None else ""
        print(f"pick: trial {p['trial']} retrained with {len(p['rewards'])} more seed(s): mean {p['mean']:.4f}{spread}")
    if summary.test_accuracy is not None:
        print(f"its test accuracy: {summary.test_accuracy:.4f} (reported only; no selection used it)")
    print(f"genotype: {summary.best_genotype}")
    best = run_dir / "best.json"
    print(f"next: nasnet show {best}   (draw the cells)")
    print(f"      nasnet report {run_dir}   (plots and one HTML page)")
    if config.space in NASNET_SPACES:
        print(f"      nasnet train --genotype {best} --data {config.child.data}   (train it for real, the data's recipe)")
    return 0


def _summary_json(summary) -> dict:
    """What `--json` prints: the summary's fields a script reads."""
    return {
        "run_dir": str(summary.run_dir), "best_genotype": summary.best_genotype, "best_reward": summary.best_reward,
        "best_trial": summary.best_trial, "stage": summary.stage, "counts": summary.counts,
        "updates": summary.updates, "wall_seconds": summary.wall_seconds, "epochs": summary.epochs,
        "promotions": summary.promotions, "policy_entropy": summary.policy_entropy,
        "uniform_entropy": summary.uniform_entropy, "pick": summary.pick, "test_accuracy": summary.test_accuracy,
        "samples": summary.samples,
    }
