"""Datasets: digits, CIFAR-10/100 python-version archives built here in the exact format, folders, npz."""

import os
import pickle
import tarfile

import numpy as np
import pytest

from nasnet.data import load_dataset, parse
from py2_pickle import py2_dumps
from nasnet.errors import NasnetError

# --- digits ---------------------------------------------------------------------------------

def test_digits_default_split():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits")
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    assert ds.num_classes == 10 and ds.channels == 1 and ds.image_size == 8
    x = np.concatenate([s.x for s in ds.splits.values()])
    assert x.dtype == np.uint8 and x.max() == 255 and x.min() == 0
    # the three splits partition the 1,797 images (as a multiset of (image, label) rows)
    src = load_digits()
    ref = np.rint(src.images * 255 / 16).astype(np.uint8).reshape(len(src.images), -1)
    ours = np.concatenate([np.concatenate([s.x.reshape(len(s), -1), s.y[:, None].astype(np.uint8)], 1)
                           for s in ds.splits.values()])
    ref = np.concatenate([ref, src.target[:, None].astype(np.uint8)], 1)
    assert sorted(map(bytes, ours)) == sorted(map(bytes, ref))
    assert set(ds.splits["test"].y.tolist()) == set(range(10))


def test_digits_split_is_fixed_by_split_seed():
    a = load_dataset("digits").splits["val"]
    b = load_dataset("digits,split_seed=0").splits["val"]   # another cache entry, same seed
    c = load_dataset("digits,split_seed=1").splits["val"]
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert len(load_dataset("digits,val=0.25").splits["val"]) == round(0.25 * 1797)


@pytest.mark.parametrize("spec, message", [
    ("mnist", "unknown kind 'mnist'"),
    ("digits,colour=red", "unknown option 'colour'"),
    ("digits,val=1.5", "val=1.5 must be a fraction"),
    ("digits,val=abc", "is not a number"),
    ("digits:/tmp", "takes no path"),
    ("cifar10", "give the cifar10"),
    ("cifar10:/no/such/file.tar.gz", "does not exist"),
    ("", "empty data spec"),
])
def test_spec_errors(spec, message):
    with pytest.raises(NasnetError, match=message):
        load_dataset(spec)


def test_spec_options_parse_from_the_right():
    s = parse("folder:/data/my,odd,folder,size=96,val=0.2")
    assert s.kind == "folder" and s.path == "/data/my,odd,folder"
    assert dict(s.options) == {"size": "96", "val": "0.2"}


# --- CIFAR archives in the python-version format -------------------------------------------------

def _pickle_batch(data: np.ndarray, labels: list[int], label_key: bytes) -> bytes:
    # As the distributed files are: pickled by Python 2 (str keys and pixel bytes, numpy.core paths).
    obj = {b"batch_label": b"training batch", label_key: labels, b"data": data,
           b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}
    return py2_dumps(obj)


