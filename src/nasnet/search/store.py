"""The trial store: every proposal, its status, reward and metrics, in SQLite (paper §3, §4.4).

`RUN_DIR/trials.db` is the search's memory and its work queue. It is opened in WAL mode, so a report
can read it while the search writes, and every state change is committed before the driver acts on
it, so a driver killed at any moment loses nothing: on resume, finished trials are kept and trials
that were queued or running are run again with the same architecture and payload.

This module is the only code that speaks SQL. Everything else sees values: a `Trial` (frozen) per
row of the search, a `FinalTrial` per row of the top-k stage, both with a `Status`; controller
updates are plain dicts. `TrialStore(path, readonly=True)` is the reader the report uses: it can
never modify a live run's store, nor create one by mistake.

Schema (version 1)::

    trials                         one row per sampled architecture, 1-based ids in sampling order
      id              INTEGER PRIMARY KEY
      genotype        TEXT     the genotype's text form (nasnet.arch.genotype)
      decisions       TEXT     JSON list of the 2 x 5B decision indices (nasnet.arch.space order)
      log_prob        REAL     log-probability of the decisions under the sampling policy
      entropy         REAL     the sampling policy's entropy along them (nats, summed)
      policy_version  INTEGER  number of controller updates made before sampling
      payload         TEXT     the JSON payload given to the child function
      status          TEXT     queued | running | done | failed | diverged
      reward          REAL     the child's reward (validation accuracy); NULL unless done
      policy_reward   REAL     what the controller was told (the failure reward if not done)
      metrics         TEXT     JSON of the child's result (val_accuracy, loss_curve, params, ...)
      error           TEXT     error text of a failure, or of retried infrastructure failures
      worker          TEXT     host:pid that ran it; "cache" when the result was reused
      attempts        INTEGER  times it was handed to an executor
      cached_from     INTEGER  the trial whose result was reused (an architecture sampled again)
      result_seq      INTEGER  order in which results reached the controller (1, 2, ...)
      created_at, started_at, finished_at   REAL unix seconds

    updates                        one row per controller update (policy entropy over updates)
      version INTEGER PRIMARY KEY, time REAL, num_results INTEGER, told INTEGER, mean_reward REAL,
      baseline REAL, entropy REAL, loss REAL, seconds REAL

    final                          the top-k stage: the K best architectures retrained longer
      trial_id INTEGER PRIMARY KEY (the search trial), genotype TEXT, search_reward REAL,
      epochs INTEGER, payload TEXT, status TEXT, reward REAL, metrics TEXT, error TEXT,
      worker TEXT, attempts INTEGER, created_at, started_at, finished_at REAL

    meta                           key TEXT PRIMARY KEY, value TEXT (schema_version, ...)
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from ..atomic import replacing
from ..errors import NasnetError

SCHEMA_VERSION = 1


class Status(str, Enum):
    """Where a trial stands. A str, so it compares equal to its stored text ("done" == Status.DONE)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DIVERGED = "diverged"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.DIVERGED})


class Stage(str, Enum):
    """The search proper, or the top-k stage that retrains its best architectures."""

    SEARCH = "search"
    FINAL = "final"


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class DamagedStore(NasnetError):
    """Bytes of the store that no longer decode (a damaged file): one line, never a traceback."""


def _text(raw: bytes) -> str:
    """SQLite's text_factory: UTF-8, or a one-line error for text whose bytes were damaged."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedStore(f"a text value is not valid UTF-8: {raw[:40]!r}...") from None


def _row_values(row: sqlite3.Row) -> dict[str, Any]:
    """A row's columns with the JSON columns decoded and the status as a Status."""
    d = dict(row)
    d["payload"], d["metrics"] = _json(d["payload"]), _json(d["metrics"])
    try:
        d["status"] = Status(d["status"])
    except ValueError:
        raise DamagedStore(f"a row has the unknown status {d['status']!r}") from None
    return d


