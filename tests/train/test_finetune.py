"""Sim-to-real fine-tuning starts from the student: SAC's deterministic action is the student's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from robot_rl.algos.bc import build as build_bc
from robot_rl.algos.sac import build as build_sac
from robot_rl.config import ConfigError, load_group
from robot_rl.train.checkpoint import save_checkpoint
from robot_rl.algos.networks import to_torch
from robot_rl.train.finetune import Student, load_student, sac_params, start_from_student

SIZE, STATE = 16, 22


def _student_run(tmp_path, kind: str = "distill"):
    """A distillation run directory as `robot-rl train algo=distill` leaves it (config + checkpoint),
    with a student whose normalisation is fitted and whose weights are not the initial ones."""
    run = tmp_path / "student"
    algo = OmegaConf.create(load_group("algo", "distill"))
    algo.cameras, algo.kind = ["front", "wrist"], kind
    run.mkdir()
    OmegaConf.save(OmegaConf.create({"algo": algo, "env": {"image_size": SIZE}}), run / "config.yaml")
    params = {k: v for k, v in OmegaConf.to_container(algo.agent).items() if k != "aux_weight"}
    params.update(hidden_dim=32, feature_dim=8)
    bc = build_bc(Student(run, ["front", "wrist"], SIZE, {}, {}, {}).obs_specs(STATE), 5, dict(params), seed=3)
    rng = np.random.default_rng(0)
    bc.fit_normalization({"obs/state": rng.normal(2.0, 3.0, (64, STATE)), "obs/instruction": rng.normal(0, 0.1, (64, 384))})
    with torch.no_grad():
        for p in bc.head.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_checkpoint(run / "checkpoints", {"step": 1, "agent": bc.state_dict(), "wall_s": 0.0})
    return run, bc


def _obs(n: int = 4):
    rng = np.random.default_rng(1)
    return {"obs/images/front": rng.integers(0, 255, (n, SIZE, SIZE, 3), dtype=np.uint8),
            "obs/images/wrist": rng.integers(0, 255, (n, SIZE, SIZE, 3), dtype=np.uint8),
            "obs/state": rng.normal(2.0, 3.0, (n, STATE)).astype(np.float32),
            "obs/instruction": rng.normal(0, 0.1, (n, 384)).astype(np.float32)}


def test_the_finetuned_agent_starts_as_the_student(tmp_path):
    """SAC on the student's features (proprioception, the instruction, its image features computed
    once per step) acts as the student does, exactly, before its first update."""
    from robot_rl.policy.instruction import InstructionEmbedder
    from robot_rl.train.finetune import StudentFeatures
    from robot_rl.train.robot_io import OBS_FEATURES

    run, bc = _student_run(tmp_path)
    student = load_student(run)
    assert student.cameras == ["front", "wrist"] and student.image_size == SIZE
    sac_agent = OmegaConf.to_container(OmegaConf.create(load_group("algo", "sac")).agent)
    params = sac_params(student, sac_agent)
    specs = student.feature_specs(STATE)
    assert list(specs) == ["obs/state", "obs/instruction", OBS_FEATURES] and specs[OBS_FEATURES].shape == (8,)
    sac = build_sac(specs, 5, dict(params), seed=9)
    obs = _obs()
    texts = ["touch the red cube", "move to the blue block", "touch the red cube", "reach the green cube"]
    obs["obs/instruction"] = InstructionEmbedder().many(texts)
    robot_obs = {"obs/state": obs["obs/state"], "obs/instruction": obs["obs/instruction"],
                 OBS_FEATURES: StudentFeatures(student)({k: obs[k] for k in student.obs_specs(STATE) if "images" in k},
                                                        texts)}
    assert not np.allclose(sac.act(robot_obs, deterministic=True), bc.act(obs, deterministic=True), atol=1e-3)
    start_from_student(sac, student, init_std=0.2)
    np.testing.assert_allclose(sac.act(robot_obs, deterministic=True), bc.act(obs, deterministic=True), atol=1e-5)
    features = sac.encoder(to_torch(robot_obs, "cpu"))
    torch.testing.assert_close(features, sac.encoder_target(to_torch(robot_obs, "cpu")))
    _, log_std = sac.actor.distribution(features)
    np.testing.assert_allclose(log_std.exp().detach().numpy(), 0.2, rtol=1e-4)
    assert not list(sac.encoder.parameters())  # nothing in the student's perception trains on the robot


def test_student_features_are_its_frozen_perception_once_per_step(tmp_path):
    """ros.student_actor=false: the student's pixel trunk (conditioned on the instruction's
    embedding) and projection as a frozen encoder of the robot's frames, what its encoder computes."""
    from robot_rl.policy.instruction import InstructionEmbedder
    from robot_rl.train.finetune import StudentFeatures

    run, bc = _student_run(tmp_path)
    features = StudentFeatures(load_student(run))
    assert features.cameras == ("front", "wrist") and features.image_size == SIZE and features.dim == 8
    obs = _obs(3)
    texts = ["touch the red cube", "touch the red cube", "move to the blue block"]
    obs["obs/instruction"] = InstructionEmbedder().many(texts)
    out = features({k: obs[k] for k in ("obs/images/front", "obs/images/wrist")}, texts)
    assert out.shape == (3, 8) and out.dtype == np.float32
    whole = bc.encoder(to_torch(obs, "cpu")).detach().numpy()  # [normalised state, instruction, projected pixels]
    np.testing.assert_allclose(out, whole[:, -8:], atol=1e-5)
    assert not np.allclose(out[0], out[2], atol=1e-3)  # the instruction conditions what it sees


