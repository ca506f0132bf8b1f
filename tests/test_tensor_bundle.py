"""Our reader of TensorFlow's checkpoint format against TensorFlow's own reader.

The checkpoints in tests/fixtures/tf_slim/ were written by TensorFlow (tf.compat.v1.train.Saver) from
TF-Slim's NASNet builder; meta.json records, for every variable, what tf.train.load_checkpoint read:
dtype, shape, sum and first values (tools/make_tf_slim_fixture.py). Damaged copies of them must give
one-line errors naming the file.
"""

import json
import shutil
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nasnet import NasnetError
from nasnet.weights.crc32c import crc32c, mask_crc
from nasnet.weights.sstable import FOOTER_SIZE
from nasnet.weights.tensor_bundle import open_bundle, read_tensor_bundle

FIXTURES = Path(__file__).parent / "fixtures" / "tf_slim"
CASES = ["mobile", "large"]


def _meta(case):
    return json.loads((FIXTURES / case / "meta.json").read_text())


def _copy(case, tmp_path) -> Path:
    dst = tmp_path / case
    shutil.copytree(FIXTURES / case, dst)
    return dst


def _one_line_error(excinfo, *needles):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


# ---------------------------------------------------------------------------------------------
def test_crc32c_known_values_and_long_inputs():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283          # the CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA              # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43           # ... and of 0xff
    rng = np.random.default_rng(0)
    for size in (4095, 4096, 4097, 70_001):             # both sides of the vectorised path
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        expected = 0xFFFFFFFF
        for b in data:
            expected ^= b
            for _ in range(8):
                expected = (expected >> 1) ^ (0x82F63B78 if expected & 1 else 0)
        assert crc32c(data) == expected ^ 0xFFFFFFFF, size
    assert mask_crc(0) == 0xA282EAD8


@pytest.mark.parametrize("case", CASES)
def test_reader_agrees_with_tensorflows_reader(case):
    recorded = _meta(case)["tf_reader"]
    with open_bundle(FIXTURES / case / "model.ckpt") as bundle:
        assert bundle.num_shards == 1 and bundle.byte_order == "little"
        assert sorted(bundle.names) == sorted(recorded)
        values = bundle.read_all()
    for name, rec in recorded.items():
        v = values[name]
        assert list(v.shape) == rec["shape"] and str(v.dtype) == rec["dtype"], name
        assert v.ravel()[:4].tolist() == rec["head"], name
        assert float(v.astype(np.float64).sum()) == pytest.approx(rec["sum"], rel=1e-9, abs=1e-9), name


@pytest.mark.parametrize("form", ["prefix", "index", "data", "folder", "tar.gz", "tar.gz in a folder", "tar"])
def test_every_way_of_naming_a_checkpoint(tmp_path, form):
    src = FIXTURES / "mobile"
    files = ["model.ckpt.index", "model.ckpt.data-00000-of-00001"]
    if form == "prefix":
        path = src / "model.ckpt"
    elif form == "index":
        path = src / files[0]
    elif form == "data":
        path = src / files[1]
    elif form == "folder":
        path = src
    else:
        path = tmp_path / ("nasnet-a_mobile_04_10_2017.tar" + (".gz" if "gz" in form else ""))
        with tarfile.open(path, "w:gz" if "gz" in form else "w") as tar:
            for f in files:
                tar.add(src / f, arcname=("nasnet-a_mobile/" if "folder" in form else "") + f)
    values = read_tensor_bundle(path)
    assert len(values) == len(_meta("mobile")["tf_reader"])
    assert values["conv0/weights"].shape == (3, 3, 3, 32)


# ---------------------------------------------------------------------------------------------
# Damaged files: one line, naming the file
# ---------------------------------------------------------------------------------------------
def test_truncated_index(tmp_path):
    d = _copy("mobile", tmp_path)
    index = d / "model.ckpt.index"
    index.write_bytes(index.read_bytes()[:-100])
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d / "model.ckpt")
    _one_line_error(e, "model.ckpt.index", "magic number")


