"""Episode stores read over HTTP(S) or S3-compatible object storage, through fsspec (read-only).

``EpisodeStore.open("https://host/demos.zarr")`` (or ``s3://bucket/demos.zarr``) opens the store
through zarr's ``FsspecStore``: every reader (``data info``/``stats``/``validate``/``export``,
``MemoryCache``, training's ``load_store``) works on it unchanged, and nothing can be written.

What differs from a local store, and why:

- **Missing files are damage.** zarr reads a missing chunk as its fill value (zeros). Locally the
  integrity check lists the chunk files; a web server cannot be listed, so for a store whose
  ``integrity`` attribute says every chunk was written, a missing file (HTTP 404) is an error
  when it is read instead of a block of zeros. Checksums still catch corrupt rows on decode.
- **Range requests.** Image arrays are sharded: each frame block is a byte range of its shard
  file, so an HTTP server must answer ``Range`` requests with ``206 Partial Content`` (nginx,
  Apache, S3, GCS and most CDNs do; ``python -m http.server`` does not). A server that ignores
  them is refused on open, with one sentence, instead of decoding garbage.
- **Bounded waits.** Connections time out after :data:`CONNECT_TIMEOUT_S`, a stalled read after
  :data:`READ_TIMEOUT_S`; nothing retries for minutes. Every failure is one sentence.

HTTP(S) needs ``aiohttp`` (``pip install robot-rl[interop]``); ``s3://`` needs ``s3fs`` (credentials and
endpoint the usual AWS way: ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL`` for S3-compatible
storage such as MinIO, or fsspec's ``FSSPEC_S3_*`` variables, e.g. ``FSSPEC_S3_ANON=true`` for a
public bucket).
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from robot_rl.data.format import StoreError
from robot_rl.data.integrity import short

CONNECT_TIMEOUT_S = 10.0
# Longest wait for the next bytes of an answer (not for a whole file); ROBOT_RL_REMOTE_TIMEOUT_S overrides it.
READ_TIMEOUT_S = 30.0
TIMEOUT_ENV = "ROBOT_RL_REMOTE_TIMEOUT_S"
# The package fsspec needs for each protocol (fsspec's own message names it less plainly).
PACKAGES = {"http": "aiohttp", "https": "aiohttp", "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
            "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}
_HTTP = ("http", "https")
_S3 = ("s3", "s3a")
# Attempts per S3 request (botocore's retries); s3fs's own retry loop around it is turned off.
S3_ATTEMPTS = 2


def protocol_of(url: str) -> str:
    """``"https"`` for ``https://host/x.zarr``."""
    return str(url).split("://", 1)[0].lower()


