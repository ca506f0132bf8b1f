"""Build the NAS-Bench-201 tables the package ships (src/nasnet/search/children/nb201_tables/) from public
copies of the benchmark's numbers, and cross-check those copies against each other.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained all 15,625 cells of its space on three datasets. Its own
release is a multi-gigabyte file; three public GitHub repositories hold copies of the numbers a search
needs, and this script reads them (give the folder holding them as SOURCE_DIR):

* ``nasbench201_{cifar10,cifar100,imagenet}.json`` from mingkai-zheng/GENIUS @
  97361d30b2da337edd0c8e1ed71b7c88b4a85d38, benchmark/: per cell string, the seed-mean validation
  (``val_acc_200``) and test (``test_acc_200``) accuracy after 200 epochs. The repository states no
  licence of its own; the numbers are NAS-Bench-201's (code and release MIT, D-X-Y).
* ``naslib_nb201_zen.zip`` from automl/NASLib @ 0428083bb8a5c79823da72bd471cf2aabd3a3bb7,
  run/results/benchmarks/nb201_zen.zip (Apache-2.0): per cell, one training run's validation accuracy
  (``val_accuracy``), the cell written as 6 op indices in NASLib's own edge order (1,2), (1,3), (1,4),
  (2,3), (2,4), (3,4) (nodes 1..4) and op order skip_connect, none, nor_conv_3x3, nor_conv_1x1,
  avg_pool_3x3 (its ``OP_NAMES_NB201``), converted here to NAS-Bench-201's cell string.
* ``nats_bench_test_means.csv`` from v-tao/nats-bench-landscape @ b307ae5fe6e8d7043cd4fe7d1c3532288271adb7,
  nats_bench.csv (no licence of its own; NATS-Bench's numbers, MIT): the seed-mean test accuracies
  of NATS-Bench's release, used only to cross-check.

Checks, written to --check (JSON) and printed: every file covers the same 15,625 cells; the optima are
the published ones (CIFAR-10 94.37 test, the best validation cell's test 94.37); NASLib's conversion
is the right one (its single-seed validation accuracy ranks cells like GENIUS's seed mean, Spearman
near 1, while the other plausible conversions do not); GENIUS's test means against NATS-Bench's.

    python tools/make_nb201_tables.py SOURCE_DIR            # writes the tables, NOTICE.md and manifest.json

The output is a compressed .npz per dataset (three float32 columns of 15,625 cells, row = the cell's
decisions read as a base-5 number) and manifest.json with each file's SHA-256, which the package checks
before reading a table.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nasnet.arch.nb201 import NB201_EDGES, NB201_OPS, NB201Cell, NB201Space  # noqa: E402
from nasnet.search.children.nb201 import (COLUMNS, DATASETS, MANIFEST, NUM_CELLS, TABLE_DIR,  # noqa: E402
                                          cell_decisions, cell_index, sha256, table_file)

GENIUS = {"cifar10": "nasbench201_cifar10.json", "cifar100": "nasbench201_cifar100.json",
          "imagenet16-120": "nasbench201_imagenet.json"}
NASLIB_ZIP = "naslib_nb201_zen.zip"
NASLIB_NAMES = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
NATS_CSV = "nats_bench_test_means.csv"
NATS_COLUMNS = {"cifar10": "CIFAR10TestAccuracy200Epochs", "cifar100": "CIFAR100TestAccuracy200Epochs",
                "imagenet16-120": "ImageNetTestAccuracy200Epochs"}
# NASLib's conventions (naslib/search_spaces/nasbench201/conversions.py): nodes 1..4, edges in this order
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
PUBLISHED = {"cifar10": (91.61, 94.37), "cifar100": (73.49, 73.51), "imagenet16-120": (46.73, 47.31)}
SOURCES = [
    ("NAS-Bench-201 (the numbers)", "D-X-Y/NAS-Bench-201 and D-X-Y/NATS-Bench (code and release)", "MIT"),
    ("validation and test accuracy, seed means", "mingkai-zheng/GENIUS @ 97361d30b2da337edd0c8e1ed71b7c88b4a85d38 : "
     "benchmark/nasbench201_{cifar10,cifar100,imagenet}.json", "none stated (a copy of NAS-Bench-201's numbers)"),
    ("validation accuracy, one seed", "automl/NASLib @ 0428083bb8a5c79823da72bd471cf2aabd3a3bb7 : "
     "run/results/benchmarks/nb201_zen.zip", "Apache-2.0"),
    ("cross-check only (not shipped)", "v-tao/nats-bench-landscape @ b307ae5fe6e8d7043cd4fe7d1c3532288271adb7 : "
     "nats_bench.csv", "none stated (a copy of NATS-Bench's numbers)"),
]


def decisions_of(text: str) -> list[int]:
    return NB201Space().encode(NB201Cell.parse(text))


def read_genius(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(path.read_text())
    if len(data) != NUM_CELLS:
        raise SystemExit(f"{path}: {len(data)} cells, expected {NUM_CELLS}")
    val, test = np.full(NUM_CELLS, np.nan), np.full(NUM_CELLS, np.nan)
    for text, row in data.items():
        i = cell_index(decisions_of(text))
        val[i], test[i] = row["val_acc_200"], row["test_acc_200"]
    assert not np.isnan(val).any() and not np.isnan(test).any(), f"{path}: cells missing"
    return val, test


def naslib_rows(path: Path, dataset: str) -> list[tuple[tuple[int, ...], float]]:
    """(NASLib op indices, val_accuracy) of every cell of one dataset in NASLib's zip."""
    pattern = re.compile(rf"benchmark--nasbench201--{re.escape(NASLIB_NAMES[dataset])}--\d+\.json$")
    rows = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if pattern.search(name):
                for entry in json.load(io.TextIOWrapper(z.open(name), "utf-8")):
                    rows.append((tuple(int(x) for x in entry["arch"].strip("()").split(",")),
                                 float(entry["val_accuracy"])))
    return rows


