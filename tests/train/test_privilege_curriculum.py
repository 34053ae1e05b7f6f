"""The privileged-action curriculum on the training side: the schedule, the collecting envs told
each change (in process, on Ray actors), never the evaluation env, and the train CLI end to end."""

from __future__ import annotations

import csv

import pytest

from robot_rl.algos import sac
from robot_rl.algos.networks import ObsSpec
from robot_rl.cli.main import main
from robot_rl.train.logger import Logger
from robot_rl.train.online import OnlineConfig, OnlineTrainer, PrivilegeSchedule
from robot_rl.train.replay import ReplayBuffer
from tests.algos.test_algos import PointGoal


class PrivilegedPointGoal(PointGoal):
    """PointGoal that remembers every privilege strength it was given, in order."""

    made: list["PrivilegedPointGoal"] = []

    def __init__(self) -> None:
        super().__init__()
        self.told: list[float] = []
        PrivilegedPointGoal.made.append(self)

    def set_privilege(self, grasp_assist: float) -> None:
        self.told.append(grasp_assist)


def test_the_schedule_holds_anneals_and_ends_at_none():
    schedule = PrivilegeSchedule(grasp_assist=0.8, hold_steps=100, anneal_steps=200)
    assert [schedule.strength(s) for s in (0, 99, 100, 200, 299, 300, 10_000)] == [0.8, 0.8, 0.8, 0.4, 0.0, 0.0, 0.0]
    assert PrivilegeSchedule(1.0, 50, 0).strength(50) == 0.0 and PrivilegeSchedule().strength(0) == 0.0


def test_the_trainer_tells_the_collecting_envs_each_change_and_never_the_evaluation_env(tmp_path):
    PrivilegedPointGoal.made.clear()
    evaluation = PrivilegedPointGoal()
    specs = {"obs/state": ObsSpec((2,), "float32")}
    config = OnlineConfig(total_steps=80, seed_steps=20, batch_size=8, eval_every=0, eval_episodes=2,
                          video_episodes=0, checkpoint_every=0, log_every=40, normalize_obs=False, progress_bar=False,
                          privilege=PrivilegeSchedule(grasp_assist=1.0, hold_steps=20, anneal_steps=40))
    trainer = OnlineTrainer(sac.build(specs, 1, {"hidden_dim": 16}, 0), PrivilegedPointGoal, lambda: evaluation,
                            config, tmp_path, Logger(tmp_path, tensorboard=False), ReplayBuffer(specs, 1, 100))
    trainer.run()
    collecting = [e for e in PrivilegedPointGoal.made if e is not evaluation]
    assert len(collecting) == 1
    told = collecting[0].told
    assert told[0] == 1.0 and told[-1] == 0.0 and len(told) == 41  # 1.0, then each 0.025 step rounded, to none
    assert all(a > b for a, b in zip(told, told[1:]))
    assert evaluation.told == []
    with open(tmp_path / "metrics" / "train.csv", newline="") as f:
        assert [float(r["privilege"]) for r in csv.DictReader(f)] == [0.5, 0.0]


def test_an_actor_sets_the_strength_it_is_sent():
    import functools

    import sim
    from robot_rl.distributed.actors import EnvActor

    make_env = functools.partial(sim.load, "stack", "panda", "none", cameras=[])
    agent = functools.partial(sac.build, {"obs/state": ObsSpec((24,), "float32")}, 7, {"hidden_dim": 16}, 0)
    actor = EnvActor(0, make_env, agent, ["obs/state"], None, "dense", seed=0)
    assert actor.ready() is None
    env = actor.collector.envs.envs[0]
    chunk = actor.run(3, None, -1, True, privilege=0.6)
    assert env.assist.strength == 0.6 and chunk.steps == 3
    actor.run(2, None, -1, True)
    assert env.assist.strength == 0.0
    actor.close()


TINY = ["task=stack", "algo=sac", "train.total_steps=120", "train.num_envs=1", "algo.batch_size=32", "algo.seed_steps=40",
        "algo.agent.hidden_dim=32", "train.eval_every=0", "train.eval_episodes=1", "train.video_episodes=0",
        "train.checkpoint_every=60", "train.log_every=30", "baseline.bc=false", "logger=csv",
        "logger.progress_bar=false"]


def test_train_cli_anneals_the_assist_and_evaluates_without_it(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "privilege.grasp_assist=1.0", "privilege.hold_steps=30",
                 "privilege.anneal_steps=60", f"run={run}"]) == 0
    with open(run / "metrics" / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["env_steps"]), float(r["privilege"])) for r in rows] == [(30, 1.0), (60, 0.5), (90, 0.0), (120, 0.0)]
    assert (run / "policy" / "policy.onnx").exists()


@pytest.mark.parametrize("extra, words", [
    (["privilege.grasp_assist=1.5"], "<= 1"),
    (["privilege.grasp_assist=1", "privilege.hold_steps=100", "privilege.anneal_steps=20"], "finish training without"),
    (["privilege.grasp_assist=1", "algo=iql", "data=missing.zarr"], "is offline"),
    (["privilege.grasp_assist=1", "env=ros", "ros.sim=true"], "a real arm"),
])
def test_a_curriculum_that_cannot_end_without_help_is_refused_in_one_sentence(tmp_path, capsys, extra, words):
    assert main(["train", "task=stack", "train.total_steps=50", *extra, f"run={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and not (tmp_path / "run").exists()
