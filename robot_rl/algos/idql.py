"""IDQL (Hansen-Estruch et al., 2023, "IDQL: Implicit Q-Learning as an Actor-Critic Method with
Diffusion Policies"), offline from a Zarr store.

The critic is IQL's, unchanged (``iql.py``: expectile value, TD critic). The actor is not
trained by the critic at all: it is a diffusion model of the *behaviour* policy (DDPM with a
few denoising steps and the variance-preserving schedule of the paper), fitted to the data's
actions with the plain denoising loss. The critic acts only at decision time: draw
``num_samples`` candidate actions from the behaviour model, then
- deterministic (evaluation, export): the candidate with the highest Q;
- stochastic: a candidate drawn with IDQL's implicit-policy weights for an expectile value,
  ``|tau - 1(Q < V)| / |Q - V|``.
So the policy never leaves the data's support, and multi-modal behaviour (two ways to grasp)
stays multi-modal instead of being averaged.

The exported policy is the deterministic selection, unrolled: its candidates start from noise
drawn once from a fixed generator (a buffer), so ONNX, TorchScript and ``act`` agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.algos.augment import image_augment
from robot_rl.algos.iql import IQL, IQLConfig
from robot_rl.algos.networks import CriticEnsemble, ObsSpec, evaluating

NOISE_SEED = 0  # the exported candidates' noise: one fixed draw, whatever the agent's seed


@dataclass
class IDQLConfig(IQLConfig):
    diffusion_steps: int = 5  # denoising steps (the paper's T = 5)
    num_samples: int = 32  # candidate actions per decision
    diffusion_hidden_dim: int = 256
    diffusion_blocks: int = 3  # LN-ResNet blocks of the noise predictor
    diffusion_dropout: float = 0.1
    time_dim: int = 16  # sinusoidal embedding of the denoising step

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.diffusion_steps < 1 or self.num_samples < 1:
            raise ValueError("diffusion_steps and num_samples must be at least 1.")


def vp_betas(steps: int) -> torch.Tensor:
    """The variance-preserving noise schedule IDQL uses (beta_min 0.1, beta_max 10)."""
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    b_min, b_max = 0.1, 10.0
    alpha = torch.exp(-b_min / steps - 0.5 * (b_max - b_min) * (2 * t - 1) / steps**2)
    return (1 - alpha).float()


class ResidualBlock(nn.Module):
    """IDQL's LN-ResNet block: x + W2 mish(W1 LN(dropout(x))), the inner layer 4x wider."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.Mish(),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def residual_mlp(in_dim: int, hidden_dim: int, out_dim: int, blocks: int, dropout: float) -> nn.Sequential:
    """The noise predictor the paper found matters: a linear stem, ``blocks`` LN-ResNet blocks, mish, a head."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), *[ResidualBlock(hidden_dim, dropout) for _ in range(blocks)],
                         nn.Mish(), nn.Linear(hidden_dim, out_dim))


class DiffusionBehaviour(nn.Module):
    """eps_theta(x_t, t | features): a DDPM over actions in [-1, 1] given the state's features."""

    def __init__(self, in_dim: int, action_dim: int, hidden_dim: int, blocks: int, steps: int, time_dim: int,
                 dropout: float) -> None:
        super().__init__()
        self.action_dim, self.steps = action_dim, steps
        self.net = residual_mlp(in_dim + action_dim + time_dim, hidden_dim, action_dim, blocks, dropout)
        betas = vp_betas(steps)
        alphas = 1 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        previous = torch.cat([torch.ones(1), alpha_bars[:-1]])
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alpha_bars", alpha_bars, persistent=False)
        self.register_buffer("posterior_std", (betas * (1 - previous) / (1 - alpha_bars)).sqrt(), persistent=False)
        half = time_dim // 2
        self.register_buffer("frequencies", torch.exp(-math.log(100.0) * torch.arange(half) / max(half - 1, 1)),
                             persistent=False)

    def eps(self, x: torch.Tensor, t: torch.Tensor | int, features: torch.Tensor) -> torch.Tensor:
        """The predicted noise; ``t`` is one step per row (B,) or one step for all rows."""
        if isinstance(t, int):  # decision time: one step for the whole batch (no batch-sized tensor to trace)
            angles = (t * self.frequencies).unsqueeze(0).expand(x.shape[0], -1)
        else:
            angles = t.float().unsqueeze(-1) * self.frequencies
        return self.net(torch.cat([features, x, angles.sin(), angles.cos()], dim=-1))

    def loss(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The denoising loss: predict the noise added to a data action at a random step."""
        t = torch.randint(0, self.steps, (len(action),), device=action.device)
        noise = torch.randn_like(action)
        a_bar = self.alpha_bars[t].unsqueeze(-1)
        noisy = a_bar.sqrt() * action + (1 - a_bar).sqrt() * noise
        return F.mse_loss(self.eps(noisy, t, features), noise)

    def sample(self, features: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoise ``noise[0]`` (B, A) into actions; ``noise[1:]`` are the steps' fresh noise, (T, B, A)."""
        x = noise[0]
        for i, t in enumerate(reversed(range(self.steps))):
            eps = self.eps(x, t, features)
            x = (x - self.betas[t] / (1 - self.alpha_bars[t]).sqrt() * eps) / self.alphas[t].sqrt()
            if t > 0:
                x = x + self.posterior_std[t] * noise[i + 1]
            x = x.clamp(-1.0, 1.0)
        return x


class BestOfSamples(nn.Module):
    """What IDQL exports: the behaviour model's candidates from fixed noise, the best by Q."""

    SELECTS_AMONG_CANDIDATES = True  # the export check allows a near-tie to go another way in a few rows

    def __init__(self, behaviour: DiffusionBehaviour, critic: CriticEnsemble, num_samples: int) -> None:
        super().__init__()
        self.behaviour, self.critic, self.num_samples = behaviour, critic, num_samples
        generator = torch.Generator().manual_seed(NOISE_SEED)
        noise = torch.randn(behaviour.steps + 1, num_samples, behaviour.action_dim, generator=generator)
        self.register_buffer("noise", noise, persistent=False)

    def candidates(self, features: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates (B, N, A) from ``noise`` (T+1, N, A), and their Q (B, N) (the ensemble's minimum)."""
        batch, n = features.shape[0], self.num_samples
        repeated = features.unsqueeze(1).expand(batch, n, features.shape[-1]).reshape(batch * n, -1)
        steps, _, action_dim = noise.shape
        noise = noise.unsqueeze(1).expand(steps, batch, n, action_dim).reshape(steps, batch * n, action_dim)
        actions = self.behaviour.sample(repeated, noise)
        q = self.critic(repeated, actions).min(dim=0).values
        return actions.view(batch, n, action_dim), q.view(batch, n)

    def mean_action(self, features: torch.Tensor) -> torch.Tensor:
        actions, q = self.candidates(features, self.noise)
        best = q.argmax(dim=1).view(-1, 1, 1).expand(-1, 1, actions.shape[-1])
        return actions.gather(1, best).squeeze(1)


class IDQL(IQL):
    """IQL's critic and value; a diffusion behaviour model as the actor; selection by Q at decision time."""

    POLICY_HEAD = "selector"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: IDQLConfig | None = None,
                 augment=None, seed: int = 0) -> None:
        config = config or IDQLConfig()
        super().__init__(obs_specs, action_dim, config, augment, seed)
        self.selector = BestOfSamples(self.actor, self.critic_target, config.num_samples)

    def build_actor(self, dim: int, action_dim: int) -> nn.Module:
        c = self.config
        return DiffusionBehaviour(dim, action_dim, c.diffusion_hidden_dim, c.diffusion_blocks, c.diffusion_steps,
                                  c.time_dim, c.diffusion_dropout)

    def update_actor(self, features: torch.Tensor, action: torch.Tensor) -> dict[str, float]:
        """Behaviour cloning by denoising: every data action counts the same (the critic selects later)."""
        loss = self.actor.loss(features, action.float())
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        return {"losses/diffusion": loss.item()}

    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        with evaluating(self.actor):
            return self.select(features, deterministic)

    def select(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        if deterministic:
            return self.selector.mean_action(features)
        noise = torch.randn_like(self.selector.noise)
        actions, q = self.selector.candidates(features, noise)
        v = self.v(features).unsqueeze(-1)
        expectile = self.config.expectile
        weight = torch.where(q < v, 1 - expectile, expectile) / (q - v).abs().clamp(min=1e-6)
        pick = torch.multinomial(weight, 1).view(-1, 1, 1).expand(-1, 1, actions.shape[-1])
        return actions.gather(1, pick).squeeze(1)


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> IDQL:
    """The builder named by ``conf/algo/idql.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = image_augment(int(params.pop("augment_pad", 0)))
    return IDQL(obs_specs, action_dim, IDQLConfig(**params), augment=augment, seed=seed)
