"""The rosbag2 import's time synchronisation: episodes cut from the streams, a control-rate clock
per episode, and which message of each stream every tick takes; plus the state/action layout.

``obs/state`` is the recorder node's (``hardware/ros/recorder_node.py``): with a robot model
(``state: robot``, the default when the topic map names a robot) it is the sim's state vector
built from the joint positions and velocities (q, qd, TCP position and quaternion, gripper
opening), so an imported bag and a recorder store share one layout; ``state: joints`` gives
``[q, qd, q_gripper]`` for a robot without a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_rl.data.format import StoreError
from robot_rl.interop import rosbag_messages as msgs
from robot_rl.interop.topic_map import TopicMap

_EPS = 1e-9
_ENDS = ("keep", "stop", "end")


@dataclass
class Stream:
    """One topic's messages in stamp order: stamps (s) and values (camera streams: message ordinals)."""

    stamps: np.ndarray
    values: list

    @classmethod
    def of(cls, stamps: list[float], values: list) -> Stream:
        order = np.argsort(np.asarray(stamps, np.float64), kind="stable")
        return cls(np.asarray(stamps, np.float64)[order], [values[i] for i in order])

    def within(self, lo: float, hi: float) -> np.ndarray:
        return self.stamps[(self.stamps >= lo) & (self.stamps <= hi)]

    def pick(self, at: np.ndarray, mode: str, tolerance_s: float) -> np.ndarray:
        """Index of the message each time in ``at`` takes (-1: none within tolerance)."""
        if mode == "hold":
            i = np.searchsorted(self.stamps, at + _EPS, side="right") - 1
            ok = (i >= 0) & (at - self.stamps[np.maximum(i, 0)] <= tolerance_s + _EPS)
            return np.where(ok, i, -1)
        right = np.clip(np.searchsorted(self.stamps, at), 0, len(self.stamps) - 1)
        left = np.maximum(right - 1, 0)
        d_left, d_right = np.abs(at - self.stamps[left]), np.abs(self.stamps[right] - at)
        best = np.where(d_right < d_left, right, left)
        return np.where(np.minimum(d_left, d_right) <= tolerance_s + _EPS, best, -1)

    def latest(self, at: np.ndarray) -> np.ndarray:
        """Index of the last message at or before each time (-1: none)."""
        return np.searchsorted(self.stamps, np.asarray(at) + _EPS, side="right") - 1


@dataclass
class Plan:
    """One episode: its bounds, the ticks kept, and per role the message index each tick takes."""

    start_s: float
    end_s: float
    ticks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    action_until: np.ndarray = field(default_factory=lambda: np.zeros(0))
    picks: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: int = 0
    marked: bool | None = None

    @property
    def rows(self) -> int:
        return len(self.ticks)

    def held(self, role: str, streams: dict[str, Stream], default) -> np.ndarray:
        """The latest value of ``role`` during the episode at each tick (``default`` before its first)."""
        if role not in streams or not len(streams[role].stamps):
            return np.full(self.rows, default)
        stream = streams[role]
        return np.array([stream.values[i] if i >= 0 and stream.stamps[i] >= self.start_s else default
                         for i in stream.latest(self.ticks)])

    def instruction(self, streams: dict[str, Stream]) -> str:
        """The instruction in force at the first tick, else the first one given during the episode."""
        stream = streams.get("instruction")
        if stream is None or not len(stream.stamps):
            return ""
        i = int(stream.latest(self.ticks[0]))
        if i < 0 and stream.stamps[0] <= self.end_s:
            i = 0
        return stream.values[i] if i >= 0 else ""

    def success(self, streams: dict[str, Stream]) -> bool:
        """The episode's outcome: a success/failure event, else the last success message up to its end."""
        if self.marked is not None:
            return self.marked
        stream = streams.get("success")
        if stream is None:
            return False
        i = int(stream.latest(self.end_s))
        return bool(stream.values[i]) if i >= 0 and stream.stamps[i] >= self.start_s else False


