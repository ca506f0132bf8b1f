"""Search strategies behind one ask/tell interface: PPO, REINFORCE and random search (paper §3, §4.4).

    proposal = strategy.ask()                  # decisions, their log-prob at sampling time, policy version
    update = strategy.tell(proposal, reward)   # an update record when a minibatch completed, else None
    strategy.state_dict() / load_state_dict()  # everything needed to resume, as tensors and plain values

The paper trains the controller with Proximal Policy Optimization (learning rate 0.00035, entropy
penalty weight 0.00001, a baseline that is an exponential moving average of rewards with weight 0.95,
minibatches of 20 architectures; §3, A.3) and compares it with REINFORCE (the rule of Zoph & Le,
2017) and with random search, every decision uniform (Figure 6).

Results arrive out of order from a pool of workers, so a minibatch can hold architectures sampled
by an older policy. PPO takes its probability ratio against the log-probability recorded when each
architecture was sampled (`Proposal.log_prob`), not against the current policy, which keeps the
clipped surrogate correct for such stale results. REINFORCE, as in the original NAS, uses the current
log-probability and ignores staleness.

The baseline starts as the mean reward of the first minibatch (not 0, which would make every early
advantage positive) and is then moved towards each reward in turn: b <- decay * b + (1 - decay) * r.
Advantages of a minibatch use the baseline from before that minibatch.

The sampling RNG is a pure function of (seed, number of proposals made so far), so a resumed run never
re-draws a sample the interrupted run already made, and a run is reproducible from its seed. The paper does not give the
number of PPO epochs per minibatch, the optimizer or gradient clipping; they are config fields
(defaults: 4 epochs, Adam, no clipping) — see `StrategyConfig`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import NasnetError
from ..seeding import CONTROLLER_SAMPLE, derive_seed
from .config import STRATEGY_NAMES, StrategyConfig


@dataclass(frozen=True)
class Proposal:
    """An architecture to evaluate, with what the strategy needs to learn from its reward later."""

    decisions: tuple[int, ...]
    log_prob: float            # log pi(decisions) under the policy that sampled them
    policy_version: int        # number of controller updates made before sampling
    entropy: float = 0.0       # the sampling policy's entropy along this sequence (nats, summed)


class Strategy:
    """Common interface; subclasses implement `ask` and `_update`."""

    name = "strategy"

    def __init__(self, sizes: Sequence[int], config: StrategyConfig, seed: int = 0):
        self.sizes = [int(s) for s in sizes]
        self.config = config
        self.seed = int(seed)
        self.version = 0           # number of updates made
        self.asked = 0             # number of proposals made (the sampling RNG is keyed by it)
        self.told = 0              # number of results told
        self.baseline: float | None = None
        self.buffer: list[tuple[tuple[int, ...], float, float]] = []   # (decisions, log_prob, reward)

    def ask(self) -> Proposal:
        raise NotImplementedError

    def tell(self, proposal: Proposal | tuple[Sequence[int], float], reward: float) -> dict[str, Any] | None:
        """Record one result; returns the update's statistics when a minibatch completes."""
        if isinstance(proposal, Proposal):
            decisions, log_prob = proposal.decisions, proposal.log_prob
        else:
            decisions, log_prob = proposal
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"{self.name}: reward must be finite, got {reward}")
        self.buffer.append((tuple(int(d) for d in decisions), float(log_prob), reward))
        self.told += 1
        if len(self.buffer) < self.config.batch_size:
            return None
        batch, self.buffer = self.buffer, []
        start = time.perf_counter()
        rewards = [r for _, _, r in batch]
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        baseline_before = self.baseline
        stats = self._update(batch, baseline_before)
        for r in rewards:
            self.baseline = self.config.baseline_decay * self.baseline + (1 - self.config.baseline_decay) * r
        self.version += 1
        return {
            "version": self.version,
            "time": time.time(),
            "num_results": len(batch),
            "told": self.told,
            "mean_reward": sum(rewards) / len(rewards),
            "baseline": baseline_before,
            "seconds": time.perf_counter() - start,
            **stats,
        }

    def _update(self, batch, baseline: float) -> dict[str, float | None]:
        return {"entropy": None, "loss": None}

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "asked": self.asked, "told": self.told,
            "baseline": self.baseline,
            "buffer": [[list(d), lp, r] for d, lp, r in self.buffer],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"checkpoint holds a {state.get('name')!r} strategy, not {self.name!r}")
        self.version = int(state["version"])
        self.asked = int(state["asked"])
        self.told = int(state["told"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.buffer = [(tuple(d), float(lp), float(r)) for d, lp, r in state["buffer"]]


class RandomSearch(Strategy):
    """Every decision uniform and independent (the paper's random-search baseline, Figure 6)."""

    name = "random"

    def ask(self) -> Proposal:
        rng = random.Random(derive_seed(self.seed, self.asked, CONTROLLER_SAMPLE))
        self.asked += 1
        decisions = tuple(rng.randrange(n) for n in self.sizes)
        log_prob = -sum(math.log(n) for n in self.sizes)
        return Proposal(decisions, log_prob, self.version, -log_prob)


class _PolicyGradient(Strategy):
    """Shared machinery of PPO and REINFORCE: the LSTM controller, its optimizer and RNG."""

    def __init__(self, sizes, config, seed=0):
        super().__init__(sizes, config, seed)
        import torch

        from .controller import Controller

        init_gen = torch.Generator().manual_seed(self.seed)
        self.controller = Controller(self.sizes, config.hidden_size, config.init_range, generator=init_gen)
        if config.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=config.learning_rate)
        else:
            self.optimizer = torch.optim.SGD(self.controller.parameters(), lr=config.learning_rate)
    def ask(self) -> Proposal:
        import torch

        from .controller import single_thread

        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.asked, CONTROLLER_SAMPLE))
        self.asked += 1
        with single_thread():
            s = self.controller.sample(1, generator=generator)[0]
        return Proposal(tuple(s.decisions), s.log_prob, self.version, s.entropy)

    def _update(self, batch, baseline):
        from .controller import single_thread

        with single_thread():
            return self._loss_steps(batch, baseline)

    def _loss_steps(self, batch, baseline) -> dict:
        raise NotImplementedError

    def _step(self, loss) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def state_dict(self):
        # copies: the live tensors keep changing, and Optimizer.load_state_dict does not copy them
        return copy.deepcopy({
            **super().state_dict(),
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        })

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])


