"""Atomic file writes: every file the project writes for a user (checkpoints, model files, exports,
run-directory JSON/CSV, reports) is written to a temporary file beside its target, flushed to disk
and renamed over the target (os.replace), so a crash or a concurrent reader sees either the old
file or the new one, never a torn one. Imports nothing heavy (the search and report use it
without torch).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_writable_dir(path: str | Path, hint: str = "choose a location you can write, or fix its permissions"
                       ) -> None:
    """NasnetError (one line) unless this process can create files in `path`, or create `path` itself
    (checked at its nearest existing ancestor): called before anything is written, so that a path
    that cannot be written leaves nothing behind."""
    from .errors import NasnetError

    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NasnetError(f"cannot write under {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise NasnetError(f"cannot write to {probe if probe == path else path}: permission denied"
                          f"{'' if probe == path else f' in {probe}'} ({hint})")


def temporary_sibling(path: Path) -> Path:
    """A new empty file beside `path` (same file system, so os.replace is atomic), with the
    permissions a plain open() would give (mkstemp's are owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s new content to (by any writer: torch.save, onnx,
    matplotlib...); when the block ends without error it is synced and renamed over `path`,
    otherwise removed."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
