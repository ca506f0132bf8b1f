"""ScheduledDropPath's keep probability as a pure function (paper §3 and A.5; SPEC §2).

The reference code scales the drop probability both by the cell's depth and by training progress:

    k_cell = 1 - (i + 1) / T * (1 - k0)          # cell i of T cells, deeper cells drop more
    k      = 1 - min(1, s / S) * (1 - k_cell)     # step s of S: from 1 at the start to k_cell

The training loop computes ``progress = s / S`` and passes it to the model's forward; the model
evaluates this function per cell. Nothing about the schedule is stored in the model.
"""

from __future__ import annotations

import torch


def drop_path_keep(cell_index: int, num_cells: int, progress: float | torch.Tensor, keep_prob: float):
    """Keep probability of cell `cell_index` (0-based) of `num_cells` at training `progress` = step / steps."""
    cell_keep = 1.0 - (cell_index + 1) / num_cells * (1.0 - keep_prob)
    if isinstance(progress, torch.Tensor):
        ratio = progress.clamp(max=1.0)
    else:
        ratio = min(1.0, float(progress))
    return 1.0 - ratio * (1.0 - cell_keep)
