"""Make tests/fixtures/keras/: Keras-written NASNet .h5 weight files with Keras's outputs.

Keras Applications ship NASNet-A as ``NASNet-mobile.h5``, ``NASNet-mobile-no-top.h5``,
``NASNet-large.h5`` and ``NASNet-large-no-top.h5``: ``save_weights`` files in the legacy HDF5 layout.
The full-size files are too large to commit (NASNetMobile's is about 21 MB), so this script builds
the same architecture at a reduced size with Keras's own constructor,
``tf_keras.src.applications.nasnet.NASNet(penultimate_filters, num_blocks, stem_block_filters,
skip_reduction, filter_multiplier=2, weights=None, input_shape=...)``, gives every weight and
BatchNorm statistic deterministic non-trivial values, and writes with Keras's ``save_weights``:

``<case>.h5`` (with the top: a 1000-class ``predictions`` layer) or ``<case>-no-top.h5``
    a no-top file holds the weights of the model with the top, copied by Keras
    (``load_weights(by_name=True)``) into the ``include_top=False`` model, as Keras Applications'
    no-top files are;
``<case>.npz``
    ``inputs`` (NHWC; float16 values fed as float32), and Keras's outputs on them: ``probabilities``
    (the model's softmax output), ``logits`` (the same weights in the model built with
    ``classifier_activation=None``) and ``features`` (the no-top model: the last cell's output after
    its ReLU, NHWC).
``keras.json``
    the constructor arguments of each case, versions, and counts of the layers and weights Keras wrote.

Cases:

* ``mobile``: NASNetMobile's settings (stem 32 filters, no skip_reduction) at penultimate_filters=192
  (F0 = 8), num_blocks=1, input 96 x 96: the file with the top (1.8 MB: the 1000-class top is 0.8 MB,
  HDF5's per-dataset headers most of the rest; about 1 MB compressed, as git stores it).
* ``large``: NASNetLarge's settings (stem 96 filters, skip_reduction=True) at penultimate_filters=192,
  num_blocks=1, input 107 x 107: the no-top file (its features are compared).

How to rerun (under a minute on 2 CPU cores)::

    python3 -m venv /work/refenv-tf
    /work/refenv-tf/bin/pip install tensorflow-cpu tf-keras tf-slim h5py
    /work/refenv-tf/bin/python tools/make_keras_fixture.py             # from the repository root

``--check-full-size`` also builds NASNetMobile(weights=None) and reports the size of its .h5 (not
kept). ``--case mobile-full -o DIR`` makes the same kind of fixture for NASNetMobile itself (224 x 224,
22 MB, not committed); with ``NASNET_KERAS_FULL=DIR`` the tests check it too.
Made with tf-keras 2.21.0 / tensorflow-cpu 2.21.0, h5py 3.14.0.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_SEED = 21
INPUT_SEED = 22

CASES = {
    "mobile": dict(args=dict(penultimate_filters=192, num_blocks=1, stem_block_filters=32, skip_reduction=False,
                             filter_multiplier=2), input_shape=(2, 96, 96, 3), top=True, no_top=False),
    "large": dict(args=dict(penultimate_filters=192, num_blocks=1, stem_block_filters=96, skip_reduction=True,
                            filter_multiplier=2), input_shape=(1, 107, 107, 3), top=False, no_top=True),
    # NASNetMobile itself (22 MB): only with --case, into another folder; tests/test_weights_keras.py checks it
    # when NASNET_KERAS_FULL names that folder.
    "mobile-full": dict(args=dict(penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
                                  skip_reduction=False, filter_multiplier=2),
                        input_shape=(1, 224, 224, 3), top=True, no_top=False, full=True),
}


def perturbed(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    leaf = name.rsplit("/", 1)[-1].split(":")[0]
    if leaf == "gamma":
        v = rng.uniform(0.5, 1.0, shape)
    elif leaf in ("beta", "moving_mean"):
        v = rng.normal(0.0, 0.1, shape)
    elif leaf == "moving_variance":
        v = rng.uniform(1.0, 2.0, shape)
    elif leaf == "bias":
        v = rng.normal(0.0, 0.1, shape)
    elif leaf == "kernel" and len(shape) == 2:      # Dense (in, out)
        v = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), shape)
    elif leaf == "depthwise_kernel":                # (h, w, in, multiplier)
        v = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1])), shape)
    elif leaf in ("kernel", "pointwise_kernel"):    # (h, w, in, out)
        v = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1] * shape[2])), shape)
    else:
        raise SystemExit(f"no value rule for weight {name!r}")
    return np.asarray(v, dtype=np.float32)


def h5_layout(path: Path) -> dict:
    import h5py

    text = lambda v: v.decode("utf8") if isinstance(v, bytes) else str(v)  # noqa: E731
    with h5py.File(path, "r") as f:
        layers = [text(n) for n in f.attrs["layer_names"]]
        weights = {n: [text(w) for w in f[n].attrs["weight_names"]] for n in layers}
        return {"layers": len(layers), "layers_with_weights": sum(1 for w in weights.values() if w),
                "weights": sum(len(w) for w in weights.values()),
                "example": {n: w for n, w in weights.items() if n in ("stem_bn1", "separable_conv_1_normal_left1_0",
                                                                      "predictions")}}


def make_case(name: str, spec: dict, out: Path) -> dict:
    import tensorflow as tf
    import tf_keras
    from tf_keras.src.applications.nasnet import NASNet  # the public module exports only the two presets

    shape = spec["input_shape"]
    build = lambda **kw: NASNet(input_shape=shape[1:], weights=None, **spec["args"], **kw)  # noqa: E731
    tf_keras.backend.clear_session()
    tf.random.set_seed(0)
    model = build(include_top=True, classes=1000)
    rng = np.random.default_rng(WEIGHT_SEED)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([perturbed(w.name, tuple(w.shape), rng) for w in layer.weights])
    inputs = np.random.default_rng(INPUT_SEED).normal(0.0, 0.5, shape).clip(-1.0, 1.0).astype(np.float16)
    x = inputs.astype(np.float32)
    arrays = {"inputs": inputs}
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.h5"
        model.save_weights(str(full))
        arrays["probabilities"] = model(x, training=False).numpy()
        logit_model = build(include_top=True, classes=1000, classifier_activation=None)
        logit_model.load_weights(str(full))
        arrays["logits"] = logit_model(x, training=False).numpy()
        no_top = build(include_top=False)
        no_top.load_weights(str(full), by_name=True)
        arrays["features"] = no_top(x, training=False).numpy()
        if spec["top"]:
            files[f"{name}.h5"] = full.read_bytes()
        if spec["no_top"]:
            path = Path(tmp) / "no_top.h5"
            no_top.save_weights(str(path))
            files[f"{name}-no-top.h5"] = path.read_bytes()
        layouts = {}
        for fname, data in files.items():
            (out / fname).write_bytes(data)
            layouts[fname] = h5_layout(out / fname)
    if not spec["top"]:
        arrays.pop("probabilities"), arrays.pop("logits")
    np.savez(out / f"{name}.npz", **arrays)
    p = arrays.get("probabilities")
    print(f"{name}: {layouts[next(iter(layouts))]['weights']} weights; files "
          f"{ {f: len(d) for f, d in files.items()} }; features {arrays['features'].shape}"
          + (f", logits {arrays['logits'].shape}, max prob {p.max():.3f}" if p is not None else ""))
    return {"args": spec["args"], "input_shape_nhwc": list(shape), "files": layouts}


def check_full_size() -> None:
    from tf_keras.applications.nasnet import NASNetMobile

    with tempfile.TemporaryDirectory() as tmp:
        model = NASNetMobile(weights=None)
        path = Path(tmp) / "mobile.h5"
        model.save_weights(str(path))
        layout = h5_layout(path)
        count = sum(int(np.prod(w.shape)) for w in model.weights)
        print(f"NASNetMobile(weights=None): {count:,} weights (BN statistics included), .h5 "
              f"{path.stat().st_size / 2**20:.1f} MiB, {layout['layers']} layers")


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "tests" / "fixtures" / "keras"))
    ap.add_argument("--check-full-size", action="store_true")
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="only these cases (default: the small ones)")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"made_by": "tools/make_keras_fixture.py", "weight_seed": WEIGHT_SEED, "input_seed": INPUT_SEED,
            "versions": {p: importlib.metadata.version(p) for p in ("tf-keras", "tensorflow-cpu", "h5py", "numpy")},
            "cases": {}}
    for name in args.case or [n for n, spec in CASES.items() if not spec.get("full")]:
        meta["cases"][name] = make_case(name, CASES[name], out)
    (out / "keras.json").write_text(json.dumps(meta, indent=1) + "\n")
    if args.check_full_size:
        check_full_size()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
