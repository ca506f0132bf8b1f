"""Run by test_distributed.py under torchrun: the first optimizer step of the real training loop,
data parallel, with the averaged gradients (after L2 and clipping) saved by every rank.

    torchrun --standalone --nproc-per-node K tests/ddp_grad_worker.py DATA OUT_DIR
"""

import sys
from pathlib import Path

import torch

from ddp_grad_setup import capture_first_step, configs  # noqa: E402  (tests/ is on sys.path: the script's folder)
from nasnet.data import load_dataset
from nasnet.train import distributed
from nasnet.train.loop import Trainer


def main() -> None:
    spec, out = sys.argv[1], Path(sys.argv[2])
    ctx = distributed.init_from_env(timeout_s=120)
    try:
        dataset = load_dataset(spec)
        model_cfg, train_cfg = configs(dataset, batch_size=8)
        trainer = Trainer(model_cfg, train_cfg, dataset, rank=ctx.rank, world_size=ctx.world_size)
        grads = capture_first_step(trainer)
        torch.save(grads, out / f"grads_rank{ctx.rank}.pt")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
