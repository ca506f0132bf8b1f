"""Keeping a report current while a search runs (`nasnet report --watch`).

The watcher polls the run directories' files (trials.db and its WAL, best.json, config.json) and
regenerates the report whenever one of them changed since the last report, waiting at least as long
as the last report took before looking again (so a busy search never keeps it making reports more
than half of the time). While it watches, the
page carries a refresh meta tag so an open browser tab reloads itself; when the watcher stops
(Ctrl-C, SIGTERM) it writes the page once more without it. Paths are re-expanded on every poll, so
watching a `nasnet compare` folder picks up each run as it starts, and watching a run directory
that does not exist yet waits for the search to create it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from ..errors import NasnetError
from ..search.run_dir import BEST_FILE, CONFIG_FILE, STORE_FILE
from ..text import plural
from . import ReportResult, make_report
from .data import find_runs

WATCHED = (STORE_FILE, STORE_FILE + "-wal", BEST_FILE, CONFIG_FILE)


def signature(run_dirs: list[Path]) -> tuple:
    """What changes when a search writes: each watched file's (mtime, size), or None while absent."""
    out = []
    for d in run_dirs:
        for name in WATCHED:
            try:
                st = os.stat(Path(d) / name)
                out.append((str(d), name, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(d), name, None))
    return tuple(out)


def watch(paths: list, out_dir: Path | None, interval: float = 5.0, refresh: float = 5.0, cells: int = 3,
          log: Callable[[str], None] = print, stop: Callable[[], bool] | None = None) -> ReportResult | None:
    """Regenerate the report on every change until interrupted (KeyboardInterrupt) or `stop()` is true.

    Returns the last report written (the final one, without the refresh tag), or None if none could be.
    """
    from . import figures  # noqa: F401 - import matplotlib now, so the first report comes quickly

    last_sig, last, waiting_for = None, None, None
    try:
        while stop is None or not stop():
            runs = find_runs(paths)
            sig = signature(runs)
            if sig != last_sig:
                try:
                    last = make_report(runs, out_dir, refresh=refresh, cells=cells)
                    last_sig, waiting_for = sig, None
                    c = [r.counts() for r in last.runs]
                    done = sum(x["done"] + x["failed"] + x["diverged"] for x in c)
                    log(f"{time.strftime('%H:%M:%S')} report updated: {last.path} ({done} of "
                        f"{plural(last.trials, 'trial')} finished, {last.seconds:.1f} s)")
                except NasnetError as err:
                    if str(err) != waiting_for:
                        log(f"waiting: {err}")
                        waiting_for = str(err)
                    last_sig = None
            # at most half of the time spent making reports, however often a busy search writes
            time.sleep(max(interval, last.seconds if last is not None and last_sig == sig else 0.0))
    except KeyboardInterrupt:
        pass
    try:
        runs = find_runs(paths)
        final = make_report(runs, out_dir, refresh=None, cells=cells)
        log(f"stopped watching; final report: {final.path}")
        return final
    except NasnetError as err:
        log(f"stopped watching; no report written ({err})")
        return last
