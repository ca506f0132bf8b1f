"""Flags shared by `nasnet search` and `nasnet compare`, and their resolution into a SearchConfig.

Every flag defaults to None ("not given"), so that continuing a run applies only what the user
actually typed on top of the run's stored config.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import NasnetError
from ..search.config import CHILD_ALIASES, DEFAULT_CHILD_FN, QUICK_DIGITS_CHILD, ChildConfig, SearchConfig
from ._parse import parse_value


def add_search_arguments(p: argparse.ArgumentParser, strategy: bool = True) -> None:
    g = p.add_argument_group("search")
    if strategy:
        g.add_argument("--strategy", choices=("ppo", "reinforce", "random"), help="search strategy (default ppo)")
    g.add_argument("--children", type=int, help="architectures to sample and evaluate (default 40)")
    g.add_argument("--space", help="search space: nasnet-a (default), nasnet-b, nasnet-c")
    g.add_argument("--seed", type=int, help="seed of the controller and of every child (default 0)")
    g.add_argument("--failure-reward", type=float, help="reward the controller sees for a failed child (default 0)")
    g.add_argument("--no-dedupe", dest="dedupe", action="store_const", const=False,
                   help="train an architecture again when it is sampled again (default: reuse its result)")

    c = p.add_argument_group("controller (paper values by default)")
    c.add_argument("--lr", type=float, help="learning rate (default 0.00035)")
    c.add_argument("--entropy-weight", type=float, help="entropy penalty weight (default 1e-5)")
    c.add_argument("--baseline-decay", type=float, help="EMA weight of the reward baseline (default 0.95)")
    c.add_argument("--batch-size", type=int, help="children per controller update (default 20)")
    c.add_argument("--clip", type=float, help="PPO clipping epsilon (default 0.2)")
    c.add_argument("--ppo-epochs", type=int, help="PPO passes over each minibatch (default 4)")
    c.add_argument("--hidden-size", type=int, help="LSTM units (default 100)")

    x = p.add_argument_group("children")
    x.add_argument("--data", help="child dataset: digits (default), cifar10:PATH, cifar100:PATH, folder:PATH, npz:PATH")
    x.add_argument("--child", help="child function 'module:function', or 'train' (default) / 'analytic'")
    x.add_argument("--epochs", type=int, help="child training epochs")
    x.add_argument("--normal-cells", type=int, help="child N (normal cells per stage)")
    x.add_argument("--filters", type=int, help="child F0 (first stage's per-branch filters)")
    x.add_argument("--device", help="child device, e.g. cpu or cuda")
    x.add_argument("--child-set", action="append", default=[], metavar="KEY=VALUE",
                   help="set a payload field: train.KEY / model.KEY (training / model config), or a top-level "
                        "option of the child function; VALUE is read as JSON when it parses. Repeatable.")

    e = p.add_argument_group("execution")
    e.add_argument("--executor", choices=("serial", "process", "ray"),
                   help="where children run: serial (this process), process (local worker processes, the "
                        "default) or ray")
    e.add_argument("--workers", type=int, help="children kept in flight (default: as many as the CPUs allow)")
    e.add_argument("--ray-address", help="an existing Ray cluster (default: RAY_ADDRESS, else a local instance)")
    e.add_argument("--cpus-per-child", type=float, help="CPUs (threads) per child (default 1)")
    e.add_argument("--gpus-per-child", type=float,
                   help="GPUs per child (process and ray executors); fractional to share one: 0.25 = four children "
                        "per GPU (default 0)")
    e.add_argument("--max-retries", type=int, help="retries after an infrastructure failure (default 2)")
    e.add_argument("--child-timeout", type=float, help="seconds before a child is stopped (process, ray)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")


def fresh_config(args: argparse.Namespace):
    """The base config of a new run: the defaults, with the quick digits child for the digits search."""
    fn = CHILD_ALIASES.get(args.child, args.child) if getattr(args, "child", None) else DEFAULT_CHILD_FN
    if fn == DEFAULT_CHILD_FN and (getattr(args, "data", None) or "digits") == "digits":
        return SearchConfig(child=ChildConfig(model=dict(QUICK_DIGITS_CHILD["model"]),
                                              train=dict(QUICK_DIGITS_CHILD["train"])))
    return SearchConfig()


def changes_from_args(args: argparse.Namespace, base) -> dict[str, Any]:
    """SearchConfig.replace() keywords for the flags that were given."""
    simple = {
        "strategy": "strategy.name", "children": "children", "space": "space", "seed": "seed",
        "failure_reward": "failure_reward", "dedupe": "dedupe", "lr": "strategy.learning_rate",
        "entropy_weight": "strategy.entropy_weight", "baseline_decay": "strategy.baseline_decay",
        "batch_size": "strategy.batch_size", "clip": "strategy.clip", "ppo_epochs": "strategy.ppo_epochs",
        "hidden_size": "strategy.hidden_size", "data": "child.data", "device": "child.device",
        "executor": "executor.name", "workers": "executor.workers", "ray_address": "executor.ray_address",
        "cpus_per_child": "executor.cpus_per_child", "gpus_per_child": "executor.gpus_per_child",
        "max_retries": "executor.max_retries", "child_timeout": "executor.child_timeout",
        "top_k": "top_k", "final_epochs": "final_epochs",
    }
    changes: dict[str, Any] = {}
    for attr, key in simple.items():
        value = getattr(args, attr, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "child", None):
        changes["child.fn"] = CHILD_ALIASES.get(args.child, args.child)
    model, train, options = dict(base.child.model), dict(base.child.train), dict(base.child.options)
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.normal_cells is not None:
        model["normal_cells"] = args.normal_cells
    if args.filters is not None:
        model["filters"] = args.filters
    for item in args.child_set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NasnetError(f"--child-set expects KEY=VALUE, got {item!r}")
        section, dot, name = key.partition(".")
        if dot and section in ("train", "model"):
            (train if section == "train" else model)[name] = parse_value(value)
        elif key in ("fn", "genotype", "seed", "data", "model", "train", "device"):
            raise NasnetError(f"--child-set cannot set {key!r}; use the matching flag")
        else:
            options[key] = parse_value(value)
    if model != base.child.model:
        changes["child.model"] = model
    if train != base.child.train:
        changes["child.train"] = train
    if options != base.child.options:
        changes["child.options"] = options
    return changes
