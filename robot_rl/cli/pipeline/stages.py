"""The pipeline's stages, each one the stand-alone verb a user would type, with its own outputs.

    demos   robot-rl record ... device=scripted              -> data/*.zarr
    reward  robot-rl reward train ... held_out=[...]          -> reward/ (model, report card)
    train   robot-rl train algo=sac reward=vlm demos=...      -> train/ (the privileged teacher: policy/)
    distill robot-rl train algo=distill teacher=train         -> student/ (cameras + joints + instruction)
    eval    robot-rl eval run=student|train randomize=none|hard -> eval/<preset>/, eval/teacher-<preset>/
    ros     robot-rl eval run=student ros=true                -> ros/results.json (success, latency)
    report  (this package's report module)                    -> summary.md, summary/*.png

Every path lives under one output directory, so a stage can tell whether it is done by
looking, and a redo clears only what that stage writes.
"""

from __future__ import annotations

import importlib
import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from robot_rl.cli.pipeline.budget import stage_overrides
from robot_rl.cli.pipeline.runner import Stage, StageFailed
from robot_rl.config import ConfigError

PRESETS = ("none", "hard")


@dataclass(frozen=True)
class Recording:
    """One scripted recording: ``episodes`` of ``task``'s expert with action noise ``noise``."""

    path: Path
    episodes: int
    noise: float
    seed: int
    task: str


class Layout:
    """Where each artifact of one pipeline run goes."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data, self.reward, self.train = out / "data", out / "reward", out / "train"
        self.policy, self.ros = self.train / "policy", out / "ros"  # the teacher's artifact
        self.student = out / "student"
        self.final = self.student / "policy"  # the pipeline's end product: reads no privileged state
        self.summary_md, self.pictures = out / "summary.md", out / "summary"

    def eval(self, preset: str) -> Path:
        """The student's evaluation under ``preset``."""
        return self.out / "eval" / preset

    def teacher_eval(self, preset: str) -> Path:
        return self.out / "eval" / f"teacher-{preset}"


