"""Small real stores whose every value tells which episode and step it came from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from robot_rl.contracts import ACTION, INFO_PROGRESS, INFO_SUCCESS, OBS_STATE, REWARD, image_key
from robot_rl.data.writer import EpisodeWriter

ATTRS = {"control_rate_hz": 10.0, "robot": "toy_arm", "action_space": "joint_delta"}
IMAGE_HW = (24, 32)


def schema(images: bool = True) -> dict:
    """obs/state = [episode, t, noise...]; images carry the episode and step in two pixels."""
    keys = {OBS_STATE: ((4,), "float32"), ACTION: ((2,), "float32"), REWARD: ((), "float32"),
            INFO_SUCCESS: ((), "bool"), INFO_PROGRESS: ((), "float32")}
    if images:
        keys[image_key("front")] = ((*IMAGE_HW, 3), "uint8")
    return keys


def step(episode: int, t: int, length: int, rng: np.random.Generator, images: bool = True) -> dict:
    """One row whose values encode ``(episode, t)`` so any mixing is detectable."""
    row = {
        OBS_STATE: np.array([episode, t, *rng.standard_normal(2)], dtype=np.float32),
        ACTION: np.array([episode, t], dtype=np.float32),
        REWARD: np.float32(t + 100 * episode),
        INFO_SUCCESS: np.bool_(t == length - 1),
        INFO_PROGRESS: np.float32(t / length),
    }
    if images:
        frame = rng.integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)
        frame[0, 0, 0], frame[0, 1, 0] = episode, t
        row[image_key("front")] = frame
    return row


def write_store(path: Path, lengths: Sequence[int], images: bool = True, seed: int = 0,
                shard_steps: int | None = 8) -> list[list[dict]]:
    """Record episodes of the given lengths; returns the rows written, per episode."""
    rng = np.random.default_rng(seed)
    written = []
    with EpisodeWriter(path, schema(images), ATTRS, shard_steps=shard_steps) as writer:
        for episode, length in enumerate(lengths):
            writer.start_episode(source="scripted", instruction=f"lift cube {episode}", task="lift",
                                 seed=1000 + episode, extra={"operator": "ci", "n": episode})
            rows = [step(episode, t, length, rng, images) for t in range(length)]
            for row in rows:
                writer.add_step(row)
            writer.end_episode(success=episode % 2 == 0)
            written.append(rows)
    return written


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., tuple[Path, list[list[dict]]]]:
    """``make_store(lengths, name="s.zarr", images=True)`` -> (path, rows per episode)."""

    def make(lengths: Sequence[int], name: str = "s.zarr", images: bool = True, seed: int = 0):
        path = tmp_path / name
        return path, write_store(path, lengths, images=images, seed=seed)

    return make


@pytest.fixture
def toy() -> SimpleNamespace:
    """The helpers above, for tests that build rows or writers themselves."""
    return SimpleNamespace(schema=schema, step=step, attrs=dict(ATTRS), write_store=write_store,
                           image_hw=IMAGE_HW)


@pytest.fixture(scope="session")
def store_writer() -> Callable[..., list[list[dict]]]:
    """``write_store`` for module-scoped fixtures (``from conftest import`` would find whichever
    folder's conftest was imported last)."""
    return write_store
