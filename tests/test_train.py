"""Training: recipes, schedules, optimizers, EMA, checkpoints, the loop and the child protocol."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from nasnet.data import load_dataset
from nasnet.errors import NasnetError
from nasnet.model.network import ModelConfig
from nasnet.search.children.train import train_child
from nasnet.train.config import PRESETS, TrainConfig, model_config_for, preset
from nasnet.train.ema import ModelEMA
from nasnet.train.loop import Trainer, examples_for_epoch
from nasnet.train.optim import RMSpropTF, decayed_parameters
from nasnet.train.run_dir import load_checkpoint, save_checkpoint
from nasnet.train.schedule import lr_at


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 256 / 64 / 64 subset of digits: a few optimizer steps per epoch, still learnable."""
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz")


@pytest.fixture
def tiny_child(small):
    return {"genotype": "nasnet-a", "model": {"normal_cells": 1, "filters": 8, "stem_multiplier": 1.0},
            "train": {"epochs": 2, "batch_size": 32}, "data": small, "device": "cpu"}


# --- recipes ---------------------------------------------------------------------------------

def test_presets_hold_the_papers_recipes():
    child = PRESETS["child"]
    assert (child.epochs, child.optimizer, child.momentum, child.lr_schedule) == (20, "momentum", 0.9, "cosine")
    assert child.weight_decay > 0 and child.aux_weight == 0 and child.cutout == 0 and child.drop_path_keep == 1.0
    cifar = PRESETS["cifar"]
    assert (cifar.lr_schedule, cifar.momentum, cifar.weight_decay) == ("cosine", 0.9, 5e-4)
    assert (cifar.cutout_for(32), cifar.pad_for(32), cifar.cutout_for(8), cifar.pad_for(8)) == (16, 4, 4, 1)
    assert (cifar.drop_path_keep, cifar.aux_weight, cifar.grad_clip) == (0.6, 0.4, 5.0)
    assert (cifar.epochs, cifar.batch_size, cifar.lr) == (600, 32, 0.025)  # TF reference: 937,500 steps of 32
    imnet = PRESETS["imagenet"]
    assert (imnet.optimizer, imnet.rmsprop_decay, imnet.rmsprop_eps) == ("rmsprop", 0.9, 1.0)
    assert (imnet.lr_schedule, imnet.label_smoothing, imnet.ema_decay) == ("exponential", 0.1, 0.9999)
    assert (imnet.aux_weight, imnet.dropout, imnet.augment) == (0.4, 0.5, "inception") and imnet.weight_decay > 0


def test_every_field_is_overridable_and_validated():
    cfg = preset("cifar", epochs=3, cutout=8, lr_schedule="exponential")
    assert (cfg.epochs, cfg.cutout, cfg.lr_schedule, cfg.aux_weight) == (3, 8, "exponential", 0.4)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(NasnetError, match="unknown field.*colour"):
        preset("child", colour=1)
    with pytest.raises(NasnetError, match="unknown training preset 'fast'.*child"):
        preset("fast")
    with pytest.raises(NasnetError, match="lr_schedule must be one of"):
        preset("child", lr_schedule="linear")
    with pytest.raises(NasnetError, match="epochs must be"):
        TrainConfig(epochs=0)
    assert preset("child", compile="reduce-overhead").compile == "reduce-overhead"
    with pytest.raises(NasnetError, match="compile must be true, false or a torch.compile mode"):
        preset("child", compile="fast")


def test_compile_mode_reaches_torch_compile(monkeypatch, small):
    """--set compile=MODE picks torch.compile's mode (reduce-overhead: CUDA graphs); true keeps its default."""
    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or fn)
    for compile_, expect in ((True, {}), ("reduce-overhead", {"mode": "reduce-overhead"})):
        trainer = _tiny_trainer(small, epochs=1, compile=compile_)
        assert calls.pop() == expect
        assert not trainer.mark_steps          # CUDA graphs' per-step marks: on CUDA only
    assert _tiny_trainer(small, epochs=1).train_forward is not None and not calls


