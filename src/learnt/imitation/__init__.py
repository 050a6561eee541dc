"""One-shot imitation learning (Duan et al. 2017): environments, scripted experts, demo stores,
demonstration-conditioned policies, behaviour cloning and DAgger.

Importing this package registers the gymnasium ids ``learnt/ParticleReach-v0`` and
``learnt/BlockStack-v0``.
"""
from __future__ import annotations

import gymnasium as gym

from learnt.imitation.api import Episode, imitate, load_policy, plot_episode, save_policy, success_rate
from learnt.imitation.block_expert import benchmark_tasks, expert_action, expert_plan
from learnt.imitation.block_policy import BlockLoss, BlockStackPolicy
from learnt.imitation.blockworld import BlockWorld, layout_stages, pad_observation, parse_layout
from learnt.imitation.demos import Trajectories, collect_blocks, collect_particle, load_or_collect
from learnt.imitation.envs import BlockStackEnv, ParticleReachEnv
from learnt.imitation.particle_policies import ARCHITECTURES, make_particle_policy
from learnt.imitation.rollout import rollout_blocks, rollout_particle
from learnt.imitation.training import ImitationTrainConfig, ImitationTrainer, mse_loss

for _id, _entry in (("learnt/ParticleReach-v0", "learnt.imitation.envs:ParticleReachEnv"),
                    ("learnt/BlockStack-v0", "learnt.imitation.envs:BlockStackEnv")):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=_entry)

__all__ = ["ARCHITECTURES", "BlockLoss", "BlockStackEnv", "BlockStackPolicy", "BlockWorld", "Episode",
           "ImitationTrainConfig", "ImitationTrainer", "ParticleReachEnv", "Trajectories", "benchmark_tasks",
           "collect_blocks", "collect_particle", "expert_action", "expert_plan", "imitate", "layout_stages",
           "load_or_collect", "load_policy", "make_particle_policy", "mse_loss", "pad_observation", "parse_layout",
           "plot_episode", "rollout_blocks", "rollout_particle", "save_policy", "success_rate"]
