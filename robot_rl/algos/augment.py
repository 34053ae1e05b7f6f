"""Image augmentation for pixel agents: DrQ's random shift (DrQ, IQL, BC) and a photometric jitter
(BC and distillation)."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F

from robot_rl.algos.base import Augment


def random_shift(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Pad by ``pad`` (replicate) and crop back at a random offset per sample (DrQ-v2, bilinear)."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad, device=images.device)[:h]
    base_x = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base = torch.cat([base_x, base_x.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    shift = torch.randint(0, 2 * pad + 1, size=(n, 1, 1, 2), device=images.device).float() * 2.0 / (h + 2 * pad)
    return F.grid_sample(padded, base + shift, padding_mode="zeros", align_corners=False)


def photometric(images: torch.Tensor, strength: float) -> torch.Tensor:
    """Per sample and camera: brightness x U(1 - s, 1 + s), contrast about the image's mean
    x U(1 - s/2, 1 + s/2) and a gain per colour channel x U(1 - s/4, 1 + s/4), as the
    randomisation presets' lights, textures and colour jitter change a rendered frame. The
    per-channel gain stays small so that a red cube stays red: the instruction names colours.
    Takes and returns (B, 3*cameras, H, W) in [-0.5, 0.5]."""
    n, c, h, w = images.shape
    cams, s = c // 3, strength

    def draw(low: float, high: float, channels: int = 1) -> torch.Tensor:
        return torch.empty(n, cams, channels, 1, 1, device=images.device).uniform_(low, high)

    x = (images + 0.5).reshape(n, cams, 3, h, w) * draw(1 - s, 1 + s) * draw(1 - s / 4, 1 + s / 4, 3)
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    x = (x - mean) * draw(1 - s / 2, 1 + s / 2) + mean
    return x.clamp(0.0, 1.0).reshape(n, c, h, w) - 0.5


def shift_cameras(images: torch.Tensor, pads: Sequence[int]) -> torch.Tensor:
    """``random_shift`` of each camera's 3 channels by its own pad, each drawn on its own: the
    cameras move relative to each other, as a camera knocked on its mount does."""
    parts = images.split(3, dim=1)
    return torch.cat([random_shift(part, pad) if pad else part for part, pad in zip(parts, pads)], dim=1)


def image_augment(pad: int, color: float = 0.0, camera_pads: Sequence[int] | None = None) -> Augment | None:
    """``photometric`` jitter of strength ``color`` (when above 0), then ``random_shift`` by
    ``pad`` pixels (when above 0); with ``camera_pads`` (one per camera, in the stacked order)
    each camera is shifted by its own pad instead. None when all are off."""
    if camera_pads is not None and any(camera_pads):
        shift = partial(shift_cameras, pads=list(camera_pads))
    elif pad:
        shift = partial(random_shift, pad=pad)
    elif not color:
        return None
    else:
        shift = lambda images: images  # noqa: E731
    return (lambda images: shift(photometric(images, color))) if color else shift
