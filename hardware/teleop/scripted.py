"""A scripted teleop device for tests and benches: a fake operator, the real command mapping.

Only the operator is scripted: each step's input goes into a :class:`CommandMapper` as axes
and button levels, so deadzone, scaling, the gripper mode, edge-triggered events and
``intervene_on_motion`` behave exactly as they do behind a real device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hardware.teleop.base import TeleopCommand
from hardware.teleop.config import TeleopConfig
from hardware.teleop.mapping import N_AXES, CommandMapper

SCRIPTED_HELP = "Scripted teleop: plays a fixed operator input, one step per read."

Script = Sequence[TeleopCommand] | Callable[[int], TeleopCommand]


def _pass_through() -> TeleopConfig:
    # With no deadzone and a held gripper, a scripted step reads back as itself.
    return TeleopConfig(deadzone=0.0, gripper_mode="hold")


class ScriptedTeleop:
    """A Teleop whose operator input is a script: one TeleopCommand per :meth:`read`.

    Each scripted command is read as device input: ``action[:4]`` are the raw axes,
    ``action[4] > 0`` is the gripper button held, ``intervening`` the intervene button held
    and ``events`` buttons pressed once. Under the default config (no deadzone, gripper held)
    a read returns the scripted command itself. After a list runs out, the last input stays
    held without its events, as a real device's would.

    Args:
        script: the commands in order, or a function from the read index (0, 1, ...) to one.
        config: the mapping to run them through; None passes them through unchanged.
    """

    help = SCRIPTED_HELP

    def __init__(self, script: Script, config: TeleopConfig | None = None) -> None:
        if not callable(script) and len(script) == 0:
            raise ValueError("ScriptedTeleop's script is empty; expected at least one command.")
        self._script = script
        self._mapper = CommandMapper(config if config is not None else _pass_through())
        self._index = 0
        self.closed = False

    def read(self) -> TeleopCommand:
        """Apply the next scripted input and return the mapped command."""
        step = self._next()
        if step is not None:
            self._apply(step)
        self._index += 1
        return self._mapper.command()

    def close(self) -> None:
        """Mark closed; later reads still work (there is no device to lose)."""
        self.closed = True

    def _next(self) -> TeleopCommand | None:
        if callable(self._script):
            return self._script(self._index)
        return self._script[self._index] if self._index < len(self._script) else None

    def _apply(self, step: TeleopCommand) -> None:
        self._mapper.set_axes(step.action[:N_AXES])
        gripper_held = bool(step.action[N_AXES] > 0)
        self._mapper.set_buttons({"gripper": gripper_held, "intervene": step.intervening})
        for event in step.events:  # press and release, so a repeated event fires again
            self._mapper.set_button(event, True)
            self._mapper.set_button(event, False)
