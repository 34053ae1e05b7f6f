"""Learned vision-language reward models: look at camera frames, read the instruction, say
how far along the task is and whether it has succeeded.

The RL trainer needs two names: ``reward_models.load(path, device="auto") -> RewardModel`` and
``RewardShaper``. ``RewardModel.score(frames, instructions) -> (progress[B], success[B])``.
"""

from reward_models.config import RewardModelError
from reward_models.io import load, save
from reward_models.scoring import RewardModel, StridedScorer
from reward_models.shaping import OnlineReward, RewardShaper

__all__ = ["OnlineReward", "RewardModel", "RewardModelError", "RewardShaper", "StridedScorer", "load", "save"]
