"""DrQ-style SAC for pixels: random-shift augmentation and a conv encoder shared by actor and critic.

It is ``SAC`` with ``augment=random_shift``: the critic's loss trains the encoder on augmented
frames (obs and next obs shifted independently), the actor reads its detached features.
What keeps it affordable on a CPU: a smaller ``batch_size``, a lower ``env.image_size``
(the conv trunk is sized from it) and ``freeze_encoder`` (a fixed random conv trunk, only the
projection and heads learn), all config choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robot_rl.algos.networks import ObsSpec
from robot_rl.algos.sac import SAC, SACConfig


def random_shift(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Pad by ``pad`` (replicate) and crop back at a random offset per sample (DrQ-v2, bilinear)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=images.device)[:h]
    base_x = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base = torch.cat([base_x, base_x.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    shift = torch.randint(0, 2 * pad + 1, size=(n, 1, 1, 2), device=images.device).float() * 2.0 / (h + 2 * pad)
    return F.grid_sample(padded, base + shift, padding_mode="zeros", align_corners=False)


@dataclass
class DrQConfig(SACConfig):
    """SAC's settings plus the augmentation pad and the pixel feature size."""

    pad: int = 4
    feature_dim: int = 50


def make_drq(obs_specs: dict[str, ObsSpec], action_dim: int, config: DrQConfig | None = None, seed: int = 0,
             freeze_encoder: bool = False) -> SAC:
    """A SAC agent with random-shift augmentation on its image keys."""
    config = config or DrQConfig()
    pad = config.pad
    return SAC(obs_specs, action_dim, config, augment=lambda x: random_shift(x, pad), seed=seed,
               freeze_encoder=freeze_encoder)


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> SAC:
    """The builder named by ``conf/algo/drq.yaml``."""
    freeze = bool(params.pop("freeze_encoder", False))
    return make_drq(obs_specs, action_dim, DrQConfig(**params), seed=seed, freeze_encoder=freeze)
