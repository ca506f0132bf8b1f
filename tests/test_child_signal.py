"""bench/child_signal.py's signal and noise against a table computed by hand."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import child_signal  # noqa: E402


def test_signal_corrects_for_averaging_and_looks_at_the_top_half():
    # 4 architectures x 2 seeds: every architecture's two seeds differ by 0.2 (variance 0.02, noise 0.1414);
    # the means 0.1, 0.3, 0.5, 0.7 have variance 0.0667, of which 0.02 / 2 is noise left in a 2-seed mean:
    # signal sqrt(0.0567) = 0.2380, ratio 1.683 (the uncorrected 0.2582 / 0.1414 would say 1.83)
    table = [[0.0, 0.2], [0.2, 0.4], [0.6, 0.4], [0.6, 0.8]]
    st = child_signal.signal_stats(table, boot=50)
    assert st["noise_std"] == pytest.approx(math.sqrt(0.02))
    assert st["signal_std"] == pytest.approx(math.sqrt(0.2 / 3 - 0.01))
    assert st["ratio"] == pytest.approx(math.sqrt(0.2 / 3 - 0.01) / math.sqrt(0.02))
    assert st["across_std"] == pytest.approx(math.sqrt(0.2 / 3))
    # seed 0 scores 0.0, 0.2, 0.6, 0.6 and seed 1 0.2, 0.4, 0.4, 0.8: of the 6 pairs 4 are concordant, none
    # discordant, one tied in each seed only: tau-b = 4 / sqrt((6 - 1)(6 - 1)) = 0.8
    assert st["tau"] == pytest.approx(0.8)
    # the top half (means 0.5, 0.7): variance 0.02 less 0.02 / 2 of noise: signal 0.1, ratio 0.707
    top = st["top_half"]
    assert top["archs"] == 2 and top["arch_means"] == pytest.approx([0.5, 0.7])
    assert top["signal_std"] == pytest.approx(0.1) and top["ratio"] == pytest.approx(0.1 / math.sqrt(0.02))
    # noise larger than the spread of the means leaves no signal, not a negative variance
    assert child_signal.signal_stats([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], boot=10)["signal_std"] == 0.0
