"""The GPU suite's correctness checks (bench/gpu_suite.py): every CUDA code path of the project,
run on a device and compared with the CPU.

Each check returns a dict with at least ``name``, ``passed`` and, where it compares numbers, the
``error`` it measured, the ``tolerance`` it allows and what the error means (``metric``). On a CPU
(the suite's smoke mode) the "device" side is the CPU in the device's layout (channels_last), so
every comparison still runs and still compares two different kernels.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import sys
from pathlib import Path

import common
import numpy as np
import torch
import torch.nn.functional as F

from nasnet.arch.genotype import NASNET_A, OPS
from nasnet.data.augment import Augment
from nasnet.model.cells import CellModule, StateInfo
from nasnet.model.layers import PADDINGS, LayerStyle
from nasnet.model.network import NASNet
from nasnet.model.ops import make_op
from nasnet.zoo import model_config

# Tolerances; fp32 on both sides, TF32 off on the GPU. "rel" = max |device - cpu| over a tensor
# divided by max |cpu| of that tensor, the worst over every output and every gradient (inputs' and
# parameters'). Whole networks are judged on their outputs per tensor and on their gradients as one
# vector (L2): at random initialisation the backward pass of 20 and more BatchNorm layers in training
# mode amplifies rounding - on a CPU the gradients of nasnet_a_cifar (batch 8) in fp32 differ from
# fp64's by 1.1% and fp32 channels_last from fp32 NCHW by 2.4% (L2), single tensors by up to 19%,
# while the logits agree to 2e-5 and 7e-5. The bf16 step is judged the same way: its losses, and
# the direction of its first update (the child's in channels_last fp32 vs NCHW fp32 differ by 2.9%
# in L2; bf16 vs fp32: cosine 0.93 for the paper's child, 0.99 for a tiny one, losses within 6e-4).
TOL = {
    "op": 1e-4,             # rel, forward + backward
    "cell": 1e-4,           # rel, forward + backward
    "model_output": 1e-3,   # rel, logits and auxiliary logits
    "model_grad": 0.1,      # ||g_device - g_cpu|| / ||g_cpu||, every gradient as one vector
    "bf16_loss": 1e-2,      # |loss_bf16 - loss_fp32| / loss_fp32 at every step of a few
    "bf16_cosine": 0.8,     # cosine similarity of the first updates (bf16 vs fp32), at least
    "aug_rounding": 2**-24,  # crops, flips, cutout in [0, 1]: the same bytes after x * 255 is rounded, and
                             # the floats within one rounding step (CUDA divides by 255 as a multiply by
                             # 1/255, the CPU divides: 126 of the 256 byte values differ by 2^-24)
    "aug_whiten": 1e-5,    # abs, after per-image whitening (mean / std reduced in another order)
    "aug_inception": 1e-4,  # abs, bilinear resampling of the same boxes
    "sync_bn_fp32": 1e-4,  # rel, SyncBatchNorm's kernels vs batch_norm, fp32
    "sync_bn_bf16": 3e-2,  # rel, bf16 channels_last input vs fp32 batch_norm
}
METRIC_REL = "max |device - cpu| / max |cpu| per tensor, worst over outputs and gradients"


@contextlib.contextmanager
def strict_fp32():
    """fp32 convolutions and matrix products without TF32 on CUDA (PyTorch's default allows TF32 in cuDNN
    convolutions), so that fp32 on the GPU can be compared with fp32 on the CPU."""
    b = torch.backends
    if hasattr(b, "fp32_precision") and hasattr(b.cudnn, "conv") and hasattr(b.cudnn, "rnn"):
        knobs = (b.cudnn.conv, b.cudnn.rnn, b.cuda.matmul)
        saved = [k.fp32_precision for k in knobs]
        try:
            for k in knobs:
                k.fp32_precision = "ieee"
            yield
        finally:
            for k, v in zip(knobs, saved):
                k.fp32_precision = v
    else:
        saved = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
        try:
            b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = False
            yield
        finally:
            b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = saved


def precision_flags() -> dict:
    """PyTorch's fp32 precision settings as they stand (what an "fp32" speed row on CUDA means)."""
    b = torch.backends
    if hasattr(b, "fp32_precision") and hasattr(b.cudnn, "conv"):
        return {"cudnn_conv_fp32": b.cudnn.conv.fp32_precision, "matmul_fp32": b.cuda.matmul.fp32_precision}
    return {"cudnn_allow_tf32": b.cudnn.allow_tf32, "matmul_allow_tf32": b.cuda.matmul.allow_tf32}


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 for empty tensors; inf when a is not finite)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if b.numel() == 0:
        return 0.0
    if not torch.isfinite(a).all():
        return math.inf
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x.contiguous()


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _tensors(o)] if isinstance(out, (list, tuple)) else []