class Reinforce(_PolicyGradient):
    """REINFORCE with the moving-average baseline: one gradient step per minibatch."""

    name = "reinforce"

    def _loss_steps(self, batch, baseline):
        import torch

        decisions = [d for d, _, _ in batch]
        adv = torch.tensor([r - baseline for _, _, r in batch])
        log_prob, entropy = self.controller.score(decisions)
        loss = -(adv * log_prob).mean() - self.config.entropy_weight * entropy.mean()
        self._step(loss)
        return {"entropy": float(entropy.detach().mean()), "loss": float(loss.detach())}


class PPO(_PolicyGradient):
    """PPO's clipped surrogate, ratios against the log-prob recorded at sampling time."""

    name = "ppo"

    def _loss_steps(self, batch, baseline):
        import torch

        decisions = [d for d, _, _ in batch]
        old = torch.tensor([lp for _, lp, _ in batch])
        adv = torch.tensor([r - baseline for _, _, r in batch])
        eps = self.config.clip
        losses, entropy = [], None
        for _ in range(self.config.ppo_epochs):
            log_prob, entropy = self.controller.score(decisions)
            ratio = torch.exp(log_prob - old)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
            loss = -surrogate.mean() - self.config.entropy_weight * entropy.mean()
            self._step(loss)
            losses.append(float(loss.detach()))
        return {"entropy": float(entropy.detach().mean()), "loss": losses[0]}


STRATEGIES: dict[str, type[Strategy]] = {"ppo": PPO, "reinforce": Reinforce, "random": RandomSearch}
assert tuple(STRATEGIES) == STRATEGY_NAMES, "every strategy name in the config has a class, and no other"


def make_strategy(sizes: Sequence[int], config: StrategyConfig, seed: int = 0) -> Strategy:
    try:
        cls = STRATEGIES[config.name]
    except KeyError:
        raise NasnetError(f"unknown strategy {config.name!r} (known: {', '.join(STRATEGIES)})") from None
    return cls(sizes, config, seed)
