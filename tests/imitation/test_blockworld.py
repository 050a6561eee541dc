"""Block-world physics, the scripted expert and the benchmark task split."""
import numpy as np
import pytest

from learnt.imitation.block_expert import benchmark_tasks, expert_action
from learnt.imitation.blockworld import (PLACE_TOL, BlockWorld, default_horizon, layout_stages, pad_observation,
                                         parse_layout, sample_scene)

GRAB, DROP = 1.0, -1.0


def _world():
    return BlockWorld(np.array([[0.0, 0.0, 0.5], [3.0, 0.0, 0.5]]), np.array([0.0, 0.0, 0.5]))


def _move(w, d, grip):
    w.step(np.array([*d, grip]))


def test_grasp_carry_and_place_within_tolerance():
    w = _world()
    _move(w, (0, 0, 0), GRAB)
    assert w.held == 0 and w.closed
    _move(w, (0, 0, 1), GRAB)
    _move(w, (0, 0, 1), GRAB)           # block 0 now at z = 2.5
    for _ in range(3):
        _move(w, (1, 0, 0), GRAB)
    _move(w, (0.3, 0, -1), GRAB)         # 0.3 off-centre, within PLACE_TOL
    assert np.allclose(w.pos[0], [3.3, 0, 1.5])
    _move(w, (0, 0, 0), DROP)
    assert w.held == -1 and w.support(0) == 1 and w.success([[1, 0]])
    assert not w.success([[0, 1]])


def test_off_tolerance_release_topples_to_the_table():
    w = _world()
    _move(w, (0, 0, 0), GRAB)
    _move(w, (0, 0, 1), GRAB)
    _move(w, (0, 0, 1), GRAB)
    for _ in range(2):
        _move(w, (1, 0, 0), GRAB)
    _move(w, (0.3, 0, 0), GRAB)          # 0.7 off-centre over block 1
    assert abs(w.pos[0, 0] - 3.0) > PLACE_TOL
    _move(w, (0, 0, 0), DROP)
    assert w.pos[0, 2] == pytest.approx(0.5) and w.support(0) == -1
    assert abs(w.pos[0, 0] - 3.0) >= 1.0  # fell beside block 1, not into it


def test_a_carried_block_does_not_pass_through_another():
    w = _world()
    _move(w, (0, 0, 0), GRAB)
    for _ in range(4):
        _move(w, (1, 0, 0), GRAB)        # slides along the table towards block 1
    assert w.pos[0, 0] <= 2.0 + 1e-9
    _move(w, (0, 0, 1), GRAB)
    _move(w, (1, 0, -1), GRAB)           # over block 1 and down: rests on top of it
    assert w.pos[0, 2] >= 1.5 - 1e-9


def test_only_a_clear_block_can_be_grasped():
    w = BlockWorld(np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.5]]), np.array([0.0, 0.0, 0.5]))
    _move(w, (0, 0, 0), GRAB)
    assert w.held == -1


@pytest.mark.parametrize("layout", ["ab", "ba c", "abc de", "dacb", "ab cd ef", "abcdefghij"])
def test_expert_solves_layouts_without_noise(layout):
    towers = parse_layout(layout)
    rng = np.random.default_rng(0)
    w = BlockWorld(*sample_scene(rng, sum(map(len, towers))))
    for _ in range(default_horizon(layout)):
        w.step(expert_action(w, towers))
    assert w.success(towers)


def test_expert_recovers_from_a_wrong_stack():
    # c sits on a, but the layout wants a on b and c alone
    w = BlockWorld(np.array([[0.0, 0.0, 0.5], [3.0, 3.0, 0.5], [0.0, 0.0, 1.5]]), np.array([-2.0, -2.0, 3.0]))
    towers = parse_layout("ab c")
    for _ in range(80):
        w.step(expert_action(w, towers))
    assert w.success(towers)


def test_benchmark_split():
    train, test = benchmark_tasks()
    assert len(train) == 140 and len(test) == 43
    assert len(set(train) | set(test)) == 183
    stages = {layout_stages(l) for l in test}
    assert {2, 4, 5, 6, 7, 8} <= stages
    assert benchmark_tasks() == (train, test)  # a fixed property of the benchmark


def test_pad_observation():
    obs = np.arange(3 * 3 + 2, dtype=np.float32)
    pad, mask = pad_observation(obs, 3)
    assert pad.shape == (32,) and list(mask) == [True] * 3 + [False] * 7
    assert np.array_equal(pad[:9], obs[:9]) and np.array_equal(pad[-2:], obs[-2:]) and not pad[9:30].any()
    with pytest.raises(ValueError, match="expected 3\\*4\\+2"):
        pad_observation(obs, 4)