def parity(name: str, build, inputs, call, device: torch.device, tolerance: float,
           grad_tolerance: float | None = None) -> dict:
    """fp32 forward and backward of `build()` on the CPU (NCHW) and on `device` (channels_last),
    same weights and inputs, train mode; the loss is a fixed random projection of the outputs (a
    plain sum would give BatchNorm'd outputs zero input gradients). Passes when every tensor's rel
    error is within `tolerance`, or, with `grad_tolerance`, when the outputs are within `tolerance`
    and all gradients as one vector within `grad_tolerance` (L2)."""
    torch.manual_seed(0)
    ref = build().train()
    dev = copy.deepcopy(ref).to(device).to(memory_format=torch.channels_last).train()
    xs = inputs()
    ref_in = [x.clone().requires_grad_() for x in xs]
    dev_in = [_layout(x.detach().to(device), True).requires_grad_() for x in xs]
    with strict_fp32():
        out_ref, out_dev = _tensors(call(ref, ref_in)), _tensors(call(dev, dev_in))
        g = torch.Generator().manual_seed(1)
        weights = [torch.randn(o.shape, generator=g) for o in out_ref]
        sum((o * w).sum() for o, w in zip(out_ref, weights)).backward()
        sum((o * w.to(device)).sum() for o, w in zip(out_dev, weights)).backward()
    outputs = {f"output {i}": rel_error(a, b) for i, (a, b) in enumerate(zip(out_dev, out_ref))}
    grads = {f"d input {i}": (a.grad, b.grad) for i, (a, b) in enumerate(zip(dev_in, ref_in))}
    mismatched = []
    for (pname, p_ref), p_dev in zip(ref.named_parameters(), dev.parameters()):
        if (p_ref.grad is None) != (p_dev.grad is None):
            mismatched.append(pname)
        elif p_ref.grad is not None:
            grads[f"d {pname}"] = (p_dev.grad, p_ref.grad)
    errors = {**outputs, **{k: rel_error(a, b) for k, (a, b) in grads.items()}}
    worst = max(errors, key=errors.get)
    flat_dev = torch.cat([a.detach().double().cpu().flatten() for a, _ in grads.values()])
    flat_ref = torch.cat([b.detach().double().flatten() for _, b in grads.values()])
    grad_l2 = float((flat_dev - flat_ref).norm() / flat_ref.norm().clamp_min(1e-30))
    row = {"name": name, "tensors": len(errors), "worst": worst, "worst_error": errors[worst]}
    if grad_tolerance is None:
        row.update(passed=errors[worst] <= tolerance, error=errors[worst], tolerance=tolerance, metric=METRIC_REL)
    else:
        out_err = max(outputs.values())
        row.update(passed=out_err <= tolerance and grad_l2 <= grad_tolerance, error=grad_l2,
                   tolerance=grad_tolerance, output_error=out_err, output_tolerance=tolerance,
                   summary=f"gradients (L2) shown; outputs {out_err:.2g} (<= {tolerance:g})",
                   metric="outputs: max |device - cpu| / max |cpu| per tensor; gradients: ||device - cpu|| / ||cpu|| "
                          "over all of them as one vector")
    if mismatched or not math.isfinite(grad_l2):
        row.update(passed=False, gradient_mismatch=mismatched)
    return row


