"""Where a TensorFlow checkpoint's files are: the ``.index`` and ``.data-NNNNN-of-NNNNN`` shards
behind a prefix such as ``model.ckpt`` (docs/formats.md).

`resolve_prefix` accepts the prefix, the ``.index`` or a ``.data-*`` file, or a folder holding one
checkpoint (with several, tf.train's ``checkpoint`` state file names the newest; without it the user
must name one). `extract_archive` copies one checkpoint's index and data members out of a release
archive (``.tar.gz`` / ``.tgz`` / ``.tar``) into a folder, by name only, so that no member path can
reach outside it. Every problem is one `NasnetError` line naming the path.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import zlib
from pathlib import Path

from ..errors import NasnetError, first_line

DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<shards>\d{5})$")


def data_path(prefix: Path, shard: int, shards: int) -> Path:
    return prefix.parent / f"{prefix.name}.data-{shard:05d}-of-{shards:05d}"


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and (name.endswith(".tar.gz") or name.endswith(".tgz") or name.endswith(".tar"))


def resolve_prefix(path: str | Path) -> Path:
    """The checkpoint prefix for a prefix, an .index or .data file, or a folder holding one checkpoint."""
    path = Path(path).expanduser()
    where = repr(str(path))
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        state = path / "checkpoint"  # tf.train's state file names the newest checkpoint
        if len(indexes) > 1 and state.is_file():
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
            if m:
                prefix = Path(m.group(1))
                return prefix if prefix.is_absolute() else path / prefix
        if not indexes:
            raise NasnetError(f"{where}: no TensorFlow checkpoint in this folder (no *.index file)")
        raise NasnetError(f"{where} holds {len(indexes)} checkpoints ({', '.join(p.name for p in indexes[:5])}); "
                          "name one of them")
    if path.name.endswith(".index"):
        prefix = path.with_suffix("")
    elif m := DATA_RE.match(path.name):
        prefix = path.parent / m.group("prefix")
    else:
        prefix = path
    index = prefix.parent / (prefix.name + ".index")
    if not index.is_file():
        if not path.exists():
            raise NasnetError(f"{where}: no such file or checkpoint")
        raise NasnetError(f"{where}: not a TensorFlow checkpoint ({index.name} not found beside it)")
    return prefix


def extract_archive(path: Path, into: Path) -> Path:
    """Copy the index and data members of one checkpoint out of a tar archive; return its prefix."""
    where = repr(str(path))
    try:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            indexes = [m for m in members if m.name.endswith(".index")]
            if not indexes:
                raise NasnetError(f"{where}: the archive holds no TensorFlow checkpoint (no *.index member)")
            if len(indexes) > 1:
                names = ", ".join(m.name for m in indexes[:5])
                raise NasnetError(f"{where}: the archive holds {len(indexes)} checkpoints ({names}); extract it "
                                  "and name one")
            prefix = Path(indexes[0].name).name[: -len(".index")]
            wanted = [indexes[0]] + [m for m in members if (d := DATA_RE.match(Path(m.name).name))
                                     and d.group("prefix") == prefix]
            for member in wanted:
                source = tar.extractfile(member)
                if source is None:
                    raise NasnetError(f"{where}: archive member {member.name!r} cannot be read")
                with source, open(into / Path(member.name).name, "wb") as out:  # by name only: no paths
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise NasnetError(f"{where} is not a readable tar archive (truncated or damaged: {first_line(err)})") from None
    return into / prefix
