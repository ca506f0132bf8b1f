"""Flags shared by `nasnet search` and `nasnet compare`, and their resolution into a SearchConfig.

Every flag defaults to None ("not given"), so that continuing a run applies only what the user
actually typed on top of the run's stored config.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import NasnetError
from ..search.config import (ASHA_TELL, COSTS, EARLY_STOP_NAMES, QUICK_DIGITS_DATA, SEARCH_STRATEGY, STRATEGY_NAMES,
                             TUNED_SETTINGS, SearchConfig, apply_child_flag, is_quick_digits, new_run_base,
                             new_run_defaults)
from ._parse import parse_value


def _failure_reward(text: str) -> float | str:
    if text == "worst":
        return text
    try:
        return float(text)
    except ValueError:
        raise NasnetError(f"--failure-reward must be a finite number or 'worst', got {text!r}") from None


def _epochs_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise NasnetError(f"--rungs expects comma-separated whole epochs such as 1,3,9, got {text!r}") from None


PARSERS = {"failure_reward": _failure_reward, "rungs": _epochs_list}


def add_search_arguments(p: argparse.ArgumentParser, compare: bool = False) -> None:
    """The flags of a search; `compare`: nasnet compare's variant (no --strategy, --early-stop a list)."""
    g = p.add_argument_group("search")
    if not compare:
        g.add_argument("--strategy", choices=STRATEGY_NAMES, help=f"search strategy (default {SEARCH_STRATEGY}, chosen "
                                                                  "on NAS-Bench-201: docs/nb201.md)")
        g.add_argument("--paper", action="store_true", help="the paper's settings: PPO (unless --strategy says "
                                                            "otherwise), lr 0.00035, entropy weight 1e-5, batches of 20")
    g.add_argument("--children", type=int, help="architectures to sample and evaluate (default 40)")
    g.add_argument("--epoch-budget", type=int, metavar="E",
                   help="also stop starting children (and promotions) once E child-epochs are spent or under way")
    g.add_argument("--space", help="search space: nasnet-a (default), nasnet-b, nasnet-c, nb201 (NAS-Bench-201)")
    g.add_argument("--seed", type=int, help="seed of the controller and of every child (default 0)")
    g.add_argument("--failure-reward", metavar="R",
                   help="reward the strategy sees for a failed child: a finite number (default 0) or 'worst' (the "
                        "lowest reward of any finished child so far)")
    g.add_argument("--no-dedupe", dest="dedupe", action="store_const", const=False,
                   help="train an architecture again when it is sampled again (default: reuse its result)")

    def measured(key: str, paper) -> str:
        tuned = ", ".join(f"{k} {v[key]:g}" for k, v in TUNED_SETTINGS.items() if key in v)
        return f"default {paper:g}" if compare else f"default: {tuned}; {paper:g} with --paper"

    c = p.add_argument_group("controller (PPO, REINFORCE)")
    c.add_argument("--lr", type=float, help=f"learning rate ({measured('learning_rate', 0.00035)})")
    c.add_argument("--entropy-weight", type=float, help=f"entropy bonus weight ({measured('entropy_weight', 1e-5)})")
    c.add_argument("--baseline-decay", type=float, help="EMA weight of the reward baseline (default 0.95)")
    c.add_argument("--batch-size", type=int, help=f"children per controller update ({measured('batch_size', 20)})")
    c.add_argument("--clip", type=float, help="PPO clipping epsilon (default 0.2)")
    c.add_argument("--ppo-epochs", type=int, help="PPO passes over each minibatch (default 4)")
    c.add_argument("--hidden-size", type=int, help="LSTM units (default 100)")

    v = p.add_argument_group("regularized evolution (--strategy evolution)")
    v.add_argument("--population", type=int, help=f"population P, the first P children uniform ({measured('population', 20)})")
    v.add_argument("--sample-size", type=int, help=f"tournament S: the best of S is mutated ({measured('sample_size', 5)})")

    a = p.add_argument_group("early stopping (ASHA)")
    if compare:
        a.add_argument("--early-stop", dest="early_stop_list", metavar="LIST",
                       help="comma-separated: none, asha or none,asha; every variant runs with each (default none)")
    else:
        a.add_argument("--early-stop", metavar="|".join(EARLY_STOP_NAMES),
                       help="asha: train children rung by rung (default none)")
    a.add_argument("--rungs", metavar="E1,E2,...",
                   help="cumulative epochs of the rungs, increasing; the last is the child's length (default: the "
                        "child's epochs divided by eta, eta^2, ... down to 1)")
    a.add_argument("--eta", type=int, help="the top 1/eta of a rung is promoted (default 3)")
    a.add_argument("--asha-tell", metavar="|".join(ASHA_TELL),
                   help="what the strategy learns from: each trial's first-rung result (first, default) or every "
                        "rung result re-centred within its rung (every)")

    o = p.add_argument_group("objective (MnasNet): reward = accuracy x (cost / target) ^ weight")
    o.add_argument("--cost", metavar="|".join(COSTS),
                   help="cost measure of the child's result (default: none, reward = accuracy)")
    o.add_argument("--target", type=float, help="the cost at which the reward equals the accuracy")
    o.add_argument("--cost-weight", type=float, help="weight w <= 0 (default -0.07, MnasNet's)")

    t = p.add_argument_group("top-k stage")
    t.add_argument("--top-k", type=int, help="after the search, retrain the K best with a fresh seed (default 0; "
                                             "a new digits search: 3)")
    t.add_argument("--final-epochs", type=int,
                   help="epochs of that retraining (a new digits search: twice the child's)")
    t.add_argument("--final-normal-cells", type=int, help="N of the retrained networks (default: the child's)")
    t.add_argument("--final-filters", type=int, help="F0 of the retrained networks (default: the child's)")
    t.add_argument("--pick-seeds", type=int, metavar="R",
                   help="then retrain the pick (the top-k winner, else the best child) with R more fresh seeds and "
                        "report their mean (default 0)")

    x = p.add_argument_group("children")
    x.add_argument("--data", help="child dataset: digits (default), cifar10:PATH, cifar100:PATH, folder:PATH, npz:PATH")
    x.add_argument("--child", help="child function 'module:function', or train (default), analytic, nb201:DATASET "
                                   "(NAS-Bench-201's results: cifar10, cifar100, imagenet16-120)")
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
    """The base config of a new run (`new_run_base`); `nasnet compare`, which has no --paper, starts from the paper's."""
    return new_run_base(getattr(args, "child", None), getattr(args, "space", None), getattr(args, "data", None),
                        getattr(args, "paper", True), getattr(args, "strategy", None))


