"""Bad input, unusual paths and run directories that cannot be shared, as an adversarial user meets them.

Every refusal is a user mistake: exit status 2, one line, no traceback, and nothing already saved is
altered (checksums of the files that were there before; FIFOs and device nodes stay what they were).
Most commands run in this process through `nasnet.cli.main`, which is what `python -m nasnet` runs;
tables of mistakes run in one child process (torch imported once); paths that must be unwritable run
in a child process that may not override file permissions (also when the tests run as root). Device
nodes are made with mknod inside each test's own folder, never the system's.
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
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (ROOT, checksums, make_device, one_error_line, permissions_apply, run_cli_batch,
                      saved_state, special_files, trial_rows)
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


# -- second sweep: unusual paths, numbers out of range, flags that mean what they say ------------------------
A = ["--child", "analytic", "--children", "4", "--quiet", "--executor", "serial"]
T = ["--epochs", "1", "-N", "1", "--F0", "4", "--batch-size", "8", "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A folder of inputs a user may hand a command: weights, arrays, genotype files, FIFOs, a folder, a dangling
    link and a comparison's folder (device nodes are made by the tests that need them)."""
    import nasnet
    from nasnet.arch.genotype import NASNET_A
    from nasnet.weights.model_file import save_model_file
    from nasnet.weights.safetensors_io import save_safetensors

    w = tmp_path_factory.mktemp("sweep")
    model = nasnet.create_model("nasnet_a_tiny_cifar")
    save_model_file(model, w / "model.pt")
    save_safetensors(model, w / "model.safetensors")
    rng = np.random.default_rng(0)
    np.savez(w / "three.npz", x=rng.integers(0, 255, (60, 8, 8), dtype=np.uint8), y=np.arange(60) % 3)
    np.savez(w / "odd.npz", x=rng.integers(0, 255, (40, 1, 1, 3), dtype=np.uint8), y=np.arange(40) % 2)
    np.savez(w / "wide.npz", x=rng.integers(0, 255, (40, 16, 16), dtype=np.uint8), y=np.arange(40) % 10,
             x_test=rng.integers(0, 255, (20, 16, 16), dtype=np.uint8), y_test=np.arange(20) % 10)
    text = json.dumps(NASNET_A.to_dict())
    (w / "nan.json").write_text(text.replace('"inputs": 2', '"inputs": NaN', 1))
    (w / "deep.json").write_text('{"genotype": ' + '{"a": ' * 50000 + "1" + "}" * 50001)
    (w / "dup.json").write_text(text[:-1] + ', "reduce": ' + json.dumps(NASNET_A.to_dict()["normal"]) + "}")
    for name in ("f.pth", "f.safetensors", "f.npz"):
        os.mkfifo(w / name)
    (w / "folder").mkdir()
    (w / "gone").symlink_to(w / "nowhere" / "x")          # a link to nothing: mkdir through it fails
    (w / "comparison").mkdir()
    (w / "comparison" / "compare.json").write_text("[]\n")
    return w


