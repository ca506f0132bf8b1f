"""What a running search reports, and a progress bar that shows it (paper §3).

The search loop never prints: it hands a `SearchProgress` its status after each result (and every
few seconds while children run) and its notes (a resume, a retry, a failure, the top-k stage), and
the caller decides what to show. `nasnet search` and `nasnet compare` supply a `ProgressBar` (tqdm
on stderr); `SearchProgress` itself shows nothing. Importing this module does not import tqdm.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchStatus:
    """Where the search stage stands: children finished of `total`, the best reward so far, the mean of
    the latest successful first results (`recent`), children finished per hour in this session,
    ASHA promotions made (None without ASHA) and children failed or diverged."""

    finished: int
    total: int
    best: float | None
    recent: float | None
    per_hour: float | None
    promotions: int | None
    failed: int


class SearchProgress:
    """Receives a search's progress; this base shows nothing. Subclass it, or give a `ProgressBar`."""

    def update(self, status: SearchStatus) -> None:
        """The search stage's status changed (a result arrived, or time passed)."""

    def note(self, message: str) -> None:
        """One line worth telling a user (a resume, a retry, a failure, a stage starting)."""

    def close(self) -> None:
        """The search stage has ended (the top-k stage may still send notes)."""


class ProgressBar(SearchProgress):
    """A tqdm bar on stderr: children finished, best, recent, children/h, promoted, failed; notes are
    written above it. Reusable: after `close`, the next `update` opens a new bar."""

    def __init__(self, file=None):
        self.file = file or sys.stderr
        self._bar = None

    def update(self, status: SearchStatus) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=status.total, initial=status.finished, desc="search", unit="child",
                             file=self.file, dynamic_ncols=True, mininterval=0.5)
        post = {"best": _number(status.best), "recent": _number(status.recent),
                "children/h": "-" if status.per_hour is None else f"{status.per_hour:.0f}"}
        if status.promotions is not None:
            post["promoted"] = status.promotions
        if status.failed:
            post["failed"] = status.failed
        self._bar.set_postfix(post, refresh=False)
        if status.finished > self._bar.n:
            self._bar.update(status.finished - self._bar.n)     # redraws, at most every mininterval
        else:
            self._bar.refresh()

    def note(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=self.file)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
