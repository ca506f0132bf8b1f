"""One importer behind one command: `nasnet import-weights` for every format, the files it
writes and refuses to write, `nasnet export --safetensors`, and plain state dicts in `nasnet export`,
`nasnet eval` and `create_model(checkpoint=...)`.

Most commands run in this process (`nasnet.cli.main`), which is what the command line runs, minus the
interpreter start; one test runs the real `nasnet` subprocess. The fixtures are the ones the format
tests use (tests/fixtures/tf_slim, tests/fixtures/keras: written by TensorFlow and Keras themselves).
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from nasnet.cli import main
from nasnet.weights.reference import reference_shapes
from nasnet.weights.seeded import seeded_input, seeded_state_dict
from nasnet.zoo import create_model, import_weights, load_model, reference_config
from nasnet.zoo.importer import convert_weights

safetensors_torch = pytest.importorskip("safetensors.torch")

FIXTURES = Path(__file__).parent / "fixtures"
TF_MOBILE = FIXTURES / "tf_slim" / "mobile"      # TF-Slim N = 1, F0 = 8, 1001 classes: nasnet_a_tiny_imagenet's shape
KERAS_MOBILE = FIXTURES / "keras" / "mobile.h5"  # Keras stem 32, F0 8, N 1, 1000 classes: the same


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(capsys, *argv, needles=()):
    code, out, err = _cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 1001-class state dict in the published Mobile layout (seeded weights), as .pth and .safetensors."""
    state = seeded_state_dict(reference_shapes(reference_config("nasnet_a_mobile", 1001)), 13)
    d = tmp_path_factory.mktemp("published")
    torch.save(state, d / "nasnetamobile.pth")
    safetensors_torch.save_file(state, str(d / "model.safetensors"))
    return d, state