def _rows(w, run, search):
    """(command line, what its one line must say, paths it must not create): every mistake of the second sweep."""
    three = f"npz:{w / 'three.npz'}"
    new = w / "new"
    return [
        # inputs that are not regular files (or folders where a folder is meant) are refused before they are opened
        (["import-weights", w / "f.pth", "-o", new / "x.pt"], ["f.pth' is a FIFO (named pipe)"], [new]),
        (["import-weights", w / "f.safetensors", "-o", new / "x.pt"], ["is a FIFO (named pipe)"], [new]),
        (["eval", w / "f.pth", "--data", three], ["is a FIFO (named pipe), not a regular file or folder"], []),
        (["export", w / "f.pth", "--torchscript", new / "y.ts"], ["is a FIFO"], [new]),
        (["train", "--data", f"npz:{w / 'f.npz'}", *T, "--run-dir", new / "r"], ["is a FIFO"], [new]),
        (["search", "--data", f"npz:{w / 'f.npz'}", "--children", "2", "--run-dir", new / "s"], ["is a FIFO"], [new]),
        # sizes, counts and epochs are positive; integers that reach the store are bounded
        (["eval", run, "--batch-size=-1"], ["--batch-size: must be at least 1, got -1"], []),
        (["eval", run, "--batch-size", "0"], ["--batch-size: must be at least 1, got 0"], []),
        (["train", "--epochs", "0", "--run-dir", new / "r"], ["--epochs: must be at least 1, got 0"], [new]),
        (["search", *A, "--early-stop", "asha", "--rungs", "1,99999999999999999999", "--run-dir", new / "s"],
         ["--rungs must be whole numbers of at most 2,147,483,647"], [new]),
        (["search", *A, "--seed", str(2**40), "--run-dir", new / "s"], ["--seed must be a whole number of at most"],
         [new]),
        (["search", *A, "--child-set", f"train.epochs={10**20}", "--run-dir", new / "s"],
         ["--child-set train.epochs = 100000000000000000000 is beyond the 64-bit integers"], [new]),
        # too few classes for the labels: refused before the run directory exists
        (["train", "--data", three, *T, "--set", "model.num_classes=2", "--run-dir", new / "r"],
         ["model.num_classes=2 gives the model 2 outputs", "labels of", "run 0..2 (3 classes)"], [new]),
        (["train", "--data", three, *T, "--set", "model.num_classes=0", "--run-dir", new / "r"],
         ["gives the model no classifier"], [new]),
        # two outputs to one path
        (["export", w / "model.pt", "--torchscript", new / "o.ts", "--safetensors", new / "o.ts", "--no-check"],
         ["--torchscript and --safetensors both write"], [new]),
        (["export", w / "model.pt", "--onnx", new / "o.x", "--torchscript", f"{new}/../new/o.x"],
         ["--onnx and --torchscript both write"], [new]),
        # a file named for another format
        (["export", w / "model.pt", "--torchscript", new / "o.onnx", "--no-check"],
         ["--torchscript", "the name says onnx, the file would be torchscript; end it in .pt or .ts"], [new]),
        (["export", w / "model.pt", "--onnx", new / "o.safetensors", "--no-check"],
         ["the name says safetensors, the file would be onnx; end it in .onnx"], [new]),
        # malformed JSON genotypes
        (["show", w / "nan.json"], ["invalid JSON (NaN is not a JSON number)"], []),
        (["show", w / "deep.json"], ["invalid JSON (nested too deeply"], []),
        (["show", w / "dup.json"], ["the key 'reduce' appears twice in one object"], []),
        # comparisons: one run per seed, never inside a search's run directory, and no search in a comparison
        (["compare", "--strategies", "random", "--seeds", "0,0", *A, "--run-dir", new / "c"],
         ["seed 0 is given twice"], [new]),
        (["compare", "--strategies", "random", "--seeds", "0", *A, "--run-dir", search],
         ["is a run directory (it holds trials.db)"], [search / "compare.json", search / "random-seed0"]),
        (["search", *A, "--run-dir", w / "comparison"], ["holds a comparison (nasnet compare)"],
         [w / "comparison" / "trials.db"]),
        # a search's data is checked before anything is written
        (["search", "--children", "2", "--data", f"npz:{w / 'nope.npz'}", "--run-dir", new / "s"],
         ["the children's data", "nope.npz does not exist"], [new]),
        (["search", "--children", "2", "--data", three, "--run-dir", new / "s"],
         ["has 42 training images, fewer than a batch of the child's 128",
          "set --child-set train.batch_size to at most 42"], [new]),
        # a folder that cannot be made, though permissions say it could
        (["report", search, "--out", w / "gone" / "report", "--cells", "0"], ["cannot create the folder"], []),
        (["import-weights", w / "model.pt", "-o", w / "folder"], ["is a folder: give the name of the file"], []),
        # the suffix of import-weights' output chooses its format; other suffixes are refused
        (["import-weights", w / "model.pt", "-o", new / "x.onnx"], ["the suffix chooses what import-weights writes",
                                                                    ".safetensors: safetensors"], [new]),
        # negative numbers are values; flags without effect are refused, with the reason
        (["search", *A, "--cost", "params", "--target", "-1e6", "--run-dir", new / "s"],
         ["--cost params needs a positive --target"], [new]),
        (["search", *A, "--cost-weight", "-1e-3", "--run-dir", new / "s"],
         ["--cost-weight has no effect without a cost objective (--cost); drop it"], [new]),
        (["search", *A, "--final-epochs", "4", "--run-dir", new / "s"],
         ["--final-epochs has no effect without a retraining"], [new]),
        (["search", *A, "--strategy", "ppo", "--population", "3", "--run-dir", new / "s"],
         ["--population has no effect with --strategy (ppo): only evolution reads it"], [new]),
        (["search", *A, "--executor", "serial", "--child-timeout", "5", "--run-dir", new / "s"],
         ["--child-timeout has no effect with --executor (serial)"], [new]),
        (["compare", "--strategies", "random", "--seeds", "-1,2", *A[:2], "--children", "4", "--epoch-budget", "8",
          "--epochs", "1", "--run-dir", new / "c"], ["--children has no effect with --epoch-budget"], [new]),
        (["export", w / "model.pt", "--torchscript", new / "o.ts", "--opset", "18"],
         ["--opset has no effect without --onnx"], [new]),
        (["report", search, "--interval", "3"], ["--interval has no effect without --watch"], [search / "report"]),
        (["train", "--dist-timeout", "5", "--run-dir", new / "r"], ["--dist-timeout has no effect without --nproc"],
         [new]),
        # messages name the flags the user gave, and say which values are defaults or the run's
        (["search", *A, "--strategy", "evolution", "--population", "3", "--run-dir", new / "s"],
         ["--sample-size (5, the default) cannot exceed --population (3)"], [new]),
        (["search", *A, "--epochs", "3", "--top-k", "2", "--final-epochs", "3", "--run-dir", new / "s"],
         ["with --top-k (2) the top-k stage would retrain", "give --final-epochs other than the child's 3"], [new]),
        (["search", "--run-dir", search, "--early-stop", "asha", "--rungs", "1,5", "--quiet"],
         ["holds a search whose --early-stop is 'none'; it cannot continue with 'asha'"], []),
        # the suffix of a drawing is checked before anything is printed; the shape images were read as is named
        (["show", "nasnet-a", "--out", new / "x.bmp"], ["cannot draw to 'x.bmp'"], [new]),
        (["train", "--data", f"npz:{w / 'odd.npz'}", *T, "--run-dir", new / "r"],
         ["shape (40, 1, 1, 3) was read as (N, C, H, W): 40 images of 1 channel, 1x3"], [new]),
    ]


