"""Image augmentation for pixel agents: DrQ's random shift, shared by DrQ, IQL and BC."""

from __future__ import annotations

from functools import partial

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


def shift_augment(pad: int) -> Augment | None:
    """``random_shift`` by ``pad`` pixels, or None (no augmentation) when ``pad`` is 0."""
    return partial(random_shift, pad=pad) if pad else None
