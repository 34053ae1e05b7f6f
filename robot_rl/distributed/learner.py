"""The learner of actor/learner training: N env actors (``actors.EnvActor``) collect, one learner
samples, updates and publishes weights.

The learner is the single-process ``OnlineTrainer`` (same replay, RLPD demos, normalisation,
schedule, evaluation, checkpoints and resume) with its ``collect`` step replaced by chunks
arriving from the actors. What differs:

- **Committed episodes.** An actor's steps wait on the learner until its episode ends, then go
  into the replay buffer together; ``step`` counts committed env steps. An actor that dies or
  hangs loses only its episode in progress: it is killed, restarted with a new seed, and
  training goes on (``ray/actor_restarts``).
- **Same UTD.** Every committed step owes ``algo.utd`` updates; the learner pays them between
  polls of the actors (in slices of ``SLICE`` updates, so an actor that finished a chunk is sent
  its next one within a few milliseconds), and pays any left at the end.
- **Weights and versions.** Every ``ray.publish_every`` updates the learner puts the policy's
  weights into the object store once and sends that reference with each actor's next call. A
  chunk carries the version (learner updates) it was collected with; ``ray/policy_lag`` is the
  learner's updates minus that version, at commit.
- **Failures.** An actor whose call raised before it ever returned a chunk stops the run with
  one sentence (a broken env or config would otherwise restart forever); an actor that worked
  and then fails is restarted. When the learner stops, for any reason, it kills its actors (and
  Ray fate-sharing kills them if the learner process itself is killed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl.config import ConfigError
from robot_rl.distributed.actors import Chunk, error_line, policy_weights, remote_actor_class
from robot_rl.distributed.session import RayConfig
from robot_rl.train.online import OnlineTrainer

log = logging.getLogger(__name__)

SLICE = 8  # updates between polls of the actors
MAX_FAILURES = 5  # failed calls in a row (no chunk between) before an actor's failure stops the run
POLL_S = 0.5  # the longest the learner waits for a chunk before checking timeouts again


@dataclass
class ActorSlot:
    """One actor's handle, its call in flight, its episode waiting to commit, and its counters."""

    index: int
    handle: Any = None
    call: Any = None
    sent_at: float = 0.0
    incarnation: int = 0
    chunks: int = 0  # chunks returned by this incarnation
    starting: bool = True  # its call in flight is ``ready`` (building its env), not a chunk
    failures: int = 0  # failed calls since its last chunk
    pending: list[dict] = field(default_factory=list)  # rows of the episode in progress
    steps: int = 0  # since the last log
    episodes: int = 0
    busy_s: float = 0.0

    def pending_steps(self) -> int:
        return sum(len(rows["action"]) for rows in self.pending)


@dataclass
class ActorSpec:
    """How to build an actor (everything picklable): see ``actors.EnvActor``."""

    make_env: Any
    make_agent: Any
    obs_keys: list[str]
    reward: dict | None
    env_reward: str
    torch_threads: int = 1


