"""Behaviour cloning: regress the demonstrated action; the baseline every report compares to.

A deterministic policy ``tanh(head(encoder(obs)))`` trained with mean squared error on
actions in [-1, 1]. It is an ``Agent`` (``base.py``) like the RL algorithms, so the same
offline loop, evaluation and export serve it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robot_rl.algos.augment import shift_augment
from robot_rl.algos.base import Augment, EncodedAgent
from robot_rl.algos.networks import ObsSpec, mlp


@dataclass
class BCConfig:
    hidden_dim: int = 256
    depth: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    feature_dim: int = 50


class BC(EncodedAgent):
    """Behaviour cloning for dict observations (``augment`` shifts images, as DrQ)."""

    PARTS = ("encoder", "head", "opt")
    POLICY_HEAD = "head"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: BCConfig | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or BCConfig()
        super().__init__(obs_specs, config, augment, seed)
        self.head = mlp(self.encoder.out_dim, config.hidden_dim, action_dim, config.depth)
        params = list(self.encoder.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """The regressed action (BC has no stochastic policy)."""
        return torch.tanh(self.head(features))

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        prediction = torch.tanh(self.head(self.encode(batch["obs"])))
        loss = F.mse_loss(prediction, batch["action"].float())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.num_updates += 1
        return {"losses/bc": loss.item()}


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> BC:
    """The builder named by ``conf/algo/bc.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = shift_augment(int(params.pop("augment_pad", 0)))
    return BC(obs_specs, action_dim, BCConfig(**params), augment=augment, seed=seed)
