"""The learned reward in the RL loop: the collector asks the adapter, which scores each frame
once (and every ``stride`` steps), gives the rewards that scoring both frames of every step
gives, and measures its agreement with the sim's ground truth."""

from functools import partial

import numpy as np
import pytest

import sim
from reward_models.rl_reward import LearnedReward
from reward_models.shaping import RewardShaper
from robot_rl.cli.main import main
from robot_rl.train.collect import Collector, Transitions


def fake_model(frames, instructions):
    """Stands in for reward_models.RewardModel.score: brightness as progress."""
    progress = np.asarray(frames, np.float32).mean(axis=(1, 2, 3)) / 255.0
    return progress, (progress > 0.5).astype(np.float32)


class Counting:
    """``fake_model`` that counts the frames it scored."""

    def __init__(self) -> None:
        self.scored = 0

    def __call__(self, frames, instructions):
        self.scored += len(instructions)
        return fake_model(frames, instructions)


def _rollout(learned, num_envs: int, steps: int):
    make = partial(sim.load, "reach", "panda", "none", cameras=("front",), image_size=32)
    collector, rng, out = Collector(make, num_envs=num_envs, seed=0), np.random.default_rng(0), []
    try:
        for _ in range(steps):
            t = collector.step(rng.uniform(-1, 1, (num_envs, 5)).astype(np.float32), learned)
            out.append(t)
    finally:
        collector.close()
    return collector, out


def test_collector_uses_learned_reward_and_measures_agreement():
    learned = LearnedReward(fake_model, ["front"], "dense")
    collector, steps = _rollout(learned, 1, 55)  # crosses an episode end (reach: 50 steps)
    for t in steps:
        np.testing.assert_allclose(t.reward, fake_model(t.next_obs["obs/images/front"], [""])[0], rtol=1e-6)
    metrics = learned.agreement.metrics()
    assert 0.0 <= metrics["train/reward_success_agreement"] <= 1.0 and metrics["train/reward_progress_mae"] >= 0
    assert len(collector.stats.returns) == 1 and collector.instructions[0]


def test_shaped_reward_scores_each_frame_once_and_equals_scoring_both_frames():
    """Reusing Φ(s') of one step as Φ(s) of the next, and scoring a reset frame once, changes
    no reward: each step equals the shaper applied to freshly scored ``obs`` and ``next_obs``."""
    shaper, counting = RewardShaper(gamma=0.9), Counting()
    learned = LearnedReward(counting, ["front"], "dense", shaper=shaper)
    _, steps = _rollout(learned, 1, 105)  # two episode ends
    for t in steps:
        p, _ = fake_model(t.obs["obs/images/front"], t.instructions)
        p_next, s_next = fake_model(t.next_obs["obs/images/front"], t.instructions)
        np.testing.assert_array_equal(t.reward, shaper(p, p_next, s_next, t.terminated))
    assert counting.scored == 105 + 3  # every next frame, plus the first frame of each of 3 episodes


def _step(values: list[int], texts: list[str], before: list[int] | None = None) -> Transitions:
    frames = lambda vs: {"obs/images/front": np.stack([np.full((2, 2, 3), v, np.uint8) for v in vs])}  # noqa: E731
    n = len(values)
    return Transitions(obs=frames(before if before is not None else values), action=np.zeros((n, 1)),
                       reward=np.zeros(n), next_obs=frames(values), terminated=np.zeros(n, bool),
                       success=np.zeros(n, bool), progress=np.zeros(n), instructions=texts)


