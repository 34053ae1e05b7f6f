"""A robot run's learner on Ray: the robot computer keeps the control loop, the store, the
operator and the e-stop; a Ray worker on another node (a GPU box) pays the gradient updates.

``robot-rl train env=ros ray.address=HOST:PORT`` (``auto`` on a cluster node, ``local`` to try
it on one machine). ``RobotTrainer`` runs as without Ray, with ``RemoteLearner`` in place of its
learner thread; on the learner's node, ``LearnerHost`` runs the same ``Learner`` (the same
updates, UTD accounting, actor warm-up and weight offers) over a copy of the replay buffers.

What crosses the wire, and when:
- **robot -> learner**, every ``SHIP_S``: the transitions added since (the policy's inputs: the
  frozen encoder's features and proprioception, or the frames with ``ros.encoder=none``), which
  of them the operator took (they go to the demonstrations too), and the updates they owe;
- **learner -> robot**, on the same beat: its counters and, when it offered new ones (every
  ``publish_every`` updates), the policy's weights, which the control loop takes at its next step;
- **the whole agent** (critics, optimisers, temperature) at every checkpoint and at the end, so
  the robot computer's checkpoint is complete: ``resume=true`` sends the new learner the agent and
  the buffers, and needs nothing from the learner's machine.

The control loop never waits for the learner: a link thread on the robot computer ships and
polls. A learner whose worker dies (its machine gone, an error) stops the run with one sentence
(``LearnerLostError``) after a checkpoint of everything collected; the agent in it is the one of
the last sync.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any

import numpy as np

from robot_rl.config import ConfigError
from robot_rl.distributed.actors import error_line
from robot_rl.distributed.session import RayConfig, import_ray
from robot_rl.train.online import fit_normalization
from robot_rl.train.replay import MixedSampler, ReplayBuffer, join_batches
from robot_rl.train.robot_learner import Learner

log = logging.getLogger(__name__)

SHIP_S = 0.1  # the link's beat: transitions out, counters and weights back
SYNC_TIMEOUT_S = 120.0  # the longest a checkpoint waits for the learner's agent


class LearnerLostError(RuntimeError):
    """The learner's Ray worker stopped answering (its node went away, or it failed)."""


class LearnerHost:
    """The learner's side, in its Ray worker: the agent on the node's device, the buffers, and a
    ``Learner`` thread over them (this object is that learner's host)."""

    def __init__(self, agent, buffer: ReplayBuffer, demos: ReplayBuffer, config, normalized: bool,
                 torch_threads: int) -> None:
        import torch

        self.error: str | None = None
        try:  # a failure is reported by ``ready`` in one line, not as a worker traceback
            torch.set_num_threads(max(1, torch_threads))
            self.agent = agent.to("cuda" if torch.cuda.is_available() else "cpu")  # Ray hides unassigned GPUs
            self.buffer, self.demos, self.config, self.normalized = buffer, demos, config, normalized
            self.sampler = MixedSampler(buffer, demos, config.demo_fraction)
            self.buffer_lock = threading.Lock()
            self.update_metrics: dict[str, float] = {}
            self.offered, self.pending_weights = -1, None
            self.learner = Learner(self)
        except Exception as error:  # noqa: BLE001 - whatever it is, the robot says it in one sentence
            self.error = error_line(error)

    # --- the Learner's host ----------------------------------------------------------------------
    def may_update(self, update_s: float) -> bool:
        return True  # no control loop shares this machine's cores

    def fit_normalization(self) -> None:
        fit_normalization(self.agent, self.buffer, self.demos, self.config.normalize_obs)
        self.normalized = True

    # --- called by the robot ---------------------------------------------------------------------
    def ready(self) -> dict:
        """Where it runs, once built (``error``: why it could not start)."""
        import ray

        if self.error:
            return {"error": self.error}
        return {"error": None, "pid": os.getpid(), "node": ray.util.get_node_ip_address(),
                "device": str(self.agent.device), "buffer": len(self.buffer), "demos": len(self.demos)}

    def add(self, rows: dict | None, human: np.ndarray | None, owed: float) -> None:
        """Transitions into the buffers (the operator's, ``human``, into the demonstrations too),
        then the updates they owe."""
        if rows is not None:
            with self.buffer_lock:
                self.buffer.add(**rows)
                if human.any():
                    self.demos.add(**{k: ({n: a[human] for n, a in v.items()} if isinstance(v, dict) else v[human])
                                      for k, v in rows.items()})
        if owed:
            self.learner.owe(owed)

    def poll(self, version: int) -> dict:
        """The counters, and the offered weights when they are newer than the robot's ``version``."""
        learner, pending = self.learner, self.pending_weights
        return {"weights": pending if pending is not None and pending[1] != version else None,
                "updates": self.agent.num_updates, "owed": learner.owed, "dropped": learner.dropped,
                "update_s": learner.update_s, "metrics": dict(self.update_metrics),
                "error": error_line(learner.error) if learner.error is not None else None}

    def drain(self, timeout_s: float) -> None:
        self.learner.drain(timeout_s)

    def state(self) -> dict:
        """The whole agent on the CPU, between two updates."""
        with self.learner.paused():
            return {"agent": _to_cpu(self.agent.state_dict()), "normalized": self.normalized}

    def stop(self) -> None:
        self.learner.stop()


