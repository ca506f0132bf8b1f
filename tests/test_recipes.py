"""Fidelity to the paper: the NASNet-C space, the ImageNet recipes and the table of their sources
(docs/training.md), final CIFAR training on all training images, and the documented deviations."""

import re

import numpy as np

from conftest import ROOT
from nasnet.arch.space import get_space
from nasnet.data.core import Dataset, Split
from nasnet.search.config import SearchConfig, StrategyConfig
from nasnet.train.config import PRESETS, default_preset, preset, resolve, training_data
from nasnet.zoo.table import get_entry

README = (ROOT / "README.md").read_text()
TRAINING = (ROOT / "docs" / "training.md").read_text()


def test_nasnet_c_has_four_blocks_as_figure_9_says():
    c, a = get_space("nasnet-c"), get_space("nasnet-a")
    assert (c.num_blocks, a.num_blocks, get_space("nasnet-b").num_blocks) == (4, 5, 4)
    assert c.decisions_per_cell == 20 and set(c.combiners) == {"add", "concat", "add_ln", "add_in"}
    g = c.sample(3)
    assert g.normal.num_blocks == 4 and c.decode(c.encode(g)) == g


def test_the_large_model_trains_with_its_own_reference_recipe():
    large, mobile = PRESETS["imagenet-large"], PRESETS["imagenet"]
    assert (large.weight_decay, large.batch_size, large.lr) == (5e-5, 16, 0.015)      # TF-Slim Large
    assert (mobile.weight_decay, mobile.batch_size, mobile.lr) == (4e-5, 32, 0.04)    # TF-Slim Mobile
    same = ("optimizer", "rmsprop_decay", "rmsprop_eps", "lr_schedule", "lr_decay_rate", "lr_decay_epochs",
            "label_smoothing", "ema_decay", "aux_weight", "dropout", "grad_clip", "augment", "color_distort")
    assert all(getattr(large, f) == getattr(mobile, f) for f in same)
    assert get_entry("nasnet_a_large").recipe == "imagenet-large" and get_entry("nasnet_a_mobile").recipe is None
    assert default_preset("folder", 331, "nasnet_a_large") == "imagenet-large"
    assert default_preset("folder", 224, "nasnet_a_mobile") == default_preset("folder", 331) == "imagenet"
    assert default_preset("folder", 331, "nasnet_a_large with the given genotype") == "imagenet"
    assert default_preset("cifar10", 32, "nasnet_a_large") == "cifar"
    # through resolve, as `nasnet train --model nasnet_a_large` does
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 3, 72, 72), dtype=np.uint8)
    split = Split(x, np.arange(12) % 3)
    ds = Dataset("npz:fake", "npz", {"train": split, "val": split, "test": split}, 3)
    run = resolve(ds, None, {}, get_entry("nasnet_a_large").config.replace(image_size=72), None, "nasnet_a_large")
    assert run.meta["preset"] == "imagenet-large" and run.train.weight_decay == 5e-5


def _holdout_dataset(default_holdout: bool) -> Dataset:
    rng = np.random.default_rng(0)

    def split(n, offset):
        return Split(rng.integers(0, 255, (n, 1, 8, 8), dtype=np.uint8), (np.arange(n) + offset) % 10)

    return Dataset("npz:x", "npz", {"train": split(90, 0), "val": split(10, 90), "test": split(20, 0)}, 10,
                   default_holdout=default_holdout)


