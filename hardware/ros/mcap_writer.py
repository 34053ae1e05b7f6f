"""One rosbag2 (MCAP storage) per recorded episode, written from a thread of its own.

The recorder node hands every message it receives during an episode to ``EpisodeBags.add``,
which only puts it on a bounded queue: the executor thread never serialises, compresses or
touches the disk, so the control path is not slowed. The writer thread serialises each message
to CDR (``rclpy.serialization``), writes it with ``rosbags``' rosbag2 Writer (MCAP storage,
format version 9, message definitions of ROS 2 Jazzy) and finalises the bag when the episode
ends: a kept episode becomes ``<folder>/episode_<index>/`` (metadata.yaml + .mcap, what ``ros2
bag play`` and Foxglove open), a discarded one is removed. While an episode is recorded its bag
lives in the hidden ``.recording/`` folder; one left there by a crash is not a
finished bag. A full queue drops the message (counted, and logged by the node), never blocks.
"""

from __future__ import annotations

import queue
import shutil
import threading
from pathlib import Path

EPISODE_PREFIX = "episode_"


def msgtype_of(msg) -> str:
    """``sensor_msgs/msg/Image`` for an rclpy ``sensor_msgs.msg.Image`` instance."""
    cls = type(msg)
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def kept_episodes(folder: Path) -> int:
    """How many finished episode bags ``folder`` holds."""
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.name.startswith(EPISODE_PREFIX) and (p / "metadata.yaml").is_file())


class EpisodeBags:
    """Episode bags under ``folder``: ``start(index)``, ``add(topic, msg, time_ns)``, ``finish(keep)``, ``close()``."""

    def __init__(self, folder: str | Path, max_queue: int = 4096) -> None:
        from rosbags.typesys import Stores, get_typestore  # without rosbags: fail at startup, not mid-episode

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.typestore = get_typestore(Stores.ROS2_JAZZY)
        self.dropped = 0
        self.error: str = ""
        self.finished: list[Path] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._recording = False
        self._thread = threading.Thread(target=self._run, name="mcap-writer", daemon=True)
        self._thread.start()

    @property
    def recording(self) -> bool:
        return self._recording

    def start(self, index: int) -> None:
        self._recording = True
        self._queue.put(("start", index, None, 0))

    def add(self, topic: str, msg, time_ns: int) -> None:
        """Queue one message of the open episode (none open: ignored; queue full: dropped)."""
        if not self._recording:
            return
        try:
            self._queue.put_nowait(("msg", topic, msg, time_ns))
        except queue.Full:
            self.dropped += 1

    def finish(self, keep: bool, index: int | None = None) -> None:
        """End the open episode: finalise its bag as ``episode_<index>`` (keep) or remove it."""
        if self._recording:
            self._recording = False
            self._queue.put(("end", index, keep, 0))

    def close(self, timeout_s: float = 30.0) -> None:
        """Discard an open episode, write what is queued, finalise and stop."""
        self.finish(keep=False)
        self._queue.put(("close", None, None, 0))
        self._thread.join(timeout=timeout_s)

    # --- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        from rclpy.serialization import serialize_message
        from rosbags.rosbag2 import StoragePlugin, Writer

        writer, path, index, connections = None, None, 0, {}
        while True:
            kind, a, b, time_ns = self._queue.get()
            try:
                if kind == "start":
                    index, connections = a, {}
                    path = self.folder / ".recording" / f"{EPISODE_PREFIX}{index:06d}"
                    shutil.rmtree(path, ignore_errors=True)
                    path.parent.mkdir(exist_ok=True)
                    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
                    writer.open()
                elif kind == "msg" and writer is not None:
                    msgtype = msgtype_of(b)
                    if a not in connections:
                        connections[a] = writer.add_connection(a, msgtype, typestore=self.typestore)
                    writer.write(connections[a], time_ns, serialize_message(b))
                elif kind in ("end", "close") and writer is not None:
                    writer.close()
                    writer = None
                    if kind == "end" and b:
                        self.finished.append(self._publish(path, index if a is None else a))
                    else:
                        shutil.rmtree(path, ignore_errors=True)
            except Exception as exc:  # noqa: BLE001 - keep the node alive; the episode's bag is lost
                self.error = f"episode bag {path}: {type(exc).__name__}: {exc}"
                if writer is not None:
                    writer.abort()
                    writer = None
                if path is not None:
                    shutil.rmtree(path, ignore_errors=True)
            if kind == "close":
                return

    def _publish(self, path: Path, index: int) -> Path:
        target = self.folder / f"{EPISODE_PREFIX}{index:06d}"
        suffix = 1
        while target.exists():  # never overwrite a bag that is there
            target = self.folder / f"{EPISODE_PREFIX}{index:06d}_{suffix}"
            suffix += 1
        path.rename(target)
        return target
