"""Deployment: export a NASNet to ONNX and TorchScript, and check the exported file against PyTorch;
`reloaded_parity` checks a weights file written for sharing (safetensors: weights/safetensors_io.py).

Both exports trace the model in eval mode at a fixed image size (TF "SAME" padding is resolved
from it; see layers.same_pads) with a free batch dimension. ONNX uses PyTorch's TorchScript-based
exporter at opset 17 by default: on torch 2.13 it is about twice as fast as the torch.export-based
one, needs no extra package (onnxscript) and can target opset 17 (the new exporter emits 18 only).
TorchScript (``torch.jit``) is deprecated in torch 2.13 in favour of ``torch.export`` but still
works; its deprecation warnings are silenced here. The ONNX file carries the model config and
preprocessing as metadata (``nasnet.model_config``, ``nasnet.preprocessing``, JSON), so a
deployment knows the input size, mean/std and crop.

``onnx_parity`` / ``torchscript_parity`` run the exported file (onnxruntime, an optional extra:
``pip install -e '.[onnx]'`` in a clone) on batches of two sizes and return the largest absolute logit
difference from the PyTorch model (NaN when any logit is not finite: such an export fails its check).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..atomic import replacing
from ..errors import NasnetError
from ..model.network import NASNet

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def example_input(model: NASNet, batch: int = 2, image_size: int | None = None, seed: int = 0) -> torch.Tensor:
    size = image_size or model.config.image_size
    g = torch.Generator().manual_seed(seed)
    return torch.randn((batch, model.config.in_chans, size, size), generator=g).clamp_(-2.5, 2.5) * 0.4


@contextmanager
def _quiet_tracing():
    # Tracing turns the spatial sizes into constants on purpose (only the batch is dynamic); the
    # tracer's warnings about that, and the legacy exporter's deprecation notice, are expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*[Cc]onstant folding.*")
        yield


def metadata(model: NASNet, image_size: int | None = None) -> dict[str, str]:
    """What a deployment needs to know, as strings: config, preprocessing, input/output layout."""
    config = model.config.replace(image_size=image_size or model.config.image_size)
    prep = getattr(model, "preprocessing", None)
    if prep is not None and prep.input_size != config.image_size:
        prep = dataclasses.replace(prep, input_size=config.image_size)
    return {
        "nasnet.model_config": json.dumps(config.to_dict()),
        "nasnet.preprocessing": json.dumps(prep.to_dict() if prep is not None else None),
        "nasnet.input": f"{INPUT_NAME}: float32 (batch, {config.in_chans}, {config.image_size}, "
                        f"{config.image_size}); output {OUTPUT_NAME}: float32 (batch, {config.num_classes})",
    }


def export_onnx(model: NASNet, path: str | Path, image_size: int | None = None, opset: int = DEFAULT_OPSET
                ) -> Path:
    """Write `model` as ONNX (dynamic batch, fixed image size) with its config as metadata; atomic."""
    if opset < 17:
        raise NasnetError(f"ONNX opset {opset} is too old; use 17 or later")
    try:
        import onnx
    except ImportError:
        raise NasnetError("ONNX export needs the onnx package: pip install -e '.[onnx]' (in a clone of nasnet)"
                         ) from None
    path = Path(path)
    model = model.eval()
    size = image_size or model.config.image_size
    x = example_input(model, 1, size)
    with replacing(path) as tmp:
        with _quiet_tracing(), torch.no_grad():
            torch.onnx.export(model, (x,), str(tmp), opset_version=opset, dynamo=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              do_constant_folding=True)
        proto = onnx.load(str(tmp))
        for key, value in metadata(model, size).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


def export_torchscript(model: NASNet, path: str | Path, image_size: int | None = None) -> Path:
    """Write `model` as a traced TorchScript module (fixed image size, any batch); atomic.

    The config and preprocessing are stored as extra files (``nasnet.json``); load with
    ``torch.jit.load(path)``.
    """
    path = Path(path)
    model = model.eval()
    size = image_size or model.config.image_size
    x = example_input(model, 2, size)
    with replacing(path) as tmp, _quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_trace=False)
        extra = {"nasnet.json": json.dumps(metadata(model, size))}
        torch.jit.save(traced, str(tmp), _extra_files=extra)  # TorchScript is deprecated in 2.13: silenced
    return path


def check_finite(model: NASNet, image_size: int | None = None) -> None:
    """Refuse (one line) a model whose weights or logits on a test batch are NaN or infinite: an export
    of it would be useless, and its parity check would compare NaN with NaN."""
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise NasnetError(f"the model's weights are not finite (NaN or inf in {len(bad)} tensor(s): "
                          f"{', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); nothing exported")
    model = model.eval()
    with torch.no_grad():
        logits = model(example_input(model, 2, image_size))
    if not torch.isfinite(logits).all():
        raise NasnetError("the model's logits on a test batch are not finite (NaN or inf); nothing exported")


def _worst(worst: float, out: torch.Tensor, ref: torch.Tensor) -> float:
    """The running max |out - ref|; NaN as soon as either side has a non-finite logit."""
    if math.isnan(worst) or not (torch.isfinite(out).all() and torch.isfinite(ref).all()):
        return math.nan
    return max(worst, (out - ref).abs().max().item())


def _batches(model: NASNet, image_size: int | None) -> list[torch.Tensor]:
    # two batch sizes, neither the traced one, to show the batch really is dynamic
    return [example_input(model, b, image_size, seed=b) for b in (1, 3)]


def onnx_parity(model: NASNet, path: str | Path, image_size: int | None = None) -> dict[str, Any]:
    """Run the ONNX file in onnxruntime; max |difference| from the PyTorch logits over two batch sizes."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NasnetError("checking an ONNX export needs onnxruntime: pip install -e '.[onnx]' (in a clone of "
                         "nasnet), or pass --no-check") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    worst, batches = 0.0, []
    model = model.eval()
    for x in _batches(model, image_size):
        (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        with torch.no_grad():
            ref = model(x)
        worst = _worst(worst, torch.from_numpy(out), ref)
        batches.append(x.shape[0])
    return {"runtime": f"onnxruntime {ort.__version__}", "batches": batches, "max_abs_diff": worst}


def torchscript_parity(model: NASNet, path: str | Path, image_size: int | None = None) -> dict[str, Any]:
    """Run the saved TorchScript file; max |difference| from the PyTorch logits over two batch sizes.

    The graph runs without the JIT's profiling passes, which would spend seconds re-optimising it
    for every new input shape and do not change what it computes on a CPU.
    """
    with _quiet_tracing():
        loaded = torch.jit.load(str(path))
    worst, batches = 0.0, []
    model = model.eval()
    with torch.jit.optimized_execution(False), torch.no_grad():
        for x in _batches(model, image_size):
            worst = _worst(worst, loaded(x), model(x))
            batches.append(x.shape[0])
    return {"runtime": f"torch.jit {torch.__version__}", "batches": batches, "max_abs_diff": worst}


def reloaded_parity(model: NASNet, reloaded: NASNet, image_size: int | None = None) -> dict[str, Any]:
    """A written weights file read back into a model (a safetensors export): max |logit difference| from the
    original over two batch sizes. The file holds the same float32 tensors, so it is 0 unless it is wrong."""
    worst, batches = 0.0, []
    model, reloaded = model.eval(), reloaded.eval()
    with torch.no_grad():
        for x in _batches(model, image_size):
            worst = max(worst, (reloaded(x) - model(x)).abs().max().item())
            batches.append(x.shape[0])
    return {"runtime": "safetensors, read back by nasnet.load_model", "batches": batches, "max_abs_diff": worst}