class Layout:
    """Joint names, the optional robot model, and how states and actions become rows."""

    def __init__(self, tmap: TopicMap, robot: str) -> None:
        name = tmap.robot or robot
        self.state = tmap.state or ("robot" if name else "joints")
        self.model = None
        if self.state == "robot":
            if not name:
                raise StoreError("state: robot needs a robot model: set robot in the topic map (or robot=), "
                                 "or use state: joints.")
            from hardware.control.robot_model import load_robot_model

            try:
                self.model = load_robot_model(name, "ee_delta")
            except Exception as exc:  # noqa: BLE001 - an unknown robot, a broken model file
                raise StoreError(f"the robot model {name!r} cannot be loaded ({str(exc).rstrip('.')}); name a robot "
                                 "of sim/conf/robot or use state: joints.") from None
        model = self.model
        self.joints = tmap.joints or (tuple(model.joint_names) if model else ())
        self.gripper = tmap.gripper_joints if tmap.gripper_joints is not None else (
            tuple(model.gripper_joint_names) if model else ())
        if not self.joints:
            raise StoreError("state: joints needs joint_states.joints (the arm's joint names, in state order).")
        if model is not None and len(self.joints) != model.n_joints:
            raise StoreError(f"joint_states.joints names {len(self.joints)} joints, but the {name} model has "
                             f"{model.n_joints}.")
        self.trajectory = False
        self.action_space = tmap.action_space or "ee_delta"
        self._tmap = tmap

    def action_of(self, msg, msgtype: str, topic: str) -> np.ndarray:
        if msgtype == msgs.TRAJECTORY:
            self.trajectory = True
            self.action_space = self._tmap.action_space or ("joint_abs" if self.model else "joint_positions")
            return msgs.trajectory_positions(msg, self.joints, topic)
        return msgs.vector(msg)

    def states(self, stream: Stream, picks: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.stack([np.concatenate(stream.values[i]) for i in picks]).astype(np.float32)
        return np.stack([self.model.state_vector(*stream.values[i]).copy() for i in picks])

    def actions(self, streams: dict[str, Stream], plan: Plan) -> np.ndarray:
        rows = [streams["action"].values[i] for i in plan.picks["action"]]
        if len({len(r) for r in rows}) != 1:
            raise StoreError(f"the messages on {self._tmap.action} have different lengths "
                             f"({sorted({len(r) for r in rows})}); an action needs one size.")
        actions = np.stack(rows)
        if not self.trajectory:
            return actions.astype(np.float32)
        gripper = streams.get("gripper_topic")
        if self.model is None:
            if gripper is None:
                return actions.astype(np.float32)
            grip = [gripper.values[i].mean() if i >= 0 else 0.0 for i in gripper.latest(plan.action_until)]
            return np.column_stack([actions, grip]).astype(np.float32)
        # joint_abs as the sim bridge reads it: positions normalised over the joint range, then the gripper
        lo, hi = self.model.scene.robot.joint_range.T
        grip_cfg = self.model.robot.gripper
        grip = np.full(plan.rows, -1.0)
        if gripper is not None:
            for row, i in enumerate(gripper.latest(plan.action_until)):
                if i >= 0 and len(gripper.values[i]):
                    fraction = (gripper.values[i].mean() - grip_cfg.open_ctrl) / (grip_cfg.closed_ctrl -
                                                                                   grip_cfg.open_ctrl)
                    grip[row] = np.clip(2 * fraction - 1, -1, 1)
        return np.column_stack([2 * (actions - lo) / (hi - lo) - 1, grip]).astype(np.float32)


def _segments(streams: dict[str, Stream], tmap: TopicMap) -> list[Plan]:
    joints = streams["joint_states"].stamps
    if tmap.episodes_by == "bag" or not len(joints):
        return [Plan(-np.inf, np.inf)]
    if tmap.episodes_by == "gap":
        cuts = np.flatnonzero(np.diff(joints) > tmap.gap_s)
        starts, ends = np.r_[0, cuts + 1], np.r_[cuts, len(joints) - 1]
        return [Plan(joints[a], joints[b]) for a, b in zip(starts, ends)]
    events = streams["episodes topic"]
    plans, open_at, marked = [], None, None
    for stamp, value in zip(events.stamps, events.values):
        if value is True or value == "start":
            if open_at is None:
                open_at, marked = stamp, None
        elif value in ("success", "failure"):
            marked = value == "success"
        elif open_at is not None and (value is False or value in _ENDS or value == "discard"):
            if value != "discard":
                plans.append(Plan(open_at, stamp, marked=marked))
            open_at = None
    if open_at is not None:  # still open when the bag ends: kept up to the bag's end
        plans.append(Plan(open_at, np.inf, marked=marked))
    return plans


def plan_episodes(streams: dict[str, Stream], tmap: TopicMap, layout: Layout) -> list[Plan]:
    """The episodes of one bag with their ticks and picks (camera picks are message ordinals)."""
    observed = ["joint_states", *[r for r in streams if r.startswith("camera ")], *(["object"] if tmap.object else [])]
    plans = _segments(streams, tmap)
    for plan in plans:
        firsts, lasts = [], []
        for role in observed + ["action"]:
            hi = plan.end_s + tmap.tolerance_s + (tmap.period_s if role == "action" else 0.0)
            inside = streams[role].within(plan.start_s - tmap.tolerance_s, hi)
            if not len(inside):
                firsts = []
                break
            lasts.append(inside[-1])
            if role != "action":
                firsts.append(inside[0])
        if not firsts:
            continue
        # nearest: the clock runs on the joint states' own beat, from the first one with every stream
        # near it, to the last such; hold: from when every stream has been heard to the first last one
        anchor, end = max(firsts), min(lasts)
        if tmap.sync == "nearest":
            joints = streams["joint_states"].within(anchor - tmap.tolerance_s, plan.end_s)
            anchor = joints[0] if len(joints) else anchor
        end += min(tmap.tolerance_s, 0.49 * tmap.period_s)  # a jittered last message still ends on a tick
        if end < anchor:
            continue
        ticks = anchor + np.arange(int(np.floor((end - anchor) / tmap.period_s + 1e-6)) + 1) * tmap.period_s
        picks = {role: streams[role].pick(ticks, tmap.sync, tmap.tolerance_s) for role in observed}
        stamp = streams["joint_states"].stamps[np.maximum(picks["joint_states"], 0)]
        picks["action"] = _action_picks(streams["action"], stamp, tmap)
        keep = np.all([p >= 0 for p in picks.values()], axis=0)
        plan.dropped = int((~keep).sum())
        plan.ticks, plan.action_until = ticks[keep], stamp[keep] + tmap.period_s
        plan.picks = {role: p[keep] for role, p in picks.items()}
        for role in observed:
            if role.startswith("camera "):
                plan.picks[role] = np.asarray([streams[role].values[i] for i in plan.picks[role]], int)
    return plans


def _action_picks(actions: Stream, observed_s: np.ndarray, tmap: TopicMap) -> np.ndarray:
    """The first command sent within one period after each observation (the response to it); under
    hold, when none was, the latest one sent before it, no older than tolerance_s."""
    after = np.searchsorted(actions.stamps, observed_s + _EPS, side="right")
    next_s = actions.stamps[np.minimum(after, len(actions.stamps) - 1)]
    ok = (after < len(actions.stamps)) & (next_s <= observed_s + tmap.period_s + _EPS)
    picks = np.where(ok, after, -1)
    if tmap.sync == "hold":
        before = after - 1
        held = (before >= 0) & (observed_s - actions.stamps[np.maximum(before, 0)] <= tmap.tolerance_s + _EPS)
        picks = np.where(ok, picks, np.where(held, before, -1))
    return picks
