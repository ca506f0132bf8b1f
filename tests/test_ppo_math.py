"""PPO and REINFORCE updates against a hand-written policy and loss (paper §3, A.3).

The reference here re-implements the controller's policy on a tiny space (two decisions of 2 and 3
choices, 6 LSTM units) with plain torch: one LSTM step per decision (PyTorch's gate order i, f, g,
o), a softmax over that decision's slice of the head, the chosen decision's embedding fed back.
On it: the clipped surrogate against the log-probabilities recorded at sampling, minus the entropy
bonus, several PPO epochs, global-norm gradient clipping and plain SGD steps, all written out.
Each test names the bug it catches (a mutation of the source that makes it fail)."""

import copy

import pytest
import torch

from nasnet.search.config import StrategyConfig
from nasnet.search.strategies import PPO, Proposal, Reinforce

SIZES = [2, 3]
OFFSETS = [0, 2]
HIDDEN = 6


def policy(params, decisions):
    """(log-prob, entropy) of each decision sequence, summed over its decisions, from the raw weights."""
    w_ih, w_hh = params["lstm.weight_ih_l0"], params["lstm.weight_hh_l0"]
    b = params["lstm.bias_ih_l0"] + params["lstm.bias_hh_l0"]
    log_probs, entropies = [], []
    for seq in decisions:
        x, h, c = params["start"][0], torch.zeros(HIDDEN, dtype=torch.float64), torch.zeros(HIDDEN, dtype=torch.float64)
        lp = ent = 0.0
        for d, o, n in zip(seq, OFFSETS, SIZES):
            i, f, g, og = (w_ih @ x + w_hh @ h + b).split(HIDDEN)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(og) * torch.tanh(c)
            logp = torch.log_softmax(params["head.weight"][o:o + n] @ h + params["head.bias"][o:o + n], 0)
            lp = lp + logp[d]
            ent = ent - (logp.exp() * logp).sum()
            x = params["embed.weight"][o + d]
        log_probs.append(lp)
        entropies.append(ent)
    return torch.stack(log_probs), torch.stack(entropies)


def leaves(controller):
    return {k: v.detach().double().clone().requires_grad_(True) for k, v in controller.state_dict().items()}


def sgd_step(params, loss, lr, max_norm):
    """Plain SGD on the global-norm-clipped gradient; returns the norm before clipping."""
    grads = torch.autograd.grad(loss, list(params.values()))
    norm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
    scale = min(1.0, max_norm / (norm + 1e-6)) if max_norm else 1.0
    new = {k: (p - lr * scale * g).detach().requires_grad_(True) for (k, p), g in zip(params.items(), grads)}
    return new, norm


def batch_of(strategy, rewards, stale=()):
    """Proposals asked from the strategy; those in `stale` carry a recorded log-prob 0.4 below the
    true one (sampled by an older policy)."""
    props = [strategy.ask() for _ in rewards]
    return [Proposal(p.decisions, p.log_prob - (0.4 if i in stale else 0.0), 0) for i, p in enumerate(props)]


def test_ppo_update_equals_the_hand_computed_clipped_surrogate_over_several_epochs():
    """Three PPO epochs, SGD, a large lr (so more ratios leave [1 - eps, 1 + eps] at every epoch: 1,
    then 2, then 3 of 4), a large entropy weight and a max_grad_norm that acts on the first step.

    Catches: the entropy bonus's sign flipped (a penalty) or its weight dropped, the clamp removed,
    ratios taken against the previous epoch's policy instead of the sampling one, only one epoch run,
    max_grad_norm ignored, Adam used when SGD is asked for, the reported loss not the first epoch's."""
    cfg = StrategyConfig(name="ppo", batch_size=4, ppo_epochs=3, learning_rate=1.0, entropy_weight=0.05, clip=0.2,
                         hidden_size=HIDDEN, init_range=0.5, optimizer="sgd", max_grad_norm=0.2)
    s = PPO(SIZES, cfg, seed=3)
    params = leaves(s.controller)
    rewards = [1.0, 0.0, 0.6, 0.2]
    props = batch_of(s, rewards, stale={2})
    old = torch.tensor([p.log_prob for p in props], dtype=torch.float64)
    adv = torch.tensor(rewards, dtype=torch.float64) - sum(rewards) / 4      # baseline: first minibatch's mean
    decisions = [p.decisions for p in props]
    losses, clipped, norms = [], [], []
    for _ in range(3):
        log_prob, entropy = policy(params, decisions)
        ratio = torch.exp(log_prob - old)
        surrogate = torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
        loss = -surrogate.mean() - 0.05 * entropy.mean()
        losses.append(float(loss.detach()))
        clipped.append(float(((ratio - 1).abs() > 0.2).double().mean()))
        last_entropy = float(entropy.detach().mean())
        params, norm = sgd_step(params, loss, 1.0, 0.2)
        norms.append(norm)
    assert norms[0] > 0.2                        # max_grad_norm acts on the first step
    assert clipped == [0.25, 0.5, 0.75]          # the stale one, then more as the policy moves

    update = None
    for p, r in zip(props, rewards):
        update = s.tell(p, r)
    assert update["loss"] == pytest.approx(losses[0], rel=1e-5)
    assert update["clip_fraction"] == pytest.approx(sum(clipped) / 3)
    assert update["entropy"] == pytest.approx(last_entropy, rel=1e-5)
    for k, v in s.controller.state_dict().items():
        assert torch.allclose(v.double(), params[k].detach(), atol=2e-6), k


