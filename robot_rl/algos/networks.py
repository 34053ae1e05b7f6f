"""Building blocks shared by every algorithm: observation encoder, MLPs, actor, critic ensemble.

Observations are dicts keyed by the data keys of ``robot_rl.contracts``. The encoder takes
them **raw** (float state vectors as the env gives them, uint8 HWC images) and normalises
inside the network, so an exported policy needs no preprocessing: state keys by a frozen
``(x - mean) / std`` whose statistics are fitted once from data, images by ``x / 255 - 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.contracts import OBS_INSTRUCTION

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


UNNORMALIZED_KEYS = (OBS_INSTRUCTION,)


def is_image_key(key: str) -> bool:
    return key.startswith("obs/images/")


@dataclass(frozen=True)
class ObsSpec:
    """Shape and dtype of one observation key, the part of the env contract networks need."""

    shape: tuple[int, ...]
    dtype: str


def mlp(in_dim: int, hidden_dim: int, out_dim: int, depth: int = 2, layer_norm: bool = False) -> nn.Sequential:
    """``depth`` hidden layers of ``hidden_dim`` (optionally LayerNorm'd, as RLPD critics) then a linear head."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim))
        if layer_norm:
            layers.append(nn.LayerNorm(hidden_dim))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(hidden_dim if depth else in_dim, out_dim))
    return nn.Sequential(*layers)


