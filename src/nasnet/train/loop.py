"""The training loop shared by `nasnet train` and the search's children (paper A.6, A.7).

A `Trainer` holds one run, built whole: the model on its device, the optimizer, the weight EMA, the
input pipeline and the run's place in its schedule. `fit()` trains epoch by epoch (a run directory
gets metrics and an atomic checkpoint after each), `evaluate(split)` scores the model (the EMA
weights when there are some), `state_dict()` / `load_state_dict()` make a resume exact. The rules it
keeps are in docs/training.md: data order and augmentation as functions of (seed, epoch, rank), the
RNG in the checkpoint ("Exact resume"), the batch per process and what K processes share
("Data-parallel training"), bf16, channels_last and torch.compile ("Devices"). The loss with label
smoothing and the auxiliary head is `training_loss`; data order and sharding are `examples_for_epoch`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from .. import seeding
from ..data import Dataset
from ..errors import NasnetError
from ..model.network import ModelConfig, NASNet
from ..seeding import derive_seed
from ..torch_rng import rng_state, set_rng_state
from . import distributed
from .config import TrainConfig, training_data
from .device import compile_mode, cudnn_autotune, data_parallel_device, device_splits, resolve_device, uses_bf16
from .evaluate import evaluate_model
from .ema import ModelEMA
from .optim import build_optimizer, decayed_parameters, finish_gradients
from .run_dir import RunFiles
from .schedule import lr_at, lr_scale


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int):
        super().__init__(f"training loss is not finite at epoch {epoch + 1}, step {step}")
        self.epoch, self.step = epoch, step


def examples_for_epoch(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The training examples this process visits in `epoch`, in order: a permutation seeded by
    (seed, epoch), this rank's share of it. The only place that decides data order and sharding."""
    g = torch.Generator().manual_seed(derive_seed(seed, epoch, seeding.DATA_ORDER))
    order = torch.randperm(n, generator=g)
    return order[rank::world_size] if world_size > 1 else order


def check_sync_bn(cfg: TrainConfig, device: torch.device, world_size: int, ddp: bool = False) -> None:
    """SyncBatchNorm runs only on CUDA: refuse it for a CPU data-parallel run (several processes, or
    a model wrapped in DDP), in one line."""
    if cfg.sync_bn and (world_size > 1 or ddp) and device.type != "cuda":
        raise NasnetError("sync_bn needs CUDA: PyTorch's SyncBatchNorm does not run on CPU (gloo); "
                          "drop `sync_bn=true`")


def steps_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps in one epoch: every process takes full batches of its shard of n_train // world_size
    examples (the last partial batch and the n_train % world_size leftover are dropped, different ones
    every epoch since the order is reshuffled; BatchNorm on a batch of 1 is undefined); one step at least."""
    return max(1, (n_train // world_size) // batch_size)


def check_batch_size(n_train: int, batch_size: int, world_size: int = 1, spec: str = "the data") -> None:
    """Refuse a batch larger than the training images a process has: such a run would silently train
    on smaller batches than asked (and with an lr chosen for the larger one). Refused rather than
    clamped, so that what a run's config.json says is what it did."""
    per_process = n_train // world_size
    if batch_size > per_process:
        where = f" per process ({n_train:,} over {world_size})" if world_size > 1 else ""
        raise NasnetError(f"`batch_size` {batch_size:,} is larger than the {per_process:,} training images of "
                          f"{spec}{where}; use at most {per_process:,}")


