"""The range of PyTorch versions the project declares, and each compatibility shim run through the
branch an older PyTorch takes (faked here, so CI on the newest version still runs it)."""

import inspect
import re
import warnings

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version
from torch.nn.parallel import DistributedDataParallel

from conftest import ROOT
from nasnet.train import distributed


def _torch_requirement() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M).group(1)
    (spec,) = [s for s in re.findall(r'"([^"]+)"', deps) if Requirement(s).name == "torch"]
    return spec


def test_the_declared_range_holds_the_tested_versions_and_this_one():
    raw = _torch_requirement()
    spec = Requirement(raw).specifier
    for tested in ("2.11.0", "2.13.0", "2.14.1"):        # docs/install.md: the versions the tests ran on
        assert Version(tested) in spec, tested
    assert Version(torch.__version__.split("+")[0]) in spec
    assert Version("2.10.0") not in spec and Version("2.15.0") not in spec
    # on a CPU-only machine the CPU build is installed first, then the project, which keeps it
    install = (ROOT / "docs" / "install.md").read_text()
    for text in ((ROOT / ".ci" / "run").read_text(), (ROOT / "README.md").read_text(), install):
        assert text.index("pip install torch==2.13.0") < text.index('pip install -e ".[test]"')
    assert f"`{raw}`" in install


class OlderDDP(DistributedDataParallel):
    """DistributedDataParallel with PyTorch 2.11's constructor: `broadcast_buffers` and no
    `forward_sync_buffers` (which came in 2.13)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params=False, bucket_cap_mb_list=None):
        with warnings.catch_warnings():      # where the real class has forward_sync_buffers, this spelling warns
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(module, device_ids=device_ids, broadcast_buffers=broadcast_buffers,
                             find_unused_parameters=find_unused_parameters, static_graph=static_graph,
                             gradient_as_bucket_view=gradient_as_bucket_view)
        self.constructed_with = {"broadcast_buffers": broadcast_buffers, "static_graph": static_graph}


def test_ddp_keyword_is_chosen_by_the_signature():
    assert "forward_sync_buffers" not in inspect.signature(OlderDDP.__init__).parameters
    assert distributed.no_forward_buffer_sync(OlderDDP) == {"broadcast_buffers": False}
    real = inspect.signature(DistributedDataParallel.__init__).parameters
    want = "forward_sync_buffers" if "forward_sync_buffers" in real else "broadcast_buffers"
    assert distributed.no_forward_buffer_sync() == {want: False}


@pytest.fixture
def one_process_group(tmp_path):
    import torch.distributed as dist

    threads = torch.get_num_threads()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    torch.set_num_threads(threads)


def test_training_in_the_older_ddp_trains_as_without_it(monkeypatch, tmp_path, one_process_group):
    # the branch PyTorch 2.11 takes, end to end: the Trainer wraps its model through the shim
    from digits_subset import write_digits_npz

    from nasnet.data import load_dataset
    from nasnet.model.network import ModelConfig
    from nasnet.train.config import model_config_for, preset
    from nasnet.train.loop import Trainer

    ds = load_dataset(write_digits_npz(tmp_path / "d.npz", n_train=96, n_val=16, n_test=0))
    cfg = preset("digits", epochs=1, batch_size=32, device="cpu", threads=1)
    model_cfg = model_config_for(ModelConfig(normal_cells=1, filters=4, stem_multiplier=1.0), cfg, ds)
    plain = Trainer(model_cfg, cfg, ds)
    want = plain.train_epoch(0)["train_loss"]
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", OlderDDP)
    wrapped = Trainer(model_cfg, cfg, ds, ddp=True)
    got = wrapped.train_epoch(0)["train_loss"]
    assert isinstance(wrapped.ddp, OlderDDP)
    assert wrapped.ddp.constructed_with == {"broadcast_buffers": False, "static_graph": True}
    assert got == pytest.approx(want, rel=1e-5)       # one process: DDP's average is the gradient itself
    for a, b in zip(plain.model.parameters(), wrapped.model.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
