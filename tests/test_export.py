"""Export: ONNX (opset >= 17, dynamic batch) run in onnxruntime, and TorchScript."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from nasnet import NasnetError, SearchSpace
from nasnet.model.layers import LayerStyle, Pool2d, same_pads
from nasnet.model.network import ModelConfig, NASNet
from nasnet.weights.export import export_onnx, export_torchscript, onnx_parity
from nasnet.weights.model_file import save_model_file
from nasnet.weights.reference import reference_shapes
from nasnet.weights.seeded import seeded_input, seeded_state_dict
from nasnet.zoo import import_reference_model, reference_config

TOL = 1e-4


def _run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def _check_dynamic_batch(path):
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # symbolic batch
    assert [d.dim_value for d in dims[1:]] and all(d.dim_value > 0 for d in dims[1:])
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    return {p.key: p.value for p in proto.metadata_props}


def test_onnx_parity_nasnet_a_mobile(tmp_path):
    """The published-weights model (seeded weights in the reference layout), at 224, in onnxruntime."""
    model, _ = import_reference_model(seeded_state_dict(reference_shapes(reference_config("nasnet_a_mobile")), 2))
    path = export_onnx(model, tmp_path / "mobile.onnx")
    meta = _check_dynamic_batch(path)
    assert json.loads(meta["nasnet.model_config"])["filters"] == 44
    assert json.loads(meta["nasnet.preprocessing"])["input_size"] == 224
    x = seeded_input((2, 3, 224, 224), 1)
    with torch.no_grad():
        ref = model(x)
    diff = (_run_onnx(path, x) - ref).abs().max().item()
    assert diff < TOL
    assert ref.std() > 0.1


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_export_cli_on_a_tiny_searched_genotype(tmp_path, cli):
    """A sampled cell (any ops, concat combiners, loose ends) exported through the CLI, both formats."""
    g = SearchSpace().sample(3)
    cfg = ModelConfig(genotype=g, skeleton="imagenet", normal_cells=1, filters=8, image_size=64, num_classes=7,
                      stem_multiplier=0.5, padding="same", bn_eps=1e-3)
    torch.manual_seed(0)
    model = NASNet(cfg).eval()
    for m in model.modules():  # non-trivial BN statistics so eval mode differs from train mode
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = save_model_file(model, tmp_path / "searched.pt")
    onnx_out, ts_out = tmp_path / "searched.onnx", tmp_path / "searched.ts"
    res = cli("export", str(ckpt), "--onnx", str(onnx_out), "--torchscript", str(ts_out), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert [o["format"] for o in summary["outputs"]] == ["onnx", "torchscript"]
    assert all(o["check"]["max_abs_diff"] < TOL and o["check"]["batches"] == [1, 3] for o in summary["outputs"])
    meta = _check_dynamic_batch(onnx_out)
    assert ModelConfig.from_dict(json.loads(meta["nasnet.model_config"])) == cfg
    # independently of the CLI's own check: run both files on a new batch size
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        ref = model(x)
        assert (_run_onnx(onnx_out, x) - ref).abs().max().item() < TOL
        assert (torch.jit.load(str(ts_out))(x) - ref).abs().max().item() < TOL
    # never overwrites, and says so
    res = cli("export", str(ckpt), "--onnx", str(onnx_out))
    assert res.returncode == 2 and "--force" in res.stderr


def test_export_cli_errors(tmp_path, cli):
    res = cli("export", "nasnet_a_tiny_cifar")
    assert res.returncode == 2 and "--onnx" in res.stderr
    res = cli("export", str(tmp_path / "missing.pt"), "--onnx", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "neither a file nor a zoo model" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_and_onnx_api_on_cifar_skeleton(tmp_path):
    model = NASNet(ModelConfig(normal_cells=1, filters=8, num_classes=4)).eval()
    ts = export_torchscript(model, tmp_path / "m.ts")
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        assert torch.allclose(torch.jit.load(str(ts))(x), model(x), atol=1e-5)
    path = export_onnx(model, tmp_path / "m.onnx", opset=18)
    assert onnx_parity(model, path)["max_abs_diff"] < TOL
    with pytest.raises(NasnetError, match="opset 16"):
        export_onnx(model, tmp_path / "old.onnx", opset=16)


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_same_pooling_equals_explicit_tf_padding(kind):
    """layers.Pool2d's TF "SAME" (ceil_mode, no pad copy) against explicit padding, padding not counted."""
    for n in range(3, 24):
        for k in (3, 5, 7):
            for s in (1, 2):
                x = torch.randn(1, 2, n, n + 1)
                pads = []
                for size in (n + 1, n):
                    before, after = same_pads(size, k, s)
                    pads += [before, after]
                if kind == "max":
                    ref = F.max_pool2d(F.pad(x, pads, value=float("-inf")), k, s)
                else:
                    total = F.avg_pool2d(F.pad(x, pads), k, s, divisor_override=1)
                    count = F.avg_pool2d(F.pad(torch.ones_like(x), pads), k, s, divisor_override=1)
                    ref = total / count
                out = Pool2d(kind, k, s, LayerStyle("same"))(x)
                assert out.shape == ref.shape == (1, 2, -(-n // s), -(-(n + 1) // s))
                np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-6)
