"""Model speed: our NASNet-A Large / Mobile against the reference implementation, and our variants.

For each model it measures, in one process on the same inputs:

* ``ours``            our model, eager, float32, NCHW - the baseline every ratio divides by;
* ``reference``       pretrainedmodels' NASNetALarge / NASNetAMobile with the *same weights* (our
                      weights written out in the reference layout and loaded into it), when its
                      files can be found: ``--reference-path DIR`` or ``$NASNET_REFERENCE_PATH``
                      (a site-packages directory holding ``pretrainedmodels``; only its
                      ``models/nasnet*.py`` files are loaded, the package itself is not imported);
* ``channels_last``   our model and inputs in channels-last memory format;
* ``compile``         ``torch.compile(model)`` (compile time reported separately, not in throughput);
* ``bf16``            our model under ``torch.autocast("cpu", torch.bfloat16)``;

in two modes: ``forward`` (eval mode, no grad) and ``forward+backward`` (train mode, sum of logits
backpropagated). Repetitions of the variants are interleaved so a shared machine's load drifts
over all of them alike; the median throughput (images/s) is reported with its ratio to ``ours``.
Outputs are checked first (eval-mode logits of each variant vs ours: max |diff|).

Results: a table on stdout, plus JSON (with machine, torch, threads, batch, image size, precision)
at ``--out``. Typical use::

    python bench/model_speed.py --reference-path /work/refenv/lib/python3.11/site-packages
    python bench/model_speed.py --models nasnet_a_mobile --batch 16 --variants ours,reference
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from pathlib import Path

import torch
from common import ROOT, machine_info, write_json

from nasnet.weights.model_file import build_with_weights  # noqa: E402
from nasnet.weights.reference import reference_shapes, to_reference_state_dict  # noqa: E402
from nasnet.weights.seeded import seeded_input, seeded_state_dict  # noqa: E402
from nasnet.zoo import reference_config  # noqa: E402
from nasnet.zoo.importer import convert_reference  # noqa: E402

VARIANTS = ("ours", "reference", "channels_last", "compile", "bf16")
DEFAULT_BATCH = {"nasnet_a_mobile": 16, "nasnet_a_large": 2}


def load_reference(path: str | None):
    """pretrainedmodels' NASNet classes from their files, or None (with the reason)."""
    path = path or os.environ.get("NASNET_REFERENCE_PATH")
    if not path:
        return None, "no --reference-path / $NASNET_REFERENCE_PATH given"
    models = Path(path) / "pretrainedmodels" / "models"
    if not (models / "nasnet.py").is_file():
        return None, f"{models}/nasnet.py not found"
    import importlib.util

    classes = {}
    for name, file, cls in (("nasnet_a_large", "nasnet.py", "NASNetALarge"),
                            ("nasnet_a_mobile", "nasnet_mobile.py", "NASNetAMobile")):
        spec = importlib.util.spec_from_file_location(f"_ref_{name}", models / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        classes[name] = getattr(module, cls)
    return classes, f"pretrainedmodels from {models}"


def build(name: str, variant: str, ours_state: dict, ref_classes) -> torch.nn.Module:
    """A fresh model for one variant, holding the same weights."""
    config = reference_config(name)
    if variant == "reference":
        ref = ref_classes[name](num_classes=1000)
        ref.load_state_dict(ours_state["reference"], strict=True)
        return ref
    model = build_with_weights(config, {k: v.clone() for k, v in ours_state["ours"].items()})
    if variant == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model


class Runner:
    """One variant in one mode: a callable that processes a batch, and its setup cost."""

    def __init__(self, name, variant, mode, model, x):
        self.variant, self.mode = variant, mode
        self.x = x.to(memory_format=torch.channels_last) if variant == "channels_last" else x
        model.train(mode != "forward")
        self.model = model
        self.setup_s = 0.0
        if variant == "compile":
            t = time.perf_counter()
            self.model = torch.compile(model)
            self.step()  # compile happens on the first call
            self.setup_s = time.perf_counter() - t

    def step(self):
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.variant == "bf16" else contextlib.nullcontext()
        if self.mode == "forward":
            with torch.no_grad(), autocast:
                self.model(self.x)
        else:
            with autocast:
                out = self.model(self.x)
            out.float().sum().backward()
            for p in self.model.parameters():
                p.grad = None


def check_outputs(models: dict, x: torch.Tensor) -> dict[str, float]:
    """Eval-mode logits of every variant vs ours (bf16: expected to differ at bf16 precision)."""
    out = {}
    with torch.no_grad():
        base = models["ours"].eval()(x)
        for variant, model in models.items():
            if variant in ("ours", "compile"):
                continue
            model.eval()
            xi = x.to(memory_format=torch.channels_last) if variant == "channels_last" else x
            if variant == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    y = model(xi).float()
            else:
                y = model(xi)
            out[variant] = (y - base).abs().max().item()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="nasnet_a_mobile,nasnet_a_large")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    ap.add_argument("--modes", default="forward,forward+backward")
    ap.add_argument("--batch", type=int, help="batch size (default: mobile 16, large 2)")
    ap.add_argument("--image-size", type=int, help="input size (default: each model's, 224 / 331)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--reference-path", help="site-packages directory holding pretrainedmodels")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_speed.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
    if "ours" not in variants:
        variants.insert(0, "ours")  # the baseline every ratio divides by
    ref_classes, ref_note = (None, "not requested")
    if "reference" in variants:
        ref_classes, ref_note = load_reference(args.reference_path)
        if ref_classes is None:
            print(f"reference: skipped ({ref_note})")
            variants.remove("reference")
    info = machine_info()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']} with "
          f"{info['torch_threads']} threads, load average {info['load_average_at_start']}")
    print("precision: float32 unless the variant says otherwise (bf16 = autocast bfloat16)")
    print("NOTE: a shared CPU makes these timings indicative; repetitions are interleaved across variants.\n")

    results = []
    for name in args.models.split(","):
        results += measure(name, args, variants, ref_classes)
        write_json(args.out, {"machine": info, "reference": ref_note, "repeats": args.repeats,
                         "warmup": args.warmup, "results": results})  # after every model: partial runs count
    print(f"wrote {args.out}")
    return 0