def _cifar_image_rows(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """n rows of 3072 bytes: R, G, B planes whose values encode the image index (cheap to build)."""
    idx = np.arange(offset, offset + n)
    rows = np.empty((n, 3, 1024), np.uint8)
    rows[:, 0] = (idx % 251)[:, None]          # red plane
    rows[:, 1] = (idx // 251 % 251)[:, None]   # green plane
    rows[:, 2] = np.arange(1024, dtype=np.uint8)[None]  # blue plane: the pixel position, row-major
    return rows.reshape(n, 3072), idx


def build_cifar(path, kind="cifar10", per_batch=20, n_test=30, skip=(), corrupt=None, as_folder=False,
                compresslevel=1):
    """Write a CIFAR python-version archive (.tar.gz, or the extracted folder) with deterministic pixels."""
    if kind == "cifar10":
        folder, train_names, label_key = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], b"labels"
        meta_name, meta = "batches.meta", {b"label_names": [b"c%d" % i for i in range(10)], b"num_vis": 3072}
        classes = 10
    else:
        folder, train_names, label_key = "cifar-100-python", ["train"], b"fine_labels"
        meta_name = "meta"
        meta = {b"fine_label_names": [b"f%d" % i for i in range(100)], b"coarse_label_names": [b"k"] * 20}
        classes = 100
        per_batch *= 5
    members = {}
    offset = 0
    for name in train_names:
        rows, idx = _cifar_image_rows(per_batch, offset)
        members[name] = _pickle_batch(rows, (idx % classes).tolist(), label_key)
        offset += per_batch
    rows, idx = _cifar_image_rows(n_test, 10**6)
    members["test" if kind == "cifar100" else "test_batch"] = _pickle_batch(rows, (idx % classes).tolist(), label_key)
    members[meta_name] = py2_dumps(meta)
    for name in skip:
        members.pop(name)
    if corrupt:
        members.update(corrupt)
    if as_folder:
        d = path / folder
        d.mkdir(parents=True)
        for name, data in members.items():
            (d / name).write_bytes(data)
        return path
    import io

    with tarfile.open(path, "w:gz", compresslevel=compresslevel) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cifar10_small_archive_layout_and_pixels(tmp_path):
    path = build_cifar(tmp_path / "cifar-10-python.tar.gz")
    ds = load_dataset(f"cifar10:{path},val=10")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 90, "val": 10, "test": 30}
    assert ds.num_classes == 10 and ds.class_names[3] == "c3" and ds.image_size == 32 and ds.channels == 3
    # rows are R, G, B planes of a row-major 32x32 image
    x, y = np.concatenate([ds.splits["train"].x, ds.splits["val"].x]), np.concatenate(
        [ds.splits["train"].y, ds.splits["val"].y])
    i = int(np.argmax(x[:, 0, 0, 0]))              # some image; its index is encoded in the red plane
    idx = int(x[i, 0, 0, 0]) + 251 * int(x[i, 1, 0, 0])
    assert (x[i, 0] == idx % 251).all() and (x[i, 1] == idx // 251 % 251).all()
    assert x[i, 2, 0, 5] == 5 and x[i, 2, 1, 0] == 32 % 256 and x[i, 2, 7, 3] == (7 * 32 + 3) % 256
    assert y[i] == idx % 10
    assert sorted(ds.splits["test"].y.tolist()) == sorted((np.arange(10**6, 10**6 + 30) % 10).tolist())


def test_the_fixture_is_a_python2_pickle():
    """The archives above are written as Python 2 wrote CIFAR: no opcode Python 3 would add, the
    old numpy path, and pixel bytes that only an unpickler given an `encoding` can read."""
    import pickletools

    rows = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    data = _pickle_batch(rows, [1, 2, 3, 4], b"labels")
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    names = {name for name, _ in ops}
    assert {"SHORT_BINSTRING", "BINSTRING", "GLOBAL", "REDUCE", "BUILD", "BINPUT"} <= names
    assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "SHORT_BINBYTES", "BINBYTES", "STACK_GLOBAL"}
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops
    with pytest.raises(UnicodeDecodeError):        # Python 3's default (ASCII strings) cannot read the pixels
        pickle.loads(data)
    latin1 = pickle.loads(data, encoding="latin1")   # the way NumPy documents for Python 2 pickles
    assert np.array_equal(latin1["data"], rows) and latin1["labels"] == [1, 2, 3, 4]


def test_cifar10_pixels_are_the_python2_rows(tmp_path):
    # catches: planes read interleaved (reshape to N x 32 x 32 x 3), rows and columns swapped, labels
    # or keys lost to the bytes/str difference of Python 2 pickles, a shuffled test split
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 256, (30, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).tolist()
    path = build_cifar(tmp_path / "c10.tar.gz", corrupt={"test_batch": _pickle_batch(rows, labels, b"labels")})
    test = load_dataset(f"cifar10:{path},val=10").splits["test"]
    assert test.x.shape == (30, 3, 32, 32) and test.y.tolist() == labels
    for i, c, r, col in [(0, 0, 0, 0), (3, 1, 2, 3), (29, 2, 31, 30), (17, 0, 5, 31), (8, 2, 31, 0)]:
        # the row is the red plane, then green, then blue, each 32 rows of 32 pixels
        assert test.x[i, c, r, col] == rows[i, c * 1024 + r * 32 + col], (i, c, r, col)
    assert np.array_equal(test.x, rows.reshape(30, 3, 32, 32))


