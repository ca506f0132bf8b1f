"""Small parsers shared by commands: `KEY=VALUE` items whose value is JSON when it parses, numbers with
words, whole-number lists, bounded counts, the --data flag, and a flag made from a declared setting."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import NasnetError
from ..registry import names_of


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false/null, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def number_or(flag: str, *words: str):
    """A parser for a flag that takes a number or one of `words` (the config checks the number's range)."""
    def convert(text: str) -> float | str:
        if text in words:
            return text
        try:
            return float(text)
        except ValueError:
            raise NasnetError(f"{flag} must be a finite number or {' or '.join(map(repr, words))}, got {text!r}"
                              ) from None

    return convert


def whole_numbers(flag: str, what: str, example: str):
    """A parser for a comma-separated list of whole numbers (the config checks their range)."""
    def convert(text: str) -> tuple[int, ...]:
        try:
            return tuple(int(t) for t in text.split(","))
        except ValueError:
            raise NasnetError(f"{flag} expects comma-separated whole {what} such as {example}, got {text!r}") from None

    return convert


def split_sets(items: list[str] | None, flag: str) -> tuple[dict, dict]:
    """`FIELD=VALUE` / `train.FIELD=VALUE` / `model.FIELD=VALUE` items -> (train overrides, model overrides)."""
    train, model = {}, {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NasnetError(f"{flag} {item!r}: expected FIELD=VALUE (e.g. {flag} cutout=16 or {flag} "
                              "model.dropout=0.5)")
        if key.startswith("model."):
            model[key[6:]] = parse_value(value)
        else:
            train[key.removeprefix("train.")] = parse_value(value)
    return train, model


def inert(flag: str, reason: str) -> NasnetError:
    """The one refusal of a flag that would have no effect: what it is, and why it does nothing."""
    from ..search.rules import no_effect

    return NasnetError(no_effect(flag, reason))


def count(minimum: int = 1, maximum: int = 2**31 - 1):
    """An argparse `type` for a whole number in [minimum, maximum] (a size, a count, epochs): anything else
    is refused by the parser, before a command starts."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not minimum <= value <= maximum:
            bound = f"at least {minimum:,}" if value < minimum else f"at most {maximum:,}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:,}")
        return value

    return convert


def add_data_flag(group, help: str, **kwargs):
    """`--data DATA`, its help ending in the spec grammar with the kinds nasnet.data knows (%(kinds)s is
    filled in when the help is shown)."""
    action = group.add_argument("--data", metavar="DATA", help=help + ": KIND[:PATH][,val=..][,test=..][,size=..] "
                                "with KIND one of %(kinds)s (see docs/formats.md)", **kwargs)
    action.kinds = names_of("nasnet.data:KINDS")
    return action


class _Described:
    """A registry's names with their help ("serial (this process), process (...) or ray (...)"), read when
    the help is shown."""

    def __init__(self, names):
        self.names = names

    def __str__(self) -> str:
        return self.names.described(" or ")


def add_setting(group, s, **override) -> argparse.Action:
    """The flag of a declared setting (nasnet.options.Setting): its type from the field's, its help with the
    default; names it chooses among are listed when the help is shown. `override`: add_argument keywords."""
    o = s.option
    kwargs: dict[str, Any] = {"dest": s.dest, "help": s.help_text().replace("%", "%%").replace(
        "{names}", "%(names)s").replace("{described}", "%(described)s")}
    if s.kind == "bool":
        kwargs.update(action="store_const", const=not s.default)
    else:
        kwargs["type"] = {"int": int, "float": float}.get(s.kind)
        kwargs["metavar"] = o.metavar
        if o.choices:
            kwargs["choices"] = o.names
        elif o.names is not None and not (o.aliases or o.words or "{names}" in o.help):
            kwargs["metavar"] = o.metavar or "|".join(o.names)
    kwargs.update(override)
    action = group.add_argument(o.flag, **kwargs)
    action.names, action.described = o.names, _Described(o.names)
    return action
