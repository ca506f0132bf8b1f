"""Architecture search (paper §3, §4.4, Appendix A.2-A.3).

    from nasnet.search import SearchConfig, run_search
    summary = run_search(SearchConfig(children=100), "runs/search")

Modules: config (SearchConfig), controller (the LSTM policy), strategies (ppo / reinforce / random /
evolution behind ask/tell), store (Trial, Job, Status and the SQLite trial store), run_dir (the
files of a run), payloads (what children receive), objective (reward and accuracy-cost front), asha
(promotions), executors/ (serial, process, ray), children/ (train, analytic), loop (the work-queue
driver), compare (variants against each other at equal budgets), curves (best / top-k reward
curves). docs/search.md explains the rules. Importing this package does not import torch or ray.
"""

from .config import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig

__all__ = ["ChildConfig", "ExecutorConfig", "SearchConfig", "StrategyConfig", "run_search"]


def run_search(config, run_dir, progress=False, log=None):
    """Start or continue a search in `run_dir`; see `nasnet.search.loop.Search`."""
    from .loop import run_search as _run  # the driver imports torch (the controller); the package does not

    return _run(config, run_dir, progress=progress, log=log)
