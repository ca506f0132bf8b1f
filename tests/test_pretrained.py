"""Published weights: the reference layout, exact logits, strict loading, safe reading.

The fixture tests/fixtures/reference_nasnet.pt was made by tools/make_reference_fixture.py with the
reference implementations (pretrainedmodels 0.7.4, timm 1.0.31) installed in a separate
environment: their key layouts and their logits for seeded weights. Here the same weights are
regenerated from the stored layout and loaded through our importer; nothing of the references is
needed.
"""

import os
import pickle
from pathlib import Path

import pytest
import torch

from nasnet import NasnetError
from nasnet.weights.io import CheckpointMismatch, read_checkpoint
from nasnet.weights.model_file import save_model_file
from nasnet.weights.reference import REFERENCE, reference_shapes, to_reference_state_dict
from nasnet.weights.seeded import seeded_input, seeded_state_dict
from nasnet.zoo import create_model, import_reference_model, load_model, reference_config
from nasnet.zoo.importer import convert_reference

FIXTURE = Path(__file__).parent / "fixtures" / "reference_nasnet.pt"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, map_location="cpu", weights_only=True)


def _layout(fx, model: str, classes: int) -> dict[str, list[int]]:
    lay = {k: list(v) for k, v in fx["layouts"][model].items()}
    lay["last_linear.weight"][0] = classes
    lay["last_linear.bias"][0] = classes
    return lay


def _cases(fx, model):
    return [c for c in fx["cases"] if c["model"] == model and c["exact"]]


