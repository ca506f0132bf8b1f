"""Local search (White et al., 2020) and every strategy on NAS-Bench-201's space: its rules, and exact resume."""

from __future__ import annotations

import json
import os
import random

import pytest

from conftest import in_lockstep, trial_rows
from nasnet.arch.space import get_space
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.loop import trial_seed
from nasnet.search.strategies import LocalSearch, make_strategy

NB201 = get_space("nb201")


def local(sizes=(5,) * 6, seed=0):
    return make_strategy(list(sizes), StrategyConfig(name="local"), seed)


def differing(a, b):
    return sum(x != y for x, y in zip(a, b))


def test_first_improvement_climbs_restarts_at_a_local_optimum_and_never_repeats():
    """On reward = number of decisions equal to a target, with a decoy local optimum: every proposal after a
    start is a neighbour of where the climb stands, a move happens on the first better neighbour, a local
    optimum is confirmed by evaluating all its neighbours and left by a restart, and no cell is asked twice."""
    target, decoy = (4, 4, 4, 4, 4, 4), (0, 0, 0, 0, 0, 0)

    def reward(d):
        return 10.0 if d == decoy else float(sum(x == y for x, y in zip(d, target)))

    s = local(seed=1)
    s.current = None
    asked, climb = [], None
    for _ in range(400):
        p = s.ask()
        assert p.decisions not in asked
        if climb is not None and s.current is not None:
            assert differing(p.decisions, climb) == 1               # a neighbour of the current cell
        asked.append(p.decisions)
        before = s.current
        s.tell(p, reward(p.decisions))
        if before is not None and s.current is not None and s.current[0] != before[0]:
            # moved to the better neighbour just evaluated, and from there on through cells already known
            assert s.current[1] > reward(before[0]) and s.current[0] in asked and reward(p.decisions) > before[1]
        climb = s.current[0] if s.current else None
    assert target in asked                                         # the additive reward is climbed to its top
    # seeded at the decoy: its 24 neighbours are all worse, so after them the climb restarts elsewhere
    t = local(seed=2)
    t.tell(t.ask().__class__(decoy, None, 0), reward(decoy))
    assert t.current == (decoy, 10.0)
    proposals = []
    for _ in range(24):
        p = t.ask()
        proposals.append(p.decisions)
        t.tell(p, reward(p.decisions))
    assert sorted(proposals) == sorted(t.neighbours(decoy)) and t.current is None
    restart = t.ask().decisions
    assert differing(restart, decoy) > 1 or restart not in proposals


def test_several_workers_never_get_the_same_cell_and_state_round_trips():
    s = local(seed=3)
    first = s.ask()
    s.tell(first, 0.5)
    inflight = [s.ask() for _ in range(30)]                     # more than the 24 neighbours: some are samples
    assert len({p.decisions for p in inflight}) == 30
    rng = random.Random(0)
    for p in inflight[:10]:
        s.tell(p, rng.random())
    copy = local(seed=3)
    copy.load_state_dict(json.loads(json.dumps(s.state_dict())))
    for p in inflight[10:]:
        r = rng.random()
        s.tell(p, r)
        copy.tell(p, r)
    in_lockstep(s, copy, rng, 20)
    assert s.state_dict() == copy.state_dict()


def test_local_search_works_in_the_nasnet_space_too():
    space = get_space("nasnet-a")
    s = make_strategy(space.decision_sizes(), StrategyConfig(name="local"), 0, space.decision_roles())
    start = s.ask()
    space.decode(list(start.decisions))
    s.tell(start, 0.3)
    p = s.ask()
    assert differing(p.decisions, start.decisions) == 1
    space.decode(list(p.decisions))


def interrupting_nb201_child(payload):
    """The NAS-Bench-201 child, but Ctrl-C arrives while the trial named in the payload runs (once)."""
    from nasnet.search.children.nb201 import nb201_child

    if payload.get("interrupt_seed") == payload["seed"] and not os.path.exists(payload["marker"]):
        open(payload["marker"], "w").close()
        raise KeyboardInterrupt
    return nb201_child(payload)


STRATEGIES = {"random": {}, "local": {}, "evolution": {"population": 8, "sample_size": 3},
              "ppo": {"learning_rate": 0.02, "batch_size": 5}, "reinforce": {"learning_rate": 0.02, "batch_size": 5}}


@pytest.mark.parametrize("crash", [False, True], ids=["ctrl-c", "no-checkpoint"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_resumes_exactly_on_nb201(tmp_path, strategy, crash):
    """Stopped at trial 23 or the first later one that is not a repeat (Ctrl-C; or as after a SIGKILL, with no checkpoint at all: PPO and REINFORCE
    checkpoint at every update, the others only when they stop) and continued, a run proposes exactly
    the cells an uninterrupted run proposes."""
    def config(fn, **options):
        return SearchConfig(space="nb201", children=45, seed=5, strategy=StrategyConfig(strategy, **STRATEGIES[strategy]),
                            child=ChildConfig(fn=fn, data="cifar10", options=options),
                            executor=ExecutorConfig(name="serial"))

    run_search(config("nasnet.search.children.nb201:nb201_child"), tmp_path / "a")
    stop = next(t["id"] for t in trial_rows(tmp_path / "a") if t["id"] >= 23 and t["cached_from"] is None)
    cfg = config("test_local_search:interrupting_nb201_child", interrupt_seed=trial_seed(5, stop),
                 marker=str(tmp_path / "m"))
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b")
    assert len(trial_rows(tmp_path / "b")) == stop
    if crash and strategy not in ("ppo", "reinforce"):
        (tmp_path / "b" / "controller.pt").unlink()
    run_search(cfg, tmp_path / "b")
    a, b = trial_rows(tmp_path / "a"), trial_rows(tmp_path / "b")
    assert [t["genotype"] for t in a] == [t["genotype"] for t in b]
    assert [t["reward"] for t in a] == [t["reward"] for t in b]
    assert len(a) == 45 and all(NB201.parse(t["genotype"]) for t in a)


def test_the_local_search_class_is_registered():
    assert isinstance(local(), LocalSearch)