def test_final_cifar_training_uses_every_training_image(tmp_path):
    from nasnet.data import load_dataset
    from test_data import build_cifar

    path = build_cifar(tmp_path / "cifar-10-python.tar.gz", per_batch=1010, n_test=10)   # 5,050 images
    ds = load_dataset(f"cifar10:{path}")
    assert ds.default_holdout and (len(ds.splits["train"]), len(ds.splits["val"])) == (50, 5000)
    final = training_data(ds, PRESETS["cifar"])            # the paper's Table 1 models: all training images
    assert (len(final.splits["train"]), len(final.splits["val"]), len(final.splits["test"])) == (5050, 0, 10)
    assert final.spec == ds.spec                           # a resumed run rebuilds the same from its spec
    assert training_data(ds, PRESETS["child"]) is ds        # the search's child keeps its 5,000 out
    asked = load_dataset(f"cifar10:{path},val=5000")       # validation only when asked
    assert not asked.default_holdout and training_data(asked, PRESETS["cifar"]) is asked
    assert training_data(ds, preset("cifar", holdout_val=True)) is ds
    # a source's own validation split is not training data
    own = _holdout_dataset(default_holdout=False)
    assert training_data(own, PRESETS["imagenet"]) is own


def test_train_cli_with_the_cifar_recipe_trains_on_the_held_out_images(tmp_path, capsys):
    import json

    from nasnet.cli import main

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (100, 8, 8), dtype=np.uint8), y=np.arange(100) % 10)
    run_dir = tmp_path / "run"                       # npz without x_val: 10% held out by default, 20% test
    assert main(["train", "--data", f"npz:{tmp_path / 'd.npz'}", "-N", "1", "--F0", "8", "--epochs", "1",
                 "--batch-size", "16", "--threads", "1", "--no-progress", "--no-tensorboard",
                 "--set", "model.stem_multiplier=1", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "80 train / 0 val / 20 test" in out and "recipe cifar:" in out
    results = json.loads((run_dir / "results.json").read_text())
    assert "val" not in results and results["test"]["images"] == 20
    assert not (run_dir / "best.pt").exists()           # no validation split, so no "best" epoch
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--json"]) == 0 and json.loads(capsys.readouterr().out)["images"] == 20
    assert main(["eval", str(run_dir), "--split", "val"]) == 2      # those images were trained on


def test_search_deviations_are_listed_in_one_place():
    page = (ROOT / "docs" / "deviations.md").read_text()
    s, cfg = StrategyConfig(), SearchConfig()
    for needle in ("failure-reward", f"default {cfg.failure_reward}", "sampled twice", "--no-dedupe", "Adam",
                   f"| {s.ppo_epochs} (`--ppo-epochs`)", f"| {s.clip} (`--clip`)", "NASNet-C", "B = 4"):
        assert needle in page, needle
    assert (cfg.dedupe, s.optimizer) == (True, "adam")
    assert "docs/deviations.md" in README


def _recipe_rows() -> dict[tuple[str, str], list[str]]:
    table = TRAINING[TRAINING.index("| recipe | setting | here | source | the paper |"):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1])] = cells[2:]
    return rows


def _num(text: str) -> float:
    return float(re.match(r"x?([\d.e+-]+)", text.strip()).group(1))


def test_the_recipe_table_matches_the_code_and_marks_each_deviation():
    rows = _recipe_rows()
    assert {r for r, _ in rows} == set(PRESETS) - {"digits"}
    for (recipe, setting), (here, source, paper) in rows.items():
        assert here and source and paper, (recipe, setting)
        cfg = PRESETS[recipe]
        if setting == "L2":
            assert _num(here) == cfg.weight_decay, (recipe, here)
        if setting == "epochs":
            assert _num(here) == cfg.epochs, (recipe, here)
        if setting == "batch, learning rate":
            batch, lr = here.split(",")[:2]
            assert (_num(batch), _num(lr)) == (cfg.batch_size, cfg.lr), (recipe, here)
        if setting == "lr decay":
            assert f"x{cfg.lr_decay_rate} every {cfg.lr_decay_epochs} epochs" in here
        if paper.startswith("**differs**"):       # a deviation names the paper's value
            assert re.search(r"\d", paper.split("**differs**")[1]), paper
    assert rows[("imagenet", "lr decay")][2].startswith("**differs**: \"the exponential decay scheme used in [60]\"")
    assert rows[("cifar", "training images")][0].startswith("all 50,000")
