"""TD-MPC2 (Hansen, Su and Wang, 2024, "TD-MPC2: Scalable, Robust World Models for Continuous
Control"): a decoder-free latent world model, planned through with MPPI.

The model, all on a latent z = enc(s) with SimNorm (groups of ``simnorm_dim`` softmaxed):
- dynamics z' = d(z, a), reward r(z, a) and ``num_q`` action values Q(z, a), the last two as
  classifiers over ``num_bins`` bins in symlog space (two-hot targets, cross-entropy);
- a policy prior pi(z), a tanh-Gaussian that maximises Q plus a little entropy, with Q divided
  by a running scale (its 5-95% percentile range) so one coefficient serves every task.
Training rolls the model out ``horizon`` steps from the first state of a run of consecutive
transitions (``sequence_length``; the replay samples such runs), each step weighted ``rho**t``:
latent consistency with the encoded next state, reward, and TD targets r + gamma Q_target(z',
pi(z')) from the smaller of two random target Qs (the policy's loss: their mean). Acting is
MPPI: ``num_pi_trajs`` rollouts of the prior plus ``num_samples`` Gaussian action sequences,
``iterations`` rounds of refitting the Gaussian to the ``num_elites`` best by return over the
horizon plus the terminal value.

The exported policy plans: the same MPPI, unrolled, with its noise drawn once from a fixed
generator (buffers), taking the first action of the best elite; ``act(deterministic=True)`` is
exactly that graph. Exploring (``deterministic=False``) draws fresh noise, picks an elite by
its MPPI weight and adds the final std's noise, as the paper. What we leave out: the plan is not
warm-started from the previous step's (the agent interface does not see episode starts), and
the discount is a setting, not derived from the episode length.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.algos.augment import image_augment
from robot_rl.algos.base import Augment, EncodedAgent, check_update_dtype
from robot_rl.algos.networks import ObsSpec, evaluating, frozen, soft_update

NOISE_SEED = 0  # the exported plan's noise: one fixed draw, whatever the agent's seed
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


@dataclass
class TDMPC2Config:
    latent_dim: int = 128
    hidden_dim: int = 256
    encoder_dim: int = 256
    num_q: int = 5
    dropout: float = 0.01  # on the Q-functions' first layer
    simnorm_dim: int = 8
    num_bins: int = 101
    vmin: float = -10.0  # the bins' range, in symlog space
    vmax: float = 10.0
    lr: float = 3e-4
    encoder_lr_scale: float = 0.3
    grad_clip_norm: float = 20.0
    horizon: int = 3
    rho: float = 0.5  # weight of rollout step t: rho**t
    consistency_coef: float = 20.0
    reward_coef: float = 0.1
    value_coef: float = 0.1
    entropy_coef: float = 1e-4
    tau: float = 0.01
    gamma: float = 0.99
    iterations: int = 6
    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 24
    min_std: float = 0.05
    max_std: float = 2.0
    temperature: float = 0.5
    feature_dim: int = 50
    trunk: str = "drq"  # pixel trunk: drq | keypoints (networks.TRUNKS)
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (see base.UPDATE_DTYPES)

    def __post_init__(self) -> None:
        check_update_dtype(self.update_dtype)
        if self.num_elites > self.num_samples + self.num_pi_trajs:
            raise ValueError("num_elites must not exceed num_samples + num_pi_trajs.")
        if self.latent_dim % self.simnorm_dim:
            raise ValueError("latent_dim must be a multiple of simnorm_dim.")


class SimNorm(nn.Module):
    """Softmax over groups of ``dim`` latent entries: the latent lives on a product of simplices."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return x.unflatten(-1, (-1, self.dim)).softmax(dim=-1).reshape(shape)


