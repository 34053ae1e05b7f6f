"""Teleop devices (keyboard, SpaceMouse, gamepad, scripted) that yield end-effector commands.

ROS-free: used by the sim recording loop and by the ROS 2 teleop node alike.

    from hardware.teleop import TeleopConfig, make_device

    device = make_device("spacemouse", TeleopConfig(translation_scale=0.5))
    try:
        command = device.read()  # non-blocking: command.action (5,), .events, .intervening
    finally:
        device.close()
"""

from hardware.teleop.base import (
    ACTION_DIM,
    ACTION_NAMES,
    CONTROLS,
    EVENTS,
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    Teleop,
    TeleopCommand,
    TeleopDeviceError,
)
from hardware.teleop.config import GamepadConfig, KeyboardConfig, SpaceMouseConfig, TeleopConfig
from hardware.teleop.factory import DEVICE_NAMES, make_device
from hardware.teleop.gamepad import GamepadTeleop
from hardware.teleop.keyboard import KeyboardTeleop
from hardware.teleop.mapping import CommandMapper, apply_deadzone
from hardware.teleop.scripted import ScriptedTeleop
from hardware.teleop.spacemouse import SpaceMouseTeleop

__all__ = [
    "ACTION_DIM",
    "ACTION_NAMES",
    "CONTROLS",
    "DEVICE_NAMES",
    "EVENTS",
    "GRIPPER_CLOSED",
    "GRIPPER_OPEN",
    "CommandMapper",
    "GamepadConfig",
    "GamepadTeleop",
    "KeyboardConfig",
    "KeyboardTeleop",
    "ScriptedTeleop",
    "SpaceMouseConfig",
    "SpaceMouseTeleop",
    "Teleop",
    "TeleopCommand",
    "TeleopConfig",
    "TeleopDeviceError",
    "apply_deadzone",
    "make_device",
]