# --- schedules -------------------------------------------------------------------------------

def test_cosine_schedule():
    cfg = TrainConfig(epochs=10, lr=0.1, lr_min=0.001)
    assert lr_at(0, cfg, 100) == pytest.approx(0.1)
    assert lr_at(500, cfg, 100) == pytest.approx(0.001 + 0.5 * 0.099)
    assert lr_at(1000, cfg, 100) == pytest.approx(0.001)
    values = [lr_at(s, cfg, 100) for s in range(1000)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_exponential_staircase_and_warmup():
    cfg = TrainConfig(epochs=100, lr=0.04, lr_schedule="exponential", lr_decay_rate=0.97, lr_decay_epochs=2.4)
    assert lr_at(239, cfg, 100) == pytest.approx(0.04)
    assert lr_at(240, cfg, 100) == pytest.approx(0.04 * 0.97)
    assert lr_at(2400, cfg, 100) == pytest.approx(0.04 * 0.97**10)
    warm = cfg.replace(warmup_epochs=1.0, lr_schedule="constant")
    assert lr_at(0, warm, 100) == pytest.approx(0.0004) and lr_at(99, warm, 100) == pytest.approx(0.04)
    assert lr_at(5000, warm, 100) == pytest.approx(0.04)


# --- optimizers, L2, EMA ----------------------------------------------------------------------------

def test_rmsprop_has_tensorflow_semantics():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    opt = RMSpropTF([w], lr=0.1, decay=0.9, momentum=0.9, eps=1.0)
    ref_w, ms, mom = w.detach().numpy().astype(np.float64).copy(), np.ones(5), np.zeros(5)
    for _ in range(4):
        g = torch.randn(5)
        w.grad = g.clone()
        opt.step()
        g = g.numpy().astype(np.float64)
        ms = 0.9 * ms + 0.1 * g * g            # mean square starts at 1
        mom = 0.9 * mom + 0.1 * g / np.sqrt(ms + 1.0)   # epsilon inside the root, lr inside momentum
        ref_w = ref_w - mom
        assert np.allclose(w.detach().numpy(), ref_w, atol=1e-6)


def test_l2_applies_to_conv_and_linear_weights_only():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    decay, rest = decayed_parameters(model)
    assert {id(p) for p in decay} == {id(model[0].weight), id(model[3].weight)}
    assert {id(p) for p in rest} == {id(model[1].weight), id(model[1].bias), id(model[3].bias)}
    decay, rest = decayed_parameters(model, decay_bn=True)
    assert not rest


def test_ema_follows_tensorflow_num_updates():
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9999)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)                      # n = 1: decay min(0.9999, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.module.weight, d * start + (1 - d) * model.weight)
    state = ema.state_dict()
    other = ModelEMA(torch.nn.Linear(2, 1), 0.5)
    other.load_state_dict(state)
    assert other.num_updates == 1 and torch.equal(other.module.weight, ema.module.weight)


# --- checkpoints ------------------------------------------------------------------------------------

def test_checkpoint_is_plain_and_atomic(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "config": {"a": [1, 2.5, "x", None]}})
    assert torch.load(path, weights_only=True)["config"] == {"a": [1, 2.5, "x", None]}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left behind


class _RunsCode:
    def __reduce__(self):
        return (print, ("a checkpoint must never run this",))


