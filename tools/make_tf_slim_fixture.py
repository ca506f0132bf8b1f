"""Make tests/fixtures/tf_slim/<case>/: real TF-Slim NASNet-A checkpoints with TensorFlow's logits.

For each case below this builds NASNet-A with TF-Slim's own builder (``build_nasnet_mobile`` /
``build_nasnet_large`` of ``research/slim/nets/nasnet`` in TensorFlow's model garden) at a reduced
size, gives every variable - weights, BatchNorm scales and offsets, moving means and variances, the
global step - deterministic non-trivial values, and writes:

``model.ckpt.index``, ``model.ckpt.data-00000-of-00001``
    a V2 checkpoint written by ``tf.compat.v1.train.Saver`` (the writer of the released
    ``nasnet-a_*_04_10_2017`` checkpoints; no meta graph, no ``checkpoint`` state file, as released);
``expected.npz``
    ``inputs`` (NHWC, float16 values fed to TensorFlow as float32), ``logits`` (eval mode,
    ``is_training=False``) and, where the case has the auxiliary head, ``aux_logits`` (TF-Slim's
    ``_build_aux_head`` run in eval mode on the same variables);
``meta.json``
    the hparams and classes, versions, and what TensorFlow's own checkpoint reader
    (``tf.train.load_checkpoint``) reports for every variable: dtype, shape, sum and first values.

TF-Slim builds the auxiliary head only when ``is_training=True``. So the graph is built once in
training mode (which creates every variable, the head's included, as in the released checkpoints),
then again in eval mode with ``reuse=True`` for the logits.

Cases (small enough to commit; the real models are 5.3M and 88.9M parameters):

* ``mobile``: ``mobile_imagenet_config()`` with num_cells=3 (N = 1), num_conv_filters=8, 1001
  classes, no auxiliary head (with 1001 classes the head's 768 x 1001 classifier alone would be
  3 MB), input 2 x 96 x 96 x 3.
* ``large``: ``large_imagenet_config()`` (stem multiplier 3, skip_reduction_layer_input=1,
  drop-path 0.7 in training) with num_cells=6 (N = 2), num_conv_filters=8, the auxiliary head, 11
  classes, input 1 x 107 x 107 x 3.

Input sizes 96 and 107 put both odd and even feature maps in front of stride-2 ops, where TensorFlow's
"SAME" padding is asymmetric.

Two more cases are made only when named with ``--case``, into another folder (``-o``), because they
are too big to commit: ``mobile-full`` (NASNet-A Mobile exactly as released: 12 cells, F0 44, 1001
classes, the auxiliary head; 224 x 224) and ``large-18-cells`` (Large's 18 cells, stem and
skip_reduction_layer_input at F0 = 8, 1001 classes, the auxiliary head; 331 x 331). With
``NASNET_TF_SLIM_FULL=<that folder>`` the tests check them too.

The model-garden source is not on PyPI. Its two files are read from a folder (``--refsrc``, default
/work/refsrc) laid out as ``nets/nasnet/nasnet.py`` and ``nets/nasnet/nasnet_utils.py``, never from
this repository. They need three shims, set up below and changing no computation: their
``tensorflow.contrib`` imports (gone since TF 2) are served by tf_slim's ``arg_scope`` /
``add_arg_scope`` / tf_slim itself and a small ``HParams`` class; ``nasnet_utils.py`` (which still says
``import tensorflow as tf``) is compiled with that one line read as ``import tensorflow.compat.v1 as
tf``; and tf_keras 2.21 keeps TF's legacy layers (which tf_slim's layers use) under
``tf_keras.src.legacy_tf_layers``, where TensorFlow 2.21 looks for ``tf_keras.legacy_tf_layers``.
Graph mode (``tf.compat.v1.disable_eager_execution``) as TF-Slim needs.

How to rerun (about a minute on 2 CPU cores)::

    python3 -m venv /work/refenv-tf
    /work/refenv-tf/bin/pip install tensorflow-cpu tf-keras tf-slim h5py
    # the model garden's research/slim/nets/nasnet/{nasnet.py,nasnet_utils.py} -> /work/refsrc/nets/nasnet/
    /work/refenv-tf/bin/python tools/make_tf_slim_fixture.py          # from the repository root

Made with tensorflow-cpu 2.21.0, tf-slim 1.1.0, tf-keras 2.21.0 (Python 3.11). The model-garden
files used: ``nasnet.py`` of tensorflow/models at 3617973 (the tf_slim port) and ``nasnet_utils.py``
of the same generation (with ``use_bounded_activation`` and ``current_step``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_SEED = 12
INPUT_SEED = 13
GLOBAL_STEP = 187_460

CASES = {
    "mobile": dict(builder="build_nasnet_mobile", arg_scope="nasnet_mobile_arg_scope",
                   config="mobile_imagenet_config",
                   hparams=dict(num_cells=3, num_conv_filters=8, use_aux_head=0),
                   num_classes=1001, input_shape=(2, 96, 96, 3)),
    "large": dict(builder="build_nasnet_large", arg_scope="nasnet_large_arg_scope",
                  config="large_imagenet_config",
                  hparams=dict(num_cells=6, num_conv_filters=8, use_aux_head=1),
                  num_classes=11, input_shape=(1, 107, 107, 3)),
    # Full-depth checks, too big to commit (31 MB / 19 MB): made on request (--case) into another folder and
    # checked by tests/test_weights_tf_slim.py when NASNET_TF_SLIM_FULL names that folder.
    "mobile-full": dict(builder="build_nasnet_mobile", arg_scope="nasnet_mobile_arg_scope",
                        config="mobile_imagenet_config", hparams=dict(), num_classes=1001,
                        input_shape=(1, 224, 224, 3), full=True),
    "large-18-cells": dict(builder="build_nasnet_large", arg_scope="nasnet_large_arg_scope",
                           config="large_imagenet_config", hparams=dict(num_conv_filters=8), num_classes=1001,
                           input_shape=(1, 331, 331, 3), full=True),
}


class HParams:
    """The part of tf.contrib.training.HParams that TF-Slim's NASNet uses."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    def set_hparam(self, name, value):
        setattr(self, name, value)

    def values(self):
        return dict(self.__dict__)


