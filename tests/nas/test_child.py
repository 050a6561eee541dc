"""Decoding rules of Zoph & Le for child networks, and child training."""
import pytest
import torch

from learnt.errors import ConfigError
from learnt.nas import Architecture, ChildConfig, ChildJob, ChildNet, Layer, train_child
from learnt.nas.child import concat_padded


def test_a_layer_without_input_takes_the_image_and_inputs_concatenate_in_depth():
    arch = Architecture((Layer(3, 3, 4), Layer(5, 1, 6), Layer(1, 1, 8, inputs=(0, 1)), Layer(3, 3, 2, inputs=(2,))))
    net = ChildNet(arch, (1, 8, 8), 10)
    assert [c.in_channels for c in net.convs] == [1, 1, 10, 8]
    assert [c.kernel_size for c in net.convs] == [(3, 3), (5, 1), (1, 1), (3, 3)]
    assert arch.outputs == (3,) and net.features == 2
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_unconnected_outputs_are_concatenated_into_the_final_layer():
    arch = Architecture((Layer(3, 3, 4), Layer(3, 3, 6, inputs=(0,)), Layer(1, 1, 5)))
    assert arch.outputs == (1, 2)
    assert ChildNet(arch, (1, 8, 8), 10).features == 11
    assert ChildNet(arch, (1, 8, 8), 10, head="flatten").features == 11 * 64


def test_mismatched_sizes_are_zero_padded():
    a, b = torch.ones(2, 3, 8, 8), torch.full((2, 2, 4, 4), 2.0)
    c = concat_padded([a, b])
    assert c.shape == (2, 5, 8, 8)
    assert torch.equal(c[:, 3:, :4, :4], b) and c[:, 3:, 4:].abs().sum() == 0 and c[:, 3:, :, 4:].abs().sum() == 0
    arch = Architecture((Layer(3, 3, 4, stride=2), Layer(3, 3, 4), Layer(1, 1, 3, inputs=(0, 1))))
    net = ChildNet(arch, (1, 8, 8), 10, head="flatten")
    assert net.convs[2].in_channels == 8 and net.features == 3 * 8 * 8
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_child_training_is_deterministic_and_learns():
    arch = Architecture((Layer(5, 5, 16), Layer(5, 5, 16, inputs=(0,)), Layer(5, 5, 16, inputs=(1,))))
    job = ChildJob(arch, seed=4, config=ChildConfig(epochs=2, batch_size=32), splits=("val", "test"))
    before = torch.random.get_rng_state()
    r1 = train_child(job)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched
    r2 = train_child(job)
    assert r1["acc"] == r2["acc"] and r1["final_loss"] == r2["final_loss"]
    assert r1["acc"]["val"] > 0.8 and r1["acc"]["test"] > 0.8  # chance is 0.1
    assert r1["params"] == sum(p.numel() for p in ChildNet(arch, (1, 8, 8), 10).parameters())
    other = train_child(ChildJob(arch, seed=5, config=ChildConfig(epochs=2, batch_size=32)))
    assert other["final_loss"] != r1["final_loss"]


def test_child_config_and_size_limits():
    with pytest.raises(ConfigError, match="epochs=0"):
        ChildConfig(epochs=0)
    with pytest.raises(ConfigError, match="head 'max'"):
        ChildConfig(head="max")
    with pytest.raises(ConfigError, match="head 'max'"):
        ChildNet(Architecture((Layer(1, 1, 4),)), (1, 8, 8), 10, head="max")
    with pytest.raises(ValueError, match="max_params=10"):
        train_child(ChildJob(Architecture((Layer(3, 3, 4),)), 0, ChildConfig(max_params=10)))
