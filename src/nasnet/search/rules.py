"""The rules of a search's settings beside their values (nasnet.search.config): the range of every whole
number, what each strategy reads, and when a setting has no effect. `SearchConfig.validate` and
`SearchConfig.unused` apply them; error messages name fields in backquotes (`strategy.population`), which
the command line turns into its flags (docs/cli.md). Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any, Iterable

# Whole-number settings: field -> (least, largest, what the least means). The largest keeps every product
# of counts (child-epochs of a run) far inside the 64-bit integers of the trial store.
MAX_COUNT = 2**31 - 1
COUNTS = {
    "children": (1, MAX_COUNT, ""), "seed": (-2**31, 2**31 - 1, ""), "epoch_budget": (1, MAX_COUNT, ""),
    "top_k": (0, MAX_COUNT, " (0: no top-k stage)"), "final_epochs": (1, MAX_COUNT, ""),
    "final_normal_cells": (1, MAX_COUNT, ""), "final_filters": (1, MAX_COUNT, ""),
    "pick_seeds": (0, MAX_COUNT, " (0: no retraining of the pick)"), "strategy.batch_size": (1, MAX_COUNT, ""),
    "strategy.ppo_epochs": (1, MAX_COUNT, ""), "strategy.hidden_size": (1, MAX_COUNT, ""),
    "strategy.population": (2, MAX_COUNT, ""), "strategy.sample_size": (1, MAX_COUNT, ""),
    "early_stop.rungs": (1, MAX_COUNT, ""), "early_stop.eta": (2, MAX_COUNT, ""),
    "executor.workers": (0, MAX_COUNT, " (0: as many as the CPUs allow)"), "executor.max_retries": (0, MAX_COUNT, ""),
}
OPTIONAL_COUNTS = ("epoch_budget", "final_epochs", "final_normal_cells", "final_filters")   # None: not set

# What each strategy reads of StrategyConfig (nasnet.search.strategies); setting another field has no effect.
_CONTROLLER = ("learning_rate", "entropy_weight", "baseline_decay", "batch_size", "hidden_size", "init_range",
               "optimizer", "max_grad_norm")
STRATEGY_READS = {"ppo": _CONTROLLER + ("clip", "ppo_epochs"), "reinforce": _CONTROLLER,
                  "random": ("batch_size", "baseline_decay"), "evolution": ("population", "sample_size")}

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
