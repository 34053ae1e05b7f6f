"""A recording session: drive an env with a teleop device (or a scripted expert) and keep
episodes in a Zarr store, with the controls a person expects.

Duck-typed on purpose: ``env`` is any gymnasium env whose info carries ``success``,
``progress`` and ``instruction``; ``device.read()`` returns an object with ``action`` and
``events``; ``writer`` is an ``EpisodeWriter``. So the same loop serves the sim today and a
ROS 2 control loop later, and ``robot_rl`` imports neither ``sim`` nor ``hardware``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from robot_rl import contracts

log = logging.getLogger(__name__)


class Viewer(Protocol):
    def show(self, frames: dict[str, np.ndarray], status: str) -> None: ...


@dataclass
class SessionSummary:
    kept: int = 0
    successes: int = 0
    discarded: int = 0
    quit: bool = False
    kept_indices: list[int] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.kept if self.kept else 0.0

    def status(self) -> str:
        """``kept`` counts only episodes whose commit is on disk (see :meth:`RecordingSession._keep`)."""
        return f"kept {self.kept} (success {self.success_rate:.0%}), discarded {self.discarded}"


def step_record(obs: dict[str, np.ndarray], action: np.ndarray, reward: float, info: dict) -> dict[str, Any]:
    """One store row: the observation the action was taken from, the action, its outcome."""
    row = {key: value for key, value in obs.items()}
    row[contracts.ACTION] = np.asarray(action, dtype=np.float32)
    row[contracts.REWARD] = np.float32(reward)
    row[contracts.INFO_SUCCESS] = np.bool_(info["success"])
    row[contracts.INFO_PROGRESS] = np.float32(info["progress"])
    return row


class RecordingSession:
    """Waits for ``start``, records until ``keep``/``discard``/time limit, repeats; ``quit`` ends."""

    def __init__(self, env, device, writer, *, episodes: int, source: str, task: str, seed: int = 0,
                 realtime: bool = True, autostart: bool = False, viewer: Viewer | None = None,
                 on_status: Callable[[str], None] | None = None, extra: dict | None = None) -> None:
        self.env, self.device, self.writer = env, device, writer
        self.episodes, self.source, self.task = episodes, source, task
        self.seed, self.realtime, self.autostart = seed, realtime, autostart
        self.viewer, self.on_status = viewer, on_status or (lambda text: log.info(text))
        self.period_s = 1.0 / env.unwrapped.config.control_rate_hz
        self.summary = SessionSummary()
        self.extra = extra or {}

    def run(self) -> SessionSummary:
        """Record until ``episodes`` are kept or the person quits."""
        while self.summary.kept < self.episodes and not self.summary.quit:
            if not self.autostart and not self._wait_for_start():
                break
            self._record_one(self.seed + self.summary.kept + self.summary.discarded)
            self.on_status(self.summary.status())
        return self.summary

    def _wait_for_start(self) -> bool:
        obs = None
        while True:
            command = self.device.read()
            if "quit" in command.events:
                self.summary.quit = True
                return False
            if "start" in command.events or "keep" in command.events:
                return True
            if self.viewer is not None:
                obs = obs or self.env.unwrapped._observe()
                self.viewer.show(_frames(obs), "press start to record  " + self.summary.status())
            time.sleep(self.period_s)

    def _record_one(self, seed: int) -> None:
        obs, info = self.env.reset(seed=seed)
        if hasattr(self.device, "on_episode_start"):  # a scripted device plans from the new scene
            self.device.on_episode_start()
        self.writer.start_episode(source=self.source, instruction=info["instruction"], task=self.task, seed=seed,
                                  extra=self.extra)
        marked: bool | None = None
        next_tick = time.monotonic()
        while True:
            command = self.device.read()
            events = set(command.events)
            marked = True if "success" in events else False if "failure" in events else marked
            if events & {"discard", "quit"}:
                self.writer.end_episode(success=False, keep=False)
                self.summary.discarded += 1
                self.summary.quit = "quit" in events
                return
            new_obs, reward, terminated, truncated, info = self.env.step(command.action)
            self.writer.add_step(step_record(obs, command.action, reward, info))
            obs = new_obs
            if self.viewer is not None:
                self.viewer.show(_frames(obs), f"REC  {info['instruction']}  progress {info['progress']:.2f}")
            if "keep" in events or terminated or truncated:
                self._keep(info["success"] if marked is None else marked)
                return
            if self.realtime:
                next_tick += self.period_s
                time.sleep(max(0.0, next_tick - time.monotonic()))

    def _keep(self, success: bool) -> None:
        # "kept" is a promise that the episode survives a crash, so it is counted (and shown)
        # only once its commit is on disk; the wait is one flush plus two small metadata writes.
        index = self.writer.end_episode(success=bool(success), keep=True, wait=True)
        if index is not None:
            self.summary.kept += 1
            self.summary.successes += int(success)
            self.summary.kept_indices.append(index)


def _frames(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in obs.items() if k.startswith(contracts.OBS_IMAGES_PREFIX)}


class OpenCVViewer:
    """A live camera window when a display and a GUI-enabled OpenCV exist."""

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        cv2.namedWindow("robot_rl record", cv2.WINDOW_NORMAL)

    def show(self, frames: dict[str, np.ndarray], status: str) -> None:
        if not frames:
            return
        from robot_rl.media import annotate

        image = annotate(np.concatenate(list(frames.values()), axis=1), [status])
        self._cv2.imshow("robot_rl record", image[..., ::-1])
        self._cv2.waitKey(1)


def make_viewer(display: str) -> Viewer | None:
    """``display=auto`` opens a window when possible and falls back to headless with a log line."""
    import os

    if display == "off" or (display == "auto" and not os.environ.get("DISPLAY")):
        return None
    try:
        return OpenCVViewer()
    except Exception as error:  # noqa: BLE001 - headless OpenCV builds raise cv2.error here
        log.info("no live view (%s); recording headless.", str(error).splitlines()[0][:80])
        return None
