"""safetensors weights: timm's hub files, hub cache folders, our own files, plain state dicts.

The NASNet-A Large file on the hub (timm/nasnetalarge.tf_in1k) is 355 MB, so the test makes an
equivalent one from a seed: tools/make_timm_safetensors_fixture.py, run once with timm installed,
recorded the digest of the model.safetensors that timm's own save_for_hf wrote for
``timm.create_model("nasnetalarge", num_classes=1001)`` holding ``seeded_state_dict(layout, seed)``,
the config.json beside it, and timm's logits - raw, and with TensorFlow's "SAME" average pools
(timm's stride-2 average pools count the zero padding; see its FIXME in timm/layers/pool2d_same.py).
Here the same weights are regenerated, written with safetensors.torch.save_file (what save_for_hf
calls; the digest shows the bytes are timm's), laid out as a hub cache, imported and run.
"""

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from nasnet import NasnetError
from nasnet.weights.formats import PYTORCH, SAFETENSORS, detect_format
from nasnet.weights.io import CheckpointMismatch
from nasnet.weights.reference import reference_shapes
from nasnet.weights.safetensors_io import read_safetensors, resolve, save_safetensors
from nasnet.weights.seeded import seeded_input, seeded_state_dict
from nasnet.zoo import create_model, import_weights, load_model, reference_config
from nasnet.zoo.importer import convert_weights

safetensors_torch = pytest.importorskip("safetensors.torch")

TIMM = Path(__file__).parent / "fixtures" / "timm_nasnetalarge_safetensors.json"
TOL = 1e-4


def _digest(state):
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hub_cache(root: Path, repo: str, files: dict[str, bytes | Path], commit: str = "c0ffee" * 6 + "beef") -> Path:
    """A Hugging Face hub cache folder: snapshot files are symlinks into blobs/, refs/main names the commit."""
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "blobs").mkdir(parents=True, exist_ok=True)
    (base / "refs").mkdir(exist_ok=True)
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, Path):
            blob = base / "blobs" / _file_digest(content)
            if not blob.exists():
                os.replace(content, blob)
        else:
            blob = base / "blobs" / hashlib.sha256(content).hexdigest()
            blob.write_bytes(content)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    (base / "refs" / "main").write_text(commit)
    return base


def read_safetensors_weights(path, model=None, keep_background=False):
    c = convert_weights(path, model, keep_background=keep_background)
    return c.config, c.state, c.info


