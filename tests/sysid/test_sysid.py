"""System identification: the sim's physics from recorded motion (robot_rl.sysid, robot-rl sysid).

The "real" arm is the sim with a calibration the method never sees; everything else is real:
MuJoCo, the controller, the Zarr store and the CLI."""

import json

import numpy as np
import pytest
import yaml

import sim
from robot_rl.cli.main import main
from robot_rl.sysid.explore import choose_excitations, excitation_library, information, log_det
from robot_rl.sysid.fit import FitConfig, fit
from robot_rl.sysid.replay import Episode, Simulator
from sim.randomize import Calibration

HIDDEN = {"link_mass_scale": 1.3, "damping_scale": 0.6, "gain_scale": 0.75, "action_latency_steps": 1}


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "hidden.yaml"
    path.write_text(yaml.safe_dump({"calibration": HIDDEN}))
    return path


@pytest.fixture(scope="module")
def simulator():
    s = Simulator("reach", "panda")
    yield s
    s.close()


def record_on(real, actions: np.ndarray) -> Episode:
    obs, _ = real.reset(seed=3)
    start, states = obs["obs/state"].astype(np.float64), []
    for action in actions:
        states.append(real.step(action)[0]["obs/state"].astype(np.float64))
    return Episode(start, actions, np.array(states))


def test_a_calibration_scales_the_physics_and_delays_commands(hidden):
    nominal = sim.load("reach", "panda", "none", cameras=())
    real = sim.load("reach", "panda", "none", cameras=(), calibration=str(hidden))
    links = real.randomizer.link_bodies
    np.testing.assert_allclose(real.model.body_mass[links], 1.3 * nominal.model.body_mass[links])
    np.testing.assert_allclose(real.model.dof_damping, 0.6 * nominal.model.dof_damping)
    real.reset(seed=0)
    assert real.randomizer._latency == 1
    real.reset(seed=0)  # resets start from the calibrated values, not from the last draw
    np.testing.assert_allclose(real.model.body_mass[links], 1.3 * nominal.model.body_mass[links])


def test_a_calibration_file_that_is_not_one_is_one_sentence(tmp_path):
    bad = tmp_path / "cal.yaml"
    bad.write_text("calibration: {gain_scale: -1}\n")
    with pytest.raises(ValueError, match="gain_scale=-1 is not valid"):
        sim.load("reach", "panda", "none", cameras=(), calibration=str(bad))
    bad.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="holds no calibration block"):
        sim.load("reach", "panda", "none", cameras=(), calibration=str(bad))


def test_the_replay_matches_the_real_arm_only_under_its_physics(hidden, simulator):
    real = sim.load("reach", "panda", "none", cameras=(), calibration=str(hidden))
    actions = next(a for name, a in excitation_library(5, 30).items() if name.startswith("prbs"))
    episode = record_on(real, actions)
    assert simulator.error(Calibration(**HIDDEN), [episode]) < 1e-5
    assert simulator.error(Calibration(), [episode]) > 100 * simulator.error(Calibration(**HIDDEN), [episode])


def test_chosen_excitations_carry_more_information_than_random_motions(simulator):
    start = simulator.env.reset(seed=0)[0]["obs/state"]
    chosen = choose_excitations(simulator, start, 2, 30)
    assert len({name for name, _, _ in chosen}) == 2 and chosen[1][2] > chosen[0][2]
    rng = np.random.default_rng(0)
    random = [np.concatenate([rng.uniform(-1, 1, (30, 4)), -np.ones((30, 1))], axis=1) for _ in range(2)]
    random_info = sum(information(simulator, start, a, Calibration()) for a in random)
    assert chosen[-1][2] > log_det(random_info)


@pytest.mark.slow  # 17-20 s; the default suite fits through the CLI (record, then sysid cuts the error 5x)
def test_the_fit_recovers_hidden_physics(hidden, simulator):
    real = sim.load("reach", "panda", "none", cameras=(), calibration=str(hidden))
    start = simulator.env.reset(seed=0)[0]["obs/state"]
    episodes = [record_on(real, a) for _, a, _ in choose_excitations(simulator, start, 2, 30)]
    result = fit(simulator, episodes, FitConfig(iterations=4, max_latency_steps=2, refine_latencies=1,
                                                refine_evaluations=80))
    found = result.calibration
    assert found.action_latency_steps == HIDDEN["action_latency_steps"]
    for name in ("link_mass_scale", "damping_scale", "gain_scale"):
        assert abs(np.log(getattr(found, name) / HIDDEN[name])) < 0.1, (name, getattr(found, name))
    assert result.error < result.nominal_error / 100


