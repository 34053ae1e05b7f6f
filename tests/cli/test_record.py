"""Recording end to end: real sim, real Zarr store, a scripted or fake-transport device."""

from __future__ import annotations

import numpy as np

import sim
from hardware.teleop.base import TeleopCommand
from hardware.teleop.fakes import ScriptedTeleop
from robot_rl.cli.main import main
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter
from robot_rl.recording import RecordingSession


def test_record_scripted_demos_land_in_a_valid_store(tmp_path, capsys):
    out = tmp_path / "lift.zarr"
    code = main(["record", "task=lift", "device=scripted", "episodes=2", f"out={out}",
                 "env.image_size=32", "seed=7"])
    assert code == 0
    assert "kept 2" in capsys.readouterr().out
    with EpisodeStore.open(out) as store:
        assert store.num_episodes == 2
        assert store.validate() == []
        infos = store.episode_infos()
        assert all(i.source == "scripted" and i.task == "lift" for i in infos)
        assert all(any(c in i.instruction for c in ("red", "green", "blue")) for i in infos)
        assert [i.seed for i in infos] == [7, 8]
        episode = store.read_episode(0)
        assert episode["info/success"][-1] and not episode["info/success"][0]
        assert episode["obs/images/front"].shape[1:] == (32, 32, 3)
        assert episode["obs/images/wrist"].std() > 10
        assert np.abs(episode["action"]).max() <= 1.0


def _command(action=(0, 0, 0, 0, -1), events=()):
    return TeleopCommand(action=np.array(action, dtype=np.float32), events=tuple(events))


def test_teleop_session_start_discard_keep_quit(tmp_path):
    env = sim.load("reach", "panda", cameras=(), image_size=32)
    spec = env.env_spec
    schema = {"obs/state": (spec.observations["obs/state"].shape, "float32"),
              "obs/object": (spec.observations["obs/object"].shape, "float32"),
              "action": ((5,), "float32"), "reward": ((), "float32"),
              "info/success": ((), "bool"), "info/progress": ((), "float32")}
    attrs = {"control_rate_hz": 20.0, "robot": "panda", "action_space": "ee_delta"}
    move = _command((0.5, 0, -0.5, 0, -1))
    script = ([_command(events=["start"])] + [move] * 3 + [_command(events=["discard"])]
              + [_command(events=["start"])] + [move] * 4 + [_command(events=["failure"])]
              + [_command(events=["keep"])] + [_command(events=["quit"])])
    with EpisodeWriter(tmp_path / "teleop.zarr", schema, attrs) as writer:
        session = RecordingSession(env, ScriptedTeleop(script), writer, episodes=5, source="teleop",
                                   task="reach", realtime=False)
        summary = session.run()
    env.close()
    assert (summary.kept, summary.discarded, summary.quit) == (1, 1, True)
    with EpisodeStore.open(tmp_path / "teleop.zarr") as store:
        assert store.num_episodes == 1
        info = store.episode_info(0)
        assert info.source == "teleop" and info.success is False  # marked failure wins
        actions = store.read_episode(0)["action"]
        assert len(actions) == 6  # 4 moves + the failure mark + the keep step
        np.testing.assert_allclose(actions[0], [0.5, 0, -0.5, 0, -1])


def test_record_unknown_device_is_one_sentence(tmp_path, capsys):
    assert main(["record", "device=joystick", f"out={tmp_path / 'x.zarr'}", "env.image_size=32"]) == 2
    err = capsys.readouterr().err
    assert "joystick" in err and "keyboard" in err and "Traceback" not in err
