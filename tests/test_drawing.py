"""Cell diagrams (`nasnet show --out`) and the zoo plot (`nasnet zoo --plot`): every block, op and
edge of the genotype appears in the SVG and PNG, boxes never overlap, stride-2 ops and unused inputs
are marked, bad output paths are refused, and the zoo's points sit at the paper's and the table's counts."""

import random
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from nasnet import NASNET_A, Genotype
from nasnet.arch.space import NASNET_SPACES, SPACES
from nasnet.report.drawing import draw_genotype, layout_cell, op_labels

SVG = "{http://www.w3.org/2000/svg}"


def _svg_texts(path) -> list[str]:
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


def _check_svg(path, g: Genotype):
    texts = Counter(_svg_texts(path))
    for op, n in Counter(op_labels(g)).items():
        assert texts[op] >= n, f"label {op!r} drawn {texts[op]} times, expected {n}"
    assert texts["concat" if g.normal.output == "concat" else "split"] >= 2


# NASNet-A's text form, written out by hand from docs/nasnet-a.md's two tables (not from the package)
NASNET_A_TEXT = (
    "normal[0 sep_conv_5x5 1 sep_conv_3x3 add | 1 sep_conv_5x5 1 sep_conv_3x3 add | "
    "0 avg_pool_3x3 1 identity add | 1 avg_pool_3x3 1 avg_pool_3x3 add | 0 sep_conv_3x3 0 identity add ; "
    "concat 1 2 3 4 5 6] "
    "reduce[0 sep_conv_5x5 1 sep_conv_7x7 add | 0 max_pool_3x3 1 sep_conv_7x7 add | "
    "0 avg_pool_3x3 1 sep_conv_5x5 add | 3 identity 2 avg_pool_3x3 add | 2 sep_conv_3x3 0 max_pool_3x3 add ; "
    "concat 3 4 5 6]")


