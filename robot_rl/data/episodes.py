"""Per-episode metadata and the commit-ordered append used for ``meta/*`` arrays."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from robot_rl.contracts import EPISODE_SOURCES
from robot_rl.data.format import StoreError


@dataclass
class EpisodeInfo:
    """What is known about one episode besides its arrays; stored as one JSON string.

    ``start``/``end`` repeat ``meta/episode_ends`` so each record can be checked on its own.
    """

    source: str
    instruction: str = ""
    task: str = ""
    success: bool = False
    seed: int | None = None
    robot: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    dropped_steps: int = 0
    start: int = 0
    end: int = 0
    recorded_at: str = ""
    checksums: dict[str, int] = field(default_factory=dict)  # CRC-32 of each key's rows, see integrity

    def __post_init__(self) -> None:
        if self.source not in EPISODE_SOURCES:
            raise StoreError(
                f"episode source {self.source!r} is unknown; expected one of {', '.join(EPISODE_SOURCES)}."
            )
        if self.seed is not None:
            self.seed = int(self.seed)
        self.success = bool(self.success)
        try:
            json.dumps(self.extra)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"episode extra metadata is not JSON-serialisable ({exc}).") from None

    @property
    def length(self) -> int:
        """Number of steps in the episode."""
        return self.end - self.start

    def to_json(self) -> str:
        """One compact JSON object (the form stored in ``meta/episode_info``)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EpisodeInfo:
        """Parse a record written by :meth:`to_json`; unknown fields go to ``extra``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        known = {k: data.pop(k) for k in list(data) if k in cls.__dataclass_fields__}
        _check_types(known)  # valid JSON with a wrong type inside is as unreadable as garbage
        info = cls(**known)
        if data:
            info.extra = {**info.extra, "_unknown": data}
        return info


_TEXT_FIELDS = ("source", "instruction", "task", "robot", "recorded_at")
_COUNT_FIELDS = ("dropped_steps", "start", "end")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(fields: dict[str, Any]) -> None:
    """Raise TypeError naming the first field of a parsed record that has the wrong type."""
    wrong = [k for k in _TEXT_FIELDS if k in fields and not isinstance(fields[k], str)]
    wrong += [k for k in _COUNT_FIELDS if k in fields and not (_is_int(fields[k]) and fields[k] >= 0)]
    if "success" in fields and not isinstance(fields["success"], (bool, int)):
        wrong.append("success")
    if fields.get("seed") is not None and not _is_int(fields["seed"]):
        wrong.append("seed")
    if "extra" in fields and not isinstance(fields["extra"], dict):
        wrong.append("extra")
    sums = fields.get("checksums", {})
    if not isinstance(sums, dict) or not all(isinstance(k, str) and _is_int(v) and 0 <= v < 2**32
                                             for k, v in sums.items()):
        wrong.append("checksums")
    if wrong:
        raise TypeError(f"field {wrong[0]!r} has the wrong type")


def utc_now() -> str:
    """ISO-8601 UTC timestamp with seconds precision."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def append_rows(array: Any, values: np.ndarray) -> None:
    """Append ``values`` along axis 0 so that a crash never exposes an unwritten row.

    ``zarr.Array.resize`` writes the new shape before the chunk holding the new rows, so a kill
    between the two would show fill values (e.g. a zero episode end) to every reader. Here the
    chunk is written first through a view that already has the new shape; the larger shape is
    persisted afterwards. Both files are replaced atomically by LocalStore (zarr>=3.1.3).
    """
    import zarr
    from zarr.core.array import AsyncArray

    n = array.shape[0]
    new_shape = (n + len(values), *array.shape[1:])
    inner = array.async_array
    # No public API writes past the persisted shape, hence the hand-made AsyncArray.
    future = zarr.Array(
        AsyncArray(metadata=inner.metadata.update_shape(new_shape), store_path=inner.store_path,
                   config=inner.config)
    )
    future[n:] = values
    array.resize(new_shape)
