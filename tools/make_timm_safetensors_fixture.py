"""Make tests/fixtures/timm_nasnetalarge_safetensors.json: what timm writes for the hub, and timm's logits.

timm 1.x downloads NASNet-A Large from the Hugging Face hub (``timm/nasnetalarge.tf_in1k``) as
``model.safetensors`` beside a ``config.json``. The real file is 355 MB (88.9M parameters), far too
big to commit, so the test generates an equivalent file in its run from a seed, and this script -
run once where timm is installed - records what the test needs to show that the file is the one
timm itself would write and that our logits equal timm's:

* ``layout_sha256`` / ``keys``: a digest of the state-dict keys and shapes of
  ``timm.create_model("nasnetalarge", num_classes=1001)`` (the ``num_batches_tracked`` counters
  included), which the test derives from our model (``reference_shapes(reference_config("nasnet_a_large", 1001))``);
* ``weights_sha256``: a digest of the deterministic weights ``seeded_state_dict(layout, WEIGHT_SEED)``
  (nasnet's fixture weights: so the test notices if the seeding ever changes);
* ``safetensors_sha256`` / ``safetensors_bytes``: the digest and size of the ``model.safetensors`` that
  timm's own ``timm.models.save_for_hf(model, dir, safe_serialization=True)`` - the writer behind
  ``push_to_hf_hub`` - wrote for those weights. The test writes the file with
  ``safetensors.torch.save_file(state_dict, path)`` (what save_for_hf calls) and checks the digest;
* ``config_json``: the ``config.json`` that save_for_hf wrote beside it (what a hub snapshot holds
  next to the weights), and ``pretrained_cfg``: timm's own pretrained config of the tag;
* ``cases``: timm's logits, in eval mode, for ``seeded_input(input_shape, INPUT_SEED)``: as timm computes
  them (``raw``: its stride-2 "same" average pools count the zero padding, see the FIXME in
  ``timm/layers/pool2d_same.py``) and with TensorFlow's "SAME" average (``tf_avg_pool``, via
  ``with_tf_avg_pools`` of tools/make_reference_fixture.py), which is what TF-Slim computes.

The input is 1 x 3 x 139 x 139 rather than 331 x 331 to keep the test quick: timm pads dynamically,
and 139 still puts odd (69, 35, 9) and even (18) maps in front of stride-2 ops.

timm's ``save_for_hf`` writes exactly two files, ``model.safetensors`` (or ``pytorch_model.bin``) and
``config.json``; ``push_to_hf_hub`` adds a README.md model card to the upload. A hub cache keeps them
as ``models--timm--nasnetalarge.tf_in1k/snapshots/<commit>/{config.json,model.safetensors}``, usually
symlinks into ``../../blobs/``, with ``refs/main`` naming the commit.

How to rerun (about a minute on 2 CPU cores, 2 GB of memory)::

    python3 -m venv /work/refenv-timm
    /work/refenv-timm/bin/pip install torch==2.14.1 torchvision==0.29.1 timm safetensors huggingface_hub numpy
    /work/refenv-timm/bin/python tools/make_timm_safetensors_fixture.py     # from the repository root

Made with timm 1.0.31, safetensors 0.8.0, torch 2.14.1 (the weights and input come from torch's
CPU generator; the test checks them against ``weights_sha256``, generated there with the project's
torch).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))

from make_reference_fixture import with_tf_avg_pools  # noqa: E402

from nasnet.weights.seeded import seeded_input, seeded_state_dict  # noqa: E402

WEIGHT_SEED = 31
INPUT_SEED = 32
INPUT_SHAPE = (1, 3, 139, 139)
TAG = "nasnetalarge.tf_in1k"


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over key names, dtypes, shapes and bytes, in key order (the same helper is in the test)."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def layout_digest(layout: dict[str, list[int]]) -> str:
    text = "\n".join(f"{k}|{tuple(int(s) for s in v)}" for k, v in sorted(layout.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "tests" / "fixtures" / "timm_nasnetalarge_safetensors.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    import timm
    from timm.models import save_for_hf

    model = timm.create_model(TAG, pretrained=False, num_classes=1001)
    layout = {k: list(v.shape) for k, v in model.state_dict().items()}
    state = seeded_state_dict(layout, WEIGHT_SEED)
    model.load_state_dict(state, strict=True)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        save_for_hf(model, tmp, safe_serialization=True)
        written = sorted(p.name for p in Path(tmp).iterdir())
        st = Path(tmp) / "model.safetensors"
        st_sha, st_bytes = file_digest(st), st.stat().st_size
        config_json = json.loads((Path(tmp) / "config.json").read_text())
        from safetensors import safe_open

        with safe_open(str(st), framework="pt") as f:
            st_metadata = f.metadata()
            st_keys = sorted(f.keys())
    if st_keys != sorted(layout):
        raise SystemExit("timm's safetensors file does not hold the state dict's keys")
    x = seeded_input(INPUT_SHAPE, INPUT_SEED)
    with torch.no_grad():
        raw = model(x)
        tf_avg = with_tf_avg_pools(model)(x)
    diff = (raw - tf_avg).abs().max().item()
    out = {
        "made_by": "tools/make_timm_safetensors_fixture.py",
        "date": datetime.date.today().isoformat(),
        "versions": {p: importlib.metadata.version(p) for p in ("timm", "safetensors", "torch", "huggingface_hub")},
        "tag": TAG,
        "model_args": {"num_classes": 1001},
        "weight_seed": WEIGHT_SEED,
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        "keys": len(layout),
        "layout_sha256": layout_digest(layout),
        "weights_sha256": weights_digest(state),
        "safetensors_sha256": st_sha,
        "safetensors_bytes": st_bytes,
        "safetensors_metadata": st_metadata,
        "save_for_hf_files": written,
        "config_json": config_json,
        "pretrained_cfg": {k: v for k, v in model.pretrained_cfg.items() if k not in ("state_dict", "url")},
        "raw_vs_tf_avg_pool_max_abs": diff,
        "cases": {"raw": raw[0].tolist(), "tf_avg_pool": tf_avg[0].tolist()},
    }
    Path(args.output).write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"timm {TAG} (1001 classes): {len(layout)} keys, safetensors {st_bytes / 2**20:.1f} MiB "
          f"sha256 {st_sha[:16]}..., save_for_hf wrote {written}; raw vs TF-average logits differ by {diff:.3e}")
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
