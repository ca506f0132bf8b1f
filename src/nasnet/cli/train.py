"""`nasnet train`: train a zoo model, or any genotype at any skeleton and N @ F, on any dataset
(paper A.6, A.7; SPEC §1.9).

Configuration is resolved in layers and written to RUN_DIR/config.json: the recipe (`--preset`,
by default the dataset's: digits -> digits, CIFAR -> cifar, large images -> imagenet), then the
flags (`--epochs`, `--lr`, ..., `--set FIELD=VALUE` for any TrainConfig field and
`--set model.FIELD=VALUE` for any ModelConfig field). The model is `--model NAME` from the zoo, or
NASNet-A / `--genotype G` at the dataset's default size, resized by `-N` and `--filters`.
Classes, channels and image size always come from the data.

A run is a directory (see nasnet.train.run_files). `--resume` continues one where it stopped.

Data parallel (nasnet.train.distributed, nasnet.train.launch): `nasnet train --nproc K ...` or
`torchrun --nproc-per-node K -m nasnet train ...` trains one model over K processes (NCCL on GPUs,
gloo on CPU). Rank 0 resolves the configuration (or reads the checkpoint) and sends it to the
others, and it alone writes the run directory and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import NasnetError, first_line

COMMAND = "train"
HELP = "train a NASNet model (zoo name or genotype) on digits, CIFAR, an image folder or arrays"
ORDER = 30

# flags that change the configuration (refused with --resume: a resumed run keeps its own)
_CONFIG_FLAGS = ("data", "model", "genotype", "normal_cells", "filters", "penultimate", "skeleton", "preset", "epochs",
                 "batch_size", "lr", "image_size", "seed", "set", "compile")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="digits (default) | cifar10:PATH | cifar100:PATH | folder:PATH | npz:PATH "
                        "[,val=..][,test=..][,size=..]")
    m = p.add_argument_group("model")
    m.add_argument("--model", default=None, metavar="NAME", help="a zoo model (see `nasnet zoo`)")
    m.add_argument("--genotype", default=None, metavar="G", help="nasnet-a, a genotype text, or a file holding one")
    m.add_argument("-N", "--N", "--normal-cells", dest="normal_cells", type=int, default=None, metavar="N",
                   help="normal cells per stage (the N of the paper's 'N @ F')")
    m.add_argument("--F0", "--filters", dest="filters", type=int, default=None, metavar="F0",
                   help="first-stage filters per branch")
    m.add_argument("--F", "--penultimate-filters", dest="penultimate", type=int, default=None, metavar="F",
                   help="width of the penultimate layer (the F of 'N @ F'; 24 x F0 for NASNet-A)")
    m.add_argument("--skeleton", choices=("cifar", "imagenet"), default=None)
    t = p.add_argument_group("training")
    t.add_argument("--preset", default=None, help="child | cifar | imagenet | digits (default: the dataset's)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--image-size", type=int, default=None, help="training resolution (default: the stored size)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--set", action="append", default=None, metavar="FIELD=VALUE",
                   help="override any TrainConfig field, or a ModelConfig field as model.FIELD (repeatable)")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the training forward")
    r = p.add_argument_group("run")
    r.add_argument("--run-dir", default=None, metavar="DIR", help="where the run lives (default runs/train-TIME)")
    r.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    r.add_argument("--device", default=None, help="auto (default) | cpu | cuda")
    r.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines are still printed)")
    r.add_argument("--tensorboard", dest="tensorboard", action="store_true", default=True,
                   help="write TensorBoard events to RUN_DIR/tb when tensorboard is installed (default)")
    r.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    d = p.add_argument_group("data parallel (torchrun; see README \"Data-parallel training\")")
    d.add_argument("--nproc", default=None, metavar="K",
                   help="train over K processes on this machine (one per GPU with CUDA, `gpu` = all GPUs; "
                        "gloo on CPU); --batch-size is per process")
    d.add_argument("--nnodes", default=None, metavar="N", help="machines in the job (N, or MIN:MAX); run the same "
                   "command on each, with --rdzv-endpoint")
    d.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                   help="rendezvous address every machine can reach (e.g. the first machine, port 29400)")
    d.add_argument("--rdzv-id", default=None, metavar="ID", help="job name, the same on every machine")
    d.add_argument("--max-restarts", type=int, default=None, metavar="M",
                   help="restart all processes up to M times after a failure; they resume from the last checkpoint")
    d.add_argument("--dist-timeout", type=float, default=None, metavar="S",
                   help="seconds a process waits for the others in a collective before failing (default 1800)")


def _default_preset(kind: str, image_size: int) -> str:
    if kind == "digits":
        return "digits"
    return "cifar" if image_size <= 64 else "imagenet"


def _base_model(args, dataset):
    """The model before the recipe and the data are applied."""
    from ..genotype import Genotype
    from ..network import ModelConfig
    from ..zoo import get_entry

    if args.model:
        cfg = get_entry(args.model).config
        name = args.model
        if args.genotype:
            cfg = cfg.replace(genotype=Genotype.load(args.genotype))
            name += " with the given genotype"
    else:
        genotype = Genotype.load(args.genotype or "nasnet-a")
        if dataset.kind in ("cifar10", "cifar100"):
            cfg = get_entry("nasnet_a_cifar").config.replace(genotype=genotype)
        elif dataset.image_size <= 64:
            # a small model: 2 normal cells per stage, F0 = 16 (NASNet-A: 2 @ 384)
            cfg = ModelConfig(genotype=genotype, skeleton="cifar", normal_cells=2, filters=16)
        else:
            cfg = get_entry("nasnet_a_mobile").config.replace(genotype=genotype, padding="symmetric")
        name = "NASNet-A" if not args.genotype else "genotype"
    over = {}
    if args.normal_cells is not None:
        over["normal_cells"] = args.normal_cells
    if args.filters is not None and args.penultimate is not None:
        raise NasnetError("give the width either as --F0 (first-stage filters) or as --F (penultimate), not both")
    if args.filters is not None:
        over["filters"] = args.filters
    if args.penultimate is not None:
        over["filters"] = _filters_for(cfg, args.penultimate)
    if args.skeleton is not None:
        over["skeleton"] = args.skeleton
    return (cfg.replace(**over) if over else cfg), name


def _filters_for(cfg, penultimate: int) -> int:
    """F0 for the paper's "N @ F": F / (normal-cell output width x 2**reductions), said when inexact."""
    from ..network import filters_from_penultimate

    if penultimate < 1:
        raise NasnetError(f"--F must be a positive width, got {penultimate}")
    f0 = filters_from_penultimate(cfg.genotype, penultimate, cfg.num_reductions)
    built = cfg.replace(filters=f0).penultimate_filters
    if built != penultimate:
        print(f"note: --F {penultimate} is not a multiple of {built // f0}; building F0 = {f0} "
              f"(penultimate width {built})", file=sys.stderr)
    return f0


