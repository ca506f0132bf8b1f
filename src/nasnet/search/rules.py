"""The rules of a search's settings beside their values (nasnet.search.config): what each strategy reads,
when a setting has no effect, and how messages name fields and values. The range of every whole number is
declared with its field (nasnet.options). `SearchConfig.validate` and `SearchConfig.unused` apply them;
error messages name fields in backquotes (`strategy.population`), which the command line turns into its
flags (docs/cli.md). Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any, Iterable

from .choices import STRATEGIES


def strategy_reads() -> dict[str, tuple[str, ...] | None]:
    """What each strategy reads of StrategyConfig (declared where it is registered, nasnet.search.choices);
    setting another field has no effect. None: a strategy that does not say."""
    return {name: STRATEGIES.info(name, "reads") for name in STRATEGIES}


# Settings that have an effect only with another: (fields, whether they do in this config, why not).
UNUSED_WITHOUT = [
    (("early_stop.rungs", "early_stop.eta", "early_stop.tell"), lambda c: c.early_stop.active,
     "without `early_stop.name` asha"),
    (("cost.target", "cost.weight"), lambda c: c.cost.active, "without a cost objective (`cost.name`)"),
    (("final_epochs", "final_normal_cells", "final_filters"), lambda c: c.top_k > 0 or c.pick_seeds > 0,
     "without a retraining: they size the top-k stage (`top_k`) and the pick's (`pick_seeds`)"),
    (("executor.ray_address",), lambda c: c.executor.name == "ray",
     lambda c: f"with `executor.name` ({c.executor.name}): only ray reads it"),
    (("executor.cpus_per_child", "executor.gpus_per_child", "executor.child_timeout"),
     lambda c: c.executor.name != "serial", "with `executor.name` (serial): its children run in this process"),
]


def no_effect(what: str, reason: str) -> str:
    """The one message for a setting that would do nothing: what it is, why, and what to do."""
    return f"{what} has no effect {reason}; drop it"


def quoted(name: str) -> str:
    """A field as error messages name it, `strategy.population`: the command line turns it into its flag."""
    return f"`{name}`"


def flatten(data: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted field name, value) of a config's to_dict(), nested objects flattened; lists stay values."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, name + ".")
        else:
            yield name, value
        if isinstance(value, (list, tuple)):
            yield from ((f"{name}[{i}]", v) for i, v in enumerate(value))


def shown(value: Any) -> str:
    """A value for a one-line message: lists as 1,3,9; long ones cut."""
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_int(x: Any) -> bool:
    """A whole number as JSON holds it (an int, not a bool)."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    """A number as JSON holds it (an int or a float, not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)
