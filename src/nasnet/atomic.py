"""Atomic file writes: every file the project writes for a user (checkpoints, model files, exports,
run-directory JSON/CSV, reports) is written to a temporary file beside its target, flushed to disk
and renamed over the target (os.replace), so a crash or a concurrent reader sees either the old
file or the new one, never a torn one. Every such file gets the permissions a plain open() gives
(0644 under the usual umask), whatever the writer did to the temporary file; only a new path or a
regular file is ever replaced (never a device or a FIFO: nasnet.paths). Imports nothing heavy (the
search and report use it without torch).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .paths import kind_of, output_file


def make_folder(path: str | Path) -> Path:
    """Create `path` and its missing parents; one line (NasnetError) naming the folder when the file system
    refuses (a read-only or virtual file system such as /proc, where access checks pass but nothing can be
    created)."""
    from .errors import NasnetError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NasnetError(f"cannot create the folder {path}: {err.strerror or err}") from None
    return path


def _file_mode() -> int:
    """The permissions a plain open() gives a new file under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_sibling(path: Path) -> Path:
    """A new empty file beside `path` (same file system, so os.replace is atomic), with the
    permissions a plain open() would give (mkstemp's are owner-only)."""
    from .errors import NasnetError

    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as err:
        raise NasnetError(f"cannot write {path}: {err.strerror or err}") from None
    os.close(fd)
    os.chmod(tmp, _file_mode())
    return Path(tmp)


def _refuse_special(path: Path) -> None:
    """Only a regular file is ever replaced: replacing a device (/dev/null) or a FIFO would turn it into a
    plain file (see nasnet.paths)."""
    if kind_of(path) not in (None, "file"):
        output_file(path)       # raises, naming what the path is


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s new content to (by any writer: torch.save, onnx,
    matplotlib...); when the block ends without error it is synced, given the permissions of a new
    file (whatever the writer did to it: some replace the file they are given) and renamed over `path`,
    otherwise removed. `path` may be new or a regular file, nothing else. An OSError about the temporary
    file is reported as one about `path` (the user never named the temporary file)."""
    path = Path(path)
    _refuse_special(path)
    tmp = temporary_sibling(path)
    try:
        try:
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(tmp, _file_mode())
            os.replace(tmp, path)
        except OSError as err:
            if str(tmp) not in (err.filename, err.filename2):
                raise
            from .errors import NasnetError

            raise NasnetError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