def test_checkpoint_refuses_code_and_strangers(tmp_path, capsys):
    torch.save({"format": "nasnet-train/1", "x": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(NasnetError, match=r"evil\.pt' refers to Python code .* it was not loaded"):
        load_checkpoint(tmp_path / "evil.pt")
    assert "never run" not in capsys.readouterr().out
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(NasnetError, match="not a nasnet training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(NasnetError, match="no checkpoint.pt"):
        load_checkpoint(tmp_path)


# --- the loop ----------------------------------------------------------------------------------------

def test_epoch_order_is_a_seeded_permutation_and_shards():
    a, b = examples_for_epoch(100, 7, 3), examples_for_epoch(100, 7, 3)
    assert torch.equal(a, b) and sorted(a.tolist()) == list(range(100))
    assert not torch.equal(a, examples_for_epoch(100, 7, 4))
    shards = [examples_for_epoch(100, 7, 3, rank=r, world_size=2) for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == list(range(100))


def _tiny_trainer(data, recipe="digits", **over):
    ds = load_dataset(data)
    cfg = preset(recipe, **{"epochs": 2, "batch_size": 64, "device": "cpu", **over})
    model_cfg = model_config_for(ModelConfig(normal_cells=1, filters=8, stem_multiplier=1.0), cfg, ds)
    return Trainer(model_cfg, cfg, ds)


def test_augmentation_draws_from_a_cpu_generator_seeded_by_seed_and_epoch(monkeypatch, small):
    """The Trainer's augmentation generator lives on the CPU whatever the device, so a seed gives the
    same crops and flips on a GPU as on a CPU (CUDA's generators give other streams for one seed)."""
    from nasnet import seeding
    from nasnet.data.augment import Augment
    from nasnet.seeding import derive_seed

    seen = []
    original = Augment.train_batch
    monkeypatch.setattr(Augment, "train_batch", lambda self, x, g=None: seen.append(g) or original(self, x, g))
    trainer = _tiny_trainer(small, epochs=1, seed=7)
    trainer.train_epoch(3)
    assert seen and all(g.device.type == "cpu" for g in seen)
    assert seen[0].initial_seed() == derive_seed(7, 3, 0, seeding.AUGMENT)


def test_drop_path_progress_runs_from_zero_to_one_during_training(monkeypatch, small):
    trainer = _tiny_trainer(small, drop_path_keep=0.5)
    seen = []
    forward = trainer.model.forward

    def spy(x, drop_path_progress=None, return_aux=False):
        seen.append(drop_path_progress)
        return forward(x, drop_path_progress=drop_path_progress, return_aux=return_aux)

    monkeypatch.setattr(trainer.model, "forward", spy)
    trainer.train_forward = trainer.model
    trainer.fit()
    train_calls = [p for p in seen if p is not None]
    assert train_calls[0] == 0.0  # keep probability 1 at step 0
    assert train_calls == [s / trainer.total_steps for s in range(trainer.total_steps)]
    assert trainer.model_config.drop_path_keep == 0.5 and trainer.model.aux_head is not None


def test_imagenet_recipe_runs_with_ema_and_inception_crops(small):
    trainer = _tiny_trainer(small, "imagenet", epochs=1, batch_size=32, image_size=8, crop_scale_min=0.3)
    assert isinstance(trainer.optimizer, RMSpropTF) and trainer.ema is not None
    before = {k: v.clone() for k, v in trainer.ema.module.state_dict().items()}
    history = trainer.fit()
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])
    assert trainer.ema.num_updates == trainer.total_steps
    assert any(not torch.equal(before[k], v) for k, v in trainer.ema.module.state_dict().items())
    ema_eval = trainer.evaluate("val")
    raw_eval = trainer.evaluate("val", use_ema=False)
    assert 0 <= ema_eval["top1"] <= ema_eval["top5"] <= 1 and ema_eval["images"] == 64
    assert raw_eval != ema_eval


def test_bf16_is_fp32_on_cpu_unless_asked_for(small):
    assert not _tiny_trainer(small, epochs=1).bf16                    # auto: fp32 on CPU
    trainer = _tiny_trainer(small, epochs=1, precision="bf16")
    assert trainer.bf16
    seen = []
    trainer.model.classifier.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    history = trainer.fit()
    assert torch.bfloat16 in seen                                      # the forward ran under autocast
    assert math.isfinite(history[0]["train_loss"]) and history[0]["val_top1"] is not None


# --- the child protocol -------------------------------------------------------------------------------

def test_train_child_contract_and_determinism(tiny_child):
    r1 = train_child(dict(tiny_child, seed=5))
    assert json.loads(json.dumps(r1)) == r1
    assert set(r1) == {"status", "reward", "val_accuracy", "val_loss", "test_accuracy", "loss_curve", "params",
                       "mult_adds", "wall_seconds", "images_per_second", "epochs_completed", "resumed_from_epoch",
                       "error", "device"}
    assert r1["test_accuracy"] is None                      # only asked for with "test"
    assert r1["status"] == "done" and r1["error"] is None and r1["epochs_completed"] == 2
    assert r1["resumed_from_epoch"] == 0
    assert 0.0 <= r1["reward"] <= 1.0 and r1["reward"] == r1["val_accuracy"]
    assert len(r1["loss_curve"]) == 2 and r1["loss_curve"][1] < r1["loss_curve"][0]
    assert r1["params"] > 0 and r1["mult_adds"] > 0 and r1["images_per_second"] > 0 and r1["device"] == "cpu"
    r2 = train_child(dict(tiny_child, seed=5, fn="nasnet.search.children.train:train_child", trial_id=3))
    assert (r2["reward"], r2["loss_curve"]) == (r1["reward"], r1["loss_curve"])
    r3 = train_child(dict(tiny_child, seed=6))
    assert r3["loss_curve"] != r1["loss_curve"]


def test_child_scores_the_test_split_when_asked_without_changing_its_reward(tiny_child, tmp_path):
    import numpy as np

    with np.load(tiny_child["data"].removeprefix("npz:")) as z:
        arrays = dict(z)
    arrays["x_test"], arrays["y_test"] = arrays["x_val"], arrays["y_val"]     # test = the validation images
    same = tmp_path / "same.npz"
    np.savez(same, **arrays)
    r = train_child(dict(tiny_child, data=f"npz:{same}", seed=5, test=True))
    assert r["test_accuracy"] == r["val_accuracy"] == r["reward"]
    r_data = train_child(dict(tiny_child, seed=5, test=True))
    assert r_data["reward"] == train_child(dict(tiny_child, seed=5))["reward"]   # the reward is untouched
    assert r_data["test_accuracy"] is not None and (64 * r_data["test_accuracy"]).is_integer()   # 64 images
    del arrays["x_test"], arrays["y_test"]
    no_test = tmp_path / "no_test.npz"
    np.savez(no_test, **arrays)
    with pytest.raises(NasnetError, match="no test split"):
        train_child(dict(tiny_child, data=f"npz:{no_test},test=0", test=True))
    with pytest.raises(NasnetError, match="'test' must be true or false"):
        train_child(dict(tiny_child, test="yes"))


def test_child_that_diverges_reports_instead_of_raising(tiny_child):
    r = train_child(dict(tiny_child, train={"epochs": 3, "lr": 1e30}))
    assert r["status"] == "diverged" and r["reward"] is None and r["val_accuracy"] is None
    assert "not finite" in r["error"] and r["epochs_completed"] < 3
    assert json.loads(json.dumps(r)) == r


@pytest.mark.parametrize("payload, message", [
    ({"data": "digits"}, "'genotype' is required"),
    ({"genotype": "normal[oops]"}, "genotype"),
    ({"genotype": "nasnet-a", "train": {"epochz": 3}}, "unknown field.*epochz"),
    ({"genotype": "nasnet-a", "model": {"filters": 0}}, "F0"),
    ({"genotype": "nasnet-a", "seed": "1"}, "'seed' must be an integer"),
    ({"genotype": "nasnet-a", "data": "mnist"}, "unknown kind"),
])
def test_child_rejects_bad_payloads(payload, message):
    with pytest.raises(NasnetError, match=message):
        train_child(payload)


def test_child_module_imports_without_torch():
    code = "import sys, nasnet.search.children.train; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1] / "src")})
    assert out.stdout.strip() == "False"
