"""The walk every foreign layout shares (nasnet.weights.layout): each weighted module of a network is
visited once and every state-dict key belongs to exactly one of its layers, for NASNet-A and for
genotypes with projections, pool projections and output reductions; a part no layout names fails in
one line. The layouts' names themselves are checked against files TensorFlow and Keras wrote
(test_weights_tf_slim.py, test_weights_keras.py) and the PyTorch ports (test_pretrained.py)."""

from dataclasses import replace

import pytest
import torch

from nasnet import NasnetError
from nasnet.arch.genotype import NASNET_A, Genotype
from nasnet.model.network import NASNet
from nasnet.weights.keras_h5 import KERAS
from nasnet.weights.layout import Role, cell_places, weighted_parts
from nasnet.weights.reference import REFERENCE
from nasnet.weights.tf_slim import TF_SLIM
from nasnet.zoo import model_config


def _with_reduce(**changes) -> Genotype:
    return Genotype(NASNET_A.normal, replace(NASNET_A.reduce, **changes))


def _model(genotype=NASNET_A, **overrides) -> NASNet:
    with torch.device("meta"):
        return NASNet(model_config("nasnet_a_mobile", genotype=genotype, **overrides))


# The reduction cell also concatenates its inputs (output reductions) and has an identity that strides
# (a projection): every role of the walk but "other" occurs.
WIDE = _with_reduce(concat=(0, 1, 3, 4, 5, 6),
                    blocks=(*NASNET_A.reduce.blocks[:3], replace(NASNET_A.reduce.blocks[3], input1=0),
                            NASNET_A.reduce.blocks[4]))


@pytest.mark.parametrize("genotype,aux", [(NASNET_A, False), (NASNET_A, True), (WIDE, True)])
def test_every_key_belongs_to_exactly_one_layer_of_one_part(genotype, aux):
    model = _model(genotype, aux_head=aux)
    layers = [f"{part.path}.{layer}" if layer else part.path for part in weighted_parts(model) for layer in part.layers]
    assert len(set(layers)) == len(layers)
    assert {key.rpartition(".")[0] for key in model.state_dict()} == set(layers)


def test_roles_and_places():
    model = _model(WIDE, aux_head=True)
    roles = {part.role for part in weighted_parts(model)}
    assert roles == set(Role) - {Role.OTHER}
    places = cell_places(model.config)              # Mobile: 2 stem cells, 3 stages of 4, 2 reductions
    assert [p.kind for p in places[:3]] == ["stem", "stem", "normal"] and places[6].kind == "reduce"
    assert (places[7].stage, places[7].position, places[7].number, places[7].normals_before) == (1, 0, 4, 4)
    aux = [part for part in weighted_parts(model) if part.role is Role.AUX_HEAD][0]
    assert aux.cell.index == model.aux_index


def test_tables_are_one_to_one_and_cover_the_model():
    model = _model(WIDE, aux_head=True)
    table = TF_SLIM.table(model)
    assert len({s.name for s in table.values()}) == len(table)
    assert set(table) == {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert any("/cell_output/reduction_0/" in s.name for s in table.values())
    assert table["cells.0.ops.6.conv.weight"].name == "cell_stem_0/comb_iter_3/left/1x1/weights"
    plain = _model(aux_head=False)
    assert set(REFERENCE.table(plain)) == set(plain.state_dict())          # counters named too
    assert set(KERAS.table(plain)) == set(TF_SLIM.table(plain))


def test_a_part_without_a_name_is_one_line():
    conv_op = Genotype(NASNET_A.normal, replace(NASNET_A.reduce, blocks=(
        replace(NASNET_A.reduce.blocks[0], op1="conv_3x3"), *NASNET_A.reduce.blocks[1:])))
    with pytest.raises(NasnetError) as e:
        TF_SLIM.table(_model(conv_op))
    assert str(e.value) == "cell 0 op 0: a ReLUConvBN has no counterpart in TF-Slim's NASNet layout"
    with pytest.raises(NasnetError, match="does not fit this model: its genotype is not NASNet-A"):
        KERAS.table(_model(WIDE))
    with pytest.raises(NasnetError, match="no auxiliary head"):
        REFERENCE.table(_model(aux_head=True))
