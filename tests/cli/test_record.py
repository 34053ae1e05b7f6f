"""Recording end to end: real sim, real Zarr store, a scripted or fake-transport device."""

from __future__ import annotations

import numpy as np

import sim
from hardware.teleop.base import TeleopCommand
from hardware.teleop.scripted import ScriptedTeleop
from robot_rl.cli.main import main
from robot_rl.data.store import EpisodeStore
from robot_rl.data.writer import EpisodeWriter
from robot_rl.data.recording import RecordingSession


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


_RECORDER = """
import sys
from types import SimpleNamespace
import numpy as np
from robot_rl.data.writer import EpisodeWriter
from robot_rl.data.recording import RecordingSession

class Env:
    unwrapped = SimpleNamespace(config=SimpleNamespace(control_rate_hz=1000.0))
    def reset(self, seed):
        self.t, self.seed = 0, seed
        return self._obs(), {"instruction": f"episode {seed}"}
    def _obs(self):
        return {"obs/state": np.full(3, self.seed, np.float32),
                "obs/images/front": np.full((16, 16, 3), self.seed % 256, np.uint8)}
    def step(self, action):
        self.t += 1
        done = self.t >= 12
        return self._obs(), 0.0, done, False, {"success": done, "progress": self.t / 12, "instruction": "x"}

class Device:
    def read(self):
        return SimpleNamespace(action=np.zeros(2, np.float32), events=())

schema = {"obs/state": ((3,), "float32"), "obs/images/front": ((16, 16, 3), "uint8"), "action": ((2,), "float32"),
          "reward": ((), "float32"), "info/success": ((), "bool"), "info/progress": ((), "float32")}
attrs = {"control_rate_hz": 1000.0, "robot": "toy", "action_space": "joint_delta"}
with EpisodeWriter(sys.argv[1], schema, attrs, shard_steps=8) as writer:
    print("ready", flush=True)
    RecordingSession(Env(), Device(), writer, episodes=10**6, source="scripted", task="toy", seed=int(sys.argv[2]),
                     realtime=False, autostart=True, on_status=lambda text: print(text, flush=True)).run()
"""


def test_an_episode_shown_as_kept_survives_a_kill(tmp_path):
    """SIGKILL the recorder at random moments: every episode it printed as kept is in the store."""
    import re
    import subprocess
    import sys
    import time

    path, rng, promised = tmp_path / "kills.zarr", np.random.default_rng(0), set()
    for trial in range(6):
        base = (trial + 1) * 10_000
        proc = subprocess.Popen([sys.executable, "-c", _RECORDER, str(path), str(base)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.0))
        proc.kill()
        out, _ = proc.communicate()
        kept = [int(m) for m in re.findall(r"^kept (\d+)", out, re.M)]
        promised |= {base + i for i in range(max(kept, default=0))}
    with EpisodeStore.open(path, mode="a") as store:  # "a" cuts the last kill's uncommitted tail
        seeds = {info.seed for info in store.episode_infos()}
        assert store.validate(deep=True) == []
    assert len(promised) >= 6 and promised <= seeds, sorted(promised - seeds)
