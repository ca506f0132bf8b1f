"""`python -m step_marker MARKER EPOCH ARGS...`: the `nasnet` command line ARGS, which touches the file
MARKER once training is half-way through epoch EPOCH (1-based).

Kill tests wait for that file instead of sleeping for a guessed fraction of an epoch, so a SIGKILL
lands in the middle of the epoch however fast or loaded the machine is. The training itself is
untouched: the hook only counts the training steps (one augmented batch, `Augment.train_batch`, per
step; evaluation does not augment).
"""

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    marker, epoch, args = Path(argv[0]), int(argv[1]), argv[2:]
    from nasnet.cli import main as nasnet_main
    from nasnet.data.augment import Augment
    from nasnet.train import loop

    state = {"epoch": -1, "step": 0, "half": 0}
    train_epoch, train_batch = loop.Trainer.train_epoch, Augment.train_batch

    def counted_epoch(self, e):
        state.update(epoch=e + 1, step=0, half=max(1, self.steps_per_epoch // 2))
        return train_epoch(self, e)

    def counted_step(self, *a, **kw):
        state["step"] += 1
        if state["epoch"] == epoch and state["step"] == state["half"]:
            marker.touch()
        return train_batch(self, *a, **kw)

    loop.Trainer.train_epoch, Augment.train_batch = counted_epoch, counted_step
    return nasnet_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
