"""Regularized evolution, transactional controller updates and the update diagnostics."""

import json
import math
import random
from collections import Counter

import pytest
import torch

from conftest import in_lockstep, trial_rows
from nasnet.arch.space import get_space
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.loop import SearchSummary, trial_seed
from nasnet.search.strategies import PPO, Evolution, Proposal, Reinforce, make_strategy

SPACE = get_space("nasnet-a")
SIZES, ROLES = SPACE.decision_sizes(), SPACE.decision_roles()
ANALYTIC = "nasnet.search.children.analytic:analytic_child"


def evolution(population=6, sample_size=3, seed=0):
    return make_strategy(SIZES, StrategyConfig(name="evolution", population=population, sample_size=sample_size),
                         seed, ROLES)


def differing(a, b):
    return [i for i, (x, y) in enumerate(zip(a, b)) if x != y]


def test_roles_name_every_decision():
    assert len(ROLES) == len(SIZES) == 50
    assert Counter(ROLES) == {"input": 20, "op": 20, "combiner": 10}
    assert ROLES[:5] == ["input", "input", "op", "op", "combiner"]


def test_evolution_starts_uniform_then_mutates_the_tournament_winner_once():
    s = evolution(population=6, sample_size=6)         # S = P: the tournament is the whole population
    first = [s.ask() for _ in range(6)]
    assert len({p.decisions for p in first}) == 6 and all(p.log_prob is None for p in first)
    rewards = [0.1, 0.5, 0.3, 0.5, 0.2, 0.4]               # a tie at 0.5: the younger (index 3) wins
    for p, r in zip(first, rewards):
        assert s.tell(p, r) is None                         # no controller, no updates
    for _ in range(20):
        child = s.ask()
        SPACE.decode(list(child.decisions))                 # a valid architecture
        changed = differing(child.decisions, first[3].decisions)
        assert len(changed) == 1, changed                   # exactly one decision changed
    # ask before any result is in: more workers than P keep sampling uniformly
    t = evolution(population=3, sample_size=2)
    props = [t.ask() for _ in range(8)]
    assert len({p.decisions for p in props}) == 8


def test_evolution_ages_out_the_oldest_not_the_worst():
    s = evolution(population=4, sample_size=2)
    told = []
    for i in range(7):
        p = s.ask()
        reward = 1.0 - 0.1 * i                              # the oldest are the best
        s.tell(p, reward)
        told.append((p.decisions, reward))
    assert s.population == told[-4:]


def test_mutations_split_between_hidden_states_and_ops():
    s = evolution()
    rng = random.Random(0)
    parent = tuple(SPACE.sample_decisions(1))
    kinds = Counter()
    for _ in range(2000):
        (i,) = differing(s.mutate(parent, rng), parent)
        kinds["input" if ROLES[i] == "input" else "op"] += 1
    assert abs(kinds["input"] - 1000) < 120, kinds          # each mutation type with probability 1/2
    with pytest.raises(ValueError, match="role"):
        Evolution(SIZES, StrategyConfig(name="evolution"), 0)


def test_evolution_state_dict_round_trip():
    a = evolution()
    rng = random.Random(1)
    for _ in range(9):
        a.tell(a.ask(), rng.random())
    b = evolution()
    b.load_state_dict(a.state_dict())
    in_lockstep(a, b, rng, 6)
    assert a.population == b.population


def interrupting_child(payload):
    """The analytic child, but Ctrl-C arrives while the trial named in the payload runs (once)."""
    import os

    from nasnet.search.children.analytic import analytic_child

    if payload.get("interrupt_seed") == payload["seed"] and not os.path.exists(payload["marker"]):
        open(payload["marker"], "w").close()
        raise KeyboardInterrupt
    return analytic_child(payload)


