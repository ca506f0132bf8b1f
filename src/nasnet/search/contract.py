"""What crosses the executor boundary: a child's JSON payload in, its JSON result out, and how a job ended.

A child function ("module:function") takes a `ChildPayload` and returns a `ChildResult`; both are
plain JSON objects, so a trial can be re-run by hand from its stored payload and every executor
(this process, worker processes, Ray) is interchangeable. `check_payload` and `check_result` hold
them to these types where they cross (nasnet.search.executors.base.run_payload): a payload or a
result that breaks them ends that job as an error naming the key, never as a driver crash. An
executor reports each job as an `OutcomeKind`. Children add keys of their own (options in, metrics
out); those pass through unchecked and are stored with the result. Importing this does not import
torch. docs/search.md explains how the search uses them.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Required, TypedDict

from ..errors import NasnetError
from .records import Status


class OutcomeKind(str, Enum):
    """How a job ended. A str, so it compares equal to its JSON text ("result" == OutcomeKind.RESULT).

    RESULT: the child returned a result (done, diverged or failed by its own account); ERROR: it raised,
    broke the contract or hit its timeout (re-running would fail again: recorded); INFRA: the work was
    not done for reasons outside it (a dead worker or node, a lost result, out of memory: retried)."""

    RESULT = "result"
    ERROR = "error"
    INFRA = "infra"

    def __str__(self) -> str:
        return self.value


class ChildPayload(TypedDict, total=False):
    """A child's input: fn always (an executor runs any function this way); every payload the search
    makes (nasnet.search.payloads) also carries the genotype, model, train, data and seed."""

    fn: Required[str]          # "module:function": the child to run
    genotype: str | dict       # the architecture's text form (or its JSON object)
    model: dict[str, Any]      # network field overrides on top of the child's defaults
    train: dict[str, Any]      # training field overrides on top of the child's preset
    data: str                  # a --data spec
    seed: int                  # initialisation, data order, augmentation
    device: str                # "auto" | "cpu" | "cuda"
    test: bool                 # also score on the data's test split (test_accuracy); no selection reads it
    rung_epochs: int           # ASHA: train to this epoch of the schedule (which spans train.epochs), report
    checkpoint: str            # ASHA: continue from this file if it exists; write it, atomically, when done


class ChildResult(TypedDict, total=False):
    """A child's output. The search reads status, reward, error and epochs_completed (the objective
    also reads the cost key it is given); all of it is stored as the job's metrics for the report."""

    status: str                # "done" (the default) | "diverged" | "failed"
    reward: float | None       # what the search maximises (validation accuracy); None unless done
    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None  # on the test split, when the payload asked (reported, never selected on)
    loss_curve: list[float]    # mean training loss of every completed epoch
    params: int                # trainable parameters
    mult_adds: int             # multiply-accumulates per image
    wall_seconds: float
    images_per_second: float | None
    epochs_completed: int      # the search counts child-epochs from it
    resumed_from_epoch: int    # epochs a checkpoint held when the call started
    device: str
    error: str | None          # why the child diverged or failed


RESULT_STATUSES = (Status.DONE, Status.DIVERGED, Status.FAILED)

_PAYLOAD_TYPES: dict[str, tuple[type, ...]] = {"fn": (str,), "genotype": (str, dict), "model": (dict,),
                                               "train": (dict,), "data": (str,), "seed": (int,), "device": (str,),
                                               "test": (bool,), "rung_epochs": (int,), "checkpoint": (str,)}


def _kind(value: Any) -> str:
    return "a boolean" if isinstance(value, bool) else type(value).__name__


def check_payload(payload: Any) -> ChildPayload:
    """`payload` as a ChildPayload; NasnetError naming the first key of the wrong type (or missing)."""
    if not isinstance(payload, dict):
        raise NasnetError(f"child payload: must be a JSON object, got {_kind(payload)}")
    if "fn" not in payload:
        raise NasnetError("child payload: 'fn' is required")
    for key, types in _PAYLOAD_TYPES.items():
        value = payload.get(key)
        if key in payload and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            names = " or ".join("an integer" if t is int else "true or false" if t is bool else f"a {t.__name__}"
                                for t in types)
            raise NasnetError(f"child payload: {key!r} must be {names}, got {_kind(value)} {value!r:.60}")
    return payload  # type: ignore[return-value]


def result_status(result: ChildResult) -> Status:
    """The status a (checked) result reports: done unless it says otherwise."""
    return Status(result.get("status", Status.DONE.value))


def check_result(result: Any) -> ChildResult:
    """`result` as a ChildResult; NasnetError naming the first key the search reads that breaks the
    contract: the status is one of RESULT_STATUSES, the reward a number or null (a non-finite number
    arrives as null), the error text or null. Other keys are the child's own metrics, stored as given
    (the objective checks the cost key it reads when it reads it)."""
    if not isinstance(result, dict):
        raise NasnetError(f"the child returned {_kind(result)}, not a JSON object")
    status = result.get("status", Status.DONE.value)
    if status not in [s.value for s in RESULT_STATUSES]:
        raise NasnetError(f"the child's result: 'status' must be one of {', '.join(s.value for s in RESULT_STATUSES)}"
                          f", got {status!r:.60}")
    reward = result.get("reward")
    if reward is not None and (isinstance(reward, bool) or not isinstance(reward, (int, float))):
        raise NasnetError(f"the child's result: 'reward' must be a number or null, got {_kind(reward)} {reward!r:.60}")
    if result.get("error") is not None and not isinstance(result["error"], str):
        raise NasnetError(f"the child's result: 'error' must be text or null, got {_kind(result['error'])}")
    return result  # type: ignore[return-value]


def finite_or_none(x: Any) -> Any:
    """A JSON value with non-finite floats replaced by null (results must be strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_none(v) for v in x]
    return x
