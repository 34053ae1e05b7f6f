"""DAgger rollouts on Ray actors (``robot-rl train algo=distill ray.actors=N``).

Each actor holds one student env (the teacher labelling inside it, as in one process) and a CPU
copy of the student. Every round the learner publishes the student's weights once; each actor
rolls out its share of the round's episodes with them (the teacher executing each with
probability β) and returns them whole. The learner commits them to ``distill.zarr`` in actor
order and aggregates them exactly as ``DaggerCollector`` episodes, so the store, the schedule,
checkpoints and resume are unchanged. An actor that dies or exceeds ``ray.actor_timeout_s`` is
restarted and its share collected again (nothing of it was committed).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from robot_rl.distributed.actors import policy_weights
from robot_rl.distributed.session import RayConfig
from robot_rl.train.dagger import DaggerCollector, Episode

log = logging.getLogger(__name__)


class DaggerActor:
    """One student env and a student copy, collecting whole DAgger episodes."""

    def __init__(self, make_env, obs_keys: list[str], make_agent: Callable[[], Any], aux: bool, seed: int,
                 torch_threads: int = 1) -> None:
        import torch

        torch.set_num_threads(torch_threads)
        self.agent = make_agent()
        self.collector = DaggerCollector([make_env], obs_keys, seed, aux=aux)

    def collect(self, episodes: int, beta: float, weights: dict, seed: int) -> list[Episode]:
        for name, state in weights.items():
            getattr(self.agent, name).load_state_dict(state)
        done: list[Episode] = []
        self.collector.collect(episodes, beta, lambda obs: self.agent.act(obs, deterministic=True), seed, done.append)
        return done


class RayDaggerCollector:
    """``DaggerCollector``'s ``collect`` over Ray actors, one per collection env factory."""

    def __init__(self, makers: list, obs_keys: list[str], seed: int, aux: bool, agent, make_agent: Callable[[], Any],
                 config: RayConfig, torch_threads: int = 1) -> None:
        from robot_rl.distributed.session import import_ray

        self.ray, self.agent, self.config = import_ray(), agent, config
        self.remote = self.ray.remote(num_cpus=config.actor_cpus, max_restarts=0)(DaggerActor)
        self.args = [(make, list(obs_keys), make_agent, aux, seed + 7919 * i, torch_threads) for i, make in enumerate(makers)]
        self.handles = [self.remote.remote(*args) for args in self.args]
        self.restarts = 0

    def collect(self, episodes: int, beta: float, student, seed: int, on_episode: Callable[[Episode], None]) -> list[Episode]:
        """``episodes`` episodes split over the actors (``student`` acts on the actors, from the
        agent's weights published here). Seeds: ``seed, seed+1, ...`` across actors in order."""
        n = len(self.handles)
        shares = [episodes // n + (k < episodes % n) for k in range(n)]
        starts = np.concatenate([[0], np.cumsum(shares)[:-1]]) + np.arange(n)  # each actor resets one env ahead
        weights = self.ray.put(policy_weights(self.agent))
        calls = {k: self.handles[k].collect.remote(shares[k], beta, weights, seed + int(starts[k]))
                 for k in range(n) if shares[k]}
        results = {k: self.result(k, call, shares[k], beta, weights, seed + int(starts[k])) for k, call in calls.items()}
        done = [episode for k in sorted(results) for episode in results[k]]
        for episode in done:
            on_episode(episode)
        return done

    def result(self, k: int, call, share: int, beta: float, weights, seed: int, tries: int = 3) -> list[Episode]:
        """Actor ``k``'s episodes; a dead or silent actor is restarted and asked again, ``tries``
        times, then the run stops with one sentence."""
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        from robot_rl.config import ConfigError

        timeout = self.config.actor_startup_s + self.config.actor_timeout_s * max(1, share)
        attempt = 0
        while True:
            try:
                return self.ray.get(call, timeout=timeout)
            except (RayActorError, RayTaskError, GetTimeoutError) as error:
                what = "timed out" if isinstance(error, GetTimeoutError) else f"failed ({type(error).__name__})"
                attempt += 1
                if attempt > tries:
                    raise ConfigError(f"DAgger actor {k} {what} {attempt} times in a row; the run stopped.") from None
                log.warning("DAgger actor %d %s; restarting it and collecting its %d episodes again", k, what, share)
                self.ray.kill(self.handles[k], no_restart=True)
                self.handles[k] = self.remote.remote(*self.args[k])
                self.restarts += 1
                call = self.handles[k].collect.remote(share, beta, weights, seed)

    def close(self) -> None:
        for handle in self.handles:
            self.ray.kill(handle, no_restart=True)
