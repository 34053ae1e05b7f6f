"""SAQ (Luo et al., 2023, "Action-Quantized Offline Reinforcement Learning for Robotic Skill
Learning"), with IQL as the offline RL method on the codes, offline from a Zarr store.

Two stages, switched by the update count (so a checkpoint resumes in the right one):
1. ``vq_updates`` updates of a *state-conditioned* VQ-VAE over actions: an encoder E(s, a),
   ``num_codes`` codebook vectors, a decoder D(s, e_k) -> a. Each state gets its own small set of
   actions the data took there (the codes), instead of one grid over the whole action space.
   Codes no batch used for ``RESTART_EVERY`` updates are moved onto encoder outputs of the
   current batch (the usual remedy for codebook collapse), which is also how they start.
2. IQL over the discrete codes: Q(s, k) for every code at once, an expectile V(s), the TD critic,
   and advantage-weighted regression of a categorical policy pi(k | s) on the data's codes (the
   frozen VQ encoder says which code each data action is). The decoder keeps fitting the data's
   actions given their codes, so it follows the features as the critic trains the encoder.
Acting: the policy's most likely code (deterministic; what is exported) or a sample, decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.algos.augment import image_augment
from robot_rl.algos.base import Augment
from robot_rl.algos.iql import IQL, IQLConfig
from robot_rl.algos.networks import CriticEnsemble, ObsSpec, adam, full_precision_head, mlp

RESTART_EVERY = 100  # VQ updates between dead-code restarts


@dataclass
class SAQConfig(IQLConfig):
    num_codes: int = 16  # actions per state the quantiser can express
    code_dim: int = 16
    commitment: float = 0.25  # the VQ-VAE's commitment weight (beta)
    vq_updates: int = 2000  # stage 1's length; RL on the codes after it

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_codes < 2 or self.vq_updates < 0:
            raise ValueError("num_codes must be at least 2 and vq_updates at least 0.")


class ActionQuantizer(nn.Module):
    """The state-conditioned VQ-VAE: ``code(s, a)`` -> k, ``decode(s, k)`` -> a in [-1, 1]."""

    def __init__(self, in_dim: int, action_dim: int, num_codes: int, code_dim: int, hidden_dim: int, depth: int) -> None:
        super().__init__()
        self.encoder = mlp(in_dim + action_dim, hidden_dim, code_dim, depth)
        self.codebook = nn.Embedding(num_codes, code_dim)
        self.decoder = mlp(in_dim + code_dim, hidden_dim, action_dim, depth)
        self.register_buffer("usage", torch.zeros(num_codes))  # batches' uses since the last restart

    def embed(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.encoder(torch.cat([features, action], dim=-1))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cdist(z.float(), self.codebook.weight.float()).argmin(dim=-1)

    @torch.no_grad()
    def code(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The code of each (state, action), (B,)."""
        return self.nearest(self.embed(features, action))

    def decode(self, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.decode_embedding(features, self.codebook(code))

    def loss(self, features: torch.Tensor, action: torch.Tensor, commitment: float) -> tuple[torch.Tensor, dict]:
        """Reconstruction + codebook + commitment (straight-through gradient to the encoder)."""
        z = self.embed(features, action).float()
        code = self.nearest(z)
        e = self.codebook(code)
        quantized = z + (e - z).detach()
        reconstruction = F.mse_loss(self.decode_embedding(features, quantized), action)
        loss = reconstruction + F.mse_loss(e, z.detach()) + commitment * F.mse_loss(z, e.detach())
        self.usage += torch.bincount(code, minlength=len(self.usage)).float()
        used = (self.usage > 0).float().mean()
        return loss, {"losses/vq_reconstruction": reconstruction.item(), "losses/vq_codes_used": used.item()}

    def decode_embedding(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return torch.tanh(full_precision_head(self.decoder, torch.cat([features, embedding], dim=-1)))

    @torch.no_grad()
    def restart_dead_codes(self, features: torch.Tensor, action: torch.Tensor) -> None:
        """Move every code no batch used since the last restart onto a random encoder output."""
        dead = (self.usage == 0).nonzero().squeeze(-1)
        if len(dead):
            z = self.embed(features, action).float()
            pick = torch.randint(0, len(z), (len(dead),), device=z.device)
            self.codebook.weight[dead] = z[pick] + 1e-3 * torch.randn_like(z[pick])
        self.usage.zero_()


class CodePolicy(nn.Module):
    """What SAQ exports: the policy's most likely code, decoded into an action."""

    def __init__(self, logits: nn.Sequential, quantizer: ActionQuantizer) -> None:
        super().__init__()
        self.logits, self.quantizer = logits, quantizer

    def mean_action(self, features: torch.Tensor) -> torch.Tensor:
        return self.quantizer.decode(features, self.logits(features).argmax(dim=-1))


class SAQ(IQL):
    """SAQ-IQL for dict observations: IQL's losses with the data's codes in place of its actions."""

    PARTS = ("encoder", "quantizer", "actor", "critic", "value", "critic_target", "vq_opt", "critic_opt",
             "value_opt", "actor_opt")
    POLICY_HEAD = "code_policy"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: SAQConfig | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or SAQConfig()
        super().__init__(obs_specs, action_dim, config, augment, seed)
        c = config
        self.quantizer = ActionQuantizer(self.encoder.out_dim, action_dim, c.num_codes, c.code_dim, c.hidden_dim,
                                         c.depth)
        self.vq_opt = adam(self.quantizer.parameters(), c.lr)
        self.code_policy = CodePolicy(self.actor, self.quantizer)

    # --- IQL over codes ----------------------------------------------------------------------
    def build_actor(self, dim: int, action_dim: int) -> nn.Module:
        return mlp(dim, self.config.hidden_dim, self.config.num_codes, self.config.depth)  # pi(k | s) logits

    def build_critic(self, dim: int, action_dim: int) -> CriticEnsemble:
        c = self.config
        return CriticEnsemble(dim, c.num_critics, c.hidden_dim, c.depth, c.critic_layer_norm, out_dim=c.num_codes)

    def data_action(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.quantizer.code(features, action.float())

    def q(self, critic: CriticEnsemble, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        values = critic(features)  # (n, B, codes)
        return values.gather(-1, code.view(1, -1, 1).expand(values.shape[0], -1, 1)).squeeze(-1)

    def log_prob(self, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        logits = full_precision_head(self.actor, features)
        return F.log_softmax(logits, dim=-1).gather(-1, code[:, None]).squeeze(-1)

    def update_extra(self, features: torch.Tensor, code: torch.Tensor, batch: dict) -> dict[str, float]:
        """The decoder keeps fitting the data's actions from their codes (the codes stay put)."""
        embedding = self.quantizer.codebook(code).detach()
        loss = F.mse_loss(self.quantizer.decode_embedding(features, embedding), batch["action"].float())
        self.vq_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.vq_opt.step()
        return {"losses/vq_reconstruction": loss.item()}

    # --- acting and the two stages -----------------------------------------------------------
    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        if deterministic:
            return self.code_policy.mean_action(features)
        code = torch.distributions.Categorical(logits=self.actor(features)).sample()
        return self.quantizer.decode(features, code)

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        if self.num_updates >= self.config.vq_updates:
            return super().update(batch, update_actor)
        with self.precision():
            metrics = self.update_quantizer(batch)
        self.num_updates += 1
        return metrics

    def update_quantizer(self, batch: dict) -> dict[str, float]:
        """Stage 1: the VQ-VAE alone, on the features as they are."""
        with torch.no_grad():
            features = self.encode(batch["obs"])
        action = batch["action"].float()
        if self.num_updates % RESTART_EVERY == 0:
            self.quantizer.restart_dead_codes(features, action)
        loss, metrics = self.quantizer.loss(features, action, self.config.commitment)
        self.vq_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.vq_opt.step()
        return metrics


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> SAQ:
    """The builder named by ``conf/algo/saq.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = image_augment(int(params.pop("augment_pad", 0)))
    return SAQ(obs_specs, action_dim, SAQConfig(**params), augment=augment, seed=seed)
