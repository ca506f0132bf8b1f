"""`python -m step_marker MARKER EPOCH ARGS...`: the `nasnet` command line ARGS, which touches the file
MARKER once training is half-way through epoch EPOCH (1-based).

Kill tests wait for that file instead of sleeping for a guessed fraction of an epoch, so a SIGKILL
lands in the middle of the epoch however fast or loaded the machine is. The training itself is
untouched: the hook only counts the optimiser steps (one call of `add_l2_gradient` per step).
"""

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    marker, epoch, args = Path(argv[0]), int(argv[1]), argv[2:]
    from nasnet.cli import main as nasnet_main
    from nasnet.train import loop

    state = {"epoch": -1, "step": 0, "half": 0}
    train_epoch, add_l2_gradient = loop.Trainer.train_epoch, loop.add_l2_gradient

    def counted_epoch(self, e):
        state.update(epoch=e + 1, step=0, half=max(1, self.steps_per_epoch // 2))
        return train_epoch(self, e)

    def counted_step(*a, **kw):
        add_l2_gradient(*a, **kw)
        state["step"] += 1
        if state["epoch"] == epoch and state["step"] == state["half"]:
            marker.touch()

    loop.Trainer.train_epoch, loop.add_l2_gradient = counted_epoch, counted_step
    return nasnet_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