def test_record_excite_then_sysid_writes_a_calibration_the_sim_runs_with(tmp_path, hidden, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["record", "task=reach", "device=excite", "episodes=2", "out=excite.zarr", f"env.calibration={hidden}",
                 "env.cameras=[]"]) == 0
    assert main(["sysid", "data=excite.zarr", "out=fit", "fit.iterations=3", "fit.max_latency_steps=1",
                 "fit.refine_latencies=1", "fit.refine_evaluations=40"]) == 0
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["episodes"] == 2 and report["robot"] == "panda" and report["task"] == "reach"
    assert report["joint_rmse_rad"]["calibrated"] < report["joint_rmse_rad"]["nominal"] / 5
    calibrated = sim.load("reach", "panda", "none", cameras=(), calibration=str(tmp_path / "fit" / "calibration.yaml"))
    assert calibrated.randomizer.calibration.action_latency_steps == report["calibration"]["action_latency_steps"]


@pytest.mark.parametrize("argv, expected", [
    (["sysid"], "give data="),
    (["sysid", "data=nope.zarr"], "data=nope.zarr does not exist"),
    (["sysid", "data=x.zarr", "fit.elites=99"], "fit.elites"),
    (["record", "task=reach", "prior=x.yaml"], "prior= is read only by device=excite"),
    (["record", "task=reach", "device=excite", "prior=nope.yaml"], "prior=nope.yaml does not exist"),
    (["eval", "run=x.zarr", "calibration=nope.yaml"], "calibration=nope.yaml does not exist"),
    (["train", "task=reach", "env.calibration=nope.yaml", "train.total_steps=10"], "env.calibration=nope.yaml cannot be read"),
])
def test_bad_sysid_input_is_one_sentence(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.zarr").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _store(path, commands: bool):
    """A two-episode Panda reach store as a ROS 2 recorder writes it, with or without the joint targets sent."""
    from robot_rl.data.writer import EpisodeWriter

    schema = {"obs/state": ((22,), "float32"), "action": ((5,), "float32"),
              **({"info/command": ((7,), "float32")} if commands else {})}
    attrs = {"control_rate_hz": 20.0, "robot": "panda", "action_space": "ee_delta", "task": "reach"}
    rng = np.random.default_rng(0)
    with EpisodeWriter(path, schema, attrs) as writer:
        for _ in range(2):
            writer.start_episode(source="real", task="reach")
            for _ in range(6):
                writer.add_step({"obs/state": rng.normal(0, 0.1, 22).astype("float32"),
                                 "action": rng.uniform(-1, 1, 5).astype("float32"),
                                 **({"info/command": rng.normal(0, 0.3, 7).astype("float32")} if commands else {})})
            writer.end_episode(success=False)


def test_joint_targets_sent_are_what_is_replayed_and_stores_of_two_kinds_are_refused(tmp_path, capsys):
    from robot_rl.sysid.replay import read_episodes

    _store(tmp_path / "sent.zarr", commands=True)
    _store(tmp_path / "actions.zarr", commands=False)
    episodes, facts = read_episodes(str(tmp_path / "sent.zarr"))
    assert facts["commands"] and facts["action_space"] == "joint_abs"
    assert episodes[0].actions.shape == (5, 8)  # 7 joint targets (rad) + the gripper command
    simulator = Simulator("reach", "panda", action_space="joint_abs")
    try:
        lo, hi = simulator.env.scene.robot.joint_range.T
        normalized = simulator.joint_actions(np.concatenate([lo, [0.5]])[None])
        np.testing.assert_allclose(normalized, [[-1] * 7 + [0.5]])
    finally:
        simulator.close()
    assert read_episodes(str(tmp_path / "actions.zarr"))[1] == {**facts, "action_space": "ee_delta", "commands": False}
    assert main(["sysid", f"data=[{tmp_path / 'actions.zarr'},{tmp_path / 'sent.zarr'}]", f"out={tmp_path / 'fit'}"]) == 2
    err = capsys.readouterr().err
    assert "info/command" in err and "one kind" in err and len(err.strip().splitlines()) == 1
