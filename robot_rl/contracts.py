"""Contracts shared by every package: data keys and array specs.

These names are the stable interface between the simulator, the episode store, the reward
models and the ROS 2 nodes. Change them only with a format version bump.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Data keys, defined once (diffusion_policy-style layout: data/<key>, meta/episode_ends).
OBS_STATE = "obs/state"
OBS_OBJECT = "obs/object"
OBS_IMAGES_PREFIX = "obs/images/"
# The episode's instruction as its frozen sentence embedding (INSTRUCTION_ENCODER): what a
# language-conditioned student reads; made from the instruction text by
# robot_rl.policy.instruction, never stored (the store keeps the text).
OBS_INSTRUCTION = "obs/instruction"
INSTRUCTION_ENCODER = {"name": "all-MiniLM-L6-v2", "dim": 384, "pooling": "mean, L2-normalised"}
# Inputs only a simulator knows: a policy that reads any of them cannot run on a real arm.
PRIVILEGED_KEYS = (OBS_OBJECT,)
ACTION = "action"
REWARD = "reward"
INFO_SUCCESS = "info/success"
INFO_PROGRESS = "info/progress"
# The joint position targets (rad) a ROS 2 node sent the arm during the step, safety-filtered:
# what robot-rl sysid replays when a store has them (the recorder node's ``command_interface``).
INFO_COMMAND = "info/command"
# The sim env's info entry with a future of {camera: frame} for its deferred cameras
# (sim.env.EnvConfig.deferred_cameras); a step's info, not a stored key.
INFO_FRAMES = "frames"
DATA_GROUP = "data"
EPISODE_ENDS = "meta/episode_ends"
EPISODE_INFO = "meta/episode_info"
INFO_PREFIX = "info/"

# Episode store format: refuse to open anything else, bump the version on layout changes.
EPISODE_STORE_FORMAT = "robot_rl.episodes"
EPISODE_STORE_VERSION = 1

CAMERAS = ("front", "wrist")

# The colour vocabulary: the names instructions say (stored with every episode, read back by the
# reward models) and the RGBA the sim paints them in. Far apart, so a jittered colour keeps its name.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.12, 1.0),
    "green": (0.12, 0.7, 0.2, 1.0),
    "blue": (0.12, 0.3, 0.88, 1.0),
    "yellow": (0.92, 0.8, 0.1, 1.0),
}
# The cubes a task puts on the table unless its YAML says otherwise (``colors:``).
SCENE_COLORS = ("red", "green", "blue")
EPISODE_SOURCES = ("scripted", "teleop", "policy", "real", "random")

# The ground-truth reward of the sim's privileged state, defined once (the env, the recorder
# node and the trainers' stored-episode rewards read it): dense = progress, sparse = success.
REWARD_KINDS = ("dense", "sparse")


def ground_truth_reward(progress, success, kind: str):
    """``progress`` for ``dense``, ``success`` for ``sparse``: scalars or arrays, dtype kept."""
    if kind not in REWARD_KINDS:
        raise ValueError(f"reward {kind!r} is unknown; expected one of {list(REWARD_KINDS)}.")
    return progress if kind == "dense" else success


def image_key(camera: str) -> str:
    """The data key of one camera's uint8 HWC frames, e.g. ``obs/images/front``."""
    return f"{OBS_IMAGES_PREFIX}{camera}"


@dataclass(frozen=True)
class ArraySpec:
    """Shape, dtype and optional bounds of one array in an observation or action."""

    shape: tuple[int, ...]
    dtype: str
    low: float | None = None
    high: float | None = None

    def check(self, name: str, value: np.ndarray) -> None:
        """Raise ValueError naming ``name`` when ``value`` does not fit this spec."""
        if tuple(value.shape) != tuple(self.shape):
            raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {self.shape}.")
        if np.dtype(value.dtype) != np.dtype(self.dtype):
            raise ValueError(f"{name} has dtype {value.dtype}, expected {self.dtype}.")


@dataclass(frozen=True)
class EnvSpec:
    """What an environment produces and accepts: the contract between sim, data and models."""

    observations: dict[str, ArraySpec]
    action: ArraySpec
    control_rate_hz: float
    action_space: str
    robot: str
    task: str
    joint_names: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    state_layout: dict[str, tuple[int, int]] = field(default_factory=dict)
