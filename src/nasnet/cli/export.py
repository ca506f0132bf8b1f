"""`nasnet export CHECKPOINT --onnx OUT.onnx [--torchscript OUT.pt] [--safetensors OUT]`: deployable and shareable
files, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import NasnetError

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="model file, training checkpoint, published weights, or zoo name")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write an ONNX file")
    p.add_argument("--torchscript", metavar="OUT.pt", help="write a traced TorchScript file")
    p.add_argument("--safetensors", metavar="OUT", help="write the weights as safetensors, config as metadata")
    p.add_argument("--model", help="the zoo model CHECKPOINT holds (checked; needed for a plain state dict)")
    p.add_argument("--weights-key", default="model",
                   help="the checkpoint entry holding the weights (default 'model'; e.g. 'ema' for averaged weights)")
    p.add_argument("--image-size", type=int, help="input size (default: the model's)")
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
    for _, path in targets:
        if path.exists() and not args.force:
            raise NasnetError(f"{str(path)!r} exists; pass --force to overwrite it")
    if args.image_size is not None and args.image_size < 32:
        raise NasnetError(f"--image-size must be >= 32, got {args.image_size}")

    import torch

    from ..weights.export import export_onnx, export_torchscript, onnx_parity, torchscript_parity
    from ..zoo import list_models, load_model

    torch.set_grad_enabled(False)
    model = load_model(args.checkpoint, expect=args.model, weights_key=args.weights_key)
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
        if "check" in entry and not entry["check"]["max_abs_diff"] <= args.tolerance:
            failed.append(f"{path}: max |logit diff| {entry['check']['max_abs_diff']:.3g} > {args.tolerance:g}")
        summary["outputs"].append(entry)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{described}: {summary['model']}, {size}x{size}, {summary['num_classes']} classes")
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
