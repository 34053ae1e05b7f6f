"""Typed configs of a reward model and its training, and the one error type users see.

Each dataclass mirrors one block of ``robot_rl/conf/reward/vlm.yaml``; the CLI turns the
composed YAML into these with :func:`from_dict`, so library code never sees the config tree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

FORMAT_NAME = "robot_rl.reward_model"
FORMAT_VERSION = 1
FUSIONS = ("film", "xattn", "concat")
READOUTS = ("flatten", "pool", "keypoints")
BACKBONES = ("cnn", "resnet18")
LABEL_MODES = ("auto", "sim", "data", "preferences")
NEGATIVE_KINDS = ("colour", "object", "task")


class RewardModelError(ValueError):
    """A user-facing problem with a reward model, its inputs or its data: one clear sentence."""


def _check_ranges(config: Any, block: str, ranges: dict[str, tuple[float, float]]) -> None:
    """Refuse (RewardModelError) a non-finite number in any float field of ``config``, and a value
    outside ``ranges[name] = (low, high)`` (inclusive; ``math.inf`` for no bound)."""
    import math

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high = ranges.get(f.name, (-math.inf, math.inf))
        if not math.isfinite(value) or not low <= value <= high:
            if math.isinf(high):
                wanted = f"a number >= {low:g}" if math.isfinite(low) else "a finite number"
            else:
                wanted = f"a number from {low:g} to {high:g}"
            raise RewardModelError(f"reward.{block}.{f.name}={value} is not valid; expected {wanted}.")


@dataclass
class ModelConfig:
    """What the network looks at and how it is built; saved with the weights.

    ``cameras`` and ``image_size`` are a contract: :meth:`RewardModel.score` refuses frames
    from other cameras or of another size. ``text_queries`` learned queries attend over the
    instruction's token embeddings, which keep word order that the pooled sentence embedding
    nearly loses ("stack red on blue" vs "stack blue on red" have cosine 0.997).
    """

    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: int = 64
    backbone: str = "cnn"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    pretrained_path: str | None = None
    freeze_backbone: bool = False
    fusion: str = "film"
    readout: str = "flatten"
    hidden: int = 256
    text_dim: int = 384
    text_queries: int = 4
    max_tokens: int = 24
    text_model_path: str | None = None

    def __post_init__(self) -> None:
        self.cameras = tuple(self.cameras)
        self.channels = tuple(int(c) for c in self.channels)
        if not self.cameras:
            raise RewardModelError("model.cameras is empty; name at least one camera, e.g. [front].")
        if self.fusion not in FUSIONS:
            raise RewardModelError(f"model.fusion {self.fusion!r} is unknown; choose one of {', '.join(FUSIONS)}.")
        if self.readout not in READOUTS:
            raise RewardModelError(f"reward.model.readout {self.readout!r} is unknown; "
                                   f"choose one of {', '.join(READOUTS)}.")
        if self.backbone not in BACKBONES:
            raise RewardModelError(f"model.backbone {self.backbone!r} is unknown; "
                                   f"choose one of {', '.join(BACKBONES)}.")
        if not 16 <= self.image_size <= 1024:
            raise RewardModelError(f"reward.model.image_size={self.image_size} is not valid; expected an integer "
                                   "from 16 to 1024 (pixels).")
        _check_ranges(self, "model", {"hidden": (1, 1 << 16), "text_dim": (1, 1 << 16), "text_queries": (0, 256),
                                      "max_tokens": (1, 4096)})
        if not self.channels or any(not 1 <= c <= 4096 for c in self.channels):
            raise RewardModelError(f"reward.model.channels={list(self.channels)} is not valid; expected a list of "
                                   "channel counts from 1 to 4096, e.g. [16,32,64,128].")


@dataclass
class AugmentConfig:
    """Training-time augmentation. Images: random shift, optional roll and zoom, colour jitter
    and an optional gain per colour channel (``white_balance``; no hue rotation: instructions
    name colours). Text: ``rephrase`` is the chance that a frame is read with
    another training phrasing of its request (same task and colours), so no phrasing is tied
    to scenes; the phrasings are the task's templates plus ``generated`` variants per request
    (:mod:`reward_models.phrasings`: synonyms, word order, politeness, typos; 0 turns them off)."""

    shift_px: int = 4
    roll_deg: float = 0.0
    zoom: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.15
    white_balance: float = 0.0
    rephrase: float = 0.5
    generated: int = 48

    def __post_init__(self) -> None:
        _check_ranges(self, "augment", {"shift_px": (0, 64), "roll_deg": (0, 45), "zoom": (0, 0.5),
                                        "brightness": (0, 1), "contrast": (0, 1), "saturation": (0, 1),
                                        "white_balance": (0, 1), "rephrase": (0, 1), "generated": (0, 4096)})


@dataclass
class NegativesConfig:
    """RoboReward-style negatives mixed into every batch (fractions of the batch).

    ``counterfactual``: frames paired with an instruction their state does not satisfy
    (``kinds`` among colour, object, task); ``clipped``: frames of successful episodes cut
    before success, labelled as partial progress. Real failures come from the data itself.
    """

    counterfactual: float = 0.3
    clipped: float = 0.2
    kinds: tuple[str, ...] = ("colour", "object", "task")
    counterfactual_progress: float = 0.0

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        _check_ranges(self, "negatives", {"counterfactual": (0, 1), "clipped": (0, 1),
                                          "counterfactual_progress": (0, 1)})
        unknown = [k for k in self.kinds if k not in NEGATIVE_KINDS]
        if unknown:
            raise RewardModelError(f"reward.negatives.kinds={list(self.kinds)} is not valid; expected some of "
                                   f"{', '.join(NEGATIVE_KINDS)}.")
        if self.counterfactual + self.clipped >= 1.0:
            raise RewardModelError("negatives.counterfactual + negatives.clipped must leave room for real "
                                   "frames (their sum must be < 1).")


@dataclass
class TrainConfig:
    """Optimisation and labels. ``labels=auto`` uses sim ground truth when the store has it."""

    steps: int = 2500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    labels: str = "auto"
    success_tail: float = 0.1
    frame_stride: int = 1
    val_fraction: float = 0.1
    eval_every: int = 250
    threads: int = 1
    update_dtype: str = "float32"  # float32 | bfloat16 (mixed precision) | auto (robot_rl.algos.base.UPDATE_DTYPES)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise RewardModelError(f"train.labels {self.labels!r} is unknown; choose one of {', '.join(LABEL_MODES)}.")
        if self.steps < 1:
            raise RewardModelError(f"reward.train.steps={self.steps} is not valid; expected an integer >= 1.")
        from robot_rl.algos.base import UPDATE_DTYPES  # the agents' own choices

        if self.update_dtype not in UPDATE_DTYPES:
            raise RewardModelError(f"reward.train.update_dtype={self.update_dtype} is not valid; expected one of "
                                   f"{', '.join(UPDATE_DTYPES)}.")
        if self.batch_size < 2:
            raise RewardModelError(f"reward.train.batch_size={self.batch_size} is not valid; expected an integer >= 2 "
                                   "(a batch mixes real frames and negatives).")
        _check_ranges(self, "train", {"lr": (1e-12, 10.0), "weight_decay": (0, 10.0), "success_tail": (0, 1),
                                      "val_fraction": (0, 0.99), "frame_stride": (1, 1 << 20),
                                      "eval_every": (1, 1 << 40), "threads": (1, 1024), "seed": (0, 2**32 - 1)})


@dataclass
class ShapingConfig:
    """How progress and success become an RL reward (see :class:`reward_models.RewardShaper`)."""

    gamma: float = 0.99
    shaping_scale: float = 1.0
    success_weight: float = 0.0
    sparse_weight: float = 1.0
    sparse_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check_ranges(self, "shaping", {"gamma": (0, 1), "sparse_threshold": (0, 1)})


@dataclass
class RewardConfig:
    """The whole ``reward/vlm.yaml`` group, as typed parts."""

    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    shaping: ShapingConfig = field(default_factory=ShapingConfig)


def from_dict(cls: type[T], data: dict[str, Any] | None, name: str = "reward") -> T:
    """Dataclass ``cls`` (a block of ``reward/vlm.yaml``) from a plain dict; an unknown key is
    refused with one sentence naming it (:func:`robot_rl.schema.build`)."""
    from robot_rl.schema import build

    return build(cls, data, name, RewardModelError)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
