"""The JSON payloads the search hands its children, and the seeds in them (paper §3, A.3).

    child_payload(config, genotype, trial_id, run_dir)             a trial's first job (ASHA: its first rung)
    promotion_payload(config, first, trial_id, rung, run_dir)      an ASHA promotion: continue to rung `rung`
    final_payload(config, first, trial_id, repeat)                 a top-k retraining with a fresh seed
    with_checkpoint(payload, trial_id, run_dir)                    a stored ASHA payload, pointed at this run

Each returns a `ChildPayload` (nasnet.search.contract says what every key means); `first` is the
payload of the trial's first job. The payload is stored with its job, so any trial can be re-run by
hand; docs/search.md says how the seeds and the ASHA keys are used. Importing this does not import torch.
"""

from __future__ import annotations

from pathlib import Path

from ..seeding import CHILD, FINAL, derive_seed
from .config import SearchConfig
from .contract import ChildPayload
from .run_dir import trial_checkpoint

ASHA_KEYS = ("rung_epochs", "checkpoint")


def trial_seed(seed: int, trial_id: int) -> int:
    """The seed of trial `trial_id`'s child (31 bits: any child function can take it)."""
    return derive_seed(seed, trial_id, CHILD, bits=31)


def final_seed(seed: int, trial_id: int, repeat: int = 0) -> int:
    """The seed of retraining `repeat` of trial `trial_id` in the top-k stage: never a search child's seed."""
    return derive_seed(seed, trial_id, repeat, FINAL, bits=31)


def child_payload(config: SearchConfig, genotype: str, trial_id: int, run_dir: str | Path | None = None
                  ) -> ChildPayload:
    """The payload of trial `trial_id`'s first job: the config's child settings, the trial's seed, and with
    ASHA the first rung and the trial's checkpoint in `run_dir`."""
    c = config.child
    payload: ChildPayload = {**c.options, "fn": c.fn, "genotype": genotype, "model": dict(c.model),
                             "train": dict(c.train), "data": c.data, "seed": trial_seed(config.seed, trial_id)}
    if c.device:
        payload["device"] = c.device
    asha = config.early_stop
    if asha.active:
        payload["train"]["epochs"] = asha.rungs[-1]        # the schedule spans the last rung
        payload["rung_epochs"] = asha.rungs[0]
        payload["checkpoint"] = str(trial_checkpoint(Path(run_dir or "."), trial_id))
    return payload


def promotion_payload(config: SearchConfig, first: ChildPayload, trial_id: int, rung: int,
                      run_dir: str | Path) -> ChildPayload:
    """The payload continuing an ASHA trial (whose first job had payload `first`) to rung `rung`."""
    return {**first, "rung_epochs": config.early_stop.rungs[rung],
            "checkpoint": str(trial_checkpoint(Path(run_dir), trial_id))}


def with_checkpoint(payload: ChildPayload, trial_id: int, run_dir: str | Path) -> ChildPayload:
    """An ASHA payload pointing at this run directory's checkpoint (the directory may have moved since)."""
    if "checkpoint" not in payload:
        return payload
    return {**payload, "checkpoint": str(trial_checkpoint(Path(run_dir), trial_id))}


def final_payload(config: SearchConfig, first: ChildPayload, trial_id: int, repeat: int = 0) -> ChildPayload:
    """A top-k retraining of the trial whose first job had payload `first`: a fresh seed, the final budget
    (the config's final_epochs, final_normal_cells, final_filters), trained straight through."""
    payload = {k: v for k, v in first.items() if k not in ASHA_KEYS}
    payload["seed"] = final_seed(config.seed, trial_id, repeat)
    train, model = dict(payload.get("train") or {}), dict(payload.get("model") or {})
    if config.final_epochs:
        train["epochs"] = config.final_epochs
    if config.final_normal_cells:
        model["normal_cells"] = config.final_normal_cells
    if config.final_filters:
        model["filters"] = config.final_filters
    payload["train"], payload["model"] = train, model
    return payload
