"""Crash trials of the episode writer: SIGKILL a real writer process at random moments, then verify.

Not a test double: ``tests/data/test_crash_kill.py`` and ``bench/zarr_io.py`` both run these
trials, and each child is this module run as a process (so it lives in the package).

Each trial starts ``python -m robot_rl.data.crash_trials STORE FIRST_SEED``, which appends
episodes whose content is a pure function of their seed, prints ``committed <seed>`` after
each commit, and is killed after a random delay. The parent then opens the store and checks
that every reported episode is present and every stored episode is bit-exact. The store is
shared by all trials, so each child also opens a store a previous kill left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rl.contracts import ACTION, INFO_SUCCESS, OBS_STATE, REWARD, image_key

SCHEMA = {OBS_STATE: ((6,), "float32"), image_key("front"): ((12, 16, 3), "uint8"),
          ACTION: ((2,), "float32"), REWARD: ((), "float32"), INFO_SUCCESS: ((), "bool")}
ATTRS = {"control_rate_hz": 30.0, "robot": "crash_trials", "action_space": "joint_delta"}
SHARD_STEPS = 8  # small shards: kills often land in a rewrite of a shard holding committed rows


def episode_data(seed: int) -> dict[str, np.ndarray]:
    """The deterministic content of the episode recorded with ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    return {OBS_STATE: rng.standard_normal((n, 6)).astype(np.float32),
            image_key("front"): rng.integers(0, 256, (n, 12, 16, 3), dtype=np.uint8),
            ACTION: rng.standard_normal((n, 2)).astype(np.float32),
            REWARD: rng.standard_normal(n).astype(np.float32),
            INFO_SUCCESS: rng.random(n) < 0.5}


def child_main(path: str, first_seed: int) -> None:
    """Record episodes forever (until killed); every 5th episode is discarded."""
    from robot_rl.data.writer import EpisodeWriter

    writer = EpisodeWriter(path, SCHEMA, ATTRS, shard_steps=SHARD_STEPS)
    print("ready", flush=True)
    seed = first_seed
    while True:
        data = episode_data(seed)
        writer.start_episode(source="scripted", seed=seed, instruction=f"episode {seed}")
        for i in range(len(data[ACTION])):
            writer.add_step({key: rows[i] for key, rows in data.items()})
        keep = seed % 5 != 0
        writer.end_episode(success=bool(seed % 2), keep=keep, wait=True)
        if keep:
            print(f"committed {seed}", flush=True)
        seed += 1


@dataclass
class CrashReport:
    """Outcome of :func:`run_trials`; ``ok`` when nothing committed was lost or damaged."""

    trials: int = 0
    reported_commits: int = 0
    episodes_in_store: int = 0
    lost: int = 0
    corrupt: int = 0
    open_failures: int = 0
    start_failures: int = 0
    tails_found: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing committed was lost or corrupt and every open and restart worked."""
        return self.lost == 0 and self.corrupt == 0 and self.open_failures == 0 and self.start_failures == 0


def run_trials(path: str | os.PathLike, trials: int, seed: int = 0, max_delay_s: float = 0.4) -> CrashReport:
    """Run ``trials`` kill-and-verify rounds on the store at ``path``."""
    rng = np.random.default_rng(seed)
    report, reported, checked = CrashReport(), set(), 0
    for trial in range(trials):
        error, commits = _one_child(str(path), (trial + 1) * 100_000, rng.uniform(0, max_delay_s))
        reported |= commits
        if error is not None:
            report.start_failures += 1
            report.errors.append(error)
        report.trials += 1
        checked = _verify(str(path), reported, report, since=max(checked - 2, 0), count_tail=True)
    _verify(str(path), reported, report, since=0, count_tail=False)
    report.reported_commits = len(reported)
    return report


def _one_child(path: str, first_seed: int, delay_s: float) -> tuple[str | None, set[int]]:
    """Run one writer until killed; (why it failed to reopen the store or None, seeds it reported)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "robot_rl.data.crash_trials", path, str(first_seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        started = proc.stdout.readline().strip() == "ready"  # the writer opened (and repaired) it
        time.sleep(delay_s)
    finally:
        proc.kill()
        out, err = proc.communicate()
    error = None if started else (err.strip().splitlines() or ["no output"])[-1]
    return error, {int(line.split()[1]) for line in out.splitlines() if line.startswith("committed ")}


def _verify(path: str, reported: set[int], report: CrashReport, since: int, count_tail: bool) -> int:
    from robot_rl.data.checks import tail_steps
    from robot_rl.data.store import EpisodeStore

    if not os.path.exists(path):
        report.lost += len(reported)  # the first child may die before creating the store
        return 0
    try:
        store = EpisodeStore.open(path, mode="r")
    except Exception:  # noqa: BLE001 - any failure to open is the finding
        report.open_failures += 1
        return 0
    report.tails_found += int(count_tail and tail_steps(store) is not None)
    infos = store.episode_infos()
    present = {info.seed for info in infos}
    report.lost = len(reported - present)
    report.episodes_in_store = store.num_episodes
    for index in range(since, store.num_episodes):
        stored, expected = store.read_episode(index), episode_data(infos[index].seed)
        report.corrupt += int(any(not np.array_equal(stored[k], expected[k]) for k in expected))
    return store.num_episodes


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]))
