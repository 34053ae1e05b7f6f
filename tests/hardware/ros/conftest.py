"""ROS 2 test support: a private DDS domain per test, spinning nodes, and real policy artifacts.

Nodes talk over loopback DDS (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, set in tests/conftest.py)
in a domain of their own, so parallel runs on one machine do not hear each other. Discovery
takes seconds on a loaded machine: wait for matched endpoints, never sleep a fixed time.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

try:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
except ImportError:  # ROS 2 comes with the `ros` extra; without it these tests are not collected
    rclpy = None
    collect_ignore_glob = ["test_*.py"]

PANDA = tuple(f"panda_joint{i}" for i in range(1, 8))
WAIT_S = 60.0  # generous: discovery and process start can take many seconds on 2 busy cores


def wait_for(predicate: Callable[[], object], timeout_s: float = WAIT_S, what: str = "condition") -> object:
    """Poll ``predicate`` until truthy; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path, monkeypatch) -> Path:
    """E-stop latch files (hardware.safety.default_latch_path) go to the test's own directory,
    for in-process nodes and launched processes alike: never the user's state directory."""
    state = tmp_path / "robot_rl_state"
    monkeypatch.setenv("ROBOT_RL_STATE_DIR", str(state))
    return state


@pytest.fixture
def domain_id():
    """A claimed DDS domain (hardware.ros.isolation): tests running side by side never share one."""
    from hardware.ros.isolation import private_domain

    with private_domain() as claim:
        yield claim.domain_id


@pytest.fixture
def ros(domain_id):
    """An rclpy context on a private domain with a background executor: ``ros.add(node)``."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    harness = _Harness(context, domain_id)
    yield harness
    harness.close()
    rclpy.shutdown(context=context)


class _Harness:
    def __init__(self, context, domain_id: int) -> None:
        self.context, self.domain_id = context, domain_id
        # One thread, as each node process has in deployment (hardware.ros.runner): destroying
        # entities in a lifecycle callback races a multi-threaded executor's wait set.
        self.executor = SingleThreadedExecutor(context=context)
        self.nodes: list = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context is shut down under it at teardown
            pass

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that must join this test's domain."""
        return {**os.environ, "ROS_DOMAIN_ID": str(self.domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                "PYTHONUNBUFFERED": "1"}

    def close(self) -> None:
        for node in reversed(self.nodes):
            close = getattr(node, "close", None)
            if close is not None:
                close()
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)  # the executor has let go of every node before they go
        for node in self.nodes:
            node.destroy_node()


class Recorder:
    """Keeps every message of one subscription with its arrival time."""

    def __init__(self) -> None:
        self.messages: list = []
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, msg) -> None:
        with self._lock:
            self.messages.append(msg)
            self.times.append(time.monotonic())

    def since(self, t: float) -> list:
        with self._lock:
            return [m for m, at in zip(self.messages, self.times) if at >= t]

    def __len__(self) -> int:
        return len(self.messages)


def export_bc_policy(out: Path, obs: dict[str, np.ndarray], actions: np.ndarray, action_space: str,
                     updates: int = 0, robot: str = "panda", joint_names=PANDA, control_rate_hz: float = 20.0,
                     task: str = "reach", hidden_dim: int = 64) -> Path:
    """Fit robot_rl's BC agent on (obs, actions) for ``updates`` steps and export it as training does."""
    import torch

    from robot_rl.algos.bc import BC, BCConfig
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.artifact import export_agent
    from sim.controllers import ControllerConfig

    torch.set_num_threads(1)  # small batches: one thread is fastest, and the machine is shared
    specs = {k: ObsSpec(tuple(v.shape[1:]), str(v.dtype)) for k, v in obs.items()}
    agent = BC(specs, actions.shape[1], BCConfig(hidden_dim=hidden_dim, depth=2, feature_dim=16, lr=3e-3,
                                                weight_decay=0.0), seed=0)
    agent.fit_normalization(obs)
    rng = np.random.default_rng(0)
    for _ in range(updates):
        index = rng.integers(0, len(actions), 256)
        agent.update({"obs": {k: torch.as_tensor(v[index]) for k, v in obs.items()},
                      "action": torch.as_tensor(actions[index])})
    scaling = {k: v for k, v in asdict(ControllerConfig(action_space=action_space)).items() if k != "action_space"}
    facts = {"action_dim": actions.shape[1], "action_space": action_space, "robot": robot,
             "joint_names": list(joint_names), "control_rate_hz": control_rate_hz, "task": task, "scaling": scaling}
    return export_agent(agent, specs, out, facts, {"algo": "bc", "source": "tests/hardware/ros"})


