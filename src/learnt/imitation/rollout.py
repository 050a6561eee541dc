"""Running a demonstration-conditioned policy: many episodes at once, one demo each.

The policy's demo embedding is computed once per episode; every step then costs one batched
``act`` call. With ``label=True`` the scripted expert labels every visited state, which is
what DAgger aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from learnt.imitation import particle as P
from learnt.imitation.block_expert import expert_plan
from learnt.imitation.blockworld import MAX_BLOCKS, BlockWorld, default_horizon, pad_observation, parse_layout, sample_scene
from learnt.imitation.demos import BLOCK_ACT_DIM, BLOCK_OBS_DIM, Trajectories


@dataclass
class RolloutResult:
    """Per-episode ``success (N,)``, the visited states with expert labels, and (blocks only)
    block positions ``(N, T + 1, B, 3)`` and gripper ``(N, T + 1, 3)`` for pictures."""

    success: np.ndarray
    visited: Trajectories
    positions: list[np.ndarray] | None = None
    gripper: list[np.ndarray] | None = None


def _encode(policy: nn.Module, demos: Trajectories, device: str):
    obs = torch.as_tensor(demos.obs, device=device)
    tmask = torch.arange(obs.shape[1], device=device)[None] < torch.as_tensor(demos.length, device=device)[:, None]
    ents = torch.as_tensor(demos.entities, device=device)
    return policy.encode_demo(obs, tmask, ents), ents


@torch.no_grad()
def rollout_particle(policy: nn.Module, demos: Trajectories, lm: np.ndarray, present: np.ndarray, start: np.ndarray,
                     device: str = "cpu") -> RolloutResult:
    """Run ``policy`` on configurations ``lm (N, 10, 2)``, ``present (N, 10)``, ``start (N, 2)``,
    conditioned on ``demos`` (one per episode, same target colour ``demos.task``)."""
    policy.eval()
    n = len(demos)
    ctx, ents = _encode(policy, demos, device)
    tgt = lm[np.arange(n), demos.task]
    pos, vel = start.copy(), np.zeros_like(start)
    obs_all = np.zeros((n, P.HORIZON, P.OBS_DIM), np.float32)
    lab = np.zeros((n, P.HORIZON, P.ACT_DIM), np.float32)
    for t in range(P.HORIZON):
        obs = P.observe(pos, vel, lm, present)
        obs_all[:, t], lab[:, t] = obs, P.expert(pos, vel, tgt)
        a = policy.act(ctx, torch.as_tensor(obs, device=device)[:, None], ents)[:, 0].cpu().numpy()
        pos, vel = P.step(pos, vel, a)
    ok = P.success(pos, tgt)
    return RolloutResult(ok, Trajectories(obs_all, lab, np.full(n, P.HORIZON), demos.task.copy(), present.copy(), ok,
                                          np.full((n, P.HORIZON, 2), -1, np.int8)))


@torch.no_grad()
def rollout_blocks(policy: nn.Module, demos: Trajectories, layouts: list[str], rng: np.random.Generator,
                   device: str = "cpu", label: bool = False, record: bool = False) -> RolloutResult:
    """Run ``policy`` on fresh scenes of ``layouts`` (one per demo), each for its layout's horizon."""
    policy.eval()
    n = len(layouts)
    towers = [parse_layout(l) for l in layouts]
    worlds = [BlockWorld(*sample_scene(rng, sum(len(t) for t in tw))) for tw in towers]
    horizons = np.array([default_horizon(l) for l in layouts])
    t_max = int(horizons.max())
    ctx, ents = _encode(policy, demos, device)
    obs_all = np.zeros((n, t_max, BLOCK_OBS_DIM), np.float32)
    lab = np.zeros((n, t_max, BLOCK_ACT_DIM), np.float32)
    picks = np.full((n, t_max, 2), -1, np.int8)
    pos_hist = [[w.pos.copy()] for w in worlds] if record else None
    grip_hist = [[w.gripper.copy()] for w in worlds] if record else None
    for t in range(t_max):
        for i, w in enumerate(worlds):
            obs_all[i, t] = pad_observation(w.observation(), w.n_blocks)[0]
        act = policy.command(policy.act(ctx, torch.as_tensor(obs_all[:, t], device=device)[:, None], ents)[:, 0])
        act = act.cpu().numpy().astype(np.float64)
        for i, w in enumerate(worlds):
            if t >= horizons[i]:
                continue
            if label:
                lab[i, t], picks[i, t, 0], picks[i, t, 1] = expert_plan(w, towers[i])
            w.step(act[i])
            if record:
                pos_hist[i].append(w.pos.copy())
                grip_hist[i].append(w.gripper.copy())
    ok = np.array([w.success(tw) for w, tw in zip(worlds, towers)])
    ents_np = np.arange(MAX_BLOCKS)[None] < np.array([w.n_blocks for w in worlds])[:, None]
    visited = Trajectories(obs_all, lab, horizons, demos.task.copy(), ents_np, ok, picks)
    return RolloutResult(ok, visited, [np.array(h) for h in pos_hist] if record else None,
                         [np.array(h) for h in grip_hist] if record else None)
