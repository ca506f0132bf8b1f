"""The `nasnet` command line.

Each subcommand lives in its own module of this package and defines ``COMMAND`` (its name),
``HELP`` (one line), ``ORDER`` (position in the help), ``add_arguments(parser)`` and
``run(args) -> int``. Modules are discovered, so adding a command is adding a file. Keep their
top-level imports light (torch is imported inside ``run``) so ``nasnet --help`` stays fast.

A user mistake raises NasnetError: it is printed as one line, without a traceback, exit status 2;
so are the parser's own errors (an unknown flag, a missing value). Flag values may be negative
numbers (`--cost-weight -1e-3`). A module may define ``INERT``, rules ``(dest, applies(args), reason)``:
a flag given where it has no effect is refused with the reason (`_parse.inert`), before ``run``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import re
import sys

from ..errors import NasnetError
from ._parse import inert


# OSErrors that say something about the user's paths or machine, not about this program
_ENVIRONMENT_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                       errno.ENOTDIR, errno.EISDIR}


def _command_modules():
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "COMMAND"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.COMMAND))


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is in --help) and negative numbers as values: any argument
    that starts with '-' and a digit (`-1e-3`, `-1,2`, `-.5`) is a value, never taken for a flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"-\.?\d")

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(
        prog="nasnet",
        description="NASNet: search a convolutional cell on a small dataset, transfer it, use NASNet models.",
    )
    parser.add_argument("--version", action="version", version=f"nasnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.COMMAND, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _inert=getattr(mod, "INERT", ()), _parser=p)
    return parser


def _refuse_inert(args: argparse.Namespace) -> None:
    """A flag given (differing from its default) where it has no effect is a mistake: refused, with why."""
    parser = args._parser
    for dest, applies, reason in args._inert:
        if getattr(args, dest) != parser.get_default(dest) and not applies(args):
            action = next(a for a in parser._actions if a.dest == dest)
            raise inert(max(action.option_strings, key=len), reason)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args._argv = argv  # the command line as given (`nasnet train --nproc K` re-runs it in every process)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        _refuse_inert(args)
        return int(args._run(args) or 0)
    except NasnetError as err:
        print(f"nasnet {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _ENVIRONMENT_ERRORS:
            raise
        # the last line of defence for a path the user gave that cannot be written (each command checks
        # its outputs before starting, so this should only meet a race or an unusual file system)
        name = str(err.filename or "")
        where = f"{name if len(name) <= 100 else name[:60] + '...' + name[-30:]}: " if name else ""
        print(f"nasnet {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
