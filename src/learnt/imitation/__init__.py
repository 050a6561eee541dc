"""One-shot imitation learning (Duan et al. 2017): environments, scripted experts, demo stores,
demonstration-conditioned policies, behaviour cloning and DAgger.

Importing this package registers the gymnasium ids ``learnt/ParticleReach-v0`` and
``learnt/BlockStack-v0``.
"""
from __future__ import annotations

import gymnasium as gym

from learnt.imitation.block_expert import benchmark_tasks, expert_action
from learnt.imitation.blockworld import BlockWorld, layout_stages, pad_observation, parse_layout
from learnt.imitation.envs import BlockStackEnv, ParticleReachEnv

for _id, _entry in (("learnt/ParticleReach-v0", "learnt.imitation.envs:ParticleReachEnv"),
                    ("learnt/BlockStack-v0", "learnt.imitation.envs:BlockStackEnv")):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry)

__all__ = ["BlockStackEnv", "BlockWorld", "ParticleReachEnv", "benchmark_tasks", "expert_action", "layout_stages",
           "pad_observation", "parse_layout"]
