"""The fusion network: cameras and instruction in, progress and success logits out.

Three fusions, chosen by ``model.fusion`` (``bench/reward_models.py --compare-fusion`` measures
them): ``film`` (the instruction scales and shifts every conv stage of every camera, so it
can decide early which cube to look at), ``xattn`` (the instruction queries the last feature
map's spatial tokens) and ``concat`` (late fusion: image and text features meet only in the
head, the baseline that shows why the other two are needed).
"""

from __future__ import annotations

import torch
from torch import nn

from reward_models.config import ModelConfig
from reward_models.vision import feature_shape, load_backbone_weights, make_encoder
from robot_rl.algos.networks import SpatialSoftmax


class TextFeatures(nn.Module):
    """Pooled sentence embedding plus learned queries over the token embeddings -> [B, hidden]."""

    def __init__(self, text_dim: int, hidden: int, queries: int) -> None:
        super().__init__()
        self.pooled = nn.Linear(text_dim, hidden)
        self.queries = nn.Parameter(torch.randn(queries, text_dim) * 0.02) if queries else None
        if queries:
            self.attn = nn.MultiheadAttention(text_dim, num_heads=4, batch_first=True)
            self.from_queries = nn.Linear(queries * text_dim, hidden)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())

    def forward(self, pooled: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.pooled(pooled)
        if self.queries is not None:
            q = self.queries.unsqueeze(0).expand(len(pooled), -1, -1)
            read, _ = self.attn(q, tokens, tokens, key_padding_mask=~mask, need_weights=False)
            h = h + self.from_queries(read.flatten(1))
        return self.out(h)


class Readout(nn.Module):
    """A camera's last feature map [B, C, H, W] -> one vector, by ``model.readout``:

    - ``flatten``: every position of every channel (where and what, tied to the camera's pose);
    - ``pool``: each channel's mean and maximum over the map (what is seen, wherever it is);
    - ``keypoints``: each channel's spatial-softmax keypoint (Levine et al. 2016) and its mean
      (what, and where as coordinates that move smoothly when the camera does).
    """

    def __init__(self, kind: str, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.kind = kind
        self.points = SpatialSoftmax(height, width) if kind == "keypoints" else None
        self.out_dim = {"flatten": channels * height * width, "pool": 2 * channels, "keypoints": 3 * channels}[kind]

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        if self.kind == "flatten":
            return fmap.flatten(1)
        mean = fmap.mean((2, 3))
        if self.kind == "pool":
            return torch.cat([mean, fmap.amax((2, 3))], dim=1)
        return torch.cat([self.points(fmap), mean], dim=1)


class CameraBranch(nn.Module):
    """One camera's trunk and how it meets the instruction features."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.fusion = config.fusion
        self.encoder = make_encoder(config.backbone, config.channels)
        if config.pretrained_path:
            load_backbone_weights(self.encoder, config.pretrained_path)
        if config.freeze_backbone:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
        c, h, w = feature_shape(self.encoder, config.image_size)
        hidden = config.hidden
        if self.fusion == "film":
            self.film = nn.Linear(hidden, 2 * sum(self.encoder.stage_channels))
            nn.init.zeros_(self.film.weight)  # identity modulation at the start: stable early training
            nn.init.zeros_(self.film.bias)
        if self.fusion == "xattn":
            self.keys = nn.Conv2d(c, hidden, 1)
            self.attn = nn.MultiheadAttention(hidden, num_heads=4, batch_first=True)
            self.pos = nn.Parameter(torch.randn(1, h * w, hidden) * 0.02)
            self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU())
        else:
            readout = Readout(config.readout, c, h, w)  # in place of nn.Flatten: older models' keys still load
            self.out = nn.Sequential(readout, nn.Linear(readout.out_dim, hidden), nn.ReLU())

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if self.fusion != "film":
            fmap = self.encoder(image)
        else:
            sizes = [2 * c for c in self.encoder.stage_channels]
            params = torch.split(self.film(text), sizes, dim=1)
            fmap = self.encoder(image, [p.chunk(2, dim=1) for p in params])
        if self.fusion != "xattn":
            return self.out(fmap)
        tokens = self.keys(fmap).flatten(2).transpose(1, 2) + self.pos
        read, _ = self.attn(text.unsqueeze(1), tokens, tokens, need_weights=False)
        return self.out(torch.cat([read.squeeze(1), tokens.mean(1)], dim=1))


class RewardNet(nn.Module):
    """``forward(images, pooled, tokens, mask[, index]) -> logits [B, 2]`` (progress, success).

    With ``index`` [B], the text tensors hold distinct instructions and row i of the batch
    reads instruction ``index[i]`` (see :meth:`TextEncoder.encode_unique`)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.text = TextFeatures(config.text_dim, config.hidden, config.text_queries)
        self.cameras = nn.ModuleDict({cam: CameraBranch(config) for cam in config.cameras})
        width = config.hidden * (len(config.cameras) + 1)
        self.head = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2))

    def forward(self, images: dict[str, torch.Tensor], pooled: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return self.head[-1](self.features(images, pooled, tokens, mask, index))

    def features(self, images: dict[str, torch.Tensor], pooled: torch.Tensor, tokens: torch.Tensor,
                 mask: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """The head's hidden layer, ``[B, hidden]``: the frames and the instruction reduced to what
        progress and success are read from (a compact frozen encoder for learning on the robot)."""
        text = self.text(pooled, tokens, mask)
        if index is not None:
            text = text[index]
        feats = [self.cameras[cam](images[cam], text) for cam in self.config.cameras]
        return self.head[:-1](torch.cat([*feats, text], dim=1))

    def train(self, mode: bool = True) -> RewardNet:
        super().train(mode)
        if self.config.freeze_backbone:  # frozen BatchNorm statistics stay as loaded
            for branch in self.cameras.values():
                branch.encoder.eval()
        return self
