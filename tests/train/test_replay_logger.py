"""Replay buffers, symmetric sampling, demo loading and the CSV logger's resume behaviour."""

import csv

import numpy as np
import pytest

from reward_models.rl_reward import LearnedReward
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.demos import DataError, load_store
from robot_rl.train.logger import Logger
from robot_rl.train.replay import MixedSampler, ReplayBuffer
from robot_rl.train.rewards import stored_gt_reward

SPECS = {"obs/state": ObsSpec((3,), "float32")}


def filled(n, value, capacity=100):
    buffer = ReplayBuffer(SPECS, 2, capacity, seed=1)
    obs = {"obs/state": np.full((n, 3), value, np.float32)}
    buffer.add(obs, np.zeros((n, 2)), np.full(n, value), obs, np.zeros(n, bool))
    return buffer


def test_ring_buffer_wraps_and_saves(tmp_path):
    buffer = filled(150, 1.0, capacity=100)
    assert len(buffer) == 100 and buffer.cursor == 50
    buffer.save(tmp_path / "r.npz")
    other = ReplayBuffer(SPECS, 2, 100)
    other.load(tmp_path / "r.npz")
    assert (len(other), other.cursor) == (100, 50)
    np.testing.assert_array_equal(other.sample(8)["reward"], buffer.sample(8)["reward"])  # rng restored


def test_mixed_sampler_takes_half_from_demos():
    batch = MixedSampler(filled(50, 0.0), filled(50, 1.0), 0.5).sample(64)
    assert batch["reward"].sum() == 32
    assert MixedSampler(filled(50, 0.0), None).sample(64)["reward"].sum() == 0


def test_logger_namespaces_and_drops_rows_after_resume_step(tmp_path):
    logger = Logger(tmp_path, tensorboard=False)
    for step in (100, 200, 300):
        logger.log({"train/return": step, "losses/critic": 1.0}, step)
    logger.log({"eval/success_rate": 0.5}, 300)
    logger.close()
    assert {p.name for p in (tmp_path / "metrics").iterdir()} == {"train.csv", "losses.csv", "eval.csv"}
    Logger(tmp_path, tensorboard=False, resume_step=200).close()
    rows = list(csv.DictReader((tmp_path / "metrics" / "train.csv").open()))
    assert [r["step"] for r in rows] == ["100", "200"]


def test_demos_load_as_transitions_with_ground_truth_reward(reach_demos):
    specs = {"obs/state": ObsSpec((22,), "float32"), "obs/object": ObsSpec((19,), "float32")}
    buffer = load_store(reach_demos, specs, 5, lambda ep, _: stored_gt_reward(ep, "sparse"))
    assert len(buffer) > 0 and buffer.arrays["reward"][: len(buffer)].max() == 1.0
    with pytest.raises(DataError, match="action space"):
        load_store(reach_demos, specs, 8, lambda ep, _: stored_gt_reward(ep, "sparse"), action_space="joint_delta")
    with pytest.raises(DataError, match="has no 'obs/images/wrist'"):
        load_store(reach_demos, {"obs/images/wrist": ObsSpec((32, 32, 3), "uint8")}, 5, lambda ep, _: ep["reward"])


def test_learned_reward_labels_episodes_and_measures_agreement(reach_demos):
    specs = {"obs/state": ObsSpec((22,), "float32")}

    def oracle_score(frames, instructions):  # a fake model: bright frames = progress
        p = np.asarray(frames, np.float32).mean(axis=(1, 2, 3)) / 255.0
        return p, (p > 2.0).astype(np.float32)

    learned = LearnedReward(oracle_score, ["front"], "dense")
    buffer = load_store(reach_demos, specs, 5, learned.label_episode, extra_keys=("obs/images/front",))
    assert 0.0 < buffer.arrays["reward"][: len(buffer)].mean() < 1.0
    metrics = learned.agreement.metrics()
    assert set(metrics) == {"train/reward_progress_mae", "train/reward_progress_corr", "train/reward_success_agreement"}
