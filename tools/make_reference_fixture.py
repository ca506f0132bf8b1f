"""Make tests/fixtures/reference_nasnet.pt: the reference NASNet-A key layouts and logits.

The exactness tests (tests/test_pretrained.py) must run without the reference implementations
installed, so this script is run once, in a separate environment that has them, and its output is
committed. For each published model it records the reference state-dict layout (key -> shape) and
the reference logits, in eval mode, for the deterministic weights of
``nasnet.weights.seeded.seeded_state_dict(layout, seed)`` on ``nasnet.weights.seeded.seeded_input``. The
tests regenerate those weights from the stored layout, load them through our importer and compare.

References (read from their installed files; nothing is copied into this repository):
* pretrainedmodels 0.7.4: ``models/nasnet.py`` (NASNetALarge) and ``models/nasnet_mobile.py``
  (NASNetAMobile), loaded by file path because the package imports torchvision at import time;
* timm (``models/nasnet.py``, NASNetALarge), imported without running ``timm/__init__`` (which
  imports its data pipeline); if torchvision is not importable a stub supplies the one name
  timm's layers import from it (FrozenBatchNorm2d, unused by NASNet).

How to rerun (under a minute on 2 quiet CPU cores)::

    python3 -m venv /work/refenv
    /work/refenv/bin/pip install torch==2.13.0 numpy
    /work/refenv/bin/pip install --no-deps pretrainedmodels timm
    /work/refenv/bin/python tools/make_reference_fixture.py            # from the repository root

The weights and inputs come from torch's CPU generator, so the same torch version must be used
where the fixture is made and where the tests run (torch is pinned to 2.13.0).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nasnet.weights.seeded import seeded_input, seeded_state_dict  # noqa: E402

WEIGHT_SEED = 5
INPUT_SEED = 7


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # does not run the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in this environment ({sys.executable})")
    return Path(list(spec.submodule_search_locations)[0])


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_pretrainedmodels() -> tuple[type, type]:
    root = _package_dir("pretrainedmodels") / "models"
    large = _load_file("ref_pm_nasnet", root / "nasnet.py")
    mobile = _load_file("ref_pm_nasnet_mobile", root / "nasnet_mobile.py")
    return large.NASNetALarge, mobile.NASNetAMobile


def load_timm() -> type:
    try:
        import torchvision  # noqa: F401
    except Exception:  # not installed, or a build for another torch: stub the one import timm needs
        tv, ops, misc = (types.ModuleType(n) for n in ("torchvision", "torchvision.ops", "torchvision.ops.misc"))

        class FrozenBatchNorm2d(torch.nn.Module):
            def __init__(self, *args, **kwargs):
                raise RuntimeError("torchvision stub: FrozenBatchNorm2d is not available")

        misc.FrozenBatchNorm2d, tv.ops, ops.misc = FrozenBatchNorm2d, ops, misc
        sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.misc": misc})
    root = _package_dir("timm")
    for name, sub in (("timm", root), ("timm.models", root / "models")):
        shell = types.ModuleType(name)
        shell.__path__ = [str(sub)]
        shell.__version__ = importlib.metadata.version("timm")
        sys.modules[name] = shell
    return importlib.import_module("timm.models.nasnet").NASNetALarge


def with_tf_avg_pools(model: torch.nn.Module) -> torch.nn.Module:
    """timm's stride-2 "SAME" average pools zero-pad and then count the padding in the mean, where
    TensorFlow (and pretrainedmodels) average over the real pixels only. Swap in a TF-style average
    (explicit padding, divide by the count of real pixels) to show that this is the only difference."""
    import torch.nn.functional as F

    def tf_avg(mod):
        def forward(x):
            k, s = tuple(mod.kernel_size), tuple(mod.stride)
            pads = []
            for size, kk, ss in ((x.shape[-1], k[1], s[1]), (x.shape[-2], k[0], s[0])):
                total = max((-(-size // ss) - 1) * ss + kk - size, 0)
                pads += [total // 2, total - total // 2]
            summed = F.avg_pool2d(F.pad(x, pads), k, s, divisor_override=1)
            count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), k, s, divisor_override=1)
            return summed / count
        return forward

    n = 0
    for mod in model.modules():
        if type(mod).__name__ == "AvgPool2dSame":
            mod.forward = tf_avg(mod)
            n += 1
    if not n:
        raise SystemExit("timm's NASNet has no AvgPool2dSame modules any more: revisit with_tf_avg_pools")
    return model


def layout(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def run_case(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, dict[str, list[int]], float]:
    lay = layout(model)
    model.load_state_dict(seeded_state_dict(lay, WEIGHT_SEED), strict=True)
    model.eval()
    t = time.time()
    with torch.no_grad():
        logits = model(seeded_input(shape, INPUT_SEED))
    return logits, lay, time.time() - t


def keep_layout(layouts: dict, name: str, model_name: str, classes: int, lay: dict) -> None:
    """One stored layout per model (1000 classes; the 1001 layout differs only in last_linear): the first
    case's is kept, and every later case of the model must have it."""
    base = {k: list(v) for k, v in lay.items()}
    if classes == 1001:
        base["last_linear.weight"][0] = 1000
        base["last_linear.bias"][0] = 1000
    if model_name in layouts:
        stored = layouts[model_name]
        strip = lambda d: {k: v for k, v in d.items() if not k.endswith("num_batches_tracked")}  # noqa: E731
        if strip(stored) != strip(base):
            raise SystemExit(f"{name}: its key layout differs from the other {model_name} reference")
    else:
        layouts[model_name] = base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "tests" / "fixtures" / "reference_nasnet.pt"))
    args = ap.parse_args()
    torch.set_num_threads(2)

    pm_large, pm_mobile = load_pretrainedmodels()
    timm_large = load_timm()
    # (case name, reference, constructor, classes, input shape); native input sizes, where the
    # reference ports' hard-coded padding equals TensorFlow's "SAME".
    cases = [
        ("pretrainedmodels/nasnetalarge-1001", "pretrainedmodels", lambda: pm_large(num_classes=1001), "nasnet_a_large",
         1001, (1, 3, 331, 331)),
        ("pretrainedmodels/nasnetalarge-1000", "pretrainedmodels", lambda: pm_large(num_classes=1000), "nasnet_a_large",
         1000, (1, 3, 331, 331)),
        ("pretrainedmodels/nasnetamobile-1000", "pretrainedmodels", lambda: pm_mobile(num_classes=1000),
         "nasnet_a_mobile", 1000, (2, 3, 224, 224)),
        ("pretrainedmodels/nasnetamobile-1001", "pretrainedmodels", lambda: pm_mobile(num_classes=1001),
         "nasnet_a_mobile", 1001, (2, 3, 224, 224)),
        ("timm/nasnetalarge-1000+tf-avg-pool", "timm", lambda: with_tf_avg_pools(timm_large(num_classes=1000)),
         "nasnet_a_large", 1000, (1, 3, 331, 331)),
        ("timm/nasnetalarge-1000", "timm", lambda: timm_large(num_classes=1000), "nasnet_a_large", 1000,
         (1, 3, 331, 331)),
    ]
    # timm's own avg pools count TF "SAME" padding (see with_tf_avg_pools): its raw logits are kept
    # for the record, not for exactness
    inexact = {"timm/nasnetalarge-1000"}
    out = {"meta": {
        "made_by": "tools/make_reference_fixture.py",
        "date": datetime.date.today().isoformat(),
        "torch": str(torch.__version__),
        "pretrainedmodels": importlib.metadata.version("pretrainedmodels"),
        "timm": importlib.metadata.version("timm"),
        "weight_seed": WEIGHT_SEED,
        "input_seed": INPUT_SEED,
    }, "layouts": {}, "cases": []}
    for name, source, build, model_name, classes, shape in cases:
        torch.manual_seed(0)
        logits, lay, secs = run_case(build(), shape)
        keep_layout(out["layouts"], name, model_name, classes, lay)
        out["cases"].append({"name": name, "source": source, "model": model_name, "classes": classes,
                             "input_shape": list(shape), "exact": name not in inexact,
                             "logits": logits.float().clone()})
        print(f"{name:40s} logits {tuple(logits.shape)} mean {logits.mean():+.4f} std {logits.std():.4f} "
              f"max|.| {logits.abs().max():.3f}  ({secs:.1f}s, {len(lay)} keys)")
    by = {c["name"]: c["logits"] for c in out["cases"]}
    for other in ("timm/nasnetalarge-1000", "timm/nasnetalarge-1000+tf-avg-pool"):
        d = (by[other] - by["pretrainedmodels/nasnetalarge-1000"]).abs().max().item()
        out["meta"][f"{other} vs pretrainedmodels max_abs"] = d
        print(f"{other} vs pretrainedmodels nasnetalarge, same weights: max |logit diff| = {d:.3e}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, args.output)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