class RemoteLearner:
    """The robot computer's side: ``Learner``'s interface to ``RobotTrainer``, over Ray."""

    def __init__(self, trainer: Any, config: RayConfig) -> None:
        ray = import_ray()
        self.ray, self.trainer, self.config = ray, trainer, config
        gpus = config.learner_gpus
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        options: dict[str, Any] = {"num_cpus": config.learner_cpus, "num_gpus": gpus, "max_restarts": 0}
        if config.learner_resource:
            options["resources"] = {str(config.learner_resource): 1}
        agent = copy.deepcopy(trainer.agent).to("cpu")
        with trainer.buffer_lock:  # a resumed run's buffers, refilled from its store, go along
            self.handle = ray.remote(**options)(LearnerHost).remote(
                agent, trainer.buffer, trainer.demos, trainer.config, trainer.normalized, int(max(1, config.learner_cpus)))
        wants = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items()
                          if k != "max_restarts")
        try:
            self.info = ray.get(self.handle.ready.remote(), timeout=config.actor_startup_s)
        except ray.exceptions.GetTimeoutError:
            ray.kill(self.handle)
            raise ConfigError(f"the learner did not start on Ray within ray.actor_startup_s={config.actor_startup_s:g} "
                              f"s: no node offers what it asks ({wants}); `ray status` shows what the cluster has.") from None
        except ray.exceptions.RayError as error:
            raise LearnerLostError(f"the learner's Ray worker failed to start ({error_line(error)}).") from None
        if self.info["error"]:
            ray.kill(self.handle)
            raise ConfigError(f"the learner could not start on Ray: {self.info['error']}.")
        log.info("learner on Ray: node %s, pid %s, %s (%s); %d transitions and %d demonstration steps sent",
                 self.info["node"], self.info["pid"], self.info["device"], wants, self.info["buffer"],
                 self.info["demos"])
        self.owed, self.dropped, self.update_s = 0.0, 0, 0.0
        self.updates = trainer.agent.num_updates
        self.error: str | None = None
        self._rows: list[tuple[tuple, bool]] = []
        self._owe = 0.0
        self._lock = threading.Lock()  # the control loop appends while the link ships
        self._ship_lock = threading.Lock()  # one shipment at a time, in order
        self._poll_call = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._link, name="robot-learner-link", daemon=True)
        self._thread.start()

    # --- Learner's interface -------------------------------------------------------------------
    def added(self, transition: tuple, intervention: bool) -> None:
        with self._lock:
            self._rows.append((transition, intervention))

    def owe(self, updates: float) -> None:
        with self._lock:
            self._owe += updates

    def drain(self, timeout_s: float) -> None:
        """Wait until the learner has paid what is owed, then take its agent."""
        self._ship()
        try:
            self.ray.get(self.handle.drain.remote(timeout_s), timeout=timeout_s + SYNC_TIMEOUT_S)
        except self.ray.exceptions.RayError as error:
            raise self._lost(error) from None
        self.sync()

    @contextmanager
    def paused(self):
        """For a checkpoint: this process's agent becomes the learner's (or, if the learner is
        gone, stays the last one synced, and the checkpoint still keeps every transition)."""
        try:
            self.sync()
        except LearnerLostError as error:
            log.warning("%s The checkpoint keeps the agent as of the last sync.", error)
        yield

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)
        try:
            self.ray.get(self.handle.stop.remote(), timeout=30.0)
        except self.ray.exceptions.RayError:
            pass  # gone already
        finally:
            self.ray.kill(self.handle)

    # --- the link ----------------------------------------------------------------------------------
    def sync(self) -> None:
        """The learner's whole agent (and normalisation) into this process's agent."""
        self._ship()
        try:
            state = self.ray.get(self.handle.state.remote(), timeout=SYNC_TIMEOUT_S)
        except self.ray.exceptions.RayError as error:
            raise self._lost(error) from None
        trainer = self.trainer
        trainer.agent.load_state_dict(state["agent"])
        trainer.normalized = state["normalized"]
        self.updates = trainer.agent.num_updates

    def _link(self) -> None:
        while not self._stop.wait(SHIP_S):
            try:
                self._ship()
                self._poll()
            except Exception as error:  # noqa: BLE001 - the control loop raises it at its next step
                self.error = str(self._lost(error))
                return

    def _ship(self) -> None:
        with self._ship_lock:
            with self._lock:
                rows, owed, self._rows, self._owe = self._rows, self._owe, [], 0.0
            if rows or owed:
                batch = concat_batches_of([r[0] for r in rows]) if rows else None
                human = np.array([r[1] for r in rows], bool) if rows else None
                self.handle.add.remote(batch, human, owed)

    def _poll(self) -> None:
        """Take the learner's last answer when it has come, and ask again (never waits)."""
        if self._poll_call is not None:
            done, _ = self.ray.wait([self._poll_call], timeout=0)
            if not done:
                return
            reply = self.ray.get(self._poll_call)
            self.updates, self.owed, self.dropped = reply["updates"], reply["owed"], reply["dropped"]
            self.update_s = reply["update_s"]
            if reply["metrics"]:
                self.trainer.update_metrics = reply["metrics"]
            if reply["weights"] is not None and reply["weights"][1] != self.trainer.published:
                self.trainer.pending_weights = reply["weights"]
            if reply["error"]:
                self.error = f"the learner on Ray failed: {reply['error']}."
        self._poll_call = self.handle.poll.remote(self.trainer.published)

    def check(self) -> None:
        if self.error is not None:
            raise LearnerLostError(self.error)

    def _lost(self, error: BaseException) -> LearnerLostError:
        if isinstance(error, LearnerLostError):
            return error
        return LearnerLostError(f"the learner on Ray (node {self.info.get('node')}) stopped answering "
                                f"({error_line(error)}); resume=true continues from the last checkpoint.")


def concat_batches_of(transitions: list[tuple]) -> dict:
    """``RobotTrainer.add``'s (obs, action, reward, next_obs, done) rows, one batch of replay-buffer arguments."""
    return join_batches([{"obs": obs, "action": action, "reward": reward, "next_obs": next_obs, "done": done}
                         for obs, action, reward, next_obs, done in transitions], np.concatenate)


def _to_cpu(value):
    """A state dict with every tensor on the CPU (a GPU learner's agent, for a CPU robot computer)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value
