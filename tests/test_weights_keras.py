"""Keras Applications NASNet .h5 files: exact against Keras's own forward pass.

tests/fixtures/keras/ was made by tools/make_keras_fixture.py with tf_keras's NASNet constructor at a
reduced size (mobile: NASNetMobile's settings, penultimate 192, one block a stage, with the top;
large: NASNetLarge's settings - stem 96, skip_reduction - without the top), weights and BatchNorm
statistics perturbed, written by Keras's save_weights, with Keras's outputs on fixed inputs.

Keras's stride-2 reduction pools pad with zeros and pool "valid" (the zeros count in averages and
enter maxima); a model built with padding="keras" has that arithmetic, and then our outputs equal
Keras's within 1e-4. With padding="same" (the default) our model computes TensorFlow's NASNet; the
difference on these weights is measured and printed (pytest -s).
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nasnet import NasnetError
from nasnet.model.layers import Pool2d
from nasnet.model.network import NASNet
from nasnet.weights.formats import KERAS_H5, detect_format
from nasnet.weights.io import CheckpointMismatch
from nasnet.weights.keras_h5 import KERAS, config_from_keras, convert_keras, describe, read_keras_h5
from nasnet.weights.mapping import source_shape
from nasnet.zoo import import_weights, model_config
from nasnet.zoo.importer import zoo_match

h5py = pytest.importorskip("h5py")

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
META = json.loads((FIXTURES / "keras.json").read_text())
FULL = os.environ.get("NASNET_KERAS_FULL")  # a folder of the tool's --case mobile-full output
TOL = 1e-4


def _case(name, base=FIXTURES):
    spec = (META if base == FIXTURES else json.loads((Path(base) / "keras.json").read_text()))["cases"][name]
    data = np.load(Path(base) / f"{name}.npz")
    x = torch.from_numpy(data["inputs"].astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    config = config_from_keras(**spec["args"], image_size=spec["input_shape_nhwc"][1])
    return spec, data, x, config


def _one_line(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for n in needles:
        assert n in text, text


def _zero_padded(model):
    return sum(isinstance(m, Pool2d) and m.zero_padded for m in model.modules())


def test_mobile_with_top_equals_keras():
    _, data, x, config = _case("mobile")
    model, info = import_weights(FIXTURES / "mobile.h5", config, padding="keras")
    assert info.num_classes == 1000 and not info.dropped_background
    assert info.keys == META["cases"]["mobile"]["files"]["mobile.h5"]["weights"] and info.format == KERAS_H5
    assert model.config.padding == "keras" and _zero_padded(model) == 12   # 3 stride-2 pools in each reduction
    with torch.no_grad():
        logits, feats = model(x), model.forward_features(x)
    diff = np.abs(logits.numpy() - data["logits"]).max()
    prob = np.abs(torch.softmax(logits, 1).numpy() - data["probabilities"]).max()
    fdiff = np.abs(feats.permute(0, 2, 3, 1).numpy() - data["features"]).max()
    print(f"Keras mobile (padding='keras'): max |logit diff| {diff:.2e}, |prob diff| {prob:.2e}, "
          f"|feature diff| {fdiff:.2e}")
    assert diff < TOL and prob < TOL and fdiff < TOL
    tf_model, _ = import_weights(FIXTURES / "mobile.h5", config)    # TensorFlow's arithmetic on Keras's weights
    assert tf_model.config.padding == "same" and _zero_padded(tf_model) == 0
    with torch.no_grad():
        tf_logits = tf_model(x)
    tf_diff = np.abs(tf_logits.numpy() - data["logits"]).max()
    print(f"Keras mobile, TensorFlow-exact model (padding='same'): max |logit diff| {tf_diff:.3f} "
          f"(logits up to {np.abs(data['logits']).max():.2f})")
    assert tf_diff > 100 * TOL


def test_large_no_top_features_equal_keras():
    _, data, x, config = _case("large")
    model, info = import_weights(FIXTURES / "large-no-top.h5", config.replace(num_classes=0, padding="keras"))
    assert model.config.num_classes == 0 and info.source_classes == 0 and info.notes
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model(x)
    fdiff = np.abs(feats.permute(0, 2, 3, 1).numpy() - data["features"]).max()
    print(f"Keras large no-top (padding='keras'): max |feature diff| {fdiff:.2e}")
    assert fdiff < TOL
    assert pooled.shape == (1, 192)          # no classifier: pooled features
    tf_model, _ = import_weights(FIXTURES / "large-no-top.h5", config, padding="same")
    with torch.no_grad():
        tf_feats = tf_model.forward_features(x)
    print(f"Keras large no-top, TensorFlow-exact model: max |feature diff| "
          f"{np.abs(tf_feats.permute(0, 2, 3, 1).numpy() - data['features']).max():.3f}")


def test_keras_padding_counts_the_zeros_of_strided_pools_only():
    from nasnet.model.layers import LayerStyle

    x = -torch.ones(1, 1, 4, 4)          # even size: "SAME" pads one row and column at the bottom/right
    keras, same = LayerStyle(padding="keras"), LayerStyle(padding="same")
    assert Pool2d("avg", 3, 2, keras)(x)[0, 0, -1, -1].item() == pytest.approx(-4 / 9)   # 4 pixels + 5 zeros
    assert Pool2d("avg", 3, 2, same)(x)[0, 0, -1, -1].item() == pytest.approx(-1.0)      # zeros not counted
    assert Pool2d("max", 3, 2, keras)(x)[0, 0, -1, -1].item() == 0.0                     # a zero is the max
    assert Pool2d("max", 3, 2, same)(x)[0, 0, -1, -1].item() == -1.0
    for kind in ("avg", "max"):                                                           # stride 1: "SAME"
        assert torch.equal(Pool2d(kind, 3, 1, keras)(x), Pool2d(kind, 3, 1, same)(x))


def test_block_ids_follow_keras():
    ids = KERAS.cell_names(model_config("nasnet_a_mobile"))
    assert [b for _, b in ids] == ["stem_1", "stem_2", "0", "1", "2", "3", "reduce_4", "5", "6", "7", "8",
                                  "reduce_8", "9", "10", "11", "12"]
    assert ids[0][0] == "reduction" and ids[2][0] == "normal"


@pytest.mark.parametrize("name", ["nasnet_a_mobile", "nasnet_a_large"])
def test_applications_files_are_detected(name):
    """Shape-only stand-ins for NASNet-{mobile,large}.h5: the zoo model is found from the stem, F0 and N."""
    config = model_config(name, aux_head=False)
    with torch.device("meta"):
        model = NASNet(config)
    expected = model.state_dict()
    weights = {src.name: np.broadcast_to(np.float32(0), source_shape(tuple(expected[k].shape), src))
               for k, src in KERAS.table(model).items()}
    assert zoo_match(describe(weights)["structure"]) == [name]
    if name == "nasnet_a_large":
        with pytest.raises(NasnetError) as e:      # shapes fit, but a Large-sized conversion is not needed here
            convert_keras(weights, model_config("nasnet_a_mobile"), name="nasnet_a_mobile")
        _one_line(e, "nasnet_a_mobile has stem 32 filters")
        return
    cfg, state, info = convert_keras(weights, model_config(name), name=name)
    assert info.model == name and cfg == config and state["classifier.weight"].shape == (1000, 1056)


def test_split_attributes_and_whole_model_files(tmp_path):
    ref, _ = read_keras_h5(FIXTURES / "mobile.h5")
    split = tmp_path / "split.h5"
    shutil.copy(FIXTURES / "mobile.h5", split)
    with h5py.File(split, "a") as f:                # how Keras stores attributes too big for one header
        names = np.asarray(f.attrs["layer_names"])
        del f.attrs["layer_names"]
        for i, chunk in enumerate(np.array_split(names, 3)):
            f.attrs[f"layer_names{i}"] = chunk
    got, _ = read_keras_h5(split)
    assert got.keys() == ref.keys()
    whole = tmp_path / "whole.h5"
    with h5py.File(FIXTURES / "mobile.h5", "r") as src, h5py.File(whole, "w") as dst:
        group = dst.create_group("model_weights")
        for k, v in src.attrs.items():
            group.attrs[k] = v
        for k in src:
            src.copy(src[k], group)
        dst.attrs["model_config"] = "{}"
    got, _ = read_keras_h5(whole)
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)
    assert detect_format(whole) == KERAS_H5


def test_damaged_and_foreign_files(tmp_path):
    data = (FIXTURES / "mobile.h5").read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(NasnetError) as e:
        read_keras_h5(cut)
    _one_line(e, "cut.h5", "truncated or damaged")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(NasnetError) as e:
        read_keras_h5(text)
    _one_line(e, "text.h5", "not an HDF5 file")
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("something")
    with pytest.raises(NasnetError) as e:
        read_keras_h5(empty)
    _one_line(e, "empty.h5", "layer_names")
    keras3 = tmp_path / "model.weights.h5"
    with h5py.File(keras3, "w") as f:
        f.create_group("layers").create_group("stem_conv1").create_group("vars")
    with pytest.raises(NasnetError) as e:
        read_keras_h5(keras3)
    _one_line(e, "model.weights.h5", "Keras 3")
    other = tmp_path / "resnet.h5"
    with h5py.File(other, "w") as f:               # a Keras weights file, of another network
        f.attrs["layer_names"] = np.array([b"conv1"])
        g = f.create_group("conv1")
        g.attrs["weight_names"] = np.array([b"conv1/kernel:0"])
        g.create_group("conv1").create_dataset("kernel:0", data=np.zeros((3, 3, 3, 8), np.float32))
    with pytest.raises(NasnetError) as e:
        import_weights(other)
    _one_line(e, "resnet.h5", "not a Keras NASNet weights file")
    holed = tmp_path / "holed.h5"
    shutil.copy(FIXTURES / "mobile.h5", holed)
    with h5py.File(holed, "a") as f:
        del f["stem_bn1"]["stem_bn1"]["gamma:0"]
    with pytest.raises(NasnetError) as e:
        read_keras_h5(holed)
    _one_line(e, "holed.h5", "stem_bn1/gamma:0")


def test_mismatched_weights_are_listed(tmp_path):
    _, _, _, config = _case("mobile")
    weights, _ = read_keras_h5(FIXTURES / "mobile.h5")
    weights.pop("separable_conv_2_bn_normal_left5_0/moving_variance")
    weights["extra_layer/kernel"] = np.zeros((1, 1, 2, 2), np.float32)
    weights["predictions/bias"] = np.zeros(999, np.float32)
    with pytest.raises(CheckpointMismatch) as e:
        convert_keras(weights, config, where="'mobile.h5'")
    _one_line(e, "'mobile.h5' does not fit", "separable_conv_2_bn_normal_left5_0/moving_variance", "extra_layer/kernel",
              "predictions/bias (999,)")
    with pytest.raises(NasnetError) as e:
        import_weights(FIXTURES / "mobile.h5", "nasnet_a_mobile")
    _one_line(e, "mobile.h5", "F0 8", "nasnet_a_mobile has stem 32 filters, F0 44")


@pytest.mark.skipif(not FULL, reason="NASNET_KERAS_FULL is not set (see tools/make_keras_fixture.py)")
def test_full_size_nasnet_mobile():
    _, data, x, _ = _case("mobile-full", FULL)
    model, info = import_weights(Path(FULL) / "mobile-full.h5", padding="keras")     # found from the shapes
    tf_model, _ = import_weights(Path(FULL) / "mobile-full.h5")
    assert info.model == "nasnet_a_mobile" and model.config.num_classes == 1000
    with torch.no_grad():
        logits, tf_logits = model(x), tf_model(x)
    diff = np.abs(logits.numpy() - data["logits"]).max()
    tf_diff = np.abs(tf_logits.numpy() - data["logits"]).max()
    print(f"Keras NASNetMobile: max |logit diff| {diff:.2e} (padding='keras'), {tf_diff:.3f} TensorFlow-exact "
          f"(logits up to {np.abs(data['logits']).max():.2f})")
    assert diff < TOL
