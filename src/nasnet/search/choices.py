"""The names a search's settings choose among, each a `Registry` (nasnet.registry): the strategies
(with the StrategyConfig fields each reads), early stopping, what ASHA tells the strategy, the cost
measures, the failure reward's rule, the children (alias -> "module:function") and the controller's
optimizers. The config checks its names against these, the command line lists them, and adding a
strategy is one `register` here plus its class. Entries are "module:attribute" references, so
importing this module imports neither the strategies nor torch (docs/search.md has the rules).
"""

from __future__ import annotations

from ..registry import Registry

# What the learning strategies read of StrategyConfig; setting another field has no effect (rules.py).
_CONTROLLER = ("learning_rate", "entropy_weight", "baseline_decay", "batch_size", "hidden_size", "init_range",
               "optimizer", "max_grad_norm")

STRATEGIES = Registry("strategy", lazy=True)
STRATEGIES.register("ppo", "nasnet.search.strategies:PPO", help="PPO on the LSTM controller (paper §3)",
                    reads=_CONTROLLER + ("clip", "ppo_epochs"))
STRATEGIES.register("reinforce", "nasnet.search.strategies:Reinforce", help="REINFORCE on the LSTM controller",
                    reads=_CONTROLLER)
STRATEGIES.register("random", "nasnet.search.strategies:RandomSearch", help="uniform samples (paper §4.4)",
                    reads=("batch_size", "baseline_decay"))
STRATEGIES.register("evolution", "nasnet.search.strategies:Evolution", help="regularized evolution (Real et al.)",
                    reads=("population", "sample_size"))
STRATEGIES.register("local", "nasnet.search.strategies:LocalSearch",
                    help="first-improvement local search with random restarts (White et al. 2020)", reads=())

EARLY_STOPS = Registry("early stopping", ["none", "asha"])

# What the strategy is told under ASHA (nasnet.search.asha).
ASHA_TELLS = Registry("ASHA tell")
ASHA_TELLS.register("first", "first", help="each trial's first-rung result")
ASHA_TELLS.register("every", "every", help="every rung result re-centred within its rung")

# The cost measures of MnasNet's reward: keys of the child's result (nasnet.search.objective).
COSTS = Registry("cost", ["mult_adds", "params"])

# --failure-reward takes a finite number or one of these rules.
FAILURE_RULES = Registry("failure rule")
FAILURE_RULES.register("worst", "worst", help="the lowest reward of any finished child so far")

# The training child, the analytic one (no training) and NAS-Bench-201's (lookups; see
# nasnet.search.children), by alias.
DEFAULT_CHILD_FN = "nasnet.search.children.train:train_child"
ANALYTIC_CHILD_FN = "nasnet.search.children.analytic:analytic_child"
NB201_CHILD_FN = "nasnet.search.children.nb201:nb201_child"
CHILDREN = Registry("child")
CHILDREN.register("train", DEFAULT_CHILD_FN, help="the paper's child: train the network")
CHILDREN.register("analytic", ANALYTIC_CHILD_FN, help="rewards computed from the cells alone")
CHILDREN.register("nb201", NB201_CHILD_FN, help="NAS-Bench-201's published results, looked up (nb201:DATASET)")

# NAS-Bench-201: its space's name, the datasets its child looks up, and the child's reward (one training run's
# validation accuracy, or the mean over its seeds).
NB201_SPACE = "nb201"
NB201_DATASETS = ("cifar10", "cifar100", "imagenet16-120")
NB201_REWARDS = ("single", "mean")

# The controller's optimizer (StrategyConfig.optimizer).
CONTROLLER_OPTIMIZERS = Registry("optimizer", {"adam": "torch.optim:Adam", "sgd": "torch.optim:SGD"}, lazy=True)
