"""The trial model: what a search's jobs are and what they came to, as values (paper §3, A.3).

A search has three kinds of job (`Stage`): a trial's first job, an ASHA promotion of it to a later
rung, and a retraining of its architecture in the top-k stage. Each is named by a `Job` and, when it
ends, comes to one `Result`, whatever its stage: that is what `TrialStore.finish` records. Read back,
a job is a `Record` (its status, attempts, times and result); `Trial`, `RungResult` and `FinalTrial`
add only what identifies their stage's job. Statuses are the `Status` enum, a str, so a record
compares equal to its stored text. The store (nasnet.search.store) is the only code that writes
them; docs/formats.md lists their columns. Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Mapping

from ..errors import NasnetError


class Status(str, Enum):
    """Where a job stands. A str, so it compares equal to its stored text ("done" == Status.DONE)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DIVERGED = "diverged"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({Status.DONE, Status.FAILED, Status.DIVERGED})


class Stage(str, Enum):
    """The search's first jobs, its ASHA promotions, or the top-k stage that retrains its best architectures."""

    SEARCH = "search"
    RUNG = "rung"
    FINAL = "final"


@dataclass(frozen=True)
class Job:
    """One unit of work, the key an executor hands back: a trial's first job (SEARCH), its promotion to
    rung `index` (RUNG), or its retraining number `index` in the top-k stage (FINAL; 0 = the top-k
    retraining, 1, 2, ... the pick's further seeds)."""

    stage: Stage
    trial_id: int
    index: int = 0

    def __str__(self) -> str:
        if self.stage is Stage.SEARCH:
            return f"trial {self.trial_id}"
        if self.stage is Stage.RUNG:
            return f"trial {self.trial_id} (rung {self.index})"
        return f"top-k: trial {self.trial_id}" + (f" (seed {self.index + 1})" if self.index else "")


@dataclass(frozen=True)
class Result:
    """What one job came to, in any stage: the one value `TrialStore.finish` records.

    status: terminal (done, failed, diverged); reward: the objective (None unless done); accuracy and
    cost: what the objective was computed from; metrics: the child's JSON result; error: the failure's
    text (with earlier attempts' errors in front); worker: where it ran ("cache": reused); started_at,
    finished_at: unix seconds. epochs: child-epochs behind a trial's first result (0 when reused; None:
    as queued). policy_reward: what the strategy is told (None: not told). cached_from: the trial whose
    result a repeated architecture reused (first jobs only).
    """

    status: Status
    reward: float | None = None
    accuracy: float | None = None
    cost: float | None = None
    metrics: dict | None = None
    error: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    epochs: int | None = None
    policy_reward: float | None = None
    cached_from: int | None = None


class DamagedStore(NasnetError):
    """Bytes of the store that no longer decode (a damaged file): one line, never a traceback."""


def decode_json(text: str | None) -> Any:
    """A JSON column's value; None for NULL or text that is not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class Record:
    """A job as the store holds it: where it stands (status, attempts, times) and, once it has ended,
    what it came to (`result`). Every record has a `trial_id` and a `key` (its Job). Columns an older
    schema lacks take the field's default."""

    stage: ClassVar[Stage]
    payload: dict | None = None
    status: Status = Status.QUEUED
    epochs: int | None = None
    reward: float | None = None
    accuracy: float | None = None
    cost: float | None = None
    policy_reward: float | None = None
    metrics: dict | None = None
    error: str | None = None
    worker: str | None = None
    attempts: int = 0
    result_seq: int | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **extra: Any):
        """A record from a row: JSON columns decoded, the status a Status, columns it does not know ignored;
        DamagedStore for a status no nasnet writes."""
        d = dict(row)
        for key in ("payload", "metrics"):
            if key in d:
                d[key] = decode_json(d[key])
        try:
            d["status"] = Status(d["status"])
        except ValueError:
            raise DamagedStore(f"a row has the unknown status {d['status']!r}") from None
        d.update(extra)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def index(self) -> int:
        """The job's index within its trial (a rung, a retraining's number); 0 for a first job."""
        return 0

    @property
    def key(self) -> Job:
        return Job(self.stage, self.trial_id, self.index)   # type: ignore[attr-defined] - each stage has one

    @property
    def result(self) -> Result:
        return Result(status=self.status, reward=self.reward, accuracy=self.accuracy, cost=self.cost,
                      metrics=self.metrics, error=self.error, worker=self.worker, started_at=self.started_at,
                      finished_at=self.finished_at, epochs=self.epochs, policy_reward=self.policy_reward,
                      cached_from=getattr(self, "cached_from", None))

    @property
    def seconds(self) -> float | None:
        """Wall time of the (last) execution: finished - started; None for reused or unfinished jobs."""
        if getattr(self, "cached_from", None) is not None or not self.finished_at or not self.started_at:
            return None
        s = self.finished_at - self.started_at
        return s if math.isfinite(s) and s >= 0 else None


@dataclass(frozen=True, kw_only=True)
class Trial(Record):
    """One sampled architecture (a row of `trials`): its first job, and the result at the highest rung
    it reached (`rung`, `epochs`; 0 and the first job's epochs without ASHA)."""

    stage: ClassVar[Stage] = Stage.SEARCH
    id: int
    genotype: str
    decisions: tuple[int, ...]
    log_prob: float | None = None
    entropy: float | None = None
    policy_version: int | None = None
    cached_from: int | None = None
    rung: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], **extra: Any) -> "Trial":
        decisions = decode_json(row["decisions"])
        if not isinstance(decisions, list) or not all(isinstance(x, int) for x in decisions):
            raise DamagedStore(f"trial {row['id']}: its decisions {str(row['decisions'])[:40]!r} are not a list of "
                               "integers")
        return super().from_row(row, decisions=tuple(decisions), **extra)

    @property
    def trial_id(self) -> int:
        return self.id


@dataclass(frozen=True, kw_only=True)
class RungResult(Record):
    """One rung job of an ASHA trial (a row of `rungs`): train to `epochs`, report, keep the checkpoint."""

    stage: ClassVar[Stage] = Stage.RUNG
    trial_id: int
    rung: int

    @property
    def index(self) -> int:
        return self.rung


@dataclass(frozen=True, kw_only=True)
class FinalTrial(Record):
    """One retraining of the top-k stage with the final budget (a row of `final`)."""

    stage: ClassVar[Stage] = Stage.FINAL
    trial_id: int
    genotype: str
    search_reward: float | None = None
    repeat: int = 0

    @property
    def index(self) -> int:
        return self.repeat


RECORDS: dict[Stage, type[Record]] = {Stage.SEARCH: Trial, Stage.RUNG: RungResult, Stage.FINAL: FinalTrial}


@dataclass(frozen=True)
class StoreSnapshot:
    """A store read at one moment: its trials, controller updates, rung results, top-k stage, status
    counts, and the distinct done trials ranked best first (what `TrialStore.top` returns)."""

    trials: list[Trial]
    updates: list[dict[str, Any]]
    finals: list[FinalTrial]
    counts: dict[str, int]
    ranked: list[Trial]
    rungs: list[RungResult] = dataclasses.field(default_factory=list)
