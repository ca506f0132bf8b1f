"""Bad input and run directories that cannot be shared (issue 13, items 1-11).

Every refusal is a user mistake: exit status 2, one line, no traceback, and nothing already saved is
altered (checksums of the files that were there before). Most commands run in this process through
`nasnet.cli.main`, which is what `python -m nasnet` runs; paths that must be unwritable run in one
child process that may not override file permissions (also when the tests run as root).
"""

import json
import os
import random
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import torch

from conftest import ROOT, checksums, one_error_line, permissions_apply, run_cli_batch
from nasnet.cli import main
from nasnet.locking import RunLock

TINY = ["-N", "1", "--F0", "8", "--set", "model.stem_multiplier=1", "--threads", "1", "--no-progress",
        "--no-tensorboard"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from digits_subset import write_digits_npz

    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits.npz", n_train=128, n_val=32, n_test=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small):
    """A finished one-epoch run (copy it before changing it)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--data", small, *TINY, "--epochs", "1", "--batch-size", "32", "--run-dir",
                 str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished search of 20 analytic children (copy it before changing it)."""
    from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search

    run_dir = tmp_path_factory.mktemp("searched") / "run"
    cfg = SearchConfig(children=20, child=ChildConfig(fn="nasnet.search.children.analytic:analytic_child"),
                       executor=ExecutorConfig(name="serial"), strategy=StrategyConfig(batch_size=10))
    run_search(cfg, run_dir)
    return run_dir


def refused(capsys, argv, *needles) -> str:
    """Run `nasnet ARGV` here; assert the one-line refusal; return its line."""
    capsys.readouterr()
    rc = main(argv)
    return one_error_line(rc, capsys.readouterr().err, *needles)


def unchanged(before: dict, folder) -> bool:
    after = checksums(folder)
    return {k: after.get(k) for k in before} == before


# -- 1. one process per training run directory ----------------------------------------------------------
def test_a_second_train_into_a_run_directory_in_use_is_refused(tmp_path, small, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir, "nasnet train"):       # another process's lock (an flock: per open file)
        refused(capsys, ["train", "--data", small, *TINY, "--run-dir", str(run_dir)],
                f"{run_dir} is in use by another nasnet train")
        refused(capsys, ["train", "--run-dir", str(run_dir), "--resume"], "in use by another nasnet train")
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]      # nothing else was written

    # a real second process: `nasnet train` holds the lock while it trains; --resume meanwhile is refused
    run_dir = tmp_path / "busy"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    first = subprocess.Popen([sys.executable, "-m", "nasnet", "train", "--data", small, *TINY, "--epochs", "2",
                              "--batch-size", "8", "--seed", "1", "--run-dir", str(run_dir)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (run_dir / "config.json").is_file():
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.2)
        refused(capsys, ["train", "--run-dir", str(run_dir), "--resume"], "in use by another nasnet train")
        refused(capsys, ["train", "--data", small, *TINY, "--seed", "2", "--run-dir", str(run_dir)],
                "already holds a run")
    finally:
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 1
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["config"]["train"]["seed"] == 1


# -- 2. --resume without its checkpoint ---------------------------------------------------------------
def test_resume_refuses_a_run_whose_checkpoint_is_missing(tmp_path, trained, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / "checkpoint.pt").unlink()
    before = checksums(run_dir)
    line = refused(capsys, ["train", "--run-dir", str(run_dir), "--resume"], "checkpoint.pt is missing",
                   "best.pt", "metrics.csv with 1 epoch")
    assert "start a new --run-dir" in line and unchanged(before, run_dir)

    # a run stopped during its first epoch has only its configuration: it starts that epoch again
    for name in ("best.pt", "metrics.csv", "results.json"):
        (run_dir / name).unlink()
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--no-progress", "--no-tensorboard"]) == 0
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1


# -- 3. a start that fails leaves nothing behind ------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--batch-size", "100000000"], "is larger than the 128 training images"),
])
def test_a_failed_start_leaves_no_run_directory(tmp_path, small, capsys, flags, message):
    if "cuda" in flags and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    run_dir = tmp_path / "new" / "run"
    refused(capsys, ["train", "--data", small, *TINY, *flags, "--run-dir", str(run_dir)], message)
    assert not (tmp_path / "new").exists()     # not even the folders made for it


