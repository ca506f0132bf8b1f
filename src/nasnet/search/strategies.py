"""Search strategies behind one ask/tell interface: PPO, REINFORCE, random search (paper §3, §4.4),
regularized evolution (Real et al., AAAI 2019) and local search (White et al., 2020).

    proposal = strategy.ask()                  # decisions, their log-prob at sampling time, policy version
    update = strategy.tell(proposal, reward)   # an update record when a minibatch completed, else None
    strategy.state_dict() / load_state_dict()  # everything needed to resume, as tensors and plain values

A strategy knows only the decision vocabularies of a space (`SearchSpace.decision_sizes`) and, for
evolution, what each decision chooses (`SearchSpace.decision_roles`: an input, an op or a combiner);
never models.

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

Updates are transactional: `tell` either records the result and, when it completes a minibatch,
applies the whole update, or, if anything raises (an error, Ctrl-C) on the way, leaves the strategy
exactly as it was before the call (buffer, baseline, counters, controller weights and optimizer
state), so a checkpoint taken afterwards holds no half-applied update and the result is told again
on resume. Each update reports the policy's entropy on the minibatch, the KL divergence from the
policy before the update to the one after it (summed over the 2 x 5B softmaxes along the
minibatch's architectures, averaged over them) and, for PPO, the fraction of probability ratios
outside the clipping range.

Regularized evolution (aging evolution): a population of P architectures, oldest first. The first P
proposals are uniform samples (the initial population). Every later proposal runs a tournament: S
members drawn uniformly without replacement from the population, the one with the highest reward
(ties: the younger) is mutated, by a hidden-state mutation (one input of one block, in either cell,
replaced by another state that block may read) or an op mutation (one op of one block replaced by
another op; a block's combiner counts as one of its ops), each type with probability 1/2; a drawn
value equal to the old one is redrawn, so every mutation changes the architecture. A told result
joins the population as its youngest member and, once it holds more than P, the oldest is removed
(aging, not the worst). Results arrive asynchronously: only told results are members, so a
tournament runs on the population as it stands (fewer than S members: all of them); if no result
has arrived yet when the initial P have been proposed (more workers than P), `ask` samples
uniformly again. Failed children are told the failure reward and join like any other result.

Local search (White, Nolen, Ravi & Savani, "Local Search is State of the Art for Neural Architecture
Search Benchmarks", 2020): start from a uniformly random architecture; try its neighbours (every
architecture that differs in exactly one decision) in a random order and move to the first whose
reward is higher; at a local optimum (every neighbour evaluated, none better) restart from a new
random architecture. Every result is remembered, so no architecture is proposed twice while an
untried one is available, and a neighbour already known to be better is moved to without a query.
Its state after each result is a function of the results told so far (the order of a cell's
neighbours is keyed by the number of moves made), so replaying the told results rebuilds it. With
several workers, a proposal may be needed while every untried neighbour is still being evaluated:
it is then a uniform sample, which the climb uses if it turns out to be a better neighbour.

Every random draw is a pure function of (seed, number of proposals made so far) and the strategy's
state, so a resumed run never re-draws a sample the interrupted run already made, and a run is
reproducible from its seed. The paper does not give the number of PPO epochs per minibatch, the
optimizer or gradient clipping; they are config fields (defaults: 4 epochs, Adam, no clipping) —
see `StrategyConfig`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Sequence

from ..seeding import CONTROLLER_SAMPLE, EVOLUTION, LOCAL_SEARCH, derive_seed
from .choices import CONTROLLER_OPTIMIZERS, STRATEGIES
from .config import StrategyConfig


@dataclass(frozen=True)
class Proposal:
    """An architecture to evaluate, with what the strategy needs to learn from its reward later."""

    decisions: tuple[int, ...]
    log_prob: float | None         # log pi(decisions) under the policy that sampled them (None: no policy)
    policy_version: int            # number of controller updates made before sampling
    entropy: float | None = 0.0    # the sampling policy's entropy along this sequence (nats, summed)


class Strategy:
    """Common interface; subclasses implement `ask` and either `_update` (minibatch learners) or `_observe`."""

    name = "strategy"

    def __init__(self, sizes: Sequence[int], config: StrategyConfig, seed: int = 0,
                 roles: Sequence[str] | None = None):
        self.sizes = [int(s) for s in sizes]
        self.roles = list(roles) if roles is not None else None
        self.config = config
        self.seed = int(seed)
        self.version = 0           # number of updates made
        self.asked = 0             # number of proposals made (the sampling RNG is keyed by it)
        self.told = 0              # number of results told
        self.baseline: float | None = None
        self.buffer: list[tuple[tuple[int, ...], float | None, float]] = []   # (decisions, log_prob, reward)
        self.last_update: dict[str, Any] | None = None

    def ask(self) -> Proposal:
        raise NotImplementedError

    def tell(self, proposal: Proposal | tuple[Sequence[int], float | None], reward: float) -> dict[str, Any] | None:
        """Record one result; returns the update's statistics when a minibatch completes.

        All or nothing: if it raises, the strategy is as it was before the call."""
        if isinstance(proposal, Proposal):
            decisions, log_prob = proposal.decisions, proposal.log_prob
        else:
            decisions, log_prob = proposal
        reward = float(reward)
        if not math.isfinite(reward):
            raise ValueError(f"{self.name}: reward must be finite, got {reward}")
        item = (tuple(int(d) for d in decisions), None if log_prob is None else float(log_prob), reward)
        update = self._observe(item)
        self.told += 1
        return update

    def _observe(self, item: tuple[tuple[int, ...], float | None, float]) -> dict[str, Any] | None:
        """Buffer the result; a full minibatch updates the policy (transactionally, see the module doc)."""
        if len(self.buffer) + 1 < self.config.batch_size:
            self.buffer.append(item)
            return None
        saved = (self.buffer, self.baseline, self.version, self.last_update, self._policy_state())
        try:
            batch = self.buffer + [item]
            start = time.perf_counter()
            rewards = [r for _, _, r in batch]
            baseline_before = sum(rewards) / len(rewards) if self.baseline is None else self.baseline
            stats = self._update(batch, baseline_before)
            b = baseline_before
            for r in rewards:
                b = self.config.baseline_decay * b + (1 - self.config.baseline_decay) * r
            update = {
                "version": self.version + 1,
                "time": time.time(),
                "num_results": len(batch),
                "told": self.told + 1,
                "mean_reward": sum(rewards) / len(rewards),
                "baseline": baseline_before,
                "seconds": time.perf_counter() - start,
                "entropy": None, "loss": None, "kl": None, "clip_fraction": None,
                **stats,
            }
            self.buffer, self.baseline, self.version, self.last_update = [], b, self.version + 1, update
            return update
        except BaseException:
            self.buffer, self.baseline, self.version, self.last_update, policy = saved
            self._load_policy_state(policy)
            raise

    def _update(self, batch, baseline: float) -> dict[str, float | None]:
        return {}

    def _policy_state(self) -> Any:
        """A copy of whatever `_update` changes (restored if the update does not complete)."""
        return None

    def _load_policy_state(self, state: Any) -> None:
        pass

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "asked": self.asked, "told": self.told,
            "baseline": self.baseline,
            "buffer": [[list(d), lp, r] for d, lp, r in self.buffer],
            "last_update": dict(self.last_update) if self.last_update else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"checkpoint holds a {state.get('name')!r} strategy, not {self.name!r}")
        self.version = int(state["version"])
        self.asked = int(state["asked"])
        self.told = int(state["told"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])
        self.buffer = [(tuple(d), None if lp is None else float(lp), float(r)) for d, lp, r in state["buffer"]]
        self.last_update = state.get("last_update")


def _uniform(sizes: Sequence[int], rng: random.Random) -> tuple[int, ...]:
    return tuple(rng.randrange(n) for n in sizes)


class RandomSearch(Strategy):
    """Every decision uniform and independent (the paper's random-search baseline, Figure 6)."""

    name = "random"

    def ask(self) -> Proposal:
        rng = random.Random(derive_seed(self.seed, self.asked, CONTROLLER_SAMPLE))
        self.asked += 1
        log_prob = -sum(math.log(n) for n in self.sizes)
        return Proposal(_uniform(self.sizes, rng), log_prob, self.version, -log_prob)


class _PolicyGradient(Strategy):
    """Shared machinery of PPO and REINFORCE: the LSTM controller, its optimizer and RNG."""

    def __init__(self, sizes, config, seed=0, roles=None):
        super().__init__(sizes, config, seed, roles)
        import torch

        from .controller import Controller

        init_gen = torch.Generator().manual_seed(self.seed)
        self.controller = Controller(self.sizes, config.hidden_size, config.init_range, generator=init_gen)
        optimizer = CONTROLLER_OPTIMIZERS.lookup(config.optimizer)     # torch.optim.Adam or SGD
        self.optimizer = optimizer(self.controller.parameters(), lr=config.learning_rate)

    def ask(self) -> Proposal:
        import torch

        from .controller import single_thread

        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.asked, CONTROLLER_SAMPLE))
        self.asked += 1
        with single_thread():
            s = self.controller.sample(1, generator=generator)[0]
        return Proposal(tuple(s.decisions), s.log_prob, self.version, s.entropy)

    def _update(self, batch, baseline):
        import torch

        from .controller import kl_divergence, single_thread

        decisions = [d for d, _, _ in batch]
        with single_thread():
            with torch.no_grad():
                before, _ = self.controller.distributions(decisions)
            stats = self._loss_steps(batch, baseline)
            with torch.no_grad():
                after, _ = self.controller.distributions(decisions)
                stats["kl"] = float(kl_divergence(before, after).mean())
        return stats

    def _loss_steps(self, batch, baseline) -> dict:
        raise NotImplementedError

    def _step(self, loss) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def _policy_state(self):
        return copy.deepcopy((self.controller.state_dict(), self.optimizer.state_dict()))

    def _load_policy_state(self, state) -> None:
        controller, optimizer = state
        self.controller.load_state_dict(controller)
        self.optimizer.load_state_dict(optimizer)

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


