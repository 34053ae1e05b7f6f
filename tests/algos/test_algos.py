"""Every algorithm updates, acts in [-1, 1], round-trips its state, and SAC learns a toy task."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from robot_rl.algos import bc, drq, idql, iql, saq, sac
from robot_rl.algos.augment import image_augment, photometric, random_shift
from robot_rl.algos.base import Agent
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.replay import ReplayBuffer, batch_to_torch


class PointGoal(gym.Env):
    """obs/state = (position, goal); reward = -|position - goal|; success within 0.1 of the goal."""

    def __init__(self, episode_steps: int = 20) -> None:
        self.observation_space = gym.spaces.Dict({"obs/state": gym.spaces.Box(-2, 2, (2,), np.float32)})
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.episode_steps = episode_steps

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal, self.t = 0.0, float(self.np_random.choice([-1.0, 1.0])), 0
        return self._obs(), {"success": False, "progress": 0.0, "instruction": "go"}

    def step(self, action):
        self.pos = float(np.clip(self.pos + 0.2 * float(np.asarray(action).reshape(-1)[0]), -2, 2))
        self.t += 1
        distance = abs(self.pos - self.goal)
        success = distance < 0.1
        info = {"success": success, "progress": float(1 - distance / 2), "instruction": "go"}
        return self._obs(), -distance, False, self.t >= self.episode_steps, info

    def render(self):
        image = np.zeros((16, 16, 3), np.uint8)
        image[:, int(np.clip((self.pos + 2) / 4 * 15, 0, 15))] = 255
        return image

    def _obs(self):
        return {"obs/state": np.array([self.pos, self.goal], np.float32)}

STATE = {"obs/state": ObsSpec((6,), "float32")}
PIXELS = {"obs/images/front": ObsSpec((24, 24, 3), "uint8"), "obs/state": ObsSpec((6,), "float32")}
STUDENT = {"obs/images/front": ObsSpec((24, 24, 3), "uint8"), "obs/images/wrist": ObsSpec((24, 24, 3), "uint8"),
           "obs/state": ObsSpec((6,), "float32"), "obs/instruction": ObsSpec((8,), "float32")}  # FiLM'd keypoints
BUILDERS = {"sac": (sac.build, {}), "drq": (drq.build, {"pad": 2}), "iql": (iql.build, {}), "bc": (bc.build, {}),
            "idql": (idql.build, {"num_samples": 8, "diffusion_hidden_dim": 64}),
            "saq": (saq.build, {"vq_updates": 1}),  # one VQ-VAE update, then RL on the codes
            "drq-keypoints": (drq.build, {"pad": 2, "trunk": "keypoints"}), "bc-keypoints": (bc.build, {"trunk": "keypoints"}),
            # mixed-precision updates (the pipeline's update_dtype=auto on AVX-512 BF16 CPUs)
            "sac-bf16": (sac.build, {"update_dtype": "bfloat16"}), "iql-bf16": (iql.build, {"update_dtype": "bfloat16"}),
            "bc-keypoints-bf16": (bc.build, {"trunk": "keypoints", "update_dtype": "bfloat16"})}


def random_buffer(specs, n=64, action_dim=3):
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(specs, action_dim, n)

    def obs():
        return {k: (rng.integers(0, 255, (n, *s.shape)).astype(np.uint8) if s.dtype == "uint8"
                    else rng.standard_normal((n, *s.shape)).astype(np.float32)) for k, s in specs.items()}

    buffer.add(obs(), rng.uniform(-1, 1, (n, action_dim)), rng.standard_normal(n), obs(), rng.random(n) < 0.1)
    return buffer


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("specs", [STATE, PIXELS, STUDENT], ids=["state", "pixels", "student"])
def test_update_act_and_state_round_trip(name, specs):
    build, params = BUILDERS[name]
    agent = build(specs, 3, dict(params), 0)
    assert isinstance(agent, Agent)  # what the trainers, checkpoints and export rely on
    buffer = random_buffer(specs)
    agent.fit_normalization({k: buffer.observations(k) for k in agent.encoder.state_keys})
    for _ in range(3):
        metrics = agent.update(batch_to_torch(buffer.sample(16)))
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert all(k.startswith("losses/") for k in metrics)
    obs = buffer.sample(5)["obs"]
    action = agent.act(obs, deterministic=True)
    assert action.shape == (5, 3) and np.all(np.abs(action) <= 1)
    clone = build(specs, 3, dict(params), 1)
    clone.load_state_dict(agent.state_dict())
    np.testing.assert_allclose(clone.act(obs, deterministic=True), action, atol=1e-6)
    with torch.no_grad():
        exported = agent.policy()(*[torch.as_tensor(obs[k]) for k in specs]).numpy()
    np.testing.assert_allclose(exported, action, atol=1e-6)


def test_random_shift_moves_pixels_by_at_most_pad():
    images = torch.zeros(8, 3, 16, 16)
    images[:, :, 8, 8] = 1.0
    shifted = random_shift(images, pad=2)
    assert shifted.shape == images.shape
    for i in range(8):
        y, x = np.unravel_index(int(shifted[i, 0].argmax()), (16, 16))
        assert abs(y - 8) <= 2 and abs(x - 8) <= 2


def test_each_camera_shifts_on_its_own_by_its_pad():
    """``augment_pad_cameras``: camera 0 unshifted, camera 1 by up to 4 px, drawn per sample."""
    torch.manual_seed(0)
    images = torch.zeros(32, 6, 16, 16)
    images[:, :, 8, 8] = 1.0
    out = image_augment(0, 0.0, [0, 4])(images)
    assert torch.equal(out[:, :3], images[:, :3])
    moved = []
    for i in range(32):
        y, x = np.unravel_index(int(out[i, 3].argmax()), (16, 16))
        assert abs(y - 8) <= 4 and abs(x - 8) <= 4
        moved.append((y, x) != (8, 8))
    assert sum(moved) > 16 and image_augment(2, 0.0, [0, 0]) is not None


def test_a_camera_pad_for_a_camera_the_agent_does_not_see_is_one_sentence():
    from robot_rl.algos import bc
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.config import ConfigError

    specs = {"obs/images/front": ObsSpec((16, 16, 3), "uint8"), "obs/state": ObsSpec((4,), "float32")}
    params = {"hidden_dim": 32, "depth": 1, "augment_pad": 2}
    with pytest.raises(ConfigError, match="augment_pad_cameras names wrist.*its cameras: front"):
        bc.build(specs, 5, {**params, "augment_pad_cameras": {"wrist": 6}})
    with pytest.raises(ConfigError, match="augment_pad_cameras.front"):
        bc.build(specs, 5, {**params, "augment_pad_cameras": {"front": -1}})
    assert bc.build(specs, 5, {**params, "augment_pad_cameras": {"front": 3}}).augment is not None


def test_photometric_jitter_changes_brightness_but_keeps_colour_names():
    """Two cameras, each a red and a blue half: brightness and contrast change per sample and
    camera, values stay in range, and red stays red (the instruction names colours)."""
    torch.manual_seed(0)
    images = torch.full((64, 6, 8, 8), -0.5)
    images[:, [0, 3], :, :4] = 0.3  # red left half, both cameras
    images[:, [2, 5], :, 4:] = 0.3  # blue right half
    out = photometric(images, 0.4)
    assert out.shape == images.shape and out.min() >= -0.5 and out.max() <= 0.5
    brightness = out.mean(dim=(2, 3))  # (B, 6)
    assert brightness[:, 0].std() > 0.02 and not torch.allclose(brightness[:, 0], brightness[:, 3])
    left, right = out[..., :4].mean(dim=(2, 3)), out[..., 4:].mean(dim=(2, 3))
    for cam in (0, 3):
        assert (left[:, cam] > left[:, cam + 1]).all() and (left[:, cam] > left[:, cam + 2]).all()
        assert (right[:, cam + 2] > right[:, cam]).all() and (right[:, cam + 2] > right[:, cam + 1]).all()
    assert image_augment(0, 0.0) is None and image_augment(2, 0.4)(images).shape == images.shape


def test_spatial_softmax_reads_where_the_bright_spot_is():
    from robot_rl.algos.networks import SpatialSoftmax

    maps = torch.full((2, 1, 9, 9), -10.0)
    maps[0, 0, 0, 8] = maps[1, 0, 4, 4] = 10.0  # top right; centre
    points = SpatialSoftmax(9, 9)(maps).detach().numpy()
    np.testing.assert_allclose(points, [[1.0, -1.0], [0.0, 0.0]], atol=1e-3)  # (x, y) in [-1, 1]


def test_unknown_trunk_is_one_sentence():
    with pytest.raises(ValueError, match="trunk 'resnet' is unknown"):
        bc.build(PIXELS, 3, {"trunk": "resnet"}, 0)


def test_auxiliary_head_learns_where_the_object_is_and_stays_out_of_the_policy():
    """BC's privileged-state head (what the distillation adds) regresses a target only the
    simulator knows (here: a bright square's position) from the images; the exported policy has
    no part of it, and checkpoints round-trip it."""
    rng = np.random.default_rng(0)
    n, size = 256, 24
    where = rng.integers(2, size - 4, (n, 2))
    images = np.zeros((n, size, size, 3), np.uint8)
    for image, (y, x) in zip(images, where):
        image[y:y + 3, x:x + 3] = 255
    data = {"obs": {"obs/images/front": images, "obs/state": rng.standard_normal((n, 6)).astype(np.float32)},
            "action": rng.uniform(-1, 1, (n, 3)).astype(np.float32), "aux": where.astype(np.float32)}
    agent = bc.build(PIXELS, 3, {"trunk": "keypoints", "aux_weight": 1.0, "lr": 3e-3}, 0)
    agent.enable_aux(2)
    agent.fit_aux(data["aux"])
    losses = []
    for _ in range(150):
        index = rng.integers(0, n, 64)
        batch = {"obs": {k: v[index] for k, v in data["obs"].items()}, "action": data["action"][index],
                 "aux": data["aux"][index]}
        losses.append(agent.update(batch_to_torch(batch))["losses/aux"])
    assert np.mean(losses[-10:]) < 0.2 * np.mean(losses[:10]), losses[::15]  # the target's variance is 1
    assert not any("aux" in name for name, _ in agent.policy().named_parameters())
    clone = bc.build(PIXELS, 3, {"trunk": "keypoints", "aux_weight": 1.0}, 1)
    clone.enable_aux(2)
    clone.load_state_dict(agent.state_dict())
    for mine, theirs in zip(agent.aux.parameters(), clone.aux.parameters()):
        assert torch.equal(mine, theirs)


def test_critic_ensemble_min_over_subset_is_configurable():
    with pytest.raises(ValueError, match="num_min_q"):
        sac.SACConfig(num_critics=2, num_min_q=3)
    agent = sac.build(STATE, 3, {"num_critics": 5, "num_min_q": 2}, 0)
    assert agent.critic(torch.zeros(4, 6), torch.zeros(4, 3)).shape == (5, 4)


def test_the_actor_loss_differentiates_q_by_the_action_only():
    """The actor's step leaves the critic without gradients (no wasted weight gradients) and
    its parameters trainable afterwards."""
    agent = sac.build(STATE, 3, {}, 0)
    batch = batch_to_torch(random_buffer(STATE).sample(16))
    agent.update_actor_and_alpha(agent.encode(batch["obs"]).detach(), batch)
    assert all(p.grad is None and p.requires_grad for p in agent.critic.parameters())
    assert all(p.grad is not None for p in agent.actor.parameters())


def test_bfloat16_updates_follow_float32_ones_with_float32_state():
    """Mixed precision: the same update as float32 to bfloat16's resolution, with weights,
    optimiser state, Q-values and losses still float32."""
    batch = batch_to_torch(random_buffer(STATE).sample(32))
    full, mixed = sac.build(STATE, 3, {}, 0), sac.build(STATE, 3, {"update_dtype": "bfloat16"}, 0)
    for i in range(3):  # the same action noise for both
        torch.manual_seed(i)
        a = full.update(batch)
        torch.manual_seed(i)
        b = mixed.update(batch)
    for key in ("losses/critic", "losses/q_mean", "losses/actor"):
        assert b[key] == pytest.approx(a[key], rel=0.05, abs=0.02), key
    assert all(p.dtype == torch.float32 for p in mixed.critic.parameters())
    with pytest.raises(ValueError, match="update_dtype"):
        sac.SACConfig(update_dtype="float16")


def test_an_anchored_actor_stays_near_the_actor_it_started_from():
    """``anchor_weight`` (fine-tuning a student on the robot): a fresh critic's first updates move
    the actor's mean action far less from where it started than plain SAC's do, and a
    checkpoint keeps the starting actor."""
    batch = batch_to_torch(random_buffer(STATE).sample(64))
    obs = {"obs/state": np.random.default_rng(1).normal(size=(32, 6)).astype(np.float32)}
    moved = {}
    for weight in (0.0, 10.0):
        agent = sac.build(STATE, 3, {"anchor_weight": weight}, 0)
        agent.anchor_actor()
        start = agent.act(obs, deterministic=True)
        for _ in range(40):
            agent.update(batch)
        moved[weight] = float(np.abs(agent.act(obs, deterministic=True) - start).mean())
    assert moved[10.0] < 0.5 * moved[0.0], moved
    restored = sac.build(STATE, 3, {"anchor_weight": 10.0}, 1)
    restored.load_state_dict(agent.state_dict())
    for mine, theirs in zip(restored.anchor.parameters(), agent.anchor.parameters()):
        assert torch.equal(mine, theirs)


def test_fine_tuning_keeps_the_exploration_noise_it_started_with():
    """A student started at std 0.05 explores at 0.05 in action units through fine-tuning
    (``hold_start_std``, the default), with no entropy bonus, even where its mean action is
    saturated; without holding, the entropy bonus widens its std at once. The mean action still
    learns, and a restored checkpoint explores the same way."""
    from robot_rl.algos.networks import LOG_STD_MAX, LOG_STD_MIN

    batch = batch_to_torch(random_buffer(STATE).sample(64))
    obs = {"obs/state": np.random.default_rng(1).normal(size=(4096, 6)).astype(np.float32)}
    spread, moved = {}, {}
    for hold in (False, True):
        agent = sac.build(STATE, 3, {"hold_start_std": hold, "anchor_weight": 1.0}, 0)
        last = agent.actor.net[-1]
        with torch.no_grad():  # a state-independent std of 0.05, as start_from_student sets it
            last.weight[3:].zero_()
            last.bias[3:] = float(np.arctanh(2 * (np.log(0.05) - LOG_STD_MIN) / (LOG_STD_MAX - LOG_STD_MIN) - 1))
            last.bias[0] += 4.0  # the first action saturated, as a closed gripper's is
        agent.anchor_actor(0.05)
        start = agent.act(obs, deterministic=True)
        for _ in range(100):
            agent.update(batch)
        mean = agent.act(obs, deterministic=True)
        noise = agent.act(obs) - mean
        spread[hold] = noise[:, 1:].std()
        moved[hold] = float(np.abs(mean - start).mean())
    assert spread[True] == pytest.approx(0.05, rel=0.1) and spread[False] > 0.1, spread
    assert np.abs(noise[:, 0]).mean() > 0.01  # the saturated action explores too, inwards (pre-tanh: ~1e-4)
    assert agent.alpha.item() == 0 and moved[True] > 0.01, moved
    restored = sac.build(STATE, 3, {"anchor_weight": 1.0}, 1)
    restored.load_state_dict(agent.state_dict())
    assert restored.actor.action_std == 0.05 and restored.alpha.item() == 0


def test_auto_update_dtype_is_bfloat16_only_on_hardware_that_has_it(monkeypatch):
    from robot_rl.algos import base

    for native in (True, False):
        monkeypatch.setattr(base, "native_bfloat16", lambda device_type, native=native: native)
        agent = sac.build(STATE, 3, {"update_dtype": "auto"}, 0)
        with agent.precision():
            assert torch.is_autocast_enabled("cpu") is native
    with sac.build(STATE, 3, {"update_dtype": "float32"}, 0).precision():
        assert not torch.is_autocast_enabled("cpu")


def test_each_collected_step_counts_once_in_the_episode_statistics(tmp_path):
    from robot_rl.train.logger import Logger
    from robot_rl.train.online import OnlineConfig, OnlineTrainer

    specs = {"obs/state": ObsSpec((2,), "float32")}
    config = OnlineConfig(total_steps=60, seed_steps=60, batch_size=8, eval_every=0, eval_episodes=0,
                          video_episodes=0, checkpoint_every=0, log_every=1000, normalize_obs=False, progress_bar=False)
    trainer = OnlineTrainer(sac.build(specs, 1, {"hidden_dim": 16}, 0), PointGoal, None, config, tmp_path,
                            Logger(tmp_path, tensorboard=False), ReplayBuffer(specs, 1, 100))
    trainer.start()
    for _ in range(60):
        trainer.collect()
    stats = trainer.collector.stats
    trainer.close()
    assert stats.lengths == [20, 20, 20] and len(trainer.buffer) == 60


def learn_point_goal(agent, run_dir, total_steps: int):
    """Train ``agent`` online on PointGoal (200 random seed steps); its final evaluation and a
    uniform random policy's on the same 20 episodes."""
    from robot_rl.train.logger import Logger
    from robot_rl.train.online import OnlineConfig, OnlineTrainer
    from robot_rl.train.rollouts import run_episodes

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    random_result = run_episodes(lambda o: rng.uniform(-1, 1, (1, 1)), PointGoal(), 20)
    config = OnlineConfig(total_steps=total_steps, seed_steps=200, batch_size=64, eval_every=0, eval_episodes=20,
                          video_episodes=0, checkpoint_every=0, log_every=400, normalize_obs=False, progress_bar=False)
    trainer = OnlineTrainer(agent, PointGoal, PointGoal, config, run_dir, Logger(run_dir, tensorboard=False),
                            ReplayBuffer({"obs/state": ObsSpec((2,), "float32")}, 1, total_steps + 200))
    return trainer.run(), random_result


def check_act_export_and_round_trip(agent, clone, obs: dict) -> np.ndarray:
    """Deterministic actions in [-1, 1], the same after a state round trip into ``clone`` and
    from the exported policy; returns them."""
    action = agent.act(obs, deterministic=True)
    assert action.shape[0] == len(next(iter(obs.values()))) and np.all(np.abs(action) <= 1)
    assert np.all(np.abs(agent.act(obs, deterministic=False)) <= 1)
    clone.load_state_dict(agent.state_dict())
    np.testing.assert_allclose(clone.act(obs, deterministic=True), action, atol=1e-6)
    with torch.no_grad():
        exported = agent.policy()(*[torch.as_tensor(obs[k]) for k in agent.obs_keys]).numpy()
    np.testing.assert_allclose(exported, action, atol=1e-6)
    return action


@pytest.mark.parametrize("update_dtype", ["float32", "bfloat16"])
def test_sac_learns_point_goal_better_than_random(tmp_path, update_dtype):
    agent = sac.build({"obs/state": ObsSpec((2,), "float32")}, 1, {"hidden_dim": 64, "update_dtype": update_dtype}, 0)
    result, random_result = learn_point_goal(agent, tmp_path, 1200)
    assert result.success_rate > random_result.success_rate + 0.5
    assert result.mean_return > random_result.mean_return


@pytest.mark.parametrize("bc_weight", [0.0, 2.0])
def test_demo_bc_term_pulls_the_actor_towards_demonstrated_actions(bc_weight):
    """With bc_weight > 0 the demo rows' actions are imitated; without it they are not (the
    reward is zero everywhere, so only the BC term gives the actor a direction)."""
    from robot_rl.train.replay import MixedSampler

    rng = np.random.default_rng(0)
    online, demos = ReplayBuffer(STATE, 3, 256, seed=0), ReplayBuffer(STATE, 3, 256, seed=1)
    target = np.array([0.6, -0.4, 0.2], np.float32)
    for buffer, action in ((online, None), (demos, target)):
        for _ in range(128):
            obs = {"obs/state": rng.standard_normal(6).astype(np.float32)}
            a = rng.uniform(-1, 1, 3).astype(np.float32) if action is None else action
            buffer.add(obs, a, 0.0, obs, False)
    agent = sac.build(STATE, 3, {"bc_weight": bc_weight, "bc_q_filter": False}, seed=0)
    sampler = MixedSampler(online, demos, 0.5)
    for _ in range(150):
        metrics = agent.update(batch_to_torch(sampler.sample(64)))
    probe = {"obs/state": rng.standard_normal((32, 6)).astype(np.float32)}
    error = np.abs(agent.act(probe, deterministic=True) - target).mean()
    if bc_weight:
        assert error < 0.15 and metrics["losses/bc"] < 0.1
    else:
        assert error > 0.2 and "losses/bc" not in metrics
