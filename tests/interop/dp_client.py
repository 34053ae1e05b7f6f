"""diffusion_policy's side of the dp tests; runs under zarr 2.x in its own virtual environment.

diffusion_policy is not on PyPI, so this script makes the zarr 2 calls its
``ReplayBuffer`` makes (``diffusion_policy/common/replay_buffer.py``), written afresh here:

    python dp_client.py read STORE        open STORE the three ways ReplayBuffer does and print
                                          what it read as JSON (episode ends, per key shape,
                                          dtype, chunks, compressor and a CRC-32 of its bytes)
    python dp_client.py write STORE KIND  write a store the way ReplayBuffer.create_empty_zarr +
                                          add_episode do; KIND is pusht (float 0..255 img, state,
                                          action, keypoint, n_contacts) or real (uint8 camera_0/1,
                                          robot_eef_pose, action, timestamp at 10 Hz, stage);
                                          prints the same JSON for what it wrote

Exits non-zero with the reason when a check fails.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zlib

import numcodecs
import numpy as np
import zarr

LENGTHS = (5, 9, 7)


def crc(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values).tobytes())


def describe(arrays: dict, ends: np.ndarray, source: dict) -> dict:
    return {
        "zarr": zarr.__version__,
        "episode_ends": [int(e) for e in ends],
        "keys": {
            key: {"shape": list(value.shape), "dtype": np.dtype(value.dtype).str,
                  "chunks": list(source[key].chunks),
                  "compressor": None if source[key].compressor is None else source[key].compressor.codec_id,
                  "crc": crc(value)}
            for key, value in sorted(arrays.items())
        },
    }


def check(condition: bool, why: str) -> None:
    if not condition:
        sys.exit(f"dp_client: {why}")


def check_buffer(root) -> None:
    """What ReplayBuffer's constructor asserts of any root it is given."""
    check("data" in root and "meta" in root, "no data or meta group")
    check("episode_ends" in root["meta"], "no meta/episode_ends")
    end = root["meta"]["episode_ends"][-1]
    for key, value in root["data"].items():
        check(value[:end].shape[0] == end, f"data/{key} is shorter than the last episode end {end}")


def read(path: str) -> dict:
    # 1. copy_from_path(path): zarr.open read-only, then zarr.group over its store; load to numpy
    group = zarr.open(os.path.expanduser(path), "r")
    check(isinstance(group, zarr.hierarchy.Group), f"zarr.open({path!r}) gave {type(group).__name__}, not a Group")
    src_root = zarr.group(group.store)
    meta = {}
    for key, value in src_root["meta"].items():
        meta[key] = np.array(value) if len(value.shape) == 0 else value[:]
    data = {key: src_root["data"][key][:] for key in src_root["data"].keys()}
    check_buffer({"meta": meta, "data": data})
    ends = meta["episode_ends"]
    check(ends.dtype == np.int64, f"meta/episode_ends is {ends.dtype}, expected int64")

    # 2. copy_from_path(path, store=zarr.MemoryStore()): copy meta and unchanged arrays store to
    #    store, recompress the image arrays to one frame per chunk (as real-robot loaders ask)
    mem = zarr.MemoryStore()
    root = zarr.group(store=mem)
    zarr.copy_store(source=group.store, dest=mem, source_path="/meta", dest_path="/meta", if_exists="replace")
    data_group = root.create_group("data", overwrite=True)
    for key in src_root["data"].keys():
        value = src_root["data"][key]
        if value.ndim == 4:
            zarr.copy(source=value, dest=data_group, name=key, chunks=(1, *value.shape[1:]),
                      compressor=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE),
                      if_exists="replace")
        else:
            zarr.copy_store(source=group.store, dest=mem, source_path="/data/" + key,
                            dest_path="/data/" + key, if_exists="replace")
    check_buffer(root)
    for key, value in root["data"].items():
        check(crc(value[:]) == crc(data[key]), f"data/{key} differs after the in-memory copy")
    check(np.array_equal(root["meta"]["episode_ends"][:], ends), "episode_ends differ after the copy")

    # 3. create_from_path(path): read straight from disk, episode by episode
    disk = zarr.open(os.path.expanduser(path), "r")
    check("data" in disk, "create_from_path would create a new buffer: no data group")
    check_buffer(disk)
    for key, value in disk["data"].items():
        running, start = 0, 0
        for end in disk["meta"]["episode_ends"][:]:
            running = zlib.crc32(np.ascontiguousarray(value[start:end]).tobytes(), running)
            start = end
        check(running == crc(data[key]), f"data/{key} read episode by episode differs")

    out = describe(data, ends, src_root["data"])
    out["root_attrs"] = sorted(dict(group.attrs))
    out["meta_attrs"] = sorted(dict(group["meta"].attrs))
    return out