def _require_log_probs(name: str, batch) -> None:
    if any(lp is None for _, lp, _ in batch):
        raise ValueError(f"{name}: every result needs the log-probability it was sampled with")


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

        _require_log_probs(self.name, batch)
        decisions = [d for d, _, _ in batch]
        old = torch.tensor([lp for _, lp, _ in batch])
        adv = torch.tensor([r - baseline for _, _, r in batch])
        eps = self.config.clip
        losses, clipped, entropy = [], [], None
        for _ in range(self.config.ppo_epochs):
            log_prob, entropy = self.controller.score(decisions)
            ratio = torch.exp(log_prob - old)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
            loss = -surrogate.mean() - self.config.entropy_weight * entropy.mean()
            clipped.append(float(((ratio.detach() - 1).abs() > eps).float().mean()))
            self._step(loss)
            losses.append(float(loss.detach()))
        return {"entropy": float(entropy.detach().mean()), "loss": losses[0],
                "clip_fraction": sum(clipped) / len(clipped)}


class Evolution(Strategy):
    """Regularized (aging) evolution in the cell space; see the module doc for the rules."""

    name = "evolution"

    def __init__(self, sizes, config, seed=0, roles=None):
        super().__init__(sizes, config, seed, roles)
        if self.roles is None or len(self.roles) != len(self.sizes):
            raise ValueError("evolution needs the role (input, op, combiner) of every decision")
        changeable = [i for i, n in enumerate(self.sizes) if n > 1]
        self.mutations = [m for m in ([i for i in changeable if self.roles[i] == "input"],
                                      [i for i in changeable if self.roles[i] in ("op", "combiner")]) if m]
        if not self.mutations:
            raise ValueError("evolution: no decision has more than one choice")
        self.population: list[tuple[tuple[int, ...], float]] = []     # oldest first

    def ask(self) -> Proposal:
        rng = random.Random(derive_seed(self.seed, self.asked, EVOLUTION))
        self.asked += 1
        if self.asked <= self.config.population or not self.population:
            return Proposal(_uniform(self.sizes, rng), None, self.version, None)
        drawn = rng.sample(range(len(self.population)), min(self.config.sample_size, len(self.population)))
        parent = max(drawn, key=lambda i: (self.population[i][1], i))
        return Proposal(self.mutate(self.population[parent][0], rng), None, self.version, None)

    def mutate(self, decisions: Sequence[int], rng: random.Random) -> tuple[int, ...]:
        """One hidden-state or op mutation; a value equal to the old one is redrawn."""
        position = rng.choice(rng.choice(self.mutations))
        child = list(decisions)
        while child[position] == decisions[position]:
            child[position] = rng.randrange(self.sizes[position])
        return tuple(child)

    def _observe(self, item):
        decisions, _, reward = item
        population = self.population + [(decisions, reward)]
        self.population = population[-self.config.population:]     # aging: the oldest leaves
        return None

    def state_dict(self):
        return {**super().state_dict(), "population": [[list(d), r] for d, r in self.population]}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.population = [(tuple(int(x) for x in d), float(r)) for d, r in state["population"]]


