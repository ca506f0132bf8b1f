"""Architecture search (paper §3, §4.4, Appendix A.2-A.3).

    from nasnet.search import SearchConfig, run_search
    summary = run_search(SearchConfig(children=100), "runs/search")

The driver (loop, session, workqueue, final_stage) runs a strategy (strategies, controller) against
children (children/, behind the contract in contract.py) on an executor (executors/), and keeps
every job in the trial store (records, schema, store). ARCHITECTURE.md maps the modules;
docs/search.md explains the rules. Importing this package does not import torch or ray.
"""

from .config import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig

__all__ = ["ChildConfig", "ExecutorConfig", "SearchConfig", "StrategyConfig", "run_search"]


def run_search(config, run_dir, progress=False, log=None):
    """Start or continue a search in `run_dir`; see `nasnet.search.loop.Search`."""
    from .loop import run_search as _run  # the driver imports torch (the controller); the package does not

    return _run(config, run_dir, progress=progress, log=log)
