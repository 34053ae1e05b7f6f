"""The pipeline runner's rules, on stages that write small files: skip what is done, redo what a
stage before it redid, honour force= and until=, and stop on a failure naming the stage while
keeping what earlier stages made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_rl.cli.pipeline.runner import Pipeline, Stage, StageFailed, stages_to_redo


class FileStage:
    """A stage whose output is one file; counts how often it ran."""

    def __init__(self, out: Path, name: str, fail: bool = False) -> None:
        self.path, self.name, self.fail, self.runs = out / f"{name}.txt", name, fail, 0

    def stage(self) -> Stage:
        return Stage(self.name, f"make {self.name}", self.run, self.path.exists, self.clear, lambda: [f"make {self.name}"])

    def run(self) -> None:
        self.runs += 1
        if self.fail:
            raise OSError(f"disk full while writing {self.name}")
        self.path.write_text(self.name)

    def clear(self, forced: bool) -> None:
        self.path.unlink(missing_ok=True)


def make(tmp_path: Path, fail: str | None = None) -> list[FileStage]:
    return [FileStage(tmp_path, n, fail=n == fail) for n in ("a", "b", "c")]


def run(tmp_path: Path, stages: list[FileStage], **kwargs) -> dict:
    lines: list[str] = []
    state = Pipeline([s.stage() for s in stages], tmp_path, {"a": 1, "b": 2, "c": 3}, say=lines.append, **kwargs).run()
    return {"state": state, "lines": lines}


def test_second_run_skips_every_done_stage(tmp_path):
    stages = make(tmp_path)
    first = run(tmp_path, stages)
    assert [s.runs for s in stages] == [1, 1, 1]
    assert all(first["state"][n]["status"] == "done" for n in "abc")
    second = run(tmp_path, stages)
    assert [s.runs for s in stages] == [1, 1, 1]
    assert sum("skipped" in line for line in second["lines"]) == 3
    assert json.loads((tmp_path / "pipeline.json").read_text())["c"]["status"] == "done"


def test_a_missing_output_redoes_that_stage_and_every_later_one(tmp_path):
    stages = make(tmp_path)
    run(tmp_path, stages)
    (tmp_path / "b.txt").unlink()
    run(tmp_path, stages)
    assert [s.runs for s in stages] == [1, 2, 2]


def test_force_names_a_stage_or_all(tmp_path):
    stages = make(tmp_path)
    run(tmp_path, stages)
    run(tmp_path, stages, force="c")
    assert [s.runs for s in stages] == [1, 1, 2]
    run(tmp_path, stages, force=True)
    assert [s.runs for s in stages] == [2, 2, 3]
    with pytest.raises(ValueError, match="not a stage.*a, b, c"):
        stages_to_redo([s.stage() for s in stages], "typo")


def test_until_stops_after_the_named_stage(tmp_path):
    stages = make(tmp_path)
    run(tmp_path, stages, until="b")
    assert [s.runs for s in stages] == [1, 1, 0]
    with pytest.raises(ValueError, match="until='z' is not a stage"):
        run(tmp_path, stages, until="z")


def test_a_failing_stage_stops_the_run_and_keeps_earlier_outputs(tmp_path):
    stages = make(tmp_path, fail="b")
    with pytest.raises(StageFailed) as caught:
        run(tmp_path, stages)
    message = str(caught.value)
    assert "stage 'b' failed: OSError: disk full while writing b" in message and "pipeline.log" in message
    assert (tmp_path / "a.txt").read_text() == "a" and stages[2].runs == 0
    assert "disk full" in (tmp_path / "pipeline.log").read_text()  # the traceback is kept
    state = json.loads((tmp_path / "pipeline.json").read_text())
    assert state["a"]["status"] == "done" and state["b"]["status"] == "failed"
    stages[1].fail = False  # fixed: the next run starts at the failed stage
    run(tmp_path, stages)
    assert [s.runs for s in stages] == [1, 2, 1]


def test_the_estimate_scales_with_how_fast_the_machine_has_been(tmp_path):
    stages = make(tmp_path)
    lines = run(tmp_path, stages)["lines"]
    first = next(line for line in lines if line.strip().startswith("[1/3] a"))
    assert "about 1 s" in first and "pipeline done in about 6 s" in first
