"""The learner of a robot run: gradient updates on a thread beside the real-time control loop
(see robot_rl.train.robot for the rules it keeps)."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

LEARNER_NICE = 10  # the learner thread's niceness: below the control loop's
WINDOW_POLL_S = 5e-4


class Learner:
    """The gradient updates of a robot run, on a thread beside the control loop (see the module docstring)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.lock = threading.Lock()  # held for each update: a checkpoint takes it to pause learning
        self._wake = threading.Condition()
        self.owed = 0.0
        self.dropped = 0
        self.update_s = 0.0  # running mean of one update's time
        self.error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="robot-learner", daemon=True)
        self._thread.start()

    def owe(self, updates: float) -> None:
        with self._wake:
            room = self.trainer.config.max_owed - self.owed
            self.dropped += int(max(0.0, updates - room))
            self.owed += min(updates, max(room, 0.0))
            self._wake.notify()
        if self.error is not None:
            raise RuntimeError(f"the learner thread failed: {self.error}") from self.error

    def drain(self, timeout_s: float) -> None:
        """Wait until what is owed is paid (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while self.owed >= 1 and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)

    @contextmanager
    def paused(self):
        with self.lock:
            yield

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=30.0)

    def _run(self) -> None:
        try:
            _lower_priority()
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._stop or self.owed >= 1)
                    if self._stop:
                        return
                while not self.trainer.may_update(self.update_s) and not self._stop:
                    time.sleep(WINDOW_POLL_S)
                with self.lock:
                    start = time.perf_counter()
                    self.trainer.update_once()
                    took = time.perf_counter() - start
                    self.trainer.maybe_publish()
                self.update_s = took if self.update_s == 0 else 0.95 * self.update_s + 0.05 * took
                with self._wake:
                    self.owed -= 1
        except BaseException as error:  # noqa: BLE001 - reported by the control loop at its next step
            self.error = error
            log.exception("the learner thread failed")


def _lower_priority() -> None:
    """Nice the calling thread (Linux: a thread is a task of its own), so the control loop and the
    robot's drivers win the cores whenever the learner competes with them; needs no privilege."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LEARNER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the learner just competes
        log.debug("learner thread keeps its priority", exc_info=True)
