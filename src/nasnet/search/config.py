"""The search's configuration: frozen dataclasses, resolved by the CLI and saved as RUN_DIR/config.json.

`SearchConfig` holds everything that defines a search (space, strategy, early stopping, objective,
budget, child payload, failure handling, top-k stage) and how it runs (executor, workers,
resources). Defaults are the paper's where it gives a value (§3 and A.3: PPO, learning rate
0.00035, entropy weight 1e-5, baseline decay 0.95, minibatches of 20; A.3: the top-k retraining
stage); PPO's clipping 0.2 is Schulman et al.'s; regularized evolution's population and tournament
follow Real et al. (AAAI 2019), shrunk for small budgets; ASHA's rungs (r, r*eta, r*eta^2, ...)
follow Li et al. (MLSys 2020); the cost-aware reward is MnasNet's (Tan et al., CVPR 2019). Importing this module
does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..arch.space import get_space
from ..errors import NasnetError
from .executors import EXECUTORS

# The strategies (nasnet.search.strategies implements one class per name).
STRATEGY_NAMES = ("ppo", "reinforce", "random", "evolution", "local")
EARLY_STOP_NAMES = ("none", "asha")
# What the strategy is told under ASHA: each trial's first-rung result (once), or every rung result
# re-centred within its rung (see nasnet.search.asha).
ASHA_TELL = ("first", "every")
COSTS = ("mult_adds", "params")
# --failure-reward takes a finite number or this rule: the lowest reward of any finished child so far.
FAILURE_RULES = ("worst",)

# The training child, the analytic one (no training) and NAS-Bench-201's (lookups; see nasnet.search.children).
DEFAULT_CHILD_FN = "nasnet.search.children.train:train_child"
ANALYTIC_CHILD_FN = "nasnet.search.children.analytic:analytic_child"
NB201_CHILD_FN = "nasnet.search.children.nb201:nb201_child"
CHILD_ALIASES = {"train": DEFAULT_CHILD_FN, "analytic": ANALYTIC_CHILD_FN, "nb201": NB201_CHILD_FN}
NB201_SPACE = "nb201"
NB201_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
NB201_REWARDS = ("single", "mean")     # one training run's validation accuracy, or the seed mean

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


def is_quick_digits(child: str | None, space: str | None, data: str | None) -> bool:
    """Whether a new run's flags name the quick digits search (the training child on digits)."""
    return new_run_child(child, space) == DEFAULT_CHILD_FN and (data or "digits") == "digits"


def new_run_base(child: str | None, space: str | None, data: str | None, paper: bool,
                 strategy: str | None = None) -> "SearchConfig":
    """The config a new run's flags start from: the quick digits child for the digits search, and the strategy
    (`strategy`, else SEARCH_STRATEGY) with its measured settings (TUNED_SETTINGS), or with `paper` the paper's
    settings (StrategyConfig's defaults: PPO unless another strategy is named)."""
    name = strategy or ("ppo" if paper else SEARCH_STRATEGY)
    strategy = StrategyConfig(name=name, **({} if paper else TUNED_SETTINGS.get(name, {})))
    if is_quick_digits(child, space, data):
        return SearchConfig(strategy=strategy, child=ChildConfig(
            data=QUICK_DIGITS_DATA, model=dict(QUICK_DIGITS_CHILD["model"]), train=dict(QUICK_DIGITS_CHILD["train"])))
    return SearchConfig(strategy=strategy)


def new_run_child(child: str | None, space: str | None) -> str:
    """The child function of a new run: --child's, else NAS-Bench-201's for --space nb201, else the training child."""
    if child:
        alias, sep, _ = child.partition(":")
        return NB201_CHILD_FN if alias == "nb201" else CHILD_ALIASES.get(child, child)
    return NB201_CHILD_FN if (space or "").lower() == NB201_SPACE else DEFAULT_CHILD_FN


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


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def default_rungs(epochs: int, eta: int) -> tuple[int, ...]:
    """ASHA rungs for a child of `epochs` epochs: epochs / eta^k rounded, from 1 epoch up to `epochs`."""
    rungs, r = {int(epochs)}, float(epochs)
    while r > 1:
        r /= eta
        rungs.add(max(1, round(r)))
    return tuple(sorted(rungs))


