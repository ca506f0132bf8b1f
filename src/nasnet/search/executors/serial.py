"""The serial executor: children one after another in the driver's own process (for debugging, and
for runs whose exact order matters, such as a resumed run compared with an uninterrupted one)."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from .base import Executor, outcome_from_json, run_payload


class SerialExecutor(Executor):
    """Runs payloads one after another in this process, in submission order (`wait` runs one).

    Ctrl-C inside a child propagates (KeyboardInterrupt is not caught), so the driver stops cleanly.
    """

    name = "serial"

    def __init__(self, workers: int = 1):
        self.capacity = max(1, int(workers))
        self._queue: deque[tuple[Any, str]] = deque()

    @classmethod
    def from_config(cls, config, record=None, log=None) -> "SerialExecutor":
        """The executor an ExecutorConfig describes (one child at a time unless `workers` says more)."""
        return cls(config.workers or 1)

    def submit(self, key, payload):
        self._queue.append((key, json.dumps(payload, allow_nan=False)))

    def wait(self, timeout=None):
        if not self._queue:
            return []
        key, text = self._queue[0]
        out = outcome_from_json(key, run_payload(text))
        self._queue.popleft()
        return [out]

    def cancel_all(self):
        self._queue.clear()
