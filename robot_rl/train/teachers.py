"""Teachers for distillation, and the env a student learns in.

A teacher is privileged: the task's scripted expert (it reads the simulator's scene) or a
trained state policy artifact (it reads ``obs/object``). Either must run beside the env it
labels, so ``TeacherLabels`` wraps the sim env itself and puts the teacher's action for the
observation just returned into ``info["teacher_action"]``. Above it the student sees only its
own keys (``FilterObservation``), several tasks take turns in one env (``TaskCycle``), and the
instruction is embedded (``EmbedInstruction``). ``student_env`` builds that stack; with
``functools.partial`` it is the picklable factory simulator subprocesses need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from robot_rl.contracts import OBS_OBJECT

EXPERT = "expert"
TEACHER_ACTION = "teacher_action"
PRIVILEGED = "privileged"  # info key: the privileged state (obs/object) the teacher saw, an auxiliary target


def resolve_teacher(value: Any) -> str:
    """``expert``, or the policy artifact directory named by ``value`` (an artifact or a run dir
    holding ``policy/``); anything else is refused with one sentence (ValueError)."""
    if value is None or str(value).strip() == "":
        raise ValueError("algo=distill needs a teacher; expected teacher=expert (the task's scripted expert), "
                         "teacher=<policy artifact dir> or teacher=<run dir>.")
    if str(value) == EXPERT:
        return EXPERT
    path = Path(str(value))
    if not path.is_dir():
        raise ValueError(f"teacher={value} is not a directory; expected teacher=expert, a policy artifact "
                         "directory (with policy.yaml) or a `robot-rl train` run directory (with policy/).")
    for where in (path, path / "policy"):
        if (where / "policy.yaml").is_file():
            return str(where)
    raise ValueError(f"teacher={value} holds no policy.yaml (nor policy/policy.yaml); expected a policy artifact "
                     "or the run directory of a finished `robot-rl train` run.")


def check_teacher(teacher: str, tasks: list[str], env_spec) -> None:
    """Refuse (ValueError/ContractError, one sentence) a teacher that cannot label this env:
    an artifact for another robot, action space or task, or one reading inputs the env lacks."""
    if teacher == EXPERT:
        if env_spec.action_space != "ee_delta":
            raise ValueError(f"teacher=expert acts in the ee_delta action space, the env uses {env_spec.action_space}; "
                             "set env.action_space=ee_delta or give a policy artifact as teacher.")
        return
    from robot_rl.policy.spec import ContractError, PolicySpec, check_contract

    if len(tasks) > 1:
        raise ValueError(f"teacher={teacher} is one task's policy; a multi-task student ({', '.join(tasks)}) "
                         "learns from teacher=expert.")
    spec = PolicySpec.load(teacher)
    if spec.action.get("space") != env_spec.action_space:
        raise ContractError(f"teacher {teacher} acts in {spec.action.get('space')}, the env in "
                            f"{env_spec.action_space}; set env.action_space={spec.action.get('space')}.")
    if spec.task and spec.task != tasks[0]:
        raise ContractError(f"teacher {teacher} was trained for task {spec.task}, not {tasks[0]}.")
    check_contract(spec, env_spec.robot, list(env_spec.joint_names), env_spec.observations)


class ExpertTeacher:
    """The task's scripted expert, planning from the live scene."""

    def __init__(self, env: gym.Env) -> None:
        from sim.experts import make_expert

        self.expert = make_expert(env.unwrapped)

    def reset(self) -> None:
        self.expert.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.expert.act()


class ArtifactTeacher:
    """A trained policy artifact on ONNX Runtime's CPU backend (the learner keeps any GPU)."""

    def __init__(self, path: str) -> None:
        from robot_rl.policy.runtime import load_runtime

        self.runtime = load_runtime(path, "onnxruntime-cpu", warmup_runs=1)

    def reset(self) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self.runtime.act(obs).copy()


