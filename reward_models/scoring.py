"""Scoring frames with a trained reward model: the interface the RL trainer and tools call.

``frames`` is either one uint8 ``[B,H,W,3]`` array, which means the **front** camera, or a
dict ``{camera: uint8[B,H,W,3]}`` (keys ``front`` or ``obs/images/front`` both work) holding
every camera the model was trained on. ``instructions`` is a list of B strings (or one string
for all). Both return ``progress[B]`` and ``success[B]`` as float32 in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from reward_models.augment import to_float
from reward_models.config import ModelConfig, RewardModelError
from reward_models.model import RewardNet
from reward_models.text import TextEncoder
from robot_rl.contracts import OBS_IMAGES_PREFIX

Frames = np.ndarray | Mapping[str, np.ndarray]
REUSE_ROWS = 16  # reuse_last keeps batches up to this many frames (a control loop's, not a labelling pass's)


class RewardModel:
    """A trained network, its instruction cache and its device; see :meth:`score`."""

    def __init__(self, net: RewardNet, text: TextEncoder, device: str | torch.device = "cpu",
                 batch_size: int = 64, meta: dict | None = None) -> None:
        self.net = net.eval()
        self.text = text
        self.batch_size = int(batch_size)
        self.meta = dict(meta or {})
        self.device = torch.device(device)
        self.net.to(self.device)
        # True: the last small batch's outputs are kept, so frames that are scored and then
        # encoded (learning on the robot reads both, reward and features, each step) run through
        # the network once. Off by default: nothing else asks twice, and a network changed in
        # place would not be noticed.
        self.reuse_last = False
        self._last: tuple | None = None

    @property
    def config(self) -> ModelConfig:
        """The model's config: cameras, image size, fusion, sizes."""
        return self.net.config

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.config.cameras

    def score(self, frames: Frames, instructions: Sequence[str] | str) -> tuple[np.ndarray, np.ndarray]:
        """Progress and success in [0, 1] for each of B frames read with its instruction."""
        views = self.check_frames(frames)
        n = len(next(iter(views.values())))
        texts = [instructions] * n if isinstance(instructions, str) else list(instructions)
        if len(texts) != n:
            raise RewardModelError(f"score got {n} frames but {len(texts)} instructions; pass one per frame.")
        out = np.zeros((n, 2), np.float32)
        for lo in range(0, n, self.batch_size):
            hi = min(lo + self.batch_size, n)
            out[lo:hi] = self._probabilities({c: v[lo:hi] for c, v in views.items()}, texts[lo:hi])
        return out[:, 0], out[:, 1]

    def score_episode(self, frames: Frames, instruction: str, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Scores of one episode's T frames, computing every ``stride``-th (and the last) frame
        and holding each score until the next computed one."""
        views = self.check_frames(frames)
        picks, owner = strided_rows(len(next(iter(views.values()))), stride)
        progress, success = self.score({c: v[picks] for c, v in views.items()}, [instruction] * len(picks))
        return progress[owner], success[owner]

    def check_frames(self, frames: Frames) -> dict[str, np.ndarray]:
        """The per-camera arrays the model needs, or one sentence saying what is wrong."""
        if isinstance(frames, np.ndarray):
            if self.cameras != ("front",):
                raise RewardModelError(f"this reward model reads cameras {', '.join(self.cameras)}; pass frames as a "
                                       "dict {camera: uint8[B,H,W,3]} (a bare array means the front camera only).")
            frames = {"front": frames}
        views = {k.removeprefix(OBS_IMAGES_PREFIX): v for k, v in frames.items()}
        missing = [c for c in self.cameras if c not in views]
        if missing:
            raise RewardModelError(f"frames lack camera {', '.join(missing)}; this reward model reads cameras "
                                   f"{', '.join(self.cameras)}.")
        size, counts = self.config.image_size, set()
        for cam in self.cameras:
            v = np.asarray(views[cam])
            if v.ndim != 4 or v.shape[3] != 3 or v.dtype != np.uint8:
                raise RewardModelError(f"frames for camera {cam} must be uint8[B,H,W,3]; got {v.dtype}{list(v.shape)}.")
            if v.shape[1:3] != (size, size):
                raise RewardModelError(f"frames for camera {cam} are {v.shape[1]}x{v.shape[2]} but this reward model "
                                       f"was trained on {size}x{size} frames; resize them or record with "
                                       f"env.image_size={size}.")
            counts.add(len(v))
            views[cam] = v
        if len(counts) > 1:
            raise RewardModelError(f"cameras hold different numbers of frames ({sorted(counts)}).")
        return {c: views[c] for c in self.cameras}

    @property
    def feature_dim(self) -> int:
        return self.config.hidden

    def features(self, frames: Frames, instructions: Sequence[str] | str) -> np.ndarray:
        """float32 ``[B, feature_dim]``: the head's hidden layer for each frame and instruction (see
        ``RewardNet.features``); the frozen image encoder of learning on the robot."""
        views = self.check_frames(frames)
        n = len(next(iter(views.values())))
        texts = [instructions] * n if isinstance(instructions, str) else list(instructions)
        out = np.zeros((n, self.feature_dim), np.float32)
        for lo in range(0, n, self.batch_size):
            hi = min(lo + self.batch_size, n)
            out[lo:hi] = self._features({c: v[lo:hi] for c, v in views.items()}, texts[lo:hi])
        return out

    def _features(self, views: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
        return self._outputs(views, texts)[1]

    def _probabilities(self, views: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
        return self._outputs(views, texts)[0]

    @torch.inference_mode()
    def _outputs(self, views: dict[str, np.ndarray], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(sigmoid of the logits [B, 2], the head's hidden layer [B, hidden]) of one batch, in one pass."""
        last = self._last
        if last is not None and last[0] == texts and all(np.array_equal(last[1][c], v) for c, v in views.items()):
            return last[2], last[3]
        text = [t.to(self.device) for t in self.text.encode_unique(texts)]
        images = {c: to_float(v, self.device) for c, v in views.items()}
        features = self.net.features(images, *text)  # RewardNet.forward is head[-1] of these
        out = torch.sigmoid(self.net.head[-1](features)).float().cpu().numpy(), features.float().cpu().numpy()
        if self.reuse_last and len(texts) <= REUSE_ROWS:
            self._last = (list(texts), {c: np.array(v, copy=True) for c, v in views.items()}, *out)
        return out


def strided_rows(length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of an episode's ``length`` frames to score (every ``stride``-th and the last), and
    for each frame the index into those picks whose score it holds."""
    picks = np.unique(np.r_[np.arange(0, length, max(1, stride)), length - 1]) if length else np.zeros(0, int)
    return picks, np.searchsorted(picks, np.arange(length), side="right") - 1