def _one_line(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for n in needles:
        assert n in text, text


# ---------------------------------------------------------------------------------------------
# timm's NASNet-A Large, as the hub stores it
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def timm_fixture():
    return json.loads(TIMM.read_text())


@pytest.mark.slow
def test_timm_hub_file_logits_equal_timms(tmp_path, timm_fixture):
    fx = timm_fixture
    layout = reference_shapes(reference_config("nasnet_a_large", 1001))   # with the BN counters, as timm's
    text = "\n".join(f"{k}|{tuple(v)}" for k, v in sorted(layout.items()))
    assert len(layout) == fx["keys"] and hashlib.sha256(text.encode()).hexdigest() == fx["layout_sha256"]
    state = seeded_state_dict(layout, fx["weight_seed"])
    assert _digest(state) == fx["weights_sha256"], \
        "the seeded weights changed: rerun tools/make_timm_safetensors_fixture.py"
    blob = tmp_path / "model.safetensors"
    safetensors_torch.save_file(state, str(blob))        # what timm's save_for_hf does
    del state
    assert blob.stat().st_size == fx["safetensors_bytes"]
    assert _file_digest(blob) == fx["safetensors_sha256"], "not the bytes timm's save_for_hf wrote"
    config = json.dumps(fx["config_json"], indent=2).encode()
    repo = _hub_cache(tmp_path / "hub", "timm/nasnetalarge.tf_in1k", {"model.safetensors": blob, "config.json": config})

    model, info = import_weights(repo)       # the repository folder: refs/main -> the snapshot
    assert info.model == "nasnet_a_large" and info.source_classes == 1001
    assert info.num_classes == 1000 and info.dropped_background
    assert model.preprocessing is not None and model.preprocessing.input_size == 331
    x = seeded_input(tuple(fx["input_shape"]), fx["input_seed"])
    with torch.no_grad():
        ours = model(x)[0]
    tf_avg = torch.tensor(fx["cases"]["tf_avg_pool"])
    raw = torch.tensor(fx["cases"]["raw"])
    exact = (ours - tf_avg[1:]).abs().max().item()
    raw_diff = (ours - raw[1:]).abs().max().item()
    print(f"timm nasnetalarge safetensors: max |logit diff| vs timm with TF average pools {exact:.2e}, "
          f"vs timm as is {raw_diff:.2e}")
    assert exact < TOL
    assert raw_diff > 10 * TOL   # timm's own pools differ from TensorFlow's; we follow TensorFlow


# ---------------------------------------------------------------------------------------------
# The same layout at Mobile size (fast): classes, config.json, folders, errors
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mobile_file(tmp_path_factory):
    state = seeded_state_dict(reference_shapes(reference_config("nasnet_a_mobile", 1001)), 3)
    path = tmp_path_factory.mktemp("st") / "model.safetensors"
    safetensors_torch.save_file(state, str(path))
    return path, state


def test_1001_classes_become_1000_unless_kept(mobile_file):
    path, state = mobile_file
    config, converted, info = read_safetensors_weights(path)
    assert info.model == "nasnet_a_mobile" and config.num_classes == 1000 and info.dropped_background
    assert torch.equal(converted["classifier.weight"], state["last_linear.weight"][1:])
    assert torch.equal(converted["classifier.bias"], state["last_linear.bias"][1:])
    config, converted, info = read_safetensors_weights(path, keep_background=True)
    assert config.num_classes == 1001 and not info.dropped_background
    assert torch.equal(converted["classifier.weight"], state["last_linear.weight"])


def test_label_offset_in_config_json(tmp_path, mobile_file):
    path, _ = mobile_file
    legacy = {"architecture": "nasnetamobile", "num_classes": 1000,
              "pretrained_cfg": {"num_classes": 1000, "label_offset": 1, "classifier": "last_linear"}}
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "model.safetensors").symlink_to(path)
    (snap / "config.json").write_text(json.dumps(legacy))
    config, _, info = read_safetensors_weights(snap)
    assert config.num_classes == 1000 and info.dropped_background and any("label_offset" in n for n in info.notes)
    (snap / "config.json").write_text(json.dumps({**legacy, "pretrained_cfg": {"label_offset": 2}}))
    with pytest.raises(NasnetError) as e:
        read_safetensors_weights(snap)
    _one_line(e, "label_offset 2", "1001 rows")
    (snap / "config.json").write_text(json.dumps({"architecture": "nasnetalarge"}))
    with pytest.raises(NasnetError) as e:
        read_safetensors_weights(snap, model="nasnet_a_mobile")
    _one_line(e, "config.json says nasnetalarge")


def test_hub_cache_folders(tmp_path, mobile_file):
    path, _ = mobile_file
    repo = _hub_cache(tmp_path, "timm/nasnetamobile", {"model.safetensors": path.read_bytes(), "config.json": b"{}"})
    snap = next((repo / "snapshots").iterdir())
    assert resolve(repo) == (snap / "model.safetensors", snap / "config.json")
    assert resolve(snap)[0] == snap / "model.safetensors"
    # without refs/main: the newest snapshot holding model.safetensors
    (repo / "refs" / "main").unlink()
    older = repo / "snapshots" / "0ld"
    older.mkdir()
    (older / "config.json").write_text("{}")
    assert resolve(repo)[0] == snap / "model.safetensors"
    # a snapshot whose link points nowhere (an interrupted download)
    blob = (snap / "model.safetensors").resolve()
    blob.unlink()
    with pytest.raises(NasnetError) as e:
        resolve(repo)
    _one_line(e, "no snapshot with model.safetensors")
    with pytest.raises(NasnetError) as e:
        resolve(snap / "model.safetensors")
    _one_line(e, "no such file", "broken hub-cache link")


