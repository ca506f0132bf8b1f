import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:        # the property tests then fail at their own import, naming the missing package
    pass
else:
    # Property tests draw the same examples on every run, so a failure is reproducible and a rare draw
    # cannot fail one CI run in many; no per-example deadline on a shared 2-core machine; no example
    # database (.hypothesis/) left in the checkout.
    _hypothesis_settings.register_profile("nasnet", derandomize=True, deadline=None, database=None)
    _hypothesis_settings.load_profile("nasnet")


def _cli_env(env: dict | None = None) -> dict:
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return full_env


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
    return subprocess.run([sys.executable, "-m", "nasnet", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=_cli_env(env))


def default_sigint() -> None:
    """In a child process before exec (`preexec_fn`): give SIGINT its default disposition, so that Python
    turns it into KeyboardInterrupt. A suite started as a background job (`pytest &`, nohup) runs with
    SIGINT ignored, and children inherit that; a test that sends SIGINT must not depend on it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _without_dac_override() -> None:
    """In a child process before exec: drop the capabilities that let root ignore file permissions, so
    that a read-only folder is read-only to the command under test even when the tests run as root."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def permissions_apply() -> bool:
    """Whether a command started by `run_cli_batch(..., unprivileged=True)` is refused a read-only folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o555)
        try:
            probe = subprocess.run([sys.executable, "-c", f"import os; print(os.access({folder!r}, os.W_OK))"],
                                   capture_output=True, text=True, preexec_fn=_without_dac_override)
        finally:
            os.chmod(folder, 0o755)
    return probe.returncode == 0 and probe.stdout.strip() == "False"


BATCH_DRIVER = """
import contextlib, io, json, sys, traceback
from nasnet.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        except BaseException:
            rc, se = "exception", io.StringIO(traceback.format_exc())
    out.append({"argv": argv, "rc": rc, "stdout": so.getvalue(), "stderr": se.getvalue()})
print(json.dumps(out))
"""


def run_cli_batch(commands: list[list[str]], unprivileged: bool = False, timeout: float = 600) -> list[dict]:
    """Run several `nasnet` command lines in one fresh process (torch is imported once): a dict per
    command with rc (an int, or "exception" with the traceback as stderr), stdout and stderr."""
    import json

    r = subprocess.run([sys.executable, "-c", BATCH_DRIVER, json.dumps(commands)], capture_output=True, text=True,
                       timeout=timeout, env=_cli_env(), preexec_fn=_without_dac_override if unprivileged else None)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def one_error_line(rc, err: str, *needles: str) -> str:
    """Assert a command failed the way a user mistake must: exit status 2, one line on stderr, no traceback,
    the line containing every needle. Returns the line."""
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def checksums(folder) -> dict[str, str]:
    """sha256 of every file under `folder` (relative path -> digest): what "nothing saved was altered" compares."""
    import hashlib

    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_device(path, null: bool = True) -> None:
    """A character device node at `path`, inside the test's own folder (never the system's /dev): the
    numbers of /dev/null, or with `null` False of /dev/full. Skips the test, saying why, where this process
    may not create device nodes (mknod needs CAP_MKNOD: root, or a container that grants it)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3 if null else 7))
    except PermissionError as err:
        pytest.skip(f"cannot create a device node in the test's folder ({err.strerror}): mknod needs CAP_MKNOD")


def special_files(folder) -> dict[str, int]:
    """Everything under `folder` that is not a regular file or a folder (FIFOs, devices): path -> its st_mode.
    A command must leave these as they were (never open a FIFO, never replace a device)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.rglob("*")):
        mode = p.lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            out[str(p.relative_to(folder))] = mode
    return out


def saved_state(folder) -> dict:
    """What "nothing saved was altered" compares in a folder that may hold search runs: every file's checksum,
    a trial store (trials.db) by its rows instead, and not SQLite's -wal/-shm journal files, which a reader
    that opens the store may rewrite without changing a row."""
    state = {}
    for name, digest in checksums(folder).items():
        if name.endswith(("trials.db-wal", "trials.db-shm")):
            continue
        if name.endswith("trials.db"):
            db = sqlite3.connect(f"file:{Path(folder) / name}?mode=ro", uri=True)
            try:
                digest = list(db.iterdump())
            finally:
                db.close()
        state[name] = digest
    return state


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def _torch_global_state():
    """Tests that run a command in this process (`nasnet.cli.main`) must not leave torch's global state
    (threads, grad mode) changed for the tests after them."""
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    torch.set_grad_enabled(grad)


def trial_rows(run_dir, sql: str = "SELECT * FROM trials ORDER BY id") -> list[dict]:
    """Rows of a search run's trial store (RUN_DIR/trials.db) as dicts. Opened read-only, so polling a run
    that has not created its store yet raises sqlite3.OperationalError instead of creating an empty file."""
    db = sqlite3.connect(f"file:{Path(run_dir) / 'trials.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    finally:
        db.close()


def in_lockstep(a, b, rng, steps: int) -> None:
    """Drive two strategies for `steps` proposals, telling both the same random reward, and assert that
    they propose the same every time (a restored state continues exactly as the original)."""
    for _ in range(steps):
        pa, pb = a.ask(), b.ask()
        assert pa == pb
        r = rng.random()
        a.tell(pa, r)
        b.tell(pb, r)
