"""The trial store: every job of a search, where it stands and what it came to, in SQLite (paper §3, §4.4).

`RUN_DIR/trials.db` is the search's memory and its work queue: a driver killed at any moment loses
nothing, and on resume finished jobs are kept and queued or running ones run again with the same
payload. `TrialStore` is its API (the contract is in its docstring); the values it takes and gives
are in nasnet.search.records, the schema and its migration in nasnet.search.schema, the columns'
meanings in docs/formats.md. `TrialStore(path, readonly=True)` is the report's reader.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..atomic import replacing
from ..errors import NasnetError
from .records import (RECORDS, TERMINAL, DamagedStore, FinalTrial, Job, Record, Result, RungResult, Stage, Status,
                      StoreSnapshot, Trial)
from .schema import (JOB_COLUMNS, JOB_TABLES, SCHEMA_VERSION, columns, open_readonly, open_writable, stored_version,
                     table_names)

# The trial model is nasnet.search.records; its names are importable from here too, as they always were.
__all__ = ["CSV_COLUMNS", "SCHEMA_VERSION", "TERMINAL", "DamagedStore", "FinalTrial", "Job", "Record", "Result",
           "RungResult", "Stage", "Status", "StoreSnapshot", "Trial", "TrialStore"]

CSV_COLUMNS = ("id", "status", "reward", "rung", "epochs", "accuracy", "cost", "policy_reward", "policy_version",
               "log_prob", "entropy", "attempts", "worker", "cached_from", "created_at", "started_at", "finished_at",
               "wall_seconds", "params", "error", "genotype")

# Result fields a finished job's row takes as they are (those its table has); epochs and started_at
# keep the queued value when the result has none.
_RESULT_COLUMNS = ("status", "reward", "accuracy", "cost", "policy_reward", "metrics", "error", "worker",
                   "finished_at", "cached_from")


def _where(job: Job) -> tuple[str, str, tuple]:
    table, keys = JOB_TABLES[job.stage]
    values = (job.trial_id,) if len(keys) == 1 else (job.trial_id, job.index)
    return table, " AND ".join(f"{c}=?" for c in keys), values


class TrialStore:
    """The SQLite trial store of one run directory (`RUN_DIR/trials.db`).

    Contract:
    - **Committed before it returns.** Every write is one transaction, committed when the method
      returns (WAL, synchronous=NORMAL: it survives a SIGKILL of the process). The driver acts on a
      change only after making it here, so the store is always at least as far as the search.
    - **One writer.** A run directory's lock (nasnet.locking) keeps a second driver out; readers
      (`readonly=True`) may read at any time and see whole transactions (`snapshot`).
    - **Jobs.** `add` queues a trial's first job (ids 1, 2, ... in sampling order), `enqueue` an
      ASHA promotion or a retraining; `mark_running`, `requeue` and `finish` move any job along
      queued -> running -> (queued again | done | failed | diverged). A job is finished once.
    - **Order.** Every result the strategy is told gets the next `result_seq` when it is recorded;
      `results_after(seq)` gives them back in that order, so a resumed strategy hears them again
      exactly as it first did.
    - **Errors.** A damaged file, or a store written by a newer nasnet, is a NasnetError (one line)
      when the store is opened: a search never stops half-way on a row it cannot read. A job that is
      not in the store is a KeyError; a non-terminal status given to `finish` a ValueError.

    readonly: open an existing store for reading only (the report); it is never created or changed,
    and a version-1 store is read as it is.
    """

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._copy: Path | None = None   # a private copy read instead (schema.open_readonly)
        try:
            if readonly:
                self.db, self._copy = open_readonly(self.path)
                self.tables = table_names(self.db)
                self.schema = stored_version(self.db) or SCHEMA_VERSION
                return
            self.db = open_writable(self.path)
            self.tables = table_names(self.db)
            self.schema = SCHEMA_VERSION
            self.snapshot()   # every row decodes (a search must not stop half-way on a damaged one)
        except DamagedStore as err:
            raise self._damaged(err) from None
        except sqlite3.DatabaseError as err:
            raise NasnetError(f"{self.path}: not a readable trial store ({err})") from None

    def _damaged(self, err: DamagedStore) -> DamagedStore:
        if str(err).startswith(str(self.path)):
            return err
        return DamagedStore(f"{self.path}: the trial store is damaged ({err}); restore it from a backup or start a "
                            "new --run-dir")

    def close(self) -> None:
        self.db.close()
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

    def __enter__(self) -> "TrialStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the work queue (every stage) --------------------------------------------------------
    def add(self, genotype: str, decisions: Iterable[int], log_prob: float | None, entropy: float | None,
            policy_version: int, payload_fn: Callable[[int], dict]) -> int:
        """Queue a new trial's first job; `payload_fn(trial_id)` builds its payload. Returns the trial's id."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO trials (genotype, decisions, log_prob, entropy, policy_version, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (genotype, json.dumps(list(decisions)), log_prob, entropy, policy_version, time.time()))
            tid = int(cur.lastrowid)
            self.db.execute("UPDATE trials SET payload=? WHERE id=?", (json.dumps(payload_fn(tid)), tid))
        return tid

    def enqueue(self, job: Job, epochs: int | None, payload: dict) -> Job:
        """Queue a trial's ASHA promotion (a RUNG job: train on to `epochs` in all) or a retraining of its
        architecture in the top-k stage (a FINAL job; `epochs`: the final budget). Once: queueing a job
        that exists changes nothing."""
        args = (job.trial_id, job.index, epochs, json.dumps(payload), time.time())
        with self.db:
            if job.stage is Stage.RUNG:
                self.db.execute("INSERT OR IGNORE INTO rungs (trial_id, rung, epochs, payload, status, created_at) "
                                "VALUES (?, ?, ?, ?, 'queued', ?)", args)
            elif job.stage is Stage.FINAL:
                self.db.execute(
                    "INSERT OR IGNORE INTO final (trial_id, repeat, genotype, search_reward, epochs, payload, status, "
                    "created_at) SELECT id, ?, genotype, reward, ?, ?, 'queued', ? FROM trials WHERE id=?",
                    (*args[1:], job.trial_id))
            else:
                raise ValueError(f"{job}: a first job is queued by add()")
        return job

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
        """On resume or stop: jobs left running (in any stage) go back to the queue. Returns how many."""
        with self.db:
            return sum(self.db.execute(f"UPDATE {table} SET status='queued' WHERE status='running'").rowcount
                       for table, _ in JOB_TABLES.values())

    def _next_seq(self) -> int:
        return int(self.db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(result_seq) FROM trials), 0), "
            "COALESCE((SELECT MAX(result_seq) FROM rungs), 0)) + 1").fetchone()[0])

    def finish(self, job: Job, result: Result, *, first_rung: int | None = None) -> None:
        """Record what a job of any stage came to. A result the strategy is told (a first job's always, a
        promotion's when `policy_reward` is set) gets the next result sequence number. A promotion that
        succeeds becomes its trial's result (reward, rung, epochs, metrics). `first_rung` (first jobs of
        ASHA trials): that rung's epochs; the result is also recorded as the trial's rung-0 job."""
        status = Status(result.status)
        if not status.terminal:
            raise ValueError(f"not a terminal status: {status!r}")
        table, where, key = _where(job)
        have = columns(table)
        row = {c: getattr(result, c) for c in _RESULT_COLUMNS if c in have}
        row.update(status=status.value, finished_at=result.finished_at or time.time(),
                   metrics=None if result.metrics is None else json.dumps(result.metrics))
        with self.db:
            if job.stage is Stage.SEARCH or (job.stage is Stage.RUNG and result.policy_reward is not None):
                row["result_seq"] = self._next_seq()
            if job.stage is Stage.SEARCH:
                row["rung"] = 0
            sets = ", ".join(f"{c}=?" for c in row)
            self.db.execute(f"UPDATE {table} SET {sets}, started_at=COALESCE(?, started_at), "
                            f"epochs=COALESCE(?, epochs) WHERE {where}",
                            (*row.values(), result.started_at, result.epochs, *key))
            if job.stage is Stage.SEARCH and first_rung is not None:
                shared = ", ".join((*JOB_COLUMNS, "policy_reward", "result_seq"))
                self.db.execute(f"INSERT OR REPLACE INTO rungs (trial_id, rung, epochs, {shared}) "
                                f"SELECT id, 0, ?, {shared} FROM trials WHERE id=?", (first_rung, job.trial_id))
            if job.stage is Stage.RUNG and status is Status.DONE:
                self.db.execute(
                    "UPDATE trials SET reward=?, accuracy=?, cost=?, metrics=?, rung=?, "
                    "epochs=(SELECT epochs FROM rungs WHERE trial_id=? AND rung=?) WHERE id=?",
                    (result.reward, result.accuracy, result.cost, row["metrics"], job.index, *key, job.trial_id))

    # -- reading -----------------------------------------------------------------------------
    def job(self, job: Job) -> Record:
        """The record of a job: a Trial, a RungResult or a FinalTrial (KeyError when there is none)."""
        table, where, values = _where(job)
        row = self.db.execute(f"SELECT * FROM {table} WHERE {where}", values).fetchone() \
            if table in self.tables else None
        if row is None:
            raise KeyError(f"no {job} in the store")
        return RECORDS[job.stage].from_row(row)

    def get(self, trial_id: int) -> Trial:
        """The trial `trial_id` (KeyError when there is none)."""
        return self.job(Job(Stage.SEARCH, trial_id))  # type: ignore[return-value]

    def trials(self) -> list[Trial]:
        """Every trial, in sampling order."""
        return [Trial.from_row(r) for r in self.db.execute("SELECT * FROM trials ORDER BY id")]

    def rungs(self) -> list[RungResult]:
        """Every ASHA rung job, by trial and rung."""
        if "rungs" not in self.tables:
            return []
        return [RungResult.from_row(r) for r in self.db.execute("SELECT * FROM rungs ORDER BY trial_id, rung")]

    def finals(self) -> list[FinalTrial]:
        """Every retraining of the top-k stage and the pick, by trial and repeat."""
        order = "trial_id, repeat" if self.schema >= 2 else "trial_id"
        return [FinalTrial.from_row(r) for r in self.db.execute(f"SELECT * FROM final ORDER BY {order}")]

    def updates(self) -> list[dict[str, Any]]:
        """Every controller update's statistics, oldest first."""
        return [dict(r) for r in self.db.execute("SELECT * FROM updates ORDER BY version")]

    def snapshot(self) -> StoreSnapshot:
        """Everything, read in one transaction: a consistent view while a search writes (the report's read)."""
        try:
            with self.db:
                self.db.execute("BEGIN")
                return StoreSnapshot(self.trials(), self.updates(), self.finals(), self.counts(),
                                     self.top(self.count()), self.rungs())
        except DamagedStore as err:
            raise self._damaged(err) from None

    def count(self) -> int:
        """Trials sampled so far."""
        return int(self.db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Trials per status (every Status's value, 0 when none)."""
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

    def rung_standings(self) -> list[tuple[int, int, Status, float | None]]:
        """(trial_id, rung, status, reward) of every rung job: what ASHA's promotion rule reads."""
        if "rungs" not in self.tables:
            return []
        rows = self.db.execute("SELECT trial_id, rung, status, reward FROM rungs")
        return [(t, k, Status(s), r) for t, k, s, r in rows]

    # -- controller updates ----------------------------------------------------------------
    def add_update(self, stats: dict[str, Any]) -> None:
        """Record a controller update's statistics (a strategy's update record; version is its key)."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO updates (version, time, num_results, told, mean_reward, baseline, entropy, "
                "loss, seconds, kl, clip_fraction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stats["version"], stats["time"], stats["num_results"], stats["told"], stats["mean_reward"],
                 stats["baseline"], stats.get("entropy"), stats.get("loss"), stats.get("seconds"), stats.get("kl"),
                 stats.get("clip_fraction")))

    def last_update_version(self) -> int:
        """The version of the last controller update recorded (0: none)."""
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