def test_cut_and_broken_files(tmp_path, mobile_file):
    path, _ = mobile_file
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(NasnetError) as e:
        read_safetensors(cut)
    _one_line(e, "cut.safetensors", "truncated or damaged")
    header = tmp_path / "header.safetensors"
    header.write_bytes(data[:8] + b"#" + data[9:])
    with pytest.raises(NasnetError) as e:
        read_safetensors(header)
    _one_line(e, "header.safetensors")
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"\x01\x02")
    with pytest.raises(NasnetError) as e:
        read_safetensors_weights(tiny)
    _one_line(e, "tiny.safetensors", "2 bytes, too short")


def test_mismatched_keys_are_listed_in_one_line(tmp_path, mobile_file):
    _, state = mobile_file
    bad = dict(state)
    bad.pop("cell_0.conv_1x1.conv.weight")
    bad["cell_0.extra.weight"] = torch.zeros(3)
    bad["cell_1.conv_1x1.bn.weight"] = torch.zeros(7)
    path = tmp_path / "bad.safetensors"
    safetensors_torch.save_file(bad, str(path))
    with pytest.raises(CheckpointMismatch) as e:
        read_safetensors_weights(path)
    _one_line(e, "bad.safetensors", "cell_0.conv_1x1.conv.weight", "cell_0.extra.weight", "cell_1.conv_1x1.bn.weight")
    assert e.value.missing == ["cell_0.conv_1x1.conv.weight"] and e.value.unexpected == ["cell_0.extra.weight"]


# ---------------------------------------------------------------------------------------------
# Our own layout: with the config in the metadata, or plain with a model name
# ---------------------------------------------------------------------------------------------
def test_our_files_round_trip_without_pickle(tmp_path):
    model = create_model("nasnet_a_tiny_imagenet").eval()
    path = save_safetensors(model, tmp_path / "tiny.safetensors")
    tensors, metadata = read_safetensors(path)
    assert metadata["nasnet.format"] == "nasnet-model" and "nasnet.model_config" in metadata
    loaded, info = import_weights(path)
    assert loaded.config == model.config and info.layout.startswith("nasnet (config")
    assert loaded.preprocessing == model.preprocessing
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert detect_format(path) == SAFETENSORS
    again = create_model("nasnet_a_tiny_imagenet", checkpoint=path)     # what the file holds is checked
    assert again.config == model.config
    with pytest.raises(NasnetError) as e:
        create_model("nasnet_a_mobile", checkpoint=path)
    _one_line(e, "tiny.safetensors", "not nasnet_a_mobile")


def test_plain_state_dicts_need_the_model_name(tmp_path):
    model = create_model("nasnet_a_tiny_imagenet", num_classes=7).eval()
    path = tmp_path / "plain.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(NasnetError) as e:
        read_safetensors_weights(path)
    _one_line(e, "without a model config", "name the model")
    config, state, info = read_safetensors_weights(path, model="nasnet_a_tiny_imagenet")
    assert config.num_classes == 7 and config.aux_head == model.config.aux_head
    assert info.layout == "nasnet state dict (no config)"
    with pytest.raises(CheckpointMismatch) as e:
        read_safetensors_weights(path, model="nasnet_a_mobile")
    _one_line(e, "plain.safetensors", "does not fit nasnet_a_mobile", "wrong shape")
    # the same for torch.save(model.state_dict()) files, loaded when told the model
    pt = tmp_path / "plain.pt"
    torch.save(model.state_dict(), pt)
    assert detect_format(pt) == PYTORCH
    loaded = load_model(pt, expect="nasnet_a_tiny_imagenet")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.preprocessing is not None and loaded.preprocessing.input_size == 64
