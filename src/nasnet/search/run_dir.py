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
from .rules import flatten, quoted, shown

CONFIG_FILE = "config.json"
STORE_FILE = "trials.db"
CHECKPOINT_FILE = "controller.pt"
BEST_FILE = "best.json"
CSV_FILE = "trials.csv"
RAY_RECORD = "ray_processes.json"
CHECKPOINT_DIR = "checkpoints"
COMPARE_CSV = "compare.csv"          # a nasnet compare folder: these beside one run directory per run
COMPARE_JSON = "compare.json"


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
    except (OSError, ValueError, NasnetError) as err:
        raise NasnetError(f"{path}: cannot read the run's config ({err})") from None


def write_config(run_dir: Path, config: SearchConfig) -> None:
    write_text(run_dir / CONFIG_FILE, config.to_json() + "\n")


def write_best(run_dir: Path, best: dict[str, Any]) -> None:
    write_text(run_dir / BEST_FILE, json.dumps(best, indent=2) + "\n")


def read_best(run_dir: Path) -> dict | None:
    return read_json(Path(run_dir) / BEST_FILE)


def check_start(config: SearchConfig, run_dir: Path) -> SearchConfig | None:
    """What refuses a search from its config and the run directory alone (a top-k stage that would retrain
    the search child as it was; a run directory holding another search, or a comparison), without importing
    torch, so that `nasnet search` tells such a mistake at once. Returns the stored config of a run being
    continued."""
    config.validate_final_stage()
    if not is_run_dir(run_dir) and (Path(run_dir) / COMPARE_JSON).is_file():
        raise NasnetError(f"{run_dir} holds a comparison (nasnet compare), not a search; give the search its own "
                          "--run-dir")
    stored = load_run_config(run_dir)
    if stored is not None:
        check_resumable(stored, config, run_dir)
    return stored


def identity_changes(stored: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, stored value, new value) for each field defining the search (IDENTITY_FIELDS; inside them, each
    key of the child's train/model overrides) that differs between two configs' to_dict()."""
    old, now = dict(flatten(stored)), dict(flatten(new))
    names = sorted(n for n in {*old, *now} if n.split(".")[0] in IDENTITY_FIELDS and "[" not in n)
    return [(n, old.get(n), now.get(n)) for n in names if old.get(n) != now.get(n)]


def check_resumable(stored: SearchConfig, config: SearchConfig, run_dir: Path) -> None:
    """A resumed run must keep what defines the search; the budget and resources may change."""
    changed = identity_changes(stored.to_dict(), config.to_dict())
    if changed:
        raise resumed_differs(run_dir, *changed[0])


def resumed_differs(run_dir: Path, name: str, old: Any, new: Any) -> NasnetError:
    def value(v):
        return "not set" if v is None else shown(v)

    return NasnetError(f"{run_dir} holds a search whose {quoted(name)} is {value(old)}; it cannot continue with "
                       f"{value(new)} (use a new --run-dir)")
