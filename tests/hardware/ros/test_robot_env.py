"""Learning on the robot, against the real MuJoCo sim bridge over loopback DDS (ros.sim's setup).

The bridge runs in its own process on a private domain (hardware.ros.sim_robot); the env, its
safety filter, e-stop and the trainer's learner thread run here, as they would on a robot
computer. Interventions come from a scripted operator through the real teleop mapping.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from hardware.control.intervention import Intervention, InterventionConfig
from hardware.ros.robot_env import RobotConnectionError, RobotEnvConfig, RosRobotEnv
from hardware.ros.sim_robot import SimRobot
from hardware.safety.filter import HoldReason
from hardware.teleop.base import TeleopCommand
from hardware.teleop.scripted import ScriptedTeleop
from robot_rl.algos.networks import ObsSpec
from robot_rl.contracts import ACTION, OBS_INSTRUCTION, OBS_STATE
from robot_rl.data.store import EpisodeStore
from robot_rl.train.checkpoint import load_checkpoint
from robot_rl.train.logger import Logger
from robot_rl.train.replay import ReplayBuffer
from robot_rl.train.robot import RobotConfig, RobotTrainer
from robot_rl.train.robot_io import INFO_INTERVENTION
from tests.hardware.ros.conftest import wait_for

STEPS = 20  # per episode: a second of robot time at 20 Hz
OPERATOR = np.array([0.8, 0.0, 0.3, 0.0, -1.0], np.float32)  # the scripted operator's push


@pytest.fixture
def robot(tmp_path):
    with SimRobot({"task": "reach", "cameras": "[front]", "image_size": "48"}, tmp_path / "bridge.log") as sim:
        yield sim


def make_env(robot: SimRobot, intervention=None, **overrides) -> RosRobotEnv:
    settings = dict(task="reach", cameras=("front",), image_size=48, episode_steps=STEPS,
                    instruction_topic="task/instruction", ground_truth=True, connection_timeout_s=3.0)
    settings.update(overrides)
    with robot.environment():
        return RosRobotEnv(RobotEnvConfig(**settings), intervention=intervention, domain_id=robot.domain_id)


def trainer_for(robot: SimRobot, tmp_path, total_steps: int, intervention=None, seed_steps: int = 10_000,
                resume: bool = False, make_learner=None, **env_overrides) -> RobotTrainer:
    """A state agent (proprioception + instruction) trained through the env by RobotTrainer."""
    from omegaconf import OmegaConf

    from robot_rl.config import load_group
    from robot_rl.train.build import build_agent

    algo = OmegaConf.create(load_group("algo", "sac"))
    algo.agent.hidden_dim, algo.agent.num_critics = 64, 2
    specs = {OBS_STATE: ObsSpec((22,), "float32"), OBS_INSTRUCTION: ObsSpec((384,), "float32")}
    agent = build_agent(algo, specs, 5, 0)
    config = RobotConfig(total_steps=total_steps, seed_steps=seed_steps, batch_size=32, utd=1, eval_episodes=0,
                         checkpoint_every=STEPS, log_every=STEPS, seed=0, progress_bar=False,
                         store=str(tmp_path / "robot.zarr"))
    buffers = [ReplayBuffer(specs, 5, 10_000, seed=i) for i in range(2)]
    logger = Logger(tmp_path / "run", tensorboard=False)
    attrs = {"control_rate_hz": 20.0, "robot": "panda", "action_space": "ee_delta"}
    return RobotTrainer(agent, lambda: make_env(robot, intervention, **env_overrides), config, tmp_path / "run",
                        logger, buffers[0], buffers[1], attrs, "reach", resume=resume,
                        **({"make_learner": make_learner} if make_learner is not None else {}))


class Watcher:
    """A node on the bridge's domain: trips the e-stop, resets it, and times the arm's commands."""

    def __init__(self, robot: SimRobot) -> None:
        self.context = rclpy.Context()
        with robot.environment():
            rclpy.init(context=self.context, domain_id=robot.domain_id)
        self.node = Node("watcher", context=self.context)
        self.command_times: list[float] = []
        self.node.create_subscription(JointTrajectory, "joint_trajectory_controller/joint_trajectory",
                                      lambda _: self.command_times.append(time.monotonic()), 10)
        self.estop = self.node.create_publisher(Bool, "estop", 10)
        self.reset = self.node.create_client(Trigger, "/robot_env/reset_estop")
        self.start = self.node.create_client(Trigger, "/robot_env/start_episode")
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def call(self, client) -> Trigger.Response:
        wait_for(client.service_is_ready, what=f"{client.srv_name}")
        done = threading.Event()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        assert done.wait(20.0), f"{client.srv_name} did not answer"
        return future.result()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start_when_waiting(env: RosRobotEnv, watcher: Watcher) -> None:
    wait_for(lambda: env.waiting_for_operator, what="the env to wait for the operator")
    assert watcher.call(watcher.start).success


def test_steps_command_the_arm_through_the_safety_filter_and_home_slowly(robot):
    env = make_env(robot, reset_mode="operator", episode_steps=STEPS + 40)
    watcher = Watcher(robot)
    try:
        started = threading.Thread(target=start_when_waiting, args=(env, watcher))
        started.start()  # operator mode: reset waits for ~/start_episode (or the device's start key)
        obs, info = env.reset()
        started.join()
        home = np.asarray(env.robot.home_qpos)
        assert np.max(np.abs(env.joint_positions - home)) <= env.config.home_tolerance_rad
        assert set(obs) == {"obs/images/front", OBS_STATE, OBS_INSTRUCTION} and obs["obs/images/front"].shape == (48, 48, 3)
        assert info["instruction"] and np.any(obs[OBS_INSTRUCTION] != 0)
        q0, step = env.joint_positions.copy(), env.safety._step
        holds = []
        for _ in range(STEPS):
            _, _, terminated, truncated, info = env.step(np.array([0.3, 0.0, 0.0, 0.0, -1.0], np.float32))
            holds.append(info["hold"])
            assert not info["intervention"]
        # No hold but staleness, which a loaded machine can cause now and then (the bridge's joint
        # state late at the moment of publishing), and the half second of recovery after it: the
        # arm is held then, as it should be. Most steps command it.
        stale = HoldReason.STALE_AT_PUBLISH.value
        assert set(holds) <= {"", stale, f"recovering from {stale}"} and holds.count("") >= STEPS // 2, holds
        # every command went out within one step limit of the measured arm: the arm moved, at most that fast
        moved = np.max(np.abs(env.joint_positions - q0))
        assert 0.02 < moved <= STEPS * np.max(step) + 0.05
        assert not truncated and not terminated
        for _ in range(40):  # up and forward, towards the workspace box's top, where a joint-space line home leaves it
            _, _, terminated, truncated, info = env.step(np.array([0.6, 0.0, 1.0, 0.0, -1.0], np.float32))
            holds.append(info["hold"])
        assert truncated and not terminated
        # jitter is measured between consecutive commands, so each held step (a stale joint state
        # on a loaded machine, above) takes out the intervals on either side of it
        consecutive = sum(1 for a, b in zip(holds, holds[1:]) if a == "" and b == "")
        assert len(env.timing.jitter_ms()) >= consecutive - 2
        home_height = env.robot.ee_position(home)[2]
        assert env.robot.ee_position(env.joint_positions)[2] > home_height + 0.05
        # homing: back at home within the safety filter's limits, not in one jump
        before = len(watcher.command_times)
        watcher_start = threading.Thread(target=start_when_waiting, args=(env, watcher))
        watcher_start.start()
        env.reset()
        watcher_start.join()
        assert np.max(np.abs(env.joint_positions - home)) <= env.config.home_tolerance_rad
        assert len(watcher.command_times) - before >= 3  # several commands, each one step
    finally:
        watcher.close()
        env.close()


def test_scripted_interventions_are_flagged_and_land_in_demos_and_store(robot, tmp_path):
    def operator(i: int) -> TeleopCommand:  # holds intervene for steps 2..18 of every episode
        return TeleopCommand(OPERATOR.copy(), intervening=2 <= i % STEPS < 19)

    intervention = Intervention(ScriptedTeleop(operator), 20.0, InterventionConfig(handback_s=0.1))
    trainer = trainer_for(robot, tmp_path, 2 * STEPS, intervention)  # a random seed phase far longer than the run
    trainer.run()
    assert len(trainer.demos) >= trainer.config.batch_size
    # A batch of the operator's steps ends the seed phase: the policy learned while they drove.
    assert trainer.learning and trainer.agent.num_updates > 0
    assert trainer.agent.num_updates == trainer.learning_steps * trainer.config.utd < trainer.step
    with EpisodeStore.open(tmp_path / "robot.zarr") as store:
        assert store.num_episodes == 2
        flags = store.read_slice(INFO_INTERVENTION, 0, store.num_steps).astype(bool)
        actions = store.read_slice(ACTION, 0, store.num_steps)
        operator_rows = flags & np.all(np.isclose(actions, OPERATOR), axis=1)
        assert operator_rows.sum() >= 2 * 14  # the held steps executed the operator's action
        assert flags.sum() == len(trainer.demos)  # every flagged step is a demonstration too
        info = store.episode_info(0)
        assert info.source == "real" and info.extra["phase"] == "train" and info.extra["interventions"] > 0
    assert trainer.logger.latest.get("train/intervention_rate", 0) > 0.2


def test_estop_ends_the_episode_and_training_pauses_until_reset(robot, tmp_path):
    trainer = trainer_for(robot, tmp_path, 3 * STEPS)
    watcher = Watcher(robot)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("eval", trainer.run()), daemon=True)
    try:
        thread.start()
        wait_for(lambda: trainer.step >= 5, what="the first steps")
        watcher.estop.publish(Bool(data=True))
        wait_for(lambda: trainer.env is not None and trainer.env.unwrapped.estop.tripped, what="the e-stop")
        tripped = time.monotonic()
        time.sleep(2.0)  # training pauses: the episode ended, no command went out, no step was taken
        paused_at = trainer.step
        assert paused_at < STEPS and not [t for t in watcher.command_times if t > tripped + 0.1]
        time.sleep(1.0)
        assert trainer.step == paused_at and thread.is_alive()
        assert watcher.call(watcher.reset).success
        thread.join(timeout=90.0)
        assert not thread.is_alive() and trainer.step >= 3 * STEPS  # training went on after the reset
        with EpisodeStore.open(tmp_path / "robot.zarr") as store:
            first = store.episode_slice(0)
            assert first.stop - first.start == paused_at and store.episode_info(0).extra["ended_by"] == "estop"
            assert store.num_episodes >= 3
    finally:
        watcher.close()
        thread.join(timeout=30.0)


def test_bridge_dying_is_one_sentence_and_keeps_store_and_buffer(robot, tmp_path):
    trainer = trainer_for(robot, tmp_path, 50 * STEPS)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            trainer.run()
        except BaseException as error:  # noqa: BLE001 - the test reads it
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: trainer.recorder is not None and trainer.recorder.writer.num_episodes >= 2, what="two episodes")
    robot.kill()
    thread.join(timeout=30.0)
    assert not thread.is_alive() and errors and isinstance(errors[0], RobotConnectionError)
    message = str(errors[0])
    assert "\n" not in message and "stopped answering" in message
    with EpisodeStore.open(tmp_path / "robot.zarr") as store:
        assert store.validate(deep=True) == []
        committed = store.num_episodes
        assert committed >= 2 and store.num_steps == committed * STEPS
    buffer = ReplayBuffer({OBS_STATE: ObsSpec((22,), "float32"), OBS_INSTRUCTION: ObsSpec((384,), "float32")}, 5, 10_000)
    state = load_checkpoint(tmp_path / "run" / "checkpoints", buffer)
    assert state["store_episodes"] == committed and state["step"] >= committed * STEPS
    assert len(buffer) == state["step"]  # the partial episode's steps are in the buffer too: nothing learned is lost


def test_connection_timeout_when_no_robot_answers(tmp_path):
    with pytest.raises(RobotConnectionError, match="no usable observation from the robot"):
        RosRobotEnv(RobotEnvConfig(cameras=("front",), start_timeout_s=1.0), domain_id=101)


@pytest.mark.slow  # 90 s of real-time control; every piece it uses is tested above (run with -m slow)
def test_a_short_run_on_the_sim_robot_learns(tmp_path):
    """robot-rl train env=ros ros.sim=true: the return of the trained policy rises above the
    random-action episodes of the same run (its seed phase), on the robot's own ground truth."""
    import csv

    from robot_rl.cli.main import main

    run = tmp_path / "run"
    code = main(["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt", "ros.encoder=none", "algo=sac",
                 "train.total_steps=900", "algo.seed_steps=300", "algo.utd=1", "algo.batch_size=128",
                 "algo.agent.num_critics=2", "train.eval_every=0", "train.eval_episodes=4", "train.log_every=300",
                 "train.checkpoint_every=900", "logger.progress_bar=false", f"run={run}"])
    assert code == 0
    rows = list(csv.DictReader(open(run / "metrics" / "train.csv")))
    random_return = float(rows[0]["episode_return"])  # the seed phase: uniform random actions
    final = list(csv.DictReader(open(run / "metrics" / "eval.csv")))[-1]
    assert float(final["return"]) > 2.0 * random_return, (final, random_return)
    with EpisodeStore.open(run / "robot.zarr") as store:  # every episode, training and evaluation, is kept
        phases = [store.episode_info(i).extra["phase"] for i in range(store.num_episodes)]
    assert phases.count("eval") == 4 and phases.count("train") >= 900 // 50