def mish_mlp(in_dim: int, hidden_dim: int, out_dim: int, depth: int, dropout: float = 0.0,
             out: nn.Module | None = None) -> nn.Sequential:
    """TD-MPC2's MLP: Linear (+ dropout on the first) + LayerNorm + Mish per hidden layer."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim))
        if dropout and i == 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.LayerNorm(hidden_dim), nn.Mish()]
    layers.append(nn.Linear(hidden_dim if depth else in_dim, out_dim))
    if out is not None:
        layers.append(out)
    return nn.Sequential(*layers)


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot(nn.Module):
    """Scalars as distributions over bins in symlog space: targets, decoding, cross-entropy."""

    def __init__(self, num_bins: int, vmin: float, vmax: float) -> None:
        super().__init__()
        self.register_buffer("bins", torch.linspace(vmin, vmax, num_bins), persistent=False)
        self.vmin, self.bin_size = vmin, (vmax - vmin) / (num_bins - 1)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        position = (symlog(x).clamp(self.vmin, float(self.bins[-1])) - self.vmin) / self.bin_size
        index = position.floor().long().clamp(max=len(self.bins) - 2)
        offset = (position - index).unsqueeze(-1)
        soft = torch.zeros(*x.shape, len(self.bins), device=x.device)
        soft.scatter_(-1, index.unsqueeze(-1), 1 - offset)
        return soft.scatter_(-1, index.unsqueeze(-1) + 1, offset)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        return symexp((logits.float().softmax(dim=-1) * self.bins).sum(-1))

    def loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``logits`` (..., bins) against the two-hot of ``x`` (...)."""
        return -(self.target(x) * F.log_softmax(logits.float(), dim=-1)).sum(-1)


class RunningScale(nn.Module):
    """An EMA of the 5-95% percentile range of Q, at least 1: the policy loss's scale."""

    def __init__(self, tau: float) -> None:
        super().__init__()
        self.tau = tau
        self.register_buffer("value", torch.ones(()))

    @torch.no_grad()
    def update(self, q: torch.Tensor) -> None:
        low, high = torch.quantile(q.float().flatten(), torch.tensor([0.05, 0.95], device=q.device))
        self.value.lerp_(high - low, self.tau)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return q / self.value.clamp(min=1.0)


