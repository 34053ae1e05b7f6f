"""diffusion_policy's flat keys and ours: the default key maps both ways and the attribute names
our dp exports carry (see :mod:`robot_rl.interop.dp` for the layout)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_rl.contracts import ACTION, INFO_PREFIX, OBS_IMAGES_PREFIX, OBS_STATE, REWARD, image_key
from robot_rl.data.format import StoreError, is_image_key


ATTR = "robot_rl"                   # root attribute of our exports
RECORDS_ATTR = "robot_rl_episodes"  # meta group attribute: one episode record per episode
FORMAT = "robot_rl.dp"
VERSION = 1
DEFAULT_FPS = 10.0

DP_KEY_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-.]*$")
_IMAGE_NAME_RE = re.compile(r"^(camera_?\d+|img|image|rgb|.*_(image|img|rgb))$")
RECORD_SKIP = ("start", "end", "checksums")  # recomputed by the importing store


# -- key maps -------------------------------------------------------------------------------
def default_key_map(schema: Mapping[str, Any], cameras: list[str]) -> dict[str, str]:
    """``{our key: dp key}`` for every key of a store with ``cameras`` in that order."""
    out: dict[str, str] = {}
    for key in schema:
        if is_image_key(key):
            out[key] = f"camera_{cameras.index(key[len(OBS_IMAGES_PREFIX):])}"
        elif key == OBS_STATE:
            out[key] = "state"
        elif key in (ACTION, REWARD):
            out[key] = key
        elif key.startswith(INFO_PREFIX):
            out[key] = "info_" + key[len(INFO_PREFIX):].replace("/", "_")
        else:
            out[key] = key[len("obs/"):].replace("/", "_")
    return out


def default_our_key(dp_key: str, array: Any) -> str:
    """Our key for a foreign dp key: images (``camera_<i>``, ``img``, ``image``, ``*_image``,
    ``*_rgb``, or any uint8 (T, H, W, C) array) -> ``obs/images/<name>``; ``state`` ->
    ``obs/state``; ``action``/``reward``; ``info_<name>`` -> ``info/<name>``; else ``obs/<name>``."""
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", dp_key)
    if is_image_array(dp_key, array):
        return image_key(name)
    if dp_key == "state":
        return OBS_STATE
    if dp_key in (ACTION, REWARD):
        return dp_key
    if dp_key.startswith("info_") and len(dp_key) > 5:
        return INFO_PREFIX + name[5:]
    return f"obs/{name}"


def is_image_array(dp_key: str, array: Any) -> bool:
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    if len(shape) != 4:
        return False
    channels_last = shape[-1] in (1, 3, 4)
    if dtype == np.uint8 and channels_last:
        return True
    return bool(_IMAGE_NAME_RE.match(dp_key)) and (channels_last or shape[1] in (1, 3, 4))


def option_map(raw: Any, direction: str) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        example = "{obs/state: state}" if direction == "export" else "{state: obs/state}"
        raise StoreError(f"key_map must be a mapping like {example}, got {raw!r}.")
    return {str(k): (None if v is None or str(v) == "" else str(v)) for k, v in raw.items()}


