"""The trial store: every proposal, its status, reward and metrics, in SQLite (paper §3, §4.4).

`RUN_DIR/trials.db` is the search's memory and its work queue. It is opened in WAL mode, so a report
can read it while the search writes, and every state change is committed before the driver acts on
it, so a driver killed at any moment loses nothing: on resume, finished trials are kept and trials
that were queued or running are run again with the same architecture and payload.

This module is the only code that speaks SQL. Everything else sees values: a `Trial` (frozen) per
row of the search, a `RungResult` per ASHA rung result, a `FinalTrial` per row of the top-k stage,
all with a `Status`; a `Job` names one unit of work of any stage (what an executor runs); controller
updates are plain dicts. `TrialStore(path, readonly=True)` is the reader the report uses: it can
never modify a live run's store, nor create one by mistake (it also reads version-1 stores).

Schema (version 2; a version-1 store is migrated in place, in one transaction, when a search opens
it: the new columns are added and filled from what version 1 recorded)::

    trials                         one row per sampled architecture, 1-based ids in sampling order
      id              INTEGER PRIMARY KEY
      genotype        TEXT     the genotype's text form (nasnet.arch.genotype)
      decisions       TEXT     JSON list of the 2 x 5B decision indices (nasnet.arch.space order)
      log_prob        REAL     log-probability of the decisions under the sampling policy (NULL: no policy)
      entropy         REAL     the sampling policy's entropy along them (nats, summed)
      policy_version  INTEGER  number of controller updates made before sampling
      payload         TEXT     the JSON payload given to the child function (its first job)
      status          TEXT     queued | running | done | failed | diverged (of the trial's first result)
      reward          REAL     the objective at the highest rung reached; NULL unless done
      rung            INTEGER  the rung whose result the row holds (0 without ASHA); NULL before a result
      epochs          INTEGER  epochs trained to get that result (0 for a reused result)
      accuracy        REAL     the child's own reward (validation accuracy) behind `reward`
      cost            REAL     the cost measure of a cost-aware search (mult_adds or params), else NULL
      policy_reward   REAL     what the controller was told first (the failure reward if not done)
      metrics         TEXT     JSON of the child's result at that rung (val_accuracy, loss_curve, params, ...)
      error           TEXT     error text of a failure, or of retried infrastructure failures
      worker          TEXT     host:pid that ran it (host:pid@node on Ray); "cache" when the result was reused
      attempts        INTEGER  times its first job was handed to an executor
      cached_from     INTEGER  the trial whose result was reused (an architecture sampled again)
      result_seq      INTEGER  order in which results reached the controller (1, 2, ...)
      created_at, started_at, finished_at   REAL unix seconds

    rungs                          ASHA: one row per rung job of a trial (rung 0 is the trial's first job)
      trial_id INTEGER, rung INTEGER (PRIMARY KEY together), epochs INTEGER (cumulative epochs the
      rung trains to), payload TEXT, status TEXT, reward REAL, accuracy REAL, cost REAL,
      policy_reward REAL (what the controller was told; NULL: not told), metrics TEXT, error TEXT,
      worker TEXT, attempts INTEGER, result_seq INTEGER, created_at, started_at, finished_at REAL

    updates                        one row per controller update (policy entropy over updates)
      version INTEGER PRIMARY KEY, time REAL, num_results INTEGER, told INTEGER, mean_reward REAL,
      baseline REAL, entropy REAL, loss REAL, seconds REAL, kl REAL (from the policy before the
      update to the one after), clip_fraction REAL (PPO: ratios outside the clipping range)

    final                          the top-k stage and the pick's retraining
      trial_id INTEGER, repeat INTEGER (PRIMARY KEY together: repeat 0 is the top-k retraining,
      1, 2, ... the pick's retraining with further seeds), genotype TEXT, search_reward REAL,
      epochs INTEGER, payload TEXT, status TEXT, reward REAL, accuracy REAL, cost REAL, metrics TEXT,
      error TEXT, worker TEXT, attempts INTEGER, created_at, started_at, finished_at REAL

    meta                           key TEXT PRIMARY KEY, value TEXT (schema_version, ...)
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sqlite3
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from ..atomic import replacing
from ..errors import NasnetError

SCHEMA_VERSION = 2


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
    """The search's first jobs, its ASHA promotions, or the top-k stage that retrains its best architectures."""

    SEARCH = "search"
    RUNG = "rung"
    FINAL = "final"


