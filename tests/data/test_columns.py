"""Adding columns to a store: new and replaced keys land with valid checksums, the schema
commit is the only step readers see, and bad input is refused with one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.cli.main import main
from robot_rl.data import EpisodeStore, StoreError, add_columns
from robot_rl.data import columns as columns_module

LENGTHS = [5, 9, 3]


def test_added_and_replaced_columns_keep_the_store_valid(make_store, capsys):
    path, _ = make_store(LENGTHS)
    steps = sum(LENGTHS)
    with EpisodeStore.open(path, mode="a") as store:
        add_columns(store, {"info/score": np.arange(steps, dtype=np.float32),
                            "info/pair": np.ones((steps, 2), np.int64)}, extra={"scored_by": "test"})
        add_columns(store, {"reward": np.full(steps, 0.5, np.float32)})  # replaces a recorded key
        np.testing.assert_array_equal(store.read_slice("info/score", 3, 7), [3, 4, 5, 6])
    with EpisodeStore.open(path) as store:
        assert store.validate(deep=True) == []
        assert store.schema["info/pair"].shape == (2,) and store.attrs["extra"]["scored_by"] == "test"
        np.testing.assert_array_equal(store.read_episode(1, ["reward"], verify=True)["reward"], np.full(9, 0.5))
    assert main(["data", "validate", str(path)]) == 0, capsys.readouterr()


def test_a_kill_before_the_schema_commit_leaves_the_store_as_it_was(make_store, monkeypatch):
    path, _ = make_store(LENGTHS)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(columns_module, "_commit_schema", killed)
    with EpisodeStore.open(path, mode="a") as store, pytest.raises(KeyboardInterrupt):
        add_columns(store, {"info/score": np.zeros(sum(LENGTHS), np.float32)})
    with EpisodeStore.open(path) as store:
        assert "info/score" not in store.schema and store.validate(deep=True) == []
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_bad_columns_are_refused(make_store):
    path, _ = make_store(LENGTHS)
    with EpisodeStore.open(path, mode="a") as store:
        with pytest.raises(StoreError, match="one value per step"):
            add_columns(store, {"info/score": np.zeros(3, np.float32)})
        with pytest.raises(StoreError, match="not allowed"):
            add_columns(store, {"meta/score": np.zeros(sum(LENGTHS), np.float32)})
    with EpisodeStore.open(path) as store, pytest.raises(StoreError, match="read-only"):
        add_columns(store, {"info/score": np.zeros(sum(LENGTHS), np.float32)})