def test_stride_holds_scores_between_scored_steps_and_rescores_a_reset():
    counting = Counting()
    learned = LearnedReward(counting, ["front"], "dense", stride=4, shaper=RewardShaper(gamma=1.0, sparse_weight=0))
    texts, previous = ["reach the red cube"] * 2, [0, 0]
    for step in range(1, 9):
        now = [step * 10, step * 10]
        reset = step == 5
        before = [previous[0], 200] if reset else previous  # env 1 starts a new episode at step 5
        rewards = learned(_step(now, texts, before))
        if step == 4:  # env 0: the first frame, then held for 3 steps, scored again at the 4th
            np.testing.assert_allclose(rewards[0], 40 / 255, rtol=1e-5)
        previous = now
        if step in (6, 7):  # everything held: no change in potential
            np.testing.assert_allclose(rewards, [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(rewards, [40 / 255, -120 / 255], rtol=1e-5)  # both scored again at step 8
    assert counting.scored == 2 + 2 * 2 + 1  # first frames, two strided rounds, one reset frame


@pytest.mark.parametrize("stride, shaped", [(1, True), (3, True), (1, False), (2, False)])
def test_labelling_steps_in_one_batch_equals_rewarding_each_step(stride, shaped):
    """``label_steps`` (what the trainer scores beside the learner) gives every step the reward,
    progress and success that calling the reward step by step gives, over episode ends, two
    envs and any grouping of the steps."""
    make = lambda: LearnedReward(Counting(), ["front"], "dense", stride=stride,  # noqa: E731
                                 shaper=RewardShaper(gamma=0.9) if shaped else None)
    one_by_one, grouped = make(), make()
    _, steps = _rollout(one_by_one, 2, 110)  # the collector rewards each step as it comes
    rng, at = np.random.default_rng(1), 0
    while at < len(steps):
        group = steps[at:at + int(rng.integers(1, 20))]
        labels = grouped.label_steps(group)
        for t, (reward, _, _) in zip(group, labels):
            np.testing.assert_allclose(reward, t.reward, rtol=1e-6, atol=1e-7)
        at += len(group)
    assert grouped.score_fn.scored == one_by_one.score_fn.scored  # each frame still scored once
    np.testing.assert_allclose(grouped._progress, one_by_one._progress)


def test_background_labels_hand_back_every_step_once_in_order_with_its_reward():
    from robot_rl.train.rewards import BackgroundLabels

    reference = LearnedReward(fake_model, ["front"], "dense", shaper=RewardShaper(gamma=0.9))
    _, steps = _rollout(reference, 1, 60)
    expected = [t.reward.copy() for t in steps]
    labels = BackgroundLabels(LearnedReward(fake_model, ["front"], "dense", shaper=RewardShaper(gamma=0.9)), every=8)
    out = []
    try:
        for i, t in enumerate(steps):
            t.reward = np.zeros_like(t.reward)
            ready = labels.add(t)
            assert len(out) + len(ready) >= i + 1 - 16  # nothing waits longer than two batches
            out += ready
        out += labels.flush()
    finally:
        labels.close()
    assert [id(t) for t in out] == [id(t) for t in steps]
    for t, reward in zip(out, expected):
        np.testing.assert_allclose(t.reward, reward, rtol=1e-6)
    assert labels.reward.agreement.metrics()  # agreement recorded for the labelled steps


def test_cameras_drawn_beside_the_learner_give_the_rewards_drawn_in_the_step():
    """The trainer's collector env draws the reward's cameras on its render thread
    (``deferred_cameras``) and the labeller waits for them: each step's reward equals the
    reward of the same step with the frames drawn in the env step, over episode ends."""
    from robot_rl.train.rewards import BackgroundLabels

    def run(cameras: dict) -> list[np.ndarray]:
        make = partial(sim.load, "reach", "panda", "none", image_size=32, episode_steps=20, **cameras)
        collector, rng = Collector(make, num_envs=1, seed=0), np.random.default_rng(0)
        labels = BackgroundLabels(LearnedReward(fake_model, ["front"], "dense", shaper=RewardShaper(gamma=0.9)), 8)
        out = []
        try:
            for _ in range(45):  # two episode ends
                out += labels.add(collector.step(rng.uniform(-1, 1, (1, 5)).astype(np.float32), None, track=False))
            out += labels.flush()
        finally:
            labels.close()
            collector.close()
        return [t.reward for t in out]

    drawn, deferred = run({"cameras": ("front",)}), run({"cameras": (), "deferred_cameras": ("front",)})
    assert len(drawn) == len(deferred) == 45
    np.testing.assert_array_equal(np.concatenate(drawn), np.concatenate(deferred))
    assert np.ptp(np.concatenate(drawn)) > 0


def test_batch_size_splits_the_network_calls():
    sizes = []
    learned = LearnedReward(lambda f, t: (sizes.append(len(t)), fake_model(f, t))[1], ["front"], batch_size=3)
    learned(_step([1] * 7, ["a"] * 7))
    assert sizes == [3, 3, 1]


def test_shaped_learned_reward_labels_episodes_potential_based():
    def shaper(p, p_next, s_next, terminated):
        return 0.9 * p_next - p + (s_next >= 0.5)

    learned = LearnedReward(fake_model, ["front"], "dense", shaper=shaper)
    frames = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 100, 200)])
    rewards = learned.label_episode({"obs/images/front": frames}, "reach the red cube")
    p = frames.mean(axis=(1, 2, 3)) / 255.0
    np.testing.assert_allclose(rewards[:2], 0.9 * p[1:] - p[:-1] + (p[1:] > 0.5), rtol=1e-5)
    assert rewards[2] == 0.0  # the last row is no transition


