"""Analytic child functions: rewards computed from the genotype alone, without training.

They follow the child contract (a JSON payload in, a JSON result out; see `nasnet.search.executors`)
and cost microseconds, so the search machinery — controller, strategies, work queue, store, resume,
executors — can be tested and benchmarked apart from child training.

`similarity_reward(genotype, target)` is the fraction of the target's 2 x 5B decisions that the
genotype repeats, position by position (input 1, input 2, op 1, op 2, combiner of every block of
both cells). It is maximal (1.0) exactly at the target's decisions and has a known expectation under
random search (`random_expectation`), so a strategy that learns must beat random search on it: a
cheap stand-in for "validation accuracy favours a known good cell" (the paper's Figure 6 setting).

`analytic_child` returns it as the reward; payload options: "target" (a genotype name, text or
file; default nasnet-a), "noise" (std of Gaussian noise added, seeded by the payload's seed and the
genotype, so one trial always gets the same value), "sleep" (seconds, to emulate training time).

It also emulates training in epochs, so ASHA's machinery can be tested in milliseconds: with
"epoch_scale" tau > 0 the reward is similarity x (1 - exp(-e / tau)) for e epochs trained (e =
the payload's "rung_epochs", else train.epochs), and the noise is drawn per (seed, genotype, e).
With "checkpoint" (a path, as ASHA payloads carry) it continues from the epochs recorded there,
sleeps "epoch_sleep" seconds per epoch it trains, writes the file atomically when done (a small
JSON record) and reports "resumed_from_epoch", as the training child does. It reports a cost proxy
without torch: "params" = the weights of the cells' ops at 32 channels (a k x k convolution 9 x
32^2 for k = 3, a separable one 2(k^2 32 + 32^2), pools and identity none) and "mult_adds" = those
on a 32 x 32 map (16 x 16 in the reduction cell).

`faulty_child` is the same child with injected faults, for exercising fault handling in tests and on
a new cluster: per architecture (decided by a hash of the genotype, so deterministic) it raises with
probability "fault_raise", raises MemoryError with "fault_oom", reports a NaN loss (status
"diverged") with "fault_nan", hangs for "hang_seconds" (default an hour) with "fault_hang", and
SIGKILLs its own worker process the first time it meets an architecture with probability
"fault_kill" (a marker file in "fault_dir" remembers it). With
"executions_log" set it appends one JSON line per execution (genotype, pid, time).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from ...arch.genotype import Genotype
from ...atomic import write_text
from ...seeding import derive_seed

# Weights of each op at C channels, in units of (C^2, C): the analytic child's cost proxy.
_OP_WEIGHTS = {"identity": (0, 0), "avg_pool_3x3": (0, 0), "max_pool_3x3": (0, 0), "max_pool_5x5": (0, 0),
               "max_pool_7x7": (0, 0), "conv_1x1": (1, 0), "conv_3x3": (9, 0), "conv_1x3_3x1": (6, 0),
               "conv_1x7_7x1": (14, 0), "sep_conv_3x3": (2, 18), "sep_conv_5x5": (2, 50), "sep_conv_7x7": (2, 98),
               "dil_conv_3x3": (1, 9)}


def _fields(g: Genotype) -> list:
    return [f for _, cell in g.cells for b in cell.blocks for f in (b.input1, b.input2, b.op1, b.op2, b.combiner)]


def similarity_reward(genotype: Genotype, target: Genotype) -> float:
    """Fraction of the target's decisions repeated at the same position (0..1)."""
    a, b = _fields(genotype), _fields(target)
    if len(a) != len(b):
        raise ValueError(f"similarity: the genotype has {len(a)} decisions, the target {len(b)}")
    return sum(x == y for x, y in zip(a, b)) / len(b)


def random_expectation(space, target: Genotype) -> float:
    """Expected similarity of a uniformly random architecture to the target (each decision 1/size)."""
    wanted = space.encode(target)
    return sum(1.0 / n for n, _ in zip(space.decision_sizes(), wanted)) / len(wanted)


