"""Child functions: what a search evaluates for each architecture, a JSON payload in, a JSON result out.

train (the paper's child: train the network, reward = validation accuracy) and analytic (rewards
computed from the genotype alone, and a child with injected faults, for testing the machinery).
Named in payloads as "module:function", e.g. "nasnet.search.children.train:train_child".
"""