# -- 4 and 5. read-only run directories and unwritable outputs -------------------------------------------------
def _wal_left_behind(src, dst):
    """A copy of a search run as a killed search leaves it: trials.db with pending frames in its -wal, no -shm."""
    shutil.copytree(src, dst)
    db = sqlite3.connect(dst / "trials.db")
    db.execute("PRAGMA wal_autocheckpoint=0")
    with db:
        db.execute("UPDATE trials SET error='written after the last checkpoint' WHERE id=1")
    shutil.copyfile(dst / "trials.db", dst / "db.copy")
    shutil.copyfile(dst / "trials.db-wal", dst / "wal.copy")
    db.close()
    for name in ("trials.db-wal", "trials.db-shm"):
        (dst / name).unlink(missing_ok=True)
    os.replace(dst / "db.copy", dst / "trials.db")
    os.replace(dst / "wal.copy", dst / "trials.db-wal")


def test_read_only_runs_report_and_unwritable_paths_are_one_line(tmp_path, trained, searched):
    if not permissions_apply():
        pytest.skip("this machine cannot run a command without root's permission override")
    ro = tmp_path / "read-only"
    ro.mkdir()
    shutil.copytree(searched, ro / "search")
    _wal_left_behind(searched, ro / "killed")
    shutil.copytree(trained, ro / "train")
    model_file = ro / "train" / "checkpoint.pt"
    for path in sorted(ro.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    ro.chmod(0o555)
    before = checksums(ro)
    out = tmp_path / "out"
    results = run_cli_batch([
        ["report", str(ro / "search"), "--out", str(out / "a"), "--cells", "1"],            # 4: read-only runs
        ["report", str(ro / "killed"), "--out", str(out / "b"), "--cells", "0"],
        ["report", str(ro / "search"), "--cells", "0"],                                       # 5: no --out there
        ["search", "--child", "analytic", "--children", "5", "--run-dir", str(ro / "new-search"), "--quiet"],
        ["search", "--run-dir", str(ro / "search"), "--children", "25", "--quiet"],
        ["train", "--data", "digits", "--run-dir", str(ro / "new-train"), "--no-progress"],
        ["train", "--run-dir", str(ro / "train"), "--resume", "--no-progress"],
        ["export", str(model_file), "--torchscript", str(ro / "model.ts")],
        ["show", "nasnet-a", "--out", str(ro / "cell.svg")],
    ], unprivileged=True)
    for r in results[:2]:
        assert r["rc"] == 0, r
        assert "20 trials" in r["stdout"]
    assert "written after the last checkpoint" in (out / "b" / "report.html").read_text()
    assert "give --out DIR" in results[2]["stderr"]
    for r in results[2:]:
        line = one_error_line(r["rc"], r["stderr"], "cannot write")
        assert str(ro) in line, line
    assert unchanged(before, ro) and sorted(checksums(ro)) == sorted(before)


# -- 6. a genotype argument no file system would take as a name ----------------------------------------
@pytest.mark.parametrize("text", ["%%%normal[" + "x" * 300 + "]", "y" * 5000])
def test_a_genotype_argument_longer_than_a_file_name(capsys, text):
    line = refused(capsys, ["show", text], "is not a known name")
    assert len(line) < 300


# -- 7. data that cannot be trained on ------------------------------------------------------------------
def _png_claiming(path, side):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _bad_data(tmp_path, kind):
    rng = np.random.default_rng(0)
    if kind == "no images":
        np.savez(tmp_path / "d.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
        return f"npz:{tmp_path / 'd.npz'}"
    if kind == "npy":
        np.save(tmp_path / "d.npy", np.zeros((10, 8, 8), np.uint8))
        return f"npz:{tmp_path / 'd.npy'}"
    if kind == "labels":
        y = np.arange(100) % 10
        y[0] = 10**9
        np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (100, 8, 8), dtype=np.uint8), y=y)
        return f"npz:{tmp_path / 'd.npz'}"
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / "imgs" / c / f"{i}.png")
    _png_claiming(tmp_path / "imgs" / "a" / "bomb.png", 30000)
    return f"folder:{tmp_path / 'imgs'}"


