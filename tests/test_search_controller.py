"""The LSTM controller and the strategies (paper §3, A.2-A.3)."""

import math
import random
from collections import Counter

import pytest
import torch

from nasnet.arch.space import get_space
from nasnet.search.config import StrategyConfig
from nasnet.search.controller import Controller
from nasnet.search.strategies import PPO, Proposal, RandomSearch, Reinforce, make_strategy

SPACE = get_space("nasnet-a")
SIZES = SPACE.decision_sizes()


def make_controller(seed=0, **kw):
    return Controller(SIZES, generator=torch.Generator().manual_seed(seed), **kw)


def test_controller_shape_follows_the_paper():
    c = make_controller()
    assert c.hidden_size == 100 and c.lstm.num_layers == 1 and c.lstm.hidden_size == 100
    assert c.num_decisions == 2 * 5 * 5
    # input-choice softmax of block b has 2 + b entries; op softmaxes 13; combiner 2
    for t, size in enumerate(c.sizes):
        b, k = (t % 25) // 5, t % 5
        assert size == {0: 2 + b, 1: 2 + b, 2: 13, 3: 13, 4: 2}[k]
        assert int(c.valid[t].sum()) == size
    for p in c.parameters():
        assert p.abs().max() <= 0.1 and p.abs().max() > 0.05     # U(-0.1, 0.1)


def test_sample_is_valid_and_scored_consistently():
    c = make_controller()
    samples = c.sample(8, generator=torch.Generator().manual_seed(3))
    for s in samples:
        assert len(s.decisions) == len(SIZES)
        assert all(0 <= d < n for d, n in zip(s.decisions, SIZES))
        SPACE.decode(s.decisions)                        # a valid genotype
        assert all(lp <= 0 for lp in s.log_probs)
    log_prob, entropy = c.score([s.decisions for s in samples])
    for i, s in enumerate(samples):
        assert log_prob[i].item() == pytest.approx(s.log_prob, abs=1e-4)
        assert entropy[i].item() == pytest.approx(s.entropy, rel=1e-5)
    # at initialisation every softmax is nearly uniform: entropy ~ sum log(size)
    assert samples[0].entropy == pytest.approx(sum(math.log(n) for n in SIZES), rel=0.01)


def test_sampled_decisions_are_fed_back():
    c = make_controller()
    a = [0] * len(SIZES)
    b = [1] + [0] * (len(SIZES) - 1)          # differs only in the first decision
    lp_a, ent_a = c.score([a], per_decision=True)
    lp_b, ent_b = c.score([b], per_decision=True)
    # the second softmax sees the first decision through its embedding, fed back as the next input
    assert (lp_a[0, 1] - lp_b[0, 1]).abs().item() > 1e-6
    assert (ent_a[0, 1] - ent_b[0, 1]).abs().item() > 1e-7
    assert ent_a[0, 0].item() == ent_b[0, 0].item()   # the first softmax sees no decision yet


def test_score_gradients_are_finite():
    c = make_controller()
    lp, ent = c.score([s.decisions for s in c.sample(4, generator=torch.Generator().manual_seed(1))])
    (lp.mean() + ent.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in c.parameters())


def test_sampling_matches_the_policy_distribution():
    # a biased head: position 0 (2 choices) should pick 1 with probability sigmoid(2) ~ 0.88
    c = make_controller()
    with torch.no_grad():
        c.head.weight.zero_()
        c.head.bias.zero_()
        c.head.bias[1] = 2.0
    counts = Counter(s.decisions[0] for s in c.sample(2000, generator=torch.Generator().manual_seed(0)))
    assert counts[1] / 2000 == pytest.approx(1 / (1 + math.exp(-2)), abs=0.03)


def test_random_search_is_uniform_and_reproducible():
    cfg = StrategyConfig(name="random")
    a, b = RandomSearch(SIZES, cfg, seed=5), RandomSearch(SIZES, cfg, seed=5)
    props = [a.ask() for _ in range(600)]
    assert [p.decisions for p in props[:10]] == [b.ask().decisions for _ in range(10)]
    assert props[0].log_prob == pytest.approx(-sum(math.log(n) for n in SIZES))
    counts = Counter(p.decisions[2] for p in props)       # op1 of block 0: 13 choices
    assert len(counts) == 13 and max(counts.values()) < 2.2 * 600 / 13


