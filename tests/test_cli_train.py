"""`nasnet train` / `nasnet eval` end to end: the run directory, resume after SIGKILL, the flags resolved into a run,
and one-line errors that name flags."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, one_error_line, run_cli, run_cli_batch
from nasnet.errors import NasnetError

TINY = ["-N", "1", "--filters", "8", "--set", "model.stem_multiplier=1", "--no-progress"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz")


def _epochs(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_train_then_eval(tmp_path, small):
    run_dir = tmp_path / "run"
    r = run_cli("train", "--data", small, *TINY, "--epochs", "2", "--batch-size", "32", "--run-dir", str(run_dir),
                "--threads", "1", "--set", "ema_decay=0.9")
    assert r.returncode == 0, r.stderr
    assert "test: top-1" in r.stdout
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "best.pt", "results.json"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))  # tensorboard is installed in the test env
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "cifar" and config["model"]["normal_cells"] == 1
    assert config["model"]["num_classes"] == 10 and config["model"]["in_chans"] == 1 and config["train"]["epochs"] == 2
    assert _epochs(run_dir) == [1, 2]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test"]["images"] == 64 and 0 <= results["test"]["top1"] <= results["test"]["top5"] <= 1

    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["config"]["data"] == small and state["genotype"].startswith("normal[")
    assert set(state["rng"]) >= {"torch"} and state["optimizer"]["state"]

    e = run_cli("eval", str(run_dir), "--json")
    assert e.returncode == 0, e.stderr
    ev = json.loads(e.stdout)
    assert ev["top1"] == pytest.approx(results["test"]["top1"]) and ev["images"] == 64
    e = run_cli("eval", str(run_dir / "best.pt"), "--split", "val")
    assert e.returncode == 0 and e.stdout.startswith("val: top-1")

    # a training checkpoint is a model file: it loads (live or EMA weights) for export and transfer
    from nasnet import load_model

    live = load_model(run_dir / "checkpoint.pt")
    assert live.config.to_dict() == state["config"]["model"]
    assert all(torch.equal(live.state_dict()[k], v) for k, v in state["model"].items())
    ema = load_model(run_dir / "checkpoint.pt", weights_key="ema")
    assert all(torch.equal(ema.state_dict()[k], v) for k, v in state["ema"]["module"].items())
    assert not torch.equal(ema.stem.conv.weight, live.stem.conv.weight)
    # one average update per optimiser step (the values themselves: tests/test_ema.py's closed form)
    assert state["ema"]["num_updates"] == state["step"] > 0 and state["ema"]["decay"] == 0.9


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    from digits_subset import write_digits_npz

    data = write_digits_npz(tmp_path / "digits.npz", n_train=320)
    args = ["--data", data, *TINY, "--epochs", "2", "--batch-size", "8", "--seed", "3", "--threads", "1",
            "--no-tensorboard", "--set", "cutout=2", "--set", "aux_weight=0.4"]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    ref = run_cli("train", *args, "--run-dir", str(ref_dir))
    assert ref.returncode == 0, ref.stderr

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]))
    marker = tmp_path / "half-way-through-epoch-2"      # touched by the run itself (tests/step_marker.py)
    proc = subprocess.Popen([sys.executable, "-m", "step_marker", str(marker), "2", "train", *args, "--run-dir",
                             str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "epoch 2 did not get half-way within 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # catches a test that stops testing: the kill landed while the run was training (it did not exit
    # on its own), after epoch 1's checkpoint and before epoch 2's
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1 and _epochs(run_dir) == [1]

    res = run_cli("train", "--run-dir", str(run_dir), "--resume", "--threads", "1", "--no-progress",
                  "--no-tensorboard")
    assert res.returncode == 0, res.stderr
    assert "resuming after epoch 1" in res.stdout
    assert _epochs(run_dir) == [1, 2]
    a = torch.load(ref_dir / "checkpoint.pt", weights_only=True)
    b = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    ref_rows = list(csv.DictReader(open(ref_dir / "metrics.csv")))
    new_rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [r["train_loss"] for r in ref_rows] == [r["train_loss"] for r in new_rows]

    # resuming a finished run does no more training and keeps every epoch once
    again = run_cli("train", "--run-dir", str(run_dir), "--resume", "--no-progress", "--no-tensorboard")
    assert again.returncode == 0 and _epochs(run_dir) == [1, 2]


def _one_error_line(r, pattern):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert __import__("re").search(pattern, lines[0]), lines[0]


def test_cli_errors(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    cases = [   # one process for all of them (run_cli_batch): torch is imported once
        (["train", "--run-dir", str(run_dir)], "already holds a run; continue it with --resume"),
        (["train", "--run-dir", str(run_dir), "--resume", "--epochs", "5"], "drop --epochs"),
        (["train", "--resume"], "--resume needs --run-dir"),
        (["train", "--run-dir", str(tmp_path / "x"), "--set", "cutout"], "expected FIELD=VALUE"),
        (["train", "--run-dir", str(tmp_path / "x"), "--set", "speed=11"], "unknown field"),
        (["eval", str(tmp_path / "missing.pt")], "no such file"),
        (["eval", str(tmp_path / "junk.pt")], "not a PyTorch checkpoint"),
    ]
    for res, (_, message) in zip(run_cli_batch([argv for argv, _ in cases]), cases):
        one_error_line(res["rc"], res["stderr"], message)
    assert not (tmp_path / "x").exists()


def test_eval_refuses_data_of_another_shape(tmp_path, small):
    run_dir = tmp_path / "run"
    r = run_cli("train", "--data", small, *TINY, "--epochs", "1", "--batch-size", "128", "--run-dir", str(run_dir),
                "--no-tensorboard", "--set", "eval_every=0")
    assert r.returncode == 0, r.stderr
    np.savez(tmp_path / "three.npz", x=np.zeros((30, 8, 8), np.uint8), y=np.arange(30) % 3)
    _one_error_line(run_cli("eval", str(run_dir), "--data", f"npz:{tmp_path / 'three.npz'}"),
                    "3 classes of 1-channel images; the checkpoint's model expects 10 of 1")


def _args(**kw):
    from nasnet.cli import build_parser

    argv = ["train"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)] if not isinstance(v, list) else sum(
            ([f"--{k}", item] for item in v), [])
    return build_parser().parse_args(argv)


def test_configuration_is_resolved_per_dataset(tmp_path):
    from nasnet.cli.train import resolve_args
    from test_data import build_cifar

    r = resolve_args(_args())
    m, t, meta = r.model, r.train, r.meta
    assert meta["preset"] == "digits" and (m.normal_cells, m.filters, m.in_chans, m.image_size) == (2, 16, 1, 8)
    assert m.aux_head and m.drop_path_keep == t.drop_path_keep

    path = build_cifar(tmp_path / "c100.tar.gz", kind="cifar100")
    r = resolve_args(_args(data=f"cifar100:{path},val=20", epochs=7, set=["cutout=8", "model.dropout=0.2"]))
    m, t, meta = r.model, r.train, r.meta
    assert meta["preset"] == "cifar" and m.name == "6 @ 768" and m.num_classes == 100
    assert (t.epochs, t.cutout, t.batch_size, m.drop_path_keep, m.dropout) == (7, 8, 32, 0.6, 0.2)

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "big.npz", x=rng.integers(0, 256, (20, 3, 96, 96), dtype=np.uint8), y=np.arange(20) % 2)
    r = resolve_args(_args(data=f"npz:{tmp_path / 'big.npz'}", image_size=80, model="nasnet_a_mobile",
                           normal_cells=1))
    m, t, meta = r.model, r.train, r.meta
    assert meta["preset"] == "imagenet" and t.optimizer == "rmsprop" and t.ema_decay == 0.9999
    assert (m.skeleton, m.normal_cells, m.filters, m.image_size, m.num_classes, m.dropout) == \
        ("imagenet", 1, 44, 80, 2, 0.5)


def test_n_at_f_flags_resolve_the_paper_notation(small, capsys):
    from nasnet.cli import build_parser
    from nasnet.cli.train import resolve_args

    def cfg(*flags):
        args = build_parser().parse_args(["train", "--data", small, *flags])
        return resolve_args(args).model

    c = cfg("--genotype", "nasnet-a", "--N", "3", "--F", "192")
    assert (c.normal_cells, c.filters, c.penultimate_filters) == (3, 8, 192)
    assert cfg("-N", "2", "--F0", "8").penultimate_filters == 192
    assert cfg("--F", "200").filters == 8  # 200 / 24 rounds to 8 and says so
    assert "note: --F 200 is not a multiple of 24; building F0 = 8" in capsys.readouterr().err
    with pytest.raises(NasnetError, match="either as --F0"):
        cfg("--F0", "8", "--F", "192")


def test_the_library_names_fields_and_the_command_line_names_flags(small):
    """The training library's messages name what a Python caller sets (a field, an argument, `name=value`);
    `nasnet train` and `nasnet eval` write each as the flag that sets it, else as --set FIELD=VALUE. The library
    prints nothing: the inexact width of "N @ F" is a warning in Python and a note line on the command line."""
    from nasnet.cli import build_parser
    from nasnet.cli._train_flags import in_flags
    from nasnet.data import load_dataset
    from nasnet.train.config import base_model
    from nasnet.train.loop import check_batch_size

    with pytest.raises(NasnetError, match=r"^`batch_size` 2,000 is larger than the 1,257 training images of digits"):
        check_batch_size(1257, 2000, spec="digits")
    train = build_parser().parse_args(["train"])._parser
    evaluate = build_parser().parse_args(["eval", "x.pt"])._parser
    message = ("`batch_size` 9 is larger; use `device=cpu`, drop `sync_bn=true`, give `penultimate` or `filters`, "
               "`timeout_s`, `model.dropout`, `run_dir` and `nproc=gpu`")
    assert in_flags(message, train) == ("--batch-size 9 is larger; use --device cpu, drop --set sync_bn=true, give "
                                        "--F or --F0, --dist-timeout, --set model.dropout, --run-dir and --nproc gpu")
    assert in_flags("give `data` and `model`; `grad_clip=5`", evaluate) == "give --data and --model; grad_clip=5"

    dataset = load_dataset(small)
    with pytest.warns(UserWarning, match="`penultimate` 200 is not a multiple of 24"):
        base_model(dataset, penultimate=200)
    said: list[str] = []
    assert base_model(dataset, penultimate=200, note=said.append)[0].filters == 8
    assert said == ["`penultimate` 200 is not a multiple of 24; building F0 = 8 (penultimate width 192)"]


def test_transfer_walkthrough_search_small_train_large(tmp_path):
    """docs/models.md, "Transfer": a searched cell (best.json) stacked on the ImageNet skeleton at N @ F."""
    from PIL import Image

    from nasnet.arch.genotype import Genotype

    run = tmp_path / "search"
    s = run_cli("search", "--run-dir", str(run), "--child", "nasnet.search.children.analytic:analytic_child",
                "--children", "6", "--executor", "serial", "--quiet")
    assert s.returncode == 0, s.stderr
    g = Genotype.load(run / "best.json")
    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "imgs" / f"class{c}").mkdir(parents=True)
        for i in range(8):
            pixels = (rng.normal(0, 20, (36, 44, 3)) + 60 * c + 40).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / f"class{c}" / f"{i}.png")
    f = g.normal.output_multiple() * 8 * 4  # F for F0 = 8
    t = run_cli("train", "--genotype", str(run / "best.json"), "--skeleton", "imagenet", "--N", "1", "--F", str(f),
                "--data", f"folder:{tmp_path / 'imgs'},size=32", "--epochs", "1", "--batch-size", "8",
                "--run-dir", str(tmp_path / "train"), "--threads", "1", "--no-progress", "--no-tensorboard")
    assert t.returncode == 0, t.stderr
    config = json.loads((tmp_path / "train" / "config.json").read_text())["model"]
    assert config["skeleton"] == "imagenet" and config["normal_cells"] == 1 and config["filters"] == 8
    assert Genotype.parse(config["genotype"]) == g and config["num_classes"] == 3
