"""The GPU suite's measurements (bench/gpu_suite.py): what one search child costs, what packing
several children on one GPU gains, and model speed against timm's NASNet-A Large.

Ratios are taken against a baseline measured in the same run on the same machine; every row
states its batch, precision and layout. The share of the bf16 peak divides the training FLOPs
(6 x the model's conv and linear multiply-accumulates per image: forward 2, backward 4) by the
bf16 matrix-multiply rate measured at the start of the same run.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import traceback
from pathlib import Path

import common
import torch

from nasnet.model.counting import count
from nasnet.model.network import NASNet
from nasnet.train.device import cudnn_autotune
from nasnet.zoo import model_config

# the paper's search child (A.6): 45,000 training images, batch 128, 20 epochs, one validation pass
PAPER_CHILD = {"train_images": 45_000, "val_images": 5_000, "epochs": 20, "batch": 128}

CHILD_VARIANTS = {
    "eager fp32": dict(precision="fp32", channels_last=False),
    "bf16 + channels_last": dict(precision="bf16", channels_last=True),
    "+ torch.compile": dict(precision="bf16", channels_last=True, compile=True),
    "+ CUDA graphs": dict(precision="bf16", channels_last=True, compile="reduce-overhead"),
}
TIMM_LARGE = "timm nasnetalarge"


def training_tflops(images_per_second: float, mult_adds: int) -> float:
    return images_per_second * 6 * mult_adds / 1e12


# -- the search child -----------------------------------------------------------------------------

def time_child(device: str, variant: str, sizes: dict, peak_tflops: float) -> dict:
    """One child-training variant: a warm-up epoch (compilation included), then the median of the
    timed epochs, extrapolated to the paper's child (20 epochs of 45,000 images + 5,000 validated)."""
    settings = CHILD_VARIANTS[variant]
    trainer = common.child_trainer(device, sizes["batch"], sizes["steps"], n_val=sizes["n_val"],
                                   normal_cells=sizes["normal_cells"], filters=sizes["filters"], epochs=1000,
                                   **settings)
    start = time.perf_counter()
    trainer.train_epoch(0)
    common.sync(trainer.device)
    first = time.perf_counter() - start
    times = []
    for epoch in range(1, sizes["timed_epochs"] + 1):
        common.sync(trainer.device)
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        common.sync(trainer.device)
        times.append(time.perf_counter() - start)
    epoch_s = statistics.median(times)
    step_s = epoch_s / trainer.steps_per_epoch
    ips = sizes["batch"] / step_s
    eval_ips = common.eval_images_per_second(trainer, trainer.cfg.eval_batch_size)
    paper_steps = PAPER_CHILD["train_images"] // PAPER_CHILD["batch"]
    child_s = PAPER_CHILD["epochs"] * paper_steps * step_s + PAPER_CHILD["val_images"] / eval_ips
    mult_adds = count(trainer.model_config).mult_adds
    achieved = training_tflops(ips, mult_adds)
    row = {"variant": variant, "settings": {k: v for k, v in settings.items()}, "batch": sizes["batch"],
           "precision": "bf16 autocast" if trainer.bf16 else "fp32", "channels_last": trainer.channels_last,
           "steps_timed": trainer.steps_per_epoch * len(times), "step_ms": step_s * 1e3,
           "images_per_second": ips, "eval_images_per_second": eval_ips,
           "epoch_seconds_paper": paper_steps * step_s, "child_seconds_paper": child_s,
           "mult_adds_per_image": mult_adds, "training_tflops": achieved,
           "share_of_bf16_peak": achieved / peak_tflops if peak_tflops else None,
           "first_epoch_seconds": first}
    if settings.get("compile"):
        row["compile_seconds"] = max(0.0, first - epoch_s)   # the first epoch's extra time
        row["cuda_graphs"] = trainer.mark_steps
        row["dynamo"] = _dynamo_counters()
    return row