def test_cifar10_extracted_folder(tmp_path):
    build_cifar(tmp_path, as_folder=True)
    a = load_dataset(f"cifar10:{tmp_path},val=10")
    b = load_dataset(f"cifar10:{tmp_path / 'cifar-10-batches-py'},val=10")
    assert len(a.splits["train"]) == 90 and np.array_equal(a.splits["val"].x, b.splits["val"].x)


def test_cifar10_full_size_archive(tmp_path):
    path = build_cifar(tmp_path / "cifar-10-python.tar.gz", per_batch=10_000, n_test=10_000)
    ds = load_dataset(f"cifar10:{path}")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 45_000, "val": 5_000, "test": 10_000}
    assert ds.splits["train"].x.shape == (45_000, 3, 32, 32) and ds.splits["train"].x.dtype == np.uint8
    # the paper's held-out 5,000 are a fixed seeded draw from all five batches
    val_idx = ds.splits["val"].x[:, 0, 0, 0].astype(int) + 251 * ds.splits["val"].x[:, 1, 0, 0].astype(int)
    assert len(set(val_idx.tolist())) == 5_000 and val_idx.max() > 40_000 and val_idx.min() < 10_000
    again = load_dataset(f"cifar10:{path},split_seed=0")
    assert np.array_equal(again.splits["val"].y, ds.splits["val"].y)


def test_cifar100_archive(tmp_path):
    path = build_cifar(tmp_path / "cifar-100-python.tar.gz", kind="cifar100")
    ds = load_dataset(f"cifar100:{path},val=20")
    assert ds.num_classes == 100 and ds.class_names[42] == "f42"
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 80, "val": 20, "test": 30}


def test_cifar_missing_member(tmp_path):
    path = build_cifar(tmp_path / "c10.tar.gz", skip=("data_batch_3",))
    with pytest.raises(NasnetError, match=r"c10\.tar\.gz: member data_batch_3 is missing"):
        load_dataset(f"cifar10:{path}")
    build_cifar(tmp_path / "f", kind="cifar100", skip=("meta",), as_folder=True)
    with pytest.raises(NasnetError, match=r"cifar-100-python/meta: missing"):
        load_dataset(f"cifar100:{tmp_path / 'f'}")


def test_cifar_truncated_archive(tmp_path):
    path = build_cifar(tmp_path / "c10.tar.gz", compresslevel=6)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NasnetError, match=r"c10\.tar\.gz"):
        load_dataset(f"cifar10:{path}")


def test_cifar_truncated_member_in_folder(tmp_path):
    build_cifar(tmp_path, as_folder=True)
    f = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(NasnetError, match=r"data_batch_2: truncated"):
        load_dataset(f"cifar10:{tmp_path}")


def test_cifar_wrong_shape(tmp_path):
    bad = _pickle_batch(np.zeros((20, 3000), np.uint8), [0] * 20, b"labels")
    path = build_cifar(tmp_path / "c10.tar.gz", corrupt={"data_batch_4": bad})
    with pytest.raises(NasnetError, match=r"data_batch_4: 'data' must be a uint8 array N x 3072.*\(20, 3000\)"):
        load_dataset(f"cifar10:{path}")
    bad = _pickle_batch(np.zeros((20, 3072), np.uint8), [0] * 19, b"labels")
    path = build_cifar(tmp_path / "c10b.tar.gz", corrupt={"test_batch": bad})
    with pytest.raises(NasnetError, match=r"test_batch: 20 images but 19 labels"):
        load_dataset(f"cifar10:{path}")


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    path = build_cifar(tmp_path / "c10.tar.gz", corrupt={"data_batch_1": pickle.dumps({b"data": Evil()})})
    with pytest.raises(NasnetError, match=r"data_batch_1: .*refusing to load"):
        load_dataset(f"cifar10:{path}")


