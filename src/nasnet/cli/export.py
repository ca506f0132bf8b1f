"""`nasnet export CHECKPOINT --onnx OUT.onnx [--torchscript OUT.pt] [--safetensors OUT]`: deployable and shareable
files, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import NasnetError
from ..paths import distinct_outputs, input_path, output_file
from ..text import plural
from ._parse import count

COMMAND = "export"
HELP = "export a model to ONNX (opset >= 17, dynamic batch), TorchScript and/or safetensors, and check the outputs"
DESCRIPTION = (
    "CHECKPOINT is a model file (`nasnet import-weights` output), a training checkpoint (any file holding "
    "'model_config' and 'model'), any weights `nasnet import-weights` reads (published NASNet-A weights, "
    "safetensors, TF-Slim, Keras .h5; a plain state dict of our layout with --model), or a zoo name "
    "(untrained weights, to try a deployment). ONNX and TorchScript are traced in eval mode at a fixed image "
    "size with a free batch dimension; safetensors holds the weights with the config and preprocessing as "
    "JSON metadata (no pickle). Unless --no-check, each written file is run (onnxruntime for ONNX; "
    "safetensors read back into a model) on two batch sizes and its logits are compared with PyTorch's."
)
ORDER = 45
# suffixes that name one of the formats written here (TorchScript has no suffix of its own: .pt or .ts)
SUFFIX_FORMATS = {".onnx": "onnx", ".safetensors": "safetensors"}
OWN_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt or .ts", "safetensors": ".safetensors"}
INERT = [("opset", lambda a: a.onnx is not None, "without --onnx (it is the ONNX file's opset)"),
         ("tolerance", lambda a: not a.no_check, "with --no-check (it bounds the check's logit difference)")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="model file, training checkpoint, published weights, or zoo name")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write an ONNX file")
    p.add_argument("--torchscript", metavar="OUT.pt", help="write a traced TorchScript file")
    p.add_argument("--safetensors", metavar="OUT", help="write the weights as safetensors, config as metadata")
    p.add_argument("--model", help="the zoo model CHECKPOINT holds (checked; needed for a plain state dict)")
    p.add_argument("--weights-key", default="model",
                   help="the checkpoint entry holding the weights (default 'model'; e.g. 'ema' for averaged weights)")
    p.add_argument("--image-size", type=count(32), help="input size, 32 or more (default: the model's)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or later (default 17)")
    p.add_argument("--no-check", action="store_true", help="skip running the exported files")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |logit difference| in the check (default 1e-4)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    targets = [(kind, Path(path)) for kind, path in (("onnx", args.onnx), ("torchscript", args.torchscript),
                                                     ("safetensors", args.safetensors)) if path]
    if not targets:
        raise NasnetError("nothing to do: give --onnx OUT.onnx, --torchscript OUT.pt and/or --safetensors OUT")
    distinct_outputs((f"--{kind}", path) for kind, path in targets)
    for kind, path in targets:          # a file named for another of these formats would mislead its reader
        named = SUFFIX_FORMATS.get(path.suffix.lower())
        if named not in (None, kind):
            raise NasnetError(f"--{kind} {path}: the name says {named}, the file would be {kind}; end it in "
                              f"{OWN_SUFFIX[kind]}")
    for _, path in targets:
        output_file(path, args.force)
    input_path(args.checkpoint, "file or folder", missing_ok=True)   # a missing path may be a zoo name

    import torch

    with torch.no_grad():   # not set_grad_enabled(False): the command may run inside a Python process
        return _export(args, targets)


def _export(args: argparse.Namespace, targets: list[tuple[str, Path]]) -> int:
    from ..weights.export import check_finite, export_onnx, export_torchscript, onnx_parity, torchscript_parity
    from ..zoo import list_models, load_model

    model = load_model(args.checkpoint, expect=args.model, weights_key=args.weights_key)
    check_finite(model, args.image_size)
    if args.checkpoint in list_models() and not Path(args.checkpoint).exists():
        described = f"zoo model {args.checkpoint} (untrained weights)"
    else:
        described = f"checkpoint {args.checkpoint}" + (f" ({args.weights_key!r} weights)"
                                                       if args.weights_key != "model" else "")
    size = args.image_size or model.config.image_size
    summary = {"source": described, "model": f"{model.config.skeleton} {model.config.name}",
               "image_size": size, "num_classes": model.config.num_classes, "outputs": []}
    failed = []
    for kind, path in targets:
        if kind == "onnx":
            export_onnx(model, path, size, args.opset)
            entry = {"format": "onnx", "path": str(path), "opset": args.opset}
            if not args.no_check:
                entry["check"] = onnx_parity(model, path, size)
        elif kind == "torchscript":
            export_torchscript(model, path, size)
            entry = {"format": "torchscript", "path": str(path)}
            if not args.no_check:
                entry["check"] = torchscript_parity(model, path, size)
        else:
            from ..weights.export import reloaded_parity
            from ..weights.safetensors_io import save_safetensors

            save_safetensors(model, path)
            entry = {"format": "safetensors", "path": str(path)}
            if not args.no_check:
                entry["check"] = reloaded_parity(model, load_model(path), size)
        entry["bytes"] = path.stat().st_size
        diff = entry["check"]["max_abs_diff"] if "check" in entry else 0.0
        if diff != diff:
            failed.append(f"{path}: its logits are not finite (NaN or inf)")
        elif not diff <= args.tolerance:
            failed.append(f"{path}: max |logit diff| {diff:.3g} > {args.tolerance:g}")
        summary["outputs"].append(entry)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{described}: {summary['model']}, {size}x{size}, {plural(summary['num_classes'], 'class', 'classes')}")
        for e in summary["outputs"]:
            line = f"  wrote {e['path']} ({e['format']}{', opset ' + str(e['opset']) if 'opset' in e else ''}, "
            line += f"{e['bytes'] / 2**20:.1f} MiB" + (", dynamic batch)" if e["format"] != "safetensors" else ")")
            if "check" in e:
                c = e["check"]
                line += (f"; {c['runtime']} on batches {c['batches']}: max |logit diff| vs PyTorch "
                         f"{c['max_abs_diff']:.2e}")
            print(line)
    if failed:
        raise NasnetError("exported output differs from PyTorch: " + "; ".join(failed))
    return 0
