"""Soft Actor-Critic with what makes SERL / RLPD sample-efficient, readable top to bottom.

- a critic **ensemble** with **LayerNorm** (RLPD); the TD target takes the minimum over a
  random subset of ``num_min_q`` target critics (REDQ); ``num_critics=2, num_min_q=2`` is
  classic clipped double-Q SAC;
- an **update-to-data ratio** above 1 (the training loop calls ``update`` ``utd`` times per env
  step; the actor and temperature are updated on the last of them, as RLPD does);
- a shared observation encoder trained by the critic; the actor sees detached features
  (DrQ). With image keys and ``augment`` set this *is* the DrQ-style variant (see ``drq.py``).

Batches are dicts: ``obs`` and ``next_obs`` (dicts of tensors keyed by observation key),
``action`` (B, A) in [-1, 1], ``reward`` (B,), ``done`` (B,) true only on real termination.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from robot_rl.algos.base import Augment, EncodedAgent, check_update_dtype
from robot_rl.algos.networks import CriticEnsemble, ObsSpec, TanhGaussianActor, adam, frozen, soft_update


@dataclass
class SACConfig:
    """Hyperparameters of SAC (defaults: the usual state-based DMC setting, LayerNorm critics)."""

    hidden_dim: int = 256
    depth: int = 2
    num_critics: int = 2
    num_min_q: int = 2
    critic_layer_norm: bool = True
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    init_alpha: float = 0.1
    target_entropy_scale: float = 1.0  # target entropy = -scale * action_dim
    feature_dim: int = 50  # pixel features after the conv trunk
    trunk: str = "drq"  # pixel trunk: drq | keypoints (networks.TRUNKS)
    backup_entropy: bool = True
    # Behaviour cloning on the demonstration rows of each batch (Nair et al. 2018): the actor
    # also pulls its mean action towards the demonstrated one. As in TD3+BC the SAC term is then
    # divided by the batch's mean |Q|, so bc_weight weighs BC against a unit-scale Q term
    # whatever the reward scale. With the Q-filter only where the critic rates the demonstrated
    # action above the actor's own, so the policy can outgrow imperfect demos. 0 turns it off
    # (plain SAC / RLPD).
    bc_weight: float = 0.0
    bc_q_filter: bool = True
    # Fine-tuning a policy that already works (a distilled student on the robot): the actor's mean
    # action is also pulled towards the starting actor's on every replayed state, weighed as
    # bc_weight is (the SAC term divided by the batch's mean |Q|), so a fresh critic's early errors
    # cannot take the starting behaviour apart before they are learned away. 0 turns it off; it
    # acts only once ``anchor_actor()`` has fixed the starting actor (robot_rl.train.finetune).
    anchor_weight: float = 1.0
    # Fine-tuning also keeps the exploration noise it started with (ros.student_std): once
    # ``anchor_actor(std)`` has fixed the starting actor, the actor explores with that std in
    # action units around its mean action and the entropy terms are dropped (temperature 0).
    # Left to SAC, the entropy bonus widened a student's std within a few hundred updates, and a
    # lift policy's grasps failed under the wider noise; a std held before the tanh explored
    # nothing where the mean had drifted into saturation.
    hold_start_std: bool = True
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (see base.UPDATE_DTYPES)

    def __post_init__(self) -> None:
        if not 1 <= self.num_min_q <= self.num_critics:
            raise ValueError(f"num_min_q must be between 1 and num_critics={self.num_critics}, got {self.num_min_q}.")
        check_update_dtype(self.update_dtype)


class SAC(EncodedAgent):
    """A SAC agent for dict observations; ``augment`` (images -> images) turns on DrQ."""

    PARTS = ("encoder", "actor", "critic", "encoder_target", "critic_target", "critic_opt", "actor_opt", "alpha_opt")

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: SACConfig | None = None,
                 augment: Augment | None = None, seed: int = 0, freeze_encoder: bool = False) -> None:
        config = config or SACConfig()
        super().__init__(obs_specs, config, augment, seed, freeze_encoder)
        self.action_dim = action_dim
        self.actor = TanhGaussianActor(self.encoder.out_dim, action_dim, config.hidden_dim, config.depth)
        self.critic = CriticEnsemble(self.encoder.out_dim + action_dim, config.num_critics, config.hidden_dim,
                                     config.depth, config.critic_layer_norm)
        self.encoder_target, self.critic_target = copy.deepcopy(self.encoder), copy.deepcopy(self.critic)
        self.log_alpha = torch.tensor(np.log(config.init_alpha), dtype=torch.float32, requires_grad=True)
        self.target_entropy = -config.target_entropy_scale * action_dim
        critic_params = list(self.critic.parameters()) + ([] if freeze_encoder else list(self.encoder.parameters()))
        self.critic_opt = adam(critic_params, config.lr)
        self.actor_opt = adam(self.actor.parameters(), config.lr)
        self.alpha_opt = adam([self.log_alpha], config.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.anchor: TanhGaussianActor | None = None  # the starting actor (anchor_actor)

    def anchor_actor(self, std: float = 0.0) -> None:
        """Fix the actor as it is now as the one ``anchor_weight`` pulls towards; with
        ``hold_start_std`` and ``std`` > 0 it explores with ``std`` from here on (held)."""
        self.anchor = copy.deepcopy(self.actor).requires_grad_(False)
        if self.config.hold_start_std:
            self.actor.action_std = float(std)

    @property
    def _std_held(self) -> bool:
        return self.actor.action_std > 0

    @property
    def alpha(self) -> torch.Tensor:
        if self._std_held:  # hold_start_std: no entropy bonus, in the backup or the actor's loss
            return torch.zeros(())
        return self.log_alpha.exp().detach()

    # --- learning ----------------------------------------------------------------------------
    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        """One critic step, and (when ``update_actor``) one actor and temperature step."""
        with self.precision():
            return self._update(batch, update_actor)

    def _update(self, batch: dict, update_actor: bool) -> dict[str, float]:
        features = self.encode(batch["obs"])
        with torch.no_grad():
            next_features = self.encode(batch["next_obs"], self.encoder_target)
        metrics = self.update_critic(features, batch, next_features)
        if update_actor:
            metrics.update(self.update_actor_and_alpha(features.detach(), batch))
        soft_update(self.critic_target, self.critic, self.config.tau)
        soft_update(self.encoder_target, self.encoder, self.config.tau)
        self.num_updates += 1
        return metrics

    def update_critic(self, features: torch.Tensor, batch: dict, next_features: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            next_action, next_log_prob = self.actor(next_features)
            target_q = self.critic_target(next_features, next_action)
            subset = torch.randperm(self.config.num_critics, generator=self.generator)[: self.config.num_min_q]
            next_v = target_q[subset].min(dim=0).values
            if self.config.backup_entropy:
                next_v = next_v - self.alpha * next_log_prob
            not_done = 1.0 - batch["done"].float()
            target = batch["reward"] + self.config.gamma * not_done * next_v
        q = self.critic(features, batch["action"])
        loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q))
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return {"losses/critic": loss.item(), "losses/q_mean": q.mean().item()}

    def update_actor_and_alpha(self, features: torch.Tensor, batch: dict | None = None) -> dict[str, float]:
        action, log_prob = self.actor(features)
        with frozen(self.critic):
            q = self.critic(features, action).mean(dim=0)
        actor_loss = (self.alpha * log_prob - q).mean()
        metrics = {}
        cloning = self.config.bc_weight > 0 and batch is not None and "demo" in batch and bool(batch["demo"].any())
        anchored = self.config.anchor_weight > 0 and self.anchor is not None
        if cloning or anchored:  # a unit-scale Q term beside the imitation terms (TD3+BC)
            actor_loss = actor_loss / q.detach().abs().mean().clamp(min=1e-3)
        if cloning:
            bc_loss, metrics = self.demo_bc_loss(features, batch, q.detach())
            actor_loss = actor_loss + self.config.bc_weight * bc_loss
        if anchored:
            with torch.no_grad():
                start = self.anchor.mean_action(features)
            anchor_loss = (self.actor.mean_action(features) - start).pow(2).sum(dim=-1).mean()
            actor_loss = actor_loss + self.config.anchor_weight * anchor_loss
            metrics["losses/anchor"] = anchor_loss.item()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        if not self._std_held:  # a held std cannot meet an entropy target
            alpha_loss = (self.log_alpha.exp() * (-log_prob.detach() - self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
        return {"losses/actor": actor_loss.item(), "losses/alpha": self.alpha.item(),
                "losses/entropy": -log_prob.mean().item(), **metrics}

    def demo_bc_loss(self, features: torch.Tensor, batch: dict, q_policy: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Squared error of the actor's mean action on the demo rows (Q-filtered when configured)."""
        demo = batch["demo"].bool()
        keep = demo
        if self.config.bc_q_filter:
            with torch.no_grad():
                q_demo = self.critic(features, batch["action"]).mean(dim=0)
            keep = demo & (q_demo > q_policy)
        error = (self.actor.mean_action(features) - batch["action"]).pow(2).sum(dim=-1)
        loss = (error * keep.float()).sum() / demo.float().sum().clamp(min=1.0)
        return loss, {"losses/bc": loss.item(), "losses/bc_kept": (keep.float().sum() / demo.float().sum()).item()}

    # --- checkpoints -------------------------------------------------------------------------
    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        """Freeze observation normalisation (online and target encoders) from raw samples."""
        self.encoder.fit_normalization(values)
        self.encoder_target.fit_normalization(values)

    def extra_state(self) -> dict:
        state = {"log_alpha": self.log_alpha.detach().clone(), "generator": self.generator.get_state()}
        if self.anchor is None:
            return state
        return {**state, "anchor": self.anchor.state_dict(), "action_std": torch.tensor(self.actor.action_std, dtype=torch.float64)}

    def load_extra_state(self, state: dict) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.generator.set_state(state["generator"])
        if "anchor" in state:  # a resumed fine-tuning run keeps its starting actor and exploration
            self.anchor_actor(float(state.get("action_std", 0.0)))
            self.anchor.load_state_dict(state["anchor"])


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> SAC:
    """The builder named by ``conf/algo/sac.yaml``."""
    freeze = bool(params.pop("freeze_encoder", False))
    return SAC(obs_specs, action_dim, SACConfig(**params), seed=seed, freeze_encoder=freeze)