class DistributedTrainer(OnlineTrainer):
    """``OnlineTrainer`` fed by Ray actors; ``run()`` returns the final evaluation."""

    def __init__(self, *args, ray_config: RayConfig, actor_spec: ActorSpec, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ray_config, self.actor_spec = ray_config, actor_spec
        self.slots = [ActorSlot(i) for i in range(ray_config.actors)]
        self.owed, self.paid = 0, 0  # updates owed to committed steps, and made
        self.weights_ref, self.version = None, -1
        self.restarts = 0
        self.window = Window()
        self.returns: list[float] = []
        self.successes: list[bool] = []
        self.ray = None

    # --- the loop's steps ----------------------------------------------------------------------
    def start(self) -> None:
        from robot_rl.distributed.session import import_ray

        self.ray = import_ray()
        self.actor_class = remote_actor_class(self.ray, self.ray_config.actor_cpus)
        if self.normalized:  # a resumed run acts with its restored policy from the first chunk
            self.publish()
        try:
            for slot in self.slots:
                self.spawn(slot)
            # The loop's clock starts once the actors can step (or ray.actor_startup_s has passed).
            calls = [slot.call for slot in self.slots]
            done, _ = self.ray.wait(calls, num_returns=len(calls), timeout=self.ray_config.actor_startup_s)
            for slot in self.slots:
                if slot.call in done:
                    self.receive(slot)
        except BaseException:  # the loop's own cleanup starts after start(): stop what was started
            self.close()
            raise

    def train_step(self) -> None:
        waited = time.perf_counter()
        ready = self.poll(timeout=0.0 if self.owed else POLL_S)
        self.window.wait_s += time.perf_counter() - waited
        for slot in ready:
            self.receive(slot)
        self.check_timeouts()
        self.pay(min(self.owed, SLICE))
        self.resume_idle()

    def finish(self, bar) -> None:
        self.pay(self.owed)
        super().finish(bar)

    def close(self) -> None:
        live = [slot for slot in self.slots if slot.handle is not None]
        for slot in live:
            self.kill(slot)
        if live:
            log.info("the learner stopped its %d env actors", len(live))
        super().close()

    # --- actors --------------------------------------------------------------------------------
    def spawn(self, slot: ActorSlot) -> None:
        spec, cfg = self.actor_spec, self.config
        seed = cfg.seed + 7919 * (self.step + 1) + 1009 * (slot.index + 1) + 104_729 * slot.incarnation
        slot.handle = self.actor_class.remote(slot.index, spec.make_env, spec.make_agent, spec.obs_keys, spec.reward,
                                              spec.env_reward, seed, spec.torch_threads)
        slot.chunks, slot.pending, slot.starting = 0, [], True
        slot.call, slot.sent_at = slot.handle.ready.remote(), time.perf_counter()

    def send(self, slot: ActorSlot) -> None:
        explore = self.step < self.config.seed_steps or self.weights_ref is None
        slot.call = slot.handle.run.remote(self.ray_config.chunk_steps, None if explore else self.weights_ref,
                                           self.version, explore, self.config.privilege.strength(self.step))
        slot.sent_at = time.perf_counter()

    def poll(self, timeout: float) -> list[ActorSlot]:
        calls = {slot.call: slot for slot in self.slots if slot.call is not None}
        if not calls:
            return []
        done, _ = self.ray.wait(list(calls), num_returns=1, timeout=timeout)
        if done:  # everything else already finished, without waiting again
            more, _ = self.ray.wait([c for c in calls if c not in done], num_returns=len(calls) - 1, timeout=0)
            done += more
        return [calls[c] for c in done]

    def receive(self, slot: ActorSlot) -> None:
        """Take a finished call's chunk (or its failure) and send the actor its next one."""
        from ray.exceptions import RayActorError, RayTaskError

        started = time.perf_counter()
        try:
            chunk: Chunk = self.ray.get(slot.call)  # finished (ray.wait said so): no timeout needed
        except (RayActorError, RayTaskError) as error:
            self.fail(slot, error)
            return
        if slot.starting:  # the actor's env is built (or could not be): its first chunk
            if chunk is not None:
                self.fail(slot, ActorStartError(chunk))
                return
            slot.starting, slot.call = False, None
            self.send(slot)
            return
        self.window.transfer_s += time.perf_counter() - started
        self.window.bytes += chunk.nbytes
        slot.chunks, slot.failures = slot.chunks + 1, 0
        slot.call = None
        if self.owed <= self.max_owed():  # before the commit and the updates: the actor steps while the learner works
            self.send(slot)
        self.commit(slot, chunk)

    def max_owed(self) -> int:
        """The updates the learner may owe before an actor waits for it: one chunk per actor. Collection
        never runs ahead of the UTD, so the same env steps get the same updates as in one process."""
        return self.config.utd * self.ray_config.chunk_steps * len(self.slots)

    def resume_idle(self) -> None:
        if self.owed <= self.max_owed():
            for slot in self.slots:
                if slot.call is None and slot.handle is not None:
                    self.send(slot)

    def commit(self, slot: ActorSlot, chunk: Chunk) -> None:
        """Queue the chunk's rows on the actor's episode; an ended episode goes into replay."""
        lo = 0
        for end in np.flatnonzero(chunk.ended):
            slot.pending.append(chunk.rows(lo, end + 1))
            self.add_episode(slot)
            lo = end + 1
        if lo < chunk.steps:
            slot.pending.append(chunk.rows(lo, chunk.steps))
        slot.steps += chunk.steps
        slot.episodes += len(chunk.returns)
        slot.busy_s += chunk.busy_s
        self.returns += chunk.returns
        self.successes += chunk.successes
        if chunk.version >= 0:
            self.window.lags.append(self.agent.num_updates - chunk.version)
        agreement = getattr(self.reward_override, "agreement", None)
        if agreement is not None and chunk.agreement is not None:
            agreement.extend(chunk.agreement)

    def add_episode(self, slot: ActorSlot) -> None:
        for rows in slot.pending:
            self.buffer.add(rows["obs"], rows["action"], rows["reward"], rows["next_obs"], rows["done"])
            n = len(rows["action"])
            self.step += n
            if self.step > self.config.seed_steps:
                self.owed += self.config.utd * n
        slot.pending = []

    def fail(self, slot: ActorSlot, error: BaseException) -> None:
        """A failed call: restart the actor (losing its episode in progress), or stop the run when
        it never worked (the same error would come back on every restart)."""
        from ray.exceptions import RayTaskError

        what = _cause(error)
        slot.failures += 1
        if slot.starting and slot.incarnation == 0:  # its env or policy cannot be built: so would every restart's
            raise ConfigError(f"env actor {slot.index} could not start ({what}); the run stopped.")
        if (slot.chunks == 0 and isinstance(error, RayTaskError)) or slot.failures > MAX_FAILURES:
            raise ConfigError(f"env actor {slot.index} failed {slot.failures} time(s) without sending a chunk ({what}); "
                              "the run stopped.")
        self.restart(slot, f"failed ({what})")

    def check_timeouts(self) -> None:
        now, cfg = time.perf_counter(), self.ray_config
        for slot in self.slots:
            limit = cfg.actor_startup_s if slot.starting else cfg.actor_timeout_s
            if slot.call is not None and now - slot.sent_at > limit:
                self.restart(slot, f"{'did not start in' if slot.starting else 'sent nothing for'} {limit:g} s")

    def restart(self, slot: ActorSlot, why: str) -> None:
        lost = slot.pending_steps()
        log.warning("env actor %d %s; restarting it (its episode in progress, %d steps, is discarded)", slot.index,
                    why, lost)
        self.kill(slot)
        self.restarts += 1
        slot.incarnation += 1
        self.spawn(slot)  # its first chunk is asked for once it has started

    def kill(self, slot: ActorSlot) -> None:
        if slot.handle is not None and self.ray is not None:
            try:
                self.ray.kill(slot.handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone is fine
                pass
        slot.handle = slot.call = None

    # --- learning ------------------------------------------------------------------------------
    def pay(self, n: int) -> None:
        """``n`` owed updates, then a weight publish when ``publish_every`` updates have passed."""
        if n <= 0 or len(self.buffer) == 0:
            return
        if not self.normalized:
            self.fit_normalization()
        from robot_rl.train.replay import batch_to_torch

        started = time.perf_counter()
        for _ in range(n):  # the actor and temperature once per utd critic updates, as in one process
            batch = batch_to_torch(self.sample(), self.agent.device)
            self.paid += 1
            self.update_metrics = self.agent.update(batch, update_actor=self.paid % self.config.utd == 0)
        self.owed -= n
        self.window.update_s += time.perf_counter() - started
        self.window.updates += n
        if self.weights_ref is None or self.agent.num_updates - self.version >= self.ray_config.publish_every:
            self.publish()

    def publish(self) -> None:
        self.weights_ref = self.ray.put(policy_weights(self.agent))
        self.version = self.agent.num_updates

    # --- metrics -------------------------------------------------------------------------------
    def log(self, bar) -> None:
        w, metrics = self.window, {**self.update_metrics, **self.progress_metrics()}
        metrics.update({"ray/actors": len(self.slots), "ray/actor_restarts": self.restarts,
                        "ray/learner_wait_s": w.wait_s, "ray/weights_version": self.version})
        steps = sum(slot.steps for slot in self.slots)
        if steps:
            metrics.update({"ray/transfer_kb_per_1k_steps": w.bytes / 1024 / steps * 1000,
                            "ray/transfer_ms_per_1k_steps": 1000 * w.transfer_s / steps * 1000})
        if w.updates:
            metrics["ray/update_ms"] = 1000 * w.update_s / w.updates
        if w.lags:
            metrics.update({"ray/policy_lag_mean": float(np.mean(w.lags)), "ray/policy_lag_max": float(np.max(w.lags))})
        for slot in self.slots:
            metrics.update({f"actor{slot.index}/env_steps_per_s": slot.steps / max(slot.busy_s, 1e-9),
                            f"actor{slot.index}/episodes": slot.episodes, f"actor{slot.index}/restarts": slot.incarnation})
            slot.steps, slot.episodes, slot.busy_s = 0, 0, 0.0
        if self.returns:
            metrics.update({"train/episode_return": float(np.mean(self.returns)),
                            "train/success_rate": float(np.mean(self.successes)), "train/episodes": len(self.returns)})
        agreement = getattr(self.reward_override, "agreement", None)
        if agreement is not None:
            metrics.update(agreement.metrics())
            agreement.reset()
        self.returns, self.successes, self.window = [], [], Window()
        self.logger.log(metrics, self.step)
        self.logged_step = self.step
        postfix = {"ret": metrics.get("train/episode_return", float("nan")),
                   "success": metrics.get("train/success_rate", float("nan")),
                   "lag": metrics.get("ray/policy_lag_mean", float("nan"))}
        if self.last_eval is not None:
            postfix["eval_success"] = self.last_eval.success_rate
        bar.set_postfix({k: f"{v:.2f}" for k, v in postfix.items()}, refresh=False)


class ActorStartError(Exception):
    """An actor's own account (``EnvActor.ready``) of why it could not build its env or policy."""


def _cause(error: BaseException) -> str:
    """The root of a Ray error in a few words: the actor's own exception and its last line."""
    if isinstance(error, ActorStartError):
        return str(error)
    return error_line(getattr(error, "cause", None) or error)


@dataclass
class Window:
    """What the learner measured since its last log line."""

    wait_s: float = 0.0
    transfer_s: float = 0.0
    update_s: float = 0.0
    updates: int = 0
    bytes: int = 0
    lags: list[int] = field(default_factory=list)