def _strip(layout):
    return {k: tuple(v) for k, v in layout.items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize("model", ["nasnet_a_large", "nasnet_a_mobile"])
def test_mapping_table_covers_the_reference_layout_exactly(fixture, model):
    """Every key the reference models have, with its shape, is derived from our built model - one to one."""
    assert _strip(reference_shapes(reference_config(model))) == _strip(fixture["layouts"][model])


def test_reference_cell_names():
    names = REFERENCE.cell_names(reference_config("nasnet_a_mobile"))
    assert names[:3] == ["cell_stem_0", "cell_stem_1", "cell_0"]
    assert names[6] == "reduction_cell_0" and names[7] == "cell_6" and names[-1] == "cell_15"
    assert REFERENCE.cell_names(reference_config("nasnet_a_large"))[-1] == "cell_17"


def test_mobile_logits_equal_the_reference(fixture):
    cases = _cases(fixture, "nasnet_a_mobile")
    assert {c["classes"] for c in cases} == {1000, 1001}
    for case in cases:
        state = seeded_state_dict(_layout(fixture, "nasnet_a_mobile", case["classes"]), fixture["meta"]["weight_seed"])
        model, info = import_reference_model(state, "nasnet_a_mobile")
        assert info.num_classes == 1000 and info.dropped_background == (case["classes"] == 1001)
        x = seeded_input(tuple(case["input_shape"]), fixture["meta"]["input_seed"])
        with torch.no_grad():
            logits = model(x)
        ref = case["logits"][:, 1:] if case["classes"] == 1001 else case["logits"]
        assert ref.std() > 0.1  # the seeded weights give informative logits, so 1e-4 means something
        assert (logits - ref).abs().max().item() < TOL, case["name"]


def test_large_logits_equal_the_reference(fixture):
    """NASNet-A Large at 331: pretrainedmodels (1000 and 1001 classes) and timm. One forward pass:
    the two layouts share every weight but the classifier (seeds are per key), checked below."""
    seed, cases = fixture["meta"]["weight_seed"], _cases(fixture, "nasnet_a_large")
    assert {c["classes"] for c in cases} == {1000, 1001} and {c["source"] for c in cases} == {"pretrainedmodels",
                                                                                              "timm"}
    m1000, _ = import_reference_model(seeded_state_dict(_layout(fixture, "nasnet_a_large", 1000), seed))
    m1001, info = import_reference_model(seeded_state_dict(_layout(fixture, "nasnet_a_large", 1001), seed))
    assert info.dropped_background and info.source_classes == 1001
    s1000, s1001 = m1000.state_dict(), m1001.state_dict()
    assert all(torch.equal(v, s1001[k]) for k, v in s1000.items() if not k.startswith("classifier."))
    x = seeded_input(tuple(cases[0]["input_shape"]), fixture["meta"]["input_seed"])
    with torch.no_grad():
        features = m1000.forward_features(x)
        logits = {1000: m1000.forward_head(features), 1001: m1001.forward_head(features)}
    for case in cases:
        ref = case["logits"][:, 1:] if case["classes"] == 1001 else case["logits"]
        assert (logits[case["classes"]] - ref).abs().max().item() < TOL, case["name"]


def test_keep_background_keeps_1001_classes(fixture):
    state = seeded_state_dict(_layout(fixture, "nasnet_a_mobile", 1001), 3)
    config, converted, info = convert_reference(state, keep_background=True)
    assert config.num_classes == 1001 and not info.dropped_background
    assert torch.equal(converted["classifier.weight"], state["last_linear.weight"])


@pytest.fixture(scope="module")
def mobile_state(fixture):
    return seeded_state_dict(_layout(fixture, "nasnet_a_mobile", 1000), 1)


def test_missing_extra_and_misshapen_keys_are_all_listed(mobile_state):
    state = dict(mobile_state)
    del state["cell_7.comb_iter_1_left.separable_2.pointwise_conv2d.weight"]
    del state["cell_stem_1.final_path_bn.running_var"]
    state["cell_7.comb_iter_5_left.bn_sep_1.weight"] = torch.ones(3)
    state["aux_logits.weight"] = torch.ones(3)
    state["reduction_cell_1.conv_1x1.conv.weight"] = torch.ones(5, 5, 1, 1)
    with pytest.raises(CheckpointMismatch) as err:
        convert_reference(state, "nasnet_a_mobile")
    e = err.value
    assert e.missing == ["cell_7.comb_iter_1_left.separable_2.pointwise_conv2d.weight",
                         "cell_stem_1.final_path_bn.running_var"]
    assert e.unexpected == ["aux_logits.weight", "cell_7.comb_iter_5_left.bn_sep_1.weight"]
    assert len(e.wrong_shape) == 1 and e.wrong_shape[0].startswith("reduction_cell_1.conv_1x1.conv.weight (5, 5, 1, 1)")
    msg = str(e)
    for key in e.missing + e.unexpected + ["reduction_cell_1.conv_1x1.conv.weight"]:
        assert key in msg
    assert "\n" not in msg


def test_bn_counters_may_be_absent(mobile_state):
    state = {k: v for k, v in mobile_state.items() if not k.endswith("num_batches_tracked")}
    model, info = import_reference_model(state)
    assert info.counters_missing > 0
    assert all(v.item() == 0 for k, v in model.state_dict().items() if k.endswith("num_batches_tracked"))


def test_wrong_model_is_named(mobile_state):
    with pytest.raises(NasnetError, match="is nasnet_a_mobile .*not nasnet_a_large"):
        convert_reference(mobile_state, "nasnet_a_large")


def test_round_trip_to_reference_layout(mobile_state):
    model, _ = import_reference_model(mobile_state)
    back = to_reference_state_dict(model)
    assert set(back) == set(mobile_state)
    assert all(torch.equal(back[k], mobile_state[k]) for k in mobile_state)


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(NasnetError, match="is not a PyTorch checkpoint"):
        read_checkpoint(text)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(NasnetError, match="is not a PyTorch checkpoint"):
        read_checkpoint(junk)
    with pytest.raises(NasnetError, match="no such file"):
        read_checkpoint(tmp_path / "absent.pth")
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(NasnetError, match="is not a state dict"):
        load_model(listing)


class _Payload:
    """Unpickling this would create a file: the proof that a loader ran code from a checkpoint."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_loading_never_executes_code_from_the_file(tmp_path, cli):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:  # a plain pickle and a torch.save zip, both carrying the payload
        pickle.dump({"conv0.conv.weight": _Payload(str(marker))}, f, protocol=2)
    evil_zip = tmp_path / "evil_zip.pth"
    torch.save({"conv0.conv.weight": _Payload(str(marker))}, evil_zip)
    for path in (evil, evil_zip):
        with pytest.raises(NasnetError):
            read_checkpoint(path)
        with pytest.raises(NasnetError):
            create_model("nasnet_a_mobile", checkpoint=path)
    res = cli("import-weights", str(evil_zip), "-o", str(tmp_path / "out.pt"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "refers to Python code" in res.stderr and "weights_only" not in res.stderr  # never suggest unsafe loading
    assert not marker.exists()
    assert not (tmp_path / "out.pt").exists()


def test_import_weights_cli_and_create_model_with_checkpoint(tmp_path, cli, fixture):
    state = seeded_state_dict(_layout(fixture, "nasnet_a_mobile", 1001), 11)
    src = tmp_path / "nasnetamobile.pth"
    torch.save(state, src)
    out = tmp_path / "mobile.pt"
    res = cli("import-weights", str(src), "--model", "nasnet_a_mobile", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "1318 checkpoint keys mapped" in res.stdout and "1001 -> 1000" in res.stdout
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # written atomically, with ordinary permissions
    # never overwrites silently
    res = cli("import-weights", str(src), "-o", str(out))
    assert res.returncode == 2 and "--force" in res.stderr
    # a broken checkpoint: one line naming the keys, nothing written
    del state["cell_13.conv_prev_1x1.bn.weight"]
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    res = cli("import-weights", str(bad), "-o", str(tmp_path / "bad.pt"))
    assert res.returncode == 2 and "cell_13.conv_prev_1x1.bn.weight" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.pt").exists()

    model = create_model("nasnet_a_mobile", checkpoint=out)
    direct = create_model("nasnet_a_mobile", checkpoint=src)  # the published file itself works too
    assert not model.training and model.config.num_classes == 1000 and model.aux_head is None
    assert model.preprocessing.input_size == 224 and model.preprocessing.mean == (0.5, 0.5, 0.5)
    x = seeded_input((1, 3, 224, 224), 0)
    with torch.no_grad():
        assert torch.equal(model(x), direct(x))
    with pytest.raises(NasnetError, match="not nasnet_a_large"):
        create_model("nasnet_a_large", checkpoint=out)
    with pytest.raises(NasnetError, match="cannot override filters"):
        create_model("nasnet_a_mobile", checkpoint=out, filters=8)


def test_transfer_from_a_checkpoint_replaces_the_head(tmp_path):
    """The pieces transfer needs: load weights, new classifier (and a fresh aux head) for a new task."""
    base = create_model("nasnet_a_tiny_imagenet", aux_head=False).eval()
    path = save_model_file(base, tmp_path / "tiny.pt")
    model = create_model("nasnet_a_tiny_imagenet", checkpoint=path, num_classes=3, aux_head=True)
    assert model.classifier.out_features == 3 and model.aux_head.classifier.out_features == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in base.state_dict().items()
               if not k.startswith("classifier."))
    model.train()
    logits, aux = model(torch.randn(2, 3, 64, 64), drop_path_progress=0.5, return_aux=True)
    assert logits.shape == aux.shape == (2, 3)


def test_training_checkpoint_layout_loads(tmp_path):
    """Any dict with 'model_config' and 'model' (e.g. a training checkpoint with optimizer state) loads."""
    model = create_model("nasnet_a_tiny_cifar").eval()
    path = tmp_path / "step_100.pt"
    ema = torch.optim.swa_utils.AveragedModel(model)
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(0.5)
    torch.save({"model_config": model.config.to_dict(), "model": model.state_dict(), "step": 100,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}, "ema": ema.state_dict()}, path)
    loaded = load_model(path)
    averaged = load_model(path, weights_key="ema")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        assert torch.equal(averaged(x), ema.module.eval()(x))
    with pytest.raises(NasnetError, match="no 'swa' weights"):
        load_model(path, weights_key="swa")
