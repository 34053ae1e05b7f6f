"""Replay buffers: a ring of transitions, and RLPD's symmetric demo/online sampling.

A transition is ``obs`` and ``next_obs`` (dicts keyed by observation key, raw: float states,
uint8 images), ``action``, ``reward`` and ``done`` (true only on real termination, never on a
time limit). Buffers save to and load from one ``.npz`` file, so a resumed run keeps them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from robot_rl.algos.networks import ObsSpec


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions, stored as numpy arrays."""

    def __init__(self, obs_specs: dict[str, ObsSpec], action_dim: int, capacity: int, seed: int = 0) -> None:
        self.obs_specs, self.capacity = dict(obs_specs), int(capacity)
        self.arrays: dict[str, np.ndarray] = {"action": np.zeros((capacity, action_dim), np.float32),
                                              "reward": np.zeros(capacity, np.float32),
                                              "done": np.zeros(capacity, bool)}
        for key, spec in obs_specs.items():
            for prefix in ("obs:", "next_obs:"):
                self.arrays[prefix + key] = np.zeros((capacity, *spec.shape), np.dtype(spec.dtype))
        self.size, self.cursor = 0, 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def __getstate__(self) -> dict:
        """Pickled (sent to another process, e.g. a learner on Ray) with its filled rows only."""
        filled = min(self.size, self.capacity)  # below capacity the ring has not wrapped: rows 0..size
        return {**vars(self), "arrays": {name: array[:filled] for name, array in self.arrays.items()}}

    def __setstate__(self, state: dict) -> None:
        arrays = state.pop("arrays")
        vars(self).update(state)
        self.arrays = {}
        for name, rows in arrays.items():
            self.arrays[name] = np.zeros((self.capacity, *rows.shape[1:]), rows.dtype)
            self.arrays[name][: len(rows)] = rows

    def add(self, obs: dict[str, np.ndarray], action: np.ndarray, reward: np.ndarray, next_obs: dict[str, np.ndarray],
            done: np.ndarray) -> None:
        """Add a batch of ``len(action)`` transitions (one per env of a vector env)."""
        n = len(action)
        index = (self.cursor + np.arange(n)) % self.capacity
        for key in self.obs_specs:
            self.arrays["obs:" + key][index] = obs[key]
            self.arrays["next_obs:" + key][index] = next_obs[key]
        self.arrays["action"][index] = action
        self.arrays["reward"][index] = reward
        self.arrays["done"][index] = done
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int) -> dict:
        """A uniform batch as numpy: ``{"obs": {...}, "next_obs": {...}, "action", "reward", "done"}``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer.")
        return self.gather(self.rng.integers(0, self.size, batch_size))

    def sample_sequences(self, batch_size: int, length: int, stride: int = 1) -> dict:
        """``batch_size`` runs of ``length`` consecutive transitions of one episode, stacked on a
        leading time axis: ``obs`` (length, B, ...), ``action`` (length, B, A), ... (TD-MPC2's
        latent rollouts). ``stride`` is the distance between an env's consecutive transitions
        (the number of envs adding together). A run is kept only where each ``next_obs`` is the
        following ``obs`` and no ``done`` comes before its last step, so it never spans two
        episodes, the ring's seam, or another env's steps."""
        if self.size < length * stride:
            raise ValueError(f"cannot sample runs of {length} transitions from a buffer of {self.size}.")
        starts: list[np.ndarray] = []
        for _ in range(100):  # rejection sampling: nearly every start is valid in a long buffer
            start = self.rng.integers(0, self.size, batch_size)
            starts.append(start[self._continuous(start, length, stride)])
            if sum(len(s) for s in starts) >= batch_size:
                break
        start = np.concatenate(starts)[:batch_size]
        if len(start) < batch_size:
            raise ValueError(f"the buffer holds too few runs of {length} consecutive transitions of one episode.")
        steps = [self.gather((start + t * stride) % self.capacity) for t in range(length)]
        return stack_batches(steps)

    def _continuous(self, start: np.ndarray, length: int, stride: int) -> np.ndarray:
        ok = np.ones(len(start), bool)
        age = (self.cursor - 1 - start) % self.capacity if self.size == self.capacity else self.size - 1 - start
        ok &= age >= (length - 1) * stride  # the run ends at or before the newest transition
        for t in range(1, length):
            before, after = (start + (t - 1) * stride) % self.capacity, (start + t * stride) % self.capacity
            ok &= ~self.arrays["done"][before]
            for key in self.obs_specs:
                a, b = self.arrays["next_obs:" + key][before], self.arrays["obs:" + key][after]
                ok &= (a == b).reshape(len(start), -1).all(axis=1)
        return ok

    def gather(self, index: np.ndarray) -> dict:
        batch = {"obs": {}, "next_obs": {}}
        for name, array in self.arrays.items():
            prefix, _, key = name.partition(":")
            if key:
                batch[prefix][key] = array[index]
            else:
                batch[name] = array[index]
        return batch

    def observations(self, key: str) -> np.ndarray:
        """Stored observations of one key (for fitting normalisation)."""
        return self.arrays["obs:" + key][: self.size]

    def save(self, path: str | os.PathLike) -> None:
        """Write the filled part atomically (a temp file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        filled = self.size if self.size < self.capacity else self.capacity
        np.savez(tmp, _meta=np.array([self.size, self.cursor]), _rng=np.array([json.dumps(self.rng.bit_generator.state)]),
                 **{name: array[:filled] for name, array in self.arrays.items()})
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.size, self.cursor = (int(v) for v in data["_meta"])
            for name, array in self.arrays.items():
                array[: len(data[name])] = data[name]
            self.rng.bit_generator.state = json.loads(str(data["_rng"][0]))


class MixedSampler:
    """RLPD's symmetric sampling: ``demo_fraction`` of each batch from demos, the rest online."""

    def __init__(self, online: ReplayBuffer, demos: ReplayBuffer | None = None, demo_fraction: float = 0.5) -> None:
        if not 0.0 <= demo_fraction < 1.0:
            raise ValueError(f"demo_fraction must be in [0, 1), got {demo_fraction}.")
        self.online, self.demos = online, demos
        self.demo_fraction = demo_fraction if demos is not None and len(demos) else 0.0

    def sample(self, batch_size: int) -> dict:
        """A batch with a ``demo`` mask (True on the demonstration rows, which come last)."""
        n_demo = int(round(batch_size * self.demo_fraction))
        online = self.online.sample(batch_size - n_demo)
        batch = concat_batches(online, self.demos.sample(n_demo)) if n_demo else online
        batch["demo"] = np.arange(batch_size) >= batch_size - n_demo
        return batch

    def sample_sequences(self, batch_size: int, length: int, stride: int = 1) -> dict:
        """The same split over runs of ``length`` transitions (the demos, loaded one episode after
        another, with stride 1); rows on axis 1."""
        n_demo = int(round(batch_size * self.demo_fraction))
        online = self.online.sample_sequences(batch_size - n_demo, length, stride)
        if n_demo:
            online = concat_batches(online, self.demos.sample_sequences(n_demo, length), axis=1)
        online["demo"] = np.arange(batch_size) >= batch_size - n_demo
        return online


def join_batches(batches: list[dict], join) -> dict:
    """Batches of the same keys joined key by key with ``join`` (a list of arrays -> one array)."""
    return {name: ({k: join([b[name][k] for b in batches]) for k in value} if isinstance(value, dict)
                   else join([b[name] for b in batches])) for name, value in batches[0].items()}


def stack_batches(batches: list[dict]) -> dict:
    """Batches of the same keys stacked on a new leading axis."""
    return join_batches(batches, np.stack)


def concat_batches(a: dict, b: dict, axis: int = 0) -> dict:
    """``b``'s rows after ``a``'s (on ``axis``: 1 for runs of transitions, whose axis 0 is time)."""
    return join_batches([a, b], lambda arrays: np.concatenate(arrays, axis=axis))


def batch_to_torch(batch: dict, device: torch.device | str = "cpu") -> dict:
    """Numpy batch -> tensors on ``device`` (the agent's; images stay uint8, networks scale them).

    Sampling stays on the CPU (the buffer is numpy, and checkpoints save it as such); one
    host-to-device copy per batch is small beside an update."""
    out = {}
    for name, value in batch.items():
        if isinstance(value, dict):
            out[name] = {k: torch.as_tensor(v, device=device) for k, v in value.items()}
        else:
            out[name] = torch.as_tensor(value, device=device)
    return out