@dataclass(frozen=True)
class Job:
    """One unit of work, the key an executor hands back: a trial's first job (SEARCH), its promotion to
    rung `index` (RUNG), or its retraining number `index` in the top-k stage (FINAL; 0 = the top-k
    retraining, 1, 2, ... the pick's further seeds)."""

    stage: Stage
    trial_id: int
    index: int = 0

    def __str__(self) -> str:
        if self.stage is Stage.SEARCH:
            return f"trial {self.trial_id}"
        if self.stage is Stage.RUNG:
            return f"trial {self.trial_id} (rung {self.index})"
        return f"top-k: trial {self.trial_id}" + (f" (seed {self.index + 1})" if self.index else "")


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _from_row(cls, row: sqlite3.Row, **extra):
    """A dataclass from a row: JSON columns decoded, the status a Status; columns an older schema
    lacks take the field's default."""
    d = dict(row)
    for key in ("payload", "metrics"):
        if key in d:
            d[key] = _json(d[key])
    d["status"] = Status(d["status"])
    d.update(extra)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


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
    rung: int | None = None
    epochs: int | None = None
    accuracy: float | None = None
    cost: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Trial":
        return _from_row(cls, row, decisions=tuple(_json(row["decisions"]) or ()))

    @property
    def key(self) -> Job:
        return Job(Stage.SEARCH, self.id)

    @property
    def seconds(self) -> float | None:
        """Wall time of the (last) execution: finished - started; None for reused or unfinished trials."""
        if self.cached_from is not None or not self.finished_at or not self.started_at:
            return None
        s = self.finished_at - self.started_at
        return s if math.isfinite(s) and s >= 0 else None


@dataclass(frozen=True)
class RungResult:
    """One rung job of an ASHA trial (a row of `rungs`): train to `epochs`, report, keep the checkpoint."""

    trial_id: int
    rung: int
    epochs: int
    payload: dict | None
    status: Status
    reward: float | None
    accuracy: float | None
    cost: float | None
    policy_reward: float | None
    metrics: dict | None
    error: str | None
    worker: str | None
    attempts: int
    result_seq: int | None
    created_at: float | None
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "RungResult":
        return _from_row(cls, row)

    @property
    def key(self) -> Job:
        return Job(Stage.RUNG, self.trial_id, self.rung)


@dataclass(frozen=True)
class FinalTrial:
    """One retraining of the top-k stage with the final budget (a row of `final`)."""

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
    repeat: int = 0
    accuracy: float | None = None
    cost: float | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "FinalTrial":
        return _from_row(cls, row)

    @property
    def key(self) -> Job:
        return Job(Stage.FINAL, self.trial_id, self.repeat)


@dataclass(frozen=True)
class StoreSnapshot:
    """A store read at one moment: its trials, controller updates, rung results, top-k stage, status
    counts, and the distinct done trials ranked best first (what `TrialStore.top` returns)."""

    trials: list[Trial]
    updates: list[dict[str, Any]]
    finals: list[FinalTrial]
    counts: dict[str, int]
    ranked: list[Trial]
    rungs: list[RungResult] = dataclasses.field(default_factory=list)


_TRIALS = """
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
    finished_at REAL,
    rung INTEGER,
    epochs INTEGER,
    accuracy REAL,
    cost REAL
)"""
_RUNGS = """
CREATE TABLE IF NOT EXISTS rungs (
    trial_id INTEGER NOT NULL,
    rung INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    reward REAL,
    accuracy REAL,
    cost REAL,
    policy_reward REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    result_seq INTEGER,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    PRIMARY KEY (trial_id, rung)
)"""
_UPDATES = """
CREATE TABLE IF NOT EXISTS updates (
    version INTEGER PRIMARY KEY,
    time REAL,
    num_results INTEGER,
    told INTEGER,
    mean_reward REAL,
    baseline REAL,
    entropy REAL,
    loss REAL,
    seconds REAL,
    kl REAL,
    clip_fraction REAL
)"""
_FINAL = """
CREATE TABLE IF NOT EXISTS {name} (
    trial_id INTEGER NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    genotype TEXT NOT NULL,
    search_reward REAL,
    epochs INTEGER,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    reward REAL,
    accuracy REAL,
    cost REAL,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    PRIMARY KEY (trial_id, repeat)
)"""
_SCHEMA = [_TRIALS, _RUNGS, _UPDATES, _FINAL.format(name="final"),
           "CREATE INDEX IF NOT EXISTS trials_genotype ON trials(genotype)",
           "CREATE INDEX IF NOT EXISTS trials_status ON trials(status)",
           "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"]