@dataclass(frozen=True)
class StrategyConfig:
    """How the controller proposes architectures and learns from their rewards (paper §3, A.2, A.3)."""

    name: str = "ppo"                 # ppo | reinforce | random | evolution | local
    learning_rate: float = 0.00035    # paper
    entropy_weight: float = 1e-5      # paper: entropy penalty weight
    baseline_decay: float = 0.95      # paper: EMA of rewards
    batch_size: int = 20              # paper: update per minibatch of 20 architectures
    clip: float = 0.2                 # PPO clipping epsilon (Schulman et al. 2017)
    ppo_epochs: int = 4               # not in the paper: passes of PPO over each minibatch
    hidden_size: int = 100            # paper: one-layer LSTM, 100 units
    init_range: float = 0.1           # paper: weights U(-0.1, 0.1)
    optimizer: str = "adam"           # not in the paper: adam | sgd
    max_grad_norm: float | None = None
    population: int = 20              # evolution: P (Real et al.: 100 for 20,000 models; small budgets need less)
    sample_size: int = 5              # evolution: S, the tournament (Real et al.: 25)


@dataclass(frozen=True)
class EarlyStopConfig:
    """ASHA (Li et al., MLSys 2020): children train rung by rung; the top 1/eta of a rung continue.

    `rungs` are cumulative epochs, strictly increasing; the last is the child's full training (its
    learning-rate schedule spans it, so a child continued rung by rung equals one trained straight
    through). `tell`: what the strategy learns from (ASHA_TELL)."""

    name: str = "none"                # none | asha
    rungs: tuple[int, ...] = ()
    eta: int = 3                      # not from Li et al. (whose runs and Ray Tune use 4): the top third goes on,
                                      # which keeps more children training at small budgets
    tell: str = "first"               # first | every

    def __post_init__(self) -> None:
        object.__setattr__(self, "rungs", tuple(self.rungs))

    @property
    def active(self) -> bool:
        return self.name == "asha"