class WorldModel(nn.Module):
    """Encoder, dynamics, reward, policy prior and the Q ensemble of one TD-MPC2 agent."""

    def __init__(self, in_dim: int, action_dim: int, c: TDMPC2Config) -> None:
        super().__init__()
        latent, joint = c.latent_dim, c.latent_dim + action_dim
        self.action_dim = action_dim
        self.encoder = mish_mlp(in_dim, c.encoder_dim, latent, 1, out=SimNorm(c.simnorm_dim))
        self.dynamics = mish_mlp(joint, c.hidden_dim, latent, 2, out=SimNorm(c.simnorm_dim))
        self.reward = mish_mlp(joint, c.hidden_dim, c.num_bins, 2)
        self.pi = mish_mlp(latent, c.hidden_dim, 2 * action_dim, 2)
        self.qs = nn.ModuleList([mish_mlp(joint, c.hidden_dim, c.num_bins, 2, c.dropout) for _ in range(c.num_q)])
        for head in [self.reward, *self.qs]:  # zero-initialised: every value starts at 0
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)
        self.two_hot = TwoHot(c.num_bins, c.vmin, c.vmax)

    def next(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.dynamics(torch.cat([z, action], dim=-1))

    def reward_logits(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.reward(torch.cat([z, action], dim=-1))

    def q_logits(self, z: torch.Tensor, action: torch.Tensor, qs: nn.ModuleList | None = None) -> torch.Tensor:
        """Every Q-function's logits, (num_q, ..., bins)."""
        x = torch.cat([z, action], dim=-1)
        return torch.stack([q(x) for q in (self.qs if qs is None else qs)])

    def q_pair(self, z: torch.Tensor, action: torch.Tensor, qs: nn.ModuleList | None = None,
               pick: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The values of two of the Q-functions (``pick``; the first two when None)."""
        qs = self.qs if qs is None else qs
        first, second = (0, 1) if pick is None else (int(pick[0]), int(pick[1]))
        x = torch.cat([z, action], dim=-1)
        return self.two_hot.decode(qs[first](x)), self.two_hot.decode(qs[second](x))

    def policy(self, z: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A tanh-Gaussian action from ``noise`` (its mean when None) and its log-probability."""
        mu, log_std = self.pi(z).float().chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        if noise is None:
            return torch.tanh(mu), torch.zeros(z.shape[:-1], device=z.device)
        pre = mu + noise * log_std.exp()
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        action = torch.tanh(pre)
        return action, log_prob - torch.log1p(-action.pow(2) + 1e-6).sum(-1)


class MPPIPlanner(nn.Module):
    """MPPI through the world model; ``mean_action`` plans with the fixed noise (the export)."""

    SELECTS_AMONG_CANDIDATES = True  # the export check allows a near-tie to go another way in a few rows

    def __init__(self, model: WorldModel, c: TDMPC2Config) -> None:
        super().__init__()
        self.model, self.c = model, c
        generator = torch.Generator().manual_seed(NOISE_SEED)
        a = model.action_dim
        self.register_buffer("pi_noise", torch.randn(c.horizon, c.num_pi_trajs, a, generator=generator), persistent=False)
        self.register_buffer("sample_noise", torch.randn(c.iterations, c.num_samples, c.horizon, a, generator=generator),
                             persistent=False)

    def value(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Discounted model return of action sequences (n, H, A) from latents z (n, L), plus the
        mean of two Qs at the end under the prior's mean action."""
        ret, discount = torch.zeros(z.shape[0], device=z.device), 1.0
        for t in range(actions.shape[1]):
            ret = ret + discount * self.model.two_hot.decode(self.model.reward_logits(z, actions[:, t]))
            z = self.model.next(z, actions[:, t])
            discount *= self.c.gamma
        q1, q2 = self.model.q_pair(z, self.model.policy(z, None)[0])
        return ret + discount * (q1 + q2) / 2

    def plan(self, features: torch.Tensor, pi_noise: torch.Tensor, sample_noise: torch.Tensor):
        """Elite action sequences (B, K, H, A), their MPPI weights (B, K) and the final std (B, H, A)."""
        c, model = self.c, self.model
        z = model.encoder(features)
        batch, latent, action_dim = z.shape[0], z.shape[-1], model.action_dim
        p, n, h = c.num_pi_trajs, c.num_samples, c.horizon
        zp, prior = z.unsqueeze(1).expand(batch, p, latent).reshape(batch * p, latent), []
        for t in range(h):  # the policy prior's own rollouts
            noise = pi_noise[t].unsqueeze(0).expand(batch, p, action_dim).reshape(batch * p, action_dim)
            action = model.policy(zp, noise)[0]
            prior.append(action)
            zp = model.next(zp, action)
        prior_actions = torch.stack(prior, dim=1).view(batch, p, h, action_dim)
        zs = z.unsqueeze(1).expand(batch, p + n, latent).reshape(batch * (p + n), latent)
        mean = torch.zeros(batch, h, action_dim, device=z.device)
        std = torch.full_like(mean, c.max_std)
        for i in range(c.iterations):
            sampled = (mean.unsqueeze(1) + std.unsqueeze(1) * sample_noise[i].unsqueeze(0)).clamp(-1, 1)
            actions = torch.cat([prior_actions, sampled], dim=1)  # (B, P+N, H, A)
            value = self.value(zs, actions.reshape(batch * (p + n), h, action_dim)).view(batch, p + n)
            value = torch.nan_to_num(value)
            elite_value, index = value.topk(c.num_elites, dim=1)
            elites = actions.gather(1, index[:, :, None, None].expand(batch, c.num_elites, h, action_dim))
            score = (c.temperature * (elite_value - elite_value.max(dim=1, keepdim=True).values)).exp()
            score = score / score.sum(dim=1, keepdim=True)
            weights = score[:, :, None, None]
            mean = (weights * elites).sum(dim=1)
            std = ((weights * (elites - mean.unsqueeze(1)).pow(2)).sum(dim=1)).sqrt().clamp(c.min_std, c.max_std)
        return elites, score, std

    def mean_action(self, features: torch.Tensor) -> torch.Tensor:
        elites, score, _ = self.plan(features, self.pi_noise, self.sample_noise)
        best = score.argmax(dim=1)[:, None, None, None].expand(-1, 1, elites.shape[2], elites.shape[3])
        return elites.gather(1, best)[:, 0, 0]


class TDMPC2(EncodedAgent):
    """TD-MPC2 for dict observations (state, or pixels through the shared encoder's trunk)."""

    PARTS = ("encoder", "model", "q_target", "scale", "opt", "pi_opt")
    POLICY_HEAD = "planner"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: TDMPC2Config | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or TDMPC2Config()
        super().__init__(obs_specs, config, augment, seed)
        self.model = WorldModel(self.encoder.out_dim, action_dim, config)
        self.q_target = copy.deepcopy(self.model.qs)
        self.scale = RunningScale(config.tau)
        self.planner = MPPIPlanner(self.model, config)
        self.sequence_length = config.horizon
        m, lr = self.model, config.lr
        self.opt = torch.optim.Adam([
            {"params": [*self.encoder.parameters(), *m.encoder.parameters()], "lr": lr * config.encoder_lr_scale},
            {"params": [*m.dynamics.parameters(), *m.reward.parameters(), *m.qs.parameters()]}], lr=lr)
        self.pi_opt = torch.optim.Adam(m.pi.parameters(), lr=lr, eps=1e-5)

    # --- acting ------------------------------------------------------------------------------
    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        with evaluating(self.model):  # no dropout while planning
            if deterministic:
                return self.planner.mean_action(features)
            elites, score, std = self.planner.plan(features, torch.randn_like(self.planner.pi_noise),
                                                   torch.randn_like(self.planner.sample_noise))
        pick = torch.multinomial(score, 1)[:, :, None, None].expand(-1, 1, elites.shape[2], elites.shape[3])
        first = elites.gather(1, pick)[:, 0, 0]
        return (first + std[:, 0] * torch.randn_like(first)).clamp(-1, 1)

    # --- learning ----------------------------------------------------------------------------
    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        """One step on runs of ``horizon`` transitions: ``obs`` {key: (H, B, ...)}, ``action`` (H, B, A), ..."""
        with self.precision():
            metrics, latents = self.update_model(batch)
            if update_actor:
                metrics.update(self.update_pi(latents))
        soft_update(self.q_target, self.model.qs, self.config.tau)
        self.num_updates += 1
        return metrics

    def update_model(self, batch: dict) -> tuple[dict[str, float], torch.Tensor]:
        c, m = self.config, self.model
        action, reward, done = batch["action"].float(), batch["reward"].float(), batch["done"].float()
        h, b = action.shape[:2]
        with torch.no_grad():
            next_obs = {k: v.flatten(0, 1) for k, v in batch["next_obs"].items()}
            next_z = m.encoder(self.encode(next_obs)).view(h, b, -1)
            pick = torch.randperm(c.num_q, device=action.device)[:2]
            q1, q2 = m.q_pair(next_z, m.policy(next_z, torch.randn_like(action))[0], self.q_target, pick)
            td_target = reward + c.gamma * (1 - done) * torch.minimum(q1, q2)
        z = m.encoder(self.encode({k: v[0] for k, v in batch["obs"].items()}))
        latents, consistency = [z], 0.0
        for t in range(h):
            z = m.next(z, action[t])
            consistency = consistency + c.rho**t * F.mse_loss(z.float(), next_z[t].float())
            latents.append(z)
        zs = torch.stack(latents[:-1])  # (H, B, L): the latents the actions were taken from
        weights = c.rho ** torch.arange(h, device=action.device, dtype=torch.float32)
        reward_loss = (m.two_hot.loss(m.reward_logits(zs, action), reward).mean(1) * weights).sum()
        value_loss = (m.two_hot.loss(m.q_logits(zs, action), td_target.unsqueeze(0)).mean(2) * weights).sum(1).mean()
        loss = (c.consistency_coef * consistency + c.reward_coef * reward_loss + c.value_coef * value_loss) / h
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]],
                                                   c.grad_clip_norm)
        self.opt.step()
        metrics = {"losses/consistency": float(consistency.detach()) / h, "losses/reward": reward_loss.item() / h,
                   "losses/value": value_loss.item() / h, "losses/model_grad_norm": grad_norm.item()}
        return metrics, torch.stack(latents).detach()

    def update_pi(self, latents: torch.Tensor) -> dict[str, float]:
        c, m = self.config, self.model
        action, log_prob = m.policy(latents, torch.randn(*latents.shape[:-1], m.action_dim, device=latents.device))
        with frozen(m.qs):
            q1, q2 = m.q_pair(latents, action, pick=torch.randperm(c.num_q)[:2])
        q = (q1 + q2) / 2
        self.scale.update(q[0].detach())
        weights = c.rho ** torch.arange(len(latents), device=latents.device, dtype=torch.float32)
        loss = ((c.entropy_coef * log_prob - self.scale(q)).mean(1) * weights).mean()
        self.pi_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.pi.parameters(), c.grad_clip_norm)
        self.pi_opt.step()
        return {"losses/pi": loss.item(), "losses/pi_q": q.mean().item(), "losses/pi_scale": self.scale.value.item()}


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> TDMPC2:
    """The builder named by ``conf/algo/tdmpc2.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = image_augment(int(params.pop("augment_pad", 0)))
    return TDMPC2(obs_specs, action_dim, TDMPC2Config(**params), augment=augment, seed=seed)
