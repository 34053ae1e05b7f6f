"""CQN-AS (Seo et al., 2024, "Reinforcement Learning with Action Sequence for Data-Efficient
Robot Learning"), on CQN (Seo et al., 2024, "Continuous Control with Coarse-to-fine
Reinforcement Learning"): value-based RL for continuous actions, with a critic over sequences.

Coarse to fine: each action dimension's range [-1, 1] is split into ``bins`` intervals; the
critic picks one, that interval is split again, ``levels`` times, and the action is the centre
of the last interval (5 bins x 3 levels: 125 values per dimension from 15 outputs). At every
level the critic sees the state's features, the level (one-hot) and the previous level's
action, and gives each dimension's bins a value (decoupled per dimension, dueling: V + A -
mean A), so the greedy action is an argmax per dimension and level.

Action sequences: the critic scores the next ``sequence_length`` actions at once. A GRU runs
over the sequence's positions (each position's input: features, level, that position's
coarser action), and every position's and dimension's head learns the same target, the
``sequence_length``-step return plus the discounted value of the state after the sequence
(its greedy sequence's value under the target critic, picked by the online one). The replay
samples runs of consecutive transitions for it (``sequence_length``). Acting takes the greedy
sequence's first action (receding horizon), plus Gaussian noise while exploring.

With demonstrations (``demos=``), a margin loss on the demonstration rows (as CQN) makes the
demonstrated bins the best by ``margin`` at every level. Left out from the papers: the
distributional (C51) critic; this critic regresses the return (Huber).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.algos.augment import image_augment
from robot_rl.algos.base import Augment, EncodedAgent, check_update_dtype
from robot_rl.algos.networks import ObsSpec, adam, soft_update


@dataclass
class CQNASConfig:
    levels: int = 3
    bins: int = 5
    sequence_length: int = 4  # actions the critic scores at once
    hidden_dim: int = 256
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.01
    explore_std: float = 0.1  # Gaussian noise on the executed action while collecting
    margin: float = 0.01  # demonstrations' bins win by this much (the margin loss)
    bc_weight: float = 1.0
    feature_dim: int = 50
    trunk: str = "drq"  # pixel trunk: drq | keypoints (networks.TRUNKS)
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (see base.UPDATE_DTYPES)

    def __post_init__(self) -> None:
        check_update_dtype(self.update_dtype)
        if self.levels < 1 or self.bins < 2 or self.sequence_length < 1:
            raise ValueError("levels must be at least 1, bins at least 2 and sequence_length at least 1.")


class SequenceCritic(nn.Module):
    """Q-values (B, K, D, bins) of one level for sequences of K actions of D dimensions."""

    def __init__(self, in_dim: int, action_dim: int, c: CQNASConfig) -> None:
        super().__init__()
        self.levels, self.bins, self.action_dim = c.levels, c.bins, action_dim
        self.embed = nn.Sequential(nn.Linear(in_dim + c.levels + action_dim, c.hidden_dim), nn.LayerNorm(c.hidden_dim),
                                   nn.SiLU())
        self.gru = nn.GRU(c.hidden_dim, c.hidden_dim, batch_first=True)
        self.head = nn.Sequential(nn.Linear(c.hidden_dim, c.hidden_dim), nn.LayerNorm(c.hidden_dim), nn.SiLU(),
                                  nn.Linear(c.hidden_dim, action_dim * (c.bins + 1)))

    def forward(self, features: torch.Tensor, level: int, coarser: torch.Tensor) -> torch.Tensor:
        batch, length = coarser.shape[:2]
        one_hot = torch.zeros(batch, length, self.levels, device=coarser.device, dtype=coarser.dtype)
        one_hot[..., level] = 1.0
        x = torch.cat([features.unsqueeze(1).expand(batch, length, features.shape[-1]), one_hot, coarser], dim=-1)
        hidden, _ = self.gru(self.embed(x))
        out = self.head(hidden).float().view(batch, length, self.action_dim, self.bins + 1)
        value, advantage = out[..., :1], out[..., 1:]
        return value + advantage - advantage.mean(dim=-1, keepdim=True)


def zoom(low: torch.Tensor, high: torch.Tensor, chosen: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``chosen`` bin of each [low, high) interval."""
    width = (high - low) / bins
    low = low + chosen * width
    return low, low + width


class GreedySequence(nn.Module):
    """Coarse-to-fine greedy decoding: the best sequence (B, K, D) and, as the policy, its first action."""

    SELECTS_AMONG_CANDIDATES = True  # argmax per level: the export check allows a near-tie to go another way

    def __init__(self, critic: SequenceCritic, sequence_length: int) -> None:
        super().__init__()
        self.critic, self.sequence_length = critic, sequence_length

    def sequence(self, features: torch.Tensor) -> torch.Tensor:
        c = self.critic
        shape = (features.shape[0], self.sequence_length, c.action_dim)
        low = torch.full(shape, -1.0, device=features.device)
        high = torch.ones_like(low)
        for level in range(c.levels):
            chosen = c(features, level, (low + high) / 2).argmax(dim=-1)
            low, high = zoom(low, high, chosen, c.bins)
        return (low + high) / 2

    def mean_action(self, features: torch.Tensor) -> torch.Tensor:
        return self.sequence(features)[:, 0]


