"""The training env, composed from the train config: picklable env factories (for simulator
subprocesses) rendering only the cameras the policy and reward need, and the facts a policy
artifact records about the env. A student (algo.obs=student) sees its own keys plus the
instruction's embedding, over one or several tasks (robot_rl.train.teachers.student_env)."""

from __future__ import annotations

from typing import Callable


def sim_env_kwargs(cfg) -> dict:
    """``cfg.env`` as ``sim.load``'s keywords (``backend`` chooses sim or robot; it is not one of them)."""
    from omegaconf import OmegaConf

    kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    kwargs.pop("backend", None)
    return kwargs


class Envs:
    """Env factories (picklable, for subprocesses) and the facts a policy needs about the env."""

    def __init__(self, cfg, task: str, reward=None) -> None:
        from functools import partial

        import sim
        from robot_rl.train.build import obs_specs_of, policy_obs_keys

        env_kwargs = sim_env_kwargs(cfg)
        reward_cameras = list(reward.cameras) if reward is not None else []
        if reward is not None and reward.image_size:  # a reward model scores frames at the size it was trained on
            env_kwargs["image_size"] = int(reward.image_size)
        read = set(env_kwargs.get("cameras", [])) | set(cfg.algo.cameras)  # cameras an observation needs
        env_kwargs["cameras"] = sorted(read | set(reward_cameras))
        self.env_kwargs, self.robot = env_kwargs, str(cfg.robot.name)
        self.tasks = [str(t) for t in cfg.get("tasks") or [task]]
        self.make = partial(sim.load, task, cfg.robot.name, cfg.randomize.name, **env_kwargs)
        # Cameras only the learned reward reads: the online collector's env may draw them on its
        # render thread (see collecting)
        only_reward = sorted(set(reward_cameras) - read)
        self.deferred = (partial(sim.load, task, cfg.robot.name, cfg.randomize.name,
                                 **{**env_kwargs, "cameras": sorted(read), "deferred_cameras": only_reward})
                         if only_reward and str(cfg.algo.obs) != "student" else None)
        probe = self.make()
        try:
            self.spec, self.controller = probe.env_spec, probe.config.controller
            self.episode_steps = int(getattr(probe.unwrapped, "episode_steps", 0) or 0)
            if str(cfg.algo.obs) == "student":  # the embedder loads its model on first use, not here
                from robot_rl.train.instructed import EmbedInstruction

                self.spec = EmbedInstruction(probe).env_spec
        finally:
            probe.close()
        self.kind, self.reward_cameras = str(cfg.env.reward), reward_cameras
        self.terminate_on_success = bool(cfg.env.terminate_on_success)
        self.obs_keys = policy_obs_keys(str(cfg.algo.obs), list(cfg.algo.cameras), self.spec.observations)
        self.obs_specs = obs_specs_of(self.spec.observations, self.obs_keys)
        self.action_dim = int(self.spec.action.shape[0])
        if str(cfg.algo.obs) == "student":
            self.make = self.student(str(cfg.randomize.name))

    def collecting(self, num_envs: int, reward) -> Callable:
        """The env factory the online collector steps. With one env (in this process) and a
        learned reward scored beside the learner (``reward.score.background_every``), the
        cameras only the reward reads are drawn on the env's render thread while the learner
        updates (sim.env.EnvConfig.deferred_cameras), the same frames as drawn in the step.
        Subprocess envs draw in their own processes already."""
        if self.deferred is None or num_envs != 1 or not int(getattr(reward, "background_every", 0) or 0):
            return self.make
        return self.deferred

    def student(self, randomize, teacher: str | None = None, tasks: list[str] | None = None, start: int = 0):
        """A picklable factory of the student's env over ``tasks`` (default: all) under the
        ``randomize`` preset (or presets, in turn), labelled by ``teacher``."""
        from functools import partial

        from robot_rl.train.teachers import student_env

        presets = randomize if isinstance(randomize, str) else tuple(str(r) for r in randomize)
        return partial(student_env, tuple(tasks or self.tasks), self.robot, presets, self.env_kwargs,
                       tuple(self.obs_keys), teacher, start=start)

    def facts(self, task: str, obs_keys: list[str] | None = None) -> dict:
        """The artifact's facts about the env; ``obs_keys`` the policy's inputs where they are not
        the sim's (a policy learned on a robot)."""
        from dataclasses import asdict

        from robot_rl.contracts import OBS_INSTRUCTION
        from robot_rl.policy.instruction import encoder_facts

        scaling = {k: v for k, v in asdict(self.controller).items() if k != "action_space"}
        obs_keys = self.obs_keys if obs_keys is None else obs_keys
        state_policy = not any(k.startswith("obs/images/") for k in obs_keys)
        handling = ("not an input: obs/object lists the instructed (target) object first" if state_policy else
                    "not an input: the policy was trained on the env's sampled instructions without seeing them")
        instruction = {"conditioned": False, "handling": handling}
        if OBS_INSTRUCTION in obs_keys:
            instruction = {"conditioned": True, "key": OBS_INSTRUCTION, "encoder": encoder_facts(),
                           "handling": "the instruction text, embedded by robot_rl.policy.instruction, is input obs/instruction"}
        return {"action_dim": self.action_dim, "action_space": self.spec.action_space, "robot": self.spec.robot,
                "joint_names": list(self.spec.joint_names), "control_rate_hz": self.spec.control_rate_hz,
                "task": task, "scaling": scaling, "instruction": instruction,
                "state_layout": {k: list(v) for k, v in self.spec.state_layout.items()}}