# -- ops, cells, networks -------------------------------------------------------------------------

def check_ops(device: torch.device, channels: int, size: int, batch: int) -> dict:
    """Every op of the search space at stride 1 and 2, with every padding convention (symmetric, TF
    'same', Keras's)."""
    rows = []
    for style_name, style in ((p, LayerStyle(padding=p)) for p in PADDINGS):
        for name in OPS:
            for stride in (1, 2):
                c_in = channels if stride == 1 else channels // 2   # strided: projections too

                def build(name=name, stride=stride, c_in=c_in, style=style):
                    return make_op(name, c_in, channels, stride, style)

                def inputs(c_in=c_in):
                    return [torch.randn(batch, c_in, size, size, generator=torch.Generator().manual_seed(2))]

                def call(op, xs):
                    return op(torch.relu(xs[0]) if op.relu_input else xs[0])

                rows.append(parity(f"{name}/s{stride}/{style_name}", build, inputs, call, device, TOL["op"]))
    worst = max(rows, key=lambda r: r["error"])
    return {"name": f"every op: {len(OPS)} x stride 1, 2 x padding {', '.join(PADDINGS)}",
            "passed": all(r["passed"] for r in rows), "error": worst["error"],
            "tolerance": TOL["op"], "worst": f"{worst['name']}: {worst['worst']}", "metric": METRIC_REL,
            "checked": len(rows), "per_op": {r["name"]: r["error"] for r in rows},
            "shape": [batch, channels, size, size]}


def check_cells(device: torch.device, filters: int, size: int, batch: int) -> list[dict]:
    """NASNet-A's normal cell (after a reduction: input 1 at twice the resolution, factorized
    reduce) and reduction cell, with inputs of other widths (1x1 preprocessing)."""
    out = []
    for kind, spec, reduction in (("normal", NASNET_A.normal, False), ("reduce", NASNET_A.reduce, True)):
        infos = [StateInfo(4 * filters, 1), StateInfo(2 * filters, 0)]

        def build(spec=spec, reduction=reduction, infos=infos):
            return CellModule(spec, infos, filters, reduction=reduction, style=LayerStyle())

        def inputs():
            g = torch.Generator().manual_seed(3)
            return [torch.randn(batch, 4 * filters, size, size, generator=g),
                    torch.randn(batch, 2 * filters, 2 * size, 2 * size, generator=g)]

        def call(cell, xs):
            return cell(list(xs), None)

        row = parity(f"NASNet-A {kind} cell", build, inputs, call, device, TOL["cell"])
        row["shape"] = {"filters": filters, "size": size, "batch": batch}
        out.append(row)
    return out


def check_models(device: torch.device, models: dict) -> list[dict]:
    """Whole networks: `models` maps a zoo name to (ModelConfig overrides, batch)."""
    out = []
    for name, (overrides, batch) in models.items():
        cfg = model_config(name, dropout=0.0, drop_path_keep=1.0, aux_head=True, **overrides)

        def inputs(cfg=cfg, batch=batch):
            g = torch.Generator().manual_seed(4)
            return [torch.randn(batch, cfg.in_chans, cfg.image_size, cfg.image_size, generator=g)]

        def call(model, xs):
            return model(xs[0], drop_path_progress=None, return_aux=True)

        row = parity(name, lambda cfg=cfg: NASNet(cfg), inputs, call, device, TOL["model_output"],
                     TOL["model_grad"])
        row.update(config=f"{cfg.skeleton} N={cfg.normal_cells} F0={cfg.filters} @ {cfg.image_size}px",
                   batch=batch, aux_head=True)
        out.append(row)
    return out


# -- a training step in bf16 + channels_last against fp32 ------------------------------------------

