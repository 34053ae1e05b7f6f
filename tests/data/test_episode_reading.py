"""Reading episodes for training never mixes episodes: every row's value says (episode, t)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.algos.networks import ObsSpec
from robot_rl.contracts import ACTION, OBS_STATE, REWARD, image_key
from robot_rl.data.cache import MemoryCache
from robot_rl.data.splits import split_episodes
from robot_rl.data.store import EpisodeStore
from robot_rl.train.demos import load_store

LENGTHS = [2, 7, 1, 12, 3, 9]
FRONT = image_key("front")
SPECS = {OBS_STATE: ObsSpec((4,), "float32"), FRONT: ObsSpec((24, 32, 3), "uint8")}


@pytest.fixture
def store(make_store):
    path, _ = make_store(LENGTHS)
    with EpisodeStore.open(path) as s:
        yield s


def stored_reward(episode: dict, instruction: str) -> np.ndarray:
    return episode[REWARD]


def test_transitions_stay_inside_their_episode_and_all_are_read(store):
    buffer = load_store(store.path, SPECS, 2, stored_reward)
    n = len(buffer)
    obs, nxt = buffer.arrays[f"obs:{OBS_STATE}"][:n], buffer.arrays[f"next_obs:{OBS_STATE}"][:n]
    episode, t = obs[:, 0].astype(int), obs[:, 1].astype(int)
    assert n == sum(length - 1 for length in LENGTHS)  # the last row of an episode starts no transition
    assert np.array_equal(nxt[:, 0], episode) and np.array_equal(nxt[:, 1].astype(int), t + 1)
    assert np.array_equal(buffer.arrays["action"][:n], np.stack([episode, t], 1))
    np.testing.assert_allclose(buffer.arrays["reward"][:n], t + 100 * episode)
    assert np.array_equal(buffer.arrays[f"next_obs:{FRONT}"][:n, 0, 0, 0], episode)
    assert np.array_equal(buffer.arrays[f"next_obs:{FRONT}"][:n, 0, 1, 0], t + 1)
    assert set(zip(episode, t)) == {(e, s) for e, length in enumerate(LENGTHS) for s in range(length - 1)}
    assert not buffer.arrays["done"][:n].any()  # no success before the last row, so no termination


def test_max_episodes_reads_the_first_ones(store):
    buffer = load_store(store.path, {OBS_STATE: SPECS[OBS_STATE]}, 2, stored_reward, max_episodes=2)
    assert len(buffer) == LENGTHS[0] - 1 + LENGTHS[1] - 1
    assert set(buffer.arrays[f"obs:{OBS_STATE}"][: len(buffer), 0].astype(int)) == {0, 1}


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_episodes(20, 0.25, seed=3)
    assert len(val) == 5 and sorted([*train, *val]) == list(range(20))
    again = split_episodes(20, 0.25, seed=3)
    assert np.array_equal(train, again[0]) and not np.array_equal(val, split_episodes(20, 0.25, seed=4)[1])
    assert len(split_episodes(3, 0.01)[1]) == 1  # a positive fraction always validates something


def test_cache_selects_episodes_and_resizes_images_once(store):
    cache = MemoryCache(store, [OBS_STATE, ACTION, "reward", FRONT], episodes=[3, 1], image_size=(12, 16))
    assert list(cache.episode_ends) == [12, 19]
    assert cache.arrays[FRONT].shape == (19, 12, 16, 3)
    assert cache.schema[FRONT].shape == (12, 16, 3)
    np.testing.assert_array_equal(cache.read(OBS_STATE, np.arange(12)), store.read_episode(3)[OBS_STATE])
    np.testing.assert_array_equal(cache.read(ACTION, np.arange(12, 19)), store.read_episode(1)[ACTION])