def naslib_to_decisions(ops: tuple[int, ...], op_names=NASLIB_OPS, edges=NASLIB_EDGES) -> list[int]:
    """NASLib's op indices (its edge and op order) as this package's decisions (NB201's string order)."""
    by_edge = {(i - 1, j - 1): op_names[o] for (i, j), o in zip(edges, ops)}
    return [NB201_OPS.index(by_edge[e]) for e in NB201_EDGES]


def naslib_column(rows, reference: np.ndarray, op_names=NASLIB_OPS, edges=NASLIB_EDGES) -> tuple[np.ndarray, float]:
    out = np.full(NUM_CELLS, np.nan)
    for ops, val in rows:
        out[cell_index(naslib_to_decisions(ops, op_names, edges))] = val
    if np.isnan(out).any():
        return out, float("nan")
    return out, float(spearmanr(out, reference).statistic)


def read_nats(path: Path) -> dict[str, np.ndarray]:
    cols = {d: np.full(NUM_CELLS, np.nan) for d in DATASETS}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            i = cell_index(decisions_of(row["ArchitectureString"]))
            for d in DATASETS:
                cols[d][i] = float(row[NATS_COLUMNS[d]])
    return cols


def check_dataset(dataset: str, columns: dict[str, np.ndarray], rows, nats: np.ndarray) -> dict:
    val, test, single = columns["val_mean"], columns["test_mean"], columns["val_single"]
    best_val = int(np.argmax(val))
    alternatives = {}
    for name, op_names, edges in (("NB201's op order instead of NASLib's", NB201_OPS, NASLIB_EDGES),
                                  ("the cell string's edge order instead of NASLib's", NASLIB_OPS,
                                   ((1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4)))):
        alternatives[name] = naslib_column(rows, val, op_names, edges)[1]
    diff = np.abs(test - nats)
    disconnected = np.array([not NB201Space().decode(cell_decisions(i)).connected() for i in range(NUM_CELLS)])
    return {
        "cells": NUM_CELLS, "naslib_cells": len(rows), "naslib_distinct": len({r[0] for r in rows}),
        "best_val_mean": float(val.max()), "best_test_mean": float(test.max()),
        "test_of_best_val_cell": float(test[best_val]), "best_val_cell": str(NB201Space().decode(cell_decisions(best_val))),
        "published_best_val_and_test": PUBLISHED[dataset],
        "best_val_single": float(single.max()),
        "spearman_val_single_vs_val_mean": float(spearmanr(single, val).statistic),
        "spearman_val_single_vs_test_mean": float(spearmanr(single, test).statistic),
        "spearman_val_mean_vs_test_mean": float(spearmanr(val, test).statistic),
        "spearman_val_single_vs_val_mean_other_conversions": alternatives,
        "test_mean_vs_nats": {"within_0.01": float((diff < 0.01).mean()), "within_0.5": float((diff < 0.5).mean()),
                              "max_abs_difference": float(diff.max()),
                              "spearman": float(spearmanr(test, nats).statistic)},
        "val_single_minus_val_mean_connected_cells": {"mean_abs": float(np.abs(single - val)[~disconnected].mean()),
                                                      "std": float((single - val)[~disconnected].std())},
        "disconnected_cells": int(disconnected.sum()),
        "disconnected_max_val_mean": float(val[disconnected].max()),
    }