@pytest.mark.parametrize("kind, message", [
    ("no images", "'x' holds no images"),
    ("npy", "a single .npy array, not an .npz archive"),
    ("labels", "labels reach 1,000,000,000 but only 11 distinct values occur"),
    ("png bomb", "bomb.png: the image claims more than"),
])
def test_data_that_cannot_be_trained_on_is_one_line(tmp_path, capsys, kind, message):
    spec = _bad_data(tmp_path, kind)
    refused(capsys, ["train", "--data", spec, "--run-dir", str(tmp_path / "run"), "--no-progress"], message)
    assert not (tmp_path / "run").exists()


# -- 8. a damaged trial store --------------------------------------------------------------------------
def _garble(path, how):
    data = bytearray(path.read_bytes())
    if how == "header":
        data[:16] = b"not a database!!"
    else:                       # bytes of the pages after the first: text that no longer decodes, broken pages
        rng = random.Random(how)
        for _ in range(40 * how):
            data[rng.randrange(4096, len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["header", 1, 2, 3, 4])
def test_a_damaged_trial_store_is_one_line(tmp_path, searched, capsys, how):
    run_dir = tmp_path / "run"
    shutil.copytree(searched, run_dir)
    _garble(run_dir / "trials.db", how)
    before = checksums(run_dir)
    line = refused(capsys, ["search", "--run-dir", str(run_dir), "--children", "25", "--quiet"], "trials.db")
    assert "damaged" in line or "not a readable trial store" in line
    assert unchanged(before, run_dir)
    refused(capsys, ["report", str(run_dir), "--out", str(tmp_path / "report")], "trials.db")


# -- 9. checkpoint errors say what the file is not, in our words -------------------------------------------
class _Code:
    def __reduce__(self):
        return (os.getcwd, ())


def _bad_checkpoint(path, kind):
    good = path.with_suffix(".good")
    torch.save({"a": torch.zeros(3)}, good)
    data = good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "random":
        path.write_bytes(random.Random(0).randbytes(3000))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbled zip":
        path.write_bytes(bytes(b ^ 0x5A if 200 < i < len(data) - 200 and i % 37 == 0 else b
                               for i, b in enumerate(data)))
    elif kind == "plain pickle":
        import pickle

        path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    elif kind == "code":
        torch.save({"model": _Code()}, path)
    elif kind == "module":
        torch.save({"model": torch.nn.Linear(2, 2)}, path)


@pytest.mark.parametrize("kind", ["empty", "text", "random", "truncated", "garbled zip", "plain pickle", "code",
                                  "module"])
def test_checkpoint_errors_never_quote_pytorch(tmp_path, capsys, kind):
    path = tmp_path / "x.pt"
    _bad_checkpoint(path, kind)
    for argv in (["eval", str(path)], ["export", str(path), "--torchscript", str(tmp_path / "x.ts")],
                 ["import-weights", str(path), "-o", str(tmp_path / "y.pt")], ["train", "--run-dir", str(path),
                                                                               "--resume"]):
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        line = one_error_line(rc, err)
        for internal in ("weights_only", "file an issue", "Unpickler", "pickle protocol", "PytorchStreamReader",
                         "EOFError", "central directory"):
            assert internal not in err, (argv, err)
        if argv[0] == "eval":
            assert "refers to Python code" in line if kind in ("code", "module") else "not a PyTorch checkpoint" \
                in line or "is empty" in line, line
    assert not (tmp_path / "x.ts").exists() and not (tmp_path / "y.pt").exists()


# -- 10. NaN weights never pass the export check ------------------------------------------------------------
def test_export_refuses_a_model_with_nan_weights(tmp_path, capsys):
    import nasnet
    from nasnet.weights.export import export_torchscript, torchscript_parity
    from nasnet.weights.model_file import save_model_file

    model = nasnet.create_model("nasnet_a_tiny_cifar")
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    save_model_file(model, tmp_path / "nan.pt")
    refused(capsys, ["export", str(tmp_path / "nan.pt"), "--torchscript", str(tmp_path / "nan.ts")],
            "weights are not finite", "classifier.weight", "nothing exported")
    assert not (tmp_path / "nan.ts").exists()
    # the parity check itself: NaN logits are a failure, never "max |logit diff| 0"
    export_torchscript(model, tmp_path / "direct.ts")
    assert torchscript_parity(model, tmp_path / "direct.ts")["max_abs_diff"] != 0.0


# -- 11. values that cannot work -------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "--lr", "inf"], "lr must be a finite number, got inf"),
    (["train", "--lr", "nan"], "lr must be a finite number, got nan"),
    (["train", "--set", "weight_decay=inf"], "weight_decay must be a finite number"),
    (["train", "--batch-size", "100000000"], "--batch-size 100,000,000 is larger than the 1,257 training images"),
    (["search", "--epochs", "0", "--quiet"], "--epochs 0: the child needs at least 1"),
    (["search", "--child-set", "train.epochs=0", "--quiet"], "epochs must be an integer >= 1"),
    (["search", "--child-set", "train.lr=1e999", "--quiet"], "lr must be a finite number"),
    (["search", "--normal-cells", "0", "--quiet"], "--normal-cells 0: the child needs at least 1"),
])
def test_values_that_cannot_work_are_refused_up_front(tmp_path, capsys, argv, message):
    refused(capsys, [*argv, "--run-dir", str(tmp_path / "run")], message)
    assert not (tmp_path / "run").exists()


