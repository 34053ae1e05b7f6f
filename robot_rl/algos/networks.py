"""Building blocks shared by every algorithm: observation encoder, MLPs, actor, critic ensemble.

Observations are dicts keyed by the data keys of ``robot_rl.contracts``. The encoder takes
them **raw** (float state vectors as the env gives them, uint8 HWC images) and normalises
inside the network, so an exported policy needs no preprocessing: state keys by a frozen
``(x - mean) / std`` whose statistics are fitted once from data, images by ``x / 255 - 0.5``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_rl.contracts import OBS_INSTRUCTION

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


# Keys normalised by one std for all dimensions (``StateNormalizer.fit(isotropic=True)``): the
# instruction embedding. The training data holds a few instructions; per-dimension standardising
# would blow up the directions they happen not to vary in (and an operator's new words then land
# far off), while leaving it raw keeps the few directions that tell the instructions apart (the
# colour, the task) tiny next to the state. Centring and one scale makes them O(1) and keeps
# the embedding's geometry, so a paraphrase near a training instruction stays near it.
ISOTROPIC_KEYS = (OBS_INSTRUCTION,)


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

    def fit(self, values: np.ndarray, min_std: float = 1e-2, isotropic: bool = False) -> None:
        """Per-dimension mean and std of ``values`` (N, dim); ``isotropic``: one std for every
        dimension (the root mean variance), which keeps the data's geometry (distances, angles)."""
        std = values.std(0)
        if isotropic:
            std = np.full_like(std, np.sqrt(np.mean(std ** 2)))
        self.mean.copy_(torch.as_tensor(values.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(std, min_std), dtype=torch.float32))

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


