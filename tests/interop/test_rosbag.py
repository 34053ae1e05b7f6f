"""`robot-rl data import BAG format=rosbag2`: bags written with `rosbags` from a real sim run
(the scripted reach expert), in sqlite3 and MCAP storage, imported back and compared with what
the sim produced; and one sentence for each kind of bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rosbags")

from robot_rl.cli.main import main  # noqa: E402
from robot_rl.data.format import StoreError  # noqa: E402
from robot_rl.data.store import EpisodeStore  # noqa: E402
from robot_rl.interop.rosbag import import_store  # noqa: E402
from bags import PERIOD_S, T0_S, BagWriter, record_bag, sim_episodes, topic_map  # noqa: E402

def opts(topics, **more) -> SimpleNamespace:
    values = {"topics": str(topics), "robot": None, "source": None, "instruction": None, "task": "reach"}
    values.update(more)
    return SimpleNamespace(**values)


@pytest.fixture(scope="module")
def sim_run() -> list[dict]:
    return sim_episodes()


def recorder_states(ep: dict) -> np.ndarray:
    """obs/state as the ROS recorder node builds it from these joint states."""
    from hardware.control.robot_model import load_robot_model

    model = load_robot_model("panda")
    return np.stack([model.state_vector(q[:7], qd[:7], q[7:]).copy() for q, qd in zip(ep["q"], ep["qd"])])


def assert_matches(store_path: Path, episodes: list[dict], dropped: int = 0) -> None:
    with EpisodeStore.open(store_path) as store:
        assert store.num_episodes == len(episodes) and store.validate() == []
        assert store.store_attrs.action_space == "ee_delta" and store.store_attrs.control_rate_hz == 20
        for index, ep in enumerate(episodes):
            rows, info = store.read_episode(index), store.episode_info(index)
            assert len(rows["action"]) == len(ep["action"]) - dropped
            np.testing.assert_array_equal(rows["action"], ep["action"][: len(rows["action"])])
            n = len(rows["action"])
            # the recorder's obs/state: joint positions and velocities as the sim had them, TCP pose by
            # forward kinematics of those positions (the sim's own rows read the TCP one physics substep
            # earlier, so that part agrees to ~2 mm only)
            np.testing.assert_allclose(rows["obs/state"][:, :14], ep["state"][:n, :14], atol=1e-6)
            np.testing.assert_allclose(rows["obs/state"], ep["state"][:n], atol=3e-3)
            np.testing.assert_allclose(rows["obs/state"], recorder_states(ep)[:n], atol=1e-6)
            for camera, frames in ep["images"].items():
                np.testing.assert_array_equal(rows[f"obs/images/{camera}"], frames[: len(rows["action"])])
            assert info.instruction == ep["instruction"] and info.success == ep["outcome"]
            assert info.source == "real" and info.task == "reach" and info.dropped_steps == dropped
            # info/success: the latest task/success at each tick, published after the previous step
            np.testing.assert_array_equal(rows["info/success"], np.r_[False, ep["success"][:-1]][:n])


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_sim_run_comes_back_from_a_bag(storage, sim_run, tmp_path):
    bag = record_bag(sim_run).write(tmp_path / "run", storage)
    said = import_store(str(bag), str(tmp_path / "out.zarr"), opts(topic_map(tmp_path / "map.yaml")))
    assert said.startswith(f"imported 2 episodes (24 steps at 20 Hz) from 1 bag(s) into {tmp_path / 'out.zarr'}")
    assert_matches(tmp_path / "out.zarr", sim_run)


def test_gaps_and_bags_cut_the_same_episodes(sim_run, tmp_path):
    bag = record_bag(sim_run).write(tmp_path / "run", "mcap")
    import_store(str(bag), str(tmp_path / "gap.zarr"),
                 opts(topic_map(tmp_path / "gap.yaml", episodes={"by": "gap", "gap_s": 0.5})))
    with EpisodeStore.open(tmp_path / "gap.zarr") as store:
        assert [store.episode_info(i).length for i in range(store.num_episodes)] == [12, 12]
        np.testing.assert_array_equal(store.read_episode(1)["action"], sim_run[1]["action"])
    folder = tmp_path / "bags"
    folder.mkdir()
    for e, ep in enumerate(sim_run):  # one bag per episode; a lone .mcap file is a bag too
        record_bag([ep], seed=e).write(folder / f"episode_{e}", "mcap")
    next((folder / "episode_1").glob("*.mcap")).rename(folder / "z.mcap")
    import shutil

    shutil.rmtree(folder / "episode_1")
    said = import_store(str(folder), str(tmp_path / "bags.zarr"),
                        opts(topic_map(tmp_path / "bag.yaml", episodes={"by": "bag"})))
    assert "from 2 bag(s)" in said
    assert_matches(tmp_path / "bags.zarr", sim_run)


def test_a_missing_frame_drops_its_tick_or_holds_the_last(sim_run, tmp_path):
    bag = record_bag(sim_run[:1], skip=(0, 5)).write(tmp_path / "run", "mcap")
    said = import_store(str(bag), str(tmp_path / "nearest.zarr"), opts(topic_map(tmp_path / "n.yaml")))
    assert "1 tick(s) missing a required topic were dropped" in said
    with EpisodeStore.open(tmp_path / "nearest.zarr") as store:
        rows = store.read_episode(0)
        assert len(rows["action"]) == 11 and store.episode_info(0).dropped_steps == 1
        np.testing.assert_array_equal(rows["action"], np.delete(sim_run[0]["action"], 5, axis=0))
    import_store(str(bag), str(tmp_path / "hold.zarr"),
                 opts(topic_map(tmp_path / "h.yaml", sync="hold", tolerance_s=0.12)))
    with EpisodeStore.open(tmp_path / "hold.zarr") as store:
        rows = store.read_episode(0)
        front = rows["obs/images/front"]
        assert len(front) == 12 and store.episode_info(0).dropped_steps == 0
        for state, action in zip(rows["obs/state"], rows["action"]):  # each row: a step's state and its action
            k = int(np.argmin(np.abs(sim_run[0]["q"][:, :7] - state[:7]).sum(axis=1)))
            np.testing.assert_allclose(state[:7], sim_run[0]["q"][k, :7], atol=1e-6)
            np.testing.assert_array_equal(action, sim_run[0]["action"][k])
        # hold takes the latest frame at or before each tick: tick 5's (missing) is tick 4's, or earlier
        # jittered frames a tick late; none comes from the future
        originals = sim_run[0]["images"]["front"]
        for k in range(12):
            assert any(np.array_equal(front[k], originals[j]) for j in range(max(0, k - 3), k + 1))


def test_compressed_frames_are_decoded_and_resized(sim_run, tmp_path):
    import cv2

    ep = sim_run[0]
    bag = BagWriter()
    for k in range(len(ep["action"])):
        tick = T0_S + k * PERIOD_S
        bag.joints(tick, ep["names"], ep["q"][k], ep["qd"][k])
        bag.compressed(tick, "/front/image_raw/compressed", ep["images"]["front"][k], "png")
        bag.image(tick, "/wrist/image_raw", ep["images"]["wrist"][k], "mono8")
        bag.vector(tick + 0.01, "/teleop/action", ep["action"][k], "std_msgs/msg/Float64MultiArray")
    bag.write(tmp_path / "run", "sqlite3")
    cameras = {"front": "/front/image_raw/compressed", "wrist": "/wrist/image_raw"}
    import_store(str(tmp_path / "run"), str(tmp_path / "out.zarr"),
                 opts(topic_map(tmp_path / "m.yaml", cameras=cameras, image_size=[16, 24], episodes=None,
                                instruction=None, success=None), instruction="reach it", source="teleop"))
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        rows, info = store.read_episode(0), store.episode_info(0)
        assert info.instruction == "reach it" and info.source == "teleop" and not info.success
        assert rows["obs/images/front"].shape == (12, 16, 24, 3)
        expected = cv2.resize(ep["images"]["front"][3], (24, 16), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(rows["obs/images/front"][3], expected)
        gray = cv2.resize(np.repeat(ep["images"]["wrist"][3][..., :1], 3, axis=2), (24, 16),
                          interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(rows["obs/images/wrist"][3], gray)
        np.testing.assert_allclose(rows["action"], ep["action"], atol=1e-7)


def test_joint_layout_without_a_robot_model(sim_run, tmp_path):
    ep = sim_run[0]
    bag = record_bag([ep]).write(tmp_path / "run", "mcap")
    joints = {"topic": "/joint_states", "joints": list(ep["names"][:7]), "gripper_joints": list(ep["names"][7:])}
    import_store(str(bag), str(tmp_path / "out.zarr"),
                 opts(topic_map(tmp_path / "m.yaml", robot=None, state="joints", joint_states=joints)))
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        state = store.read_episode(0)["obs/state"]
        assert store.store_attrs.robot == "unknown"
        np.testing.assert_allclose(state, np.column_stack([ep["q"][:, :7], ep["qd"][:, :7], ep["q"][:, 7:]]),
                                   atol=1e-6)


def test_the_cli_imports_a_bag(sim_run, tmp_path, capsys):
    bag = record_bag(sim_run[:1]).write(tmp_path / "run", "sqlite3")
    out = tmp_path / "cli.zarr"
    assert main(["data", "import", str(bag), "format=rosbag2", f"topics={topic_map(tmp_path / 'm.yaml')}",
                 f"out={out}", "source=teleop", "instruction=go"]) == 0
    assert "imported 1 episodes (12 steps at 20 Hz)" in capsys.readouterr().out
    with EpisodeStore.open(out) as store:
        assert store.episode_info(0).source == "teleop"
    assert main(["data", "import", str(bag), "format=rosbag2", f"out={tmp_path / 'y.zarr'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs topics=" in err and err.count("\n") == 0


def test_bad_input_gets_one_sentence(sim_run, tmp_path):
    bag = record_bag(sim_run[:1]).write(tmp_path / "run", "mcap")
    good = topic_map(tmp_path / "good.yaml")

    def error(src, topics, **more) -> str:
        with pytest.raises(StoreError) as caught:
            import_store(str(src), str(tmp_path / "x.zarr"), opts(topics, **more))
        said = str(caught.value)
        assert said.endswith(".") and "\n" not in said, said
        return said

    assert "the bag" in error(tmp_path / "nope", good) and "does not exist" in error(tmp_path / "nope", good)
    said = error(bag, topic_map(tmp_path / "m1.yaml", joint_states="/robot/joint_states"))
    assert "topic /robot/joint_states (joint_states) is not in the bag" in said
    assert "/joint_states (sensor_msgs/msg/JointState)" in said  # what is there
    said = error(bag, topic_map(tmp_path / "m2.yaml", action="/task/instruction"))
    assert "holds std_msgs/msg/String, which is not supported there" in said
    said = error(bag, topic_map(tmp_path / "m3.yaml", control_rate_hz=None))
    assert "lacks control_rate_hz, which is required" in said
    said = error(bag, topic_map(tmp_path / "m4.yaml", sync="interpolate"))
    assert "sync is 'interpolate'; expected one of nearest, hold" in said
    assert "needs topics=" in error(bag, "")
    said = error(bag, topic_map(tmp_path / "m5.yaml", robot="walle"))
    assert "the robot model 'walle' cannot be loaded" in said

    odd = BagWriter()
    ep = sim_run[0]
    for k in range(3):
        odd.joints(T0_S + k * PERIOD_S, ep["names"], ep["q"][k], ep["qd"][k])
        odd.image(T0_S + k * PERIOD_S, "/front/image_raw", ep["images"]["front"][k])
        odd.image(T0_S + k * PERIOD_S, "/wrist/image_raw", ep["images"]["wrist"][k], "16UC1")
        odd.vector(T0_S + k * PERIOD_S + 0.01, "/teleop/action", ep["action"][k])
    odd.write(tmp_path / "odd", "sqlite3")
    said = error(tmp_path / "odd", topic_map(tmp_path / "m6.yaml", episodes=None, instruction=None, success=None))
    assert "camera wrist (/wrist/image_raw) has image encoding '16UC1', which is not supported" in said
    late = BagWriter()  # frames always 25 ms after the joint states: none within 10 ms of a tick
    for k in range(3):
        late.joints(T0_S + k * PERIOD_S, ep["names"], ep["q"][k], ep["qd"][k])
        late.image(T0_S + k * PERIOD_S + 0.025, "/front/image_raw", ep["images"]["front"][k])
        late.vector(T0_S + k * PERIOD_S + 0.01, "/teleop/action", ep["action"][k])
    late.write(tmp_path / "late", "mcap")
    said = error(tmp_path / "late", topic_map(tmp_path / "m7.yaml", episodes=None, instruction=None, success=None,
                                              tolerance_s=0.01, cameras={"front": "/front/image_raw"}))
    assert said.startswith("no tick of") and "within tolerance_s=0.01, so nothing was imported" in said
    assert not (tmp_path / "x.zarr").exists() and not list(tmp_path.glob(".x.zarr*"))


def test_topic_map_is_required_and_checked(tmp_path):
    from robot_rl.interop.topic_map import load_topic_map

    with pytest.raises(StoreError, match="unknown keys"):
        load_topic_map({"joint_states": "/j", "action": "/a", "control_rate_hz": 10, "camera": {}})
    tmap = load_topic_map({"joint_states": "j", "action": {"topic": "a"}, "control_rate_hz": 10,
                           "cameras": {"front": {"topic": "front/image_raw"}}})
    assert tmap.joint_states == "/j" and tmap.cameras == {"front": "/front/image_raw"}
    assert tmap.sync == "nearest" and tmap.episodes_by == "bag"
    example = load_topic_map(Path(__file__).parents[2] / "docs" / "interop" / "topics.example.yaml")
    assert example.episodes_topic == "/recorder/episode" and example.image_size == (84, 84)


def test_joint_trajectory_commands_become_joint_abs_actions(sim_run, tmp_path):
    """The controllers' command (JointTrajectory + gripper array) read back as the sim bridge reads it."""
    from hardware.control.robot_model import load_robot_model

    model = load_robot_model("panda")
    lo, hi = model.scene.robot.joint_range.T
    grip = model.robot.gripper
    ep = sim_run[0]
    rng = np.random.default_rng(3)
    wanted = rng.uniform(-1, 1, (len(ep["action"]), 8))
    bag = BagWriter()
    point_t, traj_t = bag.t["trajectory_msgs/msg/JointTrajectoryPoint"], bag.t["trajectory_msgs/msg/JointTrajectory"]
    duration = bag.t["builtin_interfaces/msg/Duration"](sec=0, nanosec=50_000_000)
    names = list(ep["names"][:7])
    for k, action in enumerate(wanted):
        tick = T0_S + k * PERIOD_S
        bag.joints(tick, ep["names"], ep["q"][k], ep["qd"][k])
        q = lo + (action[:7] + 1) / 2 * (hi - lo)
        order = [6, 0, 1, 2, 3, 4, 5]  # a controller may name the joints in any order
        point = point_t(positions=q[order], velocities=np.zeros(0), accelerations=np.zeros(0), effort=np.zeros(0),
                        time_from_start=duration)
        bag.add(tick + 0.004, "/arm/joint_trajectory", "trajectory_msgs/msg/JointTrajectory",
                traj_t(header=bag.header(0.0), joint_names=[names[i] for i in order], points=[point]))
        ctrl = grip.open_ctrl + (action[7] + 1) / 2 * (grip.closed_ctrl - grip.open_ctrl)
        bag.vector(tick + 0.003, "/gripper/commands", [ctrl, ctrl], "std_msgs/msg/Float64MultiArray")
    bag.write(tmp_path / "run", "mcap")
    import_store(str(tmp_path / "run"), str(tmp_path / "out.zarr"), opts(topic_map(
        tmp_path / "m.yaml", cameras=None, episodes=None, instruction=None, success=None,
        action={"topic": "/arm/joint_trajectory", "gripper_topic": "/gripper/commands"})))
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        assert store.store_attrs.action_space == "joint_abs"
        np.testing.assert_allclose(store.read_episode(0)["action"], wanted, atol=1e-5)
