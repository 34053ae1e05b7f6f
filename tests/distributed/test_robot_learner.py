"""A robot run whose learner is a Ray worker (env=ros with ray.address; robot_rl.distributed.robot_learner):
the robot computer keeps the control loop, the store and complete checkpoints, the learner pays
the updates on a real local Ray instance, and losing it is one sentence that loses nothing."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
from functools import partial

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from robot_rl.algos.networks import ObsSpec
from robot_rl.cli.main import main
from robot_rl.config import load_group
from robot_rl.contracts import OBS_INSTRUCTION, OBS_STATE
from robot_rl.train.build import build_agent
from robot_rl.train.checkpoint import checkpoint_path, load_checkpoint, read_checkpoint
from robot_rl.train.replay import ReplayBuffer
from robot_rl.train.robot import RobotConfig

pytestmark = pytest.mark.usefixtures("ray_local")

SPECS = {OBS_STATE: ObsSpec((6,), "float32"), OBS_INSTRUCTION: ObsSpec((4,), "float32")}
ROBOT = ["task=reach", "env=ros", "ros.sim=true", "reward=gt", "ros.encoder=none", "algo=sac", "algo.utd=1",
         "algo.batch_size=32", "algo.agent.num_critics=2", "algo.agent.hidden_dim=64", "ros.episode_steps=20",
         "train.eval_every=0", "train.eval_episodes=1", "train.log_every=50", "logger.progress_bar=false",
         "logger=csv", "ray.address=local"]


def transitions(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {k: rng.normal(size=(n, *s.shape)).astype(np.float32) for k, s in SPECS.items()}
    next_obs = {k: rng.normal(size=(n, *s.shape)).astype(np.float32) for k, s in SPECS.items()}
    return {"obs": obs, "action": rng.uniform(-1, 1, (n, 3)).astype(np.float32),
            "reward": rng.normal(size=n).astype(np.float32), "next_obs": next_obs, "done": np.zeros(n, bool)}


def small_agent():
    algo = OmegaConf.create(load_group("algo", "sac"))
    algo.agent.hidden_dim, algo.agent.num_critics = 32, 2
    return build_agent(algo, SPECS, 3, 0)


def test_a_pickled_replay_buffer_carries_its_filled_rows_only_and_samples_alike():
    buffer = ReplayBuffer(SPECS, 3, capacity=10_000, seed=3)
    buffer.add(**transitions(50))
    copy = pickle.loads(pickle.dumps(buffer))
    assert len(pickle.dumps(buffer)) < 50_000  # 50 rows, not 10,000
    assert len(copy) == 50 and copy.capacity == 10_000 and copy.arrays["action"].shape == (10_000, 3)
    a, b = buffer.sample(16), copy.sample(16)
    np.testing.assert_array_equal(a["obs"][OBS_STATE], b["obs"][OBS_STATE])
    ring = ReplayBuffer(SPECS, 3, capacity=30, seed=0)  # wrapped: every row goes, in place
    ring.add(**transitions(45))
    again = pickle.loads(pickle.dumps(ring))
    assert again.cursor == ring.cursor == 15 and len(again) == 30
    np.testing.assert_array_equal(again.arrays["action"], ring.arrays["action"])


def test_the_learner_host_learns_from_shipped_rows_and_returns_a_cpu_agent():
    """The learner's side on its own (in this process): shipped rows go to the buffers (the
    operator's to the demonstrations too), owed updates are paid, weights offered, the agent returned."""
    from robot_rl.distributed.robot_learner import LearnerHost

    agent = small_agent()
    config = RobotConfig(seed_steps=0, batch_size=8, utd=1, publish_every=5)
    buffer, demos = ReplayBuffer(SPECS, 3, 1000, seed=0), ReplayBuffer(SPECS, 3, 1000, seed=1)
    host = LearnerHost(agent, buffer, demos, config, normalized=False, torch_threads=1)
    try:
        info = host.ready()
        assert info["error"] is None and info["pid"] == os.getpid() and info["buffer"] == 0
        human = np.arange(32) % 4 == 0
        host.add(transitions(32), human, owed=12)
        deadline = time.monotonic() + 30
        while host.poll(-1)["updates"] < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        reply = host.poll(0)
        assert reply["updates"] == 12 and reply["owed"] < 1 and reply["error"] is None and reply["metrics"]
        assert len(buffer) == 32 and len(demos) == 8
        weights, version = reply["weights"]
        assert version == 11 and set(weights) == {"encoder", "actor"}  # offered at 1 (normalised), 6, 11
        assert host.poll(version)["weights"] is None  # the robot has these already
        state = host.state()
        fresh = small_agent()
        fresh.load_state_dict(state["agent"])
        assert fresh.num_updates == 12 and state["normalized"]
        obs = {k: v[:4] for k, v in transitions(4, seed=5)["obs"].items()}
        np.testing.assert_allclose(fresh.act(obs, deterministic=True), agent.act(obs, deterministic=True))
        assert all(t.device.type == "cpu" for t in _tensors(state))
    finally:
        host.stop()


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def test_the_learner_runs_on_ray_and_a_resumed_run_needs_nothing_from_it(tmp_path):
    """robot-rl train env=ros ray.address=: the updates run in a Ray worker, the robot computer's
    checkpoint holds the learned agent and every transition, and resume=true sends both to a new learner."""
    import csv

    run = tmp_path / "run"
    assert main(["train", *ROBOT, "train.total_steps=100", "algo.seed_steps=40", f"run={run}"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["learner"]["pid"] != os.getpid() and report["learner"]["transitions_at_start"] == 0
    assert report["updates"] == 60  # UTD 1 after the seed phase, all paid before the final evaluation
    state = read_checkpoint(checkpoint_path(run / "checkpoints"))
    assert state["step"] == 100 and state["agent"]["num_updates"] == 60
    rows = list(csv.DictReader(open(run / "metrics" / "train.csv")))
    last = rows[-1]
    assert float(last["updates"]) > 0 and float(last["policy_lag"]) < float(last["updates"])  # weights came back
    assert float(last["updates_dropped"]) == 0

    assert main(["train", *ROBOT, "train.total_steps=160", "algo.seed_steps=40", "resume=true", f"run={run}"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["learner"]["transitions_at_start"] == 100 and report["updates"] == 120
    buffer = ReplayBuffer({OBS_STATE: ObsSpec((22,), "float32"), OBS_INSTRUCTION: ObsSpec((384,), "float32")}, 5,
                          160)
    state = load_checkpoint(run / "checkpoints", buffer)
    assert state["step"] == 160 and len(buffer) == 160 and state["agent"]["num_updates"] == 120

    # the exported policy is the learner's last agent, reading what a robot gives
    from robot_rl.policy import load_runtime
    from robot_rl.policy.spec import random_observations

    runtime = load_runtime(report["policy"], "onnxruntime-cpu")
    assert runtime.spec.deployable and runtime.spec.obs_keys == [OBS_STATE, OBS_INSTRUCTION]
    algo = OmegaConf.create(load_group("algo", "sac"))
    algo.agent.hidden_dim, algo.agent.num_critics = 64, 2
    agent = build_agent(algo, {OBS_STATE: ObsSpec((22,), "float32"), OBS_INSTRUCTION: ObsSpec((384,), "float32")},
                        5, 0)
    agent.load_state_dict(state["agent"])
    obs = dict(zip(runtime.spec.obs_keys, random_observations(runtime.spec, 4, seed=1)))
    np.testing.assert_allclose(runtime.act_batch(obs), agent.act(obs, deterministic=True), atol=1e-4)


def test_a_lost_learner_is_one_sentence_and_the_robot_keeps_everything(tmp_path, ray_local):
    """The learner's worker is killed mid-run (its machine gone): the run stops with
    LearnerLostError, after a checkpoint whose buffer holds every step and a store that validates."""
    from hardware.ros.sim_robot import SimRobot
    from robot_rl.data.store import EpisodeStore
    from robot_rl.distributed.robot_learner import LearnerLostError, RemoteLearner
    from robot_rl.distributed.session import RayConfig
    from tests.hardware.ros.test_robot_env import STEPS, trainer_for

    with SimRobot({"task": "reach", "cameras": "[front]", "image_size": "48"}, tmp_path / "bridge.log") as robot:
        trainer = trainer_for(robot, tmp_path, total_steps=2000, seed_steps=20,
                              make_learner=partial(RemoteLearner, config=RayConfig(address="local")))

        def kill_when_learning():
            deadline = time.monotonic() + 120
            while (trainer.learner is None or trainer.learner.updates < 10) and time.monotonic() < deadline:
                time.sleep(0.05)
            ray_local.kill(trainer.learner.handle)

        killer = threading.Thread(target=kill_when_learning, daemon=True)
        killer.start()
        with pytest.raises(LearnerLostError, match=r"the learner on Ray \(node .*\) stopped answering .* resume=true"):
            trainer.run()
        killer.join()
    buffer = ReplayBuffer({OBS_STATE: ObsSpec((22,), "float32"), OBS_INSTRUCTION: ObsSpec((384,), "float32")}, 5,
                          10_000)
    state = load_checkpoint(tmp_path / "run" / "checkpoints", buffer)
    assert state["step"] > 30 and len(buffer) == state["step"]  # the lost episode's steps too: nothing lost
    with EpisodeStore.open(tmp_path / "robot.zarr") as store:
        assert store.validate(deep=True) == []
        assert store.num_episodes == state["step"] // STEPS  # every episode that ended, committed
