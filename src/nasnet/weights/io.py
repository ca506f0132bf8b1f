"""Reading weight files safely, and the one check that a state dict fits a model.

* `read_checkpoint(path)`: the project's only reader of PyTorch pickle files (model files,
  training checkpoints, the search controller's state, published `.pth` weights). It calls
  ``torch.load(weights_only=True)``: a file that refers to Python code is refused, never executed.
  Failures become one line that says what the file is not; PyTorch's own advice (which includes
  loading with ``weights_only=False``, something this project never does) is not repeated.
* `as_state_dict(obj)`: a flat name -> tensor dict from a state dict or the usual wrappers.
* `check_state_dict(expected, state, where)`: missing, unexpected and wrongly shaped keys in one
  `CheckpointMismatch` error: one line naming the first of each kind, its attributes listing all.
  Every loader (our model files, the published layouts, plain state dicts) reports a misfit through
  it or, for other libraries' files, through the same `mismatch` (weights/mapping.py).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import NasnetError, first_line
from ..paths import input_path

COUNTER = "num_batches_tracked"   # BatchNorm's step counter: old files lack it, and it changes no output


class CheckpointMismatch(NasnetError):
    """A state dict whose keys or shapes do not fit the model; the offending keys are attributes."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str], wrong_shape: list[str]):
        super().__init__(message)
        self.missing, self.unexpected, self.wrong_shape = missing, unexpected, wrong_shape


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """A PyTorch file read with weights_only=True; one-line errors for a missing, foreign or unsafe file.

    The messages say what the file is not and stop: PyTorch's own text (its request to file an issue,
    its unpickler's internals, and its advice to load with weights_only=False) is never passed on,
    nor are its warnings about pickle protocols."""
    path = Path(path).expanduser()
    where = repr(str(path))
    input_path(path)       # a folder, a FIFO or a device is refused before it is opened
    try:
        empty = path.stat().st_size == 0
    except OSError as err:
        raise NasnetError(f"{where[:100]}: cannot read it ({err.strerror or first_line(err)})") from None
    if empty:
        raise NasnetError(f"{where} is empty, not a PyTorch checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err).lower()
        if "unsupported global" in text or "unsupported class" in text:
            raise NasnetError(f"{where} refers to Python code or classes besides tensors and plain data; it was "
                              "not loaded (nothing in a file is ever executed)") from None
        raise NasnetError(f"{where} is not a PyTorch checkpoint (not a file torch.save writes, or a damaged "
                          "one)") from None
    except (zipfile.BadZipFile, EOFError):
        raise NasnetError(f"{where} is not a PyTorch checkpoint (truncated or damaged)") from None
    except OSError as err:
        if _readable(path):  # PyTorch's zip reader reports a truncated archive as an OSError (EINVAL)
            raise NasnetError(f"{where} is not a PyTorch checkpoint (truncated or damaged)") from None
        raise NasnetError(f"{where}: cannot read it ({err.strerror or 'read error'})") from None
    except Exception:  # garbage makes the reader fail in many ways (RuntimeError, KeyError, IndexError, ...)
        raise NasnetError(f"{where} is not a PyTorch checkpoint (not a file torch.save writes, or a damaged "
                          "one)") from None


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def as_state_dict(obj: Any, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A flat key -> tensor dict, from a state dict or a dict wrapping one under 'state_dict'/'model'/'module'
    (the last is how a training checkpoint stores its weight EMA)."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model", "module"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping) and not isinstance(obj[wrapper], torch.Tensor):
                inner = obj[wrapper]
                if inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                    obj = inner
                    break
    if not isinstance(obj, Mapping) or not obj:
        raise NasnetError(f"{where} is not a state dict (a mapping of parameter names to tensors)")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise NasnetError(f"{where} is not a state dict: {len(bad)} entries are not tensors "
                          f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})")
    state = dict(obj)
    if "n_averaged" in state and len(state) > 1:  # torch.optim.swa_utils.AveragedModel (weight EMA)
        state.pop("n_averaged")
    if all(k.startswith("module.") for k in state):  # DataParallel / DDP / AveragedModel wrappers
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


SHOWN = 10  # keys of each kind a one-line error names; the exception's attributes hold them all


def listed(keys: list[str], limit: int = SHOWN) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def mismatch(where: str, missing: list[str], unexpected: list[str], wrong: list[str]) -> CheckpointMismatch:
    """The one error for a state dict that does not fit: `where` says what does not fit what."""
    parts = [f"{len(missing)} missing key(s): {listed(missing)}"] if missing else []
    parts += [f"{len(unexpected)} unexpected key(s): {listed(unexpected)}"] if unexpected else []
    parts += [f"{len(wrong)} key(s) with the wrong shape: {listed(wrong)}"] if wrong else []
    return CheckpointMismatch(f"{where}: " + "; ".join(parts), missing, unexpected, wrong)


def check_state_dict(expected: Mapping[str, Any], state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise `CheckpointMismatch` unless `state` has exactly the keys of `expected` (tensors or shapes), with
    their shapes. BatchNorm counters may be absent (callers fill them with 0)."""
    def shape(v) -> tuple[int, ...]:
        return tuple(v.shape) if hasattr(v, "shape") else tuple(v)

    missing = sorted(k for k in expected if k not in state and not k.endswith(COUNTER))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(f"{k} {shape(state[k])} (model expects {shape(v)})"
                   for k, v in expected.items() if k in state and shape(state[k]) != shape(v))
    if missing or unexpected or wrong:
        raise mismatch(where, missing, unexpected, wrong)