def test_label_episode_honours_stride():
    counting = Counting()
    learned = LearnedReward(counting, ["front"], "dense", stride=2)
    frames = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 51, 102, 153, 204)])
    rewards = learned.label_episode({"obs/images/front": frames}, "reach the red cube")
    np.testing.assert_allclose(rewards, [0.0, 0.4, 0.4, 0.8, 0.0], rtol=1e-6)  # frames 1 and 3 hold 0 and 2's score
    assert counting.scored == 3


def test_unknown_reward_kind_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        LearnedReward(fake_model, ["front"], "shaped")


def test_vlm_reward_without_a_model_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "task=reach", "reward=vlm"]) == 2
    assert "reward.model_path" in capsys.readouterr().err
    assert main(["train", "task=reach", "reward=vlm", "reward.path=nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_with_the_learned_reward_logs_its_agreement(trained, stores, tmp_path):
    """``robot-rl train reward=vlm``: the group's builder loads the model, the env renders its
    cameras at its size, demos are labelled by it and its agreement is logged and reported."""
    import csv
    import json

    run = tmp_path / "sac_vlm"
    assert main(["train", "task=lift", "algo=sac", "reward=vlm", f"reward.model_path={trained}", "reward.device=cpu",
                 "reward.score.stride=2", f"demos={stores['train_clean']}", f"run={run}", "train.total_steps=60",
                 "train.num_envs=1", "algo.seed_steps=30", "algo.batch_size=16", "train.eval_every=0",
                 "train.eval_episodes=1", "train.video_episodes=0", "train.checkpoint_every=60", "train.log_every=30",
                 "baseline.bc=false", "logger.progress_bar=false", "logger=csv", "algo.agent.hidden_dim=32"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["reward"] == "vlm" and "train/reward_progress_mae" in report["reward_agreement"]
    rows = list(csv.DictReader((run / "metrics" / "train.csv").open()))
    assert "demo_reward_progress_mae" in rows[0] or any(r.get("demo_reward_progress_mae") for r in rows)


def test_drq_on_ray_actors_scores_the_learned_reward_on_the_actors(trained, stores, tmp_path, ray_local):
    """``ray.actors=1`` with a pixel policy, demos and ``reward=vlm``: the actor renders and scores
    the frames, the learner gets the rewards and the actor's agreement with the ground truth."""
    import csv
    import json

    run = tmp_path / "drq_vlm_ray"
    assert main(["train", "task=lift", "algo=drq", "reward=vlm", f"reward.model_path={trained}", "reward.device=cpu",
                 f"demos={stores['train_clean']}", f"run={run}", "train.total_steps=100", "ray.actors=1",
                 "ray.chunk_steps=20", "algo.seed_steps=40", "algo.batch_size=8", "algo.utd=1", "train.eval_every=0",
                 "train.eval_episodes=1", "train.video_episodes=0", "train.log_every=50", "baseline.bc=false",
                 "logger.progress_bar=false", "logger=csv", "algo.agent.hidden_dim=32"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["algo"] == "drq" and report["env_steps"] >= 100
    assert "train/reward_progress_mae" in report["reward_agreement"]
    rows = list(csv.DictReader((run / "metrics" / "ray.csv").open()))
    assert float(rows[-1]["transfer_kb_per_1k_steps"]) > 1000  # images cross the wire for a pixel policy
