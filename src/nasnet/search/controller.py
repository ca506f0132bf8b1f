"""The controller: a one-layer LSTM that emits an architecture one decision at a time (paper §3, A.2).

The controller knows only the decision vocabularies of a search space (`SearchSpace.decision_sizes`),
never models. It emits 2 x 5B decisions (the Normal Cell's 5B first, then the Reduction Cell's), each
from its own softmax sized by that decision's vocabulary (the input-choice softmax of block b has
K + b entries), and feeds each sampled decision back, embedded, as the next LSTM input (paper §3, A.2).
The first input is a learned start embedding. Every weight is initialised U(-0.1, 0.1).

Per-position softmax heads and embeddings are stored as one wide matrix each: position t owns the
slice ``offsets[t] : offsets[t] + sizes[t]`` of the flattened vocabulary, and a mask keeps every other
entry out of its softmax. That keeps sampling a plain LSTM step and scoring one batched LSTM call.

`sample` returns the decisions, each decision's log-probability and the policy entropy; `score`
returns the same quantities for given decisions under the current weights (PPO's new/old ratio).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn


@contextlib.contextmanager
def single_thread():
    """Run the controller's small ops on one thread.

    Its tensors are tiny (a 100-unit LSTM, batches of 20): extra intra-op threads only add
    synchronisation, and on a loaded machine they make sampling and updates many times slower.
    """
    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


@dataclass
class Sample:
    """One sampled architecture: its decisions, per-decision log-probs, and the summed entropy."""

    decisions: list[int]
    log_probs: list[float]
    entropy: float

    @property
    def log_prob(self) -> float:
        return float(sum(self.log_probs))


class Controller(nn.Module):
    """One-layer LSTM policy over a fixed sequence of categorical decisions."""

    def __init__(self, sizes: Sequence[int], hidden_size: int = 100, init_range: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        sizes = [int(s) for s in sizes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"controller: every decision needs a vocabulary of at least 1, got {sizes}")
        self.sizes = sizes
        self.hidden_size = int(hidden_size)
        offsets = [0]
        for s in sizes[:-1]:
            offsets.append(offsets[-1] + s)
        total = offsets[-1] + sizes[-1]
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        mask = torch.zeros(len(sizes), total, dtype=torch.bool)
        for t, (o, s) in enumerate(zip(offsets, sizes)):
            mask[t, o:o + s] = True
        self.register_buffer("valid", mask, persistent=False)
        self.start = nn.Parameter(torch.empty(1, self.hidden_size))
        self.embed = nn.Embedding(total, self.hidden_size)    # row offsets[t] + d embeds decision d at t
        self.lstm = nn.LSTM(self.hidden_size, self.hidden_size, num_layers=1)
        self.head = nn.Linear(self.hidden_size, total)         # rows offsets[t] .. + sizes[t]: softmax t
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=generator)

    @property
    def num_decisions(self) -> int:
        return len(self.sizes)

    @staticmethod
    def _entropy(logp: torch.Tensor) -> torch.Tensor:
        p = logp.exp()
        return -(p * torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))).sum(-1)

    @torch.no_grad()
    def sample(self, n: int = 1, generator: torch.Generator | None = None) -> list[Sample]:
        """Sample n architectures independently (batched); decisions fed back as the next input.

        One LSTM step per decision, written out with the nn.LSTM weights (gate order i, f, g, o) so
        each step touches only its own softmax slice: sampling is latency-bound, not FLOP-bound.
        """
        w_ih, w_hh = self.lstm.weight_ih_l0, self.lstm.weight_hh_l0
        bias = self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0
        hs = self.hidden_size
        x = self.start.expand(n, -1)
        h = torch.zeros(n, hs)
        c = torch.zeros(n, hs)
        decisions = torch.empty(n, self.num_decisions, dtype=torch.long)
        logps = torch.empty(n, self.num_decisions)
        entropy = torch.zeros(n)
        offsets = self.offsets.tolist()
        for t, (o, size) in enumerate(zip(offsets, self.sizes)):
            gates = torch.addmm(bias, x, w_ih.t()).addmm_(h, w_hh.t())
            i, f, g, og = gates.chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(og) * torch.tanh(c)
            logp = torch.log_softmax(torch.addmm(self.head.bias[o:o + size], h, self.head.weight[o:o + size].t()), -1)
            d = torch.multinomial(logp.exp(), 1, generator=generator)            # (n, 1)
            decisions[:, t] = d[:, 0]
            logps[:, t] = logp.gather(1, d)[:, 0]
            entropy -= (logp.exp() * logp).sum(-1)
            x = self.embed.weight[d[:, 0] + o]
        dec, lp = decisions.tolist(), logps.tolist()
        return [Sample(dec[k], lp[k], float(entropy[k])) for k in range(n)]

    def distributions(self, decisions: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log_p, flat): every softmax met along the given decisions, as masked log-probabilities over
        the flattened vocabulary (T, batch, total; -inf outside each position's slice), and the
        decisions' flat indices (batch, T). Teacher-forced: position t sees the given decisions before it."""
        d = torch.as_tensor([list(map(int, s)) for s in decisions], dtype=torch.long)  # (n, T)
        if d.ndim != 2 or d.shape[1] != self.num_decisions:
            raise ValueError(f"controller: expected sequences of {self.num_decisions} decisions, got shape "
                             f"{tuple(d.shape)}")
        if (d < 0).any() or (d >= torch.tensor(self.sizes)).any():
            raise ValueError("controller: a decision index is outside its vocabulary")
        n = d.shape[0]
        flat = d + self.offsets                                            # (n, T)
        inputs = torch.cat([self.start.expand(n, -1).unsqueeze(0), self.embed(flat[:, :-1]).transpose(0, 1)])
        out, _ = self.lstm(inputs)                                          # (T, n, H)
        logits = self.head(out)                                             # (T, n, total)
        valid = self.valid[:, None, :]
        return torch.log_softmax(logits.masked_fill(~valid, float("-inf")), dim=-1), flat

    def score(self, decisions: Sequence[Sequence[int]], per_decision: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of each decision sequence and the policy entropy along it (differentiable).

        Returns (log_prob, entropy), each of shape (batch,): log_prob sums the per-decision
        log-probabilities, entropy sums the entropies of the 2 x 5B softmaxes met on the way. With
        `per_decision`, both are (batch, decisions) instead.
        """
        logp, flat = self.distributions(decisions)
        chosen = logp.gather(2, flat.t().unsqueeze(-1))[..., 0]             # (T, n)
        if per_decision:
            return chosen.t(), self._entropy(logp).t()
        return chosen.sum(0), self._entropy(logp).sum(0)


def kl_divergence(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of `Controller.distributions` outputs, summed over the decisions: one value per sequence.

    Both must come from the same decisions (the same prefixes); entries outside a softmax (-inf in
    both) contribute nothing."""
    p = logp.exp()
    diff = torch.where(torch.isfinite(logp), logp - logq, torch.zeros_like(logp))
    return (p * diff).sum(-1).sum(0)
