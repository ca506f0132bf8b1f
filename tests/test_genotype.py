"""Genotype value semantics, text/JSON forms and error messages."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasnet import NASNET_A, OPS, Block, Cell, Genotype, NasnetError
from nasnet.arch.space import NASNET_SPACES, SPACES

# docs/nasnet-a.md (TF-Slim's release), written out independently of the package's own constant.
RELEASED_NORMAL = [
    (0, "sep_conv_5x5", 1, "sep_conv_3x3", "add"),
    (1, "sep_conv_5x5", 1, "sep_conv_3x3", "add"),
    (0, "avg_pool_3x3", 1, "identity", "add"),
    (1, "avg_pool_3x3", 1, "avg_pool_3x3", "add"),
    (0, "sep_conv_3x3", 0, "identity", "add"),
]
RELEASED_REDUCE = [
    (0, "sep_conv_5x5", 1, "sep_conv_7x7", "add"),
    (0, "max_pool_3x3", 1, "sep_conv_7x7", "add"),
    (0, "avg_pool_3x3", 1, "sep_conv_5x5", "add"),
    (3, "identity", 2, "avg_pool_3x3", "add"),
    (2, "sep_conv_3x3", 0, "max_pool_3x3", "add"),
]


def test_nasnet_a_is_spec_section_2():
    assert [tuple(vars(b).values()) for b in NASNET_A.normal.blocks] == RELEASED_NORMAL
    assert [tuple(vars(b).values()) for b in NASNET_A.reduce.blocks] == RELEASED_REDUCE
    assert NASNET_A.normal.concat == (1, 2, 3, 4, 5, 6)
    assert NASNET_A.reduce.concat == (3, 4, 5, 6)
    # The released concat sets are not the loose-ends rule (docs/nasnet-a.md).
    assert NASNET_A.normal.loose_ends() != NASNET_A.normal.concat
    assert NASNET_A.reduce.loose_ends() == (4, 5, 6)
    assert NASNET_A.normal.output_multiple() == 6


def test_thirteen_ops():
    assert len(OPS) == 13 and len(set(OPS)) == 13


def test_value_semantics():
    again = Genotype.parse(str(NASNET_A))
    assert again == NASNET_A and hash(again) == hash(NASNET_A)
    assert len({NASNET_A, again}) == 1
    with pytest.raises(AttributeError):
        NASNET_A.normal = NASNET_A.reduce  # frozen
    assert isinstance(NASNET_A.normal.blocks, tuple)


def test_round_trips_nasnet_a():
    assert Genotype.parse(str(NASNET_A)) == NASNET_A
    assert Genotype.from_json(NASNET_A.to_json()) == NASNET_A
    assert Genotype.load(NASNET_A.to_json()) == NASNET_A
    assert Genotype.load("nasnet-a") is NASNET_A
    assert eval(repr(NASNET_A), {"Genotype": Genotype}) == NASNET_A  # repr is the parse call


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), space=st.sampled_from(sorted(NASNET_SPACES)))
def test_round_trip_random(seed, space):
    g = SPACES[space].sample(seed)
    assert Genotype.parse(str(g)) == g
    assert Genotype.from_dict(json.loads(g.to_json())) == g


def test_text_is_whitespace_tolerant():
    text = str(NASNET_A).replace(" ", "   ").replace("|", "\n|\n")
    assert Genotype.parse(text) == NASNET_A


def test_load_from_files(tmp_path):
    (tmp_path / "g.txt").write_text(str(NASNET_A) + "\n")
    (tmp_path / "g.json").write_text(NASNET_A.to_json())
    (tmp_path / "best.json").write_text(json.dumps({"genotype": str(NASNET_A), "reward": 0.9}))
    (tmp_path / "best2.json").write_text(json.dumps({"genotype": NASNET_A.to_dict()}))
    for name in ("g.txt", "g.json", "best.json", "best2.json"):
        assert Genotype.load(tmp_path / name) == NASNET_A


GOOD = str(NASNET_A)


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("0 sep_conv_5x5 1 sep_conv_3x3 add", "0 sep_conv_9x9 1 sep_conv_3x3 add", 1),
     "normal cell, block 0, op 1: unknown op 'sep_conv_9x9'"),
    (GOOD.replace("0 avg_pool_3x3 1 identity add", "0 avg_pool_3x3 5 identity add", 1),
     "normal cell, block 2, input 2: state 5 is not defined yet (block 2 can use states 0..3)"),
    (GOOD.replace("2 sep_conv_3x3 0 max_pool_3x3 add", "2 sep_conv_3x3 0 max_pool_3x3 mul", 1),
     "reduce cell, block 4, combiner: unknown combiner 'mul'"),
    (GOOD.replace("concat 3 4 5 6", "concat 3 4 5 9"),
     "reduce cell, concat: state 9 does not exist (this cell has states 0..6)"),
    (GOOD.replace("1 sep_conv_5x5 1 sep_conv_3x3 add", "1 sep_conv_5x5 1 sep_conv_3x3", 1),
     "normal cell, block 1: expected 5 fields"),
    (GOOD.replace("3 identity 2", "x identity 2"), "reduce cell, block 3, input 1: 'x' is not a state number"),
    (GOOD.replace("concat 1 2 3 4 5 6", "concat 1 2 2"), "normal cell, concat: a state is listed twice"),
    ("normal[] reduce[]", "normal cell"),
    ("hello", "is not a known name"),
    ("normal[0 identity 1 identity add ; concat 2]", "expected 'normal["),
])
def test_parse_errors_name_cell_block_field(text, expected):
    with pytest.raises(NasnetError) as err:
        Genotype.load(text)
    msg = str(err.value)
    assert expected in msg
    assert "\n" not in msg


def test_cell_validation_direct():
    with pytest.raises(NasnetError, match="block 0, input 1: state 2 is not defined yet"):
        Cell((Block(2, "identity", 0, "identity"),), (2,))
    with pytest.raises(NasnetError, match="split"):
        Cell((Block(0, "identity", 1, "identity"),), (2,), num_inputs=2, output="split")


def test_four_input_cells_round_trip():
    g = SPACES["nasnet-b"].sample(random.Random(3))
    assert g.normal.num_inputs == 4 and g.normal.output == "split"
    assert str(g).startswith("normal[inputs 4 ;")
    assert Genotype.parse(str(g)) == g