# (table, key columns) of each stage: the queue operations are the same for all of them.
_TABLES = {Stage.SEARCH: ("trials", ("id",)), Stage.RUNG: ("rungs", ("trial_id", "rung")),
           Stage.FINAL: ("final", ("trial_id", "repeat"))}

CSV_COLUMNS = ("id", "status", "reward", "rung", "epochs", "accuracy", "cost", "policy_reward", "policy_version",
               "log_prob", "entropy", "attempts", "worker", "cached_from", "created_at", "started_at", "finished_at",
               "wall_seconds", "params", "error", "genotype")


def _where(job: Job) -> tuple[str, str, tuple]:
    table, cols = _TABLES[job.stage]
    values = (job.trial_id,) if len(cols) == 1 else (job.trial_id, job.index)
    return table, " AND ".join(f"{c}=?" for c in cols), values


class TrialStore:
    """The SQLite trial store of one run directory (`RUN_DIR/trials.db`).

    readonly: open an existing store for reading only (the report); it is never created or changed.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, timeout=10)
                self.db.row_factory = sqlite3.Row
                self.tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
                    if "meta" in self.tables else None
                self.schema = int(row[0]) if row else SCHEMA_VERSION
                return
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of this process (SIGKILL); FULL would also
            # survive power loss at the cost of an fsync per trial.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._create_or_migrate()
            self.tables = {"trials", "rungs", "updates", "final", "meta"}
            self.schema = SCHEMA_VERSION
        except sqlite3.DatabaseError as err:
            raise NasnetError(f"{self.path}: not a readable trial store ({err})") from None

    def _create_or_migrate(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")     # one writer at a time, and all of it or nothing
        try:
            has_meta = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() if has_meta else None
            version = int(row[0]) if row else None
            if version is not None and version > SCHEMA_VERSION:
                raise NasnetError(f"{self.path}: trial store schema {version}, this nasnet reads {SCHEMA_VERSION} "
                                  "(a newer nasnet wrote it)")
            if version == 1:
                self._migrate_from_1()
            for statement in _SCHEMA:
                self.db.execute(statement)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise

    def _migrate_from_1(self) -> None:
        """Version 1 -> 2: trials gain rung, epochs, accuracy, cost (a v1 reward is an accuracy at rung 0);
        updates gain kl and clip_fraction; final gains repeat (its key becomes (trial_id, repeat)),
        accuracy and cost; the rungs table is new."""
        db = self.db
        for column, kind in (("rung", "INTEGER"), ("epochs", "INTEGER"), ("accuracy", "REAL"), ("cost", "REAL")):
            db.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")
        for tid, metrics, status, reward, cached in db.execute(
                "SELECT id, metrics, status, reward, cached_from FROM trials WHERE result_seq IS NOT NULL").fetchall():
            m = _json(metrics) or {}
            epochs = 0 if cached is not None else m.get("epochs_completed")
            db.execute("UPDATE trials SET rung=0, epochs=?, accuracy=? WHERE id=?",
                       (epochs if isinstance(epochs, int) else None, reward if status == "done" else None, tid))
        for column in ("kl", "clip_fraction"):
            db.execute(f"ALTER TABLE updates ADD COLUMN {column} REAL")
        db.execute(_FINAL.format(name="final_v2"))
        db.execute("INSERT INTO final_v2 (trial_id, repeat, genotype, search_reward, epochs, payload, status, reward, "
                   "accuracy, metrics, error, worker, attempts, created_at, started_at, finished_at) "
                   "SELECT trial_id, 0, genotype, search_reward, epochs, payload, status, reward, reward, metrics, "
                   "error, worker, attempts, created_at, started_at, finished_at FROM final")
        db.execute("DROP TABLE final")
        db.execute("ALTER TABLE final_v2 RENAME TO final")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "TrialStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the work queue (every stage) --------------------------------------------------------
    def add(self, genotype: str, decisions: Iterable[int], log_prob: float | None, entropy: float | None,
            policy_version: int, payload_fn: Callable[[int], dict]) -> int:
        """Insert a queued trial; `payload_fn(trial_id)` builds its payload. Returns the id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO trials (genotype, decisions, log_prob, entropy, policy_version, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (genotype, json.dumps(list(decisions)), log_prob, entropy, policy_version, time.time()))
            tid = int(cur.lastrowid)
            self.db.execute("UPDATE trials SET payload=? WHERE id=?", (json.dumps(payload_fn(tid)), tid))
        return tid

    def add_promotion(self, trial_id: int, rung: int, epochs: int, payload: dict) -> Job:
        """Queue an ASHA promotion: trial `trial_id` continues to rung `rung` (`epochs` in all)."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO rungs (trial_id, rung, epochs, payload, status, created_at) "
                            "VALUES (?, ?, ?, ?, 'queued', ?)", (trial_id, rung, epochs, json.dumps(payload),
                                                                  time.time()))
        return Job(Stage.RUNG, trial_id, rung)

    def add_final(self, trial: Trial, epochs: int | None, payload: dict, repeat: int = 0) -> Job:
        """Queue a search trial's architecture for retraining number `repeat` of the top-k stage (once: a
        second call changes nothing)."""
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO final (trial_id, repeat, genotype, search_reward, epochs, payload, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
                (trial.id, repeat, trial.genotype, trial.reward, epochs, json.dumps(payload), time.time()))
        return Job(Stage.FINAL, trial.id, repeat)

    def mark_running(self, job: Job) -> None:
        table, where, values = _where(job)
        with self.db:
            self.db.execute(f"UPDATE {table} SET status='running', attempts=attempts+1, started_at=? WHERE {where}",
                            (time.time(), *values))

    def requeue(self, job: Job, error: str | None = None) -> None:
        """Back to the queue (an infrastructure failure to retry); the error is kept for the record."""
        table, where, values = _where(job)
        with self.db:
            self.db.execute(f"UPDATE {table} SET status='queued', error=? WHERE {where}", (error, *values))

    def requeue_interrupted(self) -> int:
        """On resume or stop: jobs left running (in any stage) go back to the queue."""
        with self.db:
            return sum(self.db.execute(f"UPDATE {table} SET status='queued' WHERE status='running'").rowcount
                       for table, _ in _TABLES.values())

    def _next_seq(self) -> int:
        return int(self.db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(result_seq) FROM trials), 0), "
            "COALESCE((SELECT MAX(result_seq) FROM rungs), 0)) + 1").fetchone()[0])

    def finish(self, trial_id: int, status: Status, reward: float | None, metrics: dict | None, error: str | None,
               worker: str | None, started_at: float | None = None, finished_at: float | None = None, *,
               policy_reward: float | None = None, cached_from: int | None = None, accuracy: float | None = None,
               cost: float | None = None, epochs: int | None = None, rung_epochs: int | None = None) -> None:
        """Record a trial's first result; it gets the next result sequence number (the order in which results
        reach the controller) with what the controller is told. `rung_epochs`: an ASHA trial's first rung,
        also recorded as its rung-0 row."""
        status = Status(status)
        if not status.terminal:
            raise ValueError(f"not a terminal status: {status!r}")
        metrics_text = None if metrics is None else json.dumps(metrics)
        finished_at = finished_at or time.time()
        with self.db:
            seq = self._next_seq()
            self.db.execute(
                "UPDATE trials SET status=?, reward=?, accuracy=?, cost=?, policy_reward=?, metrics=?, error=?, "
                "worker=?, started_at=COALESCE(?, started_at), finished_at=?, cached_from=?, result_seq=?, rung=0, "
                "epochs=? WHERE id=?",
                (status.value, reward, accuracy, cost, policy_reward, metrics_text, error, worker, started_at,
                 finished_at, cached_from, seq, epochs, trial_id))
            if rung_epochs is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO rungs (trial_id, rung, epochs, payload, status, reward, accuracy, cost, "
                    "policy_reward, metrics, error, worker, attempts, result_seq, created_at, started_at, finished_at) "
                    "SELECT id, 0, ?, payload, status, reward, accuracy, cost, policy_reward, metrics, error, worker, "
                    "attempts, result_seq, created_at, started_at, finished_at FROM trials WHERE id=?",
                    (rung_epochs, trial_id))

    def finish_rung(self, trial_id: int, rung: int, status: Status, reward: float | None, metrics: dict | None,
                    error: str | None, worker: str | None, started_at: float | None = None,
                    finished_at: float | None = None, *, accuracy: float | None = None, cost: float | None = None,
                    policy_reward: float | None = None) -> None:
        """Record a promotion's result. A successful one becomes the trial's result (reward, rung, epochs,
        metrics); `policy_reward` not None: the controller is told it (it gets a result sequence number)."""
        status = Status(status)
        if not status.terminal:
            raise ValueError(f"not a terminal status: {status!r}")
        metrics_text = None if metrics is None else json.dumps(metrics)
        finished_at = finished_at or time.time()
        with self.db:
            seq = self._next_seq() if policy_reward is not None else None
            self.db.execute(
                "UPDATE rungs SET status=?, reward=?, accuracy=?, cost=?, policy_reward=?, metrics=?, error=?, "
                "worker=?, started_at=COALESCE(?, started_at), finished_at=?, result_seq=? WHERE trial_id=? AND rung=?",
                (status.value, reward, accuracy, cost, policy_reward, metrics_text, error, worker, started_at,
                 finished_at, seq, trial_id, rung))
            if status == Status.DONE:
                self.db.execute(
                    "UPDATE trials SET reward=?, accuracy=?, cost=?, metrics=?, rung=?, "
                    "epochs=(SELECT epochs FROM rungs WHERE trial_id=? AND rung=?) WHERE id=?",
                    (reward, accuracy, cost, metrics_text, rung, trial_id, rung, trial_id))

    def finish_final(self, trial_id: int, repeat: int, status: Status, reward: float | None, metrics: dict | None,
                     error: str | None, worker: str | None, started_at: float | None = None,
                     finished_at: float | None = None, *, accuracy: float | None = None,
                     cost: float | None = None) -> None:
        status = Status(status)
        if not status.terminal:
            raise ValueError(f"not a terminal status: {status!r}")
        with self.db:
            self.db.execute(
                "UPDATE final SET status=?, reward=?, accuracy=?, cost=?, metrics=?, error=?, worker=?, "
                "started_at=COALESCE(?, started_at), finished_at=? WHERE trial_id=? AND repeat=?",
                (status.value, reward, accuracy, cost, None if metrics is None else json.dumps(metrics), error,
                 worker, started_at, finished_at or time.time(), trial_id, repeat))

    # -- reading -----------------------------------------------------------------------------
    def get(self, trial_id: int) -> Trial:
        row = self.db.execute("SELECT * FROM trials WHERE id=?", (trial_id,)).fetchone()
        if row is None:
            raise KeyError(f"no trial {trial_id}")
        return Trial.from_row(row)

    def rung(self, trial_id: int, rung: int) -> RungResult | None:
        if "rungs" not in self.tables:
            return None
        row = self.db.execute("SELECT * FROM rungs WHERE trial_id=? AND rung=?", (trial_id, rung)).fetchone()
        return None if row is None else RungResult.from_row(row)

    def final(self, trial_id: int, repeat: int = 0) -> FinalTrial:
        row = self.db.execute("SELECT * FROM final WHERE trial_id=? AND repeat=?", (trial_id, repeat)).fetchone()
        if row is None:
            raise KeyError(f"no top-k trial {trial_id} (repeat {repeat})")
        return FinalTrial.from_row(row)

    def job(self, job: Job) -> Trial | RungResult | FinalTrial:
        """The row of a job (its attempts, error, payload)."""
        if job.stage is Stage.SEARCH:
            return self.get(job.trial_id)
        if job.stage is Stage.FINAL:
            return self.final(job.trial_id, job.index)
        row = self.rung(job.trial_id, job.index)
        if row is None:
            raise KeyError(f"no rung {job.index} of trial {job.trial_id}")
        return row

    def trials(self) -> list[Trial]:
        """Every trial, in sampling order."""
        return [Trial.from_row(r) for r in self.db.execute("SELECT * FROM trials ORDER BY id")]

    def rungs(self) -> list[RungResult]:
        """Every ASHA rung job, by trial and rung."""
        if "rungs" not in self.tables:
            return []
        return [RungResult.from_row(r) for r in self.db.execute("SELECT * FROM rungs ORDER BY trial_id, rung")]

    def rung_standings(self) -> list[tuple[int, int, str, float | None]]:
        """(trial_id, rung, status, reward) of every rung job: what ASHA's promotion rule reads."""
        if "rungs" not in self.tables:
            return []
        return [tuple(r) for r in self.db.execute("SELECT trial_id, rung, status, reward FROM rungs")]

    def finals(self) -> list[FinalTrial]:
        order = "trial_id, repeat" if self.schema >= 2 else "trial_id"
        return [FinalTrial.from_row(r) for r in self.db.execute(f"SELECT * FROM final ORDER BY {order}")]

    def updates(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM updates ORDER BY version")]

    def snapshot(self) -> "StoreSnapshot":
        """Everything, read in one transaction: a consistent view while a search writes (the report's read)."""
        with self.db:
            self.db.execute("BEGIN")
            return StoreSnapshot(self.trials(), self.updates(), self.finals(), self.counts(), self.top(self.count()),
                                 self.rungs())

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def queued(self, stage: Stage = Stage.SEARCH) -> list[Job]:
        """Queued jobs in the order they were created: with Stage.SEARCH, first jobs and ASHA promotions;
        with Stage.FINAL, the top-k stage's."""
        if stage is Stage.FINAL:
            return [Job(Stage.FINAL, t, r) for t, r in
                    self.db.execute("SELECT trial_id, repeat FROM final WHERE status='queued' ORDER BY rowid")]
        rows = [(c, Job(Stage.SEARCH, i)) for i, c in
                self.db.execute("SELECT id, created_at FROM trials WHERE status='queued'")]
        rows += [(c, Job(Stage.RUNG, t, k)) for t, k, c in
                 self.db.execute("SELECT trial_id, rung, created_at FROM rungs WHERE status='queued'")]
        return [job for _, job in sorted(rows, key=lambda x: (x[0] or 0.0, x[1].stage is Stage.RUNG))]

    def results_after(self, seq: int) -> list[tuple[Trial, float | None]]:
        """Results that reached the controller after sequence number `seq`, in order: (trial, what it was told)."""
        query = "SELECT result_seq, id, policy_reward FROM trials WHERE result_seq > ?"
        args: tuple = (seq,)
        if "rungs" in self.tables:
            query += (" UNION ALL SELECT result_seq, trial_id, policy_reward FROM rungs "
                      "WHERE result_seq > ? AND rung > 0")
            args += (seq,)
        rows = self.db.execute(query + " ORDER BY 1", args).fetchall()
        return [(self.get(tid), told) for _, tid, told in rows]

    def first_with_genotype(self, genotype: str, before: int) -> Trial | None:
        """The earliest other trial of this architecture (a result to reuse, or one to wait for)."""
        row = self.db.execute("SELECT * FROM trials WHERE genotype=? AND id<? AND cached_from IS NULL "
                              "ORDER BY id LIMIT 1", (genotype, before)).fetchone()
        return None if row is None else Trial.from_row(row)

    def top(self, k: int) -> list[Trial]:
        """The k best done trials, each architecture once: the highest rung reached first (ASHA), then by
        reward (ties: earlier first)."""
        order = "COALESCE(rung, 0) DESC, " if self.schema >= 2 else ""
        rows = self.db.execute("SELECT * FROM trials WHERE status='done' AND reward IS NOT NULL "
                               f"AND cached_from IS NULL ORDER BY {order}reward DESC, id LIMIT ?", (k,))
        return [Trial.from_row(r) for r in rows]

    def worst_reward(self) -> float | None:
        """The lowest reward of any finished child so far (the "worst" failure-reward rule)."""
        row = self.db.execute("SELECT MIN(reward) FROM trials WHERE status='done'").fetchone()
        return None if row[0] is None else float(row[0])

    def uncached(self) -> int:
        """Trials that have or will have trained themselves (not reusing another's result)."""
        return int(self.db.execute("SELECT COUNT(*) FROM trials WHERE cached_from IS NULL").fetchone()[0])

    def promotions(self) -> list[int]:
        """The rung of every ASHA promotion made (queued, running or finished)."""
        return [r[0] for r in self.db.execute("SELECT rung FROM rungs WHERE rung > 0")]

    # -- controller updates ----------------------------------------------------------------
    def add_update(self, stats: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO updates (version, time, num_results, told, mean_reward, baseline, entropy, "
                "loss, seconds, kl, clip_fraction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stats["version"], stats["time"], stats["num_results"], stats["told"], stats["mean_reward"],
                 stats["baseline"], stats.get("entropy"), stats.get("loss"), stats.get("seconds"), stats.get("kl"),
                 stats.get("clip_fraction")))

    def last_update_version(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(version), 0) FROM updates").fetchone()[0])

    # -- export ----------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> None:
        """Write every trial as a CSV row (atomically: a reader never sees half a file)."""
        with replacing(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for t in self.trials():
                m = t.metrics or {}
                w.writerow([t.id, t.status.value, t.reward, t.rung, t.epochs, t.accuracy, t.cost, t.policy_reward,
                            t.policy_version, t.log_prob, t.entropy, t.attempts, t.worker, t.cached_from,
                            t.created_at, t.started_at, t.finished_at, m.get("wall_seconds"), m.get("params"),
                            (t.error or "").splitlines()[0] if t.error else "", t.genotype])