class PipelineStages:
    """Builds the stage list from the composed pipeline config (``cfg``)."""

    def __init__(self, cfg, layout: Layout) -> None:
        self.cfg, self.at = cfg, layout
        self.task, self.robot, self.seed = str(cfg.task.name), str(cfg.robot.name), int(cfg.seed)
        self.budget = cfg.budget

    # --- what is recorded --------------------------------------------------------------------
    def recordings(self) -> dict[str, list[Recording]]:
        """demos (the expert), reward (noisy experts, and every other reward task's demos and
        noisy experts) and held_out (graded only, every reward task), seeds disjoint."""
        b, base, data, task = self.budget, 1_000_000 * self.seed, self.at.data, self.task
        noisy = [Recording(data / f"noisy_{n:g}.zarr", int(b.reward_data.episodes), float(n), base + 2000 + 1000 * i, task)
                 for i, n in enumerate(b.reward_data.noise)]
        held = [Recording(data / "held_out_expert.zarr", int(b.held_out.clean), 0.0, base + 50_000, task),
                Recording(data / f"held_out_noisy_{float(b.held_out.noise):g}.zarr", int(b.held_out.noisy),
                          float(b.held_out.noise), base + 51_000, task)]
        other = b.reward_other
        for k, name in enumerate(self.reward_tasks()):
            at, seed = data / "tasks" / name, base + 100_000 * (k + 1)
            noisy.append(Recording(at / "demos.zarr", int(other.demos), 0.0, seed + 1000, name))
            noisy += [Recording(at / f"noisy_{n:g}.zarr", int(other.noisy), float(n), seed + 2000 + 1000 * i, name)
                      for i, n in enumerate(b.reward_data.noise)]
            held += [Recording(at / "held_out_expert.zarr", int(other.held_out), 0.0, seed + 50_000, name),
                     Recording(at / f"held_out_noisy_{float(b.held_out.noise):g}.zarr", int(other.held_out),
                               float(b.held_out.noise), seed + 51_000, name)]
        return {"demos": [Recording(data / "demos.zarr", int(b.demos), 0.0, base + 1000, task)],
                "reward": [r for r in noisy if r.episodes > 0], "held_out": [r for r in held if r.episodes > 0]}

    def reward_tasks(self) -> list[str]:
        """The tasks besides the pipeline's own that its reward model learns (``budget.reward_tasks``:
        ``[all]``, ``[own]`` or a list of tasks), so one model's instruction selects the task."""
        from sim.registry import names

        known, raw = names("task"), [str(t).strip() for t in self.budget.reward_tasks]
        wanted = known if "all" in raw else [t for t in raw if t != "own"]
        unknown = [t for t in wanted if t not in known]
        if unknown:
            raise ConfigError(f"budget.reward_tasks=[{','.join(raw)}] names unknown task(s) {', '.join(unknown)}; "
                              f"expected [all], [own], or a list of {', '.join(known)}.")
        return [t for t in wanted if t != self.task]

    def all_recordings(self) -> list[Recording]:
        return [r for group in self.recordings().values() for r in group]

    # --- the stages ----------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        return [
            Stage("demos", f"record scripted {self.task} episodes to Zarr (demos, noisy, held out)", self.run_demos,
                  self.demos_done, lambda forced: remove_paths(*[r.path for r in self.all_recordings()]),
                  lambda: [_command("record", a) for a in self.record_argvs()]),
            Stage("reward", "train the vision-language reward model and grade it on held-out episodes",
                  lambda: _call("reward", self.reward_argv()), self.reward_done, lambda forced: remove_paths(self.at.reward),
                  lambda: [_command("reward", self.reward_argv())]),
            Stage("train", f"SAC on the learned reward + {int(self.budget.demos)} demos (RLPD sampling, "
                           "Q-filtered BC), plain BC beside it",
                  self.run_train, self.train_done, self.clear_train,
                  lambda: [_command("train", self.train_argv(resume=self.resumable(self.at.train)))]),
            Stage("distill", "distil the teacher into a student that sees what a real arm has: cameras, joint "
                             "state, the instruction (DAgger)",
                  self.run_distill, self.distill_done, self.clear_distill,
                  lambda: [_command("train", self.distill_argv(resume=self.resumable(self.at.student)))]),
            Stage("eval", "evaluate student and teacher in sim: nominal and the `hard` randomisation",
                  self.run_eval, self.eval_done,
                  lambda forced: remove_paths(*[p for preset in PRESETS
                                                for p in (self.at.eval(preset), self.at.teacher_eval(preset))]),
                  lambda: [_command("eval", argv) for argv in self.eval_argvs()]),
            Stage("ros", "run the student in the ROS 2 policy node against the sim bridge, images over DDS",
                  lambda: _call("eval", self.ros_argv()), self.ros_done, lambda forced: remove_paths(self.at.ros),
                  lambda: [_command("eval", self.ros_argv())]),
        ]

    # demos
    def record_argvs(self) -> list[list[str]]:
        own = stage_overrides(self.budget.record)
        return [[f"task={r.task}", f"robot={self.robot}", "device=scripted", f"episodes={r.episodes}",
                 f"noise={r.noise:g}", f"seed={r.seed}", f"out={r.path}", *own, "env.cameras=[front,wrist]",
                 "display=off"] for r in self.all_recordings()]

    def run_demos(self) -> None:
        """The recordings, ``budget.record_workers`` at a time (each worker its own process and
        renderer); one at a time in this process when that is 1."""
        argvs, workers = self.record_argvs(), int(self.budget.record_workers)
        if workers <= 1 or len(argvs) <= 1:
            for argv in argvs:
                _call("record", argv)
            return
        logs = self.at.out / "logs"
        names = [str(r.path.relative_to(self.at.data).with_suffix("")).replace("/", "-") for r in self.all_recordings()]
        print(f"  {len(argvs)} recordings, {workers} at a time; each one's messages in {logs}/record-<store>.log")
        _call_many("record", argvs, [logs / f"record-{name}.log" for name in names], workers)

    def demos_done(self) -> bool:
        return all(_store_ok(r.path, r.episodes) for r in self.all_recordings())

    # reward
    def reward_argv(self) -> list[str]:
        groups = self.recordings()
        train = [str(r.path) for r in groups["demos"] + groups["reward"]]
        held = [str(r.path) for r in groups["held_out"]]
        return ["train", f"data=[{','.join(train)}]", f"held_out=[{','.join(held)}]", f"out={self.at.reward}",
                *stage_overrides(self.budget.reward), f"reward.train.seed={self.seed}"]

    def reward_done(self) -> bool:
        files = ("config.json", "model.safetensors", "report.json", "report.png")
        return all((self.at.reward / f).is_file() for f in files) and _json_ok(self.at.reward / "report.json")

    # train
    def train_argv(self, resume: bool = False) -> list[str]:
        argv = [f"task={self.task}", f"robot={self.robot}", "algo=sac", "reward=vlm",
                f"reward.model_path={self.at.reward}", f"demos={self.recordings()['demos'][0].path}",
                f"run={self.at.train}", f"seed={self.seed}", *stage_overrides(self.budget.sac)]
        return argv + (["resume=true"] if resume else [])

    @staticmethod
    def resumable(run: Path) -> bool:
        """A run killed mid-training (Ctrl-C, a crash, a reboot): it has a checkpoint, no report."""
        from robot_rl.train.checkpoint import LATEST

        return (run / "checkpoints" / LATEST).exists() and not (run / "report.json").exists()

    def run_train(self) -> None:
        _call("train", self.train_argv(resume=self._resuming(self.at.train)))

    def _resuming(self, run: Path) -> bool:
        resume = self.resumable(run)
        if resume:
            print(f"  continuing the interrupted run in {run} from its last checkpoint")
        return resume

    def clear_train(self, forced: bool) -> None:
        if forced or not self.resumable(self.at.train):
            remove_paths(self.at.train)  # a finished run being redone, or nothing worth continuing

    def train_done(self) -> bool:
        return _json_ok(self.at.train / "report.json") and (self.at.policy / "policy.yaml").is_file()

    # distill
    def distill_argv(self, resume: bool = False) -> list[str]:
        argv = [f"task={self.task}", f"robot={self.robot}", "algo=distill", f"teacher={self.at.policy}",
                f"run={self.at.student}", f"seed={self.seed}", *stage_overrides(self.budget.distill)]
        return argv + (["resume=true"] if resume else [])

    def run_distill(self) -> None:
        _call("train", self.distill_argv(resume=self._resuming(self.at.student)))

    def clear_distill(self, forced: bool) -> None:
        if forced or not self.resumable(self.at.student):
            remove_paths(self.at.student)

    def distill_done(self) -> bool:
        return _json_ok(self.at.student / "report.json") and (self.at.final / "policy.yaml").is_file()

    # eval: the student (the pipeline's product) and, beside it, its teacher
    def eval_argvs(self) -> list[list[str]]:
        seed = f"seed={1_000_000 * self.seed + 100_000}"
        own = stage_overrides(self.budget.eval)
        return [[f"run={run}", f"randomize={preset}", *own, seed, f"out={out}"] for preset in PRESETS
                for run, out in ((self.at.student, self.at.eval(preset)), (self.at.train, self.at.teacher_eval(preset)))]

    def run_eval(self) -> None:
        for argv in self.eval_argvs():
            _call("eval", argv)

    def eval_done(self) -> bool:
        return all(_json_ok(d / "results.json") for p in PRESETS for d in (self.at.eval(p), self.at.teacher_eval(p)))

    # ros
    def ros_argv(self) -> list[str]:
        return [f"run={self.at.student}", "ros=true", *stage_overrides(self.budget.ros),
                f"seed={1_000_000 * self.seed + 200_000}", f"out={self.at.ros}"]

    def ros_done(self) -> bool:
        return _json_ok(self.at.ros / "results.json")


