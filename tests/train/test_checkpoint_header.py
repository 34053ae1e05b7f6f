"""A safetensors checkpoint is never mistaken for a pickle, whatever its header length.

The file starts with the JSON header's length (u64, little-endian). When the metadata (RNG
states, counters) happens to make that length end in byte 0x80, or in the bytes "PK", the first
bytes alone look like a pickle or a torch.save zip; about one save in 256 was refused on resume.
"""

from __future__ import annotations

import pytest

from robot_rl.train.checkpoint import LATEST, read_checkpoint, save_checkpoint


def _header_length(path) -> int:
    with open(path, "rb") as handle:
        return int.from_bytes(handle.read(8), "little")


@pytest.mark.parametrize("low_bytes, mask", [(0x80, 0xFF), (int.from_bytes(b"PK", "little"), 0xFFFF)])
def test_header_lengths_that_look_like_a_pickle_still_load(tmp_path, low_bytes, mask):
    pad = 0
    for _ in range(4):  # the header grows by one byte per padding character: aim, save, correct
        save_checkpoint(tmp_path, {"step": 1, "pad": "x" * pad})
        length = _header_length(tmp_path / LATEST)
        if length & mask == low_bytes:
            break
        pad += (low_bytes - length) % (mask + 1)
    assert _header_length(tmp_path / LATEST) & mask == low_bytes
    state = read_checkpoint(tmp_path / LATEST)
    assert state["step"] == 1 and state["pad"] == "x" * pad
