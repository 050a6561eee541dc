"""The two gymnasium environments: API conformance, vector envs, clear errors."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import learnt.imitation  # noqa: F401  (registers the ids)
from learnt.imitation import BlockStackEnv, ParticleReachEnv


@pytest.mark.parametrize("env_id,kwargs", [("learnt/ParticleReach-v0", {"n_landmarks": 10, "target": 3}),
                                           ("learnt/BlockStack-v0", {"layout": "ab cd"})])
def test_check_env_and_vector_env(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    vec = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync", **kwargs)
    obs, _ = vec.reset(seed=1)
    assert obs.shape == (3,) + env.observation_space.shape
    obs2, reward, term, trunc, info = vec.step(vec.action_space.sample())
    assert obs2.shape == obs.shape and reward.shape == (3,) and not term.any()
    assert not np.array_equal(obs[0], obs[1])  # the sub-environments draw different scenes
    vec.close()


def test_reset_is_deterministic_and_the_episode_truncates():
    env = ParticleReachEnv(n_landmarks=4, target=None, horizon=5)
    a, ia = env.reset(seed=7)
    b, ib = env.reset(seed=7)
    assert np.array_equal(a, b) and ia["target"] == ib["target"]
    for t in range(5):
        _, _, term, trunc, _ = env.step(np.zeros(2))
        assert not term and trunc == (t == 4)


def test_block_observation_layout():
    env = BlockStackEnv("abc d")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3 * 4 + 2,) and obs.dtype == np.float32
    w = env.unwrapped.world
    assert np.allclose(obs[:12].reshape(4, 3), w.pos - w.gripper, atol=1e-5)
    assert list(obs[-2:]) == [0.0, 0.0]  # open, holding nothing


def test_particle_target_is_not_observed():
    envs = [ParticleReachEnv(n_landmarks=10, target=0) for _ in range(2)]
    for e in envs:
        e.reset(seed=3)
    envs[1].target = 5                      # same scene, another hidden target
    steps = [e.step(np.array([0.5, -0.2])) for e in envs]
    assert np.array_equal(steps[0][0], steps[1][0])          # identical observations ...
    assert steps[0][4]["distance"] != steps[1][4]["distance"]  # ... different tasks


@pytest.mark.parametrize("bad", [np.array([2.0, 0.0, 0.0, 0.0]), np.zeros(3), np.array([np.nan, 0, 0, 0])])
def test_invalid_block_action_is_a_clear_error(bad):
    env = BlockStackEnv("ab")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


def test_invalid_particle_action_is_a_clear_error():
    env = ParticleReachEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected every entry in \[-1, 1\]"):
        env.step(np.array([0.0, 1.5]))


@pytest.mark.parametrize("layout,msg", [("a", "uses 1 blocks; expected 2 to 10"), ("abcdefghijk", "expected 2 to 10"),
                                        ("ab ac", "exactly once"), ("ac", "exactly once"), ("", "expected towers")])
def test_bad_layouts_and_block_counts(layout, msg):
    with pytest.raises(ValueError, match=msg):
        BlockStackEnv(layout)


@pytest.mark.parametrize("k", [1, 11, 0])
def test_landmark_count_out_of_range(k):
    with pytest.raises(ValueError, match=r"n_landmarks=.*expected an integer from 2 to 10"):
        gym.make("learnt/ParticleReach-v0", n_landmarks=k)