def test_index_that_is_not_an_index(tmp_path):
    bad = tmp_path / "model.ckpt.index"
    bad.write_bytes(b"hello" * 3)
    (tmp_path / "model.ckpt.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(tmp_path / "model.ckpt")
    _one_line_error(e, "model.ckpt.index", "truncated")


def test_damaged_index_block(tmp_path):
    d = _copy("mobile", tmp_path)
    index = d / "model.ckpt.index"
    data = bytearray(index.read_bytes())
    data[100] ^= 0x40                                  # inside the first data block
    index.write_bytes(bytes(data))
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d)
    _one_line_error(e, "model.ckpt.index", "CRC-32C")


def test_snappy_compressed_blocks_are_refused_clearly(tmp_path):
    d = _copy("mobile", tmp_path)
    index = d / "model.ckpt.index"
    data = bytearray(index.read_bytes())
    # the first data block starts at 0; its size is in the index block, found through the footer
    footer = bytes(data[-FOOTER_SIZE:])

    def varint(buf, pos):
        out = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            out |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return out, pos

    _, p = varint(footer, 0)
    _, p = varint(footer, p)
    idx_off, p = varint(footer, p)
    # first entry of the index block: shared, unshared, value length, key, value = handle of block 0
    q = idx_off
    _, q = varint(data, q)
    unshared, q = varint(data, q)
    _, q = varint(data, q)
    q += unshared
    blk_off, q = varint(data, q)
    blk_size, q = varint(data, q)
    data[blk_off + blk_size] = 1                       # compression type: Snappy
    crc = mask_crc(crc32c(bytes(data[blk_off:blk_off + blk_size + 1])))
    data[blk_off + blk_size + 1:blk_off + blk_size + 5] = struct.pack("<I", crc)
    index.write_bytes(bytes(data))
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d)
    _one_line_error(e, "model.ckpt.index", "Snappy")


def test_short_data_file(tmp_path):
    d = _copy("mobile", tmp_path)
    shard = d / "model.ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d)
    _one_line_error(e, "model.ckpt.data-00000-of-00001", "truncated")


def test_damaged_data_file(tmp_path):
    d = _copy("mobile", tmp_path)
    shard = d / "model.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d)
    _one_line_error(e, "model.ckpt.data-00000-of-00001", "CRC-32C", "variable '")


def test_missing_data_file(tmp_path):
    d = _copy("mobile", tmp_path)
    (d / "model.ckpt.data-00000-of-00001").unlink()
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(d / "model.ckpt.index")
    _one_line_error(e, "model.ckpt.data-00000-of-00001", "missing")


def test_truncated_archive(tmp_path):
    path = tmp_path / "nasnet-a_mobile_04_10_2017.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
            tar.add(FIXTURES / "mobile" / f, arcname=f)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(path)
    _one_line_error(e, "nasnet-a_mobile_04_10_2017.tar.gz")


def test_no_checkpoint_and_two_checkpoints(tmp_path):
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(tmp_path)
    _one_line_error(e, "no TensorFlow checkpoint")
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(tmp_path / "model.ckpt")
    _one_line_error(e, "no such file")
    for prefix in ("a.ckpt", "b.ckpt"):
        for f in ("index", "data-00000-of-00001"):
            shutil.copy(FIXTURES / "mobile" / f"model.ckpt.{f}", tmp_path / f"{prefix}.{f}")
    with pytest.raises(NasnetError) as e:
        read_tensor_bundle(tmp_path)
    _one_line_error(e, "2 checkpoints", "a.ckpt.index")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "b.ckpt"\nall_model_checkpoint_paths: "a.ckpt"\n')
    assert "conv0/weights" in read_tensor_bundle(tmp_path)


def test_format_detection(tmp_path):
    from nasnet.weights.formats import TF_CHECKPOINT, detect_format

    d = FIXTURES / "mobile"
    for path in (d, d / "model.ckpt", d / "model.ckpt.index", d / "model.ckpt.data-00000-of-00001"):
        assert detect_format(path) == TF_CHECKPOINT, path
    junk = tmp_path / "weights.bin"
    junk.write_bytes(b"\x00\x01junk" * 10)
    with pytest.raises(NasnetError) as e:
        detect_format(junk)
    _one_line_error(e, "weights.bin", "not a weight file")
    gz = tmp_path / "broken.tar.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    with pytest.raises(NasnetError) as e:
        detect_format(gz)
    _one_line_error(e, "broken.tar.gz", "not a readable tar archive")
