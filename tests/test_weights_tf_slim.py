"""TF-Slim NASNet-A checkpoints: our logits on checkpoints TensorFlow wrote equal TensorFlow's.

tests/fixtures/tf_slim/{mobile,large} were made by tools/make_tf_slim_fixture.py: TF-Slim's own
NASNet builder at a reduced size (mobile: N = 1, F0 = 8, 1001 classes; large: stem x 3,
skip_reduction_layer_input, N = 2, F0 = 8, the auxiliary head, 11 classes), every variable and
BatchNorm statistic set to non-trivial values, saved by tf.compat.v1.train.Saver, with TensorFlow's
eval-mode logits (and aux logits) on fixed NHWC inputs. The measured max |logit difference| is
printed (pytest -s) and must stay below 1e-4.
"""

import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nasnet import NasnetError
from nasnet.model.network import NASNet
from nasnet.weights.formats import TF_CHECKPOINT, detect_format
from nasnet.weights.io import CheckpointMismatch
from nasnet.weights.mapping import source_shape
from nasnet.weights.tensor_bundle import read_tensor_bundle
from nasnet.weights.tf_slim import TF_SLIM, config_from_hparams, convert_tf_slim, describe
from nasnet.zoo import import_weights, model_config
from nasnet.zoo.importer import convert_weights, zoo_match

FIXTURES = Path(__file__).parent / "fixtures" / "tf_slim"
FULL = os.environ.get("NASNET_TF_SLIM_FULL")  # a folder of the tool's --case mobile-full / large-18-cells output
TOL = 1e-4


