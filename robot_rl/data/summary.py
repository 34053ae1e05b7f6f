"""Plain-text summaries of a store for ``robot-rl data info`` and ``stats``."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from robot_rl.data.format import is_image_key
from robot_rl.data.local import is_remote
from robot_rl.data.store import EpisodeStore


def describe(store: EpisodeStore) -> str:
    """Format, attributes, episode counts, per-key layout and size on disk."""
    attrs, infos = store.store_attrs, store.episode_infos()
    duration_min = store.num_steps / attrs.control_rate_hz / 60
    remote = is_remote(store.path)
    size, files = (0, 0) if remote else _disk_usage(store.path)
    lines = [
        f"store        {store.path}",
        f"format       {store.attrs['format']} v{store.attrs['format_version']}",
        f"robot        {attrs.robot}   action space {attrs.action_space}   "
        f"control rate {attrs.control_rate_hz:g} Hz",
        f"episodes     {store.num_episodes} ({store.num_steps} steps, {duration_min:.1f} min)",
    ]
    if infos:
        success = sum(i.success for i in infos) / len(infos)
        sources = ", ".join(f"{s} {n}" for s, n in Counter(i.source for i in infos).most_common())
        lines.append(f"success      {success:.1%}   sources: {sources}")
    lines += [f"cameras      {', '.join(store.cameras) or '-'}",
              "size         remote (not listed)" if remote else
              f"size         {size / 1e6:.1f} MB on disk in {files} files", "keys"]
    width = max(len(k) for k in store.schema)
    for key, spec in store.schema.items():
        lines.append(f"  {key.ljust(width)}  {spec.dtype.name:8s} {str(spec.shape):15s} {_layout(store, key)}")
    return "\n".join(lines)


def _layout(store: EpisodeStore, key: str) -> str:
    try:
        array = store.array(key)
    except Exception:  # noqa: BLE001 - a missing array is reported by validate; show it here too
        return "MISSING"
    codecs = ", ".join(_codec_name(c) for c in array.compressors) or "raw"
    if is_image_key(key) and array.shards is not None:
        return f"shards of {array.shards[0]} steps, chunks of {array.chunks[0]}, {codecs}"
    return f"chunks of {array.chunks[0]} steps, {codecs}"


def _codec_name(codec: Any) -> str:
    cname = getattr(codec, "cname", None)
    if cname is not None:
        return f"blosc-{getattr(cname, 'value', cname)}-{codec.clevel}"
    config = codec.to_dict() if hasattr(codec, "to_dict") else {}
    if config.get("name") == "zstd":
        return f"zstd-{config['configuration']['level']}"
    return type(codec).__name__


def _disk_usage(path: str) -> tuple[int, int]:
    size = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            size += os.path.getsize(os.path.join(folder, name))
            files += 1
    return size, files


def format_stats(result: dict[str, Any]) -> str:
    """Human-readable form of :func:`robot_rl.data.tools.stats`."""
    lines = [f"episodes     {result['episodes']} ({result['steps']} steps)"]
    if result["length"]:
        lines.append("length       min {min:.0f}  mean {mean:.1f}  max {max:.0f}".format(**result["length"]))
    if result["success_rate"] is not None:
        lines.append(f"success      {result['success_rate']:.1%}")
    lines.append("sources      " + (", ".join(f"{k} {v}" for k, v in result["sources"].items()) or "-"))
    if result.get("return"):
        lines.append("return       min {min:.3f}  mean {mean:.3f}  max {max:.3f}".format(**result["return"]))
    for key, moments in result["keys"].items():
        if moments:
            lines.append(f"{key}")
            lines += [f"  {name:5s} {_fmt(values)}" for name, values in moments.items()]
    return "\n".join(lines)


def _fmt(values: list[float], limit: int = 8) -> str:
    shown = " ".join(f"{v:+.3f}" for v in values[:limit])
    return shown + (f" ... ({len(values)} values)" if len(values) > limit else "")