def test_baseline_is_an_ema_started_at_the_first_minibatch_mean():
    cfg = StrategyConfig(name="reinforce", batch_size=4, baseline_decay=0.95)
    s = Reinforce(SIZES, cfg, seed=0)
    rewards = [0.1, 0.2, 0.3, 0.4]
    update = None
    for r in rewards:
        update = s.tell(s.ask(), r)
    assert update is not None and update["version"] == 1 and update["num_results"] == 4
    b = sum(rewards) / 4
    assert update["baseline"] == pytest.approx(b)
    for r in rewards:
        b = 0.95 * b + 0.05 * r
    assert s.baseline == pytest.approx(b)


def test_ppo_ratio_uses_the_recorded_log_prob():
    """A result from an older policy: the clipped surrogate sees ratio = pi_new / pi_sampling."""
    cfg = StrategyConfig(name="ppo", batch_size=2, ppo_epochs=1, learning_rate=0.01, entropy_weight=0.0)
    s = PPO(SIZES, cfg, seed=0)
    p1, p2 = s.ask(), s.ask()
    lp1 = s.controller.score([p1.decisions])[0].item()
    # the recorded log-prob is far below the current one: ratio = e^5 >> 1 + clip, advantage > 0
    # -> the clipped term is constant and that sample gives no gradient; only p2 moves the policy
    stale = Proposal(p1.decisions, lp1 - 5.0, 0)
    before = {k: v.clone() for k, v in s.controller.state_dict().items()}
    s.tell(stale, 1.0)
    s.tell(p2, 0.0)     # baseline = 0.5: advantages +0.5 (stale, clipped) and -0.5 (p2)
    lp2_after = s.controller.score([p2.decisions])[0].item()
    assert lp2_after < p2.log_prob                      # p2 (negative advantage) was pushed down
    # the same update with only p2 gives the same weights: the clipped stale sample contributed nothing
    t = PPO(SIZES, cfg, seed=0)
    t.controller.load_state_dict(before)
    t.baseline = 0.5
    t._update([(p2.decisions, p2.log_prob, 0.0)], 0.5)
    t_lp = t.controller.score([p2.decisions])[0].item()
    # mean over 2 vs 1 sample halves the gradient; Adam normalises its scale, so the steps match
    assert t_lp == pytest.approx(lp2_after, abs=1e-4)


@pytest.mark.parametrize("name", ["ppo", "reinforce", "random"])
def test_state_dict_round_trip_continues_identically(name):
    cfg = StrategyConfig(name=name, batch_size=5, learning_rate=0.01)
    rng = random.Random(0)
    a = make_strategy(SIZES, cfg, seed=1)
    for _ in range(12):                                  # two updates and 2 results in the buffer
        a.tell(a.ask(), rng.random())
    state = a.state_dict()
    b = make_strategy(SIZES, cfg, seed=1)
    b.load_state_dict(state)
    for _ in range(8):
        pa, pb = a.ask(), b.ask()
        assert pa == pb
        r = rng.random()
        ua, ub = a.tell(pa, r), b.tell(pb, r)
        assert (ua is None) == (ub is None)
        if ua:
            assert ua["loss"] == ub["loss"] and ua["baseline"] == ub["baseline"]
    assert a.version == b.version == 4


def test_checkpoint_loads_with_weights_only(tmp_path):
    s = make_strategy(SIZES, StrategyConfig(name="ppo", batch_size=2), seed=0)
    for _ in range(3):
        s.tell(s.ask(), 0.5)
    torch.save(s.state_dict(), tmp_path / "c.pt")
    t = make_strategy(SIZES, StrategyConfig(name="ppo", batch_size=2), seed=0)
    t.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    assert t.ask() == s.ask()