def _dynamo_counters() -> dict:
    """torch.compile's own counts of graph breaks and skipped CUDA graphs, where it keeps them."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    keep = {}
    for group in ("graph_break", "inductor", "stats"):
        for key, value in counters.get(group, {}).items():
            if group == "graph_break" or "cudagraph" in key or key in ("unique_graphs", "calls_captured"):
                keep[f"{group}: {str(key)[:120]}"] = value
    return keep


# -- packing: several children at once on one GPU, as the search's process executor runs them ----

def packing_child(payload: dict) -> dict:
    """A child function for the process executor (fn "gpu_speed:packing_child"): build the child,
    warm up, wait until all `k` children are ready, then train for `window_s` seconds."""
    trainer = common.child_trainer(payload["device"], payload["batch"], payload["steps"],
                                   normal_cells=payload["normal_cells"], filters=payload["filters"], epochs=100_000)
    trainer.train_epoch(0)
    common.sync(trainer.device)
    barrier = Path(payload["barrier"])
    (barrier / f"ready-{payload['index']}").touch()
    give_up = time.time() + payload.get("barrier_timeout", 300)
    while len(list(barrier.glob("ready-*"))) < payload["k"]:
        if time.time() > give_up:
            raise RuntimeError(f"only {len(list(barrier.glob('ready-*')))} of {payload['k']} children got ready")
        time.sleep(0.01)
    start = time.perf_counter()
    images, epoch = 0, 1
    while True:
        images += trainer.train_epoch(epoch)["images"]
        common.sync(trainer.device)
        epoch += 1
        elapsed = time.perf_counter() - start
        if elapsed >= payload["window_s"]:
            break
    return {"images": images, "seconds": elapsed, "images_per_second": images / elapsed,
            "device": str(trainer.device), "precision": "bf16 autocast" if trainer.bf16 else "fp32",
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": torch.get_num_threads()}


def measure_packing(device: str, sizes: dict, workdir: Path, deadline: float) -> dict:
    """1, 2, 4, ... children trained at once, each in a worker process of the search's process
    executor (on CUDA all on the one GPU: `gpus_per_child` = 1 / the most children at once). The
    workers are reused from one row to the next, so each row times training, not process start-up."""
    from nasnet.search.executors.process import ProcessExecutor

    most = max(sizes["children"])
    cores = os.cpu_count() or 1
    executor = ProcessExecutor(workers=most, cpus_per_child=max(1, cores // most),
                               gpus_per_child=1 / most if device.startswith("cuda") else 0.0)
    rows = []
    try:
        for k in sizes["children"]:
            left = deadline - time.time()
            if left < sizes["min_seconds"]:
                rows.append({"children": k, "skipped": f"time budget ({left:.0f} s left)"})
                continue
            rows.append(guarded({"children": k}, _pack, executor, device, k, sizes, workdir / f"packing-{k}",
                                deadline))
    finally:
        executor.close()
    ok = [r for r in rows if "images_per_second" in r]
    base = next((r["images_per_second"] for r in ok if r["children"] == 1), None)
    paper_images = PAPER_CHILD["epochs"] * (PAPER_CHILD["train_images"] // PAPER_CHILD["batch"]) * PAPER_CHILD["batch"]
    for r in ok:
        r["gpu_seconds_per_child"] = paper_images / r["images_per_second"]
        r["children_per_hour"] = 3600 / r["gpu_seconds_per_child"]
        r["gain_vs_one"] = r["images_per_second"] / base if base else None
    best = max(ok, key=lambda r: r["images_per_second"], default=None)
    return {"rows": rows, "window_s": sizes["window_s"], "batch": sizes["batch"],
            "child": {"normal_cells": sizes["normal_cells"], "filters": sizes["filters"]},
            "threads_per_child": executor.threads,
            "best": best and {"children": best["children"], "children_per_hour": best["children_per_hour"],
                              "gpu_seconds_per_child": best["gpu_seconds_per_child"],
                              "gain_vs_one": best["gain_vs_one"]},
            "idle_share_of_one_child": (1 - base / best["images_per_second"]) if best and base else None,
            "note": "children per hour count training only (20 epochs of 45,000 images); the validation pass "
                    "adds about 1% (see child_cost)"}


def _pack(executor, device: str, k: int, sizes: dict, barrier: Path, deadline: float) -> dict:
    barrier.mkdir(parents=True, exist_ok=True)
    for i in range(k):
        executor.submit(i, {"fn": "gpu_speed:packing_child", "device": device, "k": k, "index": i,
                            "barrier": str(barrier), "window_s": sizes["window_s"], "batch": sizes["batch"],
                            "steps": sizes["steps"], "normal_cells": sizes["normal_cells"],
                            "filters": sizes["filters"], "barrier_timeout": max(30.0, deadline - time.time())})
    outcomes = []
    while len(outcomes) < k and time.time() < deadline:
        outcomes += executor.wait(timeout=1.0)
    failed = [o.error for o in outcomes if o.kind != "result"]
    if failed or len(outcomes) < k:
        executor.cancel_all()
        return {"children": k, "error": (failed or ["time budget reached"])[0][:2000]}
    results = [o.result for o in outcomes]
    return {"children": k, "images_per_second": sum(r["images_per_second"] for r in results),
            "per_child_images_per_second": [r["images_per_second"] for r in results],
            "devices": sorted({f"{r['device']} (CUDA_VISIBLE_DEVICES={r['cuda_visible_devices']})" for r in results}),
            "precision": results[0]["precision"]}


# -- model speed ----------------------------------------------------------------------------------

def build_model(name: str, overrides: dict) -> tuple[torch.nn.Module, int]:
    """(model, image size): a zoo model (random weights) or timm's nasnetalarge."""
    if name == TIMM_LARGE:
        import timm

        return timm.create_model("nasnetalarge", pretrained=False, num_classes=1000), 331
    cfg = model_config(name, **overrides)
    return NASNet(cfg), cfg.image_size


