"""The camera node: OpenCV capture -> sensor_msgs/Image (rgb8) on ``<camera_name>/image_raw``.

``device`` is a camera index ("0"), a device path (/dev/video2), a video file or a stream URL;
a video file plays at ``rate_hz`` and loops (``loop``), which is how it is tested without a
camera. ``image_size`` > 0 center-crops to a square and resizes, the layout policies and the
episode store use; 0 publishes frames as captured.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from hardware.ros.conversions import rgb_to_image
from hardware.ros.params import declare_config
from hardware.ros.runner import loop_guard, run_node
from hardware.control.timing import RateLoop


@dataclass(frozen=True)
class CameraConfig:
    device: str = "0"
    camera_name: str = "front"
    rate_hz: float = 30.0
    image_size: int = 0
    loop: bool = True
    frame_id: str = ""


def square(frame: np.ndarray, size: int) -> np.ndarray:
    """Center-crop to a square, then resize to ``size`` x ``size`` (area interpolation)."""
    return fit(frame, size, size)


def fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """``frame`` as ``height`` x ``width``: center-cropped to that aspect ratio, then resized
    (area interpolation), so a 640x480 driver image reaches an 84x84 policy undistorted."""
    import cv2

    frame_h, frame_w = frame.shape[:2]
    if (frame_h, frame_w) == (height, width):
        return frame
    crop_h, crop_w = min(frame_h, frame_w * height // width), min(frame_w, frame_h * width // height)
    top, left = (frame_h - crop_h) // 2, (frame_w - crop_w) // 2
    return cv2.resize(frame[top:top + crop_h, left:left + crop_w], (width, height), interpolation=cv2.INTER_AREA)


class CameraNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("camera", **node_kwargs)
        import cv2

        self._cv2 = cv2
        cfg = self.config = declare_config(self, CameraConfig)
        source = int(cfg.device) if str(cfg.device).isdigit() else str(cfg.device)
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise ValueError(f"camera device {cfg.device!r} could not be opened by OpenCV.")
        self._publisher = self.create_publisher(Image, f"{cfg.camera_name}/image_raw", qos_profile_sensor_data)
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=loop_guard, args=(self, self._loop), name="camera", daemon=True)
        self._thread.start()
        self.get_logger().info(f"camera {cfg.camera_name!r} from {cfg.device!r} at {cfg.rate_hz:g} Hz")

    def _loop(self) -> None:
        loop = RateLoop(self.config.rate_hz, spin_s=0.0)
        while not self._stop.is_set():
            loop.wait()
            ok, frame = self.capture.read()
            if not ok and self.config.loop:
                self.capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self.capture.read()
            if not ok:
                self.get_logger().error("camera returned no frame", throttle_duration_sec=2.0)
                continue
            rgb = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)
            if self.config.image_size > 0:
                rgb = square(rgb, self.config.image_size)
            stamp = self.get_clock().now().to_msg()
            self._publisher.publish(rgb_to_image(rgb, stamp, self.config.frame_id or self.config.camera_name))
            self.frames += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.capture.release()


def main(argv: list[str] | None = None) -> int:
    return run_node(CameraNode, "camera", argv)


if __name__ == "__main__":
    raise SystemExit(main())