def check_bf16_step(device: torch.device, normal_cells: int, filters: int, batch: int, steps: int) -> dict:
    """A few steps of the training loop (Trainer) in bf16 autocast + channels_last and in fp32 NCHW
    from the same weights on the same batch: finite, the same losses, updates in the same direction."""
    trainers = {}
    for name, settings in (("fp32", dict(precision="fp32", channels_last=False)),
                           ("bf16", dict(precision="bf16", channels_last=True))):
        trainers[name] = common.child_trainer(str(device), batch, 1, normal_cells=normal_cells, filters=filters,
                                              epochs=steps, **settings)
    before = {k: v.detach().clone() for k, v in trainers["fp32"].model.named_parameters()}
    assert all(torch.equal(before[k], v) for k, v in trainers["bf16"].model.named_parameters()), "different init"
    losses: dict[str, list[float]] = {name: [] for name in trainers}
    with strict_fp32():
        for step in range(steps):
            for name, t in trainers.items():
                losses[name].append(t.train_epoch(step)["train_loss"])
            if step == 0:
                first = {name: torch.cat([(p.detach().float() - before[k]).flatten()
                                          for k, p in t.model.named_parameters()]) for name, t in trainers.items()}
    finite = all(math.isfinite(v) for v in losses["bf16"]) and all(
        bool(torch.isfinite(p).all()) for p in trainers["bf16"].model.parameters())
    loss_err = max(abs(b - a) / abs(a) for a, b in zip(losses["fp32"], losses["bf16"]))
    cosine = float(F.cosine_similarity(first["bf16"], first["fp32"], dim=0))
    return {"name": "bf16 + channels_last training steps vs fp32", "passed": finite and loss_err <= TOL["bf16_loss"]
            and cosine >= TOL["bf16_cosine"], "finite": finite, "losses": losses, "loss_rel_error": loss_err,
            "error": loss_err, "tolerance": TOL["bf16_loss"], "first_update_cosine": cosine,
            "cosine_at_least": TOL["bf16_cosine"],
            "first_update_l2_rel": float((first["bf16"] - first["fp32"]).norm() / first["fp32"].norm()),
            "summary": f"losses shown; first update's cosine {cosine:.3f} (>= {TOL['bf16_cosine']:g})",
            "metric": "max over steps of |loss_bf16 - loss_fp32| / loss_fp32; cosine of the first updates",
            "child": {"normal_cells": normal_cells, "filters": filters, "batch": batch, "steps": steps}}


# -- augmentation on the device vs the CPU --------------------------------------------------------

