"""The sim's config groups, ``sim/conf/{task,robot,randomize}``: the one registry of tasks,
robots and randomisation presets.

A task, robot or preset exists when its YAML file exists. A task file holds everything about
the task that is not code: the class (``_target_``), its scripted expert (``expert``), the
instruction templates it trains with, the ``phrasing`` frames its generated variants are drawn
from, two held-out lists used only to evaluate unseen wording (``paraphrases`` and
``operator``), the tasks whose instructions may be true of its frames (``not_counterfactual``), and
the fields of its config dataclass. This module reads files only (no mujoco, no gymnasium), so
the CLI's listings and the reward models' instruction tables cost nothing to build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_rl.config import ConfigError, names_in, read_group_file

CONF_DIR = Path(__file__).resolve().parent / "conf"
GROUPS = ("task", "robot", "randomize")
# Keys of a task file that describe the task to the rest of the stack, not its config dataclass.
_TASK_KEYS = ("name", "_target_", "expert", "paraphrases", "operator", "phrasing", "not_counterfactual")


def names(group: str) -> list[str]:
    """The names in one of the sim's groups, sorted, e.g. ``names("task")``."""
    return names_in(CONF_DIR / group)


def read(group: str, name: str) -> dict[str, Any]:
    """One group file as a plain dict; an unknown name gets an error listing the valid ones."""
    return read_group_file(CONF_DIR / group, group, name)


@dataclass(frozen=True)
class TaskSpec:
    """One task file, split into what the stack needs to know and the task's own config."""

    name: str
    target: str  # dotted path of the Task class
    expert: str  # dotted path of its scripted expert (a WaypointExpert)
    templates: tuple[str, ...]
    paraphrases: tuple[str, ...]
    not_counterfactual: tuple[str, ...] = ()
    operator: tuple[str, ...] = ()  # a second, independent held-out list (evaluation only)
    phrasing: tuple[str, ...] = ()  # frames of generated training variants (reward_models.phrasings)
    params: dict[str, Any] = field(default_factory=dict)  # fields of the task's config dataclass


def task_spec(name: str) -> TaskSpec:
    """The task file ``sim/conf/task/<name>.yaml`` as a :class:`TaskSpec`."""
    values = read("task", name)
    missing = [k for k in ("_target_", "expert", "templates", "paraphrases") if not values.get(k)]
    if missing:
        raise ConfigError(f"task {name!r} (sim/conf/task/{name}.yaml) lacks {', '.join(missing)}; "
                          "every task names its class, expert, templates and held-out paraphrases.")
    return TaskSpec(name=name, target=values["_target_"], expert=values["expert"],
                    templates=tuple(values["templates"]), paraphrases=tuple(values["paraphrases"]),
                    not_counterfactual=tuple(values.get("not_counterfactual") or ()),
                    operator=tuple(values.get("operator") or ()), phrasing=tuple(values.get("phrasing") or ()),
                    params={k: v for k, v in values.items() if k not in _TASK_KEYS})


def task_specs() -> dict[str, TaskSpec]:
    """Every registered task, by name (sorted)."""
    return {name: task_spec(name) for name in names("task")}


def instruction_tables() -> dict[str, dict[str, tuple[str, ...]]]:
    """Keyword arguments of ``reward_models.instructions.InstructionBank`` from the task files:
    training ``templates`` and generator ``phrasing`` frames (task names sorted), the held-out
    ``paraphrases`` and ``operator`` lists, and ``not_counterfactual``. The CLI hands them over;
    reward_models never reads sim files."""
    specs = task_specs()
    return {"templates": {n: s.templates for n, s in specs.items()},
            "paraphrases": {n: s.paraphrases for n, s in specs.items()},
            "operator": {n: s.operator for n, s in specs.items() if s.operator},
            "phrasing": {n: s.phrasing for n, s in specs.items() if s.phrasing},
            "not_counterfactual": {n: s.not_counterfactual for n, s in specs.items() if s.not_counterfactual}}
