"""Tiny real stores (recorded in sim) and one tiny model trained on them through the CLI.

Session-scoped: the stores take a few seconds to record and the model about half a minute to
train on 2 CPU cores, and every test here reads them without changing them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from robot_rl.cli.main import main

IMAGE_PX = 32
TINY = ["reward.model.image_size=32", "reward.model.channels=[8,16,32]", "reward.model.hidden=64",
        "reward.model.text_queries=2", "reward.augment.shift_px=2", "reward.train.steps=350",
        "reward.train.batch_size=32", "reward.train.eval_every=100", "reward.train.val_fraction=0",
        "reward.train.lr=0.002"]


def _record(out: Path, task: str, episodes: int, noise: float, seed: int) -> Path:
    code = main(["record", f"task={task}", "device=scripted", f"episodes={episodes}", f"noise={noise}",
                 f"seed={seed}", f"out={out}", f"env.image_size={IMAGE_PX}"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> dict[str, Path]:
    """``train_clean``/``train_fail`` (lift demos and perturbed failures), ``test`` (held out,
    other seeds, both kinds) and ``front_only`` (a store without the wrist camera)."""
    root = tmp_path_factory.mktemp("reward_stores")
    out = {
        "train_clean": _record(root / "train_clean.zarr", "lift", 5, 0.0, 100),
        "train_fail": _record(root / "train_fail.zarr", "lift", 4, 0.8, 200),
        "test_clean": _record(root / "test_clean.zarr", "lift", 3, 0.0, 900),
        "test_fail": _record(root / "test_fail.zarr", "lift", 3, 0.8, 950),
    }
    code = main(["record", "task=reach", "device=scripted", "episodes=1", "seed=3", f"out={root / 'front.zarr'}",
                 f"env.image_size={IMAGE_PX}", "env.cameras=[front]"])
    assert code == 0
    out["front_only"] = root / "front.zarr"
    return out


@pytest.fixture(scope="session")
def trained(stores, tmp_path_factory) -> Path:
    """A tiny model trained by ``robot-rl reward train`` with a held-out report card."""
    out = tmp_path_factory.mktemp("reward_model") / "vlm"
    code = main(["reward", "train", f"data=[{stores['train_clean']},{stores['train_fail']}]",
                 f"held_out=[{stores['test_clean']},{stores['test_fail']}]", f"out={out}", *TINY])
    assert code == 0
    return out


@pytest.fixture
def store_copy(stores, tmp_path):
    """A private copy of the held-out store that a test may write into."""
    def make(name: str = "test_clean") -> Path:
        dst = tmp_path / f"{name}.zarr"
        shutil.copytree(stores[name], dst)
        return dst
    return make