def check_augmentation(device: torch.device, n: int, size: int = 32) -> dict:
    """Augment.train_batch on a batch held on `device` and on the CPU, from generators with the same
    seed: the same crops, flips and cutouts (the same bytes once the [0, 1] values are scaled back
    by 255 and rounded, the floats within one rounding step), and the same whitened / resampled
    values within rounding. Also records whether CUDA's generator gives another stream than the
    CPU's for the same seed (why the random parameters are drawn on the CPU)."""
    x = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (n, 3, size, size), dtype=np.uint8))
    xd = x.to(device)
    cases = [("crop + flip + cutout, no normalisation", Augment("crop_flip", "none", size, size // 8, size // 2),
              TOL["aug_rounding"]),
             ("crop + flip + cutout, whitened", Augment("crop_flip", "whiten", size, size // 8, size // 2),
              TOL["aug_whiten"]),
             ("inception crop + flip", Augment("inception", "unit", size * 3 // 4), TOL["aug_inception"])]
    rows = []
    for i, (name, aug, tol) in enumerate(cases):
        a = aug.train_batch(x, torch.Generator().manual_seed(7))
        b = aug.train_batch(xd, torch.Generator().manual_seed(7)).cpu()
        err = float((a - b).abs().max())
        row = {"name": name, "error": err, "tolerance": tol, "passed": err <= tol, "metric": "max |device - cpu|"}
        if i == 0:
            as_bytes = [(t * 255).round().to(torch.uint8) for t in (a, b)]
            row.update(bytes_equal=torch.equal(*as_bytes), values_differing=int((a != b).sum()),
                       passed=err <= tol and torch.equal(*as_bytes),
                       metric="bytes of round(255 x) equal, and max |device - cpu| within one float32 rounding step")
        rows.append(row)
    cuda_stream = None
    if device.type == "cuda":
        cpu_draw = torch.randint(0, 9, (64,), generator=torch.Generator().manual_seed(7))
        cuda_draw = torch.randint(0, 9, (64,), generator=torch.Generator(device=device).manual_seed(7), device=device)
        cuda_stream = "differs from the CPU's" if not torch.equal(cpu_draw, cuda_draw.cpu()) else "equals the CPU's"
    return {"name": "augmentation on the device vs the CPU, same seed", "passed": all(r["passed"] for r in rows),
            "summary": f"bytes equal: {rows[0]['bytes_equal']}; "
            + "; ".join(f"{r['name']}: {r['error']:.2g} (<= {r['tolerance']:g})" for r in rows[1:])
            + f"; CUDA's generator {cuda_stream or 'not checked'}",
            "cases": rows, "error": max(r["error"] for r in rows), "images": n,
            "cuda_generator_stream": cuda_stream or "not checked (no CUDA)",
            "note": "random parameters are drawn on a CPU generator and applied on the device"}


# -- SyncBatchNorm's kernels (CUDA, inside a process group) ---------------------------------------

def check_sync_bn_kernels(device: torch.device) -> list[dict]:
    """SyncBatchNorm's own forward and backward (batch_norm_stats, gather over the group, elemt, and
    the backward reduce / all-reduce) in a process group of one, against batch_norm in fp32. A
    SyncBatchNorm layer computes plain batch_norm when the group has one process, so its kernels
    are called directly, as a layer in a K-process run calls them."""
    from torch.nn.modules._functions import SyncBatchNorm as SyncBNFunction

    group = torch.distributed.group.WORLD
    rows = []
    g = torch.Generator().manual_seed(8)
    base = torch.randn(16, 64, 12, 12, generator=g) * 2 + 0.5
    weight, bias = torch.rand(64, generator=g) + 0.5, torch.randn(64, generator=g)
    proj = torch.randn(base.shape, generator=g)
    for name, dtype, channels_last, tol in (("fp32 NCHW", torch.float32, False, TOL["sync_bn_fp32"]),
                                            ("bf16 channels_last", torch.bfloat16, True, TOL["sync_bn_bf16"])):
        try:
            errors = _sync_bn_errors(SyncBNFunction, group, device, base, weight, bias, proj, dtype, channels_last)
        except Exception as err:  # noqa: BLE001 - a kernel that refuses this input is a finding, not a crash
            rows.append({"name": f"SyncBatchNorm kernels, {name}", "passed": False,
                         "error": f"{type(err).__name__}: {err}"[:500]})
            continue
        worst = max(errors, key=errors.get)
        rows.append({"name": f"SyncBatchNorm kernels, {name}", "passed": errors[worst] <= tol,
                     "error": errors[worst], "worst": worst, "tolerance": tol,
                     "metric": "max |sync - batch_norm| / max |batch_norm| per tensor"})
    return rows


def _sync_bn_errors(function, group, device, base, weight, bias, proj, dtype, channels_last) -> dict:
    outs = {}
    for which in ("sync", "ref"):
        x = _layout(base.to(device, dtype if which == "sync" else torch.float32), channels_last and which == "sync")
        x = x.detach().requires_grad_()
        w, b = (t.detach().clone().to(device).requires_grad_() for t in (weight, bias))
        mean, var = torch.zeros(len(weight), device=device), torch.ones(len(weight), device=device)
        with strict_fp32():
            if which == "sync":
                y = function.apply(x, w, b, mean, var, 1e-5, 0.1, group, torch.distributed.get_world_size())
            else:
                y = F.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5)
            (y.float() * proj.to(device)).sum().backward()
        outs[which] = [y, x.grad, w.grad, b.grad, mean, var]
    labels = ["output", "d input", "d weight", "d bias", "running mean", "running var"]
    return {k: rel_error(a, r) for k, a, r in zip(labels, outs["sync"], outs["ref"])}


# -- a one-process torchrun run: NCCL (gloo on a CPU), DDP, SyncBatchNorm --------------------------

def ddp_worker(args) -> None:
    """Runs under torchrun (bench/gpu_suite.py --worker ddp): trains the child wrapped in DDP with
    sync_bn on CUDA, checks SyncBatchNorm's kernels over the group, writes a JSON report."""
    from nasnet.train import distributed

    ctx = distributed.init_from_env(timeout_s=300)
    try:
        device = torch.device(args.device)
        cuda = device.type == "cuda"
        trainer = _ddp_trainer(args, ctx, sync_bn=cuda)
        history = trainer.fit()
        report = {"backend": ctx.backend, "world_size": ctx.world_size,
                  "process_group": torch.distributed.get_backend(),
                  "wrapped": type(trainer.ddp).__name__ if trainer.ddp is not None else None,
                  "sync_bn": trainer.sync_bn,
                  "sync_bn_layers": sum(isinstance(m, torch.nn.SyncBatchNorm) for m in trainer.model.modules()),
                  "device": str(trainer.device), "precision": "bf16" if trainer.bf16 else "fp32",
                  "channels_last": trainer.channels_last,
                  "losses": [r["train_loss"] for r in history], "val_top1": history[-1]["val_top1"],
                  "finite": all(math.isfinite(r["train_loss"]) for r in history)}
        if cuda:
            report["kernels"] = check_sync_bn_kernels(device)
        else:
            report["kernels"] = []
            report["note"] = "SyncBatchNorm runs only on CUDA: the CPU run checks gloo and DDP without it"
        if ctx.rank == 0:
            common.write_json(args.worker_out, report)
    finally:
        distributed.shutdown()


def _ddp_trainer(args, ctx, sync_bn: bool):
    from nasnet.model.network import ModelConfig
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    dataset = common.synthetic(3, 32, args.batch * args.steps, n_val=args.batch)
    cfg = preset("child", batch_size=args.batch, epochs=args.epochs, device=args.device, sync_bn=sync_bn,
                 eval_every=1)
    model = model_config_for(ModelConfig(normal_cells=args.normal_cells, filters=args.filters), cfg, dataset)
    return Trainer(model, cfg, dataset, rank=ctx.rank, world_size=ctx.world_size, ddp=True)


def check_ddp(device: torch.device, sizes: dict, workdir: Path, timeout: float) -> dict:
    """`torchrun --nproc-per-node 1` on bench/gpu_suite.py --worker ddp, as `nasnet train --nproc` starts it."""
    out = workdir / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
           str(Path(__file__).with_name("gpu_suite.py")), "--worker", "ddp", "--device", device.type,
           "--worker-out", str(out)] + [f"--{k.replace('_', '-')}={v}" for k, v in sizes.items()]
    r = common.run_subprocess(cmd, timeout, threads=max(1, (os.cpu_count() or 2) // 2))
    if r["returncode"] != 0 or not out.is_file():
        tail = "\n".join(line for line in r["tail"].splitlines() if "[rank0]" in line) or r["tail"]
        return {"name": "one-process torchrun", "passed": False, "error_text": tail, **_without_tail(r)}
    rep = json.loads(out.read_text())
    want_backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    conditions = {"backend": rep["backend"] == want_backend, "ddp": rep["wrapped"] == "DistributedDataParallel",
                  "finite": rep["finite"], "sync_bn": rep["sync_bn_layers"] > 0 if device.type == "cuda" else True,
                  "kernels": all(k["passed"] for k in rep["kernels"])}
    return {"name": f"one-process torchrun ({want_backend}" + (", sync_bn)" if device.type == "cuda" else ")"),
            "passed": all(conditions.values()), "conditions": conditions, **rep, "seconds": r["seconds"],
            "summary": f"{rep['wrapped']}, {rep['sync_bn_layers']} SyncBatchNorm layers, {rep['precision']}, losses "
                       + " -> ".join(f"{v:.3f}" for v in rep["losses"])
                       + "".join(f"; {k['name'][24:]} {'ok' if k['passed'] else 'FAIL'}" for k in rep["kernels"])}


# -- nasnet search end to end ---------------------------------------------------------------------

def write_cifar_like_npz(path: Path, n_train: int, n_val: int, seed: int = 0) -> Path:
    """A synthetic CIFAR-shaped data set (32x32x3 uint8, 10 classes, N,H,W,C like CIFAR's arrays) in
    the npz format `--data npz:PATH` reads. Labels are learnable: each class has its own mean colour."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = rng.integers(0, 10, n)
        tint = (np.arange(10)[:, None] * np.array([25, 60, 95]) % 256)[y]
        x = np.clip(rng.normal(tint[:, None, None, :], 40.0, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
        return x, y

    x, y = split(n_train)
    x_val, y_val = split(n_val)
    np.savez(path, x=x, y=y, x_val=x_val, y_val=y_val, x_test=x_val[:0], y_test=y_val[:0])
    return path


def check_search(device: torch.device, executor: str, sizes: dict, workdir: Path, timeout: float) -> dict:
    """`nasnet search` on a CIFAR-shaped npz written now, children sharing the GPU (--gpus-per-child)."""
    name = f"nasnet search, {executor} executor"
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            return {"name": name, "passed": None, "skipped": "ray is not installed here"}
    data = workdir / "cifar-like.npz"
    if not data.exists():
        write_cifar_like_npz(data, sizes["n_train"], sizes["n_val"])
    run_dir = workdir / f"search-{executor}"
    gpus = sizes["gpus_per_child"] if device.type == "cuda" else 0
    cmd = [sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir), "--data", f"npz:{data}",
           "--children", str(sizes["children"]), "--workers", str(sizes["workers"]), "--executor", executor,
           "--gpus-per-child", str(gpus), "--epochs", str(sizes["epochs"]), "--strategy", "ppo", "--batch-size", "2",
           "--device", device.type, "--seed", "0", "--json", "--quiet",
           "--child-set", f"train.batch_size={sizes['batch']}", *sizes.get("extra", [])]
    r = common.run_subprocess(cmd, timeout, threads=1)
    result = {"name": name, "gpus_per_child": gpus, "workers": sizes["workers"], **_without_tail(r)}
    if r["returncode"] != 0:
        return {**result, "passed": False, "error_text": r["tail"]}
    from nasnet.search.store import TrialStore

    store = TrialStore(run_dir / "trials.db", readonly=True)
    trials = store.trials()
    store.close()
    try:
        summary = json.loads(r["stdout"][r["stdout"].index("{"):])
    except ValueError:
        summary = {}
    done = [t for t in trials if t.status == "done"]
    devices = sorted({(t.metrics or {}).get("device", "?") for t in done})
    spans = [(t.started_at, t.finished_at) for t in done if t.started_at and t.finished_at]
    together = max((sum(s <= t0 < e for s, e in spans) for t0, _ in spans), default=0)
    want = "cuda" if device.type == "cuda" else "cpu"
    conditions = {"all children done": len(done) == sizes["children"] == len(trials),
                  "rewards in [0, 1]": all(t.reward is not None and 0 <= t.reward <= 1 for t in done),
                  f"trained on {want}": bool(devices) and all(d.startswith(want) for d in devices),
                  "children ran at the same time": together >= min(2, sizes["workers"]),
                  "controller updated": summary.get("updates", 0) >= 1}
    return {**result, "passed": all(conditions.values()), "conditions": conditions, "children": len(trials),
            "summary": f"{len(done)}/{len(trials)} children done, {together} at once, on {', '.join(devices)}, "
                       f"{summary.get('updates', 0)} controller update(s)"
                       + "".join(f"; NOT {k}" for k, ok in conditions.items() if not ok),
            "rewards": [t.reward for t in done], "devices": devices, "most_at_once": together}


# -- subprocesses ---------------------------------------------------------------------------------

def _without_tail(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("tail", "stdout")}