def load_tf_slim_nasnet(refsrc: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow.compat.v1 as tf
    import tf_slim as slim

    tf.disable_eager_execution()
    legacy = importlib.import_module("tf_keras.src.legacy_tf_layers")
    sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
    for sub in ("base", "convolutional", "core", "normalization", "pooling"):
        sys.modules.setdefault(f"tf_keras.legacy_tf_layers.{sub}",
                               importlib.import_module(f"tf_keras.src.legacy_tf_layers.{sub}"))
    training = types.ModuleType("tensorflow.contrib.training")
    training.HParams = HParams
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.training = training
    contrib.slim = slim
    contrib.framework = types.SimpleNamespace(arg_scope=slim.arg_scope, add_arg_scope=slim.add_arg_scope)
    sys.modules["tensorflow.contrib"], sys.modules["tensorflow.contrib.training"] = contrib, training
    tf.contrib = contrib

    folder = refsrc / "nets" / "nasnet"
    for f in ("nasnet.py", "nasnet_utils.py"):
        if not (folder / f).is_file():
            raise SystemExit(f"{folder / f} not found: put the model garden's research/slim/nets/nasnet files there")
    for name, path in (("nets", refsrc / "nets"), ("nets.nasnet", folder)):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg
    utils_path = folder / "nasnet_utils.py"
    text = utils_path.read_text()
    if "import tensorflow as tf\n" in text:
        text = text.replace("import tensorflow as tf\n", "import tensorflow.compat.v1 as tf\n", 1)
    utils = types.ModuleType("nets.nasnet.nasnet_utils")
    utils.__file__ = str(utils_path)
    exec(compile(text, str(utils_path), "exec"), utils.__dict__)
    sys.modules["nets.nasnet.nasnet_utils"] = utils
    sys.modules["nets.nasnet"].nasnet_utils = utils
    nasnet = importlib.import_module("nets.nasnet.nasnet")
    return tf, slim, nasnet


def perturbed_value(name: str, shape: tuple[int, ...], dtype, rng: np.random.Generator) -> np.ndarray:
    """Deterministic, well-scaled values: convs/FC ~ N(0, 2/fan_in) (1/fan_in for FC), BN gamma
    U(0.5, 1), beta and moving mean N(0, 0.1^2), moving variance U(1, 2), biases N(0, 0.1^2)."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "global_step":
        return np.array(GLOBAL_STEP, dtype=dtype)
    if leaf == "gamma":
        v = rng.uniform(0.5, 1.0, shape)
    elif leaf in ("beta", "moving_mean"):
        v = rng.normal(0.0, 0.1, shape)
    elif leaf == "moving_variance":
        v = rng.uniform(1.0, 2.0, shape)
    elif leaf == "biases":
        v = rng.normal(0.0, 0.1, shape)
    elif leaf in ("weights", "depthwise_weights", "pointwise_weights"):
        if len(shape) == 2:     # fully connected: (in, out)
            v = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), shape)
        elif leaf == "depthwise_weights":   # (h, w, in, multiplier)
            v = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1])), shape)
        else:                   # (h, w, in, out)
            v = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1] * shape[2])), shape)
    else:
        raise SystemExit(f"no value rule for variable {name!r}")
    return np.asarray(v, dtype=dtype)


def read_back(tf, checkpoint: Path) -> dict:
    """What TensorFlow's own reader reads of every variable of `checkpoint`: dtype, shape, sum, first values."""
    reader = tf.train.load_checkpoint(str(checkpoint))
    dtypes = reader.get_variable_to_dtype_map()
    recorded = {}
    for var, var_shape in sorted(reader.get_variable_to_shape_map().items()):
        value = reader.get_tensor(var)
        flat = np.asarray(value).ravel()
        recorded[var] = {"dtype": dtypes[var].name, "shape": list(var_shape),
                         "sum": float(np.sum(flat, dtype=np.float64)),
                         "head": [v.item() for v in flat[:4]]}
    return recorded


def write_meta(path: Path, meta: dict) -> None:
    """meta.json, indented, with one line per variable under "tf_reader" (the last key)."""
    text = json.dumps({k: v for k, v in meta.items() if k != "tf_reader"}, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in meta["tf_reader"].items())
    path.write_text(text[:-2] + ',\n "tf_reader": {\n' + rows + "\n }\n}\n")


def make_case(name: str, spec: dict, out_dir: Path, reference) -> dict:
    tf, slim, nasnet = reference
    graph = tf.Graph()
    with graph.as_default():
        hparams = getattr(nasnet, spec["config"])()
        for k, v in spec["hparams"].items():
            hparams.set_hparam(k, v)
        build = getattr(nasnet, spec["builder"])
        scope = getattr(nasnet, spec["arg_scope"])
        shape = spec["input_shape"]
        images = tf.placeholder(tf.float32, [None, *shape[1:]], name="images")
        with slim.arg_scope(scope()):
            tf.train.get_or_create_global_step()     # first, as a training script does (drop-path reads it)
            build(images, spec["num_classes"], is_training=True, config=hparams)   # creates every variable
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            with slim.arg_scope(scope()):
                logits, end_points = build(images, spec["num_classes"], is_training=False, config=hparams)
                aux_logits = None
                if hparams.use_aux_head:
                    cells = nasnet.nasnet_utils.calc_reduction_layers(hparams.num_cells, hparams.num_reduction_layers)
                    aux_cell = cells[1] - 1
                    aux_points: dict = {}
                    with slim.arg_scope([slim.batch_norm], is_training=False):
                        nasnet._build_aux_head(tf.nn.relu(end_points[f"Cell_{aux_cell}"]), aux_points,
                                               spec["num_classes"], hparams, scope=f"aux_{aux_cell}")
                    aux_logits = aux_points["AuxLogits"]
        variables = sorted(tf.global_variables(), key=lambda v: v.op.name)
        rng = np.random.default_rng(WEIGHT_SEED)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            for v in variables:
                v.load(perturbed_value(v.op.name, tuple(v.shape.as_list()), v.dtype.as_numpy_dtype, rng), sess)
            inputs = np.random.default_rng(INPUT_SEED).normal(0.0, 0.5, shape).clip(-1.0, 1.0).astype(np.float16)
            fetch = {"logits": logits} if aux_logits is None else {"logits": logits, "aux_logits": aux_logits}
            outputs = sess.run(fetch, {images: inputs.astype(np.float32)})
            out_dir.mkdir(parents=True, exist_ok=True)
            for old in out_dir.glob("model.ckpt*"):
                old.unlink()
            saver = tf.train.Saver(var_list=variables, write_version=tf.train.SaverDef.V2)
            saver.save(sess, str(out_dir / "model.ckpt"), write_meta_graph=False, write_state=False)
    recorded = read_back(tf, out_dir / "model.ckpt")
    np.savez(out_dir / "expected.npz", inputs=inputs, **{k: np.asarray(v, np.float32) for k, v in outputs.items()})
    meta = {
        "made_by": "tools/make_tf_slim_fixture.py",
        "case": name,
        "builder": f"nets.nasnet.nasnet.{spec['builder']} under {spec['arg_scope']}()",
        "hparams": {k: v for k, v in hparams.values().items()},
        "num_classes": spec["num_classes"],
        "input_shape_nhwc": list(shape),
        "aux_head": bool(hparams.use_aux_head),
        "versions": {p: importlib.metadata.version(p) for p in ("tensorflow-cpu", "tf-slim", "tf-keras", "numpy")},
        "weight_seed": WEIGHT_SEED,
        "input_seed": INPUT_SEED,
        "tf_reader": recorded,
    }
    write_meta(out_dir / "meta.json", meta)
    sizes = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir())}
    print(f"{name}: {len(recorded)} variables, logits {outputs['logits'].shape}, "
          f"files {sizes} ({sum(sizes.values()) / 1024:.0f} KiB)")
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "tests" / "fixtures" / "tf_slim"))
    ap.add_argument("--refsrc", default="/work/refsrc", help="folder holding nets/nasnet/{nasnet,nasnet_utils}.py")
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="only these cases (default: all)")
    args = ap.parse_args()
    reference = load_tf_slim_nasnet(Path(args.refsrc))
    for name in args.case or [n for n, spec in CASES.items() if not spec.get("full")]:
        make_case(name, CASES[name], Path(args.output) / name, reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