@pytest.mark.parametrize("crash", [False, True], ids=["ctrl-c", "no-checkpoint"])
def test_evolution_resume_equals_an_uninterrupted_run(tmp_path, crash):
    """Serial executor, analytic child: stopped mid-run (Ctrl-C; or as after a SIGKILL, with no
    checkpoint of the population at all) and continued, the run proposes exactly the same architectures."""
    strategy = StrategyConfig(name="evolution", population=8, sample_size=3)
    base = dict(children=40, strategy=strategy, executor=ExecutorConfig(name="serial"))
    run_search(SearchConfig(child=ChildConfig(fn=ANALYTIC, options={"noise": 0.05}), **base), tmp_path / "a")
    a = trial_rows(tmp_path / "a")
    stop = next(t["id"] for t in a if t["id"] >= 17 and t["cached_from"] is None)     # a trial that trains
    child = ChildConfig(fn="test_search_strategies:interrupting_child",
                        options={"noise": 0.05, "interrupt_seed": trial_seed(0, stop), "marker": str(tmp_path / "m")})
    cfg = SearchConfig(child=child, **base)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b")
    assert len(trial_rows(tmp_path / "b")) == stop
    if crash:
        (tmp_path / "b" / "controller.pt").unlink()
    run_search(cfg, tmp_path / "b")
    b = trial_rows(tmp_path / "b")
    assert [t["genotype"] for t in a] == [t["genotype"] for t in b]
    assert [t["reward"] for t in a] == [t["reward"] for t in b]
    # after the initial population, every proposal is one mutation away from an earlier architecture
    for t in a[8:]:
        assert any(len(differing(decisions_of(t), decisions_of(u))) == 1 for u in a[:t["id"] - 1])