def expert_rollouts(episodes: int, task: str = "reach", seed: int = 100
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """State observations and ee_delta actions of the scripted expert, and its success rate."""
    import sim
    from sim.experts import make_expert

    env = sim.load(task, "panda", cameras=())
    expert = make_expert(env)
    obs_rows, actions, successes = {"obs/state": [], "obs/object": []}, [], 0
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        expert.reset()
        for _ in range(env.episode_steps):
            action = expert.act()
            for key in obs_rows:
                obs_rows[key].append(obs[key])
            actions.append(action)
            obs, _, _, _, info = env.step(action)
        successes += int(info["success"])
    env.close()
    return {k: np.stack(v) for k, v in obs_rows.items()}, np.stack(actions).astype(np.float32), successes / episodes


@pytest.fixture(scope="session")
def reach_policy(tmp_path_factory) -> Path:
    """A BC policy distilled from the scripted reach expert (state + object observations, ee_delta)."""
    obs, actions, expert_success = expert_rollouts(30)
    assert expert_success > 0.9
    return export_bc_policy(tmp_path_factory.mktemp("reach") / "policy", obs, actions, "ee_delta", updates=600)


@pytest.fixture(scope="session")
def joint_policy(tmp_path_factory) -> Path:
    """An untrained joint_delta policy on obs/state only: it moves, which is all the fault tests need."""
    rng = np.random.default_rng(1)
    obs = {"obs/state": rng.standard_normal((64, 22)).astype(np.float32)}
    actions = rng.uniform(-1, 1, (64, 8)).astype(np.float32)
    return export_bc_policy(tmp_path_factory.mktemp("joint") / "policy", obs, actions, "joint_delta")


REPO = Path(__file__).resolve().parents[3]


class LaunchProcess:
    """``robot-rl launch ...`` in a subprocess on the test's domain, its output drained and kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        import subprocess
        import sys

        self.lines: list[str] = []
        self.process = subprocess.Popen([sys.executable, "-m", "robot_rl.cli.main", "launch", *args], cwd=REPO, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        """Node name -> pid, from the launcher's ``started`` lines."""
        import re

        found = (re.match(r"\[launch\] started (\S+) \(pid (\d+)\)", line) for line in list(self.lines))
        return {m.group(1): int(m.group(2)) for m in found if m}

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C the launcher and wait for it; kill its process group if it hangs."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 60.0) -> int:
        import signal
        import subprocess

        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return True


STUDENT_IMAGE = 48  # small for speed; the node fits any camera size to it


def configured_policy_node(ros, policy_path: Path, control_rate_hz: float, obs_timeout_s: float):
    """A policy node on ``policy_path``, configured (asserted clean) and added to ``ros``; no ramp-in."""
    from rclpy.parameter import Parameter

    from hardware.ros.policy_node import PolicyNode

    params = [Parameter("policy_path", value=str(policy_path)), Parameter("ramp_in_s", value=0.0),
              Parameter("control_rate_hz", value=control_rate_hz), Parameter("obs_timeout_s", value=obs_timeout_s),
              Parameter("diagnostics_period_s", value=0.2)]
    policy = PolicyNode(context=ros.context, parameter_overrides=params)
    policy.trigger_configure()
    assert policy.configure_error == ""
    return ros.add(policy)


def export_student_policy(out: Path, image_size: int = STUDENT_IMAGE, control_rate_hz: float = 20.0) -> Path:
    """A camera + proprioception + instruction student as training exports one: robot_rl's BC
    agent built from the ``bc`` algo config, random weights (plumbing, not skill)."""
    import torch
    from omegaconf import OmegaConf

    from robot_rl.algos.networks import ObsSpec
    from robot_rl.contracts import OBS_INSTRUCTION
    from robot_rl.policy.instruction import encoder_facts
    from robot_rl.train.artifact import export_agent
    from robot_rl.train.build import build_agent
    from sim.controllers import ControllerConfig

    torch.set_num_threads(1)
    algo = OmegaConf.load(REPO / "robot_rl" / "conf" / "algo" / "bc.yaml")
    algo.agent.hidden_dim = 64
    image = ObsSpec((image_size, image_size, 3), "uint8")
    specs = {"obs/images/front": image, "obs/images/wrist": image, "obs/state": ObsSpec((22,), "float32"),
             OBS_INSTRUCTION: ObsSpec((384,), "float32")}
    agent = build_agent(algo, specs, 5, seed=0)
    scaling = {k: v for k, v in asdict(ControllerConfig(action_space="ee_delta")).items() if k != "action_space"}
    facts = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": list(PANDA),
             "control_rate_hz": control_rate_hz, "task": "reach", "scaling": scaling,
             "instruction": {"conditioned": True, "key": OBS_INSTRUCTION, "encoder": encoder_facts()}}
    return export_agent(agent, specs, out, facts, {"algo": "bc", "source": "tests/hardware/ros (student plumbing)"})


@pytest.fixture(scope="session")
def student_policy(tmp_path_factory) -> Path:
    """A deployable student (cameras front and wrist, joint state, instruction), untrained."""
    return export_student_policy(tmp_path_factory.mktemp("student") / "policy")
