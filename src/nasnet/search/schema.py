"""The trial store's SQLite schema, its migration, and opening a store file (paper §3, A.3).

`RUN_DIR/trials.db` holds five tables: `trials` (one row per sampled architecture), `rungs` (ASHA:
one row per rung job), `final` (the top-k stage and the pick's retrainings), `updates` (one row per
controller update) and `meta` (schema_version). docs/formats.md says what every column means. Each
column's type is declared once (`TYPES`); the job columns every stage shares once (`JOB_COLUMNS`).

Version 2 is current. A writer opening a version-1 store migrates it in place, in one transaction;
a reader (`open_readonly`) reads either version as it is and never changes the file. A store written
by a newer nasnet is refused in one line. This module and nasnet.search.store are the only code that
speaks SQL. Importing it does not import torch.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote

from ..errors import NasnetError
from .records import DamagedStore, Stage, decode_json

SCHEMA_VERSION = 2

TYPES = {
    "id": "INTEGER PRIMARY KEY", "trial_id": "INTEGER NOT NULL", "rung": "INTEGER",
    "repeat": "INTEGER NOT NULL DEFAULT 0", "genotype": "TEXT NOT NULL", "decisions": "TEXT NOT NULL",
    "log_prob": "REAL", "entropy": "REAL", "policy_version": "INTEGER", "search_reward": "REAL",
    "payload": "TEXT", "status": "TEXT NOT NULL DEFAULT 'queued'", "epochs": "INTEGER", "reward": "REAL",
    "accuracy": "REAL", "cost": "REAL", "policy_reward": "REAL", "metrics": "TEXT", "error": "TEXT",
    "worker": "TEXT", "attempts": "INTEGER NOT NULL DEFAULT 0", "cached_from": "INTEGER", "result_seq": "INTEGER",
    "created_at": "REAL", "started_at": "REAL", "finished_at": "REAL",
    "version": "INTEGER PRIMARY KEY", "time": "REAL", "num_results": "INTEGER", "told": "INTEGER",
    "mean_reward": "REAL", "baseline": "REAL", "loss": "REAL", "seconds": "REAL", "kl": "REAL",
    "clip_fraction": "REAL", "key": "TEXT PRIMARY KEY", "value": "TEXT",
}

# What every job holds, whatever its stage (nasnet.search.records.Record); "epochs" is each table's own.
JOB_COLUMNS = ("payload", "status", "reward", "accuracy", "cost", "metrics", "error", "worker", "attempts",
               "created_at", "started_at", "finished_at")

# Each table: its columns (a name, with any constraint beyond its type), then table constraints.
TABLES: dict[str, tuple[str, ...]] = {
    "trials": ("id", "genotype", "decisions", "log_prob", "entropy", "policy_version", *JOB_COLUMNS, "epochs",
               "policy_reward", "cached_from", "result_seq UNIQUE", "rung"),
    "rungs": ("trial_id", "rung NOT NULL", *JOB_COLUMNS, "epochs NOT NULL", "policy_reward", "result_seq",
              "PRIMARY KEY (trial_id, rung)"),
    "updates": ("version", "time", "num_results", "told", "mean_reward", "baseline", "entropy", "loss", "seconds",
                "kl", "clip_fraction"),
    "final": ("trial_id", "repeat", "genotype", "search_reward", *JOB_COLUMNS, "epochs",
              "PRIMARY KEY (trial_id, repeat)"),
    "meta": ("key", "value"),
}
INDEXES = ("CREATE INDEX IF NOT EXISTS trials_genotype ON trials(genotype)",
           "CREATE INDEX IF NOT EXISTS trials_status ON trials(status)")

# The table of each stage's jobs and the columns that key a job there.
JOB_TABLES = {Stage.SEARCH: ("trials", ("id",)), Stage.RUNG: ("rungs", ("trial_id", "rung")),
              Stage.FINAL: ("final", ("trial_id", "repeat"))}


def columns(table: str) -> tuple[str, ...]:
    """The column names of `table` in this version."""
    return tuple(spec.split()[0] for spec in TABLES[table] if not spec.startswith("PRIMARY KEY"))


def create_table(table: str, name: str | None = None) -> str:
    """CREATE TABLE IF NOT EXISTS for `table` (under `name`, for a table rebuilt by a migration)."""
    parts = []
    for spec in TABLES[table]:
        column, _, extra = spec.partition(" ")
        parts.append(spec if column == "PRIMARY" else " ".join(filter(None, (column, TYPES[column], extra))))
    return f"CREATE TABLE IF NOT EXISTS {name or table} (\n    " + ",\n    ".join(parts) + "\n)"


def _text(raw: bytes) -> str:
    """SQLite's text_factory: UTF-8, or a one-line error for text whose bytes were damaged."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedStore(f"a text value is not valid UTF-8: {raw[:40]!r}...") from None