def _case(name, base=FIXTURES):
    d = Path(base) / name
    meta = json.loads((d / "meta.json").read_text())
    expected = np.load(d / "expected.npz")
    config = config_from_hparams(meta["hparams"], meta["num_classes"], meta["input_shape_nhwc"][1])
    x = torch.from_numpy(expected["inputs"].astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    return d, meta, expected, config, x


def _run(model, x):
    with torch.no_grad():
        return model(x, return_aux=True)


@pytest.mark.parametrize("name", ["mobile", "large"])
def test_logits_equal_tensorflows(name):
    d, meta, expected, config, x = _case(name)
    model, info = import_weights(d / "model.ckpt", config)
    logits, aux = _run(model, x)
    ref = expected["logits"]
    if meta["num_classes"] == 1001:
        assert info.dropped_background and info.num_classes == 1000
        ref = ref[:, 1:]
    diff = np.abs(logits.numpy() - ref).max()
    print(f"TF-Slim {name}: max |logit diff| vs TensorFlow {diff:.2e} (logits up to {np.abs(ref).max():.2f})")
    assert diff < TOL
    assert info.ignored == ("global_step",) and info.counters_missing > 0
    if meta["aux_head"]:
        aux_diff = np.abs(aux.numpy() - expected["aux_logits"]).max()
        print(f"TF-Slim {name}: max |aux logit diff| vs TensorFlow {aux_diff:.2e}")
        assert model.config.aux_head and aux_diff < TOL
    else:
        assert aux is None


def test_keep_background_keeps_1001_classes():
    d, _, expected, config, x = _case("mobile")
    model, info = import_weights(d, config, keep_background=True)
    assert info.num_classes == 1001 and not info.dropped_background
    logits, _ = _run(model, x)
    assert np.abs(logits.numpy() - expected["logits"]).max() < TOL


def test_release_archive_and_aux_head_left_out(tmp_path):
    d, _, expected, config, x = _case("large")
    archive = tmp_path / "nasnet-a_large_04_10_2017.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
            tar.add(d / f, arcname=f)
    assert detect_format(archive) == TF_CHECKPOINT
    model, info = import_weights(archive, config, aux_head=False)
    assert model.aux_head is None and any("auxiliary head left out" in n for n in info.notes)
    assert sum(n.startswith("aux_") for n in info.ignored) == 12
    logits, _ = _run(model, x)
    assert np.abs(logits.numpy() - expected["logits"]).max() < TOL


@pytest.mark.parametrize("name", ["mobile", "large"])
def test_table_covers_tensorflows_variables_exactly(name):
    d, meta, _, config, _ = _case(name)
    cfg = config.replace(num_classes=meta["num_classes"], aux_head=meta["aux_head"])
    with torch.device("meta"):
        table = TF_SLIM.table(NASNet(cfg))
    assert {s.name for s in table.values()} == set(meta["tf_reader"]) - {"global_step"}


def test_zoo_model_detected_from_the_shapes():
    d, _, expected, _, x = _case("mobile")        # N = 1, F0 = 8, stem 32: the zoo's tiny ImageNet model
    model, info = import_weights(d)
    assert info.model == "nasnet_a_tiny_imagenet" and model.preprocessing is not None
    logits, _ = _run(model, x)
    assert np.abs(logits.numpy() - expected["logits"][:, 1:]).max() < TOL


def test_cell_names_follow_tf_slims_builder():
    names = TF_SLIM.cell_names(model_config("nasnet_a_mobile"))
    assert names[:3] == ["cell_stem_0", "cell_stem_1", "cell_0"]
    assert names[6] == "reduction_cell_0" and names[7] == "cell_4" and names[11] == "reduction_cell_1"
    assert names[-1] == "cell_11"
    assert TF_SLIM.cell_names(model_config("nasnet_a_large"))[-1] == "cell_17"


def _synthetic(model_name: str) -> dict[str, np.ndarray]:
    """Zero-cost stand-ins (broadcast views) with the shapes of the released checkpoint: 1001 classes + aux head."""
    cfg = model_config(model_name, num_classes=1001, aux_head=True)
    with torch.device("meta"):
        model = NASNet(cfg)
    expected = model.state_dict()
    out = {"global_step": np.zeros((), np.int64)}
    for key, src in TF_SLIM.table(model).items():
        shape = source_shape(tuple(expected[key].shape), src)
        out[src.name] = np.broadcast_to(np.float32(0), shape)
    return out


@pytest.mark.parametrize("model_name,aux", [("nasnet_a_mobile", "aux_7"), ("nasnet_a_large", "aux_11")])
def test_released_layouts_are_detected(model_name, aux):
    variables = _synthetic(model_name)
    assert any(n.startswith(f"{aux}/aux_logits/") for n in variables)
    if model_name == "nasnet_a_large":
        assert variables["aux_11/aux_logits/Conv/weights"].shape == (6, 6, 128, 768)
        assert variables["final_layer/FC/weights"].shape == (4032, 1001)
        return  # converting 88.9M zeros proves nothing more
    assert zoo_match(describe(variables)["structure"]) == [model_name]
    config, state, info = convert_tf_slim(variables, model_config(model_name), name=model_name)
    assert info.model == model_name and config == model_config(model_name)   # aux head kept, 1000 classes
    assert state["classifier.weight"].shape == (1000, 1056) and state["aux_head.classifier.weight"].shape == (1000, 768)


def test_wrong_model_and_mismatched_variables(tmp_path):
    d, meta, _, config, _ = _case("mobile")
    with pytest.raises(NasnetError) as e:
        convert_weights(d, "nasnet_a_large")
    text = str(e.value)
    assert "\n" not in text and repr(str(d)) in text and "stem 32 filters, F0 8" in text and "nasnet_a_large" in text
    with pytest.raises(NasnetError) as e:
        convert_weights(FIXTURES / "large")          # no zoo model has a stem of 96 with F0 = 8
    assert "matches no zoo model" in str(e.value) and "name the model" in str(e.value)

    with pytest.raises(NasnetError) as e:
        convert_tf_slim({"resnet_v1_50/conv1/weights": np.zeros((7, 7, 3, 64), np.float32)}, config,
                        where="'resnet.ckpt'")
    assert str(e.value).startswith("'resnet.ckpt' is not a TF-Slim NASNet")

    variables = read_tensor_bundle(d)
    variables.pop("cell_0/comb_iter_1/left/bn_sep_5x5_2/gamma")
    variables["cell_0/comb_iter_9/left/extra"] = np.zeros(3, np.float32)
    variables["cell_1/1x1/weights"] = np.zeros((1, 1, 64, 15), np.float32)
    variables["cell_1/1x1/weights/Momentum"] = np.zeros(1, np.float32)     # optimizer slots are ignored
    with pytest.raises(CheckpointMismatch) as e:
        convert_tf_slim(variables, config, where="'ckpt'")
    text = str(e.value)
    assert "\n" not in text and text.startswith("'ckpt' does not fit")
    assert e.value.missing == ["cell_0/comb_iter_1/left/bn_sep_5x5_2/gamma"]
    assert e.value.unexpected == ["cell_0/comb_iter_9/left/extra"]
    assert e.value.wrong_shape == ["cell_1/1x1/weights (1, 1, 64, 15) (model expects (1, 1, 64, 16))"]


def test_truncated_checkpoint_names_the_file(tmp_path):
    d, _, _, config, _ = _case("mobile")
    dst = tmp_path / "ckpt"
    shutil.copytree(d, dst)
    shard = dst / "model.ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(NasnetError) as e:
        convert_weights(dst, config)
    assert "\n" not in str(e.value) and "model.ckpt.data-00000-of-00001" in str(e.value)


@pytest.mark.skipif(not FULL, reason="NASNET_TF_SLIM_FULL is not set (see tools/make_tf_slim_fixture.py)")
@pytest.mark.parametrize("name", ["mobile-full", "large-18-cells"])
def test_full_depth_checkpoints(name):
    d, meta, expected, config, x = _case(name, FULL)
    if name == "mobile-full":
        model, info = import_weights(d)          # NASNet-A Mobile as released: found from the shapes
        assert info.model == "nasnet_a_mobile" and model.config.aux_head
    else:
        model, info = import_weights(d, config)
    logits, aux = _run(model, x)
    diff = np.abs(logits.numpy() - expected["logits"][:, 1:]).max()
    aux_diff = np.abs(aux.numpy() - expected["aux_logits"][:, 1:]).max()
    print(f"TF-Slim {name}: max |logit diff| {diff:.2e}, |aux logit diff| {aux_diff:.2e}")
    assert diff < TOL and aux_diff < TOL