class CQNAS(EncodedAgent):
    """CQN-AS for dict observations; the critic trains the encoder."""

    PARTS = ("encoder", "critic", "critic_target", "opt")
    POLICY_HEAD = "greedy"

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, config: CQNASConfig | None = None,
                 augment: Augment | None = None, seed: int = 0) -> None:
        config = config or CQNASConfig()
        super().__init__(obs_specs, config, augment, seed)
        self.critic = SequenceCritic(self.encoder.out_dim, action_dim, config)
        self.critic_target = copy.deepcopy(self.critic)
        self.greedy = GreedySequence(self.critic, config.sequence_length)
        self.opt = adam([*self.critic.parameters(), *self.encoder.parameters()], config.lr)
        self.sequence_length = config.sequence_length  # the replay samples runs of this many transitions

    def action(self, features: torch.Tensor, deterministic: bool) -> torch.Tensor:
        action = self.greedy.mean_action(features)
        if deterministic:
            return action
        return (action + self.config.explore_std * torch.randn_like(action)).clamp(-1, 1)

    def encode_actions(self, actions: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each level's coarser action (the critic's input) and bin (its target) for data sequences (B, K, D)."""
        c = self.config
        low, high = -torch.ones_like(actions), torch.ones_like(actions)
        coarser, chosen = [], []
        for _ in range(c.levels):
            coarser.append((low + high) / 2)
            bin_ = ((actions - low) / (high - low) * c.bins).floor().long().clamp(0, c.bins - 1)
            chosen.append(bin_)
            low, high = zoom(low, high, bin_, c.bins)
        return coarser, chosen

    def update(self, batch: dict, update_actor: bool = True) -> dict[str, float]:
        """One step on runs of ``sequence_length`` transitions: ``obs`` {key: (K, B, ...)}, ``action`` (K, B, A), ..."""
        with self.precision():
            return self._update(batch)

    def _update(self, batch: dict) -> dict[str, float]:
        c = self.config
        actions = batch["action"].float().transpose(0, 1).clamp(-1, 1)  # (B, K, D)
        reward, done = batch["reward"].float(), batch["done"][-1].float()
        features = self.encode({k: v[0] for k, v in batch["obs"].items()})
        with torch.no_grad():
            next_features = self.encode({k: v[-1] for k, v in batch["next_obs"].items()})
            greedy = self.greedy.sequence(next_features)  # picked by the online critic, valued by the target
            coarser, chosen = self.encode_actions(greedy)
            value = self.critic_target(next_features, c.levels - 1, coarser[-1]).gather(-1, chosen[-1][..., None])
            discounts = c.gamma ** torch.arange(len(reward), device=reward.device, dtype=torch.float32)
            target = (discounts[:, None] * reward).sum(0) + c.gamma ** len(reward) * (1 - done) * value.mean(dim=(1, 2, 3))
        coarser, chosen = self.encode_actions(actions)
        td_loss, margin_loss = 0.0, 0.0
        demo = batch.get("demo")
        for level in range(c.levels):
            q = self.critic(features, level, coarser[level])  # (B, K, D, bins)
            taken = q.gather(-1, chosen[level][..., None]).squeeze(-1)  # (B, K, D)
            td_loss = td_loss + F.huber_loss(taken, target[:, None, None].expand_as(taken))
            if demo is not None and bool(demo.any()) and c.bc_weight > 0:
                margins = torch.full_like(q, c.margin).scatter(-1, chosen[level][..., None], 0.0)
                gap = (q + margins).max(dim=-1).values - taken
                margin_loss = margin_loss + gap[demo.bool()].mean()
        loss = (td_loss + c.bc_weight * margin_loss) / c.levels
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        soft_update(self.critic_target, self.critic, c.tau)
        self.num_updates += 1
        metrics = {"losses/critic": td_loss.item() / c.levels, "losses/target_mean": target.mean().item()}
        if isinstance(margin_loss, torch.Tensor):
            metrics["losses/margin"] = margin_loss.item() / c.levels
        return metrics


def build(obs_specs: dict[str, ObsSpec], action_dim: int, params: dict, seed: int = 0) -> CQNAS:
    """The builder named by ``conf/algo/cqn_as.yaml``; ``augment_pad > 0`` shifts images as DrQ."""
    augment = image_augment(int(params.pop("augment_pad", 0)))
    return CQNAS(obs_specs, action_dim, CQNASConfig(**params), augment=augment, seed=seed)
