"""What a report shows about one run directory, read without writing to it (paper §3, §4.4).

`load_run(path)` reads `RUN_DIR/trials.db` through the trial store's read-only API
(`TrialStore(path, readonly=True).snapshot()`: one transaction, a consistent view while `nasnet
search` keeps writing), plus `config.json` and `best.json` when they exist. Nothing here assumes
the run is finished: trials may be queued or running, none may have finished, every one may have
failed; the figures and the page show whatever is there.

`find_runs(paths)` turns command-line paths into run directories: a run directory stands for
itself, and a directory holding run directories (the `--run-dir` of `nasnet compare`: `ppo-seed0`,
`random-seed0`, ...) stands for all of them, so its halves can be overlaid.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import NasnetError
from ..search import run_dir as files
from ..search.config import SearchConfig
from ..search.curves import DEFAULT_KS, sampled_rewards, top_k_curves
from ..search.store import TERMINAL, FinalTrial, RungResult, Trial, TrialStore


@dataclass
class RunData:
    """One run directory as the report sees it: the store's snapshot, the config and best.json."""

    path: Path
    name: str
    config: dict | None
    best: dict | None
    trials: list[Trial]
    updates: list[dict]
    finals: list[FinalTrial]
    status_counts: dict[str, int] = field(default_factory=dict)
    ranked: list[Trial] = field(default_factory=list)     # distinct done trials, best first (TrialStore.top)
    curves: list[dict] = field(default_factory=list)      # nasnet.search.curves.top_k_curves rows
    rungs: list[RungResult] = field(default_factory=list)  # ASHA: every rung job
    read_at: float = field(default_factory=time.time)

    @property
    def strategy(self) -> str | None:
        return (self.config or {}).get("strategy", {}).get("name")

    @property
    def asha_rungs(self) -> list[int]:
        """The rungs' epochs of an ASHA run, else []."""
        stop = (self.config or {}).get("early_stop") or {}
        return list(stop.get("rungs") or []) if stop.get("name") == "asha" else []

    @property
    def cost(self) -> dict | None:
        """The cost objective ({"name", "target", "weight"}) of a cost-aware run, else None."""
        cost = (self.config or {}).get("cost") or {}
        return cost if cost.get("name") else None

    @property
    def budget(self) -> int | None:
        return (self.config or {}).get("children")

    @property
    def label(self) -> str:
        """Legend text: the run's name, with its strategy unless the name already says it."""
        s = self.strategy
        return self.name if not s or s in self.name else f"{self.name} ({s})"

    def counts(self) -> dict[str, int]:
        return dict(self.status_counts)

    @cached_property
    def started_at(self) -> float | None:
        times = [t.created_at for t in self.trials if t.created_at is not None]
        return min(times) if times else None

    @cached_property
    def last_activity(self) -> float | None:
        times = [x for t in self.trials for x in (t.created_at, t.started_at, t.finished_at) if x]
        times += [x for f in self.finals for x in (f.started_at, f.finished_at) if x]
        return max(times) if times else None

    def finished(self) -> list[Trial]:
        """Terminal trials in the order their results arrived (result_seq)."""
        return sorted((t for t in self.trials if t.result_seq is not None), key=lambda t: t.result_seq)

    def top(self, k: int) -> list[Trial]:
        """The k best distinct done trials by reward (ties: earlier first)."""
        return self.ranked[:k]

    @property
    def complete(self) -> bool:
        """Every trial of the budget and of the top-k stage has finished (a continued run may still add more)."""
        c = self.counts()
        top_k = int((self.config or {}).get("top_k") or 0)
        return bool(self.budget) and (len(self.trials) >= self.budget or self._budget_exhausted()) \
            and not c["queued"] and not c["running"] and all(g.status in TERMINAL for g in self.rungs) \
            and len(self.finals) >= len(self.top(top_k)) and all(f.status in TERMINAL for f in self.finals)

    def _budget_exhausted(self) -> bool:
        """Whether the run's epoch budget leaves room for no further child or promotion."""
        try:
            config = SearchConfig.from_dict(self.config or {})
        except NasnetError:       # a config this nasnet cannot read: no budget to judge by
            return False
        uncached = sum(t.cached_from is None for t in self.trials)
        return config.budget_exhausted(config.committed_epochs(uncached, [g.rung for g in self.rungs if g.rung > 0]))


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Read one run directory; a missing or unreadable one raises NasnetError (one line)."""
    path = Path(path)
    if not path.exists():
        raise NasnetError(f"{path}: no such run directory")
    if not path.is_dir():
        raise NasnetError(f"{path}: not a directory; give a run directory (the --run-dir of nasnet search)")
    db_path = path / files.STORE_FILE
    if not db_path.is_file():
        raise NasnetError(f"{path} holds no {files.STORE_FILE}: not a search run directory (nasnet search --run-dir "
                          f"writes one)")
    try:
        with TrialStore(db_path, readonly=True) as store:
            snap = store.snapshot()
    except sqlite3.DatabaseError as err:
        raise NasnetError(f"{db_path}: not a readable trial store ({err})") from None
    return RunData(path=path, name=name or path.name, config=files.read_json(path / files.CONFIG_FILE),
                   best=files.read_best(path), trials=snap.trials, updates=snap.updates, finals=snap.finals,
                   status_counts=snap.counts, ranked=snap.ranked, rungs=snap.rungs,
                   curves=top_k_curves(sampled_rewards(snap.trials), DEFAULT_KS))


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named by `paths`; a folder of runs (nasnet compare's) expands to its runs."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not files.is_run_dir(p):
            subs = sorted(d for d in p.iterdir() if d.is_dir() and files.is_run_dir(d))
            if subs:
                out += subs
                continue
        out.append(p)
    seen, unique = set(), []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def run_names(paths: list[Path]) -> list[str]:
    """Short distinct names: the folder name, with its parent's when two runs share a folder name."""
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
