"""Pieces the benchmarks share: the machine they ran on, device synchronisation, synthetic data of a
child's shape, the bf16 matrix-multiply rate, atomic JSON output, subprocesses a timeout kills whole.

Every script in bench/ puts the repository's src/ first on sys.path, so it measures this checkout
(not an installed nasnet) whether or not PYTHONPATH is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasnet.data import Dataset, Split  # noqa: E402

# the child shapes the training benchmarks use: NASNet-A, N = 2, F0 as given, batch 128
SHAPES = {
    "digits": dict(channels=1, size=8, filters=16),
    "cifar": dict(channels=3, size=32, filters=32),
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _nvidia_driver() -> str | None:
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None


def machine_info(device: torch.device | str | None = None) -> dict:
    """What the numbers were measured on: CPU, torch and, on CUDA, the GPU, CUDA, cuDNN and NCCL."""
    info = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda}
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_count=torch.cuda.device_count(),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_multiprocessors=props.multi_processor_count,
                    gpu_capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
                    nvidia_driver=_nvidia_driver())
        with contextlib.suppress(Exception):
            info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    return info


def describe(info: dict) -> str:
    """One line for a log."""
    text = (f"{info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']} with "
            f"{info['torch_threads']} threads")
    if info.get("gpu"):
        text += f"; GPU {info['gpu']} ({info['gpu_memory_gib']} GiB), CUDA {info['cuda']}, cuDNN {info['cudnn']}"
    if info.get("load_average_at_start"):
        text += f"; load average {info['load_average_at_start'][0]:.1f}"
    return text


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def synthetic(channels: int, size: int, n_train: int, n_val: int = 0, classes: int = 10, n_test: int = 0,
              seed: int = 0) -> Dataset:
    """Random uint8 images and labels of the given shape, held in memory like any loaded dataset."""
    rng = np.random.default_rng(seed)

    def split(n):
        return Split(rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8), rng.integers(0, classes, n))

    return Dataset(f"synthetic-{channels}x{size}", "npz", {"train": split(n_train), "val": split(n_val),
                                                           "test": split(n_test)}, classes)


def bf16_matmul_tflops(device: torch.device | str, n: int = 8192, repeats: int = 10) -> float:
    """The bf16 matrix-multiply rate of `device` on random n x n x n products (TFLOP/s, mean of
    `repeats` after 3 warm-ups): the peak the training benchmarks' shares are taken of."""
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, torch.bfloat16)
    b = torch.randn(n, n, generator=g).to(device, torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def write_json(path: str | Path, payload: dict) -> None:
    """Write `payload` to `path` atomically (a reader never sees half a file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(out)


def child_trainer(device: str, batch: int, steps: int, *, n_val: int = 0, normal_cells: int = 2, filters: int = 32,
                  channels: int = 3, size: int = 32, seed: int = 0, **train: object):
    """A `Trainer` for a search child (NASNet-A on the CIFAR skeleton, the child recipe) on synthetic
    data of `steps` batches per epoch; `train` overrides TrainConfig fields (precision, channels_last,
    compile, epochs, sync_bn, ...)."""
    from nasnet.model.network import ModelConfig
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    dataset = synthetic(channels, size, batch * steps, n_val=n_val, seed=seed)
    cfg = preset("child", batch_size=batch, device=device, **train)
    model = model_config_for(ModelConfig(normal_cells=normal_cells, filters=filters), cfg, dataset)
    return Trainer(model, cfg, dataset)


def eval_images_per_second(trainer, batch: int) -> float:
    """Evaluation throughput of a trainer's model on its validation split (after one untimed pass)."""
    from nasnet.train.evaluate import evaluate_model

    x, y = trainer.data["val"]
    args = (trainer.model, x, y, trainer.augment, batch, trainer.device, trainer.bf16, trainer.channels_last)
    evaluate_model(*args)
    sync(trainer.device)
    start = time.perf_counter()
    evaluate_model(*args)
    sync(trainer.device)
    return len(y) / (time.perf_counter() - start)


def model_step(model: torch.nn.Module, x: torch.Tensor, *, train: bool, bf16: bool = False):
    """One step of a model benchmark as a callable: eval-mode forward without gradients, or a
    train-mode forward and the backward of the summed logits (gradients dropped after each step);
    `bf16` runs the forward under bf16 autocast on x's device."""
    model.train(train)

    def autocast():
        return torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        if not train:
            with torch.no_grad(), autocast():
                return model(x)
        with autocast():
            out = model(x)
        out.float().sum().backward()
        for p in model.parameters():
            p.grad = None

    return step


# -- subprocesses ---------------------------------------------------------------------------------

def subprocess_env(threads: int | None = None) -> dict:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


RUNNING: set = set()      # the subprocesses running now (Popen), so a watchdog can stop them


def run_subprocess(cmd: list[str], timeout: float, threads: int | None = None) -> dict:
    """Run `cmd` with this checkout's src/ first on PYTHONPATH; returncode (None when it ran past
    `timeout` and was stopped), seconds, and the last lines of its output. It runs in a process group
    of its own, and a timeout kills the whole group: torchrun's workers and the search's worker
    processes go with it, and none is left holding the output pipes (or the GPU)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=subprocess_env(threads), start_new_session=True)
    RUNNING.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=max(1.0, timeout))
        code, text = proc.returncode, (stdout or "") + (stderr or "")
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        code, stdout = None, ""
        text = _text(out) + _text(err) + f"\n(stopped after {timeout:.0f} s)"
    finally:
        RUNNING.discard(proc)
    return {"returncode": code, "seconds": time.perf_counter() - start, "stdout": stdout or "",
            "tail": "\n".join(text.splitlines()[-60:])}


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL `proc`'s process group (it leads one: start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _text(out) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