@dataclass(frozen=True)
class Trial:
    """One sampled architecture and what became of it (a row of `trials`)."""

    id: int
    genotype: str
    decisions: tuple[int, ...]
    log_prob: float | None
    entropy: float | None
    policy_version: int | None
    payload: dict | None
    status: Status
    reward: float | None
    policy_reward: float | None
    metrics: dict | None
    error: str | None
    worker: str | None
    attempts: int
    cached_from: int | None
    result_seq: int | None
    created_at: float | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Trial":
        d = _row_values(row)
        decisions = _json(d["decisions"])
        if not isinstance(decisions, list) or not all(isinstance(x, int) for x in decisions):
            raise DamagedStore(f"trial {d['id']}: its decisions {str(d['decisions'])[:40]!r} are not a list of "
                               "integers")
        d["decisions"] = tuple(decisions)
        return cls(**d)

    @property
    def key(self) -> int:
        return self.id

    @property
    def seconds(self) -> float | None:
        """Wall time of the (last) execution: finished - started; None for reused or unfinished trials."""
        if self.cached_from is not None or not self.finished_at or not self.started_at:
            return None
        s = self.finished_at - self.started_at
        return s if math.isfinite(s) and s >= 0 else None


@dataclass(frozen=True)
class FinalTrial:
    """One architecture of the top-k stage, retrained with the final budget (a row of `final`)."""

    trial_id: int
    genotype: str
    search_reward: float | None
    epochs: int | None
    payload: dict | None
    status: Status
    reward: float | None
    metrics: dict | None
    error: str | None
    worker: str | None
    attempts: int
    created_at: float | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "FinalTrial":
        return cls(**_row_values(row))

    @property
    def key(self) -> int:
        return self.trial_id


@dataclass(frozen=True)
class StoreSnapshot:
    """A store read at one moment: its trials, controller updates, top-k stage, status counts, and the
    distinct done trials ranked best first (what `TrialStore.top` returns)."""

    trials: list[Trial]
    updates: list[dict[str, Any]]
    finals: list[FinalTrial]
    counts: dict[str, int]
    ranked: list[Trial]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    genotype TEXT NOT NULL,
    decisions TEXT NOT NULL,
    log_prob REAL,
    entropy REAL,
    policy_version INTEGER,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    reward REAL,
    policy_reward REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cached_from INTEGER,
    result_seq INTEGER UNIQUE,
    created_at REAL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS trials_genotype ON trials(genotype);
