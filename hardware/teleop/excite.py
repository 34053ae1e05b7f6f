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
a recorded motion is always whole, as sysid's windows assume; the part played is retraced first.
A motion cut short ``attempts`` times is skipped (too fast for this arm's tracking: a smaller
``scale`` plays it gentler). Stopped while retracing, it holds, then retraces the rest.
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
                 ready: Callable[[], bool] = lambda: True, scale: float = 1.0, attempts: int = 2) -> None:
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
        self.ready, self.attempts = ready, max(1, int(attempts))
        self.index, self.phase, self.step = 0, "settle", 0
        self._back: np.ndarray | None = None  # the actions to retrace, and whether the motion was kept
        self._kept, self._tries = False, 0
        self.played: list[str] = []  # names of the motions recorded whole, in order
        self.skipped: list[str] = []  # cut short ``attempts`` times: too much for this arm (a smaller scale may do)
        self.interrupted = 0  # motions discarded part-way (each played again or skipped)

    @property
    def done(self) -> bool:
        return self.index >= len(self.motions)

    def read(self) -> TeleopCommand:
        if self.done:
            return self._hold(self.motions[-1][1][-1])
        name, actions = self.motions[self.index]
        if not self.ready():
            if self.phase == "retrace":  # hold, then retrace the rest
                back = self._back if len(self._back) else actions
                return self._hold(back[max(len(back) - 1 - self.step, 0)])
            if self.phase in ("play", "finish"):  # cut short: discard it, retrace what was played, play it again
                self.interrupted += 1
                self._start_retrace(actions[:self.step], kept=False)
                return self._hold(actions[max(self.step - 1, 0)], ("discard",))
            self.step = 0  # resting: rest again from the start once ready
            return self._hold(actions[0])
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
            self._start_retrace(actions, kept=True)
            return self._hold(actions[-1], ("keep",))
        # retrace: what was played, backwards, each step's motion negated, the gripper as it was then
        if self.step == len(self._back):
            return self._next(name, actions)
        back = self._back[len(self._back) - 1 - self.step].copy()
        back[:MOTION_AXES] *= -1
        self.step += 1
        return TeleopCommand(action=back)

    def _start_retrace(self, played: np.ndarray, kept: bool) -> None:
        self._back, self._kept, self.phase, self.step = played, kept, "retrace", 0

    def _next(self, name: str, actions: np.ndarray) -> TeleopCommand:
        """Back where the motion began: on to the next motion, or this one again after a discard."""
        if not self._kept:
            self._tries += 1
            if self._tries >= self.attempts:
                self.skipped.append(name)
        if self._kept or name in self.skipped:
            self.index, self._tries = self.index + 1, 0
        self.phase, self.step = "settle", 0
        return self._hold(actions[0])

    @staticmethod
    def _hold(like: np.ndarray, events: tuple[str, ...] = ()) -> TeleopCommand:
        """No motion; the gripper command of ``like``."""
        action = np.zeros(MOTION_AXES + 1, np.float32)
        action[MOTION_AXES] = like[MOTION_AXES]
        return TeleopCommand(action=action, events=events)

    def close(self) -> None:
        pass
