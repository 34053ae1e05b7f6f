"""Learned vision-language reward models: look at camera frames, read the instruction, say
how far along the task is and whether it has succeeded.

``reward_models.load(path, device="auto") -> RewardModel``;
``RewardModel.score(frames, instructions) -> (progress[B], success[B])``. In an RL loop the
model is wrapped by ``LearnedReward`` (scores each frame once, shapes with ``RewardShaper``),
which the ``reward=vlm`` config group builds through its ``_target_``.
"""

from reward_models.config import RewardModelError
from reward_models.io import load, save
from reward_models.rl_reward import LearnedReward, RewardAgreement
from reward_models.scoring import RewardModel
from reward_models.shaping import RewardShaper

__all__ = ["LearnedReward", "RewardAgreement", "RewardModel", "RewardModelError", "RewardShaper", "load", "save"]
