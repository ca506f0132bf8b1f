"""The run both sides of the data-parallel gradient test train (see ddp_grad_worker.py)."""

from nasnet.arch.space import SearchSpace
from nasnet.model.network import ModelConfig
from nasnet.train.config import model_config_for, preset

# a sampled genotype whose reduction cell reads only one of its inputs: the other input's preprocessing
# gets no gradient, in one process as under DDP
GENOTYPE_SEED = 17


class _Stop(Exception):
    pass


def configs(dataset, batch_size):
    """BatchNorm frozen (statistics of the whole batch would differ from each half's), no random
    augmentation; the auxiliary loss, L2 and gradient clipping stay on, as in the cifar recipe."""
    train_cfg = preset("cifar", epochs=2, batch_size=batch_size, augment="none", cutout=0, freeze_bn=True,
                       dropout=0.0, device="cpu", seed=5)
    base = ModelConfig(genotype=SearchSpace().sample(seed=GENOTYPE_SEED), skeleton="cifar", normal_cells=1,
                       filters=8, stem_multiplier=1.0)
    return model_config_for(base, train_cfg, dataset), train_cfg


def capture_first_step(trainer):
    """Run the trainer until its first optimizer step; return {name: gradient or None} at that moment."""
    grads = {}

    def step(*_args, **_kwargs):
        for name, p in trainer.model.named_parameters():
            grads[name] = None if p.grad is None else p.grad.detach().clone()
        raise _Stop

    trainer.optimizer.step = step
    try:
        trainer.fit()
    except _Stop:
        pass
    assert grads, "the trainer never reached an optimizer step"
    return grads
