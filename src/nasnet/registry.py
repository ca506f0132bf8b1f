"""Named things, one mechanism: a `Registry` maps a name to an object, lists its names, says in one
form which names it knows, and serves as argparse `choices`.

Strategies, executors, children, search spaces, training presets, zoo models and data kinds are each
one `Registry`; adding one is one `register` call, and every message, help text and validation
that lists them reads the registry. An entry may be a "module:attribute" reference, imported on
first lookup, so a registry of classes that need heavy imports (torch, ray) stays light until one
is used. `names_of("module:ATTRIBUTE")` reads a registry of a heavy module only when the help is
shown. Every "unknown ... (known: ...)" message is written here (`known`, `unknown`). No torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable, Iterator, MutableMapping, TypeVar

from .errors import NasnetError

T = TypeVar("T")
_DECORATE = object()


def known(names: Iterable[Any], hint: str = "") -> str:
    """The one way a message lists what it accepts: "(known: a, b, c)", or "(known: a, b; HINT)"."""
    return f"(known: {', '.join(map(str, names))}{'; ' + hint if hint else ''})"


def unknown(what: str, name: Any, names: Iterable[Any], where: str = "", hint: str = "") -> str:
    """The one message for a name that is not among `names`: "unknown strategy 'x' (known: ppo, ...)";
    `where` is said after the name ("unknown strategy 'x' in 'x:lr=1'"), `hint` after the names."""
    return f"unknown {what} {name!r}{where} {known(names, hint)}"


def resolve_reference(reference: str) -> Any:
    """The object a "module:attribute" reference names (the attribute may be dotted)."""
    module, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


class Registry(MutableMapping[str, T]):
    """name -> object, in registration order.

    `what` names an entry in messages ("strategy", "search space"); `key` normalises a name before
    lookup (e.g. lower case); `lazy`: string entries are "module:attribute" references, resolved
    (and cached) when first looked up. A registry is a mapping (`in`, iteration over names,
    `registry[name]`, `items()`), so it is also argparse's `choices` and the list a help text shows
    (`str(registry)`: "a, b, c"); `lookup` is the lookup that fails with a one-line NasnetError."""

    def __init__(self, what: str, entries: Iterable[str | tuple[str, Any]] | dict[str, Any] = (), *,
                 lazy: bool = False, key: Callable[[str], str] | None = None):
        self.what, self.lazy, self._key = what, lazy, key
        self._entries: dict[str, Any] = {}
        self._help: dict[str, str] = {}
        self._info: dict[str, dict[str, Any]] = {}
        for item in (entries.items() if isinstance(entries, dict) else entries):
            self.register(*((item, item) if isinstance(item, str) else item))

    # -- registering -------------------------------------------------------------------------
    def register(self, name: str, obj: Any = _DECORATE, *, help: str = "", **info: Any) -> Any:
        """Add `obj` under `name` (once: a name registered twice is an error) with a one-line `help`
        and any facts a caller reads back with `info`. Without `obj`, a decorator. A registry of
        plain names (`Registry("cost", ["mult_adds", "params"])`) maps each name to itself."""
        if obj is _DECORATE:
            return lambda target: self.register(name, target, help=help, **info)
        if name in self._entries:
            raise NasnetError(f"{self.what} {name!r} is already registered")
        self._entries[name] = obj
        self._help[name] = help
        self._info[name] = info
        return obj

    def __setitem__(self, name: str, obj: Any) -> None:      # the mapping protocol: replaces
        self._entries[name] = obj

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        self._help.pop(name, None)
        self._info.pop(name, None)

    # -- reading ---------------------------------------------------------------------------
    def _normal(self, name: Any) -> Any:
        return self._key(name) if self._key is not None and isinstance(name, str) else name

    def __getitem__(self, name: str) -> T:
        key = self._normal(name)
        value = self._entries[key]
        if self.lazy and isinstance(value, str):
            value = self._entries[key] = resolve_reference(value)
        return value

    def __contains__(self, name: object) -> bool:
        return self._normal(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __str__(self) -> str:
        return ", ".join(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def unknown(self, name: Any, where: str = "") -> str:
        """The message for a name this registry does not hold (`unknown`)."""
        return unknown(self.what, name, self._entries, where)

    def check(self, name: Any, where: str = "") -> str:
        """`name` as registered (normalised), or a NasnetError saying which names are known; imports nothing."""
        if name not in self:
            raise NasnetError(self.unknown(name, where))
        return self._normal(name)

    def lookup(self, name: Any, where: str = "") -> T:
        """The object registered under `name`, or a NasnetError saying which names are known."""
        return self[self.check(name, where)]

    def help(self, name: str) -> str:
        return self._help.get(self._normal(name), "")

    def info(self, name: str, fact: str, default: Any = None) -> Any:
        """A fact registered with an entry (`register(name, obj, fact=value)`)."""
        return self._info.get(self._normal(name), {}).get(fact, default)

    def described(self, last: str = ", ") -> str:
        """The names with their help, for a help text: "serial (in this process), process (...), ray"."""
        parts = [f"{n} ({h})" if (h := self._help.get(n)) else n for n in self._entries]
        return ", ".join(parts[:-1]) + last + parts[-1] if len(parts) > 1 else "".join(parts)


class names_of:
    """The names of a registry in another module ("nasnet.train.config:PRESETS"), read when first needed:
    as argparse `choices` (the help shows them as %(choices)s) or as the list in a help text, so that
    building the command line's parser imports nothing heavy and its help always lists what the
    registry holds. `exclude` leaves names out."""

    def __init__(self, reference: str, exclude: tuple[str, ...] = ()):
        self.reference, self.exclude = reference, exclude

    def names(self) -> tuple[str, ...]:
        return tuple(str(n) for n in resolve_reference(self.reference) if n not in self.exclude)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __len__(self) -> int:
        return len(self.names())

    def __str__(self) -> str:
        return ", ".join(self.names())