def test_cifar_not_an_archive(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(NasnetError, match=r"notes\.txt: not a readable CIFAR archive"):
        load_dataset(f"cifar10:{path}")


# --- npz and folders -----------------------------------------------------------------------------

def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (50, 12, 12, 3), dtype=np.uint8)          # channels-last
    y = np.arange(50) % 4
    np.savez(tmp_path / "a.npz", x=x, y=y, x_test=x[:7], y_test=y[:7])
    ds = load_dataset(f"npz:{tmp_path / 'a.npz'},val=5")
    assert ds.channels == 3 and ds.image_size == 12 and ds.num_classes == 4
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 45, "val": 5, "test": 7}
    assert np.array_equal(ds.splits["test"].x, x[:7].transpose(0, 3, 1, 2))
    np.savez(tmp_path / "b.npz", x=rng.random((30, 8, 8)), y=np.arange(30) % 3)    # float grey
    ds = load_dataset(f"npz:{tmp_path / 'b.npz'}")
    assert ds.channels == 1 and {k: len(v) for k, v in ds.splits.items()} == {"train": 21, "val": 3, "test": 6}


@pytest.mark.parametrize("channels", [1, 3])
def test_npz_channels_first_is_kept_as_it_is(tmp_path, channels):
    # catches: a channels-first array taken for channels-last (transposed: C and W swapped), or
    # grey channels-first images given an extra axis
    x = np.random.default_rng(channels).integers(0, 256, (20, channels, 10, 10), dtype=np.uint8)
    y = np.arange(20) % 5
    np.savez(tmp_path / "cf.npz", x=x, y=y, x_test=x[:4], y_test=y[:4])
    ds = load_dataset(f"npz:{tmp_path / 'cf.npz'},val=4")
    assert ds.channels == channels and ds.image_size == 10
    assert np.array_equal(ds.splits["test"].x, x[:4]) and ds.splits["test"].y.tolist() == y[:4].tolist()
    assert sorted(_rows(ds.splits["train"]) + _rows(ds.splits["val"])) == sorted(
        (xi.tobytes(), int(yi)) for xi, yi in zip(x, y))


def test_npz_with_its_own_validation_arrays(tmp_path):
    # catches: x_val ignored (val carved from x instead), or x_val's images paired with y's labels
    rng = np.random.default_rng(3)
    x, x_val = rng.integers(0, 256, (50, 6, 6), dtype=np.uint8), rng.integers(0, 256, (7, 6, 6), dtype=np.uint8)
    y, y_val = np.arange(50) % 3, np.array([2, 0, 1, 1, 0, 2, 2])
    np.savez(tmp_path / "v.npz", x=x, y=y, x_val=x_val, y_val=y_val)
    ds = load_dataset(f"npz:{tmp_path / 'v.npz'}")
    assert np.array_equal(ds.splits["val"].x, x_val[:, None]) and ds.splits["val"].y.tolist() == y_val.tolist()
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 40, "val": 7, "test": 10}   # test: 20% of x
    assert sorted(_rows(ds.splits["train"]) + _rows(ds.splits["test"])) == sorted(
        (xi[None].tobytes(), int(yi)) for xi, yi in zip(x, y))
    with pytest.raises(NasnetError, match="has its own validation split"):
        load_dataset(f"npz:{tmp_path / 'v.npz'},val=3")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npz_float_images_become_the_nearest_uint8(tmp_path, dtype):
    # catches: truncation instead of rounding (0.9984 -> 254), a scale of 256, values kept as floats
    values = np.array([0.0, 1 / 255, 0.2, 0.5, 254.6 / 255, 0.99, 1.0], dtype)
    want = [0, 1, 51, 128, 255, 252, 255]            # round(v * 255) by hand: 0.5 -> 127.5 -> 128
    x = np.zeros((10, 7, 7), dtype)
    x[:, 0, :] = values
    np.savez(tmp_path / "f.npz", x=x, y=np.arange(10) % 2, x_test=x[:2], y_test=np.arange(2))
    ds = load_dataset(f"npz:{tmp_path / 'f.npz'},val=2")
    assert ds.splits["test"].x.dtype == np.uint8
    assert ds.splits["test"].x[0, 0, 0].tolist() == want and (ds.splits["test"].x[:, 0, 1:] == 0).all()


