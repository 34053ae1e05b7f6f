"""Implicit Q-Learning (Kostrikov et al., 2021) for offline RL from a Zarr store.

Three losses, each a few lines:
- value: expectile regression of V(s) towards min_i Q_target_i(s, a) (``expectile`` > 0.5
  leans towards the best actions in the data without querying unseen ones);
- critic: Q(s, a) towards r + gamma * (1 - done) * V(s');
- actor: advantage-weighted regression, ``exp(temperature * (Q - V))`` (clipped) times the
  log-likelihood of the data action under a tanh-Gaussian.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.algos.augment import image_augment
from robot_rl.algos.base import Augment, EncodedAgent, check_update_dtype
from robot_rl.algos.networks import CriticEnsemble, ObsSpec, TanhGaussianActor, adam, full_precision_head, mlp, soft_update


@dataclass
class IQLConfig:
    hidden_dim: int = 256
    depth: int = 2
    num_critics: int = 2
    critic_layer_norm: bool = True
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    temperature: float = 3.0
    max_weight: float = 100.0
    feature_dim: int = 50
    trunk: str = "drq"  # pixel trunk: drq | keypoints (networks.TRUNKS)
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (see base.UPDATE_DTYPES)

    def __post_init__(self) -> None:
        check_update_dtype(self.update_dtype)


class IQL(EncodedAgent):
    """IQL for dict observations; the encoder is trained by the critic, the actor sees detached features.

    What the critic and the actor are, and what they read as the data's action, are hooks
    (``build_actor``, ``build_critic``, ``data_action``, ``q``, ``log_prob``, ``update_extra``): IDQL
    puts a diffusion behaviour model in the actor's place, SAQ learns over discrete action codes."""

    PARTS: tuple[str, ...] = ("encoder", "actor", "critic", "value", "critic_target", "critic_opt", "value_opt",
                              "actor_opt")

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: IQLConfig | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or IQLConfig()
        super().__init__(obs_specs, config, augment, seed)
        dim = self.encoder.out_dim
        self.actor = self.build_actor(dim, action_dim)
        self.critic = self.build_critic(dim, action_dim)
        self.value = mlp(dim, config.hidden_dim, 1, config.depth, layer_norm=config.critic_layer_norm)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_opt = adam([*self.critic.parameters(), *self.encoder.parameters()], config.lr)
        self.value_opt = adam(self.value.parameters(), config.lr)
        self.actor_opt = adam(self.actor.parameters(), config.lr)

    # --- what the critic and the actor are ------------------------------------------------------
    def build_actor(self, dim: int, action_dim: int) -> nn.Module:
        """The policy the critic's advantages train."""
        return TanhGaussianActor(dim, action_dim, self.config.hidden_dim, self.config.depth)

    def build_critic(self, dim: int, action_dim: int) -> CriticEnsemble:
        """Q(s, a) for continuous actions."""
        c = self.config
        return CriticEnsemble(dim + action_dim, c.num_critics, c.hidden_dim, c.depth, c.critic_layer_norm)

    def data_action(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """What the critic and the actor read as the data's action (the action itself)."""
        return action

    def q(self, critic: CriticEnsemble, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Every ensemble member's Q(s, a), (n, B)."""
        return critic(features, action)

    def log_prob(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.actor.log_prob(features, action)

    def update_extra(self, features: torch.Tensor, action: torch.Tensor, batch: dict) -> dict[str, float]:
        """Whatever else learns from the batch (nothing in IQL)."""
        return {}

    # --- learning ----------------------------------------------------------------------------
    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        with self.precision():
            return self._update(batch, update_actor)

    def _update(self, batch: dict, update_actor: bool) -> dict[str, float]:
        features = self.encode(batch["obs"])
        with torch.no_grad():
            next_features = self.encode(batch["next_obs"])
        detached = features.detach()
        action = self.data_action(detached, batch["action"])
        metrics = self.update_value(detached, action)
        metrics.update(self.update_critic(features, action, batch, next_features))
        if update_actor:
            metrics.update(self.update_actor(detached, action))
        metrics.update(self.update_extra(detached, action, batch))
        soft_update(self.critic_target, self.critic, self.config.tau)
        self.num_updates += 1
        return metrics

    def v(self, features: torch.Tensor) -> torch.Tensor:
        """V(s), (B,)."""
        return full_precision_head(self.value, features).squeeze(-1)

    def update_value(self, features: torch.Tensor, action: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            target_q = self.q(self.critic_target, features, action).min(dim=0).values
        diff = target_q - self.v(features)
        weight = torch.where(diff > 0, self.config.expectile, 1 - self.config.expectile)
        loss = (weight * diff.pow(2)).mean()
        self.value_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.value_opt.step()
        return {"losses/value": loss.item()}

    def update_critic(self, features: torch.Tensor, action: torch.Tensor, batch: dict,
                      next_features: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            next_v = self.v(next_features)
            target = batch["reward"] + self.config.gamma * (1.0 - batch["done"].float()) * next_v
        q = self.q(self.critic, features, action)
        loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q))
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return {"losses/critic": loss.item(), "losses/q_mean": q.mean().item()}

    def update_actor(self, features: torch.Tensor, action: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            advantage = self.q(self.critic_target, features, action).min(dim=0).values - self.v(features)
            weight = torch.exp(self.config.temperature * advantage).clamp(max=self.config.max_weight)
        loss = -(weight * self.log_prob(features, action)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return {"losses/actor": loss.item(), "losses/advantage": advantage.mean().item()}


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> IQL:
    """The builder named by ``conf/algo/iql.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = image_augment(int(params.pop("augment_pad", 0)))
    return IQL(obs_specs, action_dim, IQLConfig(**params), augment=augment, seed=seed)