# ---------------------------------------------------------------------------------------------
# Every format through the one command
# ---------------------------------------------------------------------------------------------
def test_tf_slim_checkpoint_to_model_file(tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    code, text, err = _cli(capsys, "import-weights", TF_MOBILE / "model.ckpt", "-o", out)
    assert code == 0, err
    assert "found: tf-checkpoint file, tf-slim nasnet layout, nasnet_a_tiny_imagenet" in text
    assert "checkpoint variables mapped, none left over or missing; 1001 -> 1000 classes" in text
    assert "ignored: global_step" in text and f"wrote {out}" in text
    saved = torch.load(out, weights_only=True)
    assert saved["source"]["import"]["format"] == "tf-checkpoint" and saved["source"]["sha256"] is None
    direct, _ = import_weights(TF_MOBILE)         # the file holds what the importer made (parity: test_weights_tf_slim)
    model = create_model("nasnet_a_tiny_imagenet", checkpoint=out)
    assert model.config == direct.config and model.preprocessing == direct.preprocessing
    assert all(torch.equal(v, direct.state_dict()[k]) for k, v in model.state_dict().items())


def test_keras_file_with_keras_padding_to_model_file(tmp_path, capsys):
    out = tmp_path / "keras.pt"
    code, text, err = _cli(capsys, "import-weights", KERAS_MOBILE, "--padding", "keras", "--json", "-o", out)
    assert code == 0, err
    summary = json.loads(text)
    assert summary["format"] == "keras-h5" and summary["layout"] == "keras nasnet"
    assert summary["model"] == "nasnet_a_tiny_imagenet" and summary["padding"] == "keras"
    assert summary["num_classes"] == 1000 and not summary["aux_head"]
    assert load_model(out).config.padding == "keras"      # Keras's numerics travel with the model file


def test_published_pth_and_safetensors_give_the_same_model(tmp_path, capsys, published):
    d, _ = published
    for src, out in ((d / "nasnetamobile.pth", tmp_path / "a.pt"), (d / "model.safetensors", tmp_path / "b.pt")):
        code, text, err = _cli(capsys, "import-weights", src, "--model", "nasnet_a_mobile", "-o", out)
        assert code == 0, err
        assert "1318 checkpoint keys mapped" in text and "1001 -> 1000" in text
    a, b = torch.load(tmp_path / "a.pt", weights_only=True), torch.load(tmp_path / "b.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert b["source"]["import"]["format"] == "safetensors"
    # a ModelConfig instead of a zoo name: the same conversion, no zoo model named
    converted = convert_weights(d / "model.safetensors", reference_config("nasnet_a_mobile"))
    assert converted.info.model is None and converted.config.num_classes == 1000
    assert all(torch.equal(v, b["model"][k]) for k, v in converted.state.items())


def test_plain_state_dicts_when_told_the_model(tmp_path, capsys):
    model = create_model("nasnet_a_tiny_imagenet", num_classes=5).eval()
    plain = tmp_path / "m.pt"
    torch.save(model.state_dict(), plain)
    _one_error(capsys, "import-weights", plain, "-o", tmp_path / "x.pt",
               needles=("m.pt", "without a model config", "--model"))
    code, text, err = _cli(capsys, "import-weights", plain, "--model", "nasnet_a_tiny_imagenet",
                           "-o", tmp_path / "x.pt")
    assert code == 0 and "5 classes" in text, err
    # nasnet export and create_model take it too
    st = tmp_path / "m.safetensors"
    code, text, err = _cli(capsys, "export", plain, "--model", "nasnet_a_tiny_imagenet", "--safetensors", st, "--json")
    assert code == 0, err
    (written,) = json.loads(text)["outputs"]
    assert written["format"] == "safetensors" and written["check"]["max_abs_diff"] < 1e-6
    again = create_model("nasnet_a_tiny_imagenet", checkpoint=plain)
    shared = load_model(st)                       # config and preprocessing from the metadata, no pickle
    assert shared.config == again.config and shared.preprocessing == again.preprocessing
    x = seeded_input((2, 3, 64, 64), 4)
    with torch.no_grad():
        assert torch.equal(shared(x), model(x)) and torch.equal(again(x), model(x))
    _one_error(capsys, "export", plain, "--model", "nasnet_a_mobile", "--safetensors", tmp_path / "y.safetensors",
               needles=("m.pt", "does not fit nasnet_a_mobile", "missing key(s)", "wrong shape"))
    assert not (tmp_path / "y.safetensors").exists()


def test_eval_scores_plain_state_dicts(tmp_path, capsys):
    model = create_model("nasnet_a_tiny_cifar", in_chans=1, aux_head=False).eval()
    plain = tmp_path / "digits.pt"
    torch.save(model.state_dict(), plain)
    rng = np.random.default_rng(0)
    data = tmp_path / "few.npz"                    # 12 test images: the scoring path, not a benchmark
    np.savez(data, x=rng.integers(0, 256, (20, 8, 8), np.uint8), y=np.arange(20) % 10,
             x_test=rng.integers(0, 256, (12, 8, 8), np.uint8), y_test=np.arange(12) % 10)
    _one_error(capsys, "eval", plain, "--model", "nasnet_a_tiny_cifar", needles=("--data",))
    code, text, err = _cli(capsys, "eval", plain, "--model", "nasnet_a_tiny_cifar", "--data", f"npz:{data}", "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["epoch"] is None and result["images"] == 12 and 0.0 <= result["top1"] <= 1.0


# ---------------------------------------------------------------------------------------------
# Damaged and mismatched files of every format: one line naming the file, nothing written
# ---------------------------------------------------------------------------------------------
def _damaged(tmp_path, published):
    """(source, needles) pairs: truncated and mismatched files of every format."""
    d, state = published
    cases = []
    pth = tmp_path / "cut.pth"
    pth.write_bytes((d / "nasnetamobile.pth").read_bytes()[:50_000])
    cases.append((pth, ("cut.pth", "truncated or damaged")))
    bad = dict(state)
    bad.pop("cell_3.conv_prev_1x1.bn.weight")
    bad["cell_0.conv_1x1.conv.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    cases.append((tmp_path / "bad.pth", ("bad.pth", "cell_3.conv_prev_1x1.bn.weight", "cell_0.conv_1x1.conv.weight")))
    st = tmp_path / "cut.safetensors"
    st.write_bytes((d / "model.safetensors").read_bytes()[:100_000])
    cases.append((st, ("cut.safetensors", "truncated or damaged")))
    safetensors_torch.save_file(bad, str(tmp_path / "bad.safetensors"))
    cases.append((tmp_path / "bad.safetensors", ("bad.safetensors", "cell_3.conv_prev_1x1.bn.weight")))
    ckpt = tmp_path / "tf"
    shutil.copytree(TF_MOBILE, ckpt)
    shard = ckpt / "model.ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-4096])
    cases.append((ckpt / "model.ckpt", ("model.ckpt.data-00000-of-00001", "truncated")))
    index = ckpt / "model.ckpt.index"
    cut_index = tmp_path / "tf2"
    cut_index.mkdir()
    (cut_index / "model.ckpt.index").write_bytes(index.read_bytes()[:-100])
    shutil.copy(TF_MOBILE / "model.ckpt.data-00000-of-00001", cut_index)
    cases.append((cut_index, ("model.ckpt.index", "magic number")))
    h5 = tmp_path / "cut.h5"
    h5.write_bytes(KERAS_MOBILE.read_bytes()[:400_000])
    cases.append((h5, ("cut.h5", "truncated or damaged")))
    holed = tmp_path / "holed.h5"
    shutil.copy(KERAS_MOBILE, holed)
    with h5py.File(holed, "a") as f:      # a weight listed in weight_names but absent
        del f["normal_bn_1_0"]["normal_bn_1_0"]["gamma:0"]
    cases.append((holed, ("holed.h5", "normal_bn_1_0/gamma:0")))
    misshapen = tmp_path / "misshapen.h5"
    shutil.copy(KERAS_MOBILE, misshapen)
    with h5py.File(misshapen, "a") as f:
        group = f["predictions"]["predictions"]
        del group["bias:0"]
        group.create_dataset("bias:0", data=np.zeros(999, np.float32))
    cases.append((misshapen, ("misshapen.h5", "predictions/bias (999,)")))
    return cases


def test_broken_files_of_every_format_fail_in_one_line_and_write_nothing(tmp_path, capsys, published):
    out = tmp_path / "out.pt"
    out.write_bytes(b"an earlier import")
    for source, needles in _damaged(tmp_path, published):
        _one_error(capsys, "import-weights", source, "-o", out, "--force", needles=needles)
        assert out.read_bytes() == b"an earlier import", source     # nothing overwritten
        assert sorted(p.name for p in tmp_path.glob(".out.pt*")) == []  # no temporary left behind
    _one_error(capsys, "import-weights", TF_MOBILE, "-o", out, needles=("out.pt", "exists", "--force"))
    _one_error(capsys, "import-weights", TF_MOBILE, "--model", "nasnet_a_large", "-o", tmp_path / "n.pt",
               needles=("stem 32 filters, F0 8", "nasnet_a_large has stem 96 filters, F0 168"))
    _one_error(capsys, "import-weights", KERAS_MOBILE, "--no-aux", "-o", tmp_path / "n.pt",
               needles=("mobile.h5", "applies to TF-Slim checkpoints"))
    assert not (tmp_path / "n.pt").exists()


def test_the_command_line_itself(tmp_path, cli):
    """The real `nasnet` process: a TF-Slim release archive in, a model file out, an exit status of 0."""
    import tarfile

    archive = tmp_path / "nasnet-a_tiny_04_10_2017.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
            tar.add(TF_MOBILE / f, arcname=f"nasnet-a_tiny/{f}")
    out = tmp_path / "tiny.pt"
    res = cli("import-weights", str(archive), "--keep-background", "--no-aux", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "1001 classes" in res.stdout and f"wrote {out}" in res.stdout
    model = load_model(out)
    assert model.config.num_classes == 1001 and model.aux_head is None

