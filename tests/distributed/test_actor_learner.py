"""Actor/learner training on a real local Ray instance: it learns, survives a killed and a hung
actor without losing a committed step, continues after the learner is SIGKILLed, and a sweep
runs its jobs as Ray tasks."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from robot_rl.cli.main import main
from train_process import kill_after_first_checkpoint

pytestmark = pytest.mark.usefixtures("ray_local")

EPISODE_STEPS = 50  # sim/conf/task/reach.yaml: every reach episode ends on its time limit
SMALL = ["task=reach", "algo=sac", "algo.utd=1", "algo.batch_size=128", "algo.agent.hidden_dim=128",
         "train.eval_every=0", "train.video_episodes=0", "train.log_every=250", "baseline.bc=false",
         "logger.progress_bar=false", "logger=csv", "ray.actors=2", "ray.chunk_steps=25"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def env_actor_processes() -> list[int]:
    """PIDs of live Ray env actor workers on this machine (their title is ``ray::EnvActor...``)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::EnvActor"):
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def random_return(episodes: int) -> float:
    """A uniform random policy's mean return on the evaluation's own episodes (seed 10_000)."""
    import sim
    from robot_rl.train.rollouts import run_episodes

    env = sim.load("reach", "panda", "none", cameras=[])
    rng, shape = np.random.default_rng(0), (1, *env.action_space.shape)
    try:
        result = run_episodes(lambda obs: rng.uniform(-1, 1, shape).astype(np.float32), env, episodes, seed=10_000)
    finally:
        env.close()
    return float(np.mean(result.returns))


def test_distributed_sac_learns_and_exports(tmp_path):
    run = tmp_path / "run"
    args = [*SMALL, "train.total_steps=2000", "algo.seed_steps=300", "train.eval_episodes=10", f"run={run}"]
    assert main(["train", *args]) == 0
    report = json.loads((run / "report.json").read_text())
    baseline = random_return(10)
    assert report["eval"]["return"] > 2.5 * baseline, (report["eval"], baseline)
    assert (run / "policy" / "policy.onnx").exists() and (run / "policy" / "policy.yaml").exists()
    assert report["env_steps"] >= 2000 and report["updates"] == report["env_steps"] - 300  # UTD 1 after the seed phase
    ray_rows = read_csv(run / "metrics" / "ray.csv")
    assert float(ray_rows[-1]["policy_lag_mean"]) >= 0 and float(ray_rows[-1]["transfer_kb_per_1k_steps"]) > 0
    for i in (0, 1):
        rows = read_csv(run / "metrics" / f"actor{i}.csv")
        assert float(rows[-1]["env_steps_per_s"]) > 0 and int(rows[-1]["restarts"]) == 0


def test_a_sequence_learner_trains_on_actors(tmp_path):
    """CQN-AS learns from runs of consecutive transitions: the learner samples them from the
    actors' committed episodes, and the actors act with its published coarse-to-fine decoding.
    The actors run a privileged-action curriculum too, told its strength with each chunk."""
    run = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith(("algo=", "algo.utd", "algo.agent", "train.log_every"))]
    assert main(["train", *args, "algo=cqn_as", "algo.agent.hidden_dim=32", "algo.batch_size=32",
                 "train.total_steps=300", "algo.seed_steps=100", "train.eval_episodes=2", "train.log_every=100",
                 "privilege.grasp_assist=1", "privilege.hold_steps=100", "privilege.anneal_steps=100",
                 f"run={run}"]) == 0
    rows = read_csv(run / "metrics" / "train.csv")
    assert int(rows[-1]["env_steps"]) >= 300 and int(rows[-1]["updates"]) > 0
    assert float(rows[0]["privilege"]) == 1.0 and float(rows[-1]["privilege"]) == 0.0
    assert (run / "policy" / "policy.onnx").exists()


def test_killed_and_hung_actors_are_replaced_and_nothing_committed_is_lost(tmp_path, monkeypatch, ray_local):
    """Actor 1's first incarnation hangs in its first env step (found by the timeout); actor 0 is
    ``ray.kill``ed mid-run. Training finishes; the buffer holds exactly the committed steps, in
    whole episodes."""
    from robot_rl.distributed import learner

    seen = {}
    spawn, train_step, close = learner.DistributedTrainer.spawn, learner.DistributedTrainer.train_step, \
        learner.DistributedTrainer.close

    def spawn_hanging_first(self, slot):
        if slot.index == 1 and slot.incarnation == 0:
            make_env = self.actor_spec.make_env

            def hanging():  # defined here, so Ray ships it by value
                env = make_env()
                env.step = lambda action: time.sleep(3600)
                return env

            self.actor_spec.make_env = hanging
            try:
                return spawn(self, slot)
            finally:
                self.actor_spec.make_env = make_env
        return spawn(self, slot)

    def kill_once(self):
        if "killed" not in seen and self.step >= 500:
            seen["killed"] = self.slots[0].pending_steps()
            ray_local.kill(self.slots[0].handle)
        train_step(self)

    def record(self):
        seen.update(step=self.step, size=len(self.buffer), restarts=self.restarts,
                    incarnations=[s.incarnation for s in self.slots])
        close(self)

    monkeypatch.setattr(learner.DistributedTrainer, "spawn", spawn_hanging_first)
    monkeypatch.setattr(learner.DistributedTrainer, "train_step", kill_once)
    monkeypatch.setattr(learner.DistributedTrainer, "close", record)
    run = tmp_path / "run"
    args = [*SMALL, "train.total_steps=1000", "algo.seed_steps=200", "train.eval_episodes=1", "ray.actor_timeout_s=4",
            f"run={run}"]
    assert main(["train", *args]) == 0
    assert "killed" in seen and seen["restarts"] == 2 and seen["incarnations"] == [1, 1]
    assert seen["size"] == seen["step"] >= 1000 and seen["step"] % EPISODE_STEPS == 0
    assert int(read_csv(run / "metrics" / "ray.csv")[-1]["actor_restarts"]) == 2