def _split_sets(items: list[str] | None) -> tuple[dict, dict]:
    train, model = {}, {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NasnetError(f"--set {item!r}: expected FIELD=VALUE (e.g. --set cutout=16 or --set model.dropout=0.5)")
        if key.startswith("model."):
            model[key[6:]] = _parse_value(value)
        else:
            train[key.removeprefix("train.")] = _parse_value(value)
    return train, model


def _parse_value(text: str):
    """A `--set` value: JSON when it parses (numbers, true/false/null), else the string itself."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve(args):
    """(ModelConfig, TrainConfig, Dataset, meta) from the command line."""
    from ..data import load_dataset
    from ..train.config import preset
    from ..train.loop import model_config_for

    dataset = load_dataset(args.data or "digits")
    preset_name = args.preset or _default_preset(dataset.kind, dataset.image_size)
    train_over, model_over = _split_sets(args.set)
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "image_size": args.image_size,
             "seed": args.seed, "device": args.device, "threads": args.threads, "compile": args.compile}
    train_over.update({k: v for k, v in flags.items() if v is not None})
    train_cfg = preset(preset_name, **train_over)
    base, name = _base_model(args, dataset)
    model_cfg = model_config_for(base, train_cfg, dataset)
    if model_over:
        model_cfg = model_cfg.replace(**model_over)
    if model_cfg.skeleton == "imagenet" and model_cfg.image_size < 32:
        raise NasnetError(f"the imagenet skeleton needs images of 32 pixels or more; {dataset.spec} has "
                          f"{model_cfg.image_size} (use --skeleton cifar)")
    meta = {"preset": preset_name, "model_name": name}
    return model_cfg, train_cfg, dataset, meta


def _load_resume(run_dir: Path, args, check_flags: bool = True):
    from ..data import load_dataset
    from ..network import ModelConfig
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig

    given = [f"--{f.replace('_', '-')}" for f in _CONFIG_FLAGS if getattr(args, f, None) not in (None, False)]
    if given and check_flags:
        raise NasnetError(f"--resume continues the run with its saved configuration; drop {', '.join(given)} "
                          "(start a new --run-dir to change it)")
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        config = state["config"]
        meta = state.get("meta") or {}
    elif (run_dir / "config.json").is_file():  # stopped during the first epoch
        import json

        state = None
        config = json.loads((run_dir / "config.json").read_text())
        meta = {k: config.get(k) for k in ("preset", "model_name")}
    else:
        raise NasnetError(f"{run_dir}: nothing to resume (no checkpoint.pt or config.json)")
    train_cfg = TrainConfig.from_dict(config["train"])
    over = {k: v for k, v in (("device", args.device), ("threads", args.threads)) if v is not None}
    if over:
        train_cfg = train_cfg.replace(**over)
    return ModelConfig.from_dict(config["model"]), train_cfg, load_dataset(config["data"]), meta, state


@dataclass
class Plan:
    """What a run will do: resolved configs, the data, and the checkpoint to continue from (if any)."""

    run_dir: Path
    model_cfg: Any
    train_cfg: Any
    data_spec: str
    meta: dict
    state: dict | None
    write_config: bool
    params: int
    mult_adds: int
    note: str = ""
    dataset: Any = field(default=None, repr=False)

    def shareable(self) -> "Plan":
        """The plan without the dataset (which every process loads from the spec itself)."""
        return replace(self, dataset=None)


_LAUNCH_FLAGS = ("nnodes", "rdzv_endpoint", "rdzv_id", "max_restarts")


def _run_dir(args) -> Path:
    if args.resume and not args.run_dir:
        raise NasnetError("--resume needs --run-dir DIR (the run to continue)")
    return Path(args.run_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}").expanduser()


def _check_args(args, run_dir: Path | None = None) -> Path:
    """Mistakes found without torch, reported at once (and before any process is started)."""
    from ..train.launch import holds_run

    run_dir = run_dir or _run_dir(args)
    if not args.resume:
        _split_sets(args.set)
        if holds_run(run_dir):
            raise NasnetError(f"{run_dir} already holds a run; continue it with --resume or choose another --run-dir")
    return run_dir


def _restarted_run(run_dir: Path, ctx) -> bool:
    """An elastic restart (torchrun --max-restarts) of the launch that started this run: resume it."""
    import json

    if ctx is None or ctx.restart_count == 0 or not (run_dir / "config.json").is_file():
        return False
    try:
        started_by = json.loads((run_dir / "config.json").read_text()).get("distributed", {}).get("launch_id")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(started_by) and started_by == ctx.run_id


def _prepare(args, ctx=None) -> Plan:
    """Resolve the run: a new one from the flags, or the saved one (--resume, or an elastic restart)."""
    from ..counting import count

    run_dir = _run_dir(args)
    if ctx is not None and not args.run_dir and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0:
        raise NasnetError("torchrun --max-restarts needs --run-dir DIR: a restarted run resumes from its directory")
    restarted = not args.resume and _restarted_run(run_dir, ctx)
    if args.resume or restarted:
        model_cfg, train_cfg, dataset, meta, state = _load_resume(run_dir, args, check_flags=not restarted)
        note = f"restart {ctx.restart_count} of this launch: resuming" if restarted else ""
    else:
        _check_args(args, run_dir)
        model_cfg, train_cfg, dataset, meta = resolve(args)
        state, note = None, ""
    world = ctx.world_size if ctx else 1
    if world > 1:  # found by rank 0 here, so the job stops with one message rather than one per process
        from ..train.loop import check_sync_bn, resolve_device

        check_sync_bn(train_cfg, resolve_device(train_cfg.device), world)
    counts = count(model_cfg)
    return Plan(run_dir=run_dir, model_cfg=model_cfg, train_cfg=train_cfg, data_spec=dataset.spec, meta=meta,
                state=state, write_config=state is None, params=counts.params, mult_adds=counts.mult_adds,
                note=note, dataset=dataset)


def run(args: argparse.Namespace) -> int:
    from ..train.launch import LAUNCH_ENV, under_torchrun

    if under_torchrun():
        if args.nproc is not None and os.environ.get(LAUNCH_ENV) != "1":
            raise NasnetError("--nproc starts torchrun itself; under torchrun, drop it (torchrun's --nproc-per-node "
                              "sets the number of processes)")
        return _run_worker(args)
    launch_flags = [f"--{f.replace('_', '-')}" for f in _LAUNCH_FLAGS if getattr(args, f) is not None]
    if args.nproc is not None:
        return _launch(args)
    if launch_flags:
        raise NasnetError(f"{', '.join(launch_flags)} go with --nproc K (data-parallel training)")
    plan = _prepare(args)
    return _execute(plan, args)


def _launch(args) -> int:
    """`nasnet train --nproc K ...`: check what can be checked here, then start torchrun."""
    from ..train.launch import LaunchOptions, launch

    opts = LaunchOptions(nproc=str(args.nproc), nnodes=str(args.nnodes or "1"), rdzv_endpoint=args.rdzv_endpoint,
                         rdzv_id=args.rdzv_id, max_restarts=args.max_restarts or 0)
    run_dir = _check_args(args)
    worker_argv = list(getattr(args, "_argv", None) or sys.argv[1:])
    if not args.run_dir:  # every process (and the resume hint) must name the same directory
        worker_argv += ["--run-dir", str(run_dir)]
    return launch(opts, worker_argv, run_dir)


def _run_worker(args) -> int:
    """One of the K processes torchrun started."""
    from torch.distributed.elastic.multiprocessing.errors import record

    from ..train import distributed
    from ..train.launch import LOST_PEER_STATUS

    timeout = args.dist_timeout if args.dist_timeout is not None else distributed.DEFAULT_TIMEOUT_S
    if timeout <= 0:
        raise NasnetError("--dist-timeout must be > 0 seconds")
    ctx = distributed.init_from_env(timeout)
    mistake: list[NasnetError] = []

    def guarded() -> int:
        # expected endings are handled in here, so torchrun's `record` writes an error file only for
        # a real crash (the launcher shows its first line); a process that merely lost contact writes
        # none, as torchrun may stop it (SIGTERM) at any moment and a half-written file breaks torchrun
        try:
            return _worker(args, ctx)
        except NasnetError as err:
            if ctx.rank == 0:
                mistake.append(err)  # raised below, outside `record`: main() prints it as one line
            else:
                print(f"nasnet train: error: [rank {ctx.rank}] {err}", file=sys.stderr)
            return 2
        except Exception as err:
            if not distributed.lost_peer(err):
                raise
            # another process died (torchrun names it and stops this one): one line here, not a traceback
            reason = first_line(err)
            if reason.startswith("[") and "] " in reason:  # gloo's "[source.cc:553] Connection closed by peer"
                reason = reason.split("] ", 1)[1]
            print(f"nasnet train: [rank {ctx.rank}] lost contact with the other processes "
                  f"({reason.split('. ')[0]})", file=sys.stderr)
            return LOST_PEER_STATUS

    try:
        status = record(guarded)()
    finally:
        distributed.shutdown()
    if mistake:
        raise mistake[0]
    return status


def _worker(args, ctx) -> int:
    from ..data import load_dataset
    from ..train import distributed

    plan, error = None, None
    if ctx.rank == 0:
        try:
            plan = _prepare(args, ctx)
        except NasnetError as err:
            error = str(err)
    # rank 0's decision (a new run, a resume, or a mistake) for everybody
    error, shared = distributed.broadcast_object((error, plan.shareable() if plan else None))
    if error is not None:
        if ctx.rank == 0:
            raise NasnetError(error)
        return 2  # rank 0 reports it
    if plan is None:
        plan = replace(shared, dataset=load_dataset(shared.data_spec))
    return _execute(plan, args, ctx)


def _execute(plan: Plan, args, ctx=None) -> int:
    from ..train.loop import Diverged, Trainer
    from ..train.run_files import RunFiles

    rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
    run_dir, model_cfg, train_cfg, dataset, meta = plan.run_dir, plan.model_cfg, plan.train_cfg, plan.dataset, plan.meta
    files = RunFiles(run_dir, tensorboard=args.tensorboard) if rank == 0 else None
    config = {"model": model_cfg.to_dict(), "train": train_cfg.to_dict(), "data": dataset.spec, **meta,
              "params": plan.params, "mult_adds": plan.mult_adds}
    if ctx is not None:
        config["distributed"] = {"world_size": world, "backend": ctx.backend, "launch_id": ctx.run_id,
                                 "global_batch": train_cfg.batch_size * world}
    if files is not None and plan.write_config:
        files.write_config(config)

    progress = rank == 0 and not args.no_progress and sys.stderr.isatty()
    printer = _printer(progress) if rank == 0 else (lambda _msg: None)
    trainer = Trainer(model_cfg, train_cfg, dataset, run_files=files, progress=progress, log=printer,
                      rank=rank, world_size=world)
    trainer.meta = meta
    if plan.state is not None:
        trainer.load_state_dict(plan.state)
    printer(f"{dataset.summary()}")
    printer(f"model {meta.get('model_name')}: {model_cfg.skeleton} skeleton, {model_cfg.name} "
            f"(N={model_cfg.normal_cells}, F0={model_cfg.filters}), {plan.params:,} params, "
            f"{plan.mult_adds / 1e6:,.1f}M mult-adds at {model_cfg.image_size}px")
    batch = f"{train_cfg.batch_size}"
    lr = f"{train_cfg.lr:g}"
    if world > 1:
        batch = f"{train_cfg.batch_size} per process x {world} processes = {trainer.global_batch}"
        if trainer.lr_scale != 1:
            lr = f"{train_cfg.lr * trainer.lr_scale:g} ({train_cfg.lr:g} x {trainer.lr_scale}, linear scaling)"
    printer(f"recipe {meta.get('preset')}: {train_cfg.epochs} epochs x {trainer.steps_per_epoch} steps of "
            f"{batch}, {train_cfg.optimizer} lr {lr} {train_cfg.lr_schedule}, "
            f"device {trainer.device}{' bf16' if trainer.bf16 else ''}"
            f"{f' ({ctx.backend})' if world > 1 else ''}; run dir {run_dir}")
    if trainer.resumed_from_world_size:
        printer(f"note: the checkpoint was trained by {trainer.resumed_from_world_size} process(es), this run has "
                f"{world}: the global batch is now {trainer.global_batch} (not a bit-exact continuation)")
    if trainer.epoch:
        printer(f"{plan.note or 'resuming'} after epoch {trainer.epoch} (step {trainer.step})")
    try:
        trainer.fit()
    except Diverged as err:
        if rank != 0:
            return 2  # every process stops at the same step; rank 0 reports it
        raise NasnetError(f"training diverged: {err}; lower --lr or add --set grad_clip=5 "
                          f"(the last good checkpoint is in {run_dir})") from None
    except KeyboardInterrupt:
        if rank == 0:
            more = f" --nproc {world}" if world > 1 else ""
            print(f"stopped; continue with: nasnet train --run-dir {run_dir} --resume{more}", file=sys.stderr)
        raise

    results = final_results(trainer, plan, meta)  # a collective under data parallelism
    if files is None:
        return 0
    files.write_results(results)
    test = results.get("test")
    if test:
        printer(f"test: top-1 {test['top1']:.2%}  top-5 {test['top5']:.2%}  loss {test['loss']:.4f}  "
                f"({test['images']:,} images{', EMA weights' if trainer.ema else ''})")
    printer(f"results in {run_dir}/results.json; weights in {run_dir}/checkpoint.pt")
    return 0


def final_results(trainer, plan: Plan, meta) -> dict:
    history = trainer.history
    out = {
        "data": trainer.dataset.spec, **meta,
        "epochs": trainer.epoch, "steps": trainer.step,
        "processes": trainer.world_size, "global_batch": trainer.global_batch,
        "params": plan.params, "mult_adds": plan.mult_adds,
        "wall_seconds": history[-1]["wall_seconds"] if history else 0.0,
        "best": trainer.best,
        "ema": trainer.ema is not None,
    }
    last = history[-1] if history else {}
    for split in ("val", "test"):
        images = len(trainer.data[split][1])
        if not images:
            continue
        if split == "val" and last.get("epoch") == trainer.epoch and last.get("val_top1") is not None:
            # the last epoch has just scored this model on the validation split: reuse it
            out[split] = {"loss": last["val_loss"], "top1": last["val_top1"], "top5": last["val_top5"],
                          "images": images}
        else:
            out[split] = trainer.evaluate(split)
    return out


def _printer(progress: bool):
    if progress:
        from tqdm import tqdm

        return lambda msg: tqdm.write(msg)
    return lambda msg: print(msg, flush=True)
