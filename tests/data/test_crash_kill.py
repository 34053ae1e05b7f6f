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
