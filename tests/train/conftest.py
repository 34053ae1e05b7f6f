"""A small scripted demonstration store shared by the training tests (real sim, real Zarr)."""

from pathlib import Path

import pytest

from robot_rl.cli.main import main


@pytest.fixture(scope="session")
def reach_demos(tmp_path_factory) -> Path:
    """4 scripted reach episodes with a 32x32 front camera (so pixel algorithms can use them)."""
    out = tmp_path_factory.mktemp("demos") / "reach.zarr"
    assert main(["record", "task=reach", "device=scripted", "episodes=4", f"out={out}", "env.cameras=[front]",
                 "env.image_size=32", "seed=3"]) == 0
    return out