@pytest.mark.slow  # 25 s; test_finetune checks the fine-tuned agent starts as the student, in the default suite
def test_a_distilled_student_starts_the_robot_run(tmp_path):
    """ros.encoder=student: SAC shaped as the student, its perception frozen (run once per step) and its
    actor the student's policy, reads the bridge's two cameras at the student's size and acts from the first step."""
    from tests.train.test_finetune import _student_run
    from robot_rl.cli.main import main

    student_run, _ = _student_run(tmp_path)
    run = tmp_path / "run"
    code = main(["train", "task=reach", "env=ros", "ros.sim=true", "reward=gt", "ros.encoder=student",
                 f"ros.student={student_run}", "ros.actor_warmup=50", "algo.seed_steps=40", "algo.batch_size=32",
                 "algo.agent.num_critics=2", "train.total_steps=100", "train.eval_episodes=1", "train.eval_every=0",
                 "train.log_every=50", "logger.progress_bar=false", f"run={run}"])
    assert code == 0
    report = json.loads((run / "report.json").read_text())
    assert report["obs_keys"] == ["obs/state", "obs/instruction", "obs/features"]  # its image features once per step
    assert report["updates"] > 0  # and between episodes the arm came home from wherever the student left it
    spec = (run / "policy" / "policy.yaml").read_text()  # its perception in the graph: it reads what a robot gives
    assert report["policy"] == str(run / "policy") and "deployable: true" in spec and "obs/features" not in spec
    with EpisodeStore.open(run / "robot.zarr") as store:
        assert store.cameras == ["front", "wrist"] and store.array("obs/images/front").shape[1:] == (16, 16, 3)
