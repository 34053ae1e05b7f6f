"""The writer's malloc thresholds: applied once on glibc, never over the user's own tuning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from robot_rl.data.memory import _user_tuned

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")


@pytest.mark.parametrize("environ, tuned", [
    ({}, False),
    ({"PATH": "/usr/bin", "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=512"}, False),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, True),
    ({"MALLOC_ARENA_MAX": "2"}, True),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, True),
    ({"LD_PRELOAD": "/opt/libfakeclock.so"}, False),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
    ({"ROBOT_RL_MALLOC": "default"}, True),
])
def test_the_users_own_malloc_settings_win(environ, tuned):
    assert _user_tuned(environ) is tuned


def _in_fresh_process(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("ROBOT_RL_MALLOC", "LD_PRELOAD", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, check=True, capture_output=True,
                          text=True).stdout.strip()


@glibc
def test_an_image_writer_sets_the_thresholds_once_and_a_state_writer_does_not(tmp_path):
    code = f"""
from robot_rl.data import memory
from robot_rl.data.writer import EpisodeWriter
attrs = {{"control_rate_hz": 10.0, "robot": "t", "action_space": "ee_delta"}}
with EpisodeWriter({str(tmp_path / 'state.zarr')!r}, {{"obs/state": ((3,), "float32")}}, attrs):
    print(memory._done)
with EpisodeWriter({str(tmp_path / 'img.zarr')!r}, {{"obs/images/front": ((8, 8, 3), "uint8")}}, attrs):
    print(memory._done, memory.keep_freed_frames())
"""
    assert _in_fresh_process(code).split() == ["False", "True", "True"]
    code = "from robot_rl.data import memory; print(memory.keep_freed_frames())"
    assert _in_fresh_process(code, ROBOT_RL_MALLOC="default") == "False"