# --- helpers ---------------------------------------------------------------------------------
def _command(verb: str, argv: list[str]) -> str:
    return "robot-rl " + " ".join([verb, *(shlex.quote(a) for a in argv)])


def _call(verb: str, argv: list[str]) -> None:
    """Run one verb in this process (as the CLI would); a non-zero exit becomes StageFailed."""
    from robot_rl.cli.main import VERBS

    stderr = _LastLine(sys.stderr)
    sys.stderr = stderr
    try:
        code = int(importlib.import_module(VERBS[verb][0]).run(argv) or 0)
    finally:
        sys.stderr = stderr.stream
    if code != 0:
        said = stderr.last.strip() or "see the messages above"
        raise StageFailed(f"`robot-rl {verb}` exited with code {code}: {said}")


def _call_many(verb: str, argvs: list[list[str]], logs: list[Path], workers: int) -> None:
    """:func:`_call` of each argv, ``workers`` at a time in worker processes (spawned: a renderer
    and a torch per process), each one's messages written to its log; the last line each prints
    (what it did) is printed here as it ends. The first failure cancels what has not started,
    lets what is running finish, and is raised (its StageFailed); what finished stays on disk, as
    when the stage runs one at a time."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    logs[0].parent.mkdir(parents=True, exist_ok=True)
    pool = ProcessPoolExecutor(min(workers, len(argvs)), mp_context=multiprocessing.get_context("spawn"))
    failure: BaseException | None = None
    try:
        futures = [pool.submit(_call_logged, verb, argv, log) for argv, log in zip(argvs, logs)]
        for done in as_completed(futures):
            if done.cancelled():
                continue
            if done.exception() is None:
                print(f"  {done.result()}", flush=True)
            elif failure is None:
                failure = done.exception()
                for future in futures:
                    future.cancel()  # those not started yet
    finally:  # Ctrl-C as well: nothing new starts; the running ones finish or stop on their own Ctrl-C
        pool.shutdown(wait=True, cancel_futures=True)
    if failure is not None:
        raise failure


def _call_logged(verb: str, argv: list[str], log: Path) -> str:
    """:func:`_call` with everything it prints going to ``log``; returns its last line."""
    import contextlib

    with log.open("w") as stream:
        last = _LastLine(stream)
        with contextlib.redirect_stdout(last), contextlib.redirect_stderr(last):
            _call(verb, argv)
    return last.last.strip()


class _LastLine:
    """A write-through stream that remembers the last line written to it (the verb's error)."""

    def __init__(self, stream) -> None:
        self.stream, self.last = stream, ""

    def write(self, text: str) -> int:
        lines = [line for line in text.replace("\r", "\n").split("\n") if line.strip()]
        if lines and "%|" not in lines[-1]:  # progress bars are not messages
            self.last = lines[-1]
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def remove_paths(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _json_ok(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def _store_ok(path: Path, episodes: int) -> bool:
    """The store opens, holds ``episodes`` committed episodes, and passes the shallow checks."""
    if not path.exists():
        return False
    from robot_rl.data.store import EpisodeStore

    try:
        with EpisodeStore.open(path) as store:
            return store.num_episodes == episodes and not store.validate()
    except Exception:  # noqa: BLE001 - any unreadable store is simply not done
        return False