class LocalSearch(Strategy):
    """First-improvement local search with random restarts; see the module doc for the rules."""

    name = "local"
    RESTART_TRIES = 100     # a restart redraws a cell already evaluated (or in flight) up to this often

    def __init__(self, sizes, config, seed=0, roles=None):
        super().__init__(sizes, config, seed, roles)
        self.known: dict[tuple[int, ...], float] = {}           # every result told (the first, for a repeat)
        self.current: tuple[tuple[int, ...], float] | None = None  # where the climb stands; None: restart
        self.moves = 0                                           # keys the order of the current's neighbours
        self.pending: list[tuple[int, ...]] = []                 # proposed, not told yet

    def neighbours(self, decisions: Sequence[int]) -> list[tuple[int, ...]]:
        """Every decision list that differs from `decisions` in exactly one decision, in a random order."""
        d = tuple(decisions)
        out = [d[:i] + (v,) + d[i + 1:] for i, n in enumerate(self.sizes) for v in range(n) if v != d[i]]
        random.Random(derive_seed(self.seed, self.moves, LOCAL_SEARCH, "order")).shuffle(out)
        return out

    def ask(self) -> Proposal:
        rng = random.Random(derive_seed(self.seed, self.asked, LOCAL_SEARCH))
        self.asked += 1
        busy = set(self.pending)
        choice = None
        if self.current is not None:
            choice = next((d for d in self.neighbours(self.current[0]) if d not in self.known and d not in busy), None)
        if choice is None:       # a restart (or every untried neighbour is in flight): a uniform sample
            for _ in range(self.RESTART_TRIES):
                choice = _uniform(self.sizes, rng)
                if choice not in self.known and choice not in busy:
                    break
        self.pending.append(choice)
        return Proposal(choice, None, self.version, None)

    def _observe(self, item):
        decisions, _, reward = item
        if decisions in self.pending:
            self.pending.remove(decisions)
        self.known.setdefault(decisions, reward)
        if self.current is None:
            self._move(decisions, reward)
        while self.current is not None:
            order = self.neighbours(self.current[0])
            better = next((d for d in order if d in self.known and self.known[d] > self.current[1]), None)
            if better is not None:
                self._move(better, self.known[better])
            else:
                if all(d in self.known for d in order):
                    self.current = None          # a local optimum: the next proposal restarts
                break
        return None

    def _move(self, decisions: tuple[int, ...], reward: float) -> None:
        self.current = (decisions, reward)
        self.moves += 1

    def state_dict(self):
        return {**super().state_dict(), "known": [[list(d), r] for d, r in self.known.items()],
                "current": None if self.current is None else [list(self.current[0]), self.current[1]],
                "moves": self.moves, "pending": [list(d) for d in self.pending]}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.known = {tuple(int(x) for x in d): float(r) for d, r in state["known"]}
        current = state["current"]
        self.current = None if current is None else (tuple(int(x) for x in current[0]), float(current[1]))
        self.moves = int(state["moves"])
        self.pending = [tuple(int(x) for x in d) for d in state["pending"]]


def make_strategy(sizes: Sequence[int], config: StrategyConfig, seed: int = 0,
                  roles: Sequence[str] | None = None) -> Strategy:
    """The strategy a config names (STRATEGIES), over decisions of these vocabulary sizes (and roles, for
    evolution)."""
    return STRATEGIES.lookup(config.name)(sizes, config, seed, roles)
