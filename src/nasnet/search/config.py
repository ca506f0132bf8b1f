"""The search's configuration: frozen dataclasses, resolved by the CLI and saved as RUN_DIR/config.json.

`SearchConfig` holds everything that defines a search (space, strategy, early stopping, objective,
budget, child payload, failure handling, top-k stage) and how it runs (executor, workers,
resources). Defaults are the paper's where it gives a value (§3 and A.3: PPO, learning rate
0.00035, entropy weight 1e-5, baseline decay 0.95, minibatches of 20; A.3: the top-k retraining
stage); PPO's clipping 0.2 is Schulman et al.'s; regularized evolution's population and tournament
follow Real et al. (AAAI 2019), shrunk for small budgets; ASHA's rungs (r, r*eta, r*eta^2, ...)
follow Li et al. (MLSys 2020); the cost-aware reward is MnasNet's (Tan et al., CVPR 2019). What a new
`nasnet search` starts from where it departs from the paper is in nasnet.search.defaults; `new_run_base`
builds that config. Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from ..arch.space import SPACES
from ..errors import NasnetError
from ..registry import unknown
from ..options import Option, replace_fields, setting, settings
from .choices import (ANALYTIC_CHILD_FN, ASHA_TELLS, CHILDREN, CONTROLLER_OPTIMIZERS, COSTS, DEFAULT_CHILD_FN,
                      EARLY_STOPS, FAILURE_RULES, NB201_CHILD_FN, NB201_DATASETS, NB201_REWARDS, NB201_SPACE,
                      STRATEGIES)
from .defaults import (QUICK_DIGITS_CHILD, QUICK_DIGITS_DATA, QUICK_DIGITS_FINAL, SEARCH_STRATEGY, TUNED_SETTINGS,
                       default_rungs, is_quick_digits, new_run_child, new_run_defaults, tuned_help)
from .executors import EXECUTORS
from .rules import UNUSED_WITHOUT, flatten, is_int, is_number, no_effect, shown, strategy_reads
from .rules import quoted as _f

# The new-run helpers live in nasnet.search.defaults; names re-exported here keep older imports working.
__all__ = ["ANALYTIC_CHILD_FN", "DEFAULT_CHILD_FN", "ChildConfig", "CostConfig", "EarlyStopConfig", "ExecutorConfig",
           "SearchConfig", "StrategyConfig", "new_run_base", "default_rungs", "is_quick_digits", "new_run_child",
           "new_run_defaults"]

@dataclass(frozen=True)
class StrategyConfig:
    """How the controller proposes architectures and learns from their rewards (paper §3, A.2, A.3)."""

    GROUP: ClassVar[str] = "controller"

    name: str = setting("ppo", "--strategy", "search strategy", names=STRATEGIES, choices=True, group="search",
                        default_text=f"{SEARCH_STRATEGY}, chosen on NAS-Bench-201, docs/nb201.md; {{default}} with "
                                     "--paper")
    learning_rate: float = setting(0.00035, "--lr", "learning rate", default_text=tuned_help("learning_rate"))  # paper
    entropy_weight: float = setting(1e-5, "--entropy-weight", "entropy penalty weight",
                                    default_text=tuned_help("entropy_weight"))                # paper
    baseline_decay: float = setting(0.95, "--baseline-decay", "EMA weight of the reward baseline")  # paper
    batch_size: int = setting(20, "--batch-size", "children per controller update", low=1,
                              default_text=tuned_help("batch_size"))                       # paper: minibatches of 20
    clip: float = setting(0.2, "--clip", "PPO clipping epsilon")                              # Schulman et al. 2017
    ppo_epochs: int = setting(4, "--ppo-epochs", "PPO passes over each minibatch", low=1)     # not in the paper
    hidden_size: int = setting(100, "--hidden-size", "LSTM units", low=1)                     # paper: one layer, 100
    init_range: float = 0.1           # paper: weights U(-0.1, 0.1)
    optimizer: str = setting("adam", names=CONTROLLER_OPTIMIZERS)   # not in the paper: adam | sgd
    max_grad_norm: float | None = None
    # evolution: P and S (Real et al.: 100 for 20,000 models, S = 25; small budgets need less)
    population: int = setting(20, "--population", "population P; the first P children are uniform samples", low=2,
                              group="evolution", default_text=tuned_help("population"))
    sample_size: int = setting(5, "--sample-size", "tournament size S: the best of S members is mutated", low=1,
                               group="evolution", default_text=tuned_help("sample_size"))


@dataclass(frozen=True)
class EarlyStopConfig:
    """ASHA (Li et al., MLSys 2020): children train rung by rung; the top 1/eta of a rung continue.

    `rungs` are cumulative epochs, strictly increasing; the last is the child's full training (its
    learning-rate schedule spans it, so a child continued rung by rung equals one trained straight
    through). `tell`: what the strategy learns from (ASHA_TELLS)."""

    GROUP: ClassVar[str] = "asha"

    name: str = setting("none", "--early-stop", "asha: train children rung by rung", names=EARLY_STOPS)
    rungs: tuple[int, ...] = setting((), "--rungs", "cumulative epochs of the rungs, increasing; the last is the "
                                     "child's length", metavar="E1,E2,...", low=1, example="1,3,9", unit="epochs",
                                     default_text="the child's epochs divided by eta, eta^2, ... down to 1")
    # not from Li et al. (whose runs and Ray Tune use 4): the top third goes on, which keeps more children
    # training at small budgets
    eta: int = setting(3, "--eta", "the top 1/eta of a rung is promoted", low=2)
    tell: str = setting("first", "--asha-tell", "what the strategy learns from: {described}", names=ASHA_TELLS)

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

    GROUP: ClassVar[str] = "objective"

    # None: accuracy alone; else a key of the child's result
    name: str | None = setting(None, "--cost", "cost measure of the child's result", names=COSTS,
                               default_text="none, reward = accuracy")
    target: float | None = setting(None, "--target", "the cost at which the reward equals the accuracy")
    weight: float = setting(-0.07, "--cost-weight", "weight w <= 0", default_text="{default}, MnasNet's")

    @property
    def active(self) -> bool:
        return self.name is not None


@dataclass(frozen=True)
class ExecutorConfig:
    """Where children run. `workers` is W, the number of children kept in flight (paper §3, A.3)."""

    GROUP: ClassVar[str] = "execution"

    name: str = setting("process", "--executor", "where children run: {described}", names=EXECUTORS, choices=True)
    workers: int = setting(0, "--workers", "children kept in flight", low=0, note=" (0: as many as the CPUs allow)",
                           default_text="as many as the CPUs allow")          # serial: 1
    ray_address: str | None = setting(None, "--ray-address", "an existing Ray cluster",
                                      default_text="RAY_ADDRESS, else a local instance")
    cpus_per_child: float = setting(1.0, "--cpus-per-child", "CPUs (threads) per child")
    gpus_per_child: float = setting(0.0, "--gpus-per-child", "GPUs per child (process and ray executors); "
                                    "fractional to share one: 0.25 = four children per GPU")
    # infrastructure failures (dead worker, OOM) are retried this often
    max_retries: int = setting(2, "--max-retries", "retries after an infrastructure failure", low=0)
    child_timeout: float | None = setting(None, "--child-timeout", "seconds before a child is stopped (process, ray)")


@dataclass(frozen=True)
class ChildConfig:
    """The JSON payload every child receives; `fn` names the function ("module:function")."""

    GROUP: ClassVar[str] = "children"

    data: str = setting("digits", "--data", "the children's data")
    fn: str = setting(DEFAULT_CHILD_FN, "--child", "child function 'module:function', or {names} (nb201:DATASET: "
                      "NAS-Bench-201's results on cifar10, cifar100 or imagenet16-120)", names=CHILDREN,
                      aliases=True)
    # TrainConfig overrides on the child preset
    train: dict = setting(default_factory=dict, keys={"epochs": Option("--epochs", "child training epochs", low=1,
                                                                        kind="int")})
    # ModelConfig overrides
    model: dict = setting(default_factory=dict, keys={
        "normal_cells": Option("--normal-cells", "child N (normal cells per stage)", low=1, kind="int"),
        "filters": Option("--filters", "child F0 (first stage's per-branch filters)", low=1, kind="int")})
    options: dict = field(default_factory=dict)  # further payload keys, passed through as they are
    device: str | None = setting(None, "--device", "child device, e.g. cpu or cuda")


@dataclass(frozen=True)
class SearchConfig:
    GROUP: ClassVar[str] = "search"

    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    children: int = setting(40, "--children", "architectures to sample and evaluate", low=1)   # the paper: 20,000
    epoch_budget: int | None = setting(None, "--epoch-budget", "also stop starting children (and promotions) once "
                                       "E child-epochs are spent or under way", metavar="E", low=1)
    space: str = setting("nasnet-a", "--space", "search space: {names}", names=SPACES)
    seed: int = setting(0, "--seed", "seed of the controller and of every child", low=-2**31, high=2**31 - 1)
    # what the policy sees for a failed or diverged child
    failure_reward: float | str = setting(0.0, "--failure-reward", "reward the strategy sees for a failed child: a "
                                          "finite number or {described}", metavar="R", names=FAILURE_RULES, words=True)
    # an architecture sampled again reuses its first result
    dedupe: bool = setting(True, "--no-dedupe", "train an architecture again when it is sampled again",
                           default_text="reuse its result")
    # the top-k stage: retrain the K best (the paper: 250) with a fresh seed, for `final_epochs` (train.epochs
    # of the final payload), optionally as a larger network (N, F0); then the pick with `pick_seeds` more
    top_k: int = setting(0, "--top-k", "after the search, retrain the K best with a fresh seed", low=0,
                         note=" (0: no top-k stage)", group="top-k",
                         default_text=f"{{default}}; a new digits search: {QUICK_DIGITS_FINAL['top_k']}")
    final_epochs: int | None = setting(None, "--final-epochs", "epochs of that retraining (a new digits search: "
                                       "twice the child's)", low=1, group="top-k")
    final_normal_cells: int | None = setting(None, "--final-normal-cells", "N of the retrained networks", low=1,
                                             group="top-k", default_text="the child's")
    final_filters: int | None = setting(None, "--final-filters", "F0 of the retrained networks", low=1,
                                        group="top-k", default_text="the child's")
    pick_seeds: int = setting(0, "--pick-seeds", "then retrain the pick (the top-k winner, else the best child) with "
                              "R more fresh seeds and report their mean", metavar="R", low=0,
                              note=" (0: no retraining of the pick)", group="top-k")
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
        return epochs if is_int(epochs) else None

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
        """Refuse settings that cannot work, in one line naming the field (`strategy.sample_size`; the command
        line turns field names into its flags)."""
        SPACES.check(self.space)
        s, e = self.strategy, self.executor
        self._validate_failure_reward()
        self._validate_whole_numbers()
        STRATEGIES.check(s.name)
        CONTROLLER_OPTIMIZERS.check(s.optimizer)
        EXECUTORS.check(e.name)
        checks = [
            (s.learning_rate > 0, f"{_f('strategy.learning_rate')} must be positive, got {s.learning_rate}"),
            (s.entropy_weight >= 0, f"{_f('strategy.entropy_weight')} must be non-negative, got {s.entropy_weight}"),
            (0 <= s.baseline_decay < 1, f"{_f('strategy.baseline_decay')} must be in [0, 1), got {s.baseline_decay}"),
            (0 < s.clip < 1, f"{_f('strategy.clip')} must be in (0, 1), got {s.clip}"),
            (s.name != "evolution" or s.sample_size <= s.population,
             f"{_f('strategy.sample_size')} ({s.sample_size}) cannot exceed {_f('strategy.population')} "
             f"({s.population}): a tournament draws from the population"),
            (e.cpus_per_child > 0, f"{_f('executor.cpus_per_child')} must be positive, got {e.cpus_per_child}"),
            (e.gpus_per_child >= 0, f"{_f('executor.gpus_per_child')} must be non-negative, got {e.gpus_per_child}"),
            (e.child_timeout is None or e.child_timeout > 0,
             f"{_f('executor.child_timeout')} must be positive, got {e.child_timeout}"),
            (":" in self.child.fn, f"the child function must read 'module:function', got {self.child.fn!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise NasnetError(message)
        self._validate_early_stop()
        self._validate_cost()
        self._validate_budget()
        self._validate_nb201()
        for name, value in (("early_stop.rungs", self.early_stop.rungs), ("cost.target", self.cost.target)):
            reason = self.unused(name) if value else None      # nobody would set these without their switch
            if reason:
                raise NasnetError(no_effect(_f(name), reason))

    def _validate_whole_numbers(self) -> None:
        """The counts (the settings declared with bounds) are whole numbers in their range, seeds 32-bit, and
        every integer anywhere in the config (the child's overrides included) fits the 64-bit integers of the
        trial store."""
        flat = dict(flatten(self.to_dict()))
        for item in COUNTS:
            name, (low, high, note), value = item.path, item.bounds(), flat.get(item.path)
            if value is None and item.default is None:      # an optional count, not set
                continue
            many = item.kind == "counts"
            for v in value if many else [value]:
                if not is_int(v) or not low <= v <= high:
                    bound = f"of at most {high:,}" if is_int(v) and v > high else f"of at least {low:,}{note}"
                    raise NasnetError(f"{_f(name)} must be {'whole numbers' if many else 'a whole number'} {bound}, "
                                      f"got {shown(value)}")
        for name, value in flat.items():
            if is_int(value) and not -2**63 <= value < 2**63:
                raise NasnetError(f"{_f(name)} = {shown(value)} is beyond the 64-bit integers a run's store holds")

    def unused(self, name: str) -> str | None:
        """Why setting `name` (a field, "strategy.population") would have no effect with the rest of this
        config, or None when it has one: the one rule behind refusing a flag that does nothing."""
        for fields, applies, reason in UNUSED_WITHOUT:
            if name in fields and not applies(self):
                return reason(self) if callable(reason) else reason
        reads = strategy_reads()
        part, _, field_name = name.partition(".")
        mine = reads.get(self.strategy.name)       # None: a strategy that does not say what it reads
        if part == "strategy" and field_name != "name" and mine is not None and field_name not in mine:
            readers = [n for n, r in reads.items() if r and field_name in r]
            return (f"with {_f('strategy.name')} ({self.strategy.name}): only {' and '.join(readers)} "
                    f"read{'s' if len(readers) == 1 else ''} it")
        return None

    def _validate_nb201(self) -> None:
        """NAS-Bench-201's cells are no NASNet genotypes, and its child trains nothing: refuse what cannot apply."""
        c, nb201_space = self.child, self.space.lower() == NB201_SPACE
        if nb201_space and c.fn in (DEFAULT_CHILD_FN, ANALYTIC_CHILD_FN):
            raise NasnetError(f"{_f('space')} nb201: its cells are NAS-Bench-201's, which the training and analytic "
                              f"children cannot build; use the nb201 child ({_f('child.fn')} nb201:cifar10, cifar100 "
                              "or imagenet16-120)")
        if c.fn != NB201_CHILD_FN:
            return
        unused = [name for names, given in ((("child.model", "child.train"), c.model or c.train),
                                            (("early_stop.name",), self.early_stop.active),
                                            (("cost.target",), self.cost.active),
                                            (("epoch_budget",), self.epoch_budget),
                                            (("top_k", "pick_seeds"), self.top_k or self.pick_seeds))
                  if given for name in names]
        checks = [(nb201_space, f"the nb201 child looks up cells of {_f('space')} nb201, not of {self.space}"),
                  (c.data in NB201_DATASETS,
                   f"{_f('child.data')}: {unknown('NAS-Bench-201 dataset', c.data, NB201_DATASETS)}"),
                  (c.options.get("reward", "single") in NB201_REWARDS,
                   f"the nb201 child's reward: {unknown('reward', c.options.get('reward'), NB201_REWARDS)}"),
                  (not unused, f"{', '.join(map(_f, unused))}: the nb201 child looks "
                               f"results up and trains nothing (give the budget as {_f('children')})")]
        for ok, message in checks:
            if not ok:
                raise NasnetError(message)

    def _validate_failure_reward(self) -> None:
        f = self.failure_reward
        if isinstance(f, str) and f in FAILURE_RULES:
            return
        if isinstance(f, str) or not is_number(f) or not math.isfinite(f):
            raise NasnetError(f"{_f('failure_reward')} must be a finite number or "
                              f"{' or '.join(map(repr, FAILURE_RULES))}, got {f!r}")

    def _validate_early_stop(self) -> None:
        a = self.early_stop
        EARLY_STOPS.check(a.name)
        if not a.active:
            return
        rungs = ",".join(map(str, a.rungs))
        if len(a.rungs) < 2:
            raise NasnetError(f"ASHA needs at least two rungs ({_f('early_stop.rungs')} E1,E2,...), got "
                              f"{rungs or 'none'}")
        if any(b <= r for r, b in zip(a.rungs, a.rungs[1:])):
            raise NasnetError(f"{_f('early_stop.rungs')} must increase strictly, got {rungs}")
        if a.tell not in ASHA_TELLS:
            raise NasnetError(f"{_f('early_stop.tell')} must be one of {', '.join(ASHA_TELLS)}, got {a.tell!r}")
        epochs = self.child.train.get("epochs")
        if epochs is not None and epochs != a.rungs[-1]:
            raise NasnetError(f"with ASHA the last rung is the child's training length: {_f('early_stop.rungs')} "
                              f"({rungs}) end at {a.rungs[-1]}, {_f('child.train.epochs')} ({epochs}) differ: end "
                              "the rungs at the child's epochs, or give those epochs")

    def _validate_cost(self) -> None:
        c = self.cost
        if not c.active:
            return
        COSTS.check(c.name)
        if c.target is None or not is_number(c.target) or not math.isfinite(c.target) or c.target <= 0:
            raise NasnetError(f"{_f('cost.name')} {c.name} needs a positive {_f('cost.target')}, the cost at which "
                              f"the reward is the accuracy; got {c.target}")
        if not is_number(c.weight) or not math.isfinite(c.weight) or c.weight > 0:
            raise NasnetError(f"{_f('cost.weight')} must be a finite number <= 0 (negative penalises a cost above "
                              f"the target; MnasNet uses -0.07), got {c.weight}")

    def _validate_budget(self) -> None:
        if self.epoch_budget is not None:
            first = self.first_job_epochs
            if first is None:
                raise NasnetError(f"{_f('epoch_budget')} counts child-epochs: give the child's "
                                  f"{_f('child.train.epochs')} (or ASHA's {_f('early_stop.rungs')})")
            if self.epoch_budget < first:
                raise NasnetError(f"{_f('epoch_budget')} {self.epoch_budget} does not cover one child ({first} "
                                  "epochs)")

    def validate_final_stage(self) -> None:
        """Refuse a top-k stage that would retrain the search child as it was. Checked when a search runs,
        not when a config is read, so a run an older version started that way can still be read."""
        if self.top_k and self.final_is_search_child():
            epochs = self.search_epochs
            raise NasnetError(f"with {_f('top_k')} ({self.top_k}) the top-k stage would retrain the search child as "
                              f"it was (only the seed would change): give {_f('final_epochs')} other than the "
                              f"child's{f' {epochs}' if epochs else ''}, {_f('final_normal_cells')} or "
                              f"{_f('final_filters')}")

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
        try:
            parts = {f.name: f.default_factory(**data.get(f.name, {})) for f in dataclasses.fields(cls)
                     if dataclasses.is_dataclass(f.default_factory)}
            top = {k: v for k, v in data.items() if k not in parts}
            return cls(**top, **parts)
        except TypeError as err:
            raise NasnetError(f"search config: {err}") from None

    def replace(self, **changes: Any) -> "SearchConfig":
        """A copy with top-level fields or nested ones ("strategy.learning_rate") changed."""
        return replace_fields(self, "search config", changes)


# The whole-number settings with their bounds (declared with each field), checked by SearchConfig.validate.
COUNTS = [s for s in settings(SearchConfig) if s.bounded and not s.key]


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


# Fields that define the search itself: a resumed run must keep them. Everything else (the budget,
# where and how children run) may change when a run is continued.
IDENTITY_FIELDS = ("space", "seed", "failure_reward", "dedupe", "strategy", "early_stop", "cost", "child")