@dataclass(frozen=True)
class CostConfig:
    """MnasNet's soft-constrained reward: accuracy x (cost / target) ** weight.

    weight <= 0: a child costing more than `target` is penalised, one costing less is favoured
    (MnasNet: -0.07 for latency); 0 records the cost without changing the reward."""

    name: str | None = None           # None (accuracy alone) | mult_adds | params (the child's result keys)
    target: float | None = None
    weight: float = -0.07

    @property
    def active(self) -> bool:
        return self.name is not None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where children run. `workers` is W, the number of children kept in flight (paper §3, A.3)."""

    name: str = "process"             # serial (in this process) | process (local processes) | ray
    workers: int = 0                  # 0: as many as the CPUs (and GPUs) allow; serial: 1
    ray_address: str | None = None    # None: RAY_ADDRESS if set, else a local instance started on demand
    cpus_per_child: float = 1.0
    gpus_per_child: float = 0.0       # process and ray; fractional: several children share one GPU
    max_retries: int = 2              # infrastructure failures (dead worker, OOM) retried this often
    child_timeout: float | None = None  # seconds; a child past it is stopped and recorded failed


@dataclass(frozen=True)
class ChildConfig:
    """The JSON payload every child receives; `fn` names the function ("module:function")."""

    fn: str = DEFAULT_CHILD_FN
    data: str = "digits"
    model: dict = field(default_factory=dict)    # ModelConfig overrides
    train: dict = field(default_factory=dict)    # TrainConfig overrides on the child preset
    options: dict = field(default_factory=dict)  # further payload keys, passed through as they are
    device: str | None = None


@dataclass(frozen=True)
class SearchConfig:
    space: str = "nasnet-a"
    children: int = 40                # architectures to sample and evaluate (the paper: 20,000)
    seed: int = 0
    failure_reward: float | str = 0.0  # what the policy sees for a failed or diverged child; or "worst"
    dedupe: bool = True               # an architecture sampled again reuses its first result
    epoch_budget: int | None = None   # stop starting children and promotions at this many child-epochs
    top_k: int = 0                    # retrain the K best (the paper: 250) with a fresh seed ...
    final_epochs: int | None = None   # ... for this many epochs (train.epochs of the final payload)
    final_normal_cells: int | None = None   # ... and optionally a larger network (N, F0)
    final_filters: int | None = None
    pick_seeds: int = 0               # then retrain the pick with this many more fresh seeds (its mean)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    child: ChildConfig = field(default_factory=ChildConfig)

    def __post_init__(self) -> None:
        self.validate()

    # -- budgets in epochs -------------------------------------------------------------------
    @property
    def search_epochs(self) -> int | None:
        """Epochs of a fully trained search child: the last ASHA rung, else the payload's train.epochs
        (None when the payload leaves it to the child's own default)."""
        if self.early_stop.active:
            return self.early_stop.rungs[-1]
        epochs = self.child.train.get("epochs")
        return epochs if _int(epochs) else None

    @property
    def first_job_epochs(self) -> int | None:
        """Epochs a new trial trains before its first result: ASHA's first rung, else the whole child."""
        return self.early_stop.rungs[0] if self.early_stop.active else self.search_epochs

    def committed_epochs(self, uncached: int, promotions: Iterable[int]) -> int:
        """Child-epochs of a run's jobs (what --epoch-budget counts): `uncached` trials that train
        themselves, each its first job's epochs, and ASHA promotions to the given rungs, each the
        epochs between that rung and the one below."""
        total = (self.first_job_epochs or 0) * uncached
        rungs = self.early_stop.rungs
        return total + sum(rungs[k] - rungs[k - 1] for k in promotions) if self.early_stop.active else total

    def budget_exhausted(self, committed: int) -> bool:
        """Whether no further job fits the epoch budget (False without one)."""
        if self.epoch_budget is None:
            return False
        rungs = self.early_stop.rungs
        steps = [b - a for a, b in zip(rungs, rungs[1:])] if self.early_stop.active else []
        return committed + min([self.first_job_epochs or 1] + steps) > self.epoch_budget

    def final_is_search_child(self) -> bool:
        """Whether the top-k stage would retrain with the search child's own budget and size (as far as the
        config says: an epoch count left to the child's default is taken to differ from any given one)."""
        def same(final, search):
            return final is None or final == search

        model = self.child.model
        return (same(self.final_epochs, self.search_epochs) and same(self.final_normal_cells, model.get("normal_cells"))
                and same(self.final_filters, model.get("filters")))

    def validate(self) -> None:
        get_space(self.space)
        s, e = self.strategy, self.executor
        self._validate_failure_reward()
        checks = [
            (self.children >= 1, f"--children must be at least 1, got {self.children}"),
            (s.name in STRATEGY_NAMES, f"unknown strategy {s.name!r} (known: {', '.join(STRATEGY_NAMES)})"),
            (s.learning_rate > 0, f"the learning rate must be positive, got {s.learning_rate}"),
            (s.entropy_weight >= 0, f"the entropy weight must be non-negative, got {s.entropy_weight}"),
            (0 <= s.baseline_decay < 1, f"the baseline decay must be in [0, 1), got {s.baseline_decay}"),
            (s.batch_size >= 1, f"the minibatch size must be at least 1, got {s.batch_size}"),
            (0 < s.clip < 1, f"the PPO clip must be in (0, 1), got {s.clip}"),
            (s.ppo_epochs >= 1, f"PPO epochs must be at least 1, got {s.ppo_epochs}"),
            (s.hidden_size >= 1, f"the controller's hidden size must be at least 1, got {s.hidden_size}"),
            (s.optimizer in ("adam", "sgd"), f"unknown optimizer {s.optimizer!r} (known: adam, sgd)"),
            (_int(s.population) and s.population >= 2, f"--population must be at least 2, got {s.population}"),
            (_int(s.sample_size) and s.sample_size >= 1, f"--sample-size must be at least 1, got {s.sample_size}"),
            (s.sample_size <= s.population, f"--sample-size ({s.sample_size}) cannot exceed --population "
                                            f"({s.population}): a tournament draws from the population"),
            (e.name in EXECUTORS, f"unknown executor {e.name!r} (known: {', '.join(EXECUTORS)})"),
            (e.workers >= 0, f"--workers must be at least 1 (or 0: as many as the CPUs allow), got {e.workers}"),
            (e.cpus_per_child > 0, f"--cpus-per-child must be positive, got {e.cpus_per_child}"),
            (e.gpus_per_child >= 0, f"--gpus-per-child must be non-negative, got {e.gpus_per_child}"),
            (e.max_retries >= 0, f"--max-retries must be non-negative, got {e.max_retries}"),
            (e.child_timeout is None or e.child_timeout > 0, "--child-timeout must be positive"),
            (self.top_k >= 0, f"--top-k must be non-negative, got {self.top_k}"),
            (self.final_epochs is None or self.final_epochs >= 1, "--final-epochs must be at least 1"),
            (self.final_normal_cells is None or self.final_normal_cells >= 1,
             "--final-normal-cells must be at least 1"),
            (self.final_filters is None or self.final_filters >= 1, "--final-filters must be at least 1"),
            (_int(self.pick_seeds) and self.pick_seeds >= 0,
             f"--pick-seeds must be non-negative, got {self.pick_seeds}"),
            (":" in self.child.fn, f"the child function must read 'module:function', got {self.child.fn!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise NasnetError(message)
        self._validate_early_stop()
        self._validate_cost()
        self._validate_budget()
        self._validate_nb201()

    def _validate_nb201(self) -> None:
        """NAS-Bench-201's cells are no NASNet genotypes, and its child trains nothing: refuse what cannot apply."""
        c, nb201_space = self.child, self.space.lower() == NB201_SPACE
        if nb201_space and c.fn in (DEFAULT_CHILD_FN, ANALYTIC_CHILD_FN):
            raise NasnetError("--space nb201: its cells are NAS-Bench-201's, which the training and analytic children "
                              "cannot build; use --child nb201:cifar10 (or cifar100, imagenet16-120)")
        if c.fn != NB201_CHILD_FN:
            return
        unused = [name for name, given in (("--epochs, --normal-cells, --filters, --child-set train.*/model.*",
                                            c.model or c.train), ("--early-stop", self.early_stop.active),
                                           ("--cost", self.cost.active), ("--epoch-budget", self.epoch_budget),
                                           ("--top-k, --pick-seeds", self.top_k or self.pick_seeds)) if given]
        checks = [(nb201_space, f"--child nb201 looks cells of --space nb201 up, not of {self.space}"),
                  (c.data in NB201_DATASETS,
                   f"--child nb201:DATASET: unknown dataset {c.data!r} (known: {', '.join(NB201_DATASETS)})"),
                  (c.options.get("reward", "single") in NB201_REWARDS,
                   f"--child-set reward= must be one of {', '.join(NB201_REWARDS)}, got {c.options.get('reward')!r}"),
                  (not unused, f"{', '.join(unused)}: the nb201 child looks results up and trains nothing (give the "
                               "budget as --children)")]
        for ok, message in checks:
            if not ok:
                raise NasnetError(message)

    def _validate_failure_reward(self) -> None:
        f = self.failure_reward
        if isinstance(f, str):
            if f not in FAILURE_RULES:
                raise NasnetError(f"--failure-reward must be a finite number or 'worst', got {f!r}")
        elif not _number(f) or not math.isfinite(f):
            raise NasnetError(f"--failure-reward must be a finite number or 'worst', got {f!r}")

    def _validate_early_stop(self) -> None:
        a = self.early_stop
        if a.name not in EARLY_STOP_NAMES:
            raise NasnetError(f"unknown early stopping {a.name!r} (known: {', '.join(EARLY_STOP_NAMES)})")
        if not a.active:
            if a.rungs:
                raise NasnetError("--rungs applies to --early-stop asha")
            return
        rungs = ",".join(map(str, a.rungs))
        if len(a.rungs) < 2:
            raise NasnetError(f"ASHA needs at least two rungs (--rungs E1,E2,...), got {rungs or 'none'}")
        if not all(_int(r) and r >= 1 for r in a.rungs):
            raise NasnetError(f"--rungs must be positive whole epochs, got {rungs}")
        if any(b <= r for r, b in zip(a.rungs, a.rungs[1:])):
            raise NasnetError(f"--rungs must increase strictly, got {rungs}")
        if not _int(a.eta) or a.eta < 2:
            raise NasnetError(f"--eta must be a whole number of at least 2, got {a.eta}")
        if a.tell not in ASHA_TELL:
            raise NasnetError(f"--asha-tell must be one of {', '.join(ASHA_TELL)}, got {a.tell!r}")
        epochs = self.child.train.get("epochs")
        if epochs is not None and epochs != a.rungs[-1]:
            raise NasnetError(f"with ASHA the last rung is the child's training length: --rungs {rungs} ends at "
                              f"{a.rungs[-1]}, the child has {epochs} epochs (drop --epochs or end the rungs there)")

    def _validate_cost(self) -> None:
        c = self.cost
        if not c.active:
            if c.target is not None:
                raise NasnetError("--target applies to a cost objective: give --cost mult_adds or --cost params")
            return
        if c.name not in COSTS:
            raise NasnetError(f"unknown cost {c.name!r} (known: {', '.join(COSTS)})")
        if c.target is None or not _number(c.target) or not math.isfinite(c.target) or c.target <= 0:
            raise NasnetError(f"--cost {c.name} needs a positive --target (the cost at which the reward is the "
                              f"accuracy), got {c.target}")
        if not _number(c.weight) or not math.isfinite(c.weight) or c.weight > 0:
            raise NasnetError(f"--cost-weight must be a finite number <= 0 (negative penalises a cost above the "
                              f"target; MnasNet uses -0.07), got {c.weight}")

    def _validate_budget(self) -> None:
        if self.epoch_budget is not None:
            first = self.first_job_epochs
            if not _int(self.epoch_budget) or self.epoch_budget < 1:
                raise NasnetError(f"--epoch-budget must be a positive number of child-epochs, got {self.epoch_budget}")
            if first is None:
                raise NasnetError("--epoch-budget counts child-epochs: give the child's --epochs (or ASHA --rungs)")
            if self.epoch_budget < first:
                raise NasnetError(f"--epoch-budget {self.epoch_budget} does not cover one child ({first} epochs)")

    def validate_final_stage(self) -> None:
        """Refuse a top-k stage that would retrain the search child as it was. Checked when a search runs,
        not when a config is read, so a run an older version started that way can still be read."""
        if self.top_k and self.final_is_search_child():
            raise NasnetError("the top-k stage would retrain the search child as it was (only the seed would change): "
                              "give --final-epochs (more than the search's), --final-normal-cells or --final-filters")

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        try:
            parts = {
                "strategy": StrategyConfig(**data.get("strategy", {})),
                "early_stop": EarlyStopConfig(**data.get("early_stop", {})),
                "cost": CostConfig(**data.get("cost", {})),
                "executor": ExecutorConfig(**data.get("executor", {})),
                "child": ChildConfig(**data.get("child", {})),
            }
            top = {k: v for k, v in data.items() if k not in parts}
            return cls(**top, **parts)
        except TypeError as err:
            raise NasnetError(f"search config: {err}") from None

    def replace(self, **changes: Any) -> "SearchConfig":
        """A copy with top-level fields or nested ones ("strategy.learning_rate") changed."""
        nested: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in changes.items():
            if "." in key:
                part, name = key.split(".", 1)
                nested.setdefault(part, {})[name] = value
            else:
                top[key] = value
        for part, values in nested.items():
            top[part] = dataclasses.replace(getattr(self, part), **values)
        return dataclasses.replace(self, **top)


def new_run_defaults(base: SearchConfig, changes: dict[str, Any], given: set[str], quick_digits: bool
                     ) -> dict[str, Any]:
    """What the settings of a new run imply, added to `changes` (SearchConfig.replace keywords on `base`).

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
            if not _int(train.get("epochs")):
                raise NasnetError("--early-stop asha needs --rungs E1,E2,... (or the child's --epochs to derive them)")
            rungs = changes["early_stop.rungs"] = default_rungs(train["epochs"], eta if _int(eta) and eta >= 2 else 3)
        if "epochs" not in given:
            train["epochs"] = rungs[-1]
    if train != base.child.train:
        changes["child.train"] = train
    epochs = rungs[-1] if rungs else train.get("epochs")
    first = rungs[0] if rungs else epochs
    budget = changes.get("epoch_budget")
    if _int(budget) and "children" not in given and _int(first) and 1 <= first <= budget:
        changes["children"] = budget // first
    if quick_digits and "top_k" not in given:
        changes["top_k"] = QUICK_DIGITS_FINAL["top_k"]
        if "final_epochs" not in given and _int(epochs) and epochs >= 1:   # else the child's check says why
            changes["final_epochs"] = QUICK_DIGITS_FINAL["epochs_factor"] * epochs
    return changes


# Fields that define the search itself: a resumed run must keep them. Everything else (the budget,
# where and how children run) may change when a run is continued.
IDENTITY_FIELDS = ("space", "seed", "failure_reward", "dedupe", "strategy", "early_stop", "cost", "child")
