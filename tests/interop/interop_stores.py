"""Small real stores for the converters: two cameras, state, action, reward, success and
instructions, every value telling which episode and step it came from (conftest.py makes the fixtures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robot_rl.contracts import ACTION, INFO_SUCCESS, OBS_STATE, REWARD, image_key
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter

ATTRS = {"control_rate_hz": 20.0, "robot": "panda", "action_space": "ee_delta"}
CAMERAS = ("front", "wrist")
IMAGE_HW = (24, 32)
INSTRUCTIONS = ("lift the red cube", "lift the blue cube", "pick up the green block")


def schema(cameras: Sequence[str] = CAMERAS, image_hw: tuple[int, int] = IMAGE_HW) -> dict:
    keys = {OBS_STATE: ((9,), "float32"), ACTION: ((4,), "float32"), REWARD: ((), "float32"),
            INFO_SUCCESS: ((), "bool")}
    for camera in cameras:
        keys[image_key(camera)] = ((*image_hw, 3), "uint8")
    return keys


def make_store(path: Path, lengths: Sequence[int] = (7, 12, 5), cameras: Sequence[str] = CAMERAS,
               image_hw: tuple[int, int] = IMAGE_HW, seed: int = 0) -> Path:
    """Record episodes of ``lengths``: state[0]=episode, state[1]=t, action=[episode, t, ...];
    each image is smooth (video codecs keep it close) with its episode and step in the mean level."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    ramp = np.linspace(0, 60, w, dtype=np.float32)[None, :, None]
    with EpisodeWriter(path, schema(cameras, image_hw), ATTRS) as writer:
        for episode, length in enumerate(lengths):
            writer.start_episode(source="scripted", instruction=INSTRUCTIONS[episode % len(INSTRUCTIONS)],
                                 task="lift", seed=100 + episode, extra={"operator": "ci"})
            for t in range(length):
                row = {OBS_STATE: np.array([episode, t, *rng.standard_normal(7)], np.float32),
                       ACTION: np.array([episode, t, *rng.uniform(-1, 1, 2)], np.float32),
                       REWARD: np.float32(t + 100 * episode), INFO_SUCCESS: np.bool_(t == length - 1)}
                for c, camera in enumerate(cameras):
                    level = (40 + 10 * episode + 5 * t + 30 * c) % 190
                    row[image_key(camera)] = np.broadcast_to(ramp + level, (h, w, 3)).astype(np.uint8)
                writer.add_step(row)
            writer.end_episode(success=episode % 2 == 0)
    return path



def same_store(a: str | Path, b: str | Path, image_atol: int = 0, check_info: tuple[str, ...] =
               ("instruction", "task", "success")) -> None:
    """Assert two stores hold the same episodes: boundaries, every key's rows and the named
    record fields; images within ``image_atol`` (lossy video formats)."""
    with EpisodeStore.open(a) as x, EpisodeStore.open(b) as y:
        assert x.num_episodes == y.num_episodes
        np.testing.assert_array_equal(x.episode_ends, y.episode_ends)
        assert set(x.schema) == set(y.schema), (sorted(x.schema), sorted(y.schema))
        for key in x.schema:
            u, v = x.read_slice(key, 0, x.num_steps), y.read_slice(key, 0, y.num_steps)
            assert u.shape == v.shape and u.dtype == v.dtype, (key, u.shape, v.shape, u.dtype, v.dtype)
            if key.startswith("obs/images/") and image_atol:
                assert np.abs(u.astype(int) - v.astype(int)).max() <= image_atol, key
            else:
                np.testing.assert_array_equal(u, v, err_msg=key)
        for i in range(x.num_episodes):
            p, q = x.episode_info(i), y.episode_info(i)
            for name in check_info:
                assert getattr(p, name) == getattr(q, name), (i, name, getattr(p, name), getattr(q, name))
