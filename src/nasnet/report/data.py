"""What a report shows about one run directory, read without writing to it (paper §3, §4.4).

`load_run(path)` reads `RUN_DIR/trials.db` through a read-only SQLite connection (WAL mode lets it
read a consistent snapshot while `nasnet search` keeps writing), plus `config.json` and `best.json`
when they exist. Nothing here assumes the run is finished: trials may be queued or running, none
may have finished, every one may have failed; the figures and the page show whatever is there.

`find_runs(paths)` turns command-line paths into run directories: a run directory stands for
itself, and a directory holding run directories (the `--run-dir` of `nasnet compare`: `ppo-seed0`,
`random-seed0`, ...) stands for all of them, so its halves can be overlaid.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

from ..errors import NasnetError
from ..search.curves import DEFAULT_KS, store_rewards, top_k_curves

STORE_FILE = "trials.db"       # the names nasnet.search.loop writes (not imported: that pulls in more)
CONFIG_FILE = "config.json"
BEST_FILE = "best.json"


@dataclass
class RunData:
    """One run directory as the report sees it. Trials and updates are plain dicts of the store's rows."""

    path: Path
    name: str
    config: dict | None
    best: dict | None
    trials: list[dict]
    updates: list[dict]
    finals: list[dict]
    curves: list[dict] = field(default_factory=list)    # nasnet.search.curves.top_k_curves rows
    read_at: float = field(default_factory=time.time)

    @property
    def strategy(self) -> str | None:
        return (self.config or {}).get("strategy", {}).get("name")

    @property
    def budget(self) -> int | None:
        return (self.config or {}).get("children")

    @property
    def label(self) -> str:
        """Legend text: the run's name, with its strategy unless the name already says it."""
        s = self.strategy
        return self.name if not s or s in self.name else f"{self.name} ({s})"

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("done", "failed", "diverged", "queued", "running"), 0)
        for t in self.trials:
            out[t["status"]] = out.get(t["status"], 0) + 1
        return out

    @cached_property
    def started_at(self) -> float | None:
        times = [t["created_at"] for t in self.trials if t["created_at"] is not None]
        return min(times) if times else None

    @cached_property
    def last_activity(self) -> float | None:
        times = [x for t in self.trials for x in (t["created_at"], t["started_at"], t["finished_at"]) if x]
        times += [x for f in self.finals for x in (f["started_at"], f["finished_at"]) if x]
        return max(times) if times else None

    def finished(self) -> list[dict]:
        """Terminal trials in the order their results arrived (result_seq)."""
        return sorted((t for t in self.trials if t["result_seq"] is not None), key=lambda t: t["result_seq"])

    def top(self, k: int) -> list[dict]:
        """The k best distinct done trials by reward (ties: earlier first), as TrialStore.top."""
        done = [t for t in self.trials if t["status"] == "done" and t["reward"] is not None
                and t["cached_from"] is None]
        return sorted(done, key=lambda t: (-t["reward"], t["id"]))[:k]

    @property
    def complete(self) -> bool:
        """Every trial of the budget and of the top-k stage has finished (a continued run may still add more)."""
        c = self.counts()
        top_k = int((self.config or {}).get("top_k") or 0)
        return bool(self.budget) and len(self.trials) >= self.budget and not c["queued"] and not c["running"] \
            and len(self.finals) >= len(self.top(top_k)) \
            and all(f["status"] in ("done", "failed", "diverged") for f in self.finals)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None          # being replaced right now, or damaged: the report goes on without it
    return data if isinstance(data, dict) else None


def _parse(value: str | None):
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def connect_readonly(db_path: Path) -> sqlite3.Connection:
    """A read-only connection: it can never modify a live run's store (nor create one by mistake)."""
    uri = "file:" + quote(str(db_path.resolve())) + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    return db


def load_run(path: str | Path, name: str | None = None) -> RunData:
    """Read one run directory; a missing or unreadable one raises NasnetError (one line)."""
    path = Path(path)
    if not path.exists():
        raise NasnetError(f"{path}: no such run directory")
    if not path.is_dir():
        raise NasnetError(f"{path}: not a directory; give a run directory (the --run-dir of nasnet search)")
    db_path = path / STORE_FILE
    if not db_path.is_file():
        raise NasnetError(f"{path} holds no {STORE_FILE}: not a search run directory (nasnet search --run-dir "
                          f"writes one)")
    try:
        db = connect_readonly(db_path)
        try:
            with db:       # one read transaction: a consistent snapshot while the search writes
                db.execute("BEGIN")
                trials = [dict(r) for r in db.execute("SELECT * FROM trials ORDER BY id")]
                updates = [dict(r) for r in db.execute("SELECT * FROM updates ORDER BY version")]
                finals = [dict(r) for r in db.execute("SELECT * FROM final ORDER BY trial_id")]
                rewards = store_rewards(SimpleNamespace(db=db))     # it reads `store.db`
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        raise NasnetError(f"{db_path}: not a readable trial store ({err})") from None
    for t in trials + finals:
        t["metrics"] = _parse(t["metrics"])
    for t in trials:
        t["decisions"] = _parse(t["decisions"])
        t["seconds"] = trial_seconds(t)
    return RunData(path=path, name=name or path.name, config=_read_json(path / CONFIG_FILE),
                   best=_read_json(path / BEST_FILE), trials=trials, updates=updates, finals=finals,
                   curves=top_k_curves(rewards, DEFAULT_KS))


def trial_seconds(t: dict) -> float | None:
    """Wall time of a trial's (last) execution: finished - started; None for cached or unfinished ones."""
    if t["cached_from"] is not None or not t["finished_at"] or not t["started_at"]:
        return None
    s = t["finished_at"] - t["started_at"]
    return s if math.isfinite(s) and s >= 0 else None


def is_run_dir(path: Path) -> bool:
    return (path / STORE_FILE).is_file()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named by `paths`; a folder of runs (nasnet compare's) expands to its runs."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not is_run_dir(p):
            subs = sorted(d for d in p.iterdir() if d.is_dir() and is_run_dir(d))
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
