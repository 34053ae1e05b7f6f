"""The teleop contract: the 5-dim end-effector command, recording events and the device protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

# [dx, dy, dz, dyaw] are velocity-like deltas in the robot base frame (+x forward, +y left,
# +z up, yaw about +z); gripper is an absolute target (-1 fully open, +1 fully closed).
ACTION_NAMES = ("dx", "dy", "dz", "dyaw", "gripper")
ACTION_DIM = len(ACTION_NAMES)
GRIPPER_OPEN = -1.0
GRIPPER_CLOSED = 1.0

# Recording controls, in the order a recorder usually meets them.
EVENTS = ("start", "keep", "discard", "success", "failure", "quit")

# What a device button can be bound to: the gripper, one event, "start_keep", which sends
# `start` when idle and `keep` while recording (for devices with few buttons), or "intervene",
# a level rather than an event: the operator overrides the policy for as long as it is held.
CONTROLS = ("gripper", "start_keep", "intervene", *EVENTS)


class TeleopDeviceError(RuntimeError):
    """A teleop device or the optional package that reads it is missing or unreadable."""


@dataclass(frozen=True)
class TeleopCommand:
    """One reading of a teleop device.

    Attributes:
        action: float32 array of shape (5,): ``[dx, dy, dz, dyaw, gripper]`` in [-1, 1].
        events: recording events pressed since the previous read, oldest first, each one of
            :data:`EVENTS`; one entry per press, never repeated while a button is held.
        intervening: the operator holds the intervene control now (or moves an axis, with
            ``TeleopConfig.intervene_on_motion``), so this action overrides the policy's.
    """

    action: np.ndarray
    events: tuple[str, ...] = ()
    intervening: bool = False

    def __post_init__(self) -> None:
        if self.action.shape != (ACTION_DIM,) or self.action.dtype != np.float32:
            raise ValueError(
                f"TeleopCommand.action has shape {self.action.shape} and dtype "
                f"{self.action.dtype}; expected float32 of shape ({ACTION_DIM},)."
            )
        unknown = [event for event in self.events if event not in EVENTS]
        if unknown:
            raise ValueError(f"TeleopCommand.events has {unknown}; expected events from {EVENTS}.")


@runtime_checkable
class Teleop(Protocol):
    """A human input device that yields end-effector commands.

    Implementations read the device in the background; ``read`` never blocks.
    """

    def read(self) -> TeleopCommand:
        """Return the latest command and the events pressed since the previous read."""
        ...

    def close(self) -> None:
        """Stop reading, release the device and restore anything the device changed."""
        ...
