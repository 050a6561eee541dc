"""Search space as data: token layout, decoding, encoding and their errors."""
import pytest

from learnt.errors import ConfigError
from learnt.nas import Architecture, Layer, SearchSpace, decode_tokens, encode_architecture


def test_layout_is_layer_by_layer_with_one_skip_token_per_earlier_layer():
    s = SearchSpace()
    assert s.conv_kinds == ("fh", "fw", "nf")
    assert s.layout(3) == [("fh", 0, -1), ("fw", 0, -1), ("nf", 0, -1),
                           ("fh", 1, -1), ("fw", 1, -1), ("nf", 1, -1), ("skip", 1, 0),
                           ("fh", 2, -1), ("fw", 2, -1), ("nf", 2, -1), ("skip", 2, 0), ("skip", 2, 1)]
    assert [s.num_tokens(L) for L in (1, 2, 6)] == [3, 7, 33]
    strided = SearchSpace(strides=(1, 2))
    assert strided.conv_kinds == ("fh", "fw", "nf", "stride") and strided.num_tokens(2) == 9
    assert s.size(2) == 64 ** 2 * 2


def test_decode_and_encode_are_inverse():
    s = SearchSpace(strides=(1, 2))
    tokens = [1, 0, 3, 1,  2, 3, 0, 0, 0,  0, 1, 1, 0, 1, 1]
    arch = decode_tokens(s, tokens)
    assert arch.layers == (Layer(3, 1, 16, 2, ()), Layer(5, 7, 4, 1, ()), Layer(1, 3, 8, 1, (0, 1)))
    assert arch.outputs == (2,)
    assert encode_architecture(s, arch) == tokens
    assert "L2: conv 1x3, 8 filters, stride 1 <- L0, L1" in arch.describe()
    assert Architecture.from_dict(arch.to_dict()) == arch


def test_unconsumed_layers_are_outputs():
    arch = Architecture((Layer(3, 3, 4), Layer(3, 3, 4, inputs=(0,)), Layer(1, 1, 4), Layer(5, 5, 8, inputs=(2,))))
    assert arch.outputs == (1, 3)


@pytest.mark.parametrize("tokens, match", [([0, 0], "match no depth"), ([0, 0, 4], "nf token 4"),
                                           ([0, 0, 0, 0, 0, 0, 2], "skip tokens")])
def test_bad_tokens_are_named(tokens, match):
    with pytest.raises(ValueError, match=match):
        decode_tokens(SearchSpace(), tokens)


def test_bad_spaces_and_architectures_are_refused():
    with pytest.raises(ConfigError, match="filter_heights"):
        SearchSpace(filter_heights=(2, 3))
    with pytest.raises(ConfigError, match="num_filters"):
        SearchSpace(num_filters=())
    with pytest.raises(ValueError, match="layer 1 inputs"):
        Architecture((Layer(3, 3, 4), Layer(3, 3, 4, inputs=(1,))))
    with pytest.raises(ValueError, match="not in the search space"):
        encode_architecture(SearchSpace(), Architecture((Layer(9, 3, 4),)))
    with pytest.raises(ValueError, match="num_layers=7"):
        SearchSpace().layout(7)
