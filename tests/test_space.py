"""The search space: vocabularies, size, encode/decode, sampling."""

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasnet import NASNET_A, NasnetError, SearchSpace
from nasnet.arch.space import SPACES, get_space


def test_decision_vocabularies():
    space = SearchSpace()
    sizes = space.decision_sizes()
    assert len(sizes) == 2 * 5 * 5 == space.num_decisions
    # inputs at block b choose among 2 + b states; ops 13; combiners 2
    for cell in range(2):
        for b in range(5):
            assert sizes[cell * 25 + 5 * b: cell * 25 + 5 * b + 5] == [2 + b, 2 + b, 13, 13, 2]


def test_size_is_product_formula():
    per_cell = 1
    for b in range(5):
        per_cell *= (2 + b) ** 2 * 13**2 * 2
    assert SearchSpace().size() == per_cell**2
    c = get_space("nasnet-c")     # B = 4 (Figure 9), two inputs, four combiners, loose ends concatenated
    assert (c.num_blocks, c.num_inputs, c.output) == (4, 2, "concat")
    per_cell = 1
    for b in range(4):
        per_cell *= (2 + b) ** 2 * 13**2 * 4
    assert c.size() == per_cell**2
    b_space = get_space("nasnet-b")
    per_cell = 1
    for b in range(4):
        per_cell *= (4 + b) ** 2 * 13**2 * 4
    assert b_space.size() == per_cell**2


def test_size_by_enumeration_on_a_small_space():
    space = SearchSpace(num_blocks=2, ops=("identity",), combiners=("add", "concat"))
    all_decisions = list(itertools.product(*[range(n) for n in space.decision_sizes()]))
    assert len(all_decisions) == space.size()
    # every decision sequence decodes, and distinct sequences give distinct genotypes
    genotypes = {space.decode(list(d)) for d in all_decisions}
    assert len(genotypes) == space.size()


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(sorted(SPACES)))
def test_decode_encode_round_trip(seed, name):
    space = SPACES[name]
    g = space.sample(seed)
    assert space.decode(space.encode(g)) == g
    assert space.contains(g)
    decisions = space.sample_decisions(seed)
    assert space.encode(space.decode(decisions)) == decisions


def test_sampling_is_seeded_and_uniform_enough():
    space = SearchSpace()
    assert space.sample(7) == space.sample(7)
    assert space.sample(7) != space.sample(8)
    rng = random.Random(0)
    ops = Counter(op for _ in range(400) for _, cell in space.sample(rng).cells for blk in cell.blocks
                  for op in blk.ops)
    assert set(ops) == set(space.ops)
    # 400 * 2 cells * 5 blocks * 2 ops = 8000 draws over 13 ops: each near 615
    assert min(ops.values()) > 480 and max(ops.values()) < 760


def test_loose_ends_rule_for_sampled_cells():
    space = SearchSpace()
    for seed in range(50):
        g = space.sample(seed)
        for _, cell in g.cells:
            used = {i for blk in cell.blocks for i in blk.inputs}
            assert cell.concat == tuple(s for s in range(2, 7) if s not in used)
            assert 6 in cell.concat  # the last block is never consumed


def test_nasnet_a_encodes_but_concat_is_not_encoded():
    space = SearchSpace()
    decisions = space.encode(NASNET_A)
    assert decisions[:5] == [0, 1, space.ops.index("sep_conv_5x5"), space.ops.index("sep_conv_3x3"), 0]
    back = space.decode(decisions)
    assert back.normal.blocks == NASNET_A.normal.blocks
    assert back.normal.concat == NASNET_A.normal.loose_ends()
    assert not space.contains(NASNET_A)


def test_configurable_space_and_errors():
    space = SearchSpace(num_blocks=3, ops=("identity", "sep_conv_3x3"), combiners=("add",))
    assert space.decision_sizes()[:5] == [2, 2, 2, 2, 1]
    with pytest.raises(NasnetError, match="unknown op"):
        SearchSpace(ops=("identity", "warp_drive"))
    with pytest.raises(NasnetError, match="expected 30 decisions"):
        space.decode([0] * 29)
    with pytest.raises(NasnetError, match="normal cell, block 0, input1: index 2 out of range"):
        space.decode([2] + [0] * 29)
    with pytest.raises(NasnetError, match="not in this space"):
        space.encode(SearchSpace(num_blocks=3).sample(1))
    with pytest.raises(NasnetError, match="unknown search space"):
        get_space("nasnet-z")