def timeouts() -> tuple[float, float]:
    """``(connect, read)`` timeouts in seconds: the defaults, or the read timeout from the environment."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return CONNECT_TIMEOUT_S, READ_TIMEOUT_S
    try:
        read = float(raw)
    except ValueError:
        read = float("nan")
    if not 0 < read < float("inf"):
        raise StoreError(f"{TIMEOUT_ENV}={raw!r} is not valid; expected a number of seconds > 0.")
    return min(CONNECT_TIMEOUT_S, read), read


def storage_options(protocol: str) -> dict[str, Any]:
    """fsspec options that bound every wait for ``protocol`` (and retry little)."""
    connect, read = timeouts()
    if protocol in _HTTP:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
        return {"client_kwargs": {"timeout": timeout, "trust_env": True}}
    if protocol in _S3:
        # botocore's Config: its default is 60 s per attempt and several attempts per request ("standard"
        # mode counts the first attempt in total_max_attempts; the legacy max_attempts counts retries only)
        return {"config_kwargs": {"connect_timeout": connect, "read_timeout": read,
                                  "retries": {"mode": "standard", "total_max_attempts": S3_ATTEMPTS}}}
    return {}


def open_root(url: str) -> Any:
    """The root zarr group of the store at ``url``, read-only; StoreError (one sentence) otherwise."""
    import zarr
    from zarr.storage._fsspec import ALLOWED_EXCEPTIONS

    store = _fsspec_store(url)
    if protocol_of(url) in _S3:
        _quiet_botocore()
        # s3fs retries timeouts 5 times around botocore's own attempts: 5 x 2 x the read timeout for a stall
        store.fs.retries = 1
    header = _root_document(store, url)
    if protocol_of(url) in _HTTP:
        _check_range_requests(store, url)
    marker = header.get("attributes", {}).get("integrity") if isinstance(header.get("attributes"), dict) else None
    if not (isinstance(marker, dict) and marker.get("empty_chunks_written") is True):
        store.allowed_exceptions = ALLOWED_EXCEPTIONS  # an older store may truly lack all-fill chunks
    try:
        return zarr.open_group(store=store, mode="r", zarr_format=3)
    except Exception as exc:  # noqa: BLE001 - network trouble, or zarr's own errors for a damaged store
        raise StoreError(failure(url, exc, "could not be opened as a Zarr v3 store")) from exc


def failure(url: str, exc: BaseException, doing: str) -> str:
    """One sentence for ``exc`` raised while ``doing`` something with the store at ``url``."""
    reason = network_reason(exc)
    if reason is not None:
        return f"{url} {doing}: {reason}."
    return f"{url} {doing} ({short(exc)})."


def network_reason(exc: BaseException) -> str | None:
    """A short phrase for a network failure (refused, timed out, HTTP status); None for anything else."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        aiohttp = None
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ClientResponseError):
            return f"the server answered HTTP {exc.status} {exc.message or ''}".rstrip()
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return f"the TLS certificate of {exc.host} is not trusted ({short(exc.certificate_error)})"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"cannot connect to {exc.host}:{exc.port} ({_why_not(exc.os_error)}); check the URL and the server"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "the server closed the connection; try again"
    botocore = _botocore_reason(exc)
    if botocore is not None:
        return botocore
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts and asyncio.TimeoutError subclass it
        return _timed_out()
    if isinstance(exc, PermissionError):  # s3fs turns S3's 403 (AccessDenied, InvalidAccessKeyId, ...) into it
        return f"access was denied ({short(exc)}); check the credentials"
    if type(exc).__module__.startswith(("aiohttp", "botocore", "aiobotocore")):
        return short(exc)
    return None


def _timed_out() -> str:
    connect, read = timeouts()
    return (f"the server did not answer within {read:g} s (connect timeout {connect:g} s); check the URL and "
            f"the network, or set {TIMEOUT_ENV} for a slow link")


def _botocore_reason(exc: BaseException) -> str | None:
    """A short phrase for botocore's own failures (s3://); None for anything else."""
    if not type(exc).__module__.startswith(("botocore", "aiobotocore")):
        return None
    from botocore import exceptions as boto

    endpoint = str(getattr(exc, "kwargs", {}).get("endpoint_url", "") or "")
    where = _host_of(endpoint) or "the S3 endpoint"
    if isinstance(exc, (boto.ReadTimeoutError, boto.ConnectTimeoutError)):
        return _timed_out()
    if isinstance(exc, boto.EndpointConnectionError):  # refused, unresolvable host
        cause = exc.kwargs.get("error")
        os_error = getattr(cause, "os_error", None) or (cause if isinstance(cause, OSError) else None)
        why = _why_not(os_error) if isinstance(os_error, OSError) else "no connection"
        return f"cannot connect to {where} ({why}); check the URL, {ENDPOINT_ENV} and the server"
    if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return ("no S3 credentials were found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
                "or FSSPEC_S3_ANON=true for a public bucket")
    if isinstance(exc, boto.ConnectionClosedError):
        return "the server closed the connection; try again"
    return short(exc)


ENDPOINT_ENV = "AWS_ENDPOINT_URL"