def png_chunks(path) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk of a PNG file, read by hand from the format (signature, then length,
    type, data and CRC-32 of type + data per chunk), each CRC checked; no image library involved."""
    import struct
    import zlib

    raw = Path(path).read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", raw[:8]
    chunks, i = [], 8
    while i < len(raw):
        length, kind = struct.unpack(">I4s", raw[i:i + 8])
        data = raw[i + 8:i + 8 + length]
        (crc,) = struct.unpack(">I", raw[i + 8 + length:i + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        i += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    return chunks


def png_text(path) -> dict[str, str]:
    """The text chunks of a PNG (tEXt: keyword NUL Latin-1 text; zTXt: keyword NUL method zlib data)."""
    import zlib

    out = {}
    for kind, data in png_chunks(path):
        if kind == b"tEXt":
            key, _, text = data.partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = data.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
    return out


def _check_png(path, g: Genotype):
    import struct

    with Image.open(path) as im:
        im.verify()
    width, height = struct.unpack(">II", png_chunks(path)[0][1][:8])
    assert width > 400 and height > 300
    description = png_text(path)["Description"]
    # catches: metadata that PIL would show but the file does not hold as a standard text chunk, or
    # a text that stopped being the genotype's (only re-parsing it would hide a changed format)
    assert Genotype.parse(description) == g
    for op in op_labels(g):
        assert op in description
    return description


def test_nasnet_a_svg_and_png(tmp_path):
    _check_svg(draw_genotype(NASNET_A, tmp_path / "a.svg"), NASNET_A)
    assert _check_png(draw_genotype(NASNET_A, tmp_path / "a.png"), NASNET_A) == NASNET_A_TEXT


@pytest.mark.parametrize("space", sorted(NASNET_SPACES))
def test_random_genotypes_render(tmp_path, space):
    rng = random.Random(space)
    for i in range(4):
        g = SPACES[space].sample(rng)
        _check_svg(draw_genotype(g, tmp_path / f"{i}.svg"), g)
    _check_png(draw_genotype(g, tmp_path / "last.png"), g)


def test_layout_has_no_overlapping_boxes_and_marks_strides():
    for seed in range(40):
        g = SPACES["nasnet-c"].sample(seed)
        for name, cell in g.cells:
            nodes, edges = layout_cell(cell, reduction=name == "reduce")
            spots = [(round(n.x, 3), round(n.y, 3)) for n in nodes]
            assert len(spots) == len(set(spots))
            assert len(edges) == 4 * cell.num_blocks + len(cell.concat)
            strided = [n for n in nodes if n.kind == "op" and n.sub == "stride 2"]
            expected = sum(s < cell.num_inputs for blk in cell.blocks for s in blk.inputs) if name == "reduce" else 0
            assert len(strided) == expected


def test_unused_inputs_are_muted():
    g = Genotype.parse("normal[0 identity 0 conv_3x3 add ; concat 2] reduce[1 identity 1 identity concat ; concat 2]")
    nodes, _ = layout_cell(g.normal, False)
    assert [n.muted for n in nodes if n.kind == "input"] == [False, True]
    nodes, _ = layout_cell(g.reduce, True)
    assert [n.muted for n in nodes if n.kind == "input"] == [True, False]


def test_show_out_cli(cli, tmp_path):
    res = cli("show", "nasnet-a", "--out", str(tmp_path / "cell.svg"))
    assert res.returncode == 0, res.stderr
    _check_svg(tmp_path / "cell.svg", NASNET_A)
    res = cli("show", "nasnet-a", "--out", str(tmp_path / "cell.gif"))
    assert res.returncode == 2 and "Traceback" not in res.stderr and ".svg" in res.stderr
    res = cli("show", "nasnet-a", "--out", str(tmp_path / "missing" / "cell.png"))
    assert res.returncode == 2 and "does not exist" in res.stderr


# The paper's ImageNet models (Tables 2 and 3): N @ F -> (parameters, mult-adds, top-1 %)
PAPER_IMAGENET = {"4 @ 1056": (5.3e6, 564e6, 74.0), "5 @ 1536": (10.9e6, 2.35e9, 78.6),
                  "7 @ 1920": (22.6e6, 4.93e9, 80.8), "6 @ 4032": (88.9e6, 23.8e9, 82.7)}


def test_zoo_plot(cli, tmp_path):
    """`nasnet zoo --plot` writes a PNG, and the zoo figure's points agree with numbers it does not
    compute: hollow points at the paper's counts (written out above), filled points at the counts the
    zoo table reports, each filled point's colour found in the rendered image where a log x-axis,
    mapped by hand, puts it."""
    import json

    import numpy as np

    from nasnet.report.plots import zoo_figure

    out = tmp_path / "zoo.png"
    res = cli("zoo", "--plot", str(out), "--json")
    assert res.returncode == 0, res.stderr
    with Image.open(out) as im:
        im.verify()
    rows = [r for r in json.loads(res.stdout) if r["paper_top1"] is not None]
    assert sorted(r["n_at_f"] for r in rows) == sorted(PAPER_IMAGENET)
    fig = zoo_figure(rows)
    fig.set_dpi(100)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    height = image.shape[0]
    for ax, (ours_key, paper_index) in zip(fig.axes[:2], (("mult_adds", 1), ("params", 0))):
        hollow, filled = set(), []
        for c in ax.collections:
            for x, y in c.get_offsets():
                if len(c.get_facecolors()) == 0 or c.get_facecolors()[0][3] == 0:
                    hollow.add((round(x, 6), y))
                else:
                    filled.append((x, y, c.get_facecolors()[0][:3]))
        # catches: the paper's and this implementation's counts swapped, the wrong panel's counts, units
        assert hollow == {(round(v[paper_index] / 1e6, 6), v[2]) for v in PAPER_IMAGENET.values()}
        assert sorted((round(x, 6), y) for x, y, _ in filled) == sorted(
            (round(r[ours_key] / 1e6, 6), r["paper_top1"]) for r in rows)
        assert ax.get_xscale() == "log"
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        box = ax.get_window_extent()
        for x, y, colour in filled:
            # catches: points drawn on a linear axis or misplaced; where log10 puts them, by hand
            px = box.x0 + (np.log10(x) - np.log10(x0)) / (np.log10(x1) - np.log10(x0)) * box.width
            py = box.y0 + (y - y0) / (y1 - y0) * box.height
            pixel = image[int(round(height - py)), int(round(px))]
            assert np.abs(pixel - np.asarray(colour) * 255).max() <= 12, (x, y, pixel, colour)
