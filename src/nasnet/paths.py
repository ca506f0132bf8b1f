"""The paths a user names: what an input may be, what an output may replace.

An input is a regular file, or a folder where a folder is meant; anything else (a FIFO, a device, a
socket) is refused before it is opened, since reading a FIFO blocks until some other process writes
to it and a device such as /dev/zero never ends. An output that exists must be a regular file:
writing one replaces it (`atomic.replacing`), and replacing /dev/null or /dev/full would turn the
device into a plain file, so anything else is refused, with or without --force. Two outputs of one
command may not be one file. Every command checks its paths with these functions before it reads or
writes anything (docs/cli.md). Imports nothing heavy.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from .errors import NasnetError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def shown(path: str | Path, limit: int = 100) -> str:
    """A path quoted for a one-line message, shortened in the middle when it is very long."""
    text = str(path)
    if len(text) > limit:
        text = text[: limit - 33] + "..." + text[-30:]
    return repr(text)


def kind_of(path: str | Path) -> str | None:
    """"file", "folder", another kind of file in words ("a FIFO (named pipe)", "a character device", ...),
    or None when nothing is there (a link is followed: a link to a device is a device)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):        # missing, a dangling link, a name too long, an embedded NUL
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def check_writable_dir(path: str | Path, hint: str = "choose a location you can write, or fix its permissions"
                       ) -> None:
    """NasnetError (one line) unless this process can create files in `path`, or create `path` itself
    (checked at its nearest existing ancestor): called before anything is written, so that a path
    that cannot be written leaves nothing behind."""
    path = Path(path)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    kind = kind_of(probe)
    if kind not in (None, "folder"):
        raise NasnetError(f"cannot write under {path}: {probe} is {'a file' if kind == 'file' else kind}, not a "
                          "folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise NasnetError(f"cannot write to {probe if probe == path else path}: permission denied"
                          f"{'' if probe == path else f' in {probe}'} ({hint})")


def input_path(path: str | Path, want: str = "file", missing_ok: bool = False) -> Path:
    """`path`, checked before it is opened: it must exist (unless `missing_ok`, for readers that
    resolve a name themselves) and be what `want` says: "file", "folder" or "file or folder"."""
    path = Path(path).expanduser()
    kind = kind_of(path)
    if kind is None:
        if missing_ok:
            return path
        raise NasnetError(f"{shown(path)}: no such {want}")
    if kind in ("file", "folder"):
        if kind not in want:
            other = "a folder, not a file" if kind == "folder" else "a file, not a folder"
            raise NasnetError(f"{shown(path)} is {other}")
        return path
    raise NasnetError(f"{shown(path)} is {kind}, not a regular {want}: give a {want} (a pipe or a device is never "
                      "read)")


def output_file(path: str | Path, force: bool | None = None) -> Path:
    """`path` as the target of a file to write: new, or a regular file (`force` False refuses that too:
    the command's --force allows it; None: the command always overwrites). Its folder must be writable."""
    path = Path(path).expanduser()
    kind = kind_of(path)
    if kind == "folder":
        raise NasnetError(f"{shown(path)} is a folder: give the name of the file to write")
    if kind not in (None, "file"):
        raise NasnetError(f"{shown(path)} is {kind}, not a regular file: outputs are written to regular files "
                          f"only{' (--force does not change that)' if force is not None else ''}; choose another path")
    if kind == "file" and force is False:
        raise NasnetError(f"{shown(path)} exists; pass --force to overwrite it")
    check_writable_dir(path.parent)
    return path


def output_folder(path: str | Path) -> Path:
    """`path` as a folder to write into: new or an existing folder, and writable."""
    path = Path(path).expanduser()
    kind = kind_of(path)
    if kind not in (None, "folder"):
        raise NasnetError(f"{shown(path)} is {'a file' if kind == 'file' else kind}, not a folder: give a folder "
                          "to write into")
    check_writable_dir(path)
    return path


def distinct_outputs(outputs: Iterable[tuple[str, str | Path]]) -> None:
    """Refuse two outputs (flag, path) of one command that name the same file: the second would replace the
    first. Paths are compared resolved (links and `..` followed), and by inode when both exist."""
    seen: dict[str, str] = {}
    for flag, path in outputs:
        path = Path(path).expanduser()
        key = os.path.realpath(path)
        for other_key, other_flag in seen.items():
            if key == other_key or _same_file(key, other_key):
                raise NasnetError(f"{other_flag} and {flag} both write {shown(path)}: give each output its own "
                                  "file")
        seen[key] = flag


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
