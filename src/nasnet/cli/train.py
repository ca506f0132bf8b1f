"""`nasnet train`: train a zoo model, or any genotype at any skeleton and N @ F, on any dataset
(paper A.6, A.7); docs/training.md is its manual.

The flags resolve to a `RunConfig` (`nasnet.train.config.resolve`: the recipe, the flags over it,
the data's classes, channels and image size) that runs as a `nasnet.train.job.TrainJob` in RUN_DIR;
`--resume` continues a run. `--nproc K` starts K data-parallel processes through torchrun
(_train_launch); under torchrun each process runs `nasnet.train.job.run_worker`. The library's
messages name fields; they reach the user naming flags (_train_flags).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..arch.genotype import NAMED_GENOTYPES
from ..errors import NasnetError
from ..registry import names_of
from ._parse import add_data_flag, count, split_sets
from ._train_launch import launch_processes
from ._train_flags import flag_words, stderr_lines

COMMAND = "train"
HELP = "train a NASNet model (zoo name or genotype) on digits, CIFAR, an image folder or arrays"
ORDER = 30

# flags that change the configuration (refused with --resume: a resumed run keeps its own)
_CONFIG_FLAGS = ("data", "model", "genotype", "normal_cells", "filters", "penultimate", "skeleton", "preset", "epochs",
                 "batch_size", "lr", "image_size", "seed", "set", "compile")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_flag(p, "the data (default digits)", default=None)
    m = p.add_argument_group("model")
    m.add_argument("--model", default=None, metavar="NAME", help="a zoo model (see `nasnet zoo`)")
    m.add_argument("--genotype", default=None, metavar="G",
                   help=f"a name ({', '.join(NAMED_GENOTYPES)}), a genotype text, or a file holding one")
    m.add_argument("-N", "--N", "--normal-cells", dest="normal_cells", type=count(), default=None, metavar="N",
                   help="normal cells per stage (the N of the paper's 'N @ F')")
    m.add_argument("--F0", "--filters", dest="filters", type=count(), default=None, metavar="F0",
                   help="first-stage filters per branch")
    m.add_argument("--F", "--penultimate-filters", dest="penultimate", type=count(), default=None, metavar="F",
                   help="width of the penultimate layer (the F of 'N @ F'; 24 x F0 for NASNet-A)")
    m.add_argument("--skeleton", choices=names_of("nasnet.model.network:SKELETONS"), default=None, metavar="SKELETON",
                   help="%(choices)s (default: the dataset's)")
    t = p.add_argument_group("training")
    t.add_argument("--preset", default=None, choices=names_of("nasnet.train.config:PRESETS"), metavar="PRESET",
                   help="the recipe: %(choices)s (default: the dataset's)")
    t.add_argument("--epochs", type=count(), default=None)
    t.add_argument("--batch-size", type=count(), default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--image-size", type=count(), default=None, help="training resolution (default: the stored size)")
    t.add_argument("--seed", type=count(-2**31, 2**31 - 1), default=None)
    t.add_argument("--set", action="append", default=None, metavar="FIELD=VALUE",
                   help="override any TrainConfig field, or a ModelConfig field as model.FIELD (repeatable)")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the training forward")
    r = p.add_argument_group("run")
    r.add_argument("--run-dir", default=None, metavar="DIR", help="where the run lives (default runs/train-TIME)")
    r.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    r.add_argument("--device", default=None, help="auto (default) | cpu | cuda")
    r.add_argument("--threads", type=count(), default=None, help="CPU threads for torch (default: torch's)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (epoch lines are still printed)")
    r.add_argument("--tensorboard", dest="tensorboard", action="store_true", default=True,
                   help="write TensorBoard events to RUN_DIR/tb when tensorboard is installed (default)")
    r.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    d = p.add_argument_group("data parallel (torchrun; see docs/training.md)")
    d.add_argument("--nproc", default=None, metavar="K",
                   help="train over K processes on this machine (one per GPU with CUDA, `gpu` = all GPUs; "
                        "gloo on CPU); --batch-size is per process")
    d.add_argument("--nnodes", default=None, metavar="N", help="machines in the job (N, or MIN:MAX); run the same "
                   "command on each, with --rdzv-endpoint")
    d.add_argument("--rdzv-endpoint", default=None, metavar="HOST:PORT",
                   help="rendezvous address every machine can reach (e.g. the first machine, port 29400)")
    d.add_argument("--rdzv-id", default=None, metavar="ID", help="job name, the same on every machine")
    d.add_argument("--max-restarts", type=count(0), default=None, metavar="M",
                   help="restart all processes up to M times after a failure; they resume from the last checkpoint")
    d.add_argument("--dist-timeout", type=float, default=None, metavar="S",
                   help="seconds a process waits for the others in a collective before failing (default 1800)")


INERT = [(f, lambda a: a.nproc is not None or {"RANK", "WORLD_SIZE"} <= set(os.environ),
          "without --nproc K or torchrun (data-parallel training)")
         for f in ("nnodes", "rdzv_endpoint", "rdzv_id", "max_restarts", "dist_timeout")]


def _run_dir(args) -> Path:
    if args.resume and not args.run_dir:
        raise NasnetError("--resume needs --run-dir DIR (the run to continue)")
    return Path(args.run_dir or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}").expanduser()


def _check_args(args, run_dir: Path) -> None:
    """Mistakes found without torch, reported at once (and before any process is started)."""
    from ..train.run_dir import check_new_run_dir

    if args.resume:
        given = [f"--{f.replace('_', '-')}" for f in _CONFIG_FLAGS if getattr(args, f, None) not in (None, False)]
        if given:
            raise NasnetError(f"--resume continues the run with its saved configuration; drop {', '.join(given)} "
                              "(start a new --run-dir to change it)")
        return
    split_sets(args.set, "--set")
    check_new_run_dir(run_dir)


def _prepare(args, ctx=None):
    """The job: a new run from the flags, or the saved one (--resume, or an elastic restart)."""
    from ..train.job import TrainJob, started_by_this_launch

    run_dir = _run_dir(args)
    if ctx is not None and not args.run_dir and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0:
        raise NasnetError("torchrun --max-restarts needs --run-dir DIR: a restarted run resumes from its directory")
    if not args.resume and started_by_this_launch(run_dir, ctx):
        return TrainJob.resume(run_dir, args.device, args.threads, note=f"restart {ctx.restart_count} of this "
                               "launch: resuming")
    _check_args(args, run_dir)
    if args.resume:
        return TrainJob.resume(run_dir, args.device, args.threads)
    return TrainJob.new(run_dir, resolve_args(args))


def resolve_args(args):
    """The flags of a new run -> its `RunConfig` (nasnet.train.config.resolve)."""
    from ..data import load_dataset
    from ..train.config import base_model, resolve

    dataset = load_dataset(args.data or "digits")
    train_over, model_over = split_sets(args.set, "--set")
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "image_size": args.image_size,
             "seed": args.seed, "device": args.device, "threads": args.threads, "compile": args.compile}
    train_over.update({k: v for k, v in flags.items() if v is not None})
    with flag_words(args):
        base, name = base_model(dataset, args.model, args.genotype, args.normal_cells, args.filters, args.penultimate,
                                args.skeleton, note=stderr_lines(args, "note: "))
        return resolve(dataset, args.preset, train_over, base, model_over, name)


def run(args: argparse.Namespace) -> int:
    with flag_words(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..train.launch import LAUNCH_ENV, under_torchrun

    run_kwargs = dict(log=_printer(not args.no_progress and sys.stderr.isatty()), tensorboard=args.tensorboard,
                      progress=not args.no_progress and sys.stderr.isatty())
    if under_torchrun():
        from ..train.distributed import DEFAULT_TIMEOUT_S
        from ..train.job import run_worker

        if args.nproc is not None and os.environ.get(LAUNCH_ENV) != "1":
            raise NasnetError("--nproc starts torchrun itself; under torchrun, drop it (torchrun's --nproc-per-node "
                              "sets the number of processes)")
        timeout = args.dist_timeout if args.dist_timeout is not None else DEFAULT_TIMEOUT_S
        say = stderr_lines(args, "nasnet train: ")
        return _interruptible(args, lambda: run_worker(lambda ctx: _prepare(args, ctx), timeout, say=say,
                                                       **run_kwargs))
    if args.nproc is not None:   # check what can be checked here, before any process starts
        run_dir = _run_dir(args)
        _check_args(args, run_dir)
        return launch_processes(args, run_dir)
    job = _prepare(args)

    def single() -> int:
        job.run(**run_kwargs)
        return 0

    return _interruptible(args, single)


def _interruptible(args, work) -> int:
    try:
        return work()
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            more = f" --nproc {os.environ['WORLD_SIZE']}" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
            print(f"stopped; continue with: nasnet train --run-dir {_run_dir(args)} --resume{more}", file=sys.stderr)
        raise


def _printer(progress: bool):
    if progress:
        from tqdm import tqdm

        return lambda msg: tqdm.write(msg)
    return lambda msg: print(msg, flush=True)
