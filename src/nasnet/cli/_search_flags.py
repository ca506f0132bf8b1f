"""The flags of `nasnet search` and `nasnet compare` against the fields of a SearchConfig.

The library names a setting by its field in backquotes (`strategy.population`, nasnet.search.rules);
here each becomes the flag the field declares (--population), and a value it states, "`field` (5)", is
marked as the default's or the stored run's when the user did not give that flag. A continued run
refuses a change of what defines it before anything else is checked, and a flag given where it has
no effect is refused with the reason (`SearchConfig.unused`). See docs/cli.md.
"""

from __future__ import annotations

import argparse
import copy
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import NasnetError
from ..search.config import SearchConfig
from ..search.run_dir import identity_changes, resumed_differs
from ._parse import inert
from ._search_args import SETTINGS, changes_from_args, resolve_config

# field -> the flag that sets it, as the field declares it (every other child.train / child.model /
# child.options key: --child-set)
FLAGS = {s.path: s.option.flag for s in SETTINGS}

_FIELD = re.compile(r"`([A-Za-z_][\w.]*)`(?: \(([^()]*)\))?")


def flag_for(name: str, flags: dict[str, str] | None = None) -> str:
    """The flag that sets a field ("strategy.population" -> "--population"), else the field's name."""
    flags = {**FLAGS, **(flags or {})}
    if name in flags:
        return flags[name]
    part, _, rest = name.partition(".")
    section, _, key = rest.partition(".")
    if part == "child" and key and section in ("train", "model"):
        return f"--child-set {section}.{key}"
    if part == "child" and key and section == "options":
        return f"--child-set {key}"
    if part == "child" and section in ("train", "model", "options"):     # the dict as a whole
        return "--child-set"
    return name


def given_fields(args: argparse.Namespace) -> list[str]:
    """The fields the flags on this command line set, in the order of the help."""
    fields = [s.path for s in SETTINGS if getattr(args, s.dest, None) is not None]
    return fields + list(_child_sets(args))


def _child_sets(args: argparse.Namespace) -> dict[str, str]:
    """field -> "--child-set KEY" for each --child-set given (the flag a message should name for that field)."""
    out = {}
    for item in getattr(args, "child_set", None) or []:
        key = item.partition("=")[0].strip()
        section, dot, name = key.partition(".")
        out[f"child.{section}.{name}" if dot and section in ("train", "model") else f"child.options.{key}"] = \
            f"--child-set {key}"
    return out


def in_flags(message: str, given: list[str], stored: bool, flags: dict[str, str] | None = None) -> str:
    """A library message with its fields named as flags (`flags` adds a command's own); a value stated for a
    flag the user did not give is marked as the default's (a new run) or the run's (a continued one)."""
    def word(m: re.Match) -> str:
        name, value = m.groups()
        flag = flag_for(name, flags)
        if value is None:
            return flag
        whose = "" if name in given else ", the run's" if stored else ", the default"
        return f"{flag} ({value}{whose})"

    return _FIELD.sub(word, message)


@contextmanager
def flag_words(args: argparse.Namespace, stored: bool = False, flags: dict[str, str] | None = None
               ) -> Iterator[list[str]]:
    """Errors raised inside name flags, not fields (`in_flags`; `flags`: fields the command sets with flags of
    its own). Yields the fields the flags set (taken on entry: a command may fill in values afterwards)."""
    given, flags = given_fields(args), {**(flags or {}), **_child_sets(args)}
    try:
        yield given
    except NasnetError as err:
        raise NasnetError(in_flags(str(err), given + list(flags), stored, flags)) from None


def _applied(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A config's to_dict() with SearchConfig.replace() keywords applied, unchecked."""
    data = copy.deepcopy(data)
    for key, value in changes.items():
        *parts, last = key.split(".")
        target = data
        for part in parts:
            target = target[part]
        target[last] = value
    return data


def resolve(args: argparse.Namespace, stored: SearchConfig | None, run_dir: str | Path) -> SearchConfig:
    """The run's config from the flags (`resolve_config`): a continued run first refuses a change of what
    defines it (before that change could fail a check of its own), then any flag given that has no effect."""
    if stored is not None:
        changed = identity_changes(stored.to_dict(), _applied(stored.to_dict(), changes_from_args(args, stored)))
        if changed:
            raise resumed_differs(Path(run_dir), *changed[0])
    config = resolve_config(args, stored)
    refuse_unused(given_fields(args), [config])
    return config


def refuse_unused(given: list[str], configs: list[SearchConfig]) -> None:
    """Refuse a field set by a flag that has no effect in any of `configs` (the runs it would apply to)."""
    for name in given:
        reasons = [config.unused(name) for config in configs]
        if all(reasons):
            raise inert(f"`{name}`", reasons[0])
