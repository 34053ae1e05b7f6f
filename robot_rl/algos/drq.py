"""DrQ-style SAC for pixels: random-shift augmentation and a conv encoder shared by actor and critic.

It is ``SAC`` with ``augment=random_shift`` (``augment.py``): the critic's loss trains the
encoder on augmented frames (obs and next obs shifted independently), the actor reads its
detached features. What keeps it affordable on a CPU: a smaller ``batch_size``, a lower
``env.image_size`` (the conv trunk is sized from it) and ``freeze_encoder`` (a fixed random
conv trunk, only the projection and heads learn), all config choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from robot_rl.algos.augment import random_shift
from robot_rl.algos.networks import ObsSpec
from robot_rl.algos.sac import SAC, SACConfig


@dataclass
class DrQConfig(SACConfig):
    """SAC's settings plus the augmentation pad and the pixel feature size."""

    pad: int = 4
    feature_dim: int = 50


def make_drq(obs_specs: dict[str, ObsSpec], action_dim: int, config: DrQConfig | None = None, seed: int = 0,
             freeze_encoder: bool = False) -> SAC:
    """A SAC agent with random-shift augmentation on its image keys."""
    config = config or DrQConfig()
    return SAC(obs_specs, action_dim, config, augment=partial(random_shift, pad=config.pad), seed=seed,
               freeze_encoder=freeze_encoder)


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> SAC:
    """The builder named by ``conf/algo/drq.yaml``."""
    freeze = bool(params.pop("freeze_encoder", False))
    return make_drq(obs_specs, action_dim, DrQConfig(**params), seed=seed, freeze_encoder=freeze)