class StateNormalizer(nn.Module):
    """A frozen per-key ``(x - mean) / std``; identity until ``fit`` is called."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, values: np.ndarray, min_std: float = 1e-2) -> None:
        self.mean.copy_(torch.as_tensor(values.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(values.std(0), min_std), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).clamp(-10.0, 10.0)


class PixelEncoder(nn.Module):
    """The DrQ / DrQ-v2 conv trunk: four 3x3 convs, 32 channels, first with stride 2."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )
        with torch.no_grad():
            self.out_dim = int(self.convs(torch.zeros(1, in_channels, image_size, image_size)).numel())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` float (B, C, H, W) already scaled to [-0.5, 0.5]."""
        return self.convs(images).flatten(1)


class ObsEncoder(nn.Module):
    """Raw observation dict -> one feature vector: normalised state keys, plus conv features.

    Image keys are stacked along channels into one conv trunk (front and wrist share it), then
    a Linear+LayerNorm+tanh projection as in DrQ-v2's actor and critic heads.
    """

    def __init__(self, obs_specs: dict[str, ObsSpec], feature_dim: int = 50) -> None:
        super().__init__()
        self.keys = list(obs_specs)
        self.state_keys = [k for k in self.keys if not is_image_key(k)]
        self.image_keys = [k for k in self.keys if is_image_key(k)]
        self.normalizers = nn.ModuleList([StateNormalizer(int(np.prod(obs_specs[k].shape))) for k in self.state_keys])
        self.state_dim = sum(int(np.prod(obs_specs[k].shape)) for k in self.state_keys)
        self.pixels: PixelEncoder | None = None
        self.out_dim = self.state_dim
        if self.image_keys:
            height = obs_specs[self.image_keys[0]].shape[0]
            self.pixels = PixelEncoder(3 * len(self.image_keys), height)
            self.project = nn.Sequential(nn.Linear(self.pixels.out_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
            self.out_dim += feature_dim

    def image_tensor(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 (B, H, W, 3) per camera -> float (B, 3*cams, H, W) in [-0.5, 0.5]."""
        images = torch.cat([obs[k].permute(0, 3, 1, 2) for k in self.image_keys], dim=1)
        return images.float() / 255.0 - 0.5

    def state_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [norm(obs[k].float().flatten(1)) for k, norm in zip(self.state_keys, self.normalizers)]
        return torch.cat(parts, dim=-1)

    def forward(self, obs: dict[str, torch.Tensor], images: torch.Tensor | None = None,
                detach_pixels: bool = False) -> torch.Tensor:
        """Features of ``obs``; ``images`` overrides the image tensor (e.g. augmented ones)."""
        parts = [self.state_features(obs)] if self.state_keys else []
        if self.pixels is not None:
            images = self.image_tensor(obs) if images is None else images
            conv = self.pixels(images)
            parts.append(self.project(conv.detach() if detach_pixels else conv))
        return torch.cat(parts, dim=-1)

    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        """Freeze each state key's mean/std from a batch of raw observations. The instruction
        embedding stays as the encoder made it (unit length): standardising it on the few
        instructions of the training data would blow up the directions they happen not to vary in."""
        for key, norm in zip(self.state_keys, self.normalizers):
            if key in UNNORMALIZED_KEYS:
                continue
            norm.fit(values[key].reshape(len(values[key]), -1).astype(np.float64))

    def normalization(self) -> dict[str, dict[str, list[float]]]:
        """Per state key ``{"mean": [...], "std": [...]}``, for the policy artifact."""
        return {k: {"mean": n.mean.tolist(), "std": n.std.tolist()} for k, n in zip(self.state_keys, self.normalizers)}


class TanhGaussianActor(nn.Module):
    """A Gaussian over pre-tanh actions; ``forward`` samples, ``mean_action`` is deterministic."""

    def __init__(self, in_dim: int, action_dim: int, hidden_dim: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, 2 * action_dim, depth)

    def distribution(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.net(features).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mu, log_std

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample in [-1, 1] and its log-probability (tanh-corrected)."""
        mu, log_std = self.distribution(features)
        std = log_std.exp()
        pre_tanh = mu + std * torch.randn_like(mu)
        action = torch.tanh(pre_tanh)
        log_prob = (-0.5 * ((pre_tanh - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob

    def log_prob(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-density of a given action in [-1, 1] (for IQL's advantage-weighted regression)."""
        mu, log_std = self.distribution(features)
        action = action.clamp(-1 + 1e-3, 1 - 1e-3)  # demos often hit the bounds (gripper)
        pre_tanh = torch.atanh(action)
        log_prob = (-0.5 * ((pre_tanh - mu) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_prob - torch.log1p(-action.pow(2) + 1e-6).sum(-1)

    def mean_action(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.distribution(features)[0])


class EnsembleLinear(nn.Module):
    """``n`` independent linear layers applied in one batched matmul: x (n, B, in) -> (n, B, out)."""

    def __init__(self, n: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    """``n`` Q-functions Q(s, a), LayerNorm'd (RLPD), evaluated together: returns (n, B)."""

    def __init__(self, in_dim: int, n: int = 2, hidden_dim: int = 256, depth: int = 2, layer_norm: bool = True) -> None:
        super().__init__()
        self.n = n
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(EnsembleLinear(n, in_dim if i == 0 else hidden_dim, hidden_dim))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden_dim))
            layers.append(nn.ReLU())
        layers.append(EnsembleLinear(n, hidden_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        x = features if action is None else torch.cat([features, action], dim=-1)
        return self.net(x.unsqueeze(0).expand(self.n, *x.shape)).squeeze(-1)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source``."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)


def to_torch(obs: dict[str, np.ndarray], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Numpy observation dict -> tensors (uint8 images stay uint8; they are scaled in the net)."""
    return {k: torch.as_tensor(np.asarray(v), device=device) for k, v in obs.items()}


class DeterministicPolicy(nn.Module):
    """What gets exported: raw observations (one tensor per key, in ``keys`` order) -> action.

    ``forward(*tensors)`` takes positional inputs so TorchScript and ONNX see one named input
    per observation key; the output is the deterministic, tanh-squashed action in [-1, 1].
    """

    def __init__(self, keys: list[str], encoder: ObsEncoder, head: nn.Module) -> None:
        super().__init__()
        self.keys, self.encoder, self.head = list(keys), encoder, head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs = dict(zip(self.keys, inputs))
        features = self.encoder(obs)
        if isinstance(self.head, TanhGaussianActor):
            return self.head.mean_action(features)
        return torch.tanh(self.head(features))
