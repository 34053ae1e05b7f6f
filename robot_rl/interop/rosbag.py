"""Import ROS 2 bags (rosbag2, sqlite3 or MCAP storage) into an episode store, with ``rosbags``.

``robot-rl data import BAG format=rosbag2 topics=map.yaml out=STORE``. The topic map
(:mod:`robot_rl.interop.topic_map`, docs/interop/rosbag2.md) names the joint states, cameras
and command topic; every bag is read twice, streaming:

1. everything but camera pixels: joint states, commands, events, instruction, success, and the
   camera stamps; episodes are cut (one per bag, at gaps, or by an events topic) and each
   episode gets a control-rate clock over the span where every required topic is present;
2. the camera topics, decoding only the frames some tick uses; an episode is handed to the
   store as soon as its last frame is read, so memory holds one episode's frames at a time.

Each tick takes the joint state and camera frame nearest to it (``sync: nearest``) or the
latest (``sync: hold``) within ``tolerance_s``, and as action the first command sent within one
control period after that joint state: the command sent in response to it. A tick missing a required
topic is dropped and counted in the episode's ``dropped_steps``; the episode does not split.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from robot_rl import contracts
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError
from robot_rl.interop import common
from robot_rl.interop import rosbag_messages as msgs
from robot_rl.interop.rosbag_sync import Layout, Plan, Stream, plan_episodes
from robot_rl.interop.topic_map import TopicMap, load_topic_map

IMPORT_OPTIONS = ("topics", "robot", "source", "instruction", "task")


def import_store(src: str, out: str, opts) -> str:
    """Build the store ``out`` from the bag (or folder of bags) ``src``; one sentence back."""
    common.need("rosbags", "rosbags", "the rosbag2 import")
    tmap = load_topic_map(getattr(opts, "topics", None))
    source = getattr(opts, "source", None) or "real"
    if source not in contracts.EPISODE_SOURCES:
        raise StoreError(f"source={source} is unknown; expected one of {', '.join(contracts.EPISODE_SOURCES)}.")
    bags = find_bags(src)
    layout = Layout(tmap, getattr(opts, "robot", None) or "")
    totals = {"dropped": 0, "empty": 0}
    meta = {"source": source, "robot": getattr(opts, "robot", None) or tmap.robot or "unknown",
            "instruction": getattr(opts, "instruction", None) or "", "task": getattr(opts, "task", None) or tmap.task}
    episodes = (episode for bag in bags for episode in _bag_episodes(bag, tmap, layout, meta, totals))
    first = next(episodes, None)
    if first is None:
        raise StoreError(f"no tick of {src} had every required topic ({', '.join(_required(tmap))}) within "
                         f"tolerance_s={tmap.tolerance_s:g}, so nothing was imported.")
    schema = {key: (values.shape[1:], values.dtype.name) for key, values in first.data.items()}
    attrs = {"control_rate_hz": tmap.control_rate_hz, "robot": meta["robot"], "action_space": layout.action_space,
             "extra": {"imported_from": "rosbag2", "joint_names": list(layout.joints),
                       "cameras": list(tmap.cameras)}}
    path, count, steps = common.build_store(out, schema, attrs, itertools.chain([first], episodes))
    skipped = f", {totals['empty']} episode(s) with no complete tick skipped" if totals["empty"] else ""
    return (f"imported {count} episodes ({steps} steps at {tmap.control_rate_hz:g} Hz) from {len(bags)} bag(s) "
            f"into {path}; {totals['dropped']} tick(s) missing a required topic were dropped{skipped}.")


def _required(tmap: TopicMap) -> list[str]:
    return [tmap.joint_states, *tmap.cameras.values(), tmap.action, *([tmap.object] if tmap.object else [])]


def find_bags(src: str) -> list[Path]:
    """The bags at ``src``: a bag folder (metadata.yaml), a .mcap/.db3 file, or a folder of those."""
    path = Path(src)
    if not path.exists():
        raise StoreError(f"the bag {path} does not exist.")
    if path.is_file():
        if path.suffix not in (".mcap", ".db3"):
            raise StoreError(f"{path} is not a rosbag2 bag; expected a bag folder, a .mcap or a .db3 file.")
        return [path]
    if (path / "metadata.yaml").is_file():
        return [path]
    bags = sorted(p for p in path.iterdir() if not p.name.startswith(".")
                  and ((p.is_dir() and (p / "metadata.yaml").is_file()) or (p.is_file() and p.suffix == ".mcap")))
    if not bags:
        raise StoreError(f"{path} is neither a rosbag2 bag (it has no metadata.yaml) nor a folder of bags.")
    return bags


def _open(path: Path):
    from rosbags.rosbag2 import Reader

    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds for a damaged bag
        raise StoreError(f"the bag {path} cannot be read ({str(exc).rstrip('.') or type(exc).__name__}).") from None
    return reader


def _connections(reader, tmap: TopicMap, path: Path) -> dict[str, tuple[str, str, list]]:
    """{role: (topic, message type, connections)} of every topic the map reads, checked."""
    topics = reader.topics
    found = {}
    for role, topic in tmap.topics().items():
        if topic not in topics:
            have = ", ".join(f"{t} ({info.msgtype})" for t, info in sorted(topics.items())) or "no topics"
            raise StoreError(f"topic {topic} ({role}) is not in the bag {path}; it has {have}.")
        info = topics[topic]
        msgs.check_type(role, topic, info.msgtype)
        found[role] = (topic, info.msgtype, list(info.connections))
    return found


def _bag_episodes(path: Path, tmap: TopicMap, layout: Layout, meta: dict, totals: dict):
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_JAZZY)
    reader = _open(path)
    try:
        roles = _connections(reader, tmap, path)
        streams = _read_streams(reader, roles, tmap, layout, typestore, path)
        plans = plan_episodes(streams, tmap, layout)
        totals["empty"] += sum(1 for p in plans if p.rows == 0)
        totals["dropped"] += sum(p.dropped for p in plans if p.rows)
        plans = [p for p in plans if p.rows]
        cameras = [role for role in roles if role.startswith("camera ")]
        if not cameras:
            for plan in plans:
                yield _episode(plan, {}, streams, tmap, layout, meta, path)
            return
        yield from _with_images(reader, roles, cameras, plans, streams, tmap, layout, meta, path, typestore)
    finally:
        reader.close()


def _read_streams(reader, roles: dict, tmap: TopicMap, layout: Layout, typestore, path: Path) -> dict[str, Stream]:
    """Pass 1: every stream but the camera pixels (cameras keep their stamps and message order)."""
    by_connection = {conn.id: role for role, (_, _, conns) in roles.items() for conn in conns}
    topic_of = {role: topic for role, (topic, _, _) in roles.items()}
    stamps: dict[str, list[float]] = {role: [] for role in roles}
    values: dict[str, list] = {role: [] for role in roles}
    picker = msgs.JointPicker(tmap.joint_states, layout.joints, layout.gripper)
    header_stamps = tmap.stamps == "header"
    try:
        for conn, log_ns, raw in reader.messages(connections=[c for _, _, cs in roles.values() for c in cs]):
            role = by_connection[conn.id]
            is_camera = role.startswith("camera ")
            if is_camera and not header_stamps:
                stamps[role].append(log_ns * 1e-9)
                values[role].append(len(values[role]))
                continue
            msg = msgs.deserialize(typestore, raw, conn.msgtype)
            stamp = (msgs.header_s(msg) if header_stamps else None) or log_ns * 1e-9
            stamps[role].append(stamp)
            values[role].append(len(values[role]) if is_camera else _value(role, msg, conn.msgtype, picker, layout,
                                                                            topic_of[role]))
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt bag
        raise StoreError(f"the bag {path} cannot be read to the end ({str(exc).rstrip('.') or type(exc).__name__})."
                         ) from None
    return {role: Stream.of(stamps[role], values[role]) for role in roles}


def _value(role: str, msg, msgtype: str, picker: msgs.JointPicker, layout: Layout, topic: str):
    if role == "joint_states":
        return picker.read(msg)
    if role == "action":
        return layout.action_of(msg, msgtype, topic)
    if role in ("gripper_topic", "object"):
        return msgs.vector(msg)
    if role == "progress":
        return float(msg.data)
    if role == "success":
        return bool(msg.data)
    if role == "episodes topic":
        return msg.data if msgtype == msgs.STRING else bool(msg.data)
    return str(msg.data)  # instruction


def _with_images(reader, roles, cameras, plans: list[Plan], streams, tmap, layout, meta, path, typestore):
    """Pass 2: decode the frames the plans use, in bag order; yield each episode once complete."""
    by_connection = {conn.id: role for role in cameras for conn in roles[role][2]}
    needed: dict[str, dict[int, list[tuple[int, int]]]] = {role: {} for role in cameras}
    last_needed = [{role: int(plan.picks[role].max()) for role in cameras} for plan in plans]
    for p, plan in enumerate(plans):
        for role in cameras:
            for row, ordinal in enumerate(plan.picks[role]):
                needed[role].setdefault(int(ordinal), []).append((p, row))
    frames: list[dict[str, np.ndarray]] = [{} for _ in plans]
    seen = {role: -1 for role in cameras}
    first_hw: dict[str, tuple[int, int]] = {}
    ready = 0
    try:
        for conn, _, raw in reader.messages(connections=[c for role in cameras for c in roles[role][2]]):
            role = by_connection[conn.id]
            seen[role] += 1
            users = needed[role].pop(seen[role], None)
            if users:
                label = f"camera {role[7:]} ({roles[role][0]})"
                rgb = msgs.decode_image(msgs.deserialize(typestore, raw, conn.msgtype), conn.msgtype, label)
                rgb = msgs.fit_image(rgb, tmap.image_size, label, first_hw.get(role))
                first_hw.setdefault(role, rgb.shape[:2])
                for p, row in users:
                    if role not in frames[p]:
                        frames[p][role] = np.empty((plans[p].rows, *rgb.shape), np.uint8)
                    frames[p][role][row] = rgb
            while ready < len(plans) and all(seen[r] >= last_needed[ready][r] for r in cameras):
                yield _episode(plans[ready], frames[ready], streams, tmap, layout, meta, path)
                frames[ready] = {}
                ready += 1
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt bag
        raise StoreError(f"the bag {path} cannot be read to the end ({str(exc).rstrip('.') or type(exc).__name__})."
                         ) from None
    if ready < len(plans):
        raise StoreError(f"the bag {path} ended before every camera frame its index lists was read.")


def _episode(plan: Plan, frames: dict, streams: dict[str, Stream], tmap: TopicMap, layout: Layout, meta: dict,
             path: Path) -> common.Episode:
    data = {contracts.OBS_STATE: layout.states(streams["joint_states"], plan.picks["joint_states"]),
            contracts.ACTION: layout.actions(streams, plan)}
    for role, rows in frames.items():
        data[contracts.image_key(role[7:])] = rows
    if tmap.object:
        data[contracts.OBS_OBJECT] = np.stack([streams["object"].values[i] for i in plan.picks["object"]]).astype(
            np.float32)
    success = plan.held("success", streams, False).astype(bool)
    progress = plan.held("progress", streams, 0.0).astype(np.float32)
    data[contracts.INFO_SUCCESS] = success
    data[contracts.INFO_PROGRESS] = progress
    data[contracts.REWARD] = np.asarray(contracts.ground_truth_reward(progress, success, "dense"), np.float32)
    instruction = plan.instruction(streams) or meta["instruction"]
    outcome = plan.success(streams)
    info = EpisodeInfo(source=meta["source"], instruction=instruction, task=meta["task"], success=outcome,
                       robot=meta["robot"], dropped_steps=plan.dropped,
                       extra={"bag": path.name, "first_tick_s": round(float(plan.ticks[0]), 6),
                              "last_tick_s": round(float(plan.ticks[-1]), 6)})
    return common.Episode(data=data, info=info)
