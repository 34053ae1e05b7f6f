"""Stores read over HTTP through fsspec: the data commands, the loaders and one tiny training run,
against a real HTTP server on 127.0.0.1 that answers Range requests (206) as nginx and S3 do;
and every bad remote input refused with one sentence, quickly."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_rl.algos.networks import ObsSpec
from robot_rl.cli.main import main
from robot_rl.contracts import REWARD, image_key
from robot_rl.data.cache import MemoryCache
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore
from robot_rl.train.demos import load_store

LENGTHS = (7, 12, 5, 9)  # with 8-step shards, episodes straddle shard boundaries
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class RangeHandler(_Quiet):
    """Python's file server plus single byte ranges (``bytes=a-b``, ``a-``, ``-n``) answered 206."""

    def send_head(self):
        path = self.translate_path(self.path)
        match = _RANGE.match(self.headers.get("Range", "").strip())
        if not os.path.isfile(path) or not match or match.groups() == ("", ""):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        start, end = (max(size - int(last), 0), size - 1) if first == "" else (int(first), min(int(last or size - 1),
                                                                                                 size - 1))
        if start > end:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return BytesIO(body)


def _serve(folder: Path, handler=RangeHandler) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, store_writer) -> Iterator[tuple[Path, str]]:
    """(folder, its URL): a toy store ``s.zarr`` (8-step shards), a copy with a chunk file deleted, a
    Zarr group that is no episode store, a Zarr v2 group and a folder whose zarr.json is garbage."""
    root = tmp_path_factory.mktemp("served")
    store_writer(root / "s.zarr", LENGTHS)
    shutil.copytree(root / "s.zarr", root / "holed.zarr")
    (root / "holed.zarr" / "data" / "obs" / "images" / "front" / "c" / "1" / "0" / "0" / "0").unlink()
    (root / "plain.zarr").mkdir()
    (root / "plain.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    (root / "v2.zarr").mkdir()
    (root / "v2.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    (root / "junk.zarr").mkdir()
    (root / "junk.zarr" / "zarr.json").write_text("<html>not found</html>")
    yield from ((root, url) for url in _serve(root))


def _one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(".") and "Traceback" not in err, err
    return lines[0]


def test_remote_rows_match_the_local_store(served):
    root, url = served
    with EpisodeStore.open(root / "s.zarr") as local, EpisodeStore.open(f"{url}/s.zarr") as remote:
        assert remote.path == f"{url}/s.zarr" and remote.mode == "r"
        assert remote.num_episodes == len(LENGTHS) and remote.schema == local.schema
        assert remote.episode_infos() == local.episode_infos()
        for index in range(len(LENGTHS)):
            a, b = local.read_episode(index), remote.read_episode(index, verify=True)
            assert all(np.array_equal(a[k], b[k]) for k in a)
        frames = [3, 30, 8, 7, 31, 0]  # scattered frames across shards: byte-range reads of inner chunks
        key = image_key("front")
        assert np.array_equal(remote.read(key, frames), local.read(key, frames))
        assert remote.validate(deep=True) == []
        cached = MemoryCache(remote, episodes=[3, 1], image_size=(12, 16))  # the RAM cache training reads
        expected = MemoryCache(local, episodes=[3, 1], image_size=(12, 16))
        assert all(np.array_equal(cached.arrays[k], expected.arrays[k]) for k in expected.arrays)


def test_load_store_fills_the_same_replay_buffer_from_http(served):
    root, url = served
    specs = {"obs/state": ObsSpec((4,), "float32"), image_key("front"): ObsSpec((24, 32, 3), "uint8")}

    def reward(episode, instruction):
        return episode[REWARD]

    local = load_store(root / "s.zarr", specs, 2, reward)
    remote = load_store(f"{url}/s.zarr", specs, 2, reward)
    assert len(remote) == sum(n - 1 for n in LENGTHS)
    assert all(np.array_equal(local.arrays[k], remote.arrays[k]) for k in local.arrays)


def test_data_commands_read_a_remote_store(served, capsys):
    _, url = served
    assert main(["data", "info", f"{url}/s.zarr"]) == 0
    out = capsys.readouterr().out
    assert f"store        {url}/s.zarr" in out and "episodes     4 (33 steps" in out
    assert main(["data", "stats", f"{url}/s.zarr", "json=true"]) == 0
    assert '"episodes": 4' in capsys.readouterr().out.replace("\n", "")
    assert main(["data", "validate", f"{url}/s.zarr", "--deep"]) == 0
    assert capsys.readouterr().out.strip() == f"ok: {url}/s.zarr has 4 episodes, 33 steps."
    assert "size         remote" in out


def test_a_remote_store_exports_and_views_as_a_local_one(served, capsys, tmp_path, monkeypatch):
    root, url = served
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for where, name in ((f"{url}/s.zarr", "remote"), (str(root / "s.zarr"), "local")):
        assert main(["data", "export", where, "format=dp", f"out={tmp_path / name}_dp.zarr"]) == 0
        assert main(["data", "import", f"{tmp_path / name}_dp.zarr", "format=dp", f"out={tmp_path / name}.zarr"]) == 0
        assert main(["data", "view", where, "episode=2", f"out={tmp_path / name}.rrd"]) == 0
    with EpisodeStore.open(tmp_path / "remote.zarr") as a, EpisodeStore.open(tmp_path / "local.zarr") as b:
        assert a.episode_infos() == b.episode_infos()
        assert all(np.array_equal(a.read_slice(k, 0, a.num_steps), b.read_slice(k, 0, b.num_steps)) for k in a.schema)
    assert (tmp_path / "remote.rrd").stat().st_size > 0


def test_a_chunk_missing_on_the_server_is_an_error_never_zeros(served, capsys):
    _, url = served
    with EpisodeStore.open(f"{url}/holed.zarr") as store:  # a server cannot be listed: found on reading
        store.read_slice("obs/state", 0, 33)
        with pytest.raises(StoreError, match=r"steps 8\.\.16 because a chunk file is missing on the server"):
            store.read_slice(image_key("front"), 8, 16)
    assert main(["data", "validate", f"{url}/holed.zarr", "--deep"]) == 1
    assert "data/obs/images/front cannot be decoded" in capsys.readouterr().out


@pytest.mark.parametrize("name, expected", [
    ("missing.zarr", r"is not a Zarr v3 store \(there is no .*/missing.zarr/zarr.json\); check the URL\."),
    ("plain.zarr", r"has no format attribute, so it is not a robot_rl.episodes store\."),
    ("v2.zarr", r"is a Zarr v2 store; robot_rl reads Zarr v3 episode stores only\."),
    ("junk.zarr", r"is not a Zarr v3 store \(its zarr.json is not JSON\)"),
])
def test_what_is_not_a_store_gets_one_sentence(served, capsys, name, expected):
    _, url = served
    started = time.monotonic()
    assert main(["data", "info", f"{url}/{name}"]) == 2
    assert re.search(expected, _one_sentence(capsys.readouterr().err))
    assert time.monotonic() - started < 5


def test_unreachable_server_fails_fast_in_one_sentence(capsys):
    with socket.socket() as probe:  # a free loopback port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    assert main(["data", "info", f"http://127.0.0.1:{port}/s.zarr"]) == 2
    line = _one_sentence(capsys.readouterr().err)
    assert f"cannot connect to 127.0.0.1:{port} (connection refused)" in line
    assert time.monotonic() - started < 5


def test_a_stalled_server_times_out(monkeypatch, capsys):
    monkeypatch.setenv("ROBOT_RL_REMOTE_TIMEOUT_S", "1")
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        started = time.monotonic()
        assert main(["data", "info", f"http://127.0.0.1:{silent.getsockname()[1]}/s.zarr"]) == 2
        elapsed = time.monotonic() - started
    assert "the server did not answer within 1 s" in _one_sentence(capsys.readouterr().err)
    assert elapsed < 10


class _Forbidden(_Quiet):
    def send_head(self):
        self.send_error(HTTPStatus.FORBIDDEN)


def test_access_denied_is_one_sentence(served, capsys):
    root, _ = served
    for url in _serve(root, _Forbidden):
        assert main(["data", "info", f"{url}/s.zarr"]) == 2
    assert _one_sentence(capsys.readouterr().err).endswith("cannot be read: the server answered HTTP 403 Forbidden.")


def test_a_server_without_range_requests_is_refused(served, capsys):
    root, _ = served
    for url in _serve(root, _Quiet):  # python -m http.server: answers a Range request with the whole file
        assert main(["data", "info", f"{url}/s.zarr"]) == 2
    assert "ignores HTTP Range requests" in _one_sentence(capsys.readouterr().err)


def test_writing_to_a_remote_store_is_refused(served, capsys, tmp_path, monkeypatch):
    root, url = served
    monkeypatch.chdir(tmp_path)  # nothing may appear here: a URL must never become a local folder
    for argv, expected in [
        (["data", "drop", f"{url}/s.zarr", "episodes=[0]"], "remote stores open read-only"),
        (["data", "repair", f"{url}/s.zarr"], "remote stores open read-only"),
        (["data", "merge", f"{url}/new.zarr", str(root / "s.zarr")], "stores are only written to a local disk"),
        (["data", "split", f"{url}/s.zarr", "val_fraction=0.5"], "stores are only written to a local disk"),
    ]:
        assert main(argv) == 2, argv
        assert expected in _one_sentence(capsys.readouterr().err), argv
    with pytest.raises(StoreError, match="remote stores open read-only"):
        EpisodeStore.open(f"{url}/s.zarr", mode="a")
    assert not list(tmp_path.iterdir())
    assert not (root / "new.zarr").exists()


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_a_missing_protocol_package_is_named(capsys):
    assert main(["data", "info", "gs://bucket/demos.zarr"]) == 2
    assert _one_sentence(capsys.readouterr().err) == (
        "robot-rl data info: reading gs:// stores needs the Python package gcsfs, which is not installed; "
        "install it with `pip install gcsfs`.")


def test_unknown_protocol_is_one_sentence(capsys):
    assert main(["data", "info", "nosuchproto://bucket/demos.zarr"]) == 2
    assert "not a storage protocol fsspec knows" in _one_sentence(capsys.readouterr().err)


def test_offline_bc_trains_from_an_http_store(tmp_path):
    """`robot-rl train algo=bc data=http://...`: a recorded reach store served over HTTP, end to end."""
    folder = tmp_path / "www"
    assert main(["record", "task=reach", "device=scripted", "episodes=2", f"out={folder / 'reach.zarr'}",
                 "env.cameras=[front]", "env.image_size=32", "seed=3"]) == 0
    run = tmp_path / "run"
    for url in _serve(folder):
        assert main(["train", "task=reach", "algo=bc", f"data={url}/reach.zarr", f"run={run}", "logger=csv",
                     "train.total_updates=5", "algo.batch_size=16", "train.eval_every=0", "train.eval_episodes=1",
                     "train.video_episodes=0", "train.checkpoint_every=0", "train.log_every=5",
                     "logger.progress_bar=false", "env.image_size=32", "algo.agent.hidden_dim=32"]) == 0
    assert (run / "report.json").exists() and (run / "policy" / "policy.onnx").exists()
    with open(run / "metrics" / "train.csv", newline="") as f:
        assert list(csv.DictReader(f))[-1]["updates"] == "5"
    assert yaml.safe_load((run / "config.yaml").read_text())["data"] == f"{url}/reach.zarr"