CREATE INDEX IF NOT EXISTS trials_status ON trials(status);
CREATE TABLE IF NOT EXISTS updates (
    version INTEGER PRIMARY KEY,
    time REAL,
    num_results INTEGER,
    told INTEGER,
    mean_reward REAL,
    baseline REAL,
    entropy REAL,
    loss REAL,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS final (
    trial_id INTEGER PRIMARY KEY,
    genotype TEXT NOT NULL,
    search_reward REAL,
    epochs INTEGER,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    reward REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

# (table, key column) of each stage: the queue operations are the same for both.
_TABLES = {Stage.SEARCH: ("trials", "id"), Stage.FINAL: ("final", "trial_id")}

CSV_COLUMNS = ("id", "status", "reward", "policy_reward", "policy_version", "log_prob", "entropy", "attempts",
               "worker", "cached_from", "created_at", "started_at", "finished_at", "wall_seconds", "params",
               "error", "genotype")


class TrialStore:
    """The SQLite trial store of one run directory (`RUN_DIR/trials.db`).

    readonly: open an existing store for reading only (the report); it is never created or changed.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._copy: Path | None = None   # a private copy read instead (see _open_readonly)
        try:
            if readonly:
                self.db = self._open_readonly()
                self.db.row_factory = sqlite3.Row
                self.db.text_factory = _text
                return
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.text_factory = _text
            self._check_integrity()
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of this process (SIGKILL); FULL would also
            # survive power loss at the cost of an fsync per trial.
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self.db:
                self.db.executescript(_SCHEMA)
                row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise NasnetError(f"{self.path}: trial store schema {row[0]}, this nasnet reads {SCHEMA_VERSION}")
            self.snapshot()   # every row decodes (a search must not stop half-way on a damaged one)
        except DamagedStore as err:
            raise self._damaged(err) from None
        except sqlite3.DatabaseError as err:
            raise NasnetError(f"{self.path}: not a readable trial store ({err})") from None

    def _check_integrity(self) -> None:
        """A store whose bytes were damaged fails here, in one line, rather than in the middle of a search."""
        problems = [line for r in self.db.execute("PRAGMA quick_check(3)") for line in str(r[0]).splitlines()
                    if line.strip() and not line.startswith("***")]
        if problems != ["ok"]:
            raise DamagedStore(problems[0] if problems else "integrity check failed")

    def _damaged(self, err: DamagedStore) -> DamagedStore:
        if str(err).startswith(str(self.path)):
            return err
        return DamagedStore(f"{self.path}: the trial store is damaged ({err}); restore it from a backup or start a "
                            "new --run-dir")

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection that also works in a directory this process may not write.

        WAL mode needs the -shm index beside the database even to read. Where the directory is
        writable, or the search left its -wal and -shm behind, `mode=ro` reads everything. Otherwise a
        store without pending WAL frames (the search ended and checkpointed) is opened `immutable`,
        which needs no -shm; one with frames SQLite cannot index in place is copied with its -wal to a
        private temporary folder and read there, so no committed trial is missed."""
        resolved = self.path.resolve()
        uri = "file:" + quote(str(resolved))
        db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=10)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
            if os.access(resolved.parent, os.W_OK):
                raise
        wal = resolved.with_name(resolved.name + "-wal")
        if not wal.is_file() or wal.stat().st_size == 0:
            return sqlite3.connect(uri + "?immutable=1", uri=True)
        self._copy = Path(tempfile.mkdtemp(prefix="nasnet-store-"))
        for source in (resolved, wal):
            shutil.copyfile(source, self._copy / source.name)
        return sqlite3.connect(self._copy / resolved.name, timeout=10)

    def close(self) -> None:
        self.db.close()
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

    def __enter__(self) -> "TrialStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the work queue (both stages) --------------------------------------------------------
    def add(self, genotype: str, decisions: Iterable[int], log_prob: float, entropy: float, policy_version: int,
            payload_fn: Callable[[int], dict]) -> int:
        """Insert a queued trial; `payload_fn(trial_id)` builds its payload. Returns the id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO trials (genotype, decisions, log_prob, entropy, policy_version, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (genotype, json.dumps(list(decisions)), log_prob, entropy, policy_version, time.time()))
            tid = int(cur.lastrowid)
            self.db.execute("UPDATE trials SET payload=? WHERE id=?", (json.dumps(payload_fn(tid)), tid))
        return tid

    def add_final(self, trial: Trial, epochs: int | None, payload: dict) -> None:
        """Queue a search trial's architecture for the top-k stage (once: a second call changes nothing)."""
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO final (trial_id, genotype, search_reward, epochs, payload, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (trial.id, trial.genotype, trial.reward, epochs, json.dumps(payload), time.time()))

    def mark_running(self, key: int, stage: Stage = Stage.SEARCH) -> None:
        table, col = _TABLES[stage]
        with self.db:
            self.db.execute(f"UPDATE {table} SET status='running', attempts=attempts+1, started_at=? WHERE {col}=?",
                            (time.time(), key))

    def requeue(self, key: int, error: str | None = None, stage: Stage = Stage.SEARCH) -> None:
        """Back to the queue (an infrastructure failure to retry); the error is kept for the record."""
        table, col = _TABLES[stage]
        with self.db:
            self.db.execute(f"UPDATE {table} SET status='queued', error=? WHERE {col}=?", (error, key))

    def requeue_interrupted(self) -> int:
        """On resume or stop: trials left running (in either stage) go back to the queue."""
        with self.db:
            return sum(self.db.execute(f"UPDATE {table} SET status='queued' WHERE status='running'").rowcount
                       for table, _ in _TABLES.values())

    def finish(self, key: int, status: Status, reward: float | None, metrics: dict | None, error: str | None,
               worker: str | None, started_at: float | None = None, finished_at: float | None = None, *,
               stage: Stage = Stage.SEARCH, policy_reward: float | None = None, cached_from: int | None = None) -> None:
        """Record a terminal result. In the search stage the result also gets the next result sequence
        number (the order in which results reach the controller), with what the controller is told."""
        status = Status(status)
        if not status.terminal:
            raise ValueError(f"not a terminal status: {status!r}")
        metrics_text = None if metrics is None else json.dumps(metrics)
        with self.db:
            if stage is Stage.FINAL:
                self.db.execute(
                    "UPDATE final SET status=?, reward=?, metrics=?, error=?, worker=?, "
                    "started_at=COALESCE(?, started_at), finished_at=? WHERE trial_id=?",
                    (status.value, reward, metrics_text, error, worker, started_at, finished_at or time.time(), key))
                return
            seq = self.db.execute("SELECT COALESCE(MAX(result_seq), 0) + 1 FROM trials").fetchone()[0]
            self.db.execute(
                "UPDATE trials SET status=?, reward=?, policy_reward=?, metrics=?, error=?, worker=?, "
                "started_at=COALESCE(?, started_at), finished_at=?, cached_from=?, result_seq=? WHERE id=?",
                (status.value, reward, policy_reward, metrics_text, error, worker, started_at,
                 finished_at or time.time(), cached_from, seq, key))

    # -- reading -----------------------------------------------------------------------------
    def get(self, trial_id: int) -> Trial:
        row = self.db.execute("SELECT * FROM trials WHERE id=?", (trial_id,)).fetchone()
        if row is None:
            raise KeyError(f"no trial {trial_id}")
        return Trial.from_row(row)

    def final(self, trial_id: int) -> FinalTrial:
        row = self.db.execute("SELECT * FROM final WHERE trial_id=?", (trial_id,)).fetchone()
        if row is None:
            raise KeyError(f"no top-k trial {trial_id}")
        return FinalTrial.from_row(row)

    def get_stage(self, key: int, stage: Stage) -> Trial | FinalTrial:
        return self.final(key) if stage is Stage.FINAL else self.get(key)

    def trials(self) -> list[Trial]:
        """Every trial, in sampling order."""
        return [Trial.from_row(r) for r in self.db.execute("SELECT * FROM trials ORDER BY id")]

    def finals(self) -> list[FinalTrial]:
        return [FinalTrial.from_row(r) for r in self.db.execute("SELECT * FROM final ORDER BY trial_id")]

    def updates(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM updates ORDER BY version")]

    def snapshot(self) -> "StoreSnapshot":
        """Everything, read in one transaction: a consistent view while a search writes (the report's read)."""
        try:
            with self.db:
                self.db.execute("BEGIN")
                return StoreSnapshot(self.trials(), self.updates(), self.finals(), self.counts(),
                                     self.top(self.count()))
        except DamagedStore as err:
            raise self._damaged(err) from None

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def queued(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM trials WHERE status='queued' ORDER BY id")]

    def results_after(self, seq: int) -> list[Trial]:
        """Terminal trials whose results reached the controller after sequence number `seq`, in order."""
        rows = self.db.execute("SELECT * FROM trials WHERE result_seq > ? ORDER BY result_seq", (seq,))
        return [Trial.from_row(r) for r in rows]

    def first_with_genotype(self, genotype: str, before: int) -> Trial | None:
        """The earliest other trial of this architecture (a result to reuse, or one to wait for)."""
        row = self.db.execute("SELECT * FROM trials WHERE genotype=? AND id<? AND cached_from IS NULL "
                              "ORDER BY id LIMIT 1", (genotype, before)).fetchone()
        return None if row is None else Trial.from_row(row)

    def top(self, k: int) -> list[Trial]:
        """The k best done trials by reward (ties: earlier first), each architecture once."""
        rows = self.db.execute("SELECT * FROM trials WHERE status='done' AND reward IS NOT NULL "
                               "AND cached_from IS NULL ORDER BY reward DESC, id LIMIT ?", (k,))
        return [Trial.from_row(r) for r in rows]

    # -- controller updates ----------------------------------------------------------------
    def add_update(self, stats: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO updates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stats["version"], stats["time"], stats["num_results"], stats["told"], stats["mean_reward"],
                 stats["baseline"], stats.get("entropy"), stats.get("loss"), stats.get("seconds")))

    # -- export ----------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> None:
        """Write every trial as a CSV row (atomically: a reader never sees half a file)."""
        with replacing(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for t in self.trials():
                m = t.metrics or {}
                w.writerow([t.id, t.status.value, t.reward, t.policy_reward, t.policy_version, t.log_prob, t.entropy,
                            t.attempts, t.worker, t.cached_from, t.created_at, t.started_at, t.finished_at,
                            m.get("wall_seconds"), m.get("params"), (t.error or "").splitlines()[0] if t.error else "",
                            t.genotype])
