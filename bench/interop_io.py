"""Export and import speed of every format converter on a real 50-episode, two-camera store.

    python bench/interop_io.py [--episodes 50] [--task lift] [--image-size 84] [--dir TMPDIR] [--store STORE]

The store is recorded with the scripted expert (`robot-rl record device=scripted`), front and
wrist cameras at the given size, unless --store names one. The rosbag2 row imports a bag (MCAP
storage) that a robot would have recorded: the scripted reach expert's joint states, frames and
commands at 20 Hz with +-4 ms jitter (tests/interop/bags.py), as many episodes and steps. Each conversion runs as the user
would run it (`robot-rl data export|import` in a fresh process, so the times include start-up),
and each round trip is checked: episode boundaries, actions and instructions equal, images equal
(dp) or within the lossy video tolerance (lerobot). The issue's aim: under a minute each. Ends
with one `RESULT <format>_<export|import>_s <seconds> <60` line per conversion.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from robot_rl.data.store import EpisodeStore  # noqa: E402
from results import print_result  # noqa: E402

CLI = [sys.executable, "-m", "robot_rl.cli.main"]
AIM_S = 60.0


def run(argv: list[str]) -> float:
    """Seconds one CLI command takes; exits with its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"`robot-rl {' '.join(argv)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return took


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def compare(a: Path, b: Path) -> str:
    """'exact', 'images within N' or what differs."""
    with EpisodeStore.open(a) as x, EpisodeStore.open(b) as y:
        if not np.array_equal(x.episode_ends, y.episode_ends):
            return "episode boundaries differ"
        worst, total, count = 0, 0.0, 0
        for key in x.schema:
            if key not in y.schema:
                return f"{key} missing"
            u, v = x.read_slice(key, 0, x.num_steps), y.read_slice(key, 0, y.num_steps)
            if key.startswith("obs/images/"):
                error = np.abs(u.astype(np.int16) - v.astype(np.int16))
                worst, total, count = max(worst, int(error.max())), total + float(error.sum()), count + error.size
            elif not np.array_equal(u, v):
                return f"{key} differs"
        if [i.instruction for i in x.episode_infos()] != [i.instruction for i in y.episode_infos()]:
            return "instructions differ"
    return "exact" if worst == 0 else f"rest exact; pixels mean error {total / count:.2f}, max {worst} (of 255)"


def steps_of(store: Path) -> tuple[int, int]:
    """(episodes, steps of the longest one)."""
    with EpisodeStore.open(store) as s:
        return s.num_episodes, int(np.diff(np.r_[0, s.episode_ends]).max())


def rosbag_row(work: Path, episodes: int, steps: int, image_size: int) -> tuple:
    """Record a bag from a real sim run and time its import; check every episode and step came in."""
    from bags import record_bag, sim_episodes, topic_map

    bag, again = work / "robot_bag", work / "import_rosbag2.zarr"
    for path in (bag, again):
        shutil.rmtree(path, ignore_errors=True)
    record_bag(sim_episodes(episodes, steps, image_size=image_size)).write(bag, "mcap")
    topics = topic_map(work / "topics.yaml")
    import_s = run(["data", "import", str(bag), "format=rosbag2", f"out={again}", f"topics={topics}"])
    with EpisodeStore.open(again) as s:
        kept = s.num_episodes == episodes and s.num_steps == episodes * steps
        check = f"{s.num_episodes} episodes, {s.num_steps} steps" + ("" if kept else " (expected "
                                                                       f"{episodes}, {episodes * steps})")
    return ("rosbag2", float("nan"), import_s, size_mb(bag), check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--task", default="lift")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--store", default=None, help="an existing store to convert instead of recording one")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="interop_io_"))
    work.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else work / "source.zarr"
    if not args.store:
        shutil.rmtree(store, ignore_errors=True)
        took = run(["record", f"task={args.task}", "device=scripted", f"episodes={args.episodes}",
                    f"out={store}", f"env.image_size={args.image_size}"])
        print(f"recorded {store} in {took:.1f} s")
    with EpisodeStore.open(store) as s:
        print(f"store: {s.num_episodes} episodes, {s.num_steps} steps, cameras {', '.join(s.cameras)}, "
              f"{size_mb(store):.1f} MB")

    rows = []
    for fmt, suffix, back in (("dp", ".zarr", True), ("lerobot", "", True), ("rerun", ".rrd", False)):
        out, again = work / f"export_{fmt}{suffix}", work / f"import_{fmt}.zarr"
        for path in (out, again):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        export_s = run(["data", "export", str(store), f"format={fmt}", f"out={out}"])
        import_s = run(["data", "import", str(out), f"format={fmt}", f"out={again}"]) if back else float("nan")
        check = compare(store, again) if back else "-"
        rows.append((fmt, export_s, import_s, size_mb(out), check))

    rows.append(rosbag_row(work, *steps_of(store), args.image_size))

    print("\n| format | export s | import s | size MB | round trip |\n|---|---|---|---|---|")
    for fmt, export_s, import_s, mb, check in rows:
        shown = "-" if np.isnan(import_s) else f"{import_s:.1f}"
        exported = "-" if np.isnan(export_s) else f"{export_s:.1f}"
        print(f"| {fmt} | {exported} | {shown} | {mb:.1f} | {check} |")
    for fmt, export_s, import_s, _, _ in rows:
        if not np.isnan(export_s):
            print_result(f"{fmt}_export_s", export_s, f"<{AIM_S:g}")
        if not np.isnan(import_s):
            print_result(f"{fmt}_import_s", import_s, f"<{AIM_S:g}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
