"""Behaviour cloning: regress the demonstrated action; the baseline every report compares to.

A deterministic policy ``tanh(head(encoder(obs)))`` trained with mean squared error on
actions in [-1, 1]. It has the agent interface of the RL algorithms (``act``, ``update``,
``policy``, ``state_dict``), so the same offline loop, evaluation and export serve it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.algos.networks import DeterministicPolicy, ObsEncoder, ObsSpec, mlp, to_torch


@dataclass
class BCConfig:
    hidden_dim: int = 256
    depth: int = 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    feature_dim: int = 50


class BC:
    """Behaviour cloning for dict observations (``augment`` shifts images, as DrQ)."""

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: BCConfig | None = None,
                 augment: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.config = config = config or BCConfig()
        self.obs_keys, self.augment = list(obs_specs), augment
        self.encoder = ObsEncoder(obs_specs, config.feature_dim)
        self.head = mlp(self.encoder.out_dim, config.hidden_dim, action_dim, config.depth)
        params = list(self.encoder.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.num_updates = 0

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> np.ndarray:
        features = self.encoder(to_torch({k: obs[k] for k in self.obs_keys}))
        return torch.tanh(self.head(features)).numpy()

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        obs = batch["obs"]
        images = None
        if self.encoder.pixels is not None and self.augment is not None:
            images = self.augment(self.encoder.image_tensor(obs))
        prediction = torch.tanh(self.head(self.encoder(obs, images=images)))
        loss = F.mse_loss(prediction, batch["action"].float())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.num_updates += 1
        return {"losses/bc": loss.item()}

    def policy(self) -> DeterministicPolicy:
        return copy.deepcopy(DeterministicPolicy(self.obs_keys, self.encoder, self.head)).eval()

    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        self.encoder.fit_normalization(values)

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "head": self.head.state_dict(), "opt": self.opt.state_dict(),
                "num_updates": self.num_updates, "config": asdict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.head.load_state_dict(state["head"])
        self.opt.load_state_dict(state["opt"])
        self.num_updates = state["num_updates"]


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> BC:
    """The builder named by ``conf/algo/bc.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    pad = int(params.pop("augment_pad", 0))
    augment = None
    if pad:
        from robot_rl.algos.drq import random_shift

        augment = lambda x: random_shift(x, pad)  # noqa: E731
    return BC(obs_specs, action_dim, BCConfig(**params), augment=augment, seed=seed)
