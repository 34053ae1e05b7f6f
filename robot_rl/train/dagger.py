"""DAgger's data: episodes rolled out by teacher or student, every step labelled by the teacher,
committed to a Zarr episode store and aggregated in memory for the learner.

β is the probability that an *episode* is executed by the teacher (else by the student); each
step's label is the teacher's action either way. Per episode rather than per step because then
each round's student episodes are pure student rollouts (the state distribution DAgger is
about, and an honest per-round student success at no extra cost) and teacher episodes measure
the teacher on the same collection randomisation; an expert's per-episode state (push's
approach) also stays consistent within an episode. The store keeps what the learner trains on (the student's inputs
and ``action`` = the teacher's label) plus ``info/executed_action``, ``info/beta``,
``info/teacher_executed``, ``info/success`` and ``info/progress``, and the privileged state the
teacher saw (``info/privileged``, the student's auxiliary target, never its input), so
``robot-rl data info`` shows it and ``algo=bc data=<run>/distill.zarr`` can reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

from robot_rl.algos.networks import ObsSpec
from robot_rl.contracts import ACTION, INFO_PROGRESS, INFO_SUCCESS, REWARD
from robot_rl.train.collect import EnvFactory, _final_info
from robot_rl.train.teachers import PRIVILEGED, TEACHER_ACTION

EXECUTED, BETA, TEACHER_EXECUTED = "info/executed_action", "info/beta", "info/teacher_executed"
AUX = "info/" + PRIVILEGED


def store_schema(obs_specs: dict[str, ObsSpec], action_dim: int, aux_dim: int = 0) -> dict[str, tuple]:
    """The distillation store's per-step keys: the student's inputs, the label and what happened
    (and the privileged state, ``aux_dim`` wide, when the env has it)."""
    schema = {**{k: (tuple(s.shape), s.dtype) for k, s in obs_specs.items()}, ACTION: ((action_dim,), "float32"),
              EXECUTED: ((action_dim,), "float32"), BETA: ((), "float32"), TEACHER_EXECUTED: ((), "bool"),
              REWARD: ((), "float32"), INFO_SUCCESS: ((), "bool"), INFO_PROGRESS: ((), "float32")}
    if aux_dim:
        schema[AUX] = ((aux_dim,), "float32")
    return schema


@dataclass
class Episode:
    rows: dict[str, list] = field(default_factory=dict)
    instruction: str = ""
    task: str = ""
    seed: int = 0
    by_teacher: bool = True
    success: bool = False

    def add(self, row: dict[str, np.ndarray]) -> None:
        for key, value in row.items():
            self.rows.setdefault(key, []).append(value)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.rows.items()}


class Aggregate:
    """DAgger's growing dataset (observations, teacher labels and, with ``aux_dim``, the privileged
    auxiliary target), sampled uniformly."""

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, seed: int = 0, aux_dim: int = 0) -> None:
        self.keys = [*obs_specs, ACTION] + ([AUX] if aux_dim else [])
        self.arrays = {k: np.zeros((1024, *s.shape), np.dtype(s.dtype)) for k, s in obs_specs.items()}
        self.arrays[ACTION] = np.zeros((1024, action_dim), np.float32)
        if aux_dim:
            self.arrays[AUX] = np.zeros((1024, aux_dim), np.float32)
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, episode: dict[str, np.ndarray]) -> None:
        n = len(episode[ACTION])
        if self.size + n > len(self.arrays[ACTION]):
            grow = max(2 * len(self.arrays[ACTION]), self.size + n)
            self.arrays = {k: np.concatenate([a, np.zeros((grow - len(a), *a.shape[1:]), a.dtype)])
                           for k, a in self.arrays.items()}
        for key in self.keys:
            self.arrays[key][self.size: self.size + n] = episode[key]
        self.size += n

    def sample(self, batch_size: int) -> dict:
        index = self.rng.integers(0, self.size, batch_size)
        batch = {"obs": {k: a[index] for k, a in self.arrays.items() if k not in (ACTION, AUX)},
                 "action": self.arrays[ACTION][index]}
        if AUX in self.arrays:
            batch["aux"] = self.arrays[AUX][index]
        return batch

    def observations(self, key: str) -> np.ndarray:
        return self.arrays[key][: self.size]


class DaggerCollector:
    """Rolls out ``num_envs`` student envs (labelled by their teacher) for whole episodes."""

    def __init__(self, makers: list[EnvFactory], obs_keys: list[str], seed: int, aux: bool = False) -> None:
        mode = gym.vector.AutoresetMode.SAME_STEP
        self.envs = (gym.vector.AsyncVectorEnv(makers, context="spawn", autoreset_mode=mode) if len(makers) > 1
                     else gym.vector.SyncVectorEnv(makers, autoreset_mode=mode))
        self.num_envs, self.obs_keys, self.aux = len(makers), obs_keys, aux
        self.rng = np.random.default_rng(seed)

    def collect(self, episodes: int, beta: float, student: Callable[[dict], np.ndarray], seed: int,
                on_episode: Callable[[Episode], None]) -> list[Episode]:
        """``episodes`` finished episodes (seeds ``seed, seed+1, ...``); episodes still running when
        enough have finished are dropped. ``on_episode`` sees each as it ends (the store)."""
        seeds = [seed + i for i in range(self.num_envs)]
        next_seed = seed + self.num_envs
        obs, infos = self.envs.reset(seed=seeds)
        open_ = [self._start(infos, i, s, beta) for i, s in enumerate(seeds)]
        done: list[Episode] = []
        while len(done) < episodes:
            labels = np.asarray(infos[TEACHER_ACTION], np.float32)
            privileged = np.asarray(infos[PRIVILEGED], np.float32) if self.aux else None
            by_teacher = np.array([e.by_teacher for e in open_])
            action = labels.copy()
            if not by_teacher.all():
                action[~by_teacher] = student({k: obs[k][~by_teacher] for k in self.obs_keys})
            next_obs, reward, terminated, truncated, infos = self.envs.step(action)
            ended = np.logical_or(terminated, truncated)
            step_info = _final_info(infos, ended)
            for i, episode in enumerate(open_):
                success = bool(step_info[INFO_SUCCESS.split("/")[1]][i])
                episode.success |= success
                episode.add({**{k: obs[k][i] for k in self.obs_keys}, ACTION: labels[i], EXECUTED: action[i],
                             BETA: np.float32(beta), TEACHER_EXECUTED: np.bool_(episode.by_teacher),
                             REWARD: np.float32(reward[i]), INFO_SUCCESS: np.bool_(success),
                             INFO_PROGRESS: np.float32(step_info["progress"][i]),
                             **({AUX: privileged[i]} if privileged is not None else {})})
            for i in np.flatnonzero(ended):
                if len(done) < episodes:
                    on_episode(open_[i])
                    done.append(open_[i])
                open_[i] = self._start(infos, i, next_seed, beta)  # same-step autoreset: infos are the reset's
                next_seed += 1
            obs = next_obs
        return done

    def _start(self, infos: dict, i: int, seed: int, beta: float) -> Episode:
        task = infos.get("task")
        return Episode(instruction=str(infos["instruction"][i]), task=str(task[i]) if task is not None else "",
                       seed=seed, by_teacher=bool(self.rng.random() < beta))

    def close(self) -> None:
        self.envs.close()


class EpisodeSink:
    """Commits finished episodes to the distillation store (crash-safe: one commit per episode)."""

    def __init__(self, path: Path, schema: dict, attrs: dict, teacher_source: str) -> None:
        from robot_rl.data.writer import EpisodeWriter

        self.writer = EpisodeWriter(path, schema, attrs)
        self.default_task, self.teacher_source = str(attrs.get("task") or ""), teacher_source

    def __call__(self, episode: Episode) -> None:
        w = self.writer
        w.start_episode(source=self.teacher_source if episode.by_teacher else "policy", instruction=episode.instruction,
                        task=episode.task or self.default_task, seed=episode.seed,
                        extra={"executed_by": "teacher" if episode.by_teacher else "student",
                               "beta": float(episode.rows[BETA][0])})
        for t in range(len(episode.rows[ACTION])):
            w.add_step({k: v[t] for k, v in episode.rows.items()})
        w.end_episode(episode.success)

    def close(self) -> None:
        self.writer.close()


def load_aggregate(path: Path, aggregate: Aggregate) -> int:
    """Add every committed episode of an existing distillation store (a resumed run); returns the count."""
    from robot_rl.data.store import EpisodeStore

    if not Path(path).exists():
        return 0
    with EpisodeStore.open(path) as store:
        missing = [k for k in aggregate.keys if k not in store.schema]
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}, which this run trains on (a store from an "
                             "older version or other settings); start a new run, or resume with the settings it had.")
        for index in range(store.num_episodes):
            aggregate.add(store.read_episode(index, aggregate.keys, verify=True))
        return store.num_episodes
