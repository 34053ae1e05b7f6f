"""A real writer process SIGKILLed at random moments never loses or damages a committed episode."""

from __future__ import annotations

import logging

from robot_rl.data import crash_trials
from robot_rl.data.store import EpisodeStore


def test_sigkilled_writer_loses_nothing_committed(tmp_path):
    path = tmp_path / "crash.zarr"
    report = crash_trials.run_trials(path, trials=20, seed=1234, max_delay_s=0.5)
    assert report.trials == 20 and report.open_failures == 0 and report.start_failures == 0
    assert report.lost == 0 and report.corrupt == 0, report
    assert report.reported_commits >= 5 and report.episodes_in_store >= report.reported_commits
    assert report.tails_found >= 3  # kills really landed mid-episode


def test_after_a_kill_the_tail_is_truncated_with_one_log_line(tmp_path, caplog):
    path = tmp_path / "tail.zarr"
    for attempt in range(10):  # a kill can land just after a commit; retry until a tail is left
        crash_trials.run_trials(path, trials=1, seed=attempt, max_delay_s=0.2)
        caplog.clear()
        caplog.set_level(logging.INFO, logger="robot_rl.data.store")
        with EpisodeStore.open(path, mode="a") as store:
            lines = [r for r in caplog.records if r.name == "robot_rl.data.store"]
            assert len(lines) <= 1
            assert store.validate() == []
        if lines:
            assert "truncated an uncommitted tail" in lines[0].message
            return
    raise AssertionError("no kill left a tail in 10 attempts")


def test_a_script_that_forgets_close_still_commits_its_ended_episodes(tmp_path):
    """Episodes ended (not waited for) by a script that exits without ``close()`` are committed
    at interpreter exit, before the thread pools that compress and write them shut down."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "forgot.zarr"
    script = textwrap.dedent(f"""
        from robot_rl.data import crash_trials
        from robot_rl.data.writer import EpisodeWriter

        writer = EpisodeWriter({str(path)!r}, crash_trials.SCHEMA, crash_trials.ATTRS,
                               shard_steps=crash_trials.SHARD_STEPS)
        for seed in range(3):
            data = crash_trials.episode_data(seed)
            writer.start_episode(source="scripted", seed=seed)
            for i in range(len(data["action"])):
                writer.add_step({{key: rows[i] for key, rows in data.items()}})
            writer.end_episode(success=True)
    """)
    for attempt in range(3):  # a hang at exit is the failure this guards against
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        with EpisodeStore.open(path) as store:
            assert store.num_episodes == 3 * (attempt + 1) and store.validate() == []
