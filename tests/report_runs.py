"""Real run directories for the report tests, made by the search itself with cheap analytic children."""

from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search

ANALYTIC = "nasnet.search.children.analytic:analytic_child"
FAULTY = "nasnet.search.children.analytic:faulty_child"
FAULTS = {"fault_raise": 0.15, "fault_nan": 0.15, "fault_oom": 0.1}


def faulty_run(run_dir, children=40, **options):
    """A PPO run whose children raise, run out of memory (retried once) and diverge (NaN loss)."""
    cfg = SearchConfig(children=children, child=ChildConfig(fn=FAULTY, options={**FAULTS, **options}),
                       executor=ExecutorConfig(name="serial", max_retries=1),
                       strategy=StrategyConfig(batch_size=10, learning_rate=0.005))
    run_search(cfg, run_dir)
    return run_dir


def compare_runs(root, children=40, labels=("ppo-seed0", "random-seed0")):
    """The layout of `nasnet compare --run-dir ROOT`: ROOT/ppo-seed0 and ROOT/random-seed0 (or the labels given)."""
    dirs = []
    for name, label in zip(("ppo", "random"), labels):
        cfg = SearchConfig(children=children, child=ChildConfig(fn=ANALYTIC), executor=ExecutorConfig(name="serial"),
                           strategy=StrategyConfig(name=name, batch_size=10, learning_rate=0.005))
        run_search(cfg, root / label)
        dirs.append(root / label)
    return dirs
