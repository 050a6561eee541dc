"""Gymnasium environments ``learnt/ParticleReach-v0`` and ``learnt/BlockStack-v0``.

Both follow the gymnasium API (``reset(seed=...)``, ``Box`` spaces, ``truncated`` at the
horizon) and pass ``gymnasium.utils.env_checker.check_env``. The hidden task (target colour
or tower layout) is a constructor argument; ``info`` reports ``success``.

Example:
    >>> import gymnasium as gym, learnt.imitation
    >>> env = gym.make("learnt/BlockStack-v0", layout="ab c")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (11,)
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from learnt.imitation import particle as P
from learnt.imitation.blockworld import (BlockWorld, check_action, check_block_count, default_horizon, parse_layout,
                                         sample_scene)


class ParticleReachEnv(gym.Env):
    """Reach the landmark of colour ``target`` among ``n_landmarks`` (2 to 10).

    Observation ``(34,)`` float32 (see :mod:`learnt.imitation.particle`), action ``(2,)``
    force in [-1, 1]. Reward: minus the distance to the target. ``target=None`` draws a
    colour at every reset (``info["target"]`` names it).
    """

    metadata = {"render_modes": []}

    def __init__(self, n_landmarks: int = 5, target: int | None = 0, horizon: int = P.HORIZON) -> None:
        self.n_landmarks = P.check_landmarks(n_landmarks)
        self.fixed_target = None if target is None else P.check_colour(target)
        if horizon < 1:
            raise ValueError(f"horizon={horizon}: expected >= 1")
        self.horizon = int(horizon)
        self.observation_space = spaces.Box(-10.0, 10.0, (P.OBS_DIM,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (P.ACT_DIM,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self.target = self.fixed_target if self.fixed_target is not None else int(rng.integers(P.N_COLOURS))
        lm, present, start = P.sample_configs(rng, np.array([self.n_landmarks]), np.array([self.target]))
        self.lm, self.present, self.pos, self.vel = lm, present, start, np.zeros((1, 2))
        self.t = 0
        return self._obs(), self._info()

    def _obs(self) -> np.ndarray:
        return np.clip(P.observe(self.pos, self.vel, self.lm, self.present)[0], -10, 10)

    def _info(self) -> dict:
        tgt = self.lm[:, self.target]
        return {"target": self.target, "success": bool(P.success(self.pos, tgt)[0]),
                "distance": float(np.linalg.norm(self.pos - tgt))}

    def step(self, action):
        a = check_action(action, P.ACT_DIM)
        self.pos, self.vel = P.step(self.pos, self.vel, a[None])
        self.t += 1
        info = self._info()
        return self._obs(), -info["distance"], False, self.t >= self.horizon, info


class BlockStackEnv(gym.Env):
    """Stack blocks into ``layout`` (e.g. ``"ab cd ef"``, towers listed bottom-up).

    Observation ``(3B + 2,)`` float32: block centres relative to the gripper (in block
    edges), then (gripper closed, holding a block). Action ``(4,)`` in [-1, 1]: gripper
    motion (one block edge per step at most) and grip (> 0 closes). Reward 1 on a step that
    ends with the layout standing, else 0.
    """

    metadata = {"render_modes": []}

    def __init__(self, layout: str = "ab", horizon: int | None = None) -> None:
        self.towers = parse_layout(layout)
        self.layout = layout
        self.n_blocks = check_block_count(sum(len(t) for t in self.towers))
        self.horizon = default_horizon(layout) if horizon is None else int(horizon)
        if self.horizon < 1:
            raise ValueError(f"horizon={horizon}: expected >= 1")
        self.observation_space = spaces.Box(-30.0, 30.0, (3 * self.n_blocks + 2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.world = BlockWorld(*sample_scene(self.np_random, self.n_blocks))
        self.t = 0
        return self.world.observation(), {"success": False}

    def step(self, action):
        a = check_action(action, 4)
        self.world.step(a)
        self.t += 1
        ok = self.world.success(self.towers)
        return self.world.observation(), float(ok), False, self.t >= self.horizon, {"success": ok}
