"""The excitation player (the teleop node's device:=excite): one whole motion per recorded
episode, retraced back to its start, and a motion interrupted by a fault discarded and replayed."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.teleop.excite import ExcitationPlayer


def motion(seed: int, steps: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (steps, 5)).astype(np.float32)
    actions[:, 4] = np.linspace(-1, 1, steps)  # the gripper channel is absolute, not a delta
    return actions


def play(player: ExcitationPlayer, ticks: int, ready=lambda t: True):
    out = []
    for t in range(ticks):
        player.ready = lambda t=t: ready(t)
        out.append(player.read())
    return out


def test_each_motion_is_one_episode_then_retraced_to_where_it_began():
    motions = [("a", motion(0), 0.0), ("b", motion(1), 1.0)]
    player = ExcitationPlayer(motions, control_rate_hz=20.0, settle_s=0.1)  # 2 ticks of rest
    commands = play(player, 60)
    events = [(i, e) for i, c in enumerate(commands) for e in c.events]
    assert [e for _, e in events] == ["start", "keep", "start", "keep"]
    (s0, _), (k0, _), (s1, _), (k1, _) = events
    recorded = [np.stack([c.action for c in commands[s + 1:k]]) for s, k in ((s0, k0), (s1, k1))]
    assert not commands[s0].action[:4].any() and not commands[s1].action[:4].any()  # start holds still
    for (name, actions, _), got in zip(motions, recorded):  # exactly the motion, nothing else, between start and keep
        np.testing.assert_array_equal(got, actions)
    for s, k, (_, actions, _) in ((s0, k0, motions[0]), (s1, k1, motions[1])):
        hold_and_retrace = np.stack([c.action for c in commands[k:k + 1 + len(actions)]])
        assert not hold_and_retrace[0, :4].any()  # the keep tick holds still
        moved = actions[:, :4].sum(axis=0) + hold_and_retrace[1:, :4].sum(axis=0)
        np.testing.assert_allclose(moved, 0, atol=1e-6)  # the hand's target is back where the motion began
        assert hold_and_retrace[-1, 4] == actions[0, 4]  # and so is the gripper
    assert player.done and player.played == ["a", "b"] and player.interrupted == 0
    assert all(not c.action[:4].any() and not c.events for c in commands[k1 + 1 + len(motions[1][1]):])


def test_a_motion_cut_short_is_discarded_and_played_again_whole():
    motions = [("a", motion(2, steps=8), 0.0)]
    player = ExcitationPlayer(motions, control_rate_hz=20.0, settle_s=0.1)
    fault = range(6, 9)  # the arm is not ready for these ticks: motion 'a' is in its 5th step (start at tick 1)
    commands = play(player, 40, ready=lambda t: t not in fault)
    events = [e for c in commands for e in c.events]
    assert events == ["start", "discard", "start", "keep"]
    assert all(not c.action[:4].any() for c in commands[6:9])  # nothing moves while not ready
    start = max(i for i, c in enumerate(commands) if "start" in c.events)
    np.testing.assert_array_equal(np.stack([c.action for c in commands[start + 1:start + 9]]), motions[0][1])
    # before playing it again, the part played (5 steps) was retraced: the hand is back where it began
    travel = np.stack([c.action[:4] for c in commands[:start]]).sum(axis=0)
    np.testing.assert_allclose(travel, 0, atol=1e-6)
    assert player.played == ["a"] and player.interrupted == 1 and player.skipped == []


def test_a_motion_this_arm_cannot_track_is_skipped_after_its_attempts():
    motions = [("fast", motion(6, steps=8), 0.0), ("slow", motion(7, steps=8), 0.0)]
    player = ExcitationPlayer(motions, control_rate_hz=20.0, settle_s=0.1, attempts=3)

    def ready(t):  # the arm faults 4 steps into 'fast', every time
        return not (player.index == 0 and player.phase == "play" and player.step == 4)

    commands = play(player, 120, ready=ready)
    events = [e for c in commands for e in c.events]
    assert events == ["start", "discard"] * 3 + ["start", "keep"]
    assert player.skipped == ["fast"] and player.played == ["slow"] and player.interrupted == 3 and player.done


def test_nothing_moves_before_the_arm_is_ready():
    player = ExcitationPlayer([("a", motion(3), 0.0)], control_rate_hz=20.0, settle_s=0.0)
    commands = play(player, 10, ready=lambda t: False)
    assert all(not c.action[:4].any() and not c.events for c in commands)


@pytest.mark.parametrize("motions, expected", [
    ([], "no excitation motion to play"),
    ([("joint", np.zeros((5, 7)), 0.0)], "ee_delta actions of 5 values"),
])
def test_motions_the_node_cannot_play_are_one_sentence(motions, expected):
    with pytest.raises(ValueError, match=expected):
        ExcitationPlayer(motions, control_rate_hz=20.0)


def test_a_stop_while_retracing_holds_then_retraces_the_rest_without_replaying():
    motions = [("a", motion(4), 0.0), ("b", motion(5), 0.0)]
    player = ExcitationPlayer(motions, control_rate_hz=20.0, settle_s=0.1)
    # 'a': start at tick 1, steps 2-7, keep at 8, retrace 9-14; the arm stops for ticks 10-12
    commands = play(player, 60, ready=lambda t: t not in range(10, 13))
    assert [e for c in commands for e in c.events] == ["start", "keep", "start", "keep"]
    assert all(not c.action[:4].any() for c in commands[10:13])
    retrace = np.stack([c.action for c in commands[9:10] + commands[13:18]])
    np.testing.assert_allclose(motions[0][1][:, :4].sum(axis=0) + retrace[:, :4].sum(axis=0), 0, atol=1e-6)
    assert player.played == ["a", "b"] and player.interrupted == 0