def measure(name: str, args: argparse.Namespace, variants: list[str], ref_classes) -> list[dict]:
    """One model's rows: every variant in every mode, timed interleaved, with its ratio to ours and its
    largest logit difference from ours."""
    results = []
    size = args.image_size or reference_config(name).image_size
    batch = args.batch or DEFAULT_BATCH.get(name, 8)
    shapes = reference_shapes(reference_config(name))
    ref_state = seeded_state_dict(shapes, seed=0)
    config, ours, _ = convert_reference(ref_state, name)
    state = {"ours": ours, "reference": ref_state}
    models = {v: build(name, v, state, ref_classes) for v in variants}
    assert to_reference_state_dict(models["ours"]).keys() == ref_state.keys()
    x = seeded_input((batch, 3, size, size), seed=1)
    diffs = check_outputs(models, seeded_input((1, 3, size, size), seed=2))
    print(f"{name} @ {size}x{size}, batch {batch}: max |logit diff| vs ours: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    for mode in args.modes.split(","):
        runners = [Runner(name, v, mode, models[v], x) for v in variants]
        if mode == "forward" and "compile" in variants:  # the compiled model computes the same logits
            with torch.no_grad():
                compiled = next(r for r in runners if r.variant == "compile").model(x)
                diffs["compile"] = (compiled - models["ours"].eval()(x)).abs().max().item()
            print(f"  compile: max |logit diff| vs ours {diffs['compile']:.2e}")
        for r in runners:
            for _ in range(args.warmup):
                r.step()
        times = {r.variant: [] for r in runners}
        for _ in range(args.repeats):
            for r in runners:  # interleaved
                t = time.perf_counter()
                r.step()
                times[r.variant].append(time.perf_counter() - t)
        base = statistics.median(times["ours"])
        for r in runners:
            med = statistics.median(times[r.variant])
            row = {"model": name, "image_size": size, "batch": batch, "mode": mode, "variant": r.variant,
                   "precision": "bfloat16 autocast" if r.variant == "bf16" else "float32",
                   "median_s": med, "images_per_s": batch / med, "ratio_vs_ours": base / med,
                   "times_s": times[r.variant], "setup_s": r.setup_s,
                   "max_abs_logit_diff_vs_ours": diffs.get(r.variant, 0.0)}
            results.append(row)
            extra = f"  (compile {r.setup_s:.0f}s)" if r.variant == "compile" else ""
            print(f"  {mode:17s} {r.variant:14s} {row['images_per_s']:8.2f} img/s  {med * 1e3:9.1f} ms/batch  "
                  f"throughput x{row['ratio_vs_ours']:.2f} of ours{extra}", flush=True)
    print()
    return results


if __name__ == "__main__":
    raise SystemExit(main())
