"""Samplers never cross episodes: every row's value says (episode, t), so mixing is visible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.contracts import ACTION, OBS_STATE, image_key
from robot_rl.data.cache import MemoryCache
from robot_rl.data.sampler import TransitionSampler, WindowSampler, split_episodes
from robot_rl.data.store import EpisodeStore
from robot_rl.data.torch_dataset import EpisodeWindowDataset

LENGTHS = [2, 7, 1, 12, 3, 9]


@pytest.fixture
def store(make_store):
    path, _ = make_store(LENGTHS)
    with EpisodeStore.open(path) as s:
        yield s


def _sources(store):
    return [store, MemoryCache(store)]


@pytest.mark.parametrize("n_step", [1, 3])
def test_transitions_stay_inside_their_episode(store, n_step):
    gamma = 0.5
    for source in _sources(store):
        batch = TransitionSampler(source, [OBS_STATE, image_key("front")], n_step=n_step, gamma=gamma).sample(512)
        obs, nxt = batch["obs"][OBS_STATE], batch["next_obs"][OBS_STATE]
        episode, t, t_next = obs[:, 0].astype(int), obs[:, 1].astype(int), nxt[:, 1].astype(int)
        assert np.array_equal(episode, nxt[:, 0]) and np.array_equal(batch["action"][:, 0], episode)
        assert np.array_equal(batch["next_obs"][image_key("front")][:, 0, 0, 0], episode)
        length = np.array(LENGTHS)[episode]
        n_eff = np.minimum(n_step, length - 1 - t)
        assert np.all(n_eff >= 1) and np.array_equal(t_next, t + n_eff)
        expected = [sum(gamma ** k * (t0 + k + 100 * e) for k in range(n)) for e, t0, n in zip(episode, t, n_eff)]
        np.testing.assert_allclose(batch["reward"], expected, rtol=1e-5)
        np.testing.assert_allclose(batch["discount"], gamma ** n_eff)
        assert np.array_equal(batch["done"], t_next == length - 1)
        assert 2 not in episode  # a one-step episode has no transition


def test_every_transition_is_reachable(store):
    sampler = TransitionSampler(store, [OBS_STATE])
    assert len(sampler) == sum(n - 1 for n in LENGTHS)
    batch = sampler.batch(np.arange(len(sampler)))
    pairs = set(zip(batch["obs"][OBS_STATE][:, 0].astype(int), batch["obs"][OBS_STATE][:, 1].astype(int)))
    assert pairs == {(e, t) for e, n in enumerate(LENGTHS) for t in range(n - 1)}


@pytest.mark.parametrize("pad", [True, False])
def test_windows_stay_inside_their_episode(store, pad):
    for source in _sources(store):
        sampler = WindowSampler(source, [OBS_STATE, image_key("front")], obs_history=3, action_horizon=4, pad=pad)
        batch = sampler.sample(512)
        obs, act, t = batch["obs"][OBS_STATE], batch["action"], batch["index"]
        centre_episode = obs[:, -1, 0]
        assert np.all(obs[:, :, 0] == centre_episode[:, None]) and np.all(act[:, :, 0] == centre_episode[:, None])
        assert np.all(batch["obs"][image_key("front")][:, :, 0, 0, 0] == centre_episode[:, None])
        step = obs[:, -1, 1].astype(int)
        length = np.array(LENGTHS)[centre_episode.astype(int)]
        want_obs = np.clip(step[:, None] + np.arange(-2, 1), 0, None)
        want_act = np.minimum(step[:, None] + np.arange(4), length[:, None] - 1)
        assert np.array_equal(obs[:, :, 1], want_obs) and np.array_equal(act[:, :, 1], want_act)
        assert np.array_equal(batch["obs_is_pad"], step[:, None] + np.arange(-2, 1) < 0)
        assert np.array_equal(batch["action_is_pad"], step[:, None] + np.arange(4) > length[:, None] - 1)
        assert len(t) == 512
        if not pad:
            assert not batch["obs_is_pad"].any() and not batch["action_is_pad"].any()
            assert len(sampler) == sum(max(n - 5, 0) for n in LENGTHS)


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_episodes(20, 0.25, seed=3)
    assert len(val) == 5 and sorted([*train, *val]) == list(range(20))
    again = split_episodes(20, 0.25, seed=3)
    assert np.array_equal(train, again[0]) and not np.array_equal(val, split_episodes(20, 0.25, seed=4)[1])
    assert len(split_episodes(3, 0.01)[1]) == 1  # a positive fraction always validates something


def test_cache_selects_episodes_and_resizes_images_once(store):
    cache = MemoryCache(store, [OBS_STATE, ACTION, "reward", image_key("front")], episodes=[3, 1],
                        image_size=(12, 16))
    assert list(cache.episode_ends) == [12, 19]
    assert cache.arrays[image_key("front")].shape == (19, 12, 16, 3)
    assert cache.schema[image_key("front")].shape == (12, 16, 3)
    np.testing.assert_array_equal(cache.read(OBS_STATE, np.arange(12)), store.read_episode(3)[OBS_STATE])
    batch = WindowSampler(cache, [OBS_STATE], obs_history=2, action_horizon=2).sample(64)
    assert set(batch["obs"][OBS_STATE][:, -1, 0].astype(int)) <= {1, 3}


def test_torch_dataset_with_worker_processes(store):
    dataset = EpisodeWindowDataset(store.path, [OBS_STATE, image_key("front")], obs_history=2, action_horizon=3,
                                   episodes=[1, 3, 5], image_size=(12, 16))
    assert len(dataset) == 7 + 12 + 9
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True, num_workers=2,
                                         multiprocessing_context="spawn")
    seen = 0
    for batch in loader:
        state, action = batch[OBS_STATE], batch["action"]
        assert batch[image_key("front")].shape[1:] == (2, 12, 16, 3) and batch[image_key("front")].dtype == torch.uint8
        assert torch.all(state[:, :, 0] == state[:, -1:, 0]) and torch.all(action[:, :, 0] == state[:, -1:, 0])
        assert set(state[:, -1, 0].int().tolist()) <= {1, 3, 5}
        seen += len(state)
    assert seen == len(dataset)