def test_student_features_read_larger_frames_resized_to_the_students_size(tmp_path):
    """A robot that renders for a 2x larger reward model: the student sees those frames resized by
    area (what the policy node does with a camera of another size), not a size it never trained on."""
    from robot_rl.data.cache import resize_frames
    from robot_rl.train.finetune import StudentFeatures

    run, _ = _student_run(tmp_path)
    features = StudentFeatures(load_student(run))
    rng = np.random.default_rng(2)
    big = {k: rng.integers(0, 255, (2, 2 * SIZE, 2 * SIZE, 3), dtype=np.uint8) for k in ("obs/images/front", "obs/images/wrist")}
    small = {k: resize_frames(v, (SIZE, SIZE)) for k, v in big.items()}
    texts = ["touch the red cube"] * 2
    np.testing.assert_allclose(features(big, texts), features(small, texts), atol=1e-6)


def test_the_robot_env_renders_the_reward_models_size_and_a_student_may_read_smaller():
    from types import SimpleNamespace

    from robot_rl.cli.compose.robot import _image_size

    cfg = OmegaConf.create({"env": {"image_size": 84}})
    reward, student = SimpleNamespace(image_size=64), SimpleNamespace(image_size=32)
    assert _image_size(cfg, reward, student, student=True) == 64
    assert _image_size(cfg, None, student, student=True) == 32
    assert _image_size(cfg, reward, reward, student=False) == 64 and _image_size(cfg, None, None, False) == 84
    with pytest.raises(ConfigError, match="a student may only read it or smaller"):
        _image_size(cfg, SimpleNamespace(image_size=32), SimpleNamespace(image_size=64), student=True)
    with pytest.raises(ConfigError, match="different image sizes"):
        _image_size(cfg, reward, SimpleNamespace(image_size=32), student=False)


def test_a_run_that_is_not_a_student_is_refused(tmp_path):
    run, _ = _student_run(tmp_path, kind="online")
    with pytest.raises(ConfigError, match="expected a distilled student"):
        load_student(run)
    with pytest.raises(ConfigError, match="not a distillation run directory"):
        load_student(tmp_path / "nothing")


def test_a_policy_on_the_students_perception_exports_with_it_inside(tmp_path):
    """What a robot run on ros.encoder=student exports reads what a robot gives (the cameras as
    uint8, the joints, the instruction's embedding), is deployable, and acts as the agent did on
    the features computed once per step, in ONNX as in torch."""
    from robot_rl.policy import load_runtime
    from robot_rl.policy.instruction import InstructionEmbedder
    from robot_rl.train.artifact import export_agent
    from robot_rl.train.finetune import StudentFeatures, deployable_policy
    from robot_rl.train.robot_io import OBS_FEATURES

    run, _ = _student_run(tmp_path)
    student = load_student(run)
    specs = student.feature_specs(STATE)
    sac_agent = OmegaConf.to_container(OmegaConf.create(load_group("algo", "sac")).agent)
    sac = build_sac(specs, 5, dict(sac_params(student, sac_agent)), seed=9)
    start_from_student(sac, student)
    with torch.no_grad():  # an agent that has learned since: not the student any more
        for p in sac.actor.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    perception = StudentFeatures(student)
    module, inputs = deployable_policy(sac, specs, perception)
    assert set(inputs) == {"obs/images/front", "obs/images/wrist", "obs/state", "obs/instruction"}
    joints = [f"panda_joint{i}" for i in range(1, 8)]
    env = {"action_dim": 5, "action_space": "ee_delta", "robot": "panda", "joint_names": joints,
           "control_rate_hz": 20.0, "task": "reach", "scaling": {"max_pos_step_m": 0.04},
           "instruction": {"conditioned": True, "key": "obs/instruction"}}
    out = export_agent(sac, inputs, tmp_path / "policy", env, {"algo": "sac"}, module=module)
    text = (out / "policy.yaml").read_text()
    assert "deployable: true" in text and OBS_FEATURES not in text
    obs = _obs(3)
    texts = ["touch the red cube", "move to the blue block", "reach the green cube"]
    obs["obs/instruction"] = InstructionEmbedder().many(texts)
    robot_obs = {"obs/state": obs["obs/state"], "obs/instruction": obs["obs/instruction"],
                 OBS_FEATURES: perception({k: obs[k] for k in obs if "images" in k}, texts)}
    expected = sac.act(robot_obs, deterministic=True)
    for backend in ("onnxruntime-cpu", "torch-cpu"):
        runtime = load_runtime(out, backend)
        np.testing.assert_allclose(runtime.act_batch(obs), expected, atol=1e-4)


def test_a_policy_on_the_reward_models_features_says_why_it_has_no_artifact(tmp_path):
    """ros.encoder=reward: that policy's perception reads the instruction's tokens, which no
    artifact input carries; the run says so in one sentence instead of exporting half a policy."""
    from reward_models.rl_reward import FrozenFeatures
    from robot_rl.cli.compose.robot import _export

    encode = FrozenFeatures.__new__(FrozenFeatures)  # only its kind matters here
    policy, why = _export(None, None, None, {}, encode, tmp_path, "reach")
    assert policy is None and "ros.encoder=student" in why and not (tmp_path / "policy").exists()
