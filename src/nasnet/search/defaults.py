"""The settings a new `nasnet search` run starts from, where they are not the paper's: the quick digits search
(its small child, its data, its small top-k stage) and the strategy with its measured settings, chosen on
NAS-Bench-201 (docs/nb201.md); and what a new run's flags imply (ASHA's rungs from the child's epochs, the
number of children an epoch budget holds). `nasnet.search.config.new_run_base` builds a new run's config from
them; the command line applies `new_run_defaults` to the flags it was given (docs/search.md). A resumed run
keeps its stored config and never reads these. Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any

from ..errors import NasnetError
from .choices import CHILDREN, DEFAULT_CHILD_FN, NB201_CHILD_FN, NB201_SPACE
from .rules import is_int
from .rules import quoted as _f

# `nasnet search` with no arguments: a digits search that finishes within minutes on 2 CPU cores.
# These overrides apply to the training child on digits when a new run is started from the command
# line; other data get the paper's child (N = 2, F0 = 32, 20 epochs: nasnet.child's preset).
# Chosen by measurement (bench/child_signal.py; docs/search.md, "The default digits child"): 3 epochs
# of batches of 64 (45 SGD steps), scored on 500 held-out images instead of the default 180, so that
# two seeds rank architectures alike (Kendall tau >= 0.5) at about 2 CPU seconds a child.
QUICK_DIGITS_CHILD = {"model": {"normal_cells": 1, "filters": 8}, "train": {"epochs": 3, "batch_size": 64}}
QUICK_DIGITS_DATA = "digits,val=500"
# ... and it ends with a small top-k stage: the 3 best retrained with a fresh seed for
# `epochs_factor` times the search child's epochs (the paper's top 250 trained to convergence, A.3).
QUICK_DIGITS_FINAL = {"top_k": 3, "epochs_factor": 2}

# The strategy of a new `nasnet search` run and each learner's settings, chosen by measurement against
# NAS-Bench-201's ground truth, on CIFAR-10 with seeds never reported (bench/nb201.py; docs/nb201.md):
# evolution and local search tie there, and on the default digits search local search stalled where
# evolution's later children beat random search's. StrategyConfig's own defaults stay the paper's (PPO,
# lr 0.00035, entropy weight 1e-5, minibatches of 20; §3, A.3): `nasnet search --paper` starts from them,
# and so does `nasnet compare`.
SEARCH_STRATEGY = "evolution"
TUNED_SETTINGS = {"ppo": {"learning_rate": 0.005, "batch_size": 5, "entropy_weight": 0.003},
                  "reinforce": {"learning_rate": 0.01, "batch_size": 5, "entropy_weight": 0.01},
                  "evolution": {"population": 10, "sample_size": 5}}


def tuned_help(key: str) -> str:
    """The help's default of a setting TUNED_SETTINGS overrides: "ppo 0.005, reinforce 0.01; the paper's ..."."""
    tuned = ", ".join(f"{name} {values[key]:g}" for name, values in TUNED_SETTINGS.items() if key in values)
    return f"{tuned}; {{default}} with --paper and in nasnet compare"


def is_quick_digits(child: str | None, space: str | None, data: str | None) -> bool:
    """Whether a new run's flags name the quick digits search (the training child on digits)."""
    return new_run_child(child, space) == DEFAULT_CHILD_FN and (data or "digits") == "digits"


def new_run_child(child: str | None, space: str | None) -> str:
    """The child function of a new run: --child's, else NAS-Bench-201's for --space nb201, else the training child."""
    if child:
        alias, sep, _ = child.partition(":")
        return NB201_CHILD_FN if alias == "nb201" else CHILDREN.get(child, child)
    return NB201_CHILD_FN if (space or "").lower() == NB201_SPACE else DEFAULT_CHILD_FN


def default_rungs(epochs: int, eta: int) -> tuple[int, ...]:
    """ASHA rungs for a child of `epochs` epochs: epochs / eta^k rounded, from 1 epoch up to `epochs`."""
    rungs, r = {int(epochs)}, float(epochs)
    while r > 1:
        r /= eta
        rungs.add(max(1, round(r)))
    return tuple(sorted(rungs))


def new_run_defaults(base: Any, changes: dict[str, Any], given: set[str], quick_digits: bool
                     ) -> dict[str, Any]:
    """What the settings of a new run imply, added to `changes` (SearchConfig.replace keywords on `base`, a
    SearchConfig).

    `given` names what the user set explicitly, of "epochs", "children", "top_k", "final_epochs".
    With ASHA: rungs derived from the child's epochs when not given (`default_rungs`), and the child's
    epochs set to the last rung. With an epoch budget: as many children as it holds at the first job's
    epochs. The quick digits search (`quick_digits`): its small top-k stage (QUICK_DIGITS_FINAL)."""
    changes = dict(changes)
    train = dict(changes.get("child.train", base.child.train))

    def get(key):
        part, _, name = key.partition(".")
        return changes[key] if key in changes else getattr(getattr(base, part), name)

    rungs = None
    if get("early_stop.name") == "asha":
        rungs = changes.get("early_stop.rungs") or base.early_stop.rungs
        if not rungs:
            eta = get("early_stop.eta")
            if not is_int(train.get("epochs")):
                raise NasnetError(f"{_f('early_stop.name')} asha needs {_f('early_stop.rungs')} E1,E2,... (or the "
                                  f"child's {_f('child.train.epochs')} to derive them)")
            rungs = changes["early_stop.rungs"] = default_rungs(train["epochs"], eta if is_int(eta) and eta >= 2 else 3)
        if "epochs" not in given:
            train["epochs"] = rungs[-1]
    if train != base.child.train:
        changes["child.train"] = train
    epochs = rungs[-1] if rungs else train.get("epochs")
    first = rungs[0] if rungs else epochs
    budget = changes.get("epoch_budget")
    if is_int(budget) and "children" not in given and is_int(first) and 1 <= first <= budget:
        changes["children"] = budget // first
    if quick_digits and "top_k" not in given:
        changes["top_k"] = QUICK_DIGITS_FINAL["top_k"]
        if "final_epochs" not in given and is_int(epochs) and epochs >= 1:   # else the child's check says why
            changes["final_epochs"] = QUICK_DIGITS_FINAL["epochs_factor"] * epochs
    return changes
