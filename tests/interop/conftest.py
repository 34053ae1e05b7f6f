"""Fixtures for the converter tests; the helpers live in interop_stores.py (a unique module name:
every test folder has a conftest, so `from conftest import` would find another folder's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop_stores import make_store


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A committed store of three episodes (7, 12 and 5 steps) with front and wrist cameras."""
    return make_store(tmp_path / "demos.zarr")
