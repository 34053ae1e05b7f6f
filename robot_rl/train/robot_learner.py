"""The learner of a robot run: gradient updates on a thread beside the real-time control loop
(see robot_rl.train.robot for the rules it keeps).

``Learner`` runs in whatever process holds the replay buffers it samples: the robot computer's
own (``RobotTrainer``), or a Ray worker on another machine (``robot_rl.distributed.robot_learner``,
``ray.address=`` with env=ros). Either is its *host*, which provides ``agent``, ``config`` (a
``RobotConfig``), ``sampler`` and ``buffer_lock`` over its buffers, ``normalized`` with
``fit_normalization()``, ``update_metrics``, ``offered`` and ``pending_weights`` (the weights
offered to the control loop), and ``may_update(update_s)`` (whether an update may start now).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any

from robot_rl.train.replay import batch_to_torch

log = logging.getLogger(__name__)

LEARNER_NICE = 10  # the learner thread's niceness: below the control loop's
WINDOW_POLL_S = 5e-4


class Learner:
    """The gradient updates of a robot run, on a thread beside the control loop (see the module docstring)."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.lock = threading.Lock()  # held for each update: a checkpoint takes it to pause learning
        self._wake = threading.Condition()
        self.owed = 0.0
        self.dropped = 0
        self.update_s = 0.0  # running mean of one update's time
        self.error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="robot-learner", daemon=True)
        self._thread.start()

    @property
    def updates(self) -> int:
        """Gradient updates the agent has made."""
        return self.host.agent.num_updates

    def added(self, transition: tuple, intervention: bool) -> None:
        """A step went into the host's buffers: nothing to do, this thread samples them itself
        (a remote learner ships it)."""

    def owe(self, updates: float) -> None:
        with self._wake:
            room = self.host.config.max_owed - self.owed
            self.dropped += int(max(0.0, updates - room))
            self.owed += min(updates, max(room, 0.0))
            self._wake.notify()

    def check(self) -> None:
        """Raise the learner's failure. The control loop asks between steps, never inside one, so
        an episode whose last step was taken is always committed."""
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
        host = self.host
        try:
            _lower_priority()
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._stop or self.owed >= 1)
                    if self._stop:
                        return
                while not host.may_update(self.update_s) and not self._stop:
                    time.sleep(WINDOW_POLL_S)
                with self.lock:
                    start = time.perf_counter()
                    self._update()
                    took = time.perf_counter() - start
                    if host.agent.num_updates - host.offered >= host.config.publish_every or host.offered < 0:
                        offer_weights(host)
                self.update_s = took if self.update_s == 0 else 0.95 * self.update_s + 0.05 * took
                with self._wake:
                    self.owed -= 1
        except BaseException as error:  # noqa: BLE001 - reported by the control loop at its next step
            self.error = error
            log.exception("the learner thread failed")

    def _update(self) -> None:
        """One gradient update from the host's buffers; the actor learns every ``utd`` updates once
        ``actor_warmup`` updates of the critic alone are made."""
        host, config = self.host, self.host.config
        if not host.normalized:
            with host.buffer_lock:
                host.fit_normalization()
            host.offered = -1  # the control loop's copy needs the normalisation now
        with host.buffer_lock:
            batch = host.sampler.sample(config.batch_size)
        agent = host.agent
        n = agent.num_updates
        host.update_metrics = agent.update(batch_to_torch(batch, agent.device),
                                           update_actor=n >= config.actor_warmup and n % config.utd == 0)


def offer_weights(host: Any) -> None:
    """Offer the host agent's policy weights (a CPU copy) to the control loop; called where nothing updates."""
    from robot_rl.distributed.actors import policy_weights

    host.pending_weights = (policy_weights(host.agent), host.agent.num_updates)
    host.offered = host.agent.num_updates


def _lower_priority() -> None:
    """Nice the calling thread (Linux: a thread is a task of its own), so the control loop and the
    robot's drivers win the cores whenever the learner competes with them; needs no privilege."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LEARNER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the learner just competes
        log.debug("learner thread keeps its priority", exc_info=True)
