"""Run named stages in order, like make: skip what is done, redo what is stale, stop on failure.

A stage is redone when its outputs are missing or invalid, when ``force`` names it (or an
earlier stage, or ``true``), or when a stage before it ran in this invocation. A failing stage
stops the run with one sentence naming it; earlier stages' outputs stay where they are, so the
next invocation starts at the failed stage. ``pipeline.json`` keeps each stage's status and
wall time; the remaining-time estimate scales the budget's per-stage estimates by how fast
this machine has been so far.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


class StageFailed(RuntimeError):
    """A stage could not finish; the message names the stage and what went wrong."""


@dataclass
class Stage:
    name: str
    title: str                      # what it does, for the progress lines
    run: Callable[[], None]         # does the work (raises on failure)
    done: Callable[[], bool]        # its outputs exist and are valid
    clear: Callable[[bool], None]   # removes partial outputs before a redo (True: forced, start over)
    commands: Callable[[], list[str]]  # the stand-alone commands that do the same


def stages_to_redo(stages: list[Stage], force: str | bool | None) -> set[str]:
    """Stage names that ``force`` asks to redo (true: all; a name: it and every later stage)."""
    names = [s.name for s in stages]
    if force in (None, False, "false", "False", ""):
        return set()
    if force in (True, "true", "True"):
        return set(names)
    if force not in names:
        raise ValueError(f"force={force!r} is not a stage; use true or one of: {', '.join(names)}.")
    return set(names[names.index(str(force)):])


class Pipeline:
    """Runs ``stages`` with skipping, forcing, an ETA and a state file in ``out``."""

    def __init__(self, stages: list[Stage], out: Path, eta_s: dict[str, float], force=None, until: str | None = None,
                 say: Callable[[str], None] = print) -> None:
        names = [s.name for s in stages]
        if until is not None and until not in names:
            raise ValueError(f"until={until!r} is not a stage; use one of: {', '.join(names)}.")
        self.stages = stages[: names.index(until) + 1] if until else stages
        self.out, self.eta_s, self.say = out, eta_s, say
        self.forced = stages_to_redo(stages, force)
        self.state_path = out / "pipeline.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def run(self) -> dict:
        """Every stage in order; returns the state. Raises StageFailed naming the failed stage."""
        upstream_ran, spent_s, estimated_s = False, 0.0, 0.0
        for index, stage in enumerate(self.stages, 1):
            redo = upstream_ran or stage.name in self.forced or not stage.done()
            if not redo:
                self.say(f"[{index}/{len(self.stages)}] {stage.name}: done before, skipped (force={stage.name} redoes it)")
                self._record(stage.name, "skipped", None)
                continue
            remaining = self._remaining_s(index - 1, spent_s, estimated_s)
            self.say(f"\n[{index}/{len(self.stages)}] {stage.name}: {stage.title} "
                     f"(about {_duration(self._scaled(stage.name, spent_s, estimated_s))}; "
                     f"pipeline done in about {_duration(remaining)})")
            wall_s = self._run_one(stage, forced=stage.name in self.forced)
            spent_s += wall_s
            estimated_s += float(self.eta_s.get(stage.name, 0.0))
            upstream_ran = True
        return self.state

    def _run_one(self, stage: Stage, forced: bool) -> float:
        start = time.perf_counter()
        try:
            stage.clear(forced)
            for command in stage.commands():  # after clear: a resumed run says resume=true
                self.say(f"  $ {command}")
            stage.run()
            if not stage.done():
                raise StageFailed(f"stage {stage.name!r} finished but its outputs are missing or invalid.")
        except KeyboardInterrupt:
            self._record(stage.name, "interrupted", time.perf_counter() - start)
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes one sentence plus a saved traceback
            self._record(stage.name, "failed", time.perf_counter() - start, error=str(error))
            (self.out / "pipeline.log").write_text(traceback.format_exc())
            message = str(error) if isinstance(error, StageFailed) else f"{type(error).__name__}: {error}"
            raise StageFailed(f"stage {stage.name!r} failed: {message.rstrip('.')}. Earlier stages' outputs are kept "
                              f"in {self.out}; the traceback is in {self.out / 'pipeline.log'}; run the pipeline "
                              f"again to continue from this stage.") from error
        wall_s = time.perf_counter() - start
        self._record(stage.name, "done", wall_s)
        return wall_s

    def _scaled(self, name: str, spent_s: float, estimated_s: float) -> float:
        speed = spent_s / estimated_s if estimated_s > 0 else 1.0
        return float(self.eta_s.get(name, 0.0)) * speed

    def _remaining_s(self, start: int, spent_s: float, estimated_s: float) -> float:
        return sum(self._scaled(s.name, spent_s, estimated_s) for s in self.stages[start:])

    def _record(self, name: str, status: str, wall_s: float | None, error: str | None = None) -> None:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        if status == "skipped":  # keep what the run that made the outputs recorded
            entry = {**self.state.get(name, {"status": "done"}), "skipped_at": now}
        else:
            entry = {"status": status, "at": now}
            if wall_s is not None:
                entry["wall_s"] = round(wall_s, 1)
            if error:
                entry["error"] = error
        self.state[name] = entry
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.state_path)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
