"""Training-time image augmentation on float [B,3,H,W] batches in [0,1].

Random shift (DrQ: replicate-pad then crop back), an optional small roll and zoom (a camera
mount that is not quite where it was), and colour jitter of brightness, contrast and
saturation, each drawn per image, and an optional white balance (a gain per colour channel:
another light's tint, or a camera's white balance). Hue is never rotated: instructions name
colours, and a red cube that turns orange would teach the model the wrong word; a channel
gain of a few tens of percent tints the whole scene and leaves a red cube the reddest thing in it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reward_models.config import AugmentConfig

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def to_float(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [B,H,W,3] -> float [B,3,H,W] in [0,1] on ``device``."""
    x = torch.as_tensor(frames).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to ``pad`` pixels in x and y, filling edges by replication."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(b)])


def random_roll_zoom(x: torch.Tensor, degrees: float, zoom: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each image about its centre by up to ``degrees`` and scale it by 1 +- ``zoom``,
    filling edges by replication (as ``random_shift`` does)."""
    if not degrees and not zoom:
        return x
    b = x.shape[0]
    angle = (2.0 * torch.rand(b, generator=generator) - 1.0) * degrees * np.pi / 180.0
    scale = 1.0 + zoom * (2.0 * torch.rand(b, generator=generator) - 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(b)], -1), torch.stack([sin, cos, torch.zeros(b)], -1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                  generator: torch.Generator | None = None, white_balance: float = 0.0) -> torch.Tensor:
    """Per-image multiplicative brightness, contrast and saturation factors in 1 +- amount, and
    with ``white_balance`` a gain per colour channel in 1 +- that amount."""
    b = x.shape[0]

    def factor(amount: float, channels: int = 1) -> torch.Tensor:
        u = torch.rand(b, channels, 1, 1, generator=generator).to(x.device)
        return 1.0 + amount * (2.0 * u - 1.0)

    if white_balance:
        x = x * factor(white_balance, 3)

    gray = (x * _LUMA.to(x.device)).sum(1, keepdim=True)
    if saturation:
        x = gray + (x - gray) * factor(saturation)
    if contrast:
        mean = gray.mean((2, 3), keepdim=True)
        x = mean + (x - mean) * factor(contrast)
    if brightness:
        x = x * factor(brightness)
    return x.clamp_(0.0, 1.0)


def augment(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift, roll and zoom, then jitter one camera's batch."""
    x = random_shift(x, config.shift_px, generator)
    x = random_roll_zoom(x, config.roll_deg, config.zoom, generator)
    return colour_jitter(x, config.brightness, config.contrast, config.saturation, generator, config.white_balance)
