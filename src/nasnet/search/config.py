"""The search's configuration: frozen dataclasses, resolved by the CLI and saved as RUN_DIR/config.json.

`SearchConfig` holds everything that defines a search (space, strategy, budget, child payload,
failure handling, top-k stage) and how it runs (executor, workers, resources). Defaults are the
paper's where it gives a value (§3 and A.3: PPO, learning rate 0.00035, entropy weight 1e-5,
baseline decay 0.95, minibatches of 20; A.3: the top-k retraining stage); PPO's clipping
0.2 is Schulman et al.'s. Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..arch.space import get_space
from ..errors import NasnetError
from .executors import EXECUTORS

# The strategies (nasnet.search.strategies implements one class per name).
STRATEGY_NAMES = ("ppo", "reinforce", "random")

# The training child and the analytic one (no training; see nasnet.search.children).
DEFAULT_CHILD_FN = "nasnet.search.children.train:train_child"
ANALYTIC_CHILD_FN = "nasnet.search.children.analytic:analytic_child"
CHILD_ALIASES = {"train": DEFAULT_CHILD_FN, "analytic": ANALYTIC_CHILD_FN}

# `nasnet search` with no arguments: a digits search that finishes within minutes on 2 CPU cores.
# These overrides apply to the training child on digits when a new run is started from the command
# line; other data get the paper's child (N = 2, F0 = 32, 20 epochs: nasnet.child's preset).
QUICK_DIGITS_CHILD = {"model": {"normal_cells": 1, "filters": 8}, "train": {"epochs": 5}}


@dataclass(frozen=True)
class StrategyConfig:
    """How the controller proposes architectures and learns from their rewards (paper §3, A.2, A.3)."""

    name: str = "ppo"                 # ppo | reinforce | random
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
    failure_reward: float = 0.0       # what the policy sees for a failed or diverged child
    dedupe: bool = True               # an architecture sampled again reuses its first result
    top_k: int = 0                    # retrain the K best (the paper: 250) ...
    final_epochs: int | None = None   # ... for this many epochs (train.epochs of the final payload)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    child: ChildConfig = field(default_factory=ChildConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        get_space(self.space)
        s, e = self.strategy, self.executor
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
            (e.name in EXECUTORS, f"unknown executor {e.name!r} (known: {', '.join(EXECUTORS)})"),
            (e.workers >= 0, f"--workers must be at least 1 (or 0: as many as the CPUs allow), got {e.workers}"),
            (e.cpus_per_child > 0, f"--cpus-per-child must be positive, got {e.cpus_per_child}"),
            (e.gpus_per_child >= 0, f"--gpus-per-child must be non-negative, got {e.gpus_per_child}"),
            (e.max_retries >= 0, f"--max-retries must be non-negative, got {e.max_retries}"),
            (e.child_timeout is None or e.child_timeout > 0, "--child-timeout must be positive"),
            (self.top_k >= 0, f"--top-k must be non-negative, got {self.top_k}"),
            (self.final_epochs is None or self.final_epochs >= 1, "--final-epochs must be at least 1"),
            (":" in self.child.fn, f"the child function must read 'module:function', got {self.child.fn!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise NasnetError(message)

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


# Fields that define the search itself: a resumed run must keep them. Everything else (the budget,
# where and how children run) may change when a run is continued.
IDENTITY_FIELDS = ("space", "seed", "failure_reward", "dedupe", "strategy", "child")