@pytest.mark.parametrize("arrays, message", [
    (dict(x=np.zeros((5, 8, 8), np.uint8)), "needs arrays 'x' and 'y'"),
    (dict(x=np.zeros((5, 8, 9), np.uint8), y=np.zeros(5, int)), "must be square"),
    (dict(x=np.zeros((5, 8, 8, 5), np.uint8), y=np.zeros(5, int)), "C 1 or 3"),
    (dict(x=np.zeros((5, 8, 8), np.uint8), y=np.zeros(4, int)), "labels must be 5 integers"),
    (dict(x=np.full((5, 8, 8), 3.0), y=np.zeros(5, int)), r"float images must lie in \[0, 1\]"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(NasnetError, match=message):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


def _png(path, color, size=(20, 14)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def _noise(seed, h, w, channels=3):
    """An image of random pixels (H, W, C): every pixel tells where it came from, unlike a solid colour."""
    shape = (h, w, channels) if channels > 1 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _save(path, pixels, mode=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path)


def _rows(split) -> list[tuple[bytes, int]]:
    """A split as a sorted list of (image bytes, label): compares splits as multisets."""
    return sorted((x.tobytes(), int(y)) for x, y in zip(split.x, split.y))


def _chw(pixels) -> np.ndarray:
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def test_image_folder_crops_the_centre_of_the_shorter_side(tmp_path):
    # No resizing (the shorter side is already `size`), so the crop is exact. Odd margins catch a
    # crop offset rounded instead of floored; the wide and the tall image catch swapped axes.
    wide, tall = _noise(1, 14, 21), _noise(2, 23, 14)         # (H, W, C): 21 wide; 23 tall
    _save(tmp_path / "a" / "wide.png", wide)
    _save(tmp_path / "a" / "tall.png", tall)
    ds = load_dataset(f"folder:{tmp_path},size=14,val=0,test=0")
    got = {x.tobytes() for x in ds.splits["train"].x}
    assert got == {_chw(wide[:, 3:17]).tobytes(), _chw(tall[4:18, :]).tobytes()}
    assert ds.image_size == 14 and ds.channels == 3


def _ramp(h, w):
    """Red rises 4 per column, green 5 per row, blue 3 per column: bilinear resampling keeps a linear
    ramp linear, so the expected pixels follow from the pixel-centre coordinates alone."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([4 * x + 20, 5 * y + 10, 3 * x + 1], -1).astype(np.uint8)


@pytest.mark.parametrize("h, w, keep_rows, keep_cols", [
    (32, 48, slice(1, 15), slice(0, 16)),    # wide: shorter side 32 -> 16, 24 wide, crop columns 4..19
    (45, 30, slice(0, 16), slice(1, 15)),    # tall, scale 16/30: 24 rows, crop rows 4..27
])
def test_image_folder_resizes_the_shorter_side_then_crops(tmp_path, h, w, keep_rows, keep_cols):
    # catches: the longer side resized to `size` (or both sides, squashing), the crop taken from the
    # corner, a resize whose pixel centres are off by half a pixel (align_corners)
    size = 16
    _save(tmp_path / "only" / "ramp.png", _ramp(h, w))
    out = load_dataset(f"folder:{tmp_path},size={size},val=0,test=0").splits["train"].x[0].astype(float)
    scale = min(h, w) / size                          # source pixels per output pixel
    nh, nw = round(h / scale), round(w / scale)
    top, left = (nh - size) // 2, (nw - size) // 2
    src_y = (np.arange(size) + top + 0.5) * (h / nh) - 0.5    # pixel centres mapped back to the source
    src_x = (np.arange(size) + left + 0.5) * (w / nw) - 0.5
    want = np.stack([np.broadcast_to(4 * src_x + 20, (size, size)),
                     np.broadcast_to((5 * src_y + 10)[:, None], (size, size)),
                     np.broadcast_to(3 * src_x + 1, (size, size))])
    # the filter near the image border sees fewer source pixels: compare where it sees a full support
    diff = np.abs(out - want)[:, keep_rows, keep_cols]
    assert diff.max() <= 1.0, diff.max()


def test_image_folder_converts_grey_rgba_and_palette_images_to_rgb(tmp_path):
    # catches: a grey image kept with one channel (or read as three different ones), alpha taken as a
    # colour channel or blended in, palette indices used as intensities
    grey, rgba = _noise(3, 12, 12, channels=1), _noise(4, 12, 12, channels=4)
    rgba[..., 3] = np.where(np.arange(12) < 6, 0, 255)[None, :]          # half transparent, half opaque
    index = _noise(5, 12, 12, channels=1) % 4
    palette = np.array([[10, 20, 30], [200, 100, 0], [0, 255, 128], [77, 77, 77]], np.uint8)
    from PIL import Image

    _save(tmp_path / "g" / "grey.png", grey, "L")
    _save(tmp_path / "g" / "rgba.png", rgba, "RGBA")
    (tmp_path / "p").mkdir()
    pal = Image.fromarray(index.astype(np.uint8), "P")
    pal.putpalette(palette.flatten().tolist())
    pal.save(tmp_path / "p" / "palette.png")
    ds = load_dataset(f"folder:{tmp_path},size=12,val=0,test=0")
    assert ds.channels == 3 and ds.class_names == ["g", "p"]
    want = [(_chw(np.repeat(grey[..., None], 3, -1)).tobytes(), 0), (_chw(rgba[..., :3]).tobytes(), 0),
            (_chw(palette[index]).tobytes(), 1)]
    assert _rows(ds.splits["train"]) == sorted(want)


def _class_folders(root, names, per_class, side=8, seed=0):
    """root/NAME/i.png of random pixels; returns {image bytes (C, H, W): class name}."""
    made = {}
    for k, name in enumerate(names):
        for i in range(per_class):
            pixels = _noise(seed * 1000 + k * 100 + i, side, side)
            _save(root / name / f"{i}.png", pixels)
            made[_chw(pixels).tobytes()] = name
    return made


def test_image_folder_split_by_seed(tmp_path):
    # catches: labels by creation order instead of sorted names, splits that overlap or lose images,
    # a split that depends on the listing order or the path rather than on split_seed
    made = _class_folders(tmp_path / "a", ["zebra", "ant", "moose"], 10)
    ds = load_dataset(f"folder:{tmp_path / 'a'},size=8")
    assert ds.class_names == ["ant", "moose", "zebra"]
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 24, "val": 3, "test": 3}   # 10% and 10%
    everything = [row for s in ds.splits.values() for row in _rows(s)]
    assert sorted(everything) == sorted((b, ds.class_names.index(name)) for b, name in made.items())
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "copy")            # another path, files written later
    again = load_dataset(f"folder:{tmp_path / 'copy'},size=8")
    other = load_dataset(f"folder:{tmp_path / 'a'},size=8,split_seed=5")
    for name in ("train", "val", "test"):
        assert _rows(again.splits[name]) == _rows(ds.splits[name])
    assert _rows(other.splits["val"]) != _rows(ds.splits["val"]) or _rows(other.splits["test"]) != _rows(
        ds.splits["test"])
    assert len(load_dataset(f"folder:{tmp_path / 'a'},size=8,val=0.2,test=6").splits["val"]) == 6


@pytest.mark.parametrize("val_dir", ["val", "valid", "validation"])
def test_image_folder_with_its_own_validation_folder(tmp_path, val_dir):
    # catches: a validation folder under another accepted name ignored (val carved from train instead)
    train = _class_folders(tmp_path / "train", ["cat", "dog"], 5, seed=1)
    val = _class_folders(tmp_path / val_dir, ["cat", "dog"], 2, seed=2)
    ds = load_dataset(f"folder:{tmp_path},size=8")
    assert ds.class_names == ["cat", "dog"]
    assert _rows(ds.splits["val"]) == sorted((b, ["cat", "dog"].index(c)) for b, c in val.items())
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 9, "val": 4, "test": 1}   # test: 10% of train
    assert sorted(_rows(ds.splits["train"]) + _rows(ds.splits["test"])) == sorted(
        (b, ["cat", "dog"].index(c)) for b, c in train.items())
    with pytest.raises(NasnetError, match="has its own validation split"):
        load_dataset(f"folder:{tmp_path},size=8,val=0.2")


def _png(path, color, size=(20, 14)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(NasnetError, match="no class sub-folders with images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    _png(tmp_path / "flat" / "a" / "0.png", (1, 2, 3))
    (tmp_path / "flat" / "b").mkdir()
    (tmp_path / "flat" / "b" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(NasnetError, match=r"x\.jpg: cannot read image"):
        load_dataset(f"folder:{tmp_path / 'flat'},val=0,test=0")