def _too_few_classes(trained, run_dir):
    """A run as an older nasnet could start it: a model with fewer classes than its labels, stopped during its
    first epoch (config.json only)."""
    shutil.copytree(trained, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["model"]["num_classes"] = 2
    (run_dir / "config.json").write_text(json.dumps(config))
    for name in ("checkpoint.pt", "best.pt", "metrics.csv", "results.json"):
        (run_dir / name).unlink()


def test_second_sweep_mistakes_are_one_line_and_change_nothing(sweep, trained, searched, tmp_path):
    run, search, old = tmp_path / "run", tmp_path / "search", tmp_path / "old"
    shutil.copytree(trained, run)
    shutil.copytree(searched, search)
    _too_few_classes(trained, old)
    rows = _rows(sweep, run, search) + [(["train", "--run-dir", old, "--resume"],
                                         ["model.num_classes=2 gives the model 2 outputs", "run 0..9"], [])]
    before = {folder: saved_state(folder) for folder in (sweep, run, search, old)}
    specials = special_files(sweep)
    results = run_cli_batch([[str(a) for a in argv] for argv, _, _ in rows], timeout=300)
    for res, (argv, needles, absent) in zip(results, rows):
        one_error_line(res["rc"], res["stderr"], *needles)
        assert res["stdout"] == "", (argv, res["stdout"])           # refused before anything is printed
        for path in absent:
            assert not path.exists(), (argv, path)
    assert {folder: saved_state(folder) for folder in before} == before
    assert special_files(sweep) == specials


def test_outputs_never_replace_a_device_or_a_fifo(sweep, tmp_path):
    """`--force` overwrites regular files only: a device node (/dev/full's and /dev/null's numbers, made here)
    or a FIFO given as an output is refused, and stays what it was."""
    make_device(tmp_path / "full.pt", null=False)
    make_device(tmp_path / "full.safetensors", null=False)
    make_device(tmp_path / "null.onnx")
    make_device(tmp_path / "null.svg")
    os.mkfifo(tmp_path / "pipe.ts")
    specials = special_files(tmp_path)
    rows = [
        ["import-weights", sweep / "model.safetensors", "-o", tmp_path / "full.pt", "--force"],
        ["import-weights", sweep / "model.pt", "-o", tmp_path / "full.safetensors", "--force"],
        ["export", sweep / "model.pt", "--safetensors", tmp_path / "full.safetensors", "--force", "--no-check"],
        ["export", sweep / "model.pt", "--onnx", tmp_path / "null.onnx", "--force"],
        ["export", sweep / "model.pt", "--torchscript", tmp_path / "pipe.ts", "--force"],
        ["show", "nasnet-a", "--out", tmp_path / "null.svg"],
        ["zoo", "--plot", tmp_path / "null.svg"],
    ]
    for res, argv in zip(run_cli_batch([[str(a) for a in argv] for argv in rows], timeout=300), rows):
        out = next(a for a in argv if isinstance(a, Path) and a.parent == tmp_path)
        kind = "a FIFO (named pipe)" if out.name == "pipe.ts" else "a character device"
        one_error_line(res["rc"], res["stderr"], f"{out.name}' is {kind}, not a regular file")
        assert res["stdout"] == "", res["stdout"]
    assert special_files(tmp_path) == specials
    from nasnet.atomic import write_text
    from nasnet.errors import NasnetError

    with pytest.raises(NasnetError, match="is a character device"):     # the library's own last line of defence
        write_text(tmp_path / "null.svg", "x")
    assert special_files(tmp_path) == specials


def test_the_cost_reward_cannot_overflow(tmp_path, capsys):
    """MnasNet's reward in log space: the formula where it is representable, held within +-1e30 beyond, never
    an OverflowError; a search with an absurd target and weight finishes, and continues."""
    from nasnet.search.objective import REWARD_LIMIT, cost_reward

    assert cost_reward(0.9, 2e6, 1e6, -0.07) == pytest.approx(0.9 * 2 ** -0.07, rel=1e-12)
    assert cost_reward(0.9, 1e6, 1e6, -0.07) == pytest.approx(0.9) and cost_reward(0.5, 3.0, 7.0, 0.0) == 0.5
    extremes = [(0.9, 1e5, 1e300, -100.0), (0.9, 5e-324, 1.7e308, -1e308), (0.9, 1e308, 1e-308, -1e300),
                (-0.5, 1e-300, 1e300, -100.0), (0.0, 1e-300, 1e300, -1e300), (1e308, 1.0, 1e308, -1e308)]
    rewards = [cost_reward(*x) for x in extremes]
    assert all(abs(r) <= REWARD_LIMIT for r in rewards), rewards
    assert rewards == [REWARD_LIMIT, REWARD_LIMIT, 0.0, -REWARD_LIMIT, 0.0, REWARD_LIMIT]
    big = [cost_reward(0.9, c, 1e12, -2.0) for c in (1e3, 1e4, 1e5, 1e6)]      # ordered while representable
    assert big == sorted(big, reverse=True) and big[-1] < REWARD_LIMIT

    run_dir = tmp_path / "run"
    flags = ["--child", "analytic", "--executor", "serial", "--quiet", "--strategy", "ppo", "--cost", "params", "--target", "1e300",
             "--cost-weight", "-100", "--batch-size", "3", "--run-dir", str(run_dir)]
    assert main(["search", "--children", "6", *flags]) == 0
    assert main(["search", "--run-dir", str(run_dir), "--children", "9", "--quiet"]) == 0
    rows = [r for r in trial_rows(run_dir) if r["status"] == "done"]
    assert len(rows) == 9 and all(r["reward"] == REWARD_LIMIT for r in rows)
    capsys.readouterr()


def test_every_output_gets_the_permissions_of_a_new_file(sweep, tmp_path, capsys):
    """safetensors' writer replaces the temporary file it is given (mode 0600); every output ends 0666 & ~umask,
    as .onnx, .ts and .pt did already."""
    umask = os.umask(0o022)
    try:
        out = tmp_path / "out"
        assert main(["export", str(sweep / "model.pt"), "--onnx", str(out / "m.onnx"), "--torchscript",
                     str(out / "m.ts"), "--safetensors", str(out / "m.safetensors"), "--no-check"]) == 0
        assert main(["import-weights", str(sweep / "model.pt"), "-o", str(out / "w.safetensors")]) == 0
        assert main(["import-weights", str(sweep / "model.pt"), "-o", str(out / "w.pt")]) == 0
        modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    finally:
        os.umask(umask)
    assert modes == dict.fromkeys(["m.onnx", "m.ts", "m.safetensors", "w.safetensors", "w.pt"], 0o644), modes
    capsys.readouterr()


def test_import_weights_writes_the_format_its_suffix_names(sweep, tmp_path, capsys):
    import nasnet
    from nasnet.weights.formats import PYTORCH, SAFETENSORS, detect_format

    for name, fmt in (("x.safetensors", SAFETENSORS), ("x.pth", PYTORCH), ("x.pt", PYTORCH)):
        assert main(["import-weights", str(sweep / "model.pt"), "-o", str(tmp_path / name)]) == 0
        assert detect_format(tmp_path / name) == fmt
        model = nasnet.load_model(tmp_path / name)
        assert model.config == nasnet.load_model(sweep / "model.pt").config
    from safetensors import safe_open

    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as f:
        source = json.loads(f.metadata()["nasnet.source"])
    assert source["path"] == str(sweep / "model.pt") and len(source["sha256"]) == 64
    capsys.readouterr()


def test_help_lists_come_from_the_registries():
    from nasnet.arch.space import SPACES
    from nasnet.cli import build_parser
    from nasnet.data import KINDS, SPLITS
    from nasnet.search.choices import CHILDREN
    from nasnet.search.executors import EXECUTORS
    from nasnet.train.config import PRESETS

    def help_of(command):
        parser = build_parser()
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        return " ".join(sub.format_help().split())

    expected = {"train": [*PRESETS, *KINDS], "search": [*SPACES, *EXECUTORS, *KINDS, *CHILDREN],
                "eval": [*SPLITS, *KINDS], "compare": [*SPACES, *EXECUTORS]}
    for command, names in expected.items():
        text = help_of(command)
        missing = [n for n in names if n not in text]
        assert missing == [], (command, missing)
    assert "imagenet-large" in help_of("train")


def test_negative_numbers_are_values():
    from nasnet.cli import build_parser

    parse = build_parser().parse_args
    args = parse(["search", "--cost-weight", "-1e-3", "--target", "-1e6", "--lr", "-.5"])
    assert (args.cost_weight, args.target, args.lr) == (-1e-3, -1e6, -0.5)
    assert parse(["compare", "--seeds", "-1,2"]).seeds == "-1,2"
    assert parse(["train", "--seed", "-3"]).seed == -3


def test_eval_says_when_images_are_resized(sweep, trained, capsys):
    """Data of another side than the model's is resized by the run's input pipeline, as in training; the
    result says so."""
    assert main(["eval", str(trained), "--data", f"npz:{sweep / 'wide.npz'}"]) == 0
    assert "16x16 images resized to the model's 8x8" in capsys.readouterr().out
    assert main(["eval", str(trained), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data_image_size"] == result["model_image_size"] == 8


def test_errors_about_a_temporary_file_name_the_output(tmp_path, monkeypatch):
    """A failure while writing the temporary file beside an output names the output the user gave."""
    import errno

    from nasnet import atomic
    from nasnet.errors import NasnetError

    def refuse(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(NasnetError) as err:
        atomic.write_text(tmp_path / "out.pt", "x")
    assert str(err.value) == f"cannot write {tmp_path / 'out.pt'}: Operation not permitted"
    assert [p.name for p in tmp_path.iterdir()] == []          # and the temporary file is gone
