"""The camera node plays a video file as a camera and publishes rgb8 sensor_msgs/Image."""

from __future__ import annotations

import numpy as np
from conftest import Recorder, wait_for
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from test_launcher import make_video

from hardware.ros.camera_node import CameraNode
from hardware.ros.decoding import image_to_rgb


def test_video_file_frames_arrive_as_rgb_images(ros, tmp_path):
    video = make_video(tmp_path / "clip.avi", frames=5, size=64)
    viewer = ros.add(Node("viewer", context=ros.context))
    frames = Recorder()
    viewer.create_subscription(Image, "wrist/image_raw", frames, qos_profile_sensor_data)
    params = [Parameter("device", value=str(video)), Parameter("camera_name", value="wrist"),
              Parameter("image_size", value=32), Parameter("rate_hz", value=50.0)]
    camera = ros.add(CameraNode(context=ros.context, parameter_overrides=params))
    wait_for(lambda: len(frames) >= 12, what="frames from the camera node")  # more than the file holds: it loops
    msg = frames.messages[-1]
    assert (msg.encoding, msg.width, msg.height, msg.header.frame_id) == ("rgb8", 32, 32, "wrist")
    rgb = image_to_rgb(msg)
    bottom = rgb[-4:].reshape(-1, 3).mean(axis=0)  # the red part of every frame
    assert bottom[0] > 150 and bottom[1] < 60 and bottom[2] < 60
    assert camera.frames >= 12 and np.all(rgb[:1] > 200)
