"""Optimizers of the paper's recipes and the reference's L2 (paper A.6, A.7; docs/training.md, "Recipes").

momentum: SGD with momentum (TF's MomentumOptimizer has torch.optim.SGD's update with dampening 0).
rmsprop: `RMSpropTF`, TensorFlow 1's RMSPropOptimizer, which the paper's "RMSProp with decay 0.9 and
epsilon 1.0" means. L2 follows the reference (slim's l2_regularizer on conv and fully-connected
weights): the loss gets wd/2 * |w|^2, so `finish_gradients` adds wd * w to the gradient before
clipping; BatchNorm parameters and biases are not decayed unless `decay_bn`.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp with TensorFlow 1 semantics, which differ from torch.optim.RMSprop's in ways that matter at
    epsilon 1.0: the mean square starts at 1, epsilon sits inside the square root, and the learning rate
    is applied inside the momentum buffer:

        ms  = decay * ms + (1 - decay) * g^2
        mom = momentum * mom + lr * g / sqrt(ms + eps)
        w  -= mom
    """

    def __init__(self, params, lr: float, decay: float = 0.9, momentum: float = 0.9, eps: float = 1.0):
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, squares, moms = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                squares.append(state["square_avg"])
                moms.append(state["momentum_buffer"])
            if not params:
                continue
            decay, eps, lr, m = group["decay"], group["eps"], group["lr"], group["momentum"]
            torch._foreach_mul_(squares, decay)
            torch._foreach_addcmul_(squares, grads, grads, value=1 - decay)
            denom = torch._foreach_add(squares, eps)
            torch._foreach_sqrt_(denom)
            torch._foreach_mul_(moms, m)
            torch._foreach_addcdiv_(moms, grads, denom, value=lr)
            torch._foreach_sub_(params, moms)
        return loss


def decayed_parameters(model: nn.Module, decay_bn: bool = False) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights that get L2, the rest): conv and linear weights, plus norm parameters and biases if decay_bn."""
    decay, rest = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_weight = isinstance(module, (nn.Conv2d, nn.Linear)) and name == "weight"
            (decay if is_weight or decay_bn else rest).append(p)
    return decay, rest


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "rmsprop":
        return RMSpropTF(params, lr=cfg.lr, decay=cfg.rmsprop_decay, momentum=cfg.momentum, eps=cfg.rmsprop_eps)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           foreach=True)


def add_l2_gradient(params: list[nn.Parameter], weight_decay: float) -> None:
    """grad += wd * w: the gradient of the L2 loss term wd/2 |w|^2 (before clipping, as in TF)."""
    if weight_decay <= 0:
        return
    with_grad = [p for p in params if p.grad is not None]
    if with_grad:
        torch._foreach_add_([p.grad for p in with_grad], [p.detach() for p in with_grad], alpha=weight_decay)


def finish_gradients(params: list[nn.Parameter], decay_params: list[nn.Parameter], weight_decay: float,
                     grad_clip: float) -> None:
    """What happens to the gradients between backward and the optimizer step, in TF's order: the L2
    gradient wd * w joins the decayed weights' gradients, then all of `params` are scaled together so
    that their global norm is at most `grad_clip` (0: no clipping)."""
    add_l2_gradient(decay_params, weight_decay)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
