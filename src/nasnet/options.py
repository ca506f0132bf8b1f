"""Settings declared once: a config field carries the flag that sets it, its help and its bounds.

A frozen config dataclass declares a setting as `field(default=..., metadata=option(...))` (or
`setting(...)`, the same in one call); the command line builds its flags from these declarations
(`settings(SearchConfig)`: the flag, the help with "(default ...)" made from the field's default,
the argparse type from the field's type), the config checks whole numbers against their bounds,
and the library's messages name fields (`strategy.population`), which the command line turns into
the flags declared here. `replace_fields` is the one `replace()` of every config: unknown names
are a NasnetError that lists the known ones, and "part.field" reaches a nested config. No torch.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from .errors import NasnetError
from .registry import known

MAX_COUNT = 2**31 - 1    # the largest whole-number setting: products of counts stay far inside 64 bits


@dataclass(frozen=True)
class Option:
    """How a setting is set and checked outside Python. `help` may hold "{names}" (the names of `names`,
    a Registry or a name list) or "{described}" (those names with their help), filled in when the
    help is shown; `choices`: the parser refuses other names; `aliases`: a name of `names` stands for
    its entry, anything else is taken as it is; `words`: the value is a number or one of the names.
    `default_text` says the default where the field's value would not ("{default}" is that value);
    `show_default=False` says none. Whole numbers: `low`..`high` (`note` says what `low` means).
    `group`: the help group (else the config class's GROUP). `keys`: options for keys of a dict field
    (their `kind` is the value's type). `example` and `unit` describe a list of whole numbers
    ("1,3,9", "epochs") in a message."""

    flag: str | None = None
    help: str = ""
    metavar: str | None = None
    names: Any = None
    choices: bool = False
    aliases: bool = False
    default_text: str | None = None
    show_default: bool = True
    low: int | None = None
    high: int | None = None
    note: str = ""
    words: bool = False
    example: str = ""
    unit: str = ""
    group: str | None = None
    kind: str | None = None
    keys: tuple[tuple[str, "Option"], ...] = ()


def option(flag: str | None = None, help: str = "", **kwargs: Any) -> dict[str, Option]:
    """A field's metadata declaring its Option: `field(default=0, metadata=option("--seed", "seed"))`."""
    if "keys" in kwargs:
        kwargs["keys"] = tuple(dict(kwargs["keys"]).items())
    return {"option": Option(flag, help, **kwargs)}


def setting(default: Any = dataclasses.MISSING, flag: str | None = None, help: str = "", *,
            default_factory: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field with its Option: `lr: float = setting(0.1, "--lr", "learning rate")`."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata=option(flag, help, **kwargs))


@dataclass(frozen=True)
class Setting:
    """One declared setting of a config: its dotted path ("strategy.population"), its Option (group
    filled in), its default and the type of its value ("int", "float", "str", "bool", "words",
    "counts": a tuple of whole numbers); `key`: a key of a dict field ("child.train.epochs")."""

    path: str
    option: Option
    default: Any
    kind: str
    key: bool = False

    @property
    def dest(self) -> str:
        """The argparse destination: the flag's name ("--no-dedupe" sets `dedupe`)."""
        name = self.option.flag.lstrip("-").replace("-", "_")
        return name[3:] if self.kind == "bool" and name.startswith("no_") else name

    @property
    def bounded(self) -> bool:
        return self.option.low is not None

    def bounds(self) -> tuple[int, int, str]:
        """(least, largest, what the least means) of a whole-number setting."""
        o = self.option
        return o.low, MAX_COUNT if o.high is None else o.high, o.note

    def help_text(self) -> str:
        """The help with its default: "(default 40)", or "(default: ...)" from `default_text`."""
        o, text = self.option, self.option.help
        if not o.show_default:
            return text
        default = self.default
        if o.aliases and o.names is not None:
            default = next((n for n in o.names if o.names[n] == default), default)
        if o.default_text is not None:      # "(default: the child's)", or "(default 0; ...)" when it starts with it
            said = o.default_text.format(default=help_value(default))
            return f"{text} (default{' ' if o.default_text.startswith('{default}') else ': '}{said})"
        return text if default is None else f"{text} (default {help_value(default)})"


def help_value(value: Any) -> str:
    """A default as a help text says it: 1e-5, 0.95, 40, ppo, 1,3,9."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:g}")
    if isinstance(value, (tuple, list)):
        return ",".join(map(help_value, value))
    return str(value)


def _kind(annotation: Any, o: Option) -> str:
    if o.kind:
        return o.kind
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    if o.words:
        return "words"
    if text.startswith("tuple[int"):
        return "counts"
    return next((k for k in ("bool", "int", "float", "str") if text.split("|")[0].strip() == k), "str")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def settings(cls: type, prefix: str = "") -> Iterator[Setting]:
    """Every declared setting of a config class and of the configs nested in it, in declaration order."""
    for f in dataclasses.fields(cls):
        path = prefix + f.name
        factory = f.default_factory
        if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
            yield from settings(factory, path + ".")
            continue
        o = f.metadata.get("option")
        if o is None:
            continue
        group = o.group or getattr(cls, "GROUP", None)
        if o.flag:
            yield Setting(path, dataclasses.replace(o, group=group), _default(f), _kind(f.type, o))
        for key, sub in o.keys:
            yield Setting(f"{path}.{key}", dataclasses.replace(sub, group=sub.group or group), None,
                          sub.kind or "str", key=True)


def replace_fields(config: Any, what: str, changes: Mapping[str, Any], prefix: str = "") -> Any:
    """A copy of a frozen config with fields changed ("part.field" changes a nested config's field);
    a name the config does not have is a NasnetError naming `what` and listing the known fields."""
    names = {f.name for f in dataclasses.fields(config)}
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    bad = []
    for key, value in changes.items():
        part, dot, rest = key.partition(".")
        if part not in names or (dot and not dataclasses.is_dataclass(getattr(config, part))):
            bad.append(prefix + key)
        elif dot:
            nested.setdefault(part, {})[rest] = value
        else:
            top[key] = value
    if bad:
        raise NasnetError(f"{what}: unknown field(s) {', '.join(sorted(bad))} "
                          f"{known(prefix + name for name in sorted(names))}")
    for part, values in nested.items():
        top[part] = replace_fields(getattr(config, part), what, values, f"{prefix}{part}.")
    return dataclasses.replace(config, **top)