# -- 18. messages: counts of one, the analytic child's reward, the install hint ---------------------------
def test_plural():
    from nasnet.text import plural

    assert [plural(1, "epoch"), plural(2, "epoch"), plural(0, "image"), plural(1257, "image")] == \
        ["1 epoch", "2 epochs", "0 images", "1,257 images"]
    assert plural(1, "class", "classes") == "1 class" and plural(3, "child", "children") == "3 children"


def test_messages_count_one_thing_in_the_singular(tmp_path, capsys, small):
    np.savez(tmp_path / "one.npz", x=np.zeros((40, 8, 8), np.uint8), y=np.arange(40) % 10,
             x_test=np.zeros((1, 8, 8), np.uint8), y_test=np.array([3]))
    run_dir = tmp_path / "run"
    assert main(["train", "--data", f"npz:{tmp_path / 'one.npz'},val=4", *TINY, "--epochs", "1", "--batch-size",
                 "36", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "recipe cifar: 1 epoch x 1 step of 36" in out and "(1 image)" in out
    assert main(["eval", str(run_dir)]) == 0 and "(1 image of" in capsys.readouterr().out
    assert main(["search", "--child", "analytic", "--children", "20", "--paper", "--executor", "serial", "--quiet",
                 "--run-dir", str(tmp_path / "search")]) == 0
    out = capsys.readouterr().out
    assert "; 1 controller update;" in out
    assert re.search(r"best: trial \d+, reward 0\.\d+", out) and "validation accuracy" not in out
    for text in (out, (tmp_path / "search" / "trials.csv").read_text()):
        assert "1 controller updates" not in text


def test_the_onnx_hint_works_in_a_clone(monkeypatch):
    import nasnet
    from nasnet.errors import NasnetError
    from nasnet.weights.export import export_onnx, onnx_parity

    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    model = nasnet.create_model("nasnet_a_tiny_cifar")
    for call in (lambda: export_onnx(model, "x.onnx"), lambda: onnx_parity(model, "x.onnx")):
        with pytest.raises(NasnetError, match=re.escape("pip install -e '.[onnx]'")):
            call()
