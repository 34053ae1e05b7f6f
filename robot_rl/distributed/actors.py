"""An env actor: one simulator, a CPU copy of the policy and (with ``reward=vlm``) the reward
model, stepping in its own Ray worker and sending what it collected in chunks.

The learned reward is scored here, on the actor, not on the learner: the actor has just rendered
the reward's frames, so only the policy's observations cross the wire (for a state policy about
0.3 KB a step instead of two 84 px frames, 42 KB), and scoring scales with the actors instead of
queueing on the learner. Each actor labels its own steps exactly as the single-process trainer
does (``LearnedReward`` over a one-env collector) and sends its agreement with the sim's ground
truth along.

The class is plain Python (tests run it in-process); ``remote_actor_class`` makes it a Ray actor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from robot_rl.train.collect import Collector, EnvFactory


@dataclass
class Chunk:
    """``steps`` consecutive env steps of one actor, and what it saw while taking them."""

    actor: int
    version: int  # learner updates of the weights it acted with; -1: uniform random actions
    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: np.ndarray
    next_obs: dict[str, np.ndarray]
    done: np.ndarray  # true termination (bootstrapping stops)
    ended: np.ndarray  # an episode ended at this step (termination or time limit)
    returns: list[float] = field(default_factory=list)  # episodes that ended in the chunk
    successes: list[bool] = field(default_factory=list)
    busy_s: float = 0.0  # the actor's wall time for the chunk
    agreement: Any = None  # the learned reward's RewardAgreement over these steps (None for gt)

    @property
    def steps(self) -> int:
        return len(self.action)

    @property
    def nbytes(self) -> int:
        arrays = [*self.obs.values(), *self.next_obs.values(), self.action, self.reward, self.done, self.ended]
        return int(sum(a.nbytes for a in arrays))

    def rows(self, lo: int, hi: int) -> dict:
        """Rows ``lo:hi`` as replay-buffer arguments."""
        return {"obs": {k: v[lo:hi] for k, v in self.obs.items()}, "action": self.action[lo:hi],
                "reward": self.reward[lo:hi], "next_obs": {k: v[lo:hi] for k, v in self.next_obs.items()},
                "done": self.done[lo:hi]}


def policy_weights(agent) -> dict[str, dict]:
    """What acting needs of an agent (encoder with its normalisation, and the policy head), on the CPU."""
    return {name: {k: v.detach().cpu() for k, v in getattr(agent, name).state_dict().items()}
            for name in ("encoder", agent.POLICY_HEAD)}


class EnvActor:
    """Steps one env with the latest policy weights it was sent; ``run`` returns one ``Chunk``."""

    def __init__(self, index: int, make_env: EnvFactory, make_agent: Callable[[], Any], obs_keys: list[str],
                 reward: dict | None, env_reward: str, seed: int, torch_threads: int = 1) -> None:
        import torch

        torch.set_num_threads(torch_threads)
        torch.manual_seed(seed)
        self.index, self.obs_keys, self.version = index, list(obs_keys), -1
        self.rng = np.random.default_rng(seed)
        self.error: str | None = None
        try:  # a failure is reported by ``ready`` in one line, not as a worker traceback
            self.agent = make_agent()
            self.reward = None
            if reward is not None:
                from robot_rl.train.rewards import build_reward

                self.reward = build_reward(reward, env_reward)
            self.collector = Collector(make_env, 1, seed=seed)
        except Exception as error:  # noqa: BLE001 - whatever it is, the learner says it in one sentence
            self.error = error_line(error)

    def ready(self) -> str | None:
        """Returns once the constructor has (the env is built): None, or why it could not start."""
        return self.error

    def run(self, steps: int, weights: dict | None, version: int, explore: bool, privilege: float = 0.0) -> Chunk:
        """``steps`` env steps: uniform random actions when ``explore`` (the seed phase), else
        the stochastic policy, after loading ``weights`` (None: keep the ones it has), with the
        privileged-action curriculum's strength ``privilege`` (``sim.privilege``)."""
        start = time.perf_counter()
        self.collector.set_privilege(privilege)
        if weights is not None and version != self.version:
            for name, state in weights.items():
                getattr(self.agent, name).load_state_dict(state)
            self.version = version
        columns: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs", "done", "ended")}
        collector = self.collector
        shape = (1, *collector.envs.single_action_space.shape)  # not every agent keeps its action_dim
        for _ in range(steps):
            if explore:
                action = self.rng.uniform(-1, 1, shape).astype(np.float32)
            else:
                action = self.agent.act(collector.obs, deterministic=False)
            t = collector.step(action, self.reward)
            ended = np.logical_or(t.terminated, _ended(collector))
            for name, value in (("obs", {k: t.obs[k][0] for k in self.obs_keys}), ("action", t.action[0]),
                                ("reward", t.reward[0]), ("next_obs", {k: t.next_obs[k][0] for k in self.obs_keys}),
                                ("done", t.terminated[0]), ("ended", ended[0])):
                columns[name].append(value)
        stats = collector.pop_stats()
        agreement = None
        if self.reward is not None and getattr(self.reward, "agreement", None) is not None:
            agreement, self.reward.agreement = self.reward.agreement, type(self.reward.agreement)()
        return Chunk(self.index, -1 if explore else self.version, _stack(columns["obs"]), np.stack(columns["action"]),
                     np.asarray(columns["reward"], np.float32), _stack(columns["next_obs"]),
                     np.asarray(columns["done"], bool), np.asarray(columns["ended"], bool),
                     stats.returns, stats.successes, time.perf_counter() - start, agreement)

    def close(self) -> None:
        self.collector.close()


def error_line(error: BaseException) -> str:
    """An error in a few words: its type and its message's last line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[-1] if text else ''}"


def _ended(collector: Collector) -> np.ndarray:
    """Did the step just taken end an episode? The collector zeroes an env's length counter then."""
    return collector.episode_length == 0


def _stack(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def remote_actor_class(ray, cpus: float):
    """``EnvActor`` as a Ray actor declaring ``cpus`` CPUs (no restarts by Ray: the learner
    restarts a dead actor itself, so it knows which episode was lost)."""
    return ray.remote(num_cpus=cpus, max_restarts=0)(EnvActor)
