"""One process per run directory: an advisory lock on RUN_DIR/.lock (flock), for searches and training runs.

The kernel releases an flock when its holder exits, however it exits (SIGKILL included), so a run
that crashed never leaves a stale lock behind. The lock file itself stays (an empty file): its
presence means nothing, only a held lock does. Under torchrun only rank 0 takes the training lock.
Imports nothing heavy.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NasnetError

LOCK_FILE = ".lock"


def unwritable(path: Path) -> NasnetError:
    """The one-line error for a run directory (or its parent) that this process may not write."""
    return NasnetError(f"cannot write to {path}: permission denied (choose a directory you can write, "
                       "or fix its permissions)")


class RunLock:
    """An exclusive, non-blocking flock on RUN_DIR/.lock; `owner` names the command in the refusal
    ("nasnet search", "nasnet train")."""

    def __init__(self, run_dir: str | Path, owner: str = "nasnet search"):
        self.dir = Path(run_dir)
        self.path = self.dir / LOCK_FILE
        self.owner = owner
        self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock (the directory must exist); NasnetError if another process holds it or the
        directory cannot be written."""
        if self._file is not None:
            return
        try:
            self._file = open(self.path, "a+")
        except PermissionError:
            raise unwritable(self.dir) from None
        except OSError as err:
            raise NasnetError(f"cannot use {self.dir} as a run directory: {err.strerror or err}") from None
        try:
            import fcntl
        except ImportError:        # not POSIX: no lock
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.release()
            raise NasnetError(f"{self.dir} is in use by another {self.owner}; wait for it or stop it") from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        """Release the lock and delete its file (used when a failed start removes what it created)."""
        self.release()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
