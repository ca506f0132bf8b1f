"""Loss-side maths against formulas written out here (NumPy or plain torch), not against the loop:
label smoothing, the auxiliary-loss weight, the L2 gradient, global-norm clipping, lr_scaling, and
one whole training step recomposed by hand (paper A.6, A.7).

Each test names the bug it catches (a mutation of the source that makes it fail)."""

import copy
import math

import numpy as np
import pytest
import torch

from nasnet.search.children.train import child_setup
from nasnet.train.config import TrainConfig
from nasnet.train.loop import Trainer, examples_for_epoch, training_loss
from nasnet.train.optim import add_l2_gradient, decayed_parameters, finish_gradients
from nasnet.train.schedule import lr_at


def np_cross_entropy(logits: np.ndarray, y: np.ndarray, eps: float) -> float:
    """Mean cross-entropy against the smoothed target (1 - eps) * onehot(y) + eps / C (float64)."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    target = np.full_like(logp, eps / logits.shape[1])
    target[np.arange(len(y)), y] += 1 - eps
    return float(-(target * logp).sum(1).mean())


@pytest.mark.parametrize("eps, aux_weight", [(0.0, 0.0), (0.1, 0.0), (0.1, 0.4), (0.0, 0.4)])
def test_training_loss_is_smoothed_cross_entropy_plus_weighted_aux(eps, aux_weight):
    """Catches: smoothing dropped or applied to the main head only, the aux weight ignored (main + aux),
    the aux loss added when its weight is 0, the main loss reported with the aux term in it."""
    rng = np.random.default_rng(0)
    logits, aux = rng.normal(0, 3, (6, 5)), rng.normal(0, 3, (6, 5))
    y = rng.integers(0, 5, 6)
    total, main = training_loss(torch.tensor(logits, dtype=torch.float32), torch.tensor(aux, dtype=torch.float32),
                                torch.tensor(y), eps, aux_weight)
    want_main = np_cross_entropy(logits, y, eps)
    assert float(main) == pytest.approx(want_main, rel=1e-5)
    assert float(total) == pytest.approx(want_main + aux_weight * np_cross_entropy(aux, y, eps), rel=1e-5)
    alone, _ = training_loss(torch.tensor(logits, dtype=torch.float32), None, torch.tensor(y), eps, aux_weight)
    assert float(alone) == pytest.approx(want_main, rel=1e-5)   # no aux head: no aux term


def _tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                               torch.nn.Linear(3, 2))


def _set_grads(model, seed):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def test_l2_gradient_is_the_gradient_of_half_wd_w_squared():
    """Catches: 2 * wd * w (the gradient of wd |w|^2), wd / 2 * w, or a sign flip."""
    model = _tiny_model()
    _set_grads(model, 1)
    decay, _ = decayed_parameters(model)
    before = [p.grad.double().numpy().copy() for p in decay]
    add_l2_gradient(decay, 0.03)
    for p, g in zip(decay, before):
        assert np.allclose(p.grad.double().numpy(), g + 0.03 * p.detach().double().numpy(), atol=1e-7)


@pytest.mark.parametrize("clip", [0.5, 1e6])
def test_finish_gradients_adds_l2_then_clips_the_global_norm(clip):
    """L2 joins the decayed weights' gradients first, then every gradient is scaled by one factor,
    clip / global norm, when that norm exceeds clip (computed in NumPy, float64).

    Catches: clipping before the L2 term (swapped order), clipping each parameter on its own, leaving
    the undecayed parameters out of the norm, L2 on BN parameters, clipping when the norm is below clip."""
    model = _tiny_model()
    _set_grads(model, 2)
    decay, _ = decayed_parameters(model)
    decayed = {id(p) for p in decay}
    params = list(model.parameters())
    want = []
    for p in params:
        g = p.grad.double().numpy().copy()
        if id(p) in decayed:
            g += 0.2 * p.detach().double().numpy()
        want.append(g)
    norm = math.sqrt(sum(float((g * g).sum()) for g in want))
    scale = min(1.0, clip / (norm + 1e-6))
    assert (scale < 0.5) == (clip == 0.5)          # the clipping case really clips
    finish_gradients(params, decay, 0.2, clip)
    for p, g in zip(params, want):
        assert np.allclose(p.grad.double().numpy(), g * scale, rtol=1e-5, atol=1e-7)


def test_linear_lr_scaling_multiplies_the_whole_schedule_by_the_process_count():
    """cosine from lr to lr_min, with warm-up: "linear" scales every value by K, "none" by nothing.

    Catches: the scale ignored, applied to lr but not lr_min, or applied with K = 1 under "none"."""
    cfg = TrainConfig(lr=0.1, lr_min=0.01, epochs=10, warmup_epochs=1, lr_scaling="linear")
    none = TrainConfig(lr=0.1, lr_min=0.01, epochs=10, warmup_epochs=1, lr_scaling="none")
    steps = 20                                  # per epoch: 200 in all, 20 of warm-up

    def hand(step):
        if step < 20:
            return 0.1 * (step + 1) / 20
        t = min(1.0, (step - 20) / 180)
        return 0.01 + 0.5 * (0.1 - 0.01) * (1 + math.cos(math.pi * t))

    for step in (0, 9, 19, 20, 110, 199, 250):
        assert lr_at(step, cfg, steps, world_size=4) == pytest.approx(4 * hand(step), rel=1e-12)
        assert lr_at(step, none, steps, world_size=4) == pytest.approx(hand(step), rel=1e-12)
        assert lr_at(step, cfg, steps) == pytest.approx(hand(step), rel=1e-12)
    assert lr_at(10_000, cfg, steps, world_size=4) == pytest.approx(4 * 0.01)     # lr_min is scaled too


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz", n_train=64, n_val=16, n_test=16)


def test_one_training_step_equals_its_hand_composition(digits):
    """One optimizer step of the Trainer (plain SGD, constant lr) equals the step composed here from
    the paper's definitions: smoothed cross-entropy of both heads, aux weighted by 0.4; gradient of
    that, plus wd * w on conv and linear weights; global norm clipped to 0.5; w -= lr * g.

    Catches the loop's wiring of the pieces above: the aux loss or the smoothing not passed, the L2
    gradient added after clipping, clipping skipped, the lr not the schedule's."""
    over = {"epochs": 1, "batch_size": 64, "lr": 0.3, "momentum": 0.0, "lr_schedule": "constant",
            "label_smoothing": 0.1, "aux_weight": 0.4, "grad_clip": 0.5, "weight_decay": 0.01, "augment": "none",
            "normalize": "unit", "threads": 1}
    threads = torch.get_num_threads()
    try:
        model_cfg, cfg, data = child_setup({"genotype": "nasnet-a", "data": digits, "device": "cpu", "train": over,
                                            "model": {"normal_cells": 1, "filters": 4, "stem_multiplier": 1.0}})
        trainer = Trainer(model_cfg, cfg, data)
        assert trainer.steps_per_epoch == 1 and trainer.model.aux_head is not None
        ref = copy.deepcopy(trainer.model)
        trainer.train_epoch(0)
    finally:
        torch.set_num_threads(threads)

    x_all, y_all = trainer.data["train"]
    idx = examples_for_epoch(len(y_all), cfg.seed, 0)
    x = x_all[idx].float() / 255 * 2 - 1                  # "unit": [0, 255] -> [-1, 1], no augmentation
    y = y_all[idx].numpy()
    ref.train()
    logits, aux = ref(x.contiguous(memory_format=torch.channels_last), drop_path_progress=0.0, return_aux=True)
    target = torch.full(logits.shape, 0.1 / logits.shape[1], dtype=torch.float64)
    target[np.arange(len(y)), y] += 0.9
    loss = sum(w * -(target * torch.log_softmax(out.double(), 1)).sum(1).mean()
               for w, out in ((1.0, logits), (0.4, aux)))
    loss.backward()
    decayed = {id(m.weight) for m in ref.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    grads = {}
    for name, p in ref.named_parameters():
        g = p.grad.double() if p.grad is not None else torch.zeros_like(p, dtype=torch.float64)
        grads[name] = g + (0.01 * p.detach().double() if id(p) in decayed else 0)
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
    assert norm > 0.5                                     # the clip is active in this step
    scale = 0.5 / (norm + 1e-6)
    after = dict(trainer.model.named_parameters())
    for name, p in ref.named_parameters():
        want = p.detach().double() - 0.3 * scale * grads[name]
        assert torch.allclose(after[name].detach().double(), want, rtol=1e-4, atol=2e-6), name


def test_the_loop_applies_linear_lr_scaling(digits, tmp_path):
    """Rank 0 of 2 data-parallel processes (a one-process gloo group stands in for the collectives;
    DDP itself is not needed for the learning rate): with "linear" the optimizer steps with 2 x lr,
    with "none" with lr. Catches the loop calling the schedule without its process count."""
    import torch.distributed as dist

    threads = torch.get_num_threads()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for scaling, factor in (("linear", 2), ("none", 1)):
            over = {"epochs": 1, "batch_size": 32, "lr": 0.3, "lr_schedule": "constant", "lr_scaling": scaling,
                    "threads": 1}
            model_cfg, cfg, data = child_setup({"genotype": "nasnet-a", "data": digits, "device": "cpu", "train": over,
                                                "model": {"normal_cells": 1, "filters": 4, "stem_multiplier": 1.0}})
            trainer = Trainer(model_cfg, cfg, data, rank=0, world_size=2, ddp=False)
            stats = trainer.train_epoch(0)
            assert trainer.steps_per_epoch == 1
            assert stats["lr"] == pytest.approx(factor * 0.3)
            assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(factor * 0.3)
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
