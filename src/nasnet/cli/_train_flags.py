"""The flags of `nasnet train` and `nasnet eval` for the names the training library's messages use.

The library names what a Python caller sets, in backquotes: a TrainConfig field or an argument
(`batch_size`, `run_dir`, `nproc`), a ModelConfig field as `model.FIELD`, and a value to give it as
`grad_clip=5`. Here each becomes what sets it on the command line: the command's own flag, found in
its parser by the argument's name (--batch-size, --device cpu), else --set FIELD=VALUE where the
command has --set; any other name is left as it is, without the backquotes (docs/cli.md, "Messages
name what you set"). The search's commands do the same with their own table (_search_flags).
"""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import NasnetError

_NAME = re.compile(r"`([A-Za-z_][\w.]*)(?:=([^`\s]+))?`")
# a library argument whose flag has another name (run_worker's timeout_s is --dist-timeout)
ALIASES = {"timeout_s": "dist_timeout"}


def in_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """`message` with every backquoted name, or `name=value`, written as the flag of `parser` that sets it."""
    flags = {a.dest: next(o for o in a.option_strings if o.startswith("--"))
             for a in parser._actions if any(o.startswith("--") for o in a.option_strings)}
    has_set = "set" in flags

    def word(m: re.Match) -> str:
        name, value = m.groups()
        flag = flags.get(ALIASES.get(name, name))
        if flag:
            return flag if value is None else f"{flag} {value}"
        text = name if value is None else f"{name}={value}"
        return f"--set {text}" if has_set else text

    return _NAME.sub(word, message)


@contextmanager
def flag_words(args: argparse.Namespace) -> Iterator[None]:
    """A NasnetError raised inside names the command's flags, not the library's names (`in_flags`)."""
    try:
        yield
    except NasnetError as err:
        raise NasnetError(in_flags(str(err), args._parser)) from None


def stderr_lines(args: argparse.Namespace, prefix: str) -> Callable[[str], None]:
    """A callback that prints a library's line on stderr after `prefix`, its names written as flags."""
    return lambda line: print(prefix + in_flags(line, args._parser), file=sys.stderr)
