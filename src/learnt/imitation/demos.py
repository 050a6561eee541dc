"""Demonstrations: collected from the scripted experts with injected action noise, padded
into arrays, and kept in a ``.npz`` store that is written once (atomically) and reused.

A :class:`Trajectories` holds ``N`` episodes: observations ``obs (N, T, D)``, the expert's
(noise-free) action labels ``act (N, T, A)`` at those states, valid lengths ``length (N,)``,
task ids ``task (N,)``, an entity mask ``entities (N, E)`` (present blocks / landmark
colours), whether the episode ended in success, and ``picks (N, T, 2)``: the block the
expert is moving and the block it goes onto at each step (-1: none / table; blocks only,
-1 throughout for particles). Padding after ``length`` is zeros.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from learnt.imitation import particle as P
from learnt.imitation.block_expert import expert_plan
from learnt.imitation.blockworld import MAX_BLOCKS, BlockWorld, default_horizon, pad_observation, parse_layout, sample_scene
from learnt.io import atomic_write_bytes

log = logging.getLogger(__name__)

BLOCK_OBS_DIM = 3 * MAX_BLOCKS + 2
BLOCK_ACT_DIM = 4


@dataclass
class Trajectories:
    """A padded batch of episodes (see module docstring for shapes)."""

    obs: np.ndarray
    act: np.ndarray
    length: np.ndarray
    task: np.ndarray
    entities: np.ndarray
    success: np.ndarray
    picks: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    def select(self, idx) -> "Trajectories":
        """The episodes at ``idx`` (an index array or boolean mask)."""
        return Trajectories(*(getattr(self, f.name)[idx] for f in fields(self)))

    @staticmethod
    def concat(parts: list["Trajectories"]) -> "Trajectories":
        """Episodes of several batches, padded to the longest horizon."""
        t = max(p.obs.shape[1] for p in parts)

        def pad(a):
            out = np.zeros((a.shape[0], t) + a.shape[2:], a.dtype)
            out[:, : a.shape[1]] = a
            return out
        return Trajectories(np.concatenate([pad(p.obs) for p in parts]), np.concatenate([pad(p.act) for p in parts]),
                            *(np.concatenate([getattr(p, k) for p in parts]) for k in ("length", "task", "entities", "success")),
                            np.concatenate([pad(p.picks) for p in parts]))

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def save_store(traj: Trajectories, path: str | Path, meta: dict) -> None:
    """Write trajectories and their ``meta`` description to ``path`` (.npz) atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta, sort_keys=True)), **traj.arrays())
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue()))


def load_or_collect(path: str | Path, meta: dict, collect: Callable[[], Trajectories]) -> Trajectories:
    """Load the store at ``path`` when it was made with the same ``meta``; else collect and save it."""
    path = Path(path)
    want = json.dumps(meta, sort_keys=True)
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["meta"]) == want:
                log.info("reusing demo store %s", path)
                return Trajectories(*(z[f.name] for f in fields(Trajectories)))
        log.info("demo store %s was made with other settings; collecting again", path)
    traj = collect()
    save_store(traj, path, meta)
    return traj


# ---------------------------------------------------------------------------- particles
def collect_particle(rng: np.random.Generator, targets: np.ndarray, n_landmarks: np.ndarray,
                     noise: float = 0.1) -> Trajectories:
    """Expert episodes ``(N,)`` for target colours and landmark counts; noise std on the executed force."""
    n = len(targets)
    lm, present, pos = P.sample_configs(rng, np.asarray(n_landmarks), np.asarray(targets))
    tgt = lm[np.arange(n), targets]
    vel = np.zeros_like(pos)
    obs = np.zeros((n, P.HORIZON, P.OBS_DIM), np.float32)
    act = np.zeros((n, P.HORIZON, P.ACT_DIM), np.float32)
    for t in range(P.HORIZON):
        obs[:, t] = P.observe(pos, vel, lm, present)
        a = P.expert(pos, vel, tgt)
        act[:, t] = a
        pos, vel = P.step(pos, vel, a + noise * rng.standard_normal(a.shape))
    return Trajectories(obs, act, np.full(n, P.HORIZON), np.asarray(targets), present, P.success(pos, tgt),
                        np.full((n, P.HORIZON, 2), -1, np.int8))


# ---------------------------------------------------------------------------- blocks
def run_block_episode(world: BlockWorld, towers: list[list[int]], horizon: int, rng: np.random.Generator,
                      noise: float, policy_actions: Callable[[np.ndarray], np.ndarray] | None = None,
                      trace: list | None = None):
    """One episode; returns observations ``(T, 3B + 2)``, expert labels ``(T, 4)``, the expert's
    picks ``(T, 2)`` and success.

    The executed action is the expert's plus Gaussian motion noise (std ``noise``), or
    ``policy_actions(obs)`` when given (then the expert only labels, as in DAgger). A
    ``trace`` list receives ``(block positions, gripper)`` before the first and after every step.
    """
    obs, labels, picks = [], [], []
    if trace is not None:
        trace.append((world.pos.copy(), world.gripper.copy()))
    for _ in range(horizon):
        o = world.observation()
        a, src, dst = expert_plan(world, towers)
        obs.append(o)
        labels.append(a)
        picks.append((src, dst))
        if policy_actions is not None:
            ex = np.clip(policy_actions(o), -1, 1)
        else:
            ex = a.copy()
            ex[:3] = np.clip(ex[:3] + noise * rng.standard_normal(3), -1, 1)
        world.step(ex)
        if trace is not None:
            trace.append((world.pos.copy(), world.gripper.copy()))
    return np.array(obs), np.array(labels), np.array(picks, np.int8), world.success(towers)


def collect_blocks(rng: np.random.Generator, layouts: list[str], task_ids: list[int], noise: float = 0.1,
                   require_success: bool = True, retries: int = 4, traces: list | None = None) -> Trajectories:
    """One noisy expert demo per entry of ``layouts``, padded to ``MAX_BLOCKS`` and the longest horizon.

    With ``require_success`` a failed demo is collected again (new scene) up to ``retries`` times.
    ``traces`` (a list) receives each kept demo's ``(positions, gripper)`` trace.
    """
    t_max = max(default_horizon(l) for l in layouts)
    n = len(layouts)
    obs = np.zeros((n, t_max, BLOCK_OBS_DIM), np.float32)
    act = np.zeros((n, t_max, BLOCK_ACT_DIM), np.float32)
    length = np.zeros(n, np.int64)
    ents = np.zeros((n, MAX_BLOCKS), bool)
    ok = np.zeros(n, bool)
    picks = np.full((n, t_max, 2), -1, np.int8)
    for k, lay in enumerate(layouts):
        towers = parse_layout(lay)
        b = sum(len(t) for t in towers)
        for _ in range(retries + 1):
            world = BlockWorld(*sample_scene(rng, b))
            trace: list | None = [] if traces is not None else None
            o, a, pk, s = run_block_episode(world, towers, default_horizon(lay), rng, noise, trace=trace)
            if s or not require_success:
                break
        if traces is not None:
            traces.append(trace)
        po, mask = pad_observation(o, b)
        obs[k, : len(o)], act[k, : len(o)], picks[k, : len(o)], length[k], ents[k], ok[k] = po, a, pk, len(o), mask, s
    return Trajectories(obs, act, length, np.asarray(task_ids), ents, ok, picks)
