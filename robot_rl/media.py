"""Writing what a person looks at: annotated frames, image grids, mp4 videos and PNG images (the one
video/PNG writer of the project: sim rollouts, eval videos, data exports, the reward and pipeline reports)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


def annotate(frame: np.ndarray, lines: Sequence[str], color=(255, 255, 255)) -> np.ndarray:
    """A copy of ``frame`` with text lines drawn top-left on a dark band, sized to the frame."""
    import cv2

    out = np.ascontiguousarray(frame.copy())
    scale = max(out.shape[1] / 480.0, 0.38)
    height = int(22 * scale) + 4
    out[: height * len(lines) + 4] = (out[: height * len(lines) + 4] * 0.45).astype(out.dtype)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (4, height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color,
                    1, cv2.LINE_AA)
    return out


def grid(images: Sequence[Sequence[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Rows of equally sized HWC uint8 images tiled into one image with a thin border."""
    rows = []
    for row in images:
        padded = [np.pad(im, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for im in row]
        rows.append(np.concatenate(padded, axis=1))
    return np.concatenate(rows, axis=0)


class MediaError(ValueError):
    """A video or image could not be written; the message names the file and why."""


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """An H.264 mp4 of uint8 HWC frames (sizes padded to even numbers for the codec)."""
    import imageio.v2 as imageio

    path = _writable(Path(path))
    try:
        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=2, quality=7,
                                ffmpeg_log_level="error") as writer:
            for frame in frames:
                h, w = frame.shape[:2]
                writer.append_data(np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0))))
    except (OSError, RuntimeError) as error:  # ffmpeg exited early: the pipe to it broke
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MediaError(f"could not write the video {path}: ffmpeg stopped ({first}); expected a writable "
                         "path ending in .mp4.") from None
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    """A PNG of an RGB (or grey) uint8 image, written to a hidden file first and renamed into place,
    so a reader never sees half an image."""
    import imageio.v2 as imageio

    path = _writable(Path(path))
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        imageio.imwrite(tmp, image, format="png")
        tmp.replace(path)
    except (OSError, ValueError, RuntimeError) as error:
        tmp.unlink(missing_ok=True)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MediaError(f"could not write the image {path} ({first}); expected a writable path ending in "
                         ".png.") from None
    return path


def _writable(path: Path) -> Path:
    """``path`` once its folder exists and may be written (MediaError naming it otherwise), so
    ffmpeg is never started on a file it cannot open."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MediaError(f"could not create the folder of {path} ({(error.strerror or str(error)).lower()}); "
                         "expected a writable location.") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise MediaError(f"cannot write {path}; expected a writable file path.")
    return path
