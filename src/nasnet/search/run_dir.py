"""A search's run directory: the names of its files, its config, its lock, its best.json (paper §3, §4.4).

    config.json          the resolved SearchConfig (strategy, executor, child payload, budget)
    trials.db            the trial store (nasnet.search.store; SQLite, WAL mode)
    controller.pt        the strategy's state (controller weights, optimizer, baseline, counters, or
                         evolution's population)
    best.json            {"genotype", "reward", "trial", "stage", "metrics", ...}: the best so far
    trials.csv           one row per trial (written when the search stops)
    checkpoints/         ASHA: trial-000017.ckpt: each trial's child after its last rung (continued on promotion)
    ray_processes.json   the processes of a local Ray instance (removed when the search ends)
    .lock                held by the one driver of the run (an flock)

The search loop writes them, the report and `nasnet compare` read them; only this module spells
their names. Importing it does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import write_text
from ..errors import NasnetError
from ..locking import LOCK_FILE, RunLock  # noqa: F401 - the search takes the same lock as training
from .config import IDENTITY_FIELDS, SearchConfig

CONFIG_FILE = "config.json"
STORE_FILE = "trials.db"
CHECKPOINT_FILE = "controller.pt"
BEST_FILE = "best.json"
CSV_FILE = "trials.csv"
RAY_RECORD = "ray_processes.json"
CHECKPOINT_DIR = "checkpoints"


def is_run_dir(path: Path) -> bool:
    return (Path(path) / STORE_FILE).is_file()


def trial_checkpoint(run_dir: Path, trial_id: int) -> Path:
    """Where an ASHA trial's child keeps its training state between rungs (an absolute path: payloads carry it)."""
    return (Path(run_dir) / CHECKPOINT_DIR / f"trial-{trial_id:06d}.ckpt").resolve()


def read_json(path: Path) -> dict | None:
    """A JSON object file, or None when absent, unreadable (being replaced right now) or not an object."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_run_config(run_dir: str | Path) -> SearchConfig | None:
    """The config a run directory was started with, or None for a new directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return SearchConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as err:
        raise NasnetError(f"{path}: cannot read the run's config ({err})") from None


def write_config(run_dir: Path, config: SearchConfig) -> None:
    write_text(run_dir / CONFIG_FILE, config.to_json() + "\n")


def write_best(run_dir: Path, best: dict[str, Any]) -> None:
    write_text(run_dir / BEST_FILE, json.dumps(best, indent=2) + "\n")


def read_best(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / BEST_FILE)


def check_start(config: SearchConfig, run_dir: Path) -> SearchConfig | None:
    """What refuses a search from its config and the run directory alone (a top-k stage that would retrain
    the search child as it was; a run directory holding another search), without importing torch, so that
    `nasnet search` tells such a mistake at once. Returns the stored config of a run being continued."""
    config.validate_final_stage()
    stored = load_run_config(run_dir)
    if stored is not None:
        check_resumable(stored, config, run_dir)
    return stored


def check_resumable(stored: SearchConfig, config: SearchConfig, run_dir: Path) -> None:
    """A resumed run must keep what defines the search; the budget and resources may change."""
    a, b = stored.to_dict(), config.to_dict()
    for name in IDENTITY_FIELDS:
        pairs = [(f"{name}.{k}", v, b[name].get(k)) for k, v in a[name].items()] if isinstance(a[name], dict) \
            else [(name, a[name], b[name])]
        for field_name, old, new in pairs:
            if old != new:
                raise NasnetError(f"{run_dir} holds a search with {field_name}={old!r}; it cannot continue with "
                                  f"{new!r} (use a new --run-dir)")