def compile_regions(model: torch.nn.Module, **kwargs) -> int:
    """torch.compile every cell in place (regional compilation): cells of the same structure and
    shapes share one compiled graph, so a 20-cell network compiles a handful of graphs."""
    regions = list(model.cells) if isinstance(model, NASNet) else [
        m for m in model.children() if "Cell" in type(m).__name__]   # timm: CellStem0/1, FirstCell, NormalCell, ...
    for m in regions:   # static shapes: a cell of another shape gets its own graph, not a symbolic one
        m.compile(**{"dynamic": False, **kwargs})
    return len(regions)


def raise_recompile_limits() -> None:
    """Regional compilation compiles one code object (a cell's forward) for many shapes."""
    import torch._dynamo.config as dynamo_config

    for name, value in (("recompile_limit", 64), ("cache_size_limit", 64), ("accumulated_recompile_limit", 1024),
                        ("accumulated_cache_size_limit", 1024)):
        if hasattr(dynamo_config, name):
            with contextlib.suppress(Exception):
                setattr(dynamo_config, name, value)


def speed_row(name: str, overrides: dict, mode: str, precision: str, compiled: bool, batch: int, device: str,
              warmup: int, repeats: int, compile_kwargs: dict | None = None) -> dict:
    """Images/s of one model in one setting: fp32 NCHW or bf16 autocast + channels_last; eager or
    with every cell compiled; inference (eval, no grad) or training (forward + backward)."""
    dev = torch.device(device)
    model, size = build_model(name, overrides)
    bf16 = precision == "bf16"
    model = model.to(dev)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g).to(dev)
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    row = {"model": name, "mode": mode, "precision": "bf16 autocast" if bf16 else "fp32",
           "layout": "channels_last" if bf16 else "NCHW", "compiled": compiled, "batch": batch, "image_size": size,
           "cudnn_benchmark": dev.type == "cuda"}
    if compiled:
        row["regions"] = compile_regions(model, **(compile_kwargs or {}))
    step = common.model_step(model, x, train=mode == "training", bf16=bf16)
    with cudnn_autotune(dev):       # as training runs: cuDNN's autotuner on, for this row only
        row.update(_time_steps(step, dev, warmup, repeats, batch, compiled))
    if name != TIMM_LARGE:
        row["mult_adds_per_image"] = count(model_config(name, **overrides)).mult_adds
    del model, x, step
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _time_steps(step, dev: torch.device, warmup: int, repeats: int, batch: int, compiled: bool) -> dict:
    start = time.perf_counter()
    step()
    common.sync(dev)
    first = time.perf_counter() - start
    for _ in range(warmup):
        step()
    common.sync(dev)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    common.sync(dev)
    seconds = (time.perf_counter() - start) / repeats
    row = {"images_per_second": batch / seconds, "step_ms": seconds * 1e3, "repeats": repeats, "warmup": warmup}
    if compiled:
        row["compile_seconds"] = max(0.0, first - seconds)
    return row


