"""CLI smoke tests: each verb at a tiny budget, checking what it wrote, not just its exit code."""

from __future__ import annotations

import subprocess
import sys

import imageio.v2 as imageio
import numpy as np

from robot_rl.cli.main import VERBS, main


def test_help_lists_every_verb_without_heavy_imports():
    code = ("import sys; from robot_rl.cli.main import main; main(['--help']); "
            "heavy = [m for m in ('torch', 'mujoco', 'zarr', 'hydra', 'dm_control') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for verb in VERBS:
        assert f"  {verb}" in out
    assert "HEAVY []" in out


def test_unknown_verb_is_one_clear_sentence(capsys):
    assert main(["fly"]) == 2
    err = capsys.readouterr().err
    assert "unknown verb 'fly'" in err and "sim" in err


def test_sim_list(capsys):
    assert main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("reach", "push", "lift", "pick_place", "stack", "panda", "hard"):
        assert name in out


def test_sim_render_writes_video_and_grid(tmp_path, capsys):
    code = main(["sim", "render", "task=reach", "render.steps=6", "render.image_size=64",
                 "render.profile=fast", f"out_dir={tmp_path}"])
    assert code == 0
    out_dir = tmp_path / "render" / "reach_panda"
    frames = imageio.mimread(out_dir / "episode.mp4")
    assert len(frames) == 7
    assert frames[0].shape == (64, 128, 3)
    grid = imageio.imread(out_dir / "grid.png")
    assert grid.shape[0] > 2 * 64 and grid.shape[1] > 4 * 64
    assert np.asarray(grid).std() > 10
    assert str(out_dir / "episode.mp4") in capsys.readouterr().out


def test_unknown_task_lists_valid_choices(tmp_path, capsys):
    assert main(["sim", "render", "task=fly", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "fly" in err and "lift" in err and "Traceback" not in err