class SpatialSoftmax(nn.Module):
    """Feature maps (B, K, H, W) -> the expected image coordinates of each map's softmax (B, 2K):
    one keypoint per channel, in [-1, 1] (Levine et al. 2016, "End-to-End Training of Deep
    Visuomotor Policies"; robomimic's default image encoder). Where an object is, not what the
    whole image looks like, which is what a policy that must move to it needs."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=1))  # (H*W, 2)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        attention = torch.softmax(maps.flatten(2) / self.log_temperature.exp(), dim=-1)  # (B, K, H*W)
        return (attention @ self.grid).flatten(1)  # (B, 2K): no shape arithmetic in a traced graph


class KeypointEncoder(nn.Module):
    """One small conv trunk per camera ending in ``keypoints`` spatial-softmax keypoints.

    The cameras see different things (the scene from the front, the gripper's surroundings from
    the wrist), so each has its own trunk; the output is every camera's keypoint coordinates.
    Its size does not grow with the image's (the DrQ trunk's flattened maps do, by the square), so
    a student can see at 64 or 84 px for the cost of the convolutions alone.

    With ``condition_dim`` (the instruction's embedding) the last hidden maps are FiLM-modulated
    by the condition before the keypoints are read (Perez et al. 2018, "FiLM"; as RT-1 conditions
    its image tokens on language): the instruction chooses which features, hence which cube, the
    keypoints follow. The modulation starts as the identity.
    """

    def __init__(self, in_channels: int, image_size: int, keypoints: int = 32, condition_dim: int = 0,
                 channels: int = 32) -> None:
        super().__init__()
        self.cameras = in_channels // 3

        def body() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(3, channels, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

        self.bodies = nn.ModuleList([body() for _ in range(self.cameras)])
        self.heads = nn.ModuleList([nn.Conv2d(channels, keypoints, 1) for _ in range(self.cameras)])
        self.films = nn.ModuleList()
        for _ in range(self.cameras if condition_dim else 0):
            film = nn.Linear(condition_dim, 2 * channels)
            nn.init.zeros_(film.weight)
            nn.init.zeros_(film.bias)
            self.films.append(film)
        side = (image_size + 1) // 2
        self.softmax = nn.ModuleList([SpatialSoftmax(side, side) for _ in range(self.cameras)])
        self.out_dim = 2 * keypoints * self.cameras

    def forward(self, images: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``images`` float (B, 3*cameras, H, W) in [-0.5, 0.5], cameras stacked along channels;
        ``condition`` (B, condition_dim) when the trunk was built with one."""
        out = []
        for i, view in enumerate(images.split(3, dim=1)):
            maps = self.bodies[i](view)
            if len(self.films):
                scale, shift = self.films[i](condition).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
                maps = maps * (1 + scale) + shift
            out.append(self.softmax[i](self.heads[i](maps)))
        return torch.cat(out, dim=-1)


TRUNKS = {"drq": PixelEncoder, "keypoints": KeypointEncoder}


class ObsEncoder(nn.Module):
    """Raw observation dict -> one feature vector: normalised state keys, plus conv features.

    Image keys are stacked along channels into the pixel trunk (``trunk``: ``drq``, one conv trunk
    the cameras share, or ``keypoints``, spatial-softmax keypoints per camera), then a
    Linear+LayerNorm+tanh projection as in DrQ-v2's actor and critic heads.
    """

    def __init__(self, obs_specs: dict[str, ObsSpec], feature_dim: int = 50, trunk: str = "drq") -> None:
        super().__init__()
        if trunk not in TRUNKS:
            raise ValueError(f"trunk {trunk!r} is unknown; expected one of {sorted(TRUNKS)}.")
        self.keys = list(obs_specs)
        self.state_keys = [k for k in self.keys if not is_image_key(k)]
        self.image_keys = [k for k in self.keys if is_image_key(k)]
        self.normalizers = nn.ModuleList([StateNormalizer(int(np.prod(obs_specs[k].shape))) for k in self.state_keys])
        self.state_dim = sum(int(np.prod(obs_specs[k].shape)) for k in self.state_keys)
        self.pixels: PixelEncoder | KeypointEncoder | None = None
        self.condition_key: str | None = None
        self.out_dim = self.state_dim
        if self.image_keys:
            height = obs_specs[self.image_keys[0]].shape[0]
            # a keypoint trunk reads the instruction too (FiLM), when the policy has one
            self.condition_key = OBS_INSTRUCTION if trunk == "keypoints" and OBS_INSTRUCTION in obs_specs else None
            condition = {"condition_dim": int(np.prod(obs_specs[OBS_INSTRUCTION].shape))} if self.condition_key else {}
            self.pixels = TRUNKS[trunk](3 * len(self.image_keys), height, **condition)
            self.project = nn.Sequential(nn.Linear(self.pixels.out_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
            self.out_dim += feature_dim

    def image_tensor(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 (B, H, W, 3) per camera -> float (B, 3*cams, H, W) in [-0.5, 0.5]."""
        images = torch.cat([obs[k].permute(0, 3, 1, 2) for k in self.image_keys], dim=1)
        return images.float() / 255.0 - 0.5

    def state_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [norm(obs[k].float().flatten(1)) for k, norm in zip(self.state_keys, self.normalizers)]
        return torch.cat(parts, dim=-1)

    def conv(self, obs: dict[str, torch.Tensor], images: torch.Tensor | None = None) -> torch.Tensor:
        """The pixel trunk's output (conditioned on the instruction where the trunk is); ``images``
        overrides the image tensor (e.g. augmented ones)."""
        images = self.image_tensor(obs) if images is None else images
        return self.pixels(images, obs[self.condition_key].float()) if self.condition_key else self.pixels(images)

    def image_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The projected image features alone (a frozen perception's output, ``obs/features``)."""
        return self.project(self.conv(obs))

    def forward(self, obs: dict[str, torch.Tensor], images: torch.Tensor | None = None,
                detach_pixels: bool = False) -> torch.Tensor:
        """Features of ``obs``; ``images`` overrides the image tensor (e.g. augmented ones)."""
        parts = [self.state_features(obs)] if self.state_keys else []
        if self.pixels is not None:
            conv = self.conv(obs, images)
            parts.append(self.project(conv.detach() if detach_pixels else conv))
        return torch.cat(parts, dim=-1)

    def fit_normalization(self, values: dict[str, np.ndarray]) -> None:
        """Freeze each state key's mean/std from a batch of raw observations (``ISOTROPIC_KEYS``
        by one std for all dimensions)."""
        for key, norm in zip(self.state_keys, self.normalizers):
            norm.fit(values[key].reshape(len(values[key]), -1).astype(np.float64), isotropic=key in ISOTROPIC_KEYS)

    def normalization(self) -> dict[str, dict[str, list[float]]]:
        """Per state key ``{"mean": [...], "std": [...]}``, for the policy artifact."""
        return {k: {"mean": n.mean.tolist(), "std": n.std.tolist()} for k, n in zip(self.state_keys, self.normalizers)}


class TanhGaussianActor(nn.Module):
    """A Gaussian over pre-tanh actions; ``forward`` samples, ``mean_action`` is deterministic."""

    def __init__(self, in_dim: int, action_dim: int, hidden_dim: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.net = mlp(in_dim, hidden_dim, 2 * action_dim, depth)
        # > 0: ``forward`` explores with this std in action units around the mean action (clipped
        # to [-1, 1]) instead of sampling the learned std, with log-probability 0 (SAC's held
        # exploration when fine-tuning; no entropy terms then)
        self.action_std = 0.0

    def distribution(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = full_precision_head(self.net, features).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mu, log_std

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample in [-1, 1] and its log-probability (tanh-corrected)."""
        mu, log_std = self.distribution(features)
        if self.action_std > 0:
            action = (torch.tanh(mu) + self.action_std * torch.randn_like(mu)).clamp(-1.0, 1.0)
            return action, torch.zeros(action.shape[:-1], dtype=action.dtype, device=action.device)
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
    """``n`` Q-functions Q(s, a), LayerNorm'd (RLPD), evaluated together: returns (n, B).

    With ``out_dim`` > 1 and no action, ``n`` heads of one Q per discrete action, Q(s, .): (n, B, out_dim)."""

    def __init__(self, in_dim: int, n: int = 2, hidden_dim: int = 256, depth: int = 2, layer_norm: bool = True,
                 out_dim: int = 1) -> None:
        super().__init__()
        self.n, self.out_dim = n, out_dim
        layers: list[nn.Module] = []
        for i in range(depth):
            layers.append(EnsembleLinear(n, in_dim if i == 0 else hidden_dim, hidden_dim))
            if layer_norm:
                layers.append(nn.LayerNorm(hidden_dim))
            layers.append(nn.ReLU())
        layers.append(EnsembleLinear(n, hidden_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, action: torch.Tensor | None = None) -> torch.Tensor:
        x = features if action is None else torch.cat([features, action], dim=-1)
        out = full_precision_head(self.net, x.unsqueeze(0).expand(self.n, *x.shape))
        return out.squeeze(-1) if self.out_dim == 1 else out


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source``, one fused call for all tensors."""
    with torch.no_grad():
        targets = list(target.parameters())
        if targets:
            torch._foreach_lerp_(targets, list(source.parameters()), tau)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel (one pass over all parameters per step instead of a Python
    loop of per-tensor ops; the same update up to float rounding) where the build supports it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


@contextmanager
def evaluating(module: nn.Module):
    """``module`` in eval mode (no dropout) inside the block, its own mode restored after: acting
    with a module that trains with dropout, so ``act`` and the exported graph agree."""
    training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(training)


@contextmanager
def frozen(module: nn.Module):
    """Gradients flow *through* ``module`` but not *into* its parameters (the actor's loss
    differentiates Q with respect to the action only: computing the critic's weight gradients
    there is wasted work that the critic's optimiser would discard)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in params:
            p.requires_grad_(True)


def full_precision_head(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net`` with its last layer outside any autocast region: mixed-precision updates run the
    wide hidden matmuls in bfloat16, but Q-values and action means keep float32's resolution
    (a bfloat16 Q of 80 is only resolved to 0.5, coarser than a TD error)."""
    if not torch.is_autocast_enabled(x.device.type):
        return net(x)  # the usual path (acting, export, float32 training)
    hidden = net[:-1](x)
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        return net[-1](hidden.float())


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
        if hasattr(self.head, "mean_action"):  # a head that maps features to an action itself
            return self.head.mean_action(features)
        return torch.tanh(self.head(features))
