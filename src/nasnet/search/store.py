"""The trial store: every proposal, its status, reward and metrics, in SQLite (paper §3, SPEC §1.7).

`RUN_DIR/trials.db` is the search's memory and its work queue. It is opened in WAL mode, so a report
can read it while the search writes, and every state change is committed before the driver acts on
it, so a driver killed at any moment loses nothing: on resume, finished trials are kept and trials
that were queued or running are run again with the same architecture and payload.

Schema (version 1)::

    trials                         one row per sampled architecture, 1-based ids in sampling order
      id              INTEGER PRIMARY KEY
      genotype        TEXT     the genotype's text form (nasnet.genotype)
      decisions       TEXT     JSON list of the 2 x 5B decision indices (nasnet.space order)
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
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from ..atomic import replacing
from ..errors import NasnetError

SCHEMA_VERSION = 1
TERMINAL = ("done", "failed", "diverged")
STATUSES = ("queued", "running") + TERMINAL

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

CSV_COLUMNS = ("id", "status", "reward", "policy_reward", "policy_version", "log_prob", "entropy", "attempts",
               "worker", "cached_from", "created_at", "started_at", "finished_at", "wall_seconds", "params",
               "error", "genotype")


class TrialStore:
    """The SQLite trial store of one run directory (`RUN_DIR/trials.db`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.row_factory = sqlite3.Row
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
        except sqlite3.DatabaseError as err:
            raise NasnetError(f"{self.path}: not a readable trial store ({err})") from None

    def close(self) -> None:
        self.db.close()

    # -- the work queue --------------------------------------------------------------------
    def add(self, genotype: str, decisions: Iterable[int], log_prob: float, entropy: float, policy_version: int,
            payload_fn) -> int:
        """Insert a queued trial; `payload_fn(trial_id)` builds its payload. Returns the id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO trials (genotype, decisions, log_prob, entropy, policy_version, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (genotype, json.dumps(list(decisions)), log_prob, entropy, policy_version, time.time()))
            tid = int(cur.lastrowid)
            self.db.execute("UPDATE trials SET payload=? WHERE id=?", (json.dumps(payload_fn(tid)), tid))
        return tid

    def get(self, trial_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM trials WHERE id=?", (trial_id,)).fetchone()

    def mark_running(self, trial_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE trials SET status='running', attempts=attempts+1, started_at=? WHERE id=?",
                            (time.time(), trial_id))

    def requeue(self, trial_id: int, error: str | None = None) -> None:
        """Back to the queue (an infrastructure failure to retry); the error is kept for the record."""
        with self.db:
            self.db.execute("UPDATE trials SET status='queued', error=? WHERE id=?", (error, trial_id))

    def requeue_interrupted(self) -> int:
        """On resume: trials left running by a stopped driver go back to the queue."""
        with self.db:
            return self.db.execute("UPDATE trials SET status='queued' WHERE status='running'").rowcount

    def finish(self, trial_id: int, status: str, reward: float | None, policy_reward: float,
               metrics: dict | None, error: str | None, worker: str | None, started_at: float | None = None,
               finished_at: float | None = None, cached_from: int | None = None) -> int:
        """Record a terminal result and give it the next result sequence number (returned)."""
        if status not in TERMINAL:
            raise ValueError(f"not a terminal status: {status!r}")
        with self.db:
            seq = self.db.execute("SELECT COALESCE(MAX(result_seq), 0) + 1 FROM trials").fetchone()[0]
            self.db.execute(
                "UPDATE trials SET status=?, reward=?, policy_reward=?, metrics=?, error=?, worker=?, "
                "started_at=COALESCE(?, started_at), finished_at=?, cached_from=?, result_seq=? WHERE id=?",
                (status, reward, policy_reward, None if metrics is None else json.dumps(metrics), error, worker,
                 started_at, finished_at or time.time(), cached_from, seq, trial_id))
        return int(seq)

    # -- queries ---------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def queued(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM trials WHERE status='queued' ORDER BY id")]

    def results_after(self, seq: int) -> list[sqlite3.Row]:
        """Terminal trials whose results reached the controller after sequence number `seq`, in order."""
        return self.db.execute("SELECT * FROM trials WHERE result_seq > ? ORDER BY result_seq", (seq,)).fetchall()

    def first_with_genotype(self, genotype: str, before: int) -> sqlite3.Row | None:
        """The earliest other trial of this architecture (a result to reuse, or one to wait for)."""
        return self.db.execute("SELECT * FROM trials WHERE genotype=? AND id<? AND cached_from IS NULL "
                               "ORDER BY id LIMIT 1", (genotype, before)).fetchone()

    def top(self, k: int, distinct: bool = True) -> list[sqlite3.Row]:
        """The k best done trials by reward (ties: earlier first), each architecture once."""
        where = "status='done' AND reward IS NOT NULL" + (" AND cached_from IS NULL" if distinct else "")
        return self.db.execute(f"SELECT * FROM trials WHERE {where} ORDER BY reward DESC, id LIMIT ?",
                               (k,)).fetchall()

    def rewards_in_order(self) -> list[float | None]:
        """Reward of every trial in sampling order (None when not done)."""
        return [r[0] for r in self.db.execute("SELECT reward FROM trials ORDER BY id")]

    # -- controller updates ----------------------------------------------------------------
    def add_update(self, stats: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO updates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stats["version"], stats["time"], stats["num_results"], stats["told"], stats["mean_reward"],
                 stats["baseline"], stats.get("entropy"), stats.get("loss"), stats.get("seconds")))

    def updates(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM updates ORDER BY version").fetchall()

    # -- the top-k stage -------------------------------------------------------------------
    def add_final(self, trial: sqlite3.Row, epochs: int | None, payload: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO final (trial_id, genotype, search_reward, epochs, payload, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (trial["id"], trial["genotype"], trial["reward"], epochs, json.dumps(payload), time.time()))

    def final(self, trial_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM final WHERE trial_id=?", (trial_id,)).fetchone()

    def final_requeue_interrupted(self) -> int:
        with self.db:
            return self.db.execute("UPDATE final SET status='queued' WHERE status='running'").rowcount

    def finals(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM final ORDER BY trial_id").fetchall()

    def final_mark_running(self, trial_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE final SET status='running', attempts=attempts+1, started_at=? WHERE trial_id=?",
                            (time.time(), trial_id))

    def final_requeue(self, trial_id: int, error: str | None = None) -> None:
        with self.db:
            self.db.execute("UPDATE final SET status='queued', error=? WHERE trial_id=?", (error, trial_id))

    def final_finish(self, trial_id: int, status: str, reward: float | None, metrics: dict | None,
                     error: str | None, worker: str | None, started_at=None, finished_at=None) -> None:
        with self.db:
            self.db.execute(
                "UPDATE final SET status=?, reward=?, metrics=?, error=?, worker=?, "
                "started_at=COALESCE(?, started_at), finished_at=? WHERE trial_id=?",
                (status, reward, None if metrics is None else json.dumps(metrics), error, worker, started_at,
                 finished_at or time.time(), trial_id))

    # -- export ----------------------------------------------------------------------------
    def export_csv(self, path: str | Path) -> None:
        """Write every trial as a CSV row (atomically: a reader never sees half a file)."""
        with replacing(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for r in self.db.execute("SELECT * FROM trials ORDER BY id"):
                m = json.loads(r["metrics"]) if r["metrics"] else {}
                w.writerow([r["id"], r["status"], r["reward"], r["policy_reward"], r["policy_version"],
                            r["log_prob"], r["entropy"], r["attempts"], r["worker"], r["cached_from"],
                            r["created_at"], r["started_at"], r["finished_at"], m.get("wall_seconds"),
                            m.get("params"), (r["error"] or "").splitlines()[0] if r["error"] else "",
                            r["genotype"]])
