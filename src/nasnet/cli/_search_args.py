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
from ..search.choices import EARLY_STOPS, NB201_CHILD_FN, NB201_SPACE
from ..search.config import SearchConfig, new_run_base
from ..search.defaults import QUICK_DIGITS_DATA, is_quick_digits, new_run_child, new_run_defaults
from ._parse import add_data_flag, add_setting, number_or, parse_value, whole_numbers

# The help's groups, in order: the group a field declares -> its title.
GROUPS = {"search": "search", "controller": "controller (PPO, REINFORCE)",
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
        if key == "search" and not compare:
            group.add_argument("--paper", action="store_true", help="start from the paper's settings: PPO (unless "
                               "--strategy says otherwise), lr 0.00035, entropy weight 1e-5, batches of 20")
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
    """The base config of a new run (`new_run_base`); `nasnet compare`, which has no --paper, starts from the
    paper's settings."""
    return new_run_base(getattr(args, "child", None), getattr(args, "space", None), getattr(args, "data", None),
                        getattr(args, "paper", True), getattr(args, "strategy", None))


def quick_digits(args: argparse.Namespace) -> bool:
    return is_quick_digits(getattr(args, "child", None), getattr(args, "space", None), getattr(args, "data", None))


def apply_child_flag(changes: dict[str, Any], child: str | None, new_run: bool, executor_given: bool) -> None:
    """Add to `changes` (SearchConfig.replace keywords, --space and --data among them when given) what --child
    says: an alias, "nb201:DATASET" (the benchmark child on that dataset) or "module:function".

    A new NAS-Bench-201 run also gets what it implies: its space and child imply each other, CIFAR-10 unless
    a dataset is given, the serial executor unless one is given (a lookup takes microseconds; worker
    processes would only add overhead, and one process keeps results in the order of the proposals)."""
    if child:
        alias, sep, dataset = child.partition(":")
        if alias == "nb201" and sep and changes.get("child.data", dataset) != dataset:
            raise NasnetError(f"--child {child} names its dataset; drop --data {changes['child.data']}")
        changes["child.fn"] = new_run_child(child, None)
        if alias == "nb201" and sep:
            changes["child.data"] = dataset
    if new_run and new_run_child(child, changes.get("space")) == NB201_CHILD_FN:
        changes["child.fn"] = NB201_CHILD_FN
        changes.setdefault("space", NB201_SPACE)
        changes.setdefault("child.data", "cifar10")
        if not executor_given:
            changes["executor.name"] = "serial"


def changes_from_args(args: argparse.Namespace, base, fresh: bool = False) -> dict[str, Any]:
    """SearchConfig.replace() keywords for the flags that were given (and, for a new run, what they imply)."""
    changes: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(args, s.dest, None)
        if value is not None and not s.key:
            changes[s.path] = flag_value(s, value)
    changes.pop("child.fn", None)          # --child: apply_child_flag reads it whole ("nb201:cifar10")
    apply_child_flag(changes, getattr(args, "child", None), fresh, getattr(args, "executor", None) is not None)
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