def guarded(row: dict, fn, *args, **kwargs) -> dict:
    """`row` updated with what `fn(*args, **kwargs)` measures, or with the error it raised (the type,
    the message and the last lines of the traceback): one row that fails does not stop the others.
    On CUDA the cache is emptied after a failure (an out-of-memory row leaves its blocks behind)."""
    try:
        return {**row, **fn(*args, **kwargs)}
    except Exception as err:  # noqa: BLE001 - recorded in the row, which the suite reports as an error
        tail = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-3:])
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return {**row, "error": f"{type(err).__name__}: {err}"[:1000], "traceback": tail[-2000:]}


def timm_available() -> str | None:
    """None when timm's nasnetalarge can be built here, else why not (missing, or failing to import:
    timm needs torchvision, which must match the torch installed)."""
    try:
        import timm
    except ImportError as err:
        return f"timm is not installed here ({type(err).__name__}: {err})"[:200]
    except Exception as err:  # noqa: BLE001 - a broken optional package is a skip with its reason
        return f"timm cannot be imported here ({type(err).__name__}: {err})"[:200]
    if "nasnetalarge" not in timm.list_models("nasnetalarge"):
        return f"timm {timm.__version__} has no nasnetalarge"
    return None


def summarize_speed(rows: list[dict]) -> dict:
    """Ours against timm's Large: in every setting (mode, precision, eager or compiled) both measured,
    and each at its best over those common settings only, so a compiled row of ours is never set
    against an eager one of timm's whose compiled row failed or did not fit (and the other way
    round). `best` also lists each model's fastest row of each mode, whatever the other measured."""
    key = lambda r: (r["mode"], r["precision"], r["compiled"])  # noqa: E731
    done = [r for r in rows if "images_per_second" in r]
    ours = {key(r): r for r in done if r["model"] == "nasnet_a_large"}
    theirs = {key(r): r for r in done if r["model"] == TIMM_LARGE}
    out: dict = {"same_setting": [], "best": {}, "compared_settings": {}}
    for k in sorted(set(ours) & set(theirs)):
        out["same_setting"].append({"mode": k[0], "precision": k[1], "compiled": k[2],
                                    "ratio_vs_timm": ours[k]["images_per_second"] / theirs[k]["images_per_second"]})
    for model in sorted({r["model"] for r in done}):
        for mode in ("inference", "training"):
            mine = [r for r in done if r["model"] == model and r["mode"] == mode]
            if mine:
                b = max(mine, key=lambda r: r["images_per_second"])
                out["best"][f"{model} {mode}"] = {"images_per_second": b["images_per_second"],
                                                  "precision": b["precision"], "compiled": b["compiled"]}
    for mode in ("inference", "training"):
        common_keys = [k for k in set(ours) & set(theirs) if k[0] == mode]
        if common_keys:
            a = max((ours[k] for k in common_keys), key=lambda r: r["images_per_second"])
            b = max((theirs[k] for k in common_keys), key=lambda r: r["images_per_second"])
            ratio = a["images_per_second"] / b["images_per_second"]
            out["best"][f"large {mode}: ours / timm, each at its best"] = ratio
            out["compared_settings"][mode] = [{"precision": k[1], "compiled": k[2]} for k in sorted(common_keys)]
    return out
