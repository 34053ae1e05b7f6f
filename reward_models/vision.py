"""The vision side: a small conv net trained here, or a ResNet-18 whose weights come from a
local file, each with FiLM hooks after every stage so the instruction can steer features.

The ResNet-18 uses torchvision's parameter names, so a torchvision ``resnet18`` state dict
(``.pth``/``.pt``) or a ``.safetensors`` file loads without torchvision installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from reward_models.config import RewardModelError

Film = Sequence[tuple[torch.Tensor, torch.Tensor]] | None
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _film(x: torch.Tensor, film: Film, i: int) -> torch.Tensor:
    if film is None:
        return x
    gamma, beta = film[i]
    return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class ConvEncoder(nn.Module):
    """Stride-2 3x3 conv stages with GroupNorm; input float [B,3,H,W] in [0,1]."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        self.stage_channels = list(channels)
        stages, c_in = [], 3
        for c in channels:
            stages.append(nn.Sequential(nn.Conv2d(c_in, c, 3, stride=2, padding=1),
                                        nn.GroupNorm(min(8, c), c)))
            c_in = c
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor, film: Film = None) -> torch.Tensor:
        x = x - 0.5
        for i, stage in enumerate(self.stages):
            x = torch.relu(_film(stage(x), film, i))
        return x


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Encoder(nn.Module):
    """torchvision-compatible ResNet-18 trunk (no ``fc``), FiLM after each of its 4 layers."""

    def __init__(self) -> None:
        super().__init__()
        self.stage_channels = [64, 128, 256, 512]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for i, c in enumerate(self.stage_channels):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)))
            c_in = c
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, film: Film = None) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1((x - self.mean) / self.std))))
        for i in range(4):
            x = _film(getattr(self, f"layer{i + 1}")(x), film, i)
        return x


def make_encoder(backbone: str, channels: Sequence[int]) -> nn.Module:
    """A vision trunk by name: ``cnn`` (trained here) or ``resnet18``."""
    return ResNet18Encoder() if backbone == "resnet18" else ConvEncoder(channels)


def feature_shape(encoder: nn.Module, image_size: int) -> tuple[int, int, int]:
    """(channels, height, width) of the encoder's output for square ``image_size`` frames."""
    with torch.no_grad():
        was_training = encoder.training
        out = encoder.eval()(torch.zeros(1, 3, image_size, image_size))
        encoder.train(was_training)
    return tuple(out.shape[1:])  # type: ignore[return-value]


def load_backbone_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load pretrained trunk weights from a local ``.safetensors``/``.pt``/``.pth`` file.

    Classifier (``fc.*``) keys are ignored; any other missing or unexpected key is an error
    naming the file, so a wrong file never half-loads silently.
    """
    path = Path(path)
    if not path.is_file():
        raise RewardModelError(f"pretrained backbone weights {path} do not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            # weights_only=True: torch's restricted unpickler (tensors and plain containers only, no
            # arbitrary globals), so a crafted .pt/.pth is refused instead of run
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the file's fault
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise RewardModelError(f"pretrained backbone weights {path} could not be read ({first}).") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise RewardModelError(f"pretrained backbone weights {path} hold no state dict of named tensors; expected "
                               "a .safetensors file or a .pt/.pth state dict.")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    want = encoder.state_dict()
    bad = sorted(set(want) ^ set(state)) or [k for k in want if tuple(want[k].shape) != tuple(state[k].shape)]
    if bad:
        raise RewardModelError(f"pretrained backbone weights {path} do not fit the {type(encoder).__name__} "
                               f"trunk (e.g. tensor {bad[0]}).")
    encoder.load_state_dict(state)