SIMPLE = {
    "strategy": "strategy.name", "children": "children", "epoch_budget": "epoch_budget", "space": "space",
    "seed": "seed", "failure_reward": "failure_reward", "dedupe": "dedupe", "lr": "strategy.learning_rate",
    "entropy_weight": "strategy.entropy_weight", "baseline_decay": "strategy.baseline_decay",
    "batch_size": "strategy.batch_size", "clip": "strategy.clip", "ppo_epochs": "strategy.ppo_epochs",
    "hidden_size": "strategy.hidden_size", "population": "strategy.population", "sample_size": "strategy.sample_size",
    "early_stop": "early_stop.name", "rungs": "early_stop.rungs", "eta": "early_stop.eta",
    "asha_tell": "early_stop.tell", "cost": "cost.name", "target": "cost.target", "cost_weight": "cost.weight",
    "data": "child.data", "device": "child.device", "executor": "executor.name", "workers": "executor.workers",
    "ray_address": "executor.ray_address", "cpus_per_child": "executor.cpus_per_child",
    "gpus_per_child": "executor.gpus_per_child", "max_retries": "executor.max_retries",
    "child_timeout": "executor.child_timeout", "top_k": "top_k", "final_epochs": "final_epochs",
    "final_normal_cells": "final_normal_cells", "final_filters": "final_filters", "pick_seeds": "pick_seeds",
}


def changes_from_args(args: argparse.Namespace, base, fresh: bool = False) -> dict[str, Any]:
    """SearchConfig.replace() keywords for the flags that were given (and, for a new run, what they imply)."""
    changes: dict[str, Any] = {}
    for attr, key in SIMPLE.items():
        value = getattr(args, attr, None)
        if value is not None:
            changes[key] = PARSERS[attr](value) if attr in PARSERS else value
    if changes.get("child.data") == "digits" and base.child.data == QUICK_DIGITS_DATA:
        del changes["child.data"]          # --data digits names the quick digits search's data
    apply_child_flag(changes, getattr(args, "child", None), fresh, getattr(args, "executor", None) is not None)
    model, train, options = dict(base.child.model), dict(base.child.train), dict(base.child.options)
    bad = [f"--{f.replace('_', '-')} {v}" for f in ("epochs", "normal_cells", "filters")
           if (v := getattr(args, f)) is not None and v < 1]
    if bad:  # every child would fail (and defaults derived from them, such as --final-epochs, with them)
        raise NasnetError(f"{', '.join(bad)}: the child needs at least 1")
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
        elif key in ("fn", "genotype", "seed", "data", "model", "train", "device", "rung_epochs", "checkpoint"):
            raise NasnetError(f"--child-set cannot set {key!r}; use the matching flag")
        else:
            options[key] = parse_value(value)
    for name, value in (("model", model), ("train", train), ("options", options)):
        if value != getattr(base.child, name):
            changes[f"child.{name}"] = value
    if fresh:
        given = {name for name, flag in (("epochs", "epochs"), ("children", "children"), ("top_k", "top_k"),
                                         ("final_epochs", "final_epochs")) if getattr(args, flag, None) is not None}
        changes = new_run_defaults(base, changes, given, is_quick_digits(args.child, args.space, args.data))
    return changes


def resolve_config(args: argparse.Namespace, stored: SearchConfig | None) -> SearchConfig:
    """The config of a run: the stored one (continuing) or a new one, with the flags given applied."""
    base = stored if stored is not None else fresh_config(args)
    return base.replace(**changes_from_args(args, base, fresh=stored is None))
