"""System identification's excitation motions played on an arm, as a teleop device.

The teleop node's ``device:=excite`` plays the motions ``robot-rl sysid`` learns the most from
(``robot_rl.sysid.explore``: chosen in the sim by Fisher information, keeping the hand in free
space from the home pose) on a real arm, through the node's safety filter, while the recorder
node records them: each motion is one episode (``start`` a tick before its first action,
``keep`` a tick after its last, holding still on both), then the arm retraces the motion backwards to where it began, not recorded,
and rests ``settle_s`` before the next. Start with the arm at its home pose (the sim's reset
pose), where the motions were chosen to stay clear of the table and the workspace's edge.

The player acts only while ``ready()`` says the node commands the arm at full rate (active,
ramped in, no fault, no e-stop). If that stops in the middle of a motion, the episode is
discarded (``discard``) and the motion is played again once the arm is ready and has rested:
a recorded motion is always whole, as sysid's windows assume.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hardware.teleop.base import TeleopCommand

MOTION_AXES = 4  # [dx, dy, dz, dyaw]: negated to retrace; the gripper command is absolute


class ExcitationPlayer:
    """Plays ``motions`` ((name, actions (T, 5), ...) as ``choose_excitations`` returns them) one
    per episode at the node's rate; ``read()`` is the teleop device interface."""

    help = "Plays system identification's excitation motions; the recorder keeps one episode per motion."

    def __init__(self, motions: list[tuple], control_rate_hz: float, settle_s: float = 1.0,
                 ready: Callable[[], bool] = lambda: True, scale: float = 1.0) -> None:
        self.motions = [(str(m[0]), np.asarray(m[1], np.float32).copy()) for m in motions]
        for name, actions in self.motions:
            if actions.ndim != 2 or actions.shape[1] != MOTION_AXES + 1 or len(actions) == 0:
                raise ValueError(f"excitation motion {name!r} has shape {actions.shape}; the teleop node plays "
                                 f"ee_delta actions of {MOTION_AXES + 1} values ([dx, dy, dz, dyaw, gripper]).")
            actions[:, :MOTION_AXES] *= scale  # the hand's motion; the gripper command stays absolute
        if not self.motions:
            raise ValueError("no excitation motion to play: none of the library's motions keeps the hand in free "
                             "space from this robot's home pose.")
        self.settle_ticks = max(1, round(settle_s * control_rate_hz))  # the last one carries ``start``
        self.ready = ready
        self.index, self.phase, self.step = 0, "settle", 0
        self.played: list[str] = []  # names of the motions recorded whole, in order
        self.interrupted = 0  # motions discarded part-way and played again

    @property
    def done(self) -> bool:
        return self.index >= len(self.motions)

    def read(self) -> TeleopCommand:
        if self.done:
            return self._hold(self.motions[-1][1][-1])
        name, actions = self.motions[self.index]
        if not self.ready():  # wait, rest again, then (re)play this motion from its start
            events = ("discard",) if self.phase in ("play", "finish") else ()
            self.interrupted += bool(events)
            self.phase, self.step = "settle", 0
            return self._hold(actions[0], events)
        if self.phase == "settle":  # rest; the last tick of it starts the episode, a tick before the motion
            self.step += 1
            if self.step < self.settle_ticks:
                return self._hold(actions[0])
            self.phase, self.step = "play", 0
            return self._hold(actions[0], ("start",))
        if self.phase == "play":
            action = actions[self.step]
            self.step += 1
            if self.step == len(actions):
                self.phase = "finish"
            return TeleopCommand(action=action.copy())
        if self.phase == "finish":  # the last action's outcome is in the joint state the recorder sees now
            self.played.append(name)
            self.phase, self.step = "retrace", 0
            return self._hold(actions[-1], ("keep",))
        # retrace: the motion backwards, each step's motion negated, the gripper as it was then
        back = actions[len(actions) - 1 - self.step].copy()
        back[:MOTION_AXES] *= -1
        self.step += 1
        if self.step == len(actions):
            self.index, self.phase, self.step = self.index + 1, "settle", 0
        return TeleopCommand(action=back)

    @staticmethod
    def _hold(like: np.ndarray, events: tuple[str, ...] = ()) -> TeleopCommand:
        """No motion; the gripper command of ``like``."""
        action = np.zeros(MOTION_AXES + 1, np.float32)
        action[MOTION_AXES] = like[MOTION_AXES]
        return TeleopCommand(action=action, events=events)

    def close(self) -> None:
        pass