NOTICE = """# The NAS-Bench-201 tables: sources and licences

The files `nb201-cifar10.npz`, `nb201-cifar100.npz` and `nb201-imagenet16-120.npz` hold, for each of
the 15,625 cells of NAS-Bench-201's space, one training run's validation accuracy (`val_single`), the
seed-mean validation accuracy (`val_mean`) and the seed-mean test accuracy (`test_mean`), in percent,
after 200 epochs. They were built by `tools/make_nb201_tables.py`.

**The numbers are NAS-Bench-201's**: X. Dong and Y. Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020 (and NATS-Bench, TPAMI 2021). The benchmark's
code and release (D-X-Y/NAS-Bench-201, D-X-Y/NATS-Bench) are under the MIT licence. Cite the paper
wherever these numbers are used.

They were taken from these public copies:

| what | repository @ commit : path | licence |
|---|---|---|
{rows}

The two copies marked "none stated" carry no licence of their own; they are copies of NAS-Bench-201's
published (MIT-licensed) numbers, which is what is reproduced here. NASLib's file is Apache-2.0; the
single-seed column is derived from it (converted from NASLib's edge and op order to NAS-Bench-201's
cell string).
"""


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed's format with fixed timestamps, so the same sources give the same bytes (and SHA-256)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source_dir", type=Path, help="the folder holding the public copies (see the docstring)")
    p.add_argument("--out", type=Path, default=TABLE_DIR, help=f"where the tables go (default {TABLE_DIR})")
    p.add_argument("--check", type=Path, default=ROOT / "bench" / "results" / "nb201" / "tables_check.json",
                   help="where the cross-checks are written (JSON)")
    args = p.parse_args(argv)
    src = args.source_dir
    nats = read_nats(src / NATS_CSV)
    manifest, checks = {"tables": {}, "columns": list(COLUMNS), "row": "the cell's 6 decisions as a base-5 number, "
                        "the first (edge 0->1) most significant; ops none, skip_connect, nor_conv_1x1, nor_conv_3x3, "
                        "avg_pool_3x3 = 0..4"}, {}
    args.out.mkdir(parents=True, exist_ok=True)
    for dataset in DATASETS:
        val, test = read_genius(src / GENIUS[dataset])
        rows = naslib_rows(src / NASLIB_ZIP, dataset)
        single, rho = naslib_column(rows, val)
        if np.isnan(single).any() or rho < 0.9:
            raise SystemExit(f"{dataset}: NASLib's table does not convert cleanly (Spearman {rho:.3f} against GENIUS)")
        columns = {"val_single": single, "val_mean": val, "test_mean": test}
        checks[dataset] = check_dataset(dataset, columns, rows, nats[dataset])
        path = args.out / table_file(dataset)
        write_npz(path, {c: columns[c].astype(np.float32) for c in COLUMNS})
        manifest["tables"][dataset] = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size}
        print(f"{dataset}: {json.dumps(checks[dataset])}")
    (args.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    rows = "\n".join(f"| {what} | {where} | {lic} |" for what, where, lic in SOURCES)
    (args.out / "NOTICE.md").write_text(NOTICE.format(rows=rows))
    args.check.parent.mkdir(parents=True, exist_ok=True)
    args.check.write_text(json.dumps({"sources": [list(s) for s in SOURCES], "checks": checks}, indent=2) + "\n")
    print(f"wrote {args.out} and {args.check}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
