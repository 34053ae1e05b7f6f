"""A pipeline budget is the verbs' own overrides: the stage commands it yields, checked against
the commands the hand-kept translation produced before budgets became plain overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from robot_rl.cli.pipeline.budget import budget_keys
from robot_rl.cli.pipeline.stages import Layout, PipelineStages
from robot_rl.config import compose

# `robot-rl pipeline` with the default budget, task reach, seed 0, out=OUT, before the change
# (budgets as overrides), with the distill stage, bfloat16-where-native updates and two torch
# threads for the reward model and the student since; its reward
# model reads reach only (budget.reward_tasks=own) and trains 600 steps, as it did then.
DEFAULT_COMMANDS = [
    "robot-rl record task=reach robot=panda device=scripted episodes=20 noise=0 seed=1000 out=OUT/data/demos.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl record task=reach robot=panda device=scripted episodes=10 noise=0.5 seed=2000 out=OUT/data/noisy_0.5.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl record task=reach robot=panda device=scripted episodes=10 noise=1 seed=3000 out=OUT/data/noisy_1.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl record task=reach robot=panda device=scripted episodes=10 noise=3 seed=4000 out=OUT/data/noisy_3.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl record task=reach robot=panda device=scripted episodes=4 noise=0 seed=50000 out=OUT/data/held_out_expert.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl record task=reach robot=panda device=scripted episodes=4 noise=1 seed=51000 out=OUT/data/held_out_noisy_1.zarr env.image_size=64 'env.cameras=[front,wrist]' display=off",
    "robot-rl reward train 'data=[OUT/data/demos.zarr,OUT/data/noisy_0.5.zarr,OUT/data/noisy_1.zarr,OUT/data/noisy_3.zarr]' 'held_out=[OUT/data/held_out_expert.zarr,OUT/data/held_out_noisy_1.zarr]' out=OUT/reward reward.train.steps=600 reward.train.threads=2 reward.train.update_dtype=auto reward.model.image_size=64 reward.train.seed=0",
    "robot-rl train task=reach robot=panda algo=sac reward=vlm reward.model_path=OUT/reward demos=OUT/data/demos.zarr run=OUT/train seed=0 train.total_steps=8000 train.eval_every=2000 train.checkpoint_every=2000 train.eval_episodes=20 algo.seed_steps=1000 algo.utd=2 algo.agent.num_critics=2 algo.agent.bc_weight=1 algo.agent.update_dtype=auto baseline.bc_updates=2000",
    # the student (issue 12): distilled from the teacher, evaluated beside it, run over ROS 2
    "robot-rl train task=reach robot=panda algo=distill teacher=OUT/train/policy run=OUT/student seed=0 env.image_size=32 algo.rounds=12 algo.episodes_per_round=20 algo.updates_per_round=400 algo.eval_every=4 algo.agent.augment_pad=2 algo.agent.update_dtype=auto train.eval_episodes=20 torch_threads=2",
    "robot-rl eval run=OUT/student randomize=none episodes=20 video=8 seed=100000 out=OUT/eval/none",
    "robot-rl eval run=OUT/train randomize=none episodes=20 video=8 seed=100000 out=OUT/eval/teacher-none",
    "robot-rl eval run=OUT/student randomize=hard episodes=20 video=8 seed=100000 out=OUT/eval/hard",
    "robot-rl eval run=OUT/train randomize=hard episodes=20 video=8 seed=100000 out=OUT/eval/teacher-hard",
    "robot-rl eval run=OUT/student ros=true episodes=10 seed=200000 out=OUT/ros",
]


def _commands(overrides: list[str]) -> list[str]:
    cfg = compose(budget_keys(overrides), config_name="pipeline")
    return [c for stage in PipelineStages(cfg, Layout(Path("OUT"))).stages() for c in stage.commands()]


def test_default_budget_gives_the_same_commands_as_before():
    assert _commands(["budget.reward_tasks=[own]", "budget.reward.steps=600"]) == DEFAULT_COMMANDS


def test_the_default_reward_model_learns_every_task():
    """One model whose instruction selects the task: every other task's demos, noisy episodes and
    held-out episodes are recorded (seeds apart from each other and from reach's) and read."""
    commands = _commands([])
    records = [c for c in commands if c.startswith("robot-rl record ")]
    assert set(DEFAULT_COMMANDS[:6]) <= set(records)
    others = ("lift", "pick_place", "push", "stack")
    for task in others:
        mine = [c for c in records if f" task={task} " in c]
        assert len(mine) == 6 and all(f"OUT/data/tasks/{task}/" in c for c in mine)
    seeds = [c.split(" seed=")[1].split()[0] for c in records]
    assert len(seeds) == len(set(seeds)) == 6 * 5
    reward = next(c for c in commands if c.startswith("robot-rl reward "))
    data, held = reward.split("'data=[")[1].split("]'")[0], reward.split("'held_out=[")[1].split("]'")[0]
    for task in others:
        assert f"tasks/{task}/demos.zarr" in data and f"tasks/{task}/noisy_3.zarr" in data
        assert f"tasks/{task}/held_out_expert.zarr" in held
    assert "held_out" not in data
    two = [c for c in _commands(["budget.reward_tasks=[push,lift]"]) if c.startswith("robot-rl record ")]
    assert {c.split(" task=")[1].split()[0] for c in two} == {"reach", "push", "lift"}


def test_an_unknown_reward_task_is_one_sentence():
    import pytest

    from robot_rl.config import ConfigError

    with pytest.raises(ConfigError, match=r"budget.reward_tasks=\[push,lfit\] names unknown task"):
        _commands(["budget.reward_tasks=[push,lfit]"])


def test_a_stage_key_by_its_last_part_still_works():
    """``budget.sac.total_steps=N`` (the README's spelling) is ``budget.sac.train.total_steps=N``."""
    short = _commands(["budget=tiny", "budget.sac.total_steps=20000", "budget.reward.steps=33", "budget.demos=7"])
    full = _commands(["budget=tiny", "budget.sac.train.total_steps=20000", "budget.reward.reward.train.steps=33",
                      "budget.demos=7"])
    assert short == full
    train = next(c for c in short if c.startswith("robot-rl train "))
    assert "train.total_steps=20000" in train and "train.checkpoint_every=300" in train
    assert "reward.train.steps=33" in next(c for c in short if c.startswith("robot-rl reward "))
    assert sum(c.startswith("robot-rl record ") and "episodes=7 " in c for c in short) == 1


def test_eval_every_still_sets_the_checkpoint_interval():
    train = next(c for c in _commands(["budget.sac.eval_every=500"]) if c.startswith("robot-rl train "))
    assert "train.eval_every=500" in train and "train.checkpoint_every=500" in train


def test_recordings_made_two_at_a_time_keep_what_finished_and_name_a_failure(tmp_path, capsys):
    """The demos stage's ``budget.record_workers``: each recording in its own process, its
    messages in its log and its last line printed; a failing one is the stage's one sentence,
    and a recording that finished beside it stays on disk."""
    from robot_rl.cli.pipeline.stages import StageFailed, _call_many

    def argv(name: str, *extra: str) -> list[str]:
        return ["task=reach", "device=scripted", "episodes=1", "env.image_size=32", "display=off",
                f"out={tmp_path / name}.zarr", *extra]

    logs = [tmp_path / "logs" / f"record-{n}.log" for n in ("a", "b", "bad")]
    with pytest.raises(StageFailed, match=r"`robot-rl record` exited with code 2: .*noise=-1"):
        _call_many("record", [argv("a", "seed=1"), argv("b", "seed=2"), argv("bad", "noise=-1")], logs, 2)
    printed = capsys.readouterr().out
    for name, log in zip("ab", logs):
        assert f"kept 1 (success 100%), discarded 0 -> {tmp_path / name}.zarr" in printed
        assert "kept 1" in log.read_text() and (tmp_path / f"{name}.zarr" / "zarr.json").is_file()
    assert "noise=-1" in logs[2].read_text()
