"""The task files are the one registry: every task is complete there, and everything that
lists tasks (Hydra, experts, the reward models' instruction bank, gym ids) reads it."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from reward_models.instructions import InstructionBank, parse
from robot_rl import contracts
from robot_rl.config import choices, compose
from sim.experts import WaypointExpert, make_expert
from robot_rl.config import locate
from sim.registry import GROUPS, instruction_tables, names, task_spec
from sim.tasks.base import Task


@pytest.mark.parametrize("task", names("task"))
def test_every_task_file_names_its_class_expert_and_language(task):
    spec = task_spec(task)
    assert issubclass(locate(spec.target, 'task'), Task) and issubclass(locate(spec.expert, 'expert'), WaypointExpert)
    assert spec.templates and spec.paraphrases
    assert not set(spec.paraphrases) & set(spec.templates), "a held-out paraphrase is also a training template"
    uses_base = {"{base}" in t for t in spec.templates}
    assert len(uses_base) == 1, "templates disagree on naming a base object"
    for phrasing in (*spec.templates, *spec.paraphrases):
        assert "{color}" in phrasing and ("{base}" in phrasing) in uses_base, phrasing
    assert set(spec.not_counterfactual) <= set(names("task")) - {task}


def test_hydra_and_the_sim_see_the_same_groups():
    for group in GROUPS:
        assert choices(group) == names(group), group
    cfg = compose(["task=reach", "robot=jaco", "randomize=hard"])
    assert (cfg.task.name, cfg.robot.name, cfg.randomize.name) == ("reach", "jaco", "hard")


def test_instruction_bank_is_built_from_the_task_files():
    tables = instruction_tables()
    bank = InstructionBank(**tables)
    for task in names("task"):
        spec = task_spec(task)
        assert bank.templates[task] == list(spec.templates)
        assert bank.paraphrases[task] == list(spec.paraphrases)
        assert bank.not_counterfactual.get(task, set()) == set(spec.not_counterfactual)
    # Seeded draws of paraphrased counterfactuals pick from the bank in task-name order.
    assert list(tables["paraphrases"]) == sorted(tables["paraphrases"]) == names("task")


def test_env_and_expert_come_from_the_task_file():
    env = sim.load("stack", "panda", cameras=())
    try:
        env.reset(seed=0)
        spec = task_spec("stack")
        assert type(env.task) is locate(spec.target, 'task') and env.task.name == "stack"
        assert type(make_expert(env)) is locate(spec.expert, 'expert')
        p = parse("stack", env.task.instruction)
        assert env.task.instruction in {t.format(color=p.target, base=p.base) for t in spec.templates}
    finally:
        env.close()


def test_colour_vocabulary_is_defined_once():
    env = sim.load("lift", "panda", cameras=())
    try:
        for colour in env.task.config.colors:
            rgba = env.model.geom(f"{colour}_cube_geom").rgba
            np.testing.assert_allclose(rgba, contracts.COLORS[colour], atol=1e-6)
    finally:
        env.close()
    assert parse("lift", "lift the " + " ".join(contracts.COLORS) + " cube").colours == tuple(contracts.COLORS)
    assert tuple(InstructionBank(**instruction_tables()).colours) == contracts.SCENE_COLORS
