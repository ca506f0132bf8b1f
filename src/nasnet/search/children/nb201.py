"""The NAS-Bench-201 child: a cell's reward looked up in the benchmark's published results, no training.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained every one of the 15,625 cells of its space
(nasnet.arch.nb201) on CIFAR-10, CIFAR-100 and ImageNet16-120 for 200 epochs, with three seeds. This
package ships compact tables of those results (`nb201_tables/`, built by tools/make_nb201_tables.py;
sources and licences in its NOTICE.md and docs/nb201.md), so a search in that space costs lookups and
can be scored against ground truth. Per dataset and cell, in percent:

    val_single   one training run's validation accuracy (NASLib's copy of the benchmark: one seed)
    val_mean     the validation accuracy averaged over the benchmark's seeds
    test_mean    the test accuracy averaged over the seeds

(CIFAR-10's validation numbers are the benchmark's "cifar10-valid" runs, trained on half the training
set; its test numbers come from the runs on the whole training set, as the benchmark reports them.)

Payload (besides the keys every child gets)::

    data     "cifar10" (default) | "cifar100" | "imagenet16-120"
    reward   "single" (default: what one real training run would show) | "mean" (the seed mean)

Result: "reward" and "val_accuracy" are the chosen validation accuracy in [0, 1]; "test_accuracy" is
the seed-mean test accuracy in [0, 1], recorded so that a search's pick can be judged on data its
selection never saw. The search never selects on it: the objective reads "reward" (and a cost key)
only (nasnet.search.objective). A missing or damaged table is a one-line NasnetError.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ...arch.nb201 import NB201_EDGES, NB201_OPS, NB201Cell, NB201Space
from ...errors import NasnetError
from ...registry import unknown
from ..choices import NB201_CHILD_FN
from ..choices import NB201_DATASETS as DATASETS
from ..choices import NB201_REWARDS as REWARDS

COLUMNS: tuple[str, ...] = ("val_single", "val_mean", "test_mean")
REWARD_COLUMNS = {"single": "val_single", "mean": "val_mean"}     # reward kind -> the column it reads
TABLE_DIR = Path(__file__).with_name("nb201_tables")
MANIFEST = "manifest.json"
NUM_CELLS = len(NB201_OPS) ** len(NB201_EDGES)


def cell_index(decisions: Sequence[int]) -> int:
    """A cell's row in the tables: its decisions read as a base-5 number, the first decision most significant."""
    index = 0
    for d in decisions:
        index = index * len(NB201_OPS) + int(d)
    return index


def cell_decisions(index: int) -> list[int]:
    """The decisions of the cell in row `index` (the inverse of `cell_index`)."""
    out = []
    for _ in NB201_EDGES:
        index, d = divmod(int(index), len(NB201_OPS))
        out.append(d)
    return out[::-1]


def table_file(dataset: str) -> str:
    return f"nb201-{dataset}.npz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Table:
    """One dataset's results for every cell (percent, row = `cell_index`)."""

    dataset: str
    val_single: Any     # numpy arrays of NUM_CELLS float32
    val_mean: Any
    test_mean: Any

    def column(self, reward: str) -> Any:
        """The validation column a reward reads: one training run's ("single") or the seed mean ("mean")."""
        return getattr(self, REWARD_COLUMNS[reward])

    def lookup(self, decisions: Sequence[int]) -> dict[str, float]:
        i = cell_index(decisions)
        return {c: float(getattr(self, c)[i]) for c in COLUMNS}

    @property
    def best_test(self) -> float:
        """The highest test accuracy of any cell (the dataset's optimum)."""
        return float(self.test_mean.max())


def check_dataset(dataset: Any) -> str:
    if dataset not in DATASETS:
        raise NasnetError(f"nb201: {unknown('dataset', dataset, DATASETS)}")
    return dataset


@functools.lru_cache(maxsize=None)
def load_table(dataset: str, table_dir: str | None = None) -> Table:
    """The shipped table of `dataset`, its checksum verified against the manifest (cached per process)."""
    import numpy as np

    check_dataset(dataset)
    folder = Path(table_dir) if table_dir else TABLE_DIR
    reinstall = "reinstall nasnet, or rebuild the tables with tools/make_nb201_tables.py"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        expected = manifest["tables"][dataset]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise NasnetError(f"nb201: cannot read the tables' manifest {folder / MANIFEST} "
                          f"({type(err).__name__}); {reinstall}") from None
    path = folder / table_file(dataset)
    if not path.is_file():
        raise NasnetError(f"nb201: the {dataset} table {path} is missing; {reinstall}")
    if sha256(path) != expected:
        raise NasnetError(f"nb201: the {dataset} table {path} is damaged (its SHA-256 does not match the manifest); "
                          f"{reinstall}")
    with np.load(path, allow_pickle=False) as data:
        columns = {c: data[c] for c in COLUMNS}
    if any(v.shape != (NUM_CELLS,) for v in columns.values()):
        raise NasnetError(f"nb201: the {dataset} table {path} does not hold {NUM_CELLS} cells; {reinstall}")
    return Table(dataset, **columns)


def options(payload: dict[str, Any]) -> tuple[str, str]:
    """(dataset, reward) of a payload, checked."""
    dataset = check_dataset(payload.get("data", "cifar10"))
    reward = payload.get("reward", "single")
    if reward not in REWARDS:
        raise NasnetError(f"nb201: reward must be one of {', '.join(REWARDS)} (--child-set reward=mean), "
                          f"got {reward!r}")
    return dataset, reward


def check_child_settings(config) -> None:
    """Before a search with this child starts: its table must load (a missing or damaged one is one line, not a
    search whose every child fails)."""
    if config.child.fn == NB201_CHILD_FN:
        load_table(config.child.data)


def nb201_child(payload: dict[str, Any]) -> dict[str, Any]:
    """Look the payload's cell up (see the module doc)."""
    dataset, reward = options(payload)
    cell = NB201Cell.parse(payload.get("genotype", ""))
    row = load_table(dataset).lookup(NB201Space().encode(cell))
    val = row[REWARD_COLUMNS[reward]] / 100
    return {
        "status": "done", "reward": val, "val_accuracy": val, "test_accuracy": row["test_mean"] / 100,
        "benchmark": f"nb201:{dataset}", "reward_kind": reward, "epochs_completed": 0, "error": None,
    }