@pytest.mark.slow  # 25-40 s: two Ray runs; the single-process resume is in the default suite (test_train_cli)
def test_resume_continues_a_distributed_run_killed_with_sigkill(tmp_path):
    run = tmp_path / "killed"
    args = [*SMALL, "train.total_steps=1000", "algo.seed_steps=200", "train.checkpoint_every=300",
            "train.eval_episodes=1", f"run={run}", "ray.num_cpus=2"]
    killed_at = kill_after_first_checkpoint(args, run)
    assert 300 <= killed_at < 1000
    deadline = time.time() + 15  # the learner's death stops its actors (Ray fate-sharing): measured 4 s
    while env_actor_processes() and time.time() < deadline:
        time.sleep(0.5)
    assert not env_actor_processes()
    assert main(["train", *args, "resume=true"]) == 0
    from robot_rl.train.checkpoint import read_checkpoint

    assert read_checkpoint(run / "checkpoints" / "latest.safetensors")["step"] >= 1000
    steps = [int(r["step"]) for r in read_csv(run / "metrics" / "train.csv")]
    assert steps == sorted(set(steps)) and steps[-1] >= 1000


def test_sweep_runs_each_job_as_a_ray_task(tmp_path, capsys):
    args = ["-m", "task=reach", "seed=0,1", "algo=sac", "train.total_steps=150", "algo.seed_steps=100",
            "algo.batch_size=32", "algo.agent.hidden_dim=32", "train.num_envs=1", "train.eval_every=0",
            "train.eval_episodes=1", "train.video_episodes=0", "baseline.bc=false", "logger.progress_bar=false",
            "logger=csv", f"out_dir={tmp_path}", "ray.address=local"]
    assert main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert "sweep: 2 jobs on Ray" in out
    rows = [line for line in out.splitlines() if line.startswith("| seed=")]
    assert [r.split("|")[1].strip() for r in rows] == ["seed=0", "seed=1"]
    for seed in (0, 1):
        (run,) = tmp_path.glob(f"*/reach_sac_s{seed}")
        assert json.loads((run / "report.json").read_text())["seed"] == seed
        assert str(run) in out


def test_ray_keys_are_checked_before_anything_starts(capsys):
    assert main(["train", "task=reach", "ray.actors=-1"]) == 2
    assert "ray.actors" in capsys.readouterr().err
    assert main(["train", "task=reach", "algo=iql", "ray.actors=2", "data=x.zarr"]) == 2
    assert main(["train", "task=reach", "ray.address=not an address", "ray.actors=1"]) == 2
    assert "ray.address" in capsys.readouterr().err


@pytest.mark.slow  # 27 s
def test_dagger_rollouts_on_actors_commit_every_episode_once(tmp_path):
    run = tmp_path / "student"
    args = ["task=reach", "algo=distill", "teacher=expert", "ray.actors=2", "algo.rounds=2", "algo.episodes_per_round=4",
            "algo.updates_per_round=5", "algo.batch_size=16", "env.image_size=32", "train.eval_episodes=1",
            "train.video_episodes=0", "logger=csv", "logger.progress_bar=false", f"run={run}"]
    assert main(["train", *args]) == 0
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(run / "distill.zarr") as store:
        infos = store.episode_infos()
        assert store.validate() == [] and len(infos) == 8
        seeds = [i.seed for i in infos]
        assert len(set(seeds)) == 8  # both actors' shares, none collected twice
        assert {i.extra["executed_by"] for i in infos[4:]} <= {"teacher", "student"}
    assert (run / "policy" / "policy.onnx").exists()


def test_an_actor_that_cannot_start_stops_the_run_in_one_sentence(tmp_path, monkeypatch, capsys):
    from robot_rl.distributed import learner

    spawn = learner.DistributedTrainer.spawn

    def broken_env():
        raise RuntimeError("the camera driver is not connected")

    def spawn_broken(self, slot):
        self.actor_spec.make_env = broken_env
        return spawn(self, slot)

    monkeypatch.setattr(learner.DistributedTrainer, "spawn", spawn_broken)
    args = [*SMALL, "train.total_steps=200", "algo.seed_steps=100", "train.eval_episodes=1", f"run={tmp_path / 'run'}"]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("robot-rl")]  # Ray's raylet may log its own lines
    assert len(ours) == 1 and "env actor" in ours[0] and "could not start" in ours[0] and "camera driver" in ours[0]
    assert "Traceback" not in err


def test_ctrl_c_cancels_every_job_of_a_sweep(tmp_path):
    args = ["-m", "task=reach", "seed=0,1", "algo=sac", "train.total_steps=100000", "train.num_envs=1",
            "train.eval_every=0", "baseline.bc=false", "logger.progress_bar=false", "logger=csv",
            f"out_dir={tmp_path}", "ray.address=local", "ray.num_cpus=2"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    # A user's Ctrl-C reaches a command whose SIGINT is not ignored; a suite started in the
    # background by a non-interactive shell inherits SIGINT ignored, so the child resets it.
    proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli.main", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while len(list(tmp_path.glob("*/reach_sac_s*/metrics"))) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert len(list(tmp_path.glob("*/reach_sac_s*/metrics"))) == 2, "the jobs did not start"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "every job of the sweep was cancelled" in err
    assert not list(tmp_path.glob("*/reach_sac_s*/report.json"))
