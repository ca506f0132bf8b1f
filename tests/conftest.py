import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` are skipped, visibly (-ra lists the reason), where CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: run on a GPU machine (bench/gpu_suite.py checks the same)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run `python -m nasnet ARGS` in a subprocess; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    src = str(ROOT / "src")
    full_env["PYTHONPATH"] = src + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-m", "nasnet", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli


def trial_rows(run_dir, sql: str = "SELECT * FROM trials ORDER BY id") -> list[dict]:
    """Rows of a search run's trial store (RUN_DIR/trials.db) as dicts."""
    db = sqlite3.connect(Path(run_dir) / "trials.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()
