"""Cell diagrams (`nasnet show --out`) and the zoo plot (`nasnet zoo --plot`) (issue 6, items 1 and 4)."""

import random
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from PIL import Image

from nasnet import NASNET_A, Genotype
from nasnet.arch.space import SPACES
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


def _check_png(path, g: Genotype):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 300
        description = im.text["Description"]
    assert Genotype.parse(description) == g
    for op in op_labels(g):
        assert op in description


def test_nasnet_a_svg_and_png(tmp_path):
    _check_svg(draw_genotype(NASNET_A, tmp_path / "a.svg"), NASNET_A)
    _check_png(draw_genotype(NASNET_A, tmp_path / "a.png"), NASNET_A)


@pytest.mark.parametrize("space", sorted(SPACES))
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


def test_zoo_plot(cli, tmp_path):
    out = tmp_path / "zoo.png"
    res = cli("zoo", "--plot", str(out))
    assert res.returncode == 0, res.stderr
    with Image.open(out) as im:
        im.verify()
    assert "nasnet_a_mobile" in res.stdout  # the table is still printed
