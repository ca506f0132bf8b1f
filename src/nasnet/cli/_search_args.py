"""Flags shared by `nasnet search` and `nasnet compare`, and their resolution into a SearchConfig.

The flags are made from the config's fields (`settings(SearchConfig)`: each field declares its flag,
help, default and bounds, nasnet.options); this module adds the help's group titles, --child-set and
--quiet. Every flag defaults to None ("not given"), so that continuing a run applies only what the
user actually typed on top of the run's stored config.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import NasnetError
from ..options import Setting, settings
from ..search.choices import CHILDREN, DEFAULT_CHILD_FN, EARLY_STOPS
from ..search.config import QUICK_DIGITS_CHILD, QUICK_DIGITS_DATA, ChildConfig, SearchConfig, new_run_defaults
from ._parse import add_data_flag, add_setting, number_or, parse_value, whole_numbers

# The help's groups, in order: the group a field declares -> its title.
GROUPS = {"search": "search", "controller": "controller (paper values by default)",
          "evolution": "regularized evolution (--strategy evolution)", "asha": "early stopping (ASHA)",
          "objective": "objective (MnasNet): reward = accuracy x (cost / target) ^ weight", "top-k": "top-k stage",
          "children": "children", "execution": "execution"}
# Every flag that sets a field, declared with the field (nasnet.search.config), in the order of the help.
SETTINGS = tuple(sorted(settings(SearchConfig), key=lambda s: list(GROUPS).index(s.option.group)))
# nasnet compare sets these per run, with flags of its own (cli/compare.py)
COMPARE_FLAGS = {
    "strategy.name": None,
    "early_stop.name": dict(dest="early_stop_list", metavar="LIST", help=f"comma-separated: {', '.join(EARLY_STOPS)} "
                            f"or {','.join(EARLY_STOPS)}; every variant runs with each (default none)"),
}


def add_search_arguments(p: argparse.ArgumentParser, compare: bool = False) -> None:
    """The flags of a search, one per declared field; `compare`: nasnet compare's variant (no --strategy,
    --early-stop a list). Every flag defaults to None: not given."""
    for key, title in GROUPS.items():
        group = p.add_argument_group(title)
        for s in SETTINGS:
            own = COMPARE_FLAGS.get(s.path, {}) if compare else {}
            if s.option.group != key or own is None:
                continue
            if s.path == "child.data":
                add_data_flag(group, s.help_text())
            else:
                add_setting(group, s, **own)
        if key == "children":
            group.add_argument("--child-set", action="append", default=[], metavar="KEY=VALUE",
                               help="set a payload field: train.KEY / model.KEY (training / model config), or a "
                                    "top-level option of the child function; VALUE is read as JSON when it parses. "
                                    "Repeatable.")
        elif key == "execution":
            group.add_argument("--quiet", action="store_true", help="no progress bar")


def flag_value(s: Setting, text: Any) -> Any:
    """The value a flag's text gives its field: a number or a rule's word, whole numbers, a child's alias."""
    if s.kind == "words":
        return number_or(s.option.flag, *s.option.names)(text)
    if s.kind == "counts":
        return whole_numbers(s.option.flag, s.option.unit, s.option.example)(text)
    if s.option.aliases:
        return s.option.names.get(text, text)
    return text


def fresh_config(args: argparse.Namespace):
    """The base config of a new run: the defaults, with the quick digits child for the digits search."""
    if quick_digits(args):
        return SearchConfig(child=ChildConfig(data=QUICK_DIGITS_DATA, model=dict(QUICK_DIGITS_CHILD["model"]),
                                              train=dict(QUICK_DIGITS_CHILD["train"])))
    return SearchConfig()


def quick_digits(args: argparse.Namespace) -> bool:
    fn = CHILDREN.get(args.child, args.child) if getattr(args, "child", None) else DEFAULT_CHILD_FN
    return fn == DEFAULT_CHILD_FN and (getattr(args, "data", None) or "digits") == "digits"


def changes_from_args(args: argparse.Namespace, base, fresh: bool = False) -> dict[str, Any]:
    """SearchConfig.replace() keywords for the flags that were given (and, for a new run, what they imply)."""
    changes: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(args, s.dest, None)
        if value is not None and not s.key:
            changes[s.path] = flag_value(s, value)
    if changes.get("child.data") == "digits" and base.child.data == QUICK_DIGITS_DATA:
        del changes["child.data"]          # --data digits names the quick digits search's data
    keys = [(s, v) for s in SETTINGS if s.key and (v := getattr(args, s.dest, None)) is not None]
    bad = [f"{s.option.flag} {v}" for s, v in keys if v < s.option.low]
    if bad:  # every child would fail (and defaults derived from them, such as --final-epochs, with them)
        raise NasnetError(f"{', '.join(bad)}: the child needs at least 1")
    parts = {name: dict(getattr(base.child, name)) for name in ("model", "train", "options")}
    for s, value in keys:
        _, section, key = s.path.split(".")
        parts[section][key] = value
    _child_sets(args.child_set, parts)
    for name, value in parts.items():
        if value != getattr(base.child, name):
            changes[f"child.{name}"] = value
    if fresh:
        given = {name for name in ("epochs", "children", "top_k", "final_epochs")
                 if getattr(args, name, None) is not None}
        changes = new_run_defaults(base, changes, given, quick_digits(args))
    return changes


def _child_sets(items: list[str], parts: dict[str, dict]) -> None:
    """--child-set KEY=VALUE items into the child's model, train and options dicts."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NasnetError(f"--child-set expects KEY=VALUE, got {item!r}")
        section, dot, name = key.partition(".")
        if dot and section in ("train", "model"):
            parts[section][name] = parse_value(value)
        elif key in ("fn", "genotype", "seed", "data", "model", "train", "device", "rung_epochs", "checkpoint"):
            raise NasnetError(f"--child-set cannot set {key!r}; use the matching flag")
        else:
            parts["options"][key] = parse_value(value)


def resolve_config(args: argparse.Namespace, stored: SearchConfig | None) -> SearchConfig:
    """The config of a run: the stored one (continuing) or a new one, with the flags given applied."""
    base = stored if stored is not None else fresh_config(args)
    return base.replace(**changes_from_args(args, base, fresh=stored is None))
