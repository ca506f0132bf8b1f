"""Architecture search: controller, strategies, work queue, trial store, executors (paper §3, SPEC §1.6-1.7).

    from nasnet.search import SearchConfig, run_search
    summary = run_search(SearchConfig(children=100), "runs/search")

Modules: config (SearchConfig), controller (the LSTM policy), strategies (ppo / reinforce / random
behind ask/tell), store (the SQLite trial store), executors (serial, ray), loop (the work-queue
driver), analytic (rewards computed without training), curves (best / top-k reward curves).
Importing this package does not import torch or ray.
"""

from .config import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig

__all__ = ["ChildConfig", "ExecutorConfig", "SearchConfig", "StrategyConfig", "run_search"]


def run_search(config, run_dir, progress=False, log=None):
    """Start or continue a search in `run_dir`; see `nasnet.search.loop.Search`."""
    from .loop import run_search as _run

    return _run(config, run_dir, progress=progress, log=log)
