"""Stores read from S3-compatible object storage (``s3://``) through s3fs, against moto's S3 server on
127.0.0.1: configured only through the AWS environment variables, as a user points robot_rl at MinIO.
The rows match the local store; every bad remote input is refused with one sentence, quickly."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from robot_rl.cli.main import main
from robot_rl.contracts import image_key
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore

s3fs = pytest.importorskip("s3fs")
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
moto_settings = pytest.importorskip("moto.settings")

LENGTHS = (7, 12, 5, 9)  # with 8-step shards, episodes straddle shard boundaries
BUCKET = "demos"
KEY, SECRET = "robot-rl-test-key", "robot-rl-test-secret"


def _upload(client, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, store_writer) -> Iterator[tuple[Path, str]]:
    """(local store, endpoint URL): moto's S3 server on 127.0.0.1 with bucket ``demos`` holding the toy
    store ``s.zarr`` and ``holed.zarr``, a copy without one image chunk."""
    root = tmp_path_factory.mktemp("s3")
    store_writer(root / "s.zarr", LENGTHS)
    shutil.copytree(root / "s.zarr", root / "holed.zarr")
    (root / "holed.zarr" / "data" / "obs" / "images" / "front" / "c" / "1" / "0" / "0" / "0").unlink()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                              region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        _upload(client, root / "s.zarr", "s.zarr")
        _upload(client, root / "holed.zarr", "holed.zarr")
        yield root / "s.zarr", endpoint
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path) -> Iterator[Path]:
    """The environment a user sets for MinIO (endpoint, keys, region), nothing from ~/.aws; yields the
    local store. s3fs caches one filesystem per set of options, so each test starts with none."""
    local, endpoint = s3_server
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s3fs.S3FileSystem.clear_instance_cache()
    yield local
    s3fs.S3FileSystem.clear_instance_cache()


def _one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(".") and "Traceback" not in err, err
    return lines[0]


def test_s3_rows_match_the_local_store(s3_env):
    url = f"s3://{BUCKET}/s.zarr"
    with EpisodeStore.open(s3_env) as local, EpisodeStore.open(url) as remote:
        assert remote.path == url and remote.mode == "r"
        assert remote.num_episodes == len(LENGTHS) and remote.schema == local.schema
        assert remote.episode_infos() == local.episode_infos()
        for index in range(len(LENGTHS)):
            a, b = local.read_episode(index), remote.read_episode(index, verify=True)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        frames = [3, 30, 8, 7, 31, 0]  # scattered frames across shards: byte-range reads of inner chunks
        key = image_key("front")
        assert np.array_equal(remote.read(key, frames), local.read(key, frames))
        assert remote.validate(deep=True) == []
    with pytest.raises(StoreError, match="remote stores open read-only"):
        EpisodeStore.open(url, mode="a")


def test_data_commands_read_an_s3_store(s3_env, capsys):
    url = f"s3://{BUCKET}/s.zarr"
    assert main(["data", "info", url]) == 0
    out = capsys.readouterr().out
    assert f"store        {url}" in out and "episodes     4 (33 steps" in out
    assert main(["data", "validate", url, "--deep"]) == 0
    assert capsys.readouterr().out.strip() == f"ok: {url} has 4 episodes, 33 steps."


def test_an_object_missing_in_the_bucket_is_an_error_never_zeros(s3_env, capsys):
    url = f"s3://{BUCKET}/holed.zarr"
    with EpisodeStore.open(url) as store:
        store.read_slice("obs/state", 0, 33)
        with pytest.raises(StoreError, match=r"steps 8\.\.16 because a chunk file is missing on the server"):
            store.read_slice(image_key("front"), 8, 16)
    assert main(["data", "validate", url, "--deep"]) == 1
    assert "data/obs/images/front cannot be decoded" in capsys.readouterr().out


@pytest.mark.parametrize("url, expected", [
    (f"s3://{BUCKET}/missing.zarr",
     f"s3://{BUCKET}/missing.zarr is not a Zarr v3 store (there is no s3://{BUCKET}/missing.zarr/zarr.json); "
     "check the URL."),
    ("s3://no-such-bucket/s.zarr",
     "s3://no-such-bucket/s.zarr cannot be read: the bucket no-such-bucket does not exist (or these credentials "
     "cannot see it); check the URL."),
])
def test_a_missing_key_or_bucket_is_one_sentence(s3_env, capsys, url, expected):
    started = time.monotonic()
    assert main(["data", "info", url]) == 2
    assert _one_sentence(capsys.readouterr().err) == f"robot-rl data info: {expected}"
    assert time.monotonic() - started < 5


def test_wrong_credentials_are_one_sentence(s3_env, capsys, monkeypatch):
    # moto accepts any key until its IAM checks are switched on: from the next request, in this process
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    assert main(["data", "info", f"s3://{BUCKET}/s.zarr"]) == 2
    line = _one_sentence(capsys.readouterr().err)
    assert line.startswith(f"robot-rl data info: s3://{BUCKET}/s.zarr cannot be read: access was denied (")
    assert line.endswith("); check the credentials.")


def test_no_credentials_are_one_sentence(s3_env, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert main(["data", "info", f"s3://{BUCKET}/s.zarr"]) == 2
    assert "no S3 credentials were found; set AWS_ACCESS_KEY_ID" in _one_sentence(capsys.readouterr().err)


def test_an_unreachable_endpoint_fails_fast_in_one_sentence(s3_env, capsys, monkeypatch):
    with socket.socket() as probe:  # a free loopback port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    assert main(["data", "info", f"s3://{BUCKET}/s.zarr"]) == 2
    assert _one_sentence(capsys.readouterr().err) == (
        f"robot-rl data info: s3://{BUCKET}/s.zarr cannot be read: cannot connect to 127.0.0.1:{port} (connection "
        "refused); check the URL, AWS_ENDPOINT_URL and the server.")
    assert time.monotonic() - started < 5


def test_a_stalled_endpoint_times_out_after_two_attempts(s3_env, capsys, monkeypatch):
    monkeypatch.setenv("ROBOT_RL_REMOTE_TIMEOUT_S", "1")
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        assert main(["data", "info", f"s3://{BUCKET}/s.zarr"]) == 2
        elapsed = time.monotonic() - started
    assert "the server did not answer within 1 s" in _one_sentence(capsys.readouterr().err)
    assert elapsed < 8  # 2 attempts of 1 s (s3fs alone would retry 5 x botocore's attempts)
