"""Particle reaching (Duan et al. 2017): a 2-D point mass must reach the landmark a demo shows.

There are 10 landmark colours; a configuration places ``K`` (2 to 10) of them, always
including the target colour, at random in [-0.9, 0.9]^2 at least 0.35 apart. The agent is
a point mass under force control: ``v <- (1 - DAMPING) v + DT a``, ``p <- p + DT v`` with
``a`` in [-1, 1]^2. The observation has a fixed size, ``4 + 3 * 10 = 34``: agent position
and velocity, then for every colour slot the landmark's position relative to the agent and
a presence flag (absent colours are zeros). The target colour is *not* observed. Success:
within ``RADIUS`` of the target at the end of the horizon.

All functions are batched over a leading ``N`` axis (numpy) so demos and evaluation
rollouts run many episodes at once.
"""
from __future__ import annotations

import numpy as np

N_COLOURS = 10
MIN_LANDMARKS, MAX_LANDMARKS = 2, N_COLOURS
OBS_DIM = 4 + 3 * N_COLOURS
ACT_DIM = 2
DT, DAMPING = 0.2, 0.3
RADIUS = 0.1
HORIZON = 30


def check_landmarks(k: int) -> int:
    """Validate a landmark count (2 to 10)."""
    if not isinstance(k, (int, np.integer)) or not MIN_LANDMARKS <= int(k) <= MAX_LANDMARKS:
        raise ValueError(f"n_landmarks={k!r}: expected an integer from {MIN_LANDMARKS} to {MAX_LANDMARKS}")
    return int(k)


def check_colour(c: int) -> int:
    """Validate a target colour (0 to 9)."""
    if not isinstance(c, (int, np.integer)) or not 0 <= int(c) < N_COLOURS:
        raise ValueError(f"target colour {c!r}: expected an integer from 0 to {N_COLOURS - 1}")
    return int(c)


def sample_configs(rng: np.random.Generator, n_landmarks: np.ndarray, targets: np.ndarray):
    """``N`` configurations: landmarks ``(N, 10, 2)``, present ``(N, 10)`` bool, agent start ``(N, 2)``.

    ``n_landmarks (N,)`` and ``targets (N,)``: each configuration includes its target colour.
    """
    n = len(targets)
    lm = np.zeros((n, N_COLOURS, 2))
    present = np.zeros((n, N_COLOURS), dtype=bool)
    for i in range(n):
        k, c = check_landmarks(int(n_landmarks[i])), check_colour(int(targets[i]))
        others = rng.permutation([j for j in range(N_COLOURS) if j != c])[: k - 1]
        cols = [c, *others]
        pts: list[np.ndarray] = []
        while len(pts) < k:
            p = rng.uniform(-0.9, 0.9, 2)
            if all(np.linalg.norm(p - q) >= 0.35 for q in pts):
                pts.append(p)
        lm[i, cols] = np.array(pts)
        present[i, cols] = True
    start = rng.uniform(-1.0, 1.0, (n, 2))
    return lm, present, start


def observe(pos: np.ndarray, vel: np.ndarray, lm: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Observations ``(N, 34)`` from positions/velocities ``(N, 2)``, landmarks ``(N, 10, 2)``, present ``(N, 10)``."""
    rel = (lm - pos[:, None, :]) * present[..., None]
    slots = np.concatenate([rel, present[..., None].astype(np.float64)], axis=-1).reshape(len(pos), -1)
    return np.concatenate([pos, vel, slots], axis=1).astype(np.float32)


def step(pos: np.ndarray, vel: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point-mass dynamics for actions ``(N, 2)`` clipped to [-1, 1]."""
    a = np.clip(action, -1.0, 1.0)
    vel = (1.0 - DAMPING) * vel + DT * a
    return pos + DT * vel, vel


def expert(pos: np.ndarray, vel: np.ndarray, target: np.ndarray) -> np.ndarray:
    """PD controller towards ``target (N, 2)``: actions ``(N, 2)`` in [-1, 1]."""
    return np.clip(4.0 * (target - pos) - 2.0 * vel, -1.0, 1.0)


def success(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: within ``RADIUS`` of the target."""
    return np.linalg.norm(pos - target, axis=-1) <= RADIUS