def test_reinforce_update_equals_the_hand_computed_policy_gradient():
    """One SGD step on -mean((r - b) log pi) - w * mean(entropy), with the current log-probabilities.

    Catches: the advantage's sign flipped, the baseline not subtracted, the entropy term's sign."""
    cfg = StrategyConfig(name="reinforce", batch_size=3, learning_rate=0.2, entropy_weight=0.1,
                         hidden_size=HIDDEN, init_range=0.5, optimizer="sgd")
    s = Reinforce(SIZES, cfg, seed=1)
    params = leaves(s.controller)
    rewards = [0.9, 0.1, 0.3]
    props = [s.ask() for _ in rewards]
    log_prob, entropy = policy(params, [p.decisions for p in props])
    adv = torch.tensor(rewards, dtype=torch.float64) - sum(rewards) / 3
    loss = -(adv * log_prob).mean() - 0.1 * entropy.mean()
    params, _ = sgd_step(params, loss, 0.2, None)
    update = None
    for p, r in zip(props, rewards):
        update = s.tell(p, r)
    assert update["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    for k, v in s.controller.state_dict().items():
        assert torch.allclose(v.double(), params[k].detach(), atol=1e-6), k


def test_an_exception_inside_a_later_update_leaves_the_strategy_as_it_was(monkeypatch):
    """An error in the third PPO epoch of the second update (Adam has moments, the baseline is set,
    an update record exists): buffer, told, baseline, version, last update, controller and optimizer
    are exactly as before the tell, and telling the same result again gives what an uninterrupted
    strategy gives.

    Catches: the restore dropped for the optimizer (Adam moments half-updated), for the baseline, for
    the buffer (the result appended), or `told` counted before the update succeeded."""
    cfg = StrategyConfig(name="ppo", batch_size=3, ppo_epochs=4, learning_rate=0.05, hidden_size=HIDDEN)
    s = PPO(SIZES, cfg, seed=0)
    rewards = [0.3, 0.9, 0.1, 0.5, 0.2, 0.8]
    props = [s.ask() for _ in rewards]
    for p, r in zip(props[:5], rewards[:5]):
        s.tell(p, r)
    assert s.version == 1 and len(s.buffer) == 2 and s.optimizer.state_dict()["state"]
    twin = copy.deepcopy(s)
    before = s.state_dict()
    real_step, calls = PPO._step, []

    def failing_step(self, loss):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_step(self, loss)

    monkeypatch.setattr(PPO, "_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        s.tell(props[5], rewards[5])
    assert len(calls) == 3                                 # two steps were taken, then undone
    monkeypatch.setattr(PPO, "_step", real_step)
    after = s.state_dict()
    assert _equal(after, before)
    assert s.baseline == twin.baseline and s.last_update == twin.last_update
    done, expected = s.tell(props[5], rewards[5]), twin.tell(props[5], rewards[5])
    clock = ("time", "seconds")                        # wall-clock facts of the update record
    assert {k: v for k, v in done.items() if k not in clock} == {k: v for k, v in expected.items() if k not in clock}
    got, want = s.state_dict(), twin.state_dict()
    got["last_update"] = want["last_update"] = None
    assert _equal(got, want)


def _equal(a, b) -> bool:
    """Deep equality of state dicts holding tensors (bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b