def episodes(kind: str):
    rng = np.random.default_rng(7)
    for e, n in enumerate(LENGTHS):
        t = np.arange(n)
        if kind == "pusht":
            img = ((np.arange(32)[None, :, None] * 4 + 10 * e + 3 * t[:, None, None, None]) % 256)
            yield {"img": np.broadcast_to(img, (n, 32, 32, 3)).astype(np.float32),
                   "state": np.stack([np.full(n, e), t, *rng.normal(size=(3, n))], 1).astype(np.float32),
                   "action": np.stack([np.full(n, e), t], 1).astype(np.float32),
                   "keypoint": rng.normal(size=(n, 9, 2)).astype(np.float32),
                   "n_contacts": (t % 3).astype(np.float32)[:, None]}
        else:
            frame = (np.arange(32)[None, :, None] * 5 + 20 * e + 7 * t[:, None, None, None]) % 256
            yield {"camera_0": np.broadcast_to(frame, (n, 24, 32, 3)).astype(np.uint8),
                   "camera_1": np.broadcast_to(255 - frame, (n, 24, 32, 3)).astype(np.uint8),
                   "robot_eef_pose": rng.normal(size=(n, 6)),
                   "action": np.concatenate([np.stack([np.full(n, e), t], 1), rng.normal(size=(n, 4))], 1),
                   "timestamp": 1700000000.0 + 100 * e + t * 0.1,
                   "stage": (t > n // 2).astype(np.int64)}


def chunks_for(value: np.ndarray) -> tuple:
    row = value[0].nbytes or 1
    return (max(1, min(100, int(math.ceil(2e6 / row)))), *value.shape[1:])


def write(path: str, kind: str) -> dict:
    # create_empty_zarr(storage=DirectoryStore(path))
    root = zarr.group(store=zarr.DirectoryStore(os.path.expanduser(path)))
    data = root.require_group("data", overwrite=False)
    meta = root.require_group("meta", overwrite=False)
    if "episode_ends" not in meta:
        meta.zeros("episode_ends", shape=(0,), dtype=np.int64, compressor=None, overwrite=False)
    for episode in episodes(kind):  # add_episode(episode)
        ends = meta["episode_ends"]
        current = int(ends[-1]) if ends.shape[0] else 0
        length = len(next(iter(episode.values())))
        for key, value in episode.items():
            shape = (current + length, *value.shape[1:])
            if key not in data:
                arr = data.zeros(name=key, shape=shape, chunks=chunks_for(value), dtype=value.dtype,
                                 compressor=numcodecs.Blosc(cname="lz4", clevel=5,
                                                            shuffle=numcodecs.Blosc.NOSHUFFLE))
            else:
                arr = data[key]
                arr.resize(shape)
            arr[-length:] = value
        ends.resize(ends.shape[0] + 1)
        ends[-1] = current + length
        if ends.chunks[0] < ends.shape[0]:  # grow the ends' chunk as ReplayBuffer does (rechunk)
            meta.move("episode_ends", "_temp")
            zarr.copy(source=meta["_temp"], dest=meta, name="episode_ends",
                      chunks=(int(ends.shape[0] * 1.5),), compressor=meta["_temp"].compressor)
            del meta["_temp"]
    return describe({k: v[:] for k, v in data.items()}, meta["episode_ends"][:], dict(data.items()))


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "read":
        result = read(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "write" and sys.argv[3] in ("pusht", "real"):
        result = write(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