def _host_of(url: str) -> str:
    """``host:port`` of ``http://host:port/path`` ('' when there is none)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return ""


def _quiet_botocore() -> None:
    """botocore logs 'Found credentials in environment variables' at INFO, which the CLI would print
    before its one line; quieten it unless someone set its level."""
    import logging

    for name in ("botocore", "aiobotocore"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _why_not(error: OSError) -> str:
    import socket

    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    return (error.strerror or short(error)).split(" (")[0]


def _fsspec_store(url: str) -> Any:
    from zarr.storage import FsspecStore

    protocol = protocol_of(url)
    if importlib.util.find_spec("fsspec") is None:
        raise StoreError("reading remote stores needs the Python package fsspec, which is not installed; install it "
                         "with `pip install fsspec`.")
    try:
        return FsspecStore.from_url(url, storage_options=storage_options(protocol), read_only=True,
                                    allowed_exceptions=())
    except ImportError:
        package = PACKAGES.get(protocol, f"fsspec's {protocol} support")
        raise StoreError(f"reading {protocol}:// stores needs the Python package {package}, which is not installed; "
                         f"install it with `pip install {package}`.") from None
    except ValueError as exc:
        if "protocol not known" in str(exc).lower():
            raise StoreError(f"{url} uses {protocol}://, which is not a storage protocol fsspec knows; expected "
                             "http://, https:// or s3:// (or a local path).") from None
        raise StoreError(failure(url, exc, "cannot be read")) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed URL or missing credentials
        raise StoreError(failure(url, exc, "cannot be read")) from exc


def _get(store: Any, key: str, byte_range: Any = None) -> bytes | None:
    """The bytes of ``key`` (None when it does not exist); network errors propagate."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    try:
        buffer = sync(store.get(key, default_buffer_prototype(), byte_range))
    except FileNotFoundError:
        return None
    return None if buffer is None else buffer.to_bytes()


def _root_document(store: Any, url: str) -> dict[str, Any]:
    """The store's root ``zarr.json``, refused with one sentence when it is not a Zarr v3 group."""
    try:
        raw = _get(store, "zarr.json")
        if raw is None:
            if _get(store, ".zgroup") is not None or _get(store, ".zarray") is not None:
                raise StoreError(f"{url} is a Zarr v2 store; robot_rl reads Zarr v3 episode stores only.")
            if protocol_of(url) in _S3 and not _bucket_exists(store, url):
                bucket = url.split("://", 1)[1].split("/", 1)[0]
                raise StoreError(f"{url} cannot be read: the bucket {bucket} does not exist (or these credentials "
                                 "cannot see it); check the URL.")
            raise StoreError(f"{url} is not a Zarr v3 store (there is no {url.rstrip('/')}/zarr.json); "
                             "check the URL.")
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - refused, timed out, HTTP 403/500, bad credentials
        raise StoreError(failure(url, exc, "cannot be read")) from exc
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise StoreError(f"{url} is not a Zarr v3 store (its zarr.json is not JSON); check the URL.") from None
    if not isinstance(header, dict) or header.get("node_type") != "group":
        raise StoreError(f"{url} is not a Zarr v3 group (its zarr.json describes no group); check the URL.")
    return header


def _bucket_exists(store: Any, url: str) -> bool:
    """Whether the bucket of ``s3://bucket/...`` exists (True when that cannot be told)."""
    from zarr.core.sync import sync

    bucket = url.split("://", 1)[1].split("/", 1)[0]
    try:
        return bool(sync(store.fs._exists(bucket)))
    except Exception:  # noqa: BLE001 - e.g. no permission to see the bucket itself: say what we know
        return True


def _check_range_requests(store: Any, url: str) -> None:
    """Refuse a server that answers a byte-range request with the whole file."""
    from zarr.abc.store import RangeByteRequest

    try:
        part = _get(store, "zarr.json", RangeByteRequest(0, 1))
    except Exception as exc:  # noqa: BLE001
        raise StoreError(failure(url, exc, "cannot be read")) from exc
    if part is not None and len(part) != 1:
        raise StoreError(f"the server of {url} ignores HTTP Range requests, which reading the sharded image arrays "
                         "needs; serve the store with one that answers them (nginx, Apache, S3 and most do).")
