"""`nasnet import-weights SOURCE [--model NAME] -o OUT`: NASNet-A weights from any file we read -> a model file."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..errors import NasnetError
from ..paths import input_path, output_file

COMMAND = "import-weights"
HELP = "convert NASNet-A weights (PyTorch, safetensors, TF-Slim checkpoint, Keras .h5) into a nasnet model file"
DESCRIPTION = (
    "Read NASNet-A weights in any format we know - detected from the file's content: PyTorch files (the "
    "published pretrainedmodels / timm layout, our model files, plain state dicts of our layout with "
    "--model), safetensors (timm's hub files, a Hugging Face hub cache folder, our own), TensorFlow-Slim "
    "checkpoints (model.ckpt, its folder or the release .tar.gz) and Keras Applications .h5 files - map every "
    "entry onto our model (none left over, none missing, shapes checked), say what was found, and write a model "
    "file (config + weights + preprocessing) that `nasnet export`, `nasnet eval`, `create_model(name, "
    "checkpoint=...)` and transfer learning read. A 1001-class head loses its background class 0 unless "
    "--keep-background. OUTPUT's suffix chooses the file: .pt or .pth a model file, .safetensors safetensors with "
    "the config as metadata. The conversion completes before anything is written; nothing in a file is executed."
)
ORDER = 40
OUTPUTS = {".pt": "model file", ".pth": "model file", ".safetensors": "safetensors"}   # OUTPUT's suffix -> format
NOUNS = {"pytorch": "checkpoint keys", "safetensors": "checkpoint keys", "tf-checkpoint": "checkpoint variables",
         "keras-h5": "Keras weights"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="the weights: a file, a TF checkpoint prefix / folder / .tar.gz, or a hub folder")
    p.add_argument("--model", help="the zoo model the weights are (checked; detected from the file when omitted, "
                   "required for plain state dicts)")
    p.add_argument("-o", "--output", required=True,
                   help=f"the file to write: {', '.join(OUTPUTS)} (a model file, or safetensors)")
    p.add_argument("--keep-background", action="store_true",
                   help="keep a 1001-class head's background class (default: drop class 0, leaving ImageNet's 1000)")
    p.add_argument("--no-aux", action="store_true", help="TF-Slim checkpoints: leave the auxiliary head out")
    p.add_argument("--padding", choices=["same", "keras"],
                   help="Keras files: 'same' (default; TensorFlow's arithmetic, as the zoo's models) or 'keras' "
                   "(strided pools count zero padding: Keras's own outputs)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _sha256(path: Path) -> str | None:
    if not path.is_file():  # a folder or a checkpoint prefix
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(args: argparse.Namespace) -> int:
    from ..weights.model_file import save_model_file
    from ..weights.safetensors_io import save_safetensors
    from ..zoo import get_entry, import_weights

    out = output_file(args.output, args.force)
    kind = OUTPUTS.get(out.suffix.lower())
    if kind is None:
        kinds = {v: " or ".join(k for k in OUTPUTS if OUTPUTS[k] == v) for v in OUTPUTS.values()}
        raise NasnetError(f"-o {out.name}: the suffix chooses what import-weights writes ("
                          f"{'; '.join(f'{k}: {v}' for v, k in kinds.items())}); for ONNX or TorchScript, run "
                          "nasnet export on the model file")
    if args.model is not None:
        get_entry(args.model)  # an unknown name fails before any file is read
    src = input_path(args.source, "file or folder", missing_ok=True)    # missing: maybe a TF checkpoint prefix
    model, info = import_weights(src, args.model, keep_background=args.keep_background,
                                 aux_head=False if args.no_aux else None, padding=args.padding)
    source = {"path": str(src), "sha256": _sha256(src), "import": info.to_dict()}
    (save_safetensors if kind == "safetensors" else save_model_file)(model, out, source=source)
    p = model.preprocessing
    summary = {"output": str(out), **info.to_dict(), "sha256": source["sha256"],
               "aux_head": model.config.aux_head, "padding": model.config.padding,
               "preprocessing": p.to_dict() if p is not None else None}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    name = info.model or f"{model.config.skeleton} {model.config.name}"
    print(f"found: {info.format} file, {info.layout} layout, {name}")
    head = (f"{info.source_classes} -> {info.num_classes} classes (background class 0 dropped)"
            if info.dropped_background else f"{info.num_classes} classes" if info.num_classes else "no classifier")
    print(f"{name}: {info.keys} {NOUNS.get(info.format, 'keys')} mapped, none left over or missing; {head}"
          + ("; with the auxiliary head" if model.config.aux_head else ""))
    if info.counters_missing:
        print(f"  ({info.counters_missing} BatchNorm num_batches_tracked counters absent from the file, set to 0)")
    if info.ignored:
        shown = ", ".join(info.ignored[:5]) + (f", ... ({len(info.ignored) - 5} more)" if len(info.ignored) > 5 else "")
        print(f"  ignored: {shown}")
    for note in info.notes:
        print(f"  note: {note}")
    if p is not None:
        print(f"  preprocessing: {p.input_size}x{p.input_size}, resize {p.resize_size} ({p.interpolation}) + center "
              f"crop, mean {list(p.mean)}, std {list(p.std)}")
    print(f"wrote {out}")
    return 0