def training_loss(logits: torch.Tensor, aux: torch.Tensor | None, y: torch.Tensor, label_smoothing: float = 0.0,
                  aux_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to minimise, main cross-entropy): the cross-entropy of the logits, with label smoothing
    (paper A.7: the target is 1 - eps on the label plus eps / classes on every class), plus
    `aux_weight` times the same loss of the auxiliary head's logits (A.7: weight 0.4). L2 is not a
    term here: its gradient is added to the gradients directly (`optim.finish_gradients`)."""
    main = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if aux is None or aux_weight <= 0:
        return main, main
    aux_loss = F.cross_entropy(aux.float(), y, label_smoothing=label_smoothing)
    return main + aux_weight * aux_loss, main


def training_device(cfg: TrainConfig, dataset: Dataset, world_size: int = 1, ddp: bool = False) -> torch.device:
    """The device this process trains on (`device.resolve_device`, `device.data_parallel_device`).

    Raises NasnetError, before anything is built, for a run that cannot train: CUDA asked for where there
    is none, SyncBatchNorm off CUDA, a batch larger than a process's share of the training images, or
    data parallelism without an initialised process group."""
    device = resolve_device(cfg.device)
    check_sync_bn(cfg, device, world_size, ddp)
    check_batch_size(len(dataset.split("train")), cfg.batch_size, world_size, dataset.spec)
    if not ddp:
        return device
    if not distributed.dist.is_initialized():
        raise NasnetError("data-parallel training needs torch.distributed initialised: in each process torchrun "
                          "starts, call nasnet.train.distributed.init_from_env() first")
    return data_parallel_device(device, world_size)


class Trainer:
    """One training run, built whole: the model on its device, the optimizer, the weight EMA, the
    input pipeline and the run's place in its schedule (epoch 0, or `load_state_dict` for a resume).

    model_config, cfg: the network and the recipe (nasnet.train.config.resolve makes both); dataset: the
    data, used as the recipe says (`training_data`). run_files: where rank 0 writes (None: nowhere);
    meta: plain facts stored with every checkpoint (the preset and model names); progress: a per-step
    bar; log: receives one line per epoch. rank / world_size: this process's place among the
    data-parallel processes (the default process group must be initialised when world_size > 1);
    ddp=True wraps the model in DistributedDataParallel even in one process (to measure its overhead).

    Raises NasnetError when the run cannot train here (`training_device`)."""

    def __init__(self, model_config: ModelConfig, cfg: TrainConfig, dataset: Dataset, *,
                 run_files: RunFiles | None = None, meta: Mapping[str, Any] | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = None, rank: int = 0, world_size: int = 1,
                 ddp: bool | None = None):
        self.cfg, self.model_config = cfg, model_config
        self.dataset = dataset = training_data(dataset, cfg)
        self.rank, self.world_size = rank, world_size
        self.use_ddp = world_size > 1 if ddp is None else ddp
        self.device = training_device(cfg, dataset, world_size, self.use_ddp)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.bf16 = uses_bf16(cfg.precision, self.device)
        self.channels_last = cfg.channels_last
        self.files = run_files if rank == 0 else None
        self.meta: dict[str, Any] = dict(meta or {})
        self.progress = progress and rank == 0
        self.log = log or (lambda _msg: None)
        # SyncBatchNorm wherever the model is data-parallel (with one process, as in the GPU suite's
        # torchrun check, it computes what BatchNorm does)
        self.sync_bn = cfg.sync_bn and self.use_ddp
        self.model = self._build_model()
        self.optimizer = build_optimizer(self.model, cfg)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.decay_params, _ = decayed_parameters(self.model, cfg.decay_bn)
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        # static graph: the parameters a NASNet uses are the same at every step (ScheduledDropPath masks
        # examples, it never skips an op), so DDP learns once which ones never get a gradient (e.g. the
        # preprocessing of a cell input no op reads) and needs no per-step graph search
        self.ddp = distributed.data_parallel(self.model, self.device, static_graph=True,
                                             gradient_as_bucket_view=True) if self.use_ddp else None
        self.compile_mode = compile_mode(cfg.compile)
        self.train_forward = self._training_forward()
        # CUDA graphs (the reduce-overhead and max-autotune modes): each step starts a new replay
        self.mark_steps = self.device.type == "cuda" and self.compile_mode in ("reduce-overhead", "max-autotune")
        self.progress_tensor: torch.Tensor | None = None   # ScheduledDropPath's progress under torch.compile
        self.lr_scale = lr_scale(cfg, world_size)
        self.augment = cfg.augment_for(model_config.image_size, dataset.mirror_safe)
        self.data = device_splits(dataset, self.device)
        self.steps_per_epoch = steps_per_epoch(len(dataset.split("train")), cfg.batch_size, world_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.epoch = 0          # completed epochs
        self.step = 0           # completed optimizer steps
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.wall_before = 0.0  # seconds spent before a resume
        self.rng_ranks: list[dict[str, torch.Tensor]] | None = None  # every process's RNG, for the checkpoint
        self.resumed_from_world_size: int | None = None

    def _build_model(self) -> NASNet:
        """The network on the device, with the same initial weights in every process (seeded by cfg.seed);
        afterwards ranks other than 0 draw drop-path masks and dropout from streams of their own (rank 0
        keeps the seed's). channels_last and SyncBatchNorm as the run asks."""
        torch.manual_seed(self.cfg.seed)
        model = NASNet(self.model_config).to(self.device)
        if self.rank > 0:
            torch.manual_seed(derive_seed(self.cfg.seed, self.rank, seeding.RANK_RNG))
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return model

    def _training_forward(self) -> Callable[..., Any]:
        """What a training step calls: the model (or its DDP wrapper), torch.compiled when cfg.compile asks."""
        forward = self.ddp if self.ddp is not None else self.model
        if not self.cfg.compile:
            return forward
        return torch.compile(forward, **({"mode": self.compile_mode} if self.compile_mode else {}))

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.world_size

    # -- state -------------------------------------------------------------------------------
    def state_dict(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint. Under data parallelism call `collect_rng()` on every process first: the
        checkpoint then holds each process's RNG state (`rng_ranks`), so a resume with the same
        number of processes is exact."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng_state(self.device),
            "rng_ranks": self.rng_ranks,
            "world_size": self.world_size,
            "config": {"model": self.model_config.to_dict(), "train": self.cfg.to_dict(), "data": self.dataset.spec},
            "model_config": self.model_config.to_dict(),  # makes the checkpoint a model file (nasnet.model_file)
            "genotype": str(self.model_config.genotype),
            "history": self.history,
            "best": self.best,
            "meta": self.meta,
            **(extra or {}),
        }

    def collect_rng(self) -> None:
        """Gather every process's RNG state (a collective: all processes call it)."""
        self.rng_ranks = distributed.all_gather_object(rng_state(self.device)) if self.is_distributed else None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state.get("history") or [])
        self.best = state.get("best")
        self.meta = dict(state.get("meta") or self.meta)
        self.wall_before = float(self.history[-1]["wall_seconds"]) if self.history else 0.0
        saved_world = int(state.get("world_size") or 1)
        ranks = state.get("rng_ranks")
        if saved_world == self.world_size and ranks and len(ranks) == self.world_size:
            set_rng_state(ranks[self.rank], self.device)
        elif saved_world == self.world_size or self.rank == 0:
            set_rng_state(state["rng"], self.device)
        else:  # another number of processes: fresh streams for the new ranks (not bit-exact, by nature)
            torch.manual_seed(derive_seed(self.cfg.seed, self.epoch, self.rank, seeding.RANK_RNG))
        if saved_world != self.world_size:
            # checkpoints sit at epoch boundaries: count the steps as this number of processes would
            # have, so the LR schedule and ScheduledDropPath continue from the same point of the run
            self.resumed_from_world_size = saved_world
            self.step = self.epoch * self.steps_per_epoch

    # -- training ------------------------------------------------------------------------------
    def _to_input(self, x: torch.Tensor) -> torch.Tensor:
        # explicit either way: convolutions follow the input's layout, and pad_crop returns NHWC strides
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _loss(self, logits, aux, y):
        return training_loss(logits, aux, y, self.cfg.label_smoothing, self.cfg.aux_weight)

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _finite_everywhere(self, loss_sum: torch.Tensor) -> bool:
        """Whether the running loss is finite in every process (a collective under data parallelism, so
        all processes stop at the same step when one diverges instead of waiting for it forever)."""
        if not self.is_distributed:
            return math.isfinite(float(loss_sum))
        bad = torch.tensor([0.0 if math.isfinite(float(loss_sum)) else 1.0], device=self.device)
        return float(distributed.all_reduce_sum(bad)) == 0.0

    def _progress(self) -> float | torch.Tensor:
        """ScheduledDropPath's progress (step / total steps). Under torch.compile a tensor on the device,
        so that the compiled graph is not specialised to every new float: one tensor kept for the run
        and refilled each step (a fill kernel takes the value as its argument: no host-to-device copy,
        no wait), holding the same float32 value `torch.tensor(progress)` would."""
        progress = self.step / self.total_steps
        if not self.cfg.compile:
            return progress
        if self.progress_tensor is None:
            self.progress_tensor = torch.zeros((), device=self.device)
        return self.progress_tensor.fill_(progress)

    def _train_step(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch: (logits, main cross-entropy), neither read back to the host."""
        cfg, dev = self.cfg, self.device
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        progress = self._progress()
        if self.mark_steps:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits, aux = self.train_forward(xb, drop_path_progress=progress, return_aux=True)
        loss, main = self._loss(logits, aux, yb)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP the gradients arrive averaged over the processes
        finish_gradients(self.params, self.decay_params, cfg.weight_decay, cfg.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return logits, main

    def train_epoch(self, epoch: int) -> dict[str, float]:
        with cudnn_autotune(self.device):   # fixed shapes all epoch long: let cuDNN pick its kernels
            return self._train_epoch(epoch)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        x_all, y_all = self.data["train"]
        order = examples_for_epoch(len(y_all), cfg.seed, epoch, self.rank, self.world_size).to(dev)
        gen = torch.Generator()  # on the CPU whatever the device: the same augmentation on every device
        gen.manual_seed(derive_seed(cfg.seed, epoch, self.rank, seeding.AUGMENT))
        self._train_mode()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        check_every = 1 if dev.type == "cpu" else 25
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                       leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        bs = cfg.batch_size
        for i in range(self.steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            xb = self._to_input(self.augment.train_batch(x_all[idx], gen))
            yb = y_all[idx]
            lr = lr_at(self.step, cfg, self.steps_per_epoch, self.world_size)
            logits, main = self._train_step(xb, yb, lr)
            loss_sum += main.detach() * len(yb)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(yb)
            if (i + 1) % check_every == 0 or i + 1 == self.steps_per_epoch:
                if not self._finite_everywhere(loss_sum):
                    if bar is not None:
                        bar.close()
                    raise Diverged(epoch, self.step)
                if bar is not None:
                    el = time.perf_counter() - start
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", acc=f"{float(correct) / seen:.3f}",
                                    ips=f"{seen * self.world_size / max(el, 1e-9):.0f}", refresh=False)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - start
        if self.is_distributed:  # the epoch's loss and accuracy over every process's examples
            totals = torch.stack([loss_sum.double(), correct.double(),
                                  torch.tensor(float(seen), dtype=torch.float64, device=dev)])
            distributed.all_reduce_sum(totals)
            loss_total, correct_total, seen = float(totals[0]), float(totals[1]), int(totals[2])
        else:
            loss_total, correct_total = float(loss_sum), float(correct)
        return {"train_loss": loss_total / seen, "train_top1": correct_total / seen, "lr": lr,
                "images": seen, "epoch_seconds": seconds, "images_per_second": seen / max(seconds, 1e-9)}

    def sync_statistics(self) -> None:
        """Make every process's model (and EMA) identical at an epoch's end: parameters already are
        (same averaged gradients), BatchNorm running statistics are averaged over the processes
        (each saw only its own batches). A collective; no-op in one process or with SyncBatchNorm."""
        if not self.is_distributed or self.sync_bn:
            return
        distributed.average_buffers(self.model)
        if self.ema is not None:
            distributed.average_buffers(self.ema.module)

    # -- evaluation ----------------------------------------------------------------------------
    def eval_model(self, use_ema: bool = True) -> NASNet:
        return self.ema.module if (use_ema and self.ema is not None) else self.model

    @torch.no_grad()
    def evaluate(self, split: str = "val", use_ema: bool = True, model: NASNet | None = None) -> dict[str, float]:
        model = model or self.eval_model(use_ema)
        x_all, y_all = self.data[split]
        return evaluate_model(model, x_all, y_all, self.augment, self.cfg.eval_batch_size, self.device,
                              self.bf16, self.channels_last, rank=self.rank, world_size=self.world_size)

    # -- the run -------------------------------------------------------------------------------
    def fit(self, until: int | None = None) -> list[dict[str, Any]]:
        """Train from the current epoch to `until` (default: cfg.epochs), evaluating at the end.

        The schedules (learning rate, ScheduledDropPath) always span cfg.epochs, so stopping at
        `until` and fitting again later (from a checkpoint) trains exactly as one uninterrupted run:
        how a search child continues from one ASHA rung to the next."""
        cfg = self.cfg
        end = cfg.epochs if until is None else until
        if not 1 <= end <= cfg.epochs:
            raise NasnetError(f"fit: cannot stop at epoch {end} of a {cfg.epochs}-epoch schedule")
        if self.files is not None:
            self.files.write_metrics(self.history)
            self.files.open_tensorboard(self.epoch)
        has_val = len(self.data["val"][1]) > 0
        run_start = time.perf_counter()
        try:
            for epoch in range(self.epoch, end):
                stats = self.train_epoch(epoch)
                self.epoch = epoch + 1
                self.sync_statistics()
                row: dict[str, Any] = {"epoch": self.epoch, "step": self.step, **stats,
                                       "val_loss": None, "val_top1": None, "val_top5": None}
                last = self.epoch == end
                if has_val and (last or (cfg.eval_every and self.epoch % cfg.eval_every == 0)):
                    val = self.evaluate("val")
                    row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
                row["wall_seconds"] = self.wall_before + time.perf_counter() - run_start
                self.history.append(row)
                improved = row["val_top1"] is not None and (
                    self.best is None or row["val_top1"] > self.best["val_top1"])
                if improved:
                    self.best = {"epoch": self.epoch, "val_top1": row["val_top1"]}
                self.collect_rng()
                if self.files is not None:
                    self.files.save(self.state_dict(), best=improved)
                    self.files.write_metrics(self.history)
                    self.files.log_epoch(row)
                self.log(format_row(row, cfg.epochs))
        finally:
            if self.files is not None:
                self.files.close()
        return self.history


def format_row(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f}  train acc {row['train_top1']:.4f}  "
            f"lr {row['lr']:.4g}  {row['images_per_second']:.0f} img/s")
    if row.get("val_top1") is not None:
        text += f"  val loss {row['val_loss']:.4f}  val acc {row['val_top1']:.4f}"
    return text
