"""Child functions: what a search evaluates for each architecture, a JSON payload in, a JSON result out.

train (the paper's child: train the network, reward = validation accuracy), analytic (rewards
computed from the genotype alone, and a child with injected faults, for testing the machinery) and
nb201 (NAS-Bench-201's published results, looked up). Named in payloads as "module:function", e.g.
"nasnet.search.children.train:train_child".
"""


def check_child_settings(config) -> None:
    """A search's settings checked against its built-in child before anything starts (one line for what every
    child would fail on); other child functions are not checked."""
    from . import nb201, train

    train.check_child_settings(config)
    nb201.check_child_settings(config)
