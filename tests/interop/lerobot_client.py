"""LeRobot's own code on our LeRobot exports; run inside the venv of scripts/lerobot_env.sh
(through its bin/lerobot-python, which finds PyAV's FFmpeg for torchcodec), never under pytest.

    lerobot-python lerobot_client.py read DIR REPO_ID OUT.npz
        LeRobotDataset(REPO_ID, root=DIR) offline: every frame (decoded video frames included) and
        the metadata LeRobot derives, saved to OUT.npz for the test to compare with our store.
    lerobot-python lerobot_client.py write DIR
        A small dataset made by LeRobot's own writer (create + add_frame + save_episode +
        finalize), for our import: 2 episodes (5 and 8 frames), state[0]=episode, state[1]=frame,
        action=[episode, frame], one camera of smooth frames at 10 fps. (No shape-(1,) feature such
        as next.reward: LeRobot 0.4.4's add_frame wants an array there and `datasets` then calls
        float() on it, which numpy 2.4 refuses.)
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def cpu_torchvision() -> None:
    """PyPI's torchvision wheels are built for CUDA torch, so with the CPU torch of our .venv their
    compiled ops do not load, and importing torchvision stops at registering fake kernels for two of
    them. LeRobotDataset uses none of those ops (only torchvision.transforms): declaring the two
    schemas lets the import finish."""
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018  (present when torchvision's ops did load)
    except (AttributeError, RuntimeError):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        cpu_torchvision.keep = lib  # the definitions live as long as the Library object


def read(root: str, repo_id: str, out: str) -> None:
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset(repo_id, root=root, video_backend="torchcodec")
    meta = ds.meta
    cameras = list(meta.video_keys)
    frames = [ds[i] for i in range(len(ds))]
    arrays = {
        "episode_index": np.array([int(f["episode_index"]) for f in frames]),
        "frame_index": np.array([int(f["frame_index"]) for f in frames]),
        "timestamp": np.array([float(f["timestamp"]) for f in frames]),
        "state": np.stack([f["observation.state"].numpy() for f in frames]),
        "action": np.stack([f["action"].numpy() for f in frames]),
        "from_index": np.array(meta.episodes["dataset_from_index"]),
        "to_index": np.array(meta.episodes["dataset_to_index"]),
    }
    if "next.reward" in frames[0]:
        arrays["reward"] = np.array([float(f["next.reward"]) for f in frames])
    for cam in cameras:  # float CHW in [0, 1] -> uint8 HWC
        arrays["image:" + cam] = np.stack([(f[cam].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                                           for f in frames])
    summary = {"len": len(ds), "num_episodes": ds.num_episodes, "fps": meta.fps, "cameras": cameras,
               "tasks": [f["task"] for f in frames], "robot_type": meta.robot_type,
               "stats_keys": sorted(meta.stats), "total_tasks": meta.total_tasks}
    np.savez(out, summary=json.dumps(summary), **arrays)


def write(root: str) -> None:
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (4,), "names": ["e", "t", "x", "y"]},
        "action": {"dtype": "float32", "shape": (2,), "names": None},
        "observation.images.top": {"dtype": "video", "shape": (24, 32, 3), "names": ["height", "width", "channels"]},
    }
    ds = LeRobotDataset.create("local/made_by_lerobot", fps=10, root=root, features=features,
                               robot_type="so100", use_videos=True)
    ramp = np.linspace(0, 60, 32, dtype=np.float32)[None, :, None]
    for episode, length in enumerate((5, 8)):
        for t in range(length):
            level = 40 + 10 * episode + 8 * t
            ds.add_frame({"observation.state": np.array([episode, t, 0.5, -0.25], np.float32),
                          "action": np.array([episode, t], np.float32),
                          "observation.images.top": np.broadcast_to(ramp + level, (24, 32, 3)).astype(np.uint8),
                          "task": f"stack the cubes {episode}"})
        ds.save_episode()
    ds.finalize()


if __name__ == "__main__":
    cpu_torchvision()
    if sys.argv[1] == "read":
        read(*sys.argv[2:5])
    elif sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