def decisions_of(row):
    return json.loads(row["decisions"])


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_update_loses_nothing(tmp_path, monkeypatch, error):
    """Ctrl-C (or an error) after the first of PPO's 4 steps of the first update: nothing of that update
    is applied or checkpointed, and the continued run equals an uninterrupted one."""
    strategy = StrategyConfig(batch_size=10, learning_rate=0.01)
    cfg = SearchConfig(children=30, strategy=strategy, child=ChildConfig(fn=ANALYTIC),
                       executor=ExecutorConfig(name="serial"))
    run_search(cfg, tmp_path / "a")
    calls = []
    real_step = PPO._step

    def step(self, loss):
        calls.append(1)
        if len(calls) == 2:
            raise error("stopped inside the update")
        real_step(self, loss)

    monkeypatch.setattr(PPO, "_step", step)
    with pytest.raises(error):
        run_search(cfg, tmp_path / "b")
    monkeypatch.setattr(PPO, "_step", real_step)
    state = torch.load(tmp_path / "b" / "controller.pt", weights_only=True)
    fresh = PPO(SIZES, strategy, seed=0).controller.state_dict()
    assert state["version"] == 0 and state["told"] == 9 and len(state["buffer"]) == 9
    for k, v in fresh.items():
        assert torch.equal(state["controller"][k], v), k            # the one step taken was undone
    assert state["optimizer"]["state"] == {}                         # nor did Adam keep its moments
    assert trial_rows(tmp_path / "b", "SELECT * FROM updates") == []
    run_search(cfg, tmp_path / "b")
    sa = torch.load(tmp_path / "a" / "controller.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "controller.pt", weights_only=True)
    assert sa["version"] == sb["version"] == 3 and sa["told"] == sb["told"] == 30
    for k, v in sa["controller"].items():
        assert torch.equal(v, sb["controller"][k]), k
    ua, ub = (trial_rows(d, "SELECT version, num_results, told, mean_reward FROM updates") for d in
              (tmp_path / "a", tmp_path / "b"))
    assert ua == ub and [u["num_results"] for u in ub] == [10, 10, 10]


def test_update_diagnostics_kl_and_clipped_fraction():
    # one decision of 3 choices: the KL from the policy before the update to the one after, computed
    # from its two softmaxes directly
    cfg = StrategyConfig(name="ppo", batch_size=4, ppo_epochs=1, learning_rate=0.05)
    s = PPO([3], cfg, seed=0)

    def probs():
        return torch.stack([s.controller.score([[d]])[0][0] for d in range(3)]).exp()

    p = probs()
    props = [s.ask() for _ in range(4)]
    update = None
    for prop, r in zip(props, (1.0, 0.0, 0.0, 0.0)):
        update = s.tell(prop, r)
    q = probs()
    assert update["kl"] == pytest.approx(float((p * (p.log() - q.log())).sum().detach()), rel=1e-4)
    assert update["kl"] > 0
    assert update["clip_fraction"] == 0.0          # one PPO pass over fresh samples: every ratio is 1
    # a stale sample (recorded log-prob far below the current one) is outside the clip range
    t = PPO(SIZES, StrategyConfig(name="ppo", batch_size=2, ppo_epochs=1), seed=0)
    a, b = t.ask(), t.ask()
    t.tell(Proposal(a.decisions, a.log_prob - 5.0, 0), 1.0)
    assert t.tell(b, 0.0)["clip_fraction"] == 0.5
    r = Reinforce(SIZES, StrategyConfig(name="reinforce", batch_size=2), seed=0)
    r.tell(r.ask(), 1.0)
    u = r.tell(r.ask(), 0.0)
    assert u["clip_fraction"] is None and u["kl"] > 0 and u["entropy"] > 0


def test_the_summary_says_whether_the_controller_learned(tmp_path):
    uniform = sum(math.log(n) for n in SIZES)
    flat = SearchSummary(tmp_path, None, None, None, {}, 0.0, 2, strategy="ppo", policy_entropy=uniform - 0.07,
                         uniform_entropy=uniform)
    assert "effectively random search" in flat.controller_note()
    learned = SearchSummary(tmp_path, None, None, None, {}, 0.0, 10, strategy="ppo", policy_entropy=0.8 * uniform,
                            uniform_entropy=uniform)
    assert "it learned (20.0% less entropy" in learned.controller_note()
    # a real run: the paper's learning rate over 40 children leaves the policy uniform; 0.01 over 120 does not
    base = dict(child=ChildConfig(fn=ANALYTIC), executor=ExecutorConfig(name="serial"))
    slow = run_search(SearchConfig(children=40, **base), tmp_path / "slow")
    fast = run_search(SearchConfig(children=120, strategy=StrategyConfig(learning_rate=0.01), **base),
                      tmp_path / "fast")
    assert slow.uniform_entropy == pytest.approx(uniform)
    assert "effectively random search" in slow.controller_note()
    assert "it learned" in fast.controller_note(), fast.controller_note()
    updates = trial_rows(tmp_path / "fast", "SELECT * FROM updates")
    assert all(u["kl"] > 0 and 0 <= u["clip_fraction"] <= 1 for u in updates)



def test_an_update_stopped_before_its_row_is_stored_keeps_its_row(tmp_path, monkeypatch):
    """Ctrl-C after the update but before its row reaches the store: the checkpoint holds the update, and
    the continued run stores the row from it (the diagnostics of every update survive)."""
    from nasnet.search.store import TrialStore

    cfg = SearchConfig(children=20, strategy=StrategyConfig(batch_size=10, learning_rate=0.01),
                       child=ChildConfig(fn=ANALYTIC), executor=ExecutorConfig(name="serial"))
    run_search(cfg, tmp_path / "a")
    real = TrialStore.add_update

    def add_update(self, stats):
        monkeypatch.setattr(TrialStore, "add_update", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(TrialStore, "add_update", add_update)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b")
    assert trial_rows(tmp_path / "b", "SELECT * FROM updates") == []
    assert torch.load(tmp_path / "b" / "controller.pt", weights_only=True)["version"] == 1
    run_search(cfg, tmp_path / "b")
    cols = "SELECT version, num_results, told, mean_reward, baseline, entropy, loss, kl, clip_fraction FROM updates"
    assert trial_rows(tmp_path / "a", cols) == trial_rows(tmp_path / "b", cols)