def _unit(genotype_text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}|{genotype_text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def cost_proxy(genotype: Genotype, channels: int = 32, size: int = 32) -> tuple[int, int]:
    """(params, mult_adds) of the cells' ops at `channels` channels (see the module doc)."""
    params, mult_adds = 0, 0
    for (_, cell), area in zip(genotype.cells, (size * size, size * size // 4)):
        cell_params = sum(a * channels * channels + b * channels for blk in cell.blocks
                          for a, b in map(_OP_WEIGHTS.__getitem__, blk.ops))
        params += cell_params
        mult_adds += cell_params * area
    return params, mult_adds


def _continue(payload: dict[str, Any], text: str, target: int) -> int:
    """Emulated checkpoint: the epochs already trained (0 without one); then the record of `target` is written."""
    path = Path(payload["checkpoint"])
    done = 0
    if path.is_file():
        state = json.loads(path.read_text())
        if state.get("genotype") != text:
            raise ValueError(f"{path} holds another architecture's checkpoint")
        done = int(state["epochs"])
        if done > target:
            raise ValueError(f"{path} is at epoch {done}, past the rung's {target}")
    if payload.get("epoch_sleep"):
        time.sleep(float(payload["epoch_sleep"]) * (target - done))
    write_text(path, json.dumps({"genotype": text, "seed": payload.get("seed"), "epochs": target}))
    return done


def _evaluate(payload: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    genotype = Genotype.load(payload["genotype"])
    text = str(genotype)
    target = Genotype.load(payload.get("target", "nasnet-a"))
    epochs = int(payload.get("rung_epochs") or payload.get("train", {}).get("epochs", 1))
    resumed = _continue(payload, text, epochs) if payload.get("checkpoint") else 0
    reward = similarity_reward(genotype, target)
    scale = float(payload.get("epoch_scale", 0.0))
    if scale > 0:
        reward *= 1.0 - math.exp(-epochs / scale)
    noise = float(payload.get("noise", 0.0))
    if noise:
        parts = (text, epochs) if "rung_epochs" in payload or scale > 0 else (text,)
        rng = random.Random(derive_seed(int(payload.get("seed", 0)), *parts))
        reward += rng.gauss(0.0, noise)
    if payload.get("sleep"):
        time.sleep(float(payload["sleep"]))
    params, mult_adds = cost_proxy(genotype)
    return {
        "status": "done", "reward": reward, "val_accuracy": reward, "val_loss": 1.0 - reward,
        "loss_curve": [1.0 - reward] * (epochs - resumed), "params": params, "mult_adds": mult_adds,
        "wall_seconds": time.perf_counter() - start, "images_per_second": None,
        "epochs_completed": epochs, "resumed_from_epoch": resumed, "error": None,
    }


def analytic_child(payload: dict[str, Any]) -> dict[str, Any]:
    """Reward = similarity to the target genotype (plus optional noise); see the module doc."""
    return _evaluate(payload)


def faulty_child(payload: dict[str, Any]) -> dict[str, Any]:
    """`analytic_child` with deterministic injected faults; see the module doc."""
    text = str(Genotype.load(payload["genotype"]))
    if payload.get("executions_log"):
        line = json.dumps({"genotype": text, "pid": os.getpid(), "time": time.time()}) + "\n"
        fd = os.open(payload["executions_log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    if _unit(text, "kill") < float(payload.get("fault_kill", 0.0)):
        marker = Path(payload["fault_dir"]) / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".killed")
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(text)
            os.kill(os.getpid(), signal.SIGKILL)
    if _unit(text, "hang") < float(payload.get("fault_hang", 0.0)):
        time.sleep(float(payload.get("hang_seconds", 3600.0)))
    if _unit(text, "raise") < float(payload.get("fault_raise", 0.0)):
        raise RuntimeError("injected fault: the child raised")
    if _unit(text, "oom") < float(payload.get("fault_oom", 0.0)):
        raise MemoryError("injected fault: out of memory")
    result = _evaluate(payload)
    if _unit(text, "nan") < float(payload.get("fault_nan", 0.0)):
        result.update(status="diverged", reward=None, val_accuracy=None, val_loss=math.nan,
                      error="loss became nan (injected fault)", epochs_completed=0)
    return result
