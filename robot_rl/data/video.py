"""Export episodes as an .mp4 (one episode or a grid) or a .png of their final frames."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from robot_rl.contracts import image_key
from robot_rl.data.cache import resize_frames
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.media import write_png, write_video

_BLOCK = 64  # frames read per zarr call: one image shard


def export_video(store: EpisodeStore, episodes: Sequence[int], out: str | os.PathLike, camera: str | None = None,
                 fps: float | None = None, max_width: int = 1920) -> int:
    """Write ``episodes`` from ``camera`` to ``out`` with instruction and outcome drawn on.

    Several episodes make a grid; shorter ones hold their last frame. ``.png`` writes one image
    of every episode's final frame. Returns the number of frames written.
    """
    out = Path(out)
    if out.suffix not in (".mp4", ".png"):
        raise StoreError(f"{out} must end in .mp4 or .png.")
    key = image_key(_pick_camera(store, camera))
    if not episodes:
        raise StoreError("export-video needs at least one episode.")
    slices = [store.episode_slice(int(e)) for e in episodes]
    infos = [store.episode_info(int(e)) for e in episodes]
    height, width = store.schema[key].shape[:2]
    cols = math.ceil(math.sqrt(len(episodes)))
    scale = min(1.0, max_width / (cols * width))
    tile = (_even(height * scale), _even(width * scale))
    labels = [_labels(int(e), info) for e, info in zip(episodes, infos)]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        finals = [store.read_slice(key, s.stop - 1, s.stop) for s in slices]
        write_png(out, _grid([_tile(f[0], tile, lab) for f, lab in zip(finals, labels)], cols))
        return 1
    rate = fps or store.store_attrs.control_rate_hz
    streams = [_frames(store, key, s) for s in slices]
    length = max(s.stop - s.start for s in slices)
    return _write_mp4(out, (_grid([_tile(next(st), tile, lab) for st, lab in zip(streams, labels)], cols)
                            for _ in range(length)), rate)


def _pick_camera(store: EpisodeStore, camera: str | None) -> str:
    if not store.cameras:
        raise StoreError(f"{store.path} has no camera images to export.")
    if camera is None:
        return store.cameras[0]
    if camera not in store.cameras:
        raise StoreError(f"{store.path} has no camera {camera!r}; it has {', '.join(store.cameras)}.")
    return camera


def _even(x: float) -> int:
    return max(2, int(x) // 2 * 2)  # H.264 in yuv420p needs even sizes


def _frames(store: EpisodeStore, key: str, sl: slice) -> Iterator[np.ndarray]:
    """Frames of one episode, then its last frame forever (grid cells wait for the longest)."""
    frame = None
    for lo in range(sl.start, sl.stop, _BLOCK):
        for frame in store.read_slice(key, lo, min(lo + _BLOCK, sl.stop)):
            yield frame
    while True:
        yield frame


def _labels(index: int, info: EpisodeInfo) -> tuple[str, str]:
    outcome = "success" if info.success else "failure"
    return info.instruction or info.task or f"episode {index}", f"ep {index}: {outcome}"


def _tile(frame: np.ndarray, size: tuple[int, int], labels: tuple[str, str]) -> np.ndarray:
    import cv2

    img = resize_frames(frame[None], size)[0]
    img = np.ascontiguousarray(np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3])
    scale = max(0.35, size[1] / 800)
    top, bottom = labels
    _text(cv2, img, top, (6, int(22 * scale / 0.5)), scale, (255, 255, 255))
    color = (80, 220, 80) if bottom.endswith("success") else (230, 80, 80)
    _text(cv2, img, bottom, (6, size[0] - 8), scale, color)
    return img


def _text(cv2, img: np.ndarray, text: str, origin: tuple[int, int], scale: float, color: tuple) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    x, y = origin
    cv2.rectangle(img, (x - 3, y - h - 4), (x + w + 3, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), font, scale, color, 1, cv2.LINE_AA)


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    if len(tiles) == 1:
        return tiles[0]
    rows = math.ceil(len(tiles) / cols)
    blank = np.zeros_like(tiles[0])
    cells = tiles + [blank] * (rows * cols - len(tiles))
    return np.vstack([np.hstack(cells[r * cols:(r + 1) * cols]) for r in range(rows)])


def _write_mp4(out: Path, frames: Iterator[np.ndarray], fps: float) -> int:
    count = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal count
        for frame in frames:
            count += 1
            yield frame

    write_video(out, counted(), fps)  # a broken pipe to ffmpeg becomes one sentence (MediaError)
    return count