def _rows(db: sqlite3.Connection) -> sqlite3.Connection:
    db.row_factory = sqlite3.Row
    db.text_factory = _text
    return db


def table_names(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def stored_version(db: sqlite3.Connection) -> int | None:
    """The schema_version a store records; None for a store that records none (a new file)."""
    if "meta" not in table_names(db):
        return None
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def open_writable(path: Path) -> sqlite3.Connection:
    """A connection to the store at `path` (created when new), checked, in WAL mode, at this version.
    DamagedStore for damaged bytes; NasnetError for a store a newer nasnet wrote."""
    db = _rows(sqlite3.connect(path, timeout=30))
    check_integrity(db)
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a crash of this process (SIGKILL); FULL would also survive power
    # loss at the cost of an fsync per trial.
    db.execute("PRAGMA synchronous=NORMAL")
    create_or_migrate(db, path)
    return db


def check_integrity(db: sqlite3.Connection) -> None:
    """A store whose bytes were damaged fails here, in one line, rather than in the middle of a search."""
    problems = [line for r in db.execute("PRAGMA quick_check(3)") for line in str(r[0]).splitlines()
                if line.strip() and not line.startswith("***")]
    if problems != ["ok"]:
        raise DamagedStore(problems[0] if problems else "integrity check failed")


def create_or_migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new store, or bring an older one to SCHEMA_VERSION: all of it or nothing."""
    db.execute("BEGIN IMMEDIATE")     # one writer at a time
    try:
        version = stored_version(db)
        if version is not None and version > SCHEMA_VERSION:
            raise NasnetError(f"{path}: trial store schema {version}, this nasnet reads {SCHEMA_VERSION} "
                              "(a newer nasnet wrote it)")
        if version == 1:
            migrate_from_1(db)
        for table in TABLES:
            db.execute(create_table(table))
        for statement in INDEXES:
            db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.commit()
    except BaseException:
        db.rollback()
        raise


def migrate_from_1(db: sqlite3.Connection) -> None:
    """Version 1 -> 2: trials gain rung, epochs, accuracy, cost (a v1 reward is an accuracy at rung 0);
    updates gain kl and clip_fraction; final gains repeat (its key becomes (trial_id, repeat)),
    accuracy and cost; the rungs table is new (created with the others)."""
    for column in ("rung", "epochs", "accuracy", "cost"):
        db.execute(f"ALTER TABLE trials ADD COLUMN {column} {TYPES[column]}")
    for tid, metrics, status, reward, cached in db.execute(
            "SELECT id, metrics, status, reward, cached_from FROM trials WHERE result_seq IS NOT NULL").fetchall():
        m = decode_json(metrics) or {}
        epochs = 0 if cached is not None else m.get("epochs_completed")
        db.execute("UPDATE trials SET rung=0, epochs=?, accuracy=? WHERE id=?",
                   (epochs if isinstance(epochs, int) else None, reward if status == "done" else None, tid))
    for column in ("kl", "clip_fraction"):
        db.execute(f"ALTER TABLE updates ADD COLUMN {column} {TYPES[column]}")
    db.execute(create_table("final", "final_v2"))
    db.execute("INSERT INTO final_v2 (trial_id, repeat, genotype, search_reward, epochs, payload, status, reward, "
               "accuracy, metrics, error, worker, attempts, created_at, started_at, finished_at) "
               "SELECT trial_id, 0, genotype, search_reward, epochs, payload, status, reward, reward, metrics, "
               "error, worker, attempts, created_at, started_at, finished_at FROM final")
    db.execute("DROP TABLE final")
    db.execute("ALTER TABLE final_v2 RENAME TO final")


def open_readonly(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection that also works in a directory this process may not write, and the private
    folder it reads from when it had to copy the store (the caller removes it), else None.

    WAL mode needs the -shm index beside the database even to read. Where the directory is writable,
    or the search left its -wal and -shm behind, `mode=ro` reads everything. Otherwise a store without
    pending WAL frames (the search ended and checkpointed) is opened `immutable`, which needs no -shm;
    one with frames SQLite cannot index in place is copied with its -wal to a private temporary folder
    and read there, so no committed trial is missed."""
    resolved = Path(path).resolve()
    uri = "file:" + quote(str(resolved))
    db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=10)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return _rows(db), None
    except sqlite3.OperationalError:
        db.close()
        if os.access(resolved.parent, os.W_OK):
            raise
    wal = resolved.with_name(resolved.name + "-wal")
    if not wal.is_file() or wal.stat().st_size == 0:
        return _rows(sqlite3.connect(uri + "?immutable=1", uri=True)), None
    copy = Path(tempfile.mkdtemp(prefix="nasnet-store-"))
    for source in (resolved, wal):
        shutil.copyfile(source, copy / source.name)
    return _rows(sqlite3.connect(copy / resolved.name, timeout=10)), copy