class TeacherLabels(gym.Wrapper):
    """Adds the teacher's action for the current observation as ``info["teacher_action"]``, and
    the privileged object state it came with (when the env has it) as ``info["privileged"]``."""

    def __init__(self, env: gym.Env, teacher: str) -> None:
        super().__init__(env)
        self.teacher = ExpertTeacher(env) if teacher == EXPERT else ArtifactTeacher(teacher)
        self.teacher_action = np.zeros(env.action_space.shape, np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.teacher.reset()
        return obs, self._label(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._label(obs, info)

    def _label(self, obs: dict[str, np.ndarray], info: dict) -> dict:
        self.teacher_action = np.asarray(self.teacher.act(obs), np.float32).clip(-1, 1)
        info = {**info, TEACHER_ACTION: self.teacher_action.copy()}
        if OBS_OBJECT in obs:
            info[PRIVILEGED] = np.asarray(obs[OBS_OBJECT], np.float32)
        return info


class TaskCycle(gym.Env):
    """Several envs (tasks, or one task under several randomisation presets; same observation and
    action spaces) taking turns, one per episode; ``info["task"]`` names the current task. One
    process thus serves a multi-task student, or collects under several presets."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, makers: list[Callable[[], gym.Env]], names: list[str], start: int = 0) -> None:
        self.envs = [make() for make in makers]
        self.names, self.index = names, (start - 1) % len(makers)
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space
        self.render_mode = "rgb_array"

    @property
    def current(self) -> gym.Env:
        return self.envs[self.index]

    @property
    def env_spec(self):
        return self.current.unwrapped.env_spec

    @property
    def task(self) -> str:
        return self.names[self.index]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.index = (self.index + 1) % len(self.envs)
        obs, info = self.current.reset(seed=seed, options=options)
        return obs, {**info, "task": self.task}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.current.step(action)
        return obs, reward, terminated, truncated, {**info, "task": self.task}

    def render(self):
        return self.current.render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def student_env(tasks: tuple[str, ...], robot: str, randomize: str | tuple[str, ...], env_kwargs: dict,
                keys: tuple[str, ...], teacher: str | None = None, instruction: str | None = None,
                start: int = 0) -> gym.Env:
    """The env a student acts in: ``tasks`` (each under each ``randomize`` preset) taking turns
    per episode from the ``start``-th, observations cut to the student's ``keys`` (besides
    obs/instruction), the instruction embedded (``instruction`` fixes its text), and with
    ``teacher`` the teacher's labels in ``info``."""
    from functools import partial

    from robot_rl.contracts import OBS_INSTRUCTION
    from robot_rl.train.instructed import EmbedInstruction

    own = [k for k in keys if k != OBS_INSTRUCTION]
    presets = [randomize] if isinstance(randomize, str) else list(randomize)
    pairs = [(task, preset) for preset in presets for task in tasks]  # every task before the next preset
    makers = [partial(_one_task, task, robot, preset, env_kwargs, own, teacher) for task, preset in pairs]
    env = makers[0]() if len(makers) == 1 else TaskCycle(makers, [task for task, _ in pairs], start)
    return EmbedInstruction(env, embedder=shared_embedder(), instruction=instruction)


def _one_task(task: str, robot: str, randomize: str, env_kwargs: dict, keys: list[str], teacher: str | None) -> gym.Env:
    import sim
    from robot_rl.policy.instruction import reads_instruction
    from robot_rl.policy.spec import PolicySpec
    from robot_rl.train.instructed import EmbedInstruction

    env = sim.load(task, robot, randomize, **env_kwargs)
    if teacher is not None:
        if teacher != EXPERT and reads_instruction(PolicySpec.load(teacher).obs_keys):  # a student as teacher
            env = EmbedInstruction(env, embedder=shared_embedder())
        env = TeacherLabels(env, teacher)
    return gym.wrappers.FilterObservation(env, keys)


_EMBEDDER = None


def shared_embedder():
    """One instruction embedder per process (its model loads once, on the first text)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        from robot_rl.policy.instruction import InstructionEmbedder

        _EMBEDDER = InstructionEmbedder()
    return _EMBEDDER
