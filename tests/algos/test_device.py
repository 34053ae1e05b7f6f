"""``device=auto|cpu|cuda``: every agent trains where it is put, acts in numpy, exports a CPU
policy, and moves across devices through checkpoints; a CUDA request without a GPU is one
sentence. The CUDA cases run where torch sees a GPU and are skipped elsewhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robot_rl.algos import bc, drq, iql, sac
from robot_rl.algos.networks import ObsSpec
from robot_rl.cli.main import main
from robot_rl.config import ConfigError
from robot_rl.train.checkpoint import load_checkpoint, restore_agent, save_checkpoint
from robot_rl.train.device import resolve_device
from robot_rl.train.replay import ReplayBuffer, batch_to_torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
PIXELS = {"obs/images/front": ObsSpec((24, 24, 3), "uint8"), "obs/state": ObsSpec((5,), "float32")}
SMALL = {"hidden_dim": 32, "depth": 1, "feature_dim": 8}
BUILDERS = {"sac": sac.build, "drq": drq.build, "iql": iql.build, "bc": bc.build}


def make_agent(algo: str, device: str):
    params = dict(SMALL, **({"augment_pad": 2} if algo in ("iql", "bc") else {}))
    return BUILDERS[algo](PIXELS, 3, params, seed=0).to(resolve_device(device))


def filled_buffer(n: int = 64) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(PIXELS, 3, n, seed=0)
    obs = {"obs/images/front": rng.integers(0, 256, (n, 24, 24, 3), dtype=np.uint8),
           "obs/state": rng.standard_normal((n, 5)).astype(np.float32)}
    buffer.add(obs, rng.uniform(-1, 1, (n, 3)).astype(np.float32), rng.standard_normal(n).astype(np.float32),
               obs, np.zeros(n, bool))
    return buffer


def test_resolve_device_refuses_in_one_sentence():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match=r"device=tpu is not valid; expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match=r"device=cuda:99 was asked for"):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", ["sac", "drq", "iql", "bc"])
def test_agent_trains_on_its_device_and_exports_a_cpu_policy(algo, device):
    agent = make_agent(algo, device)
    buffer = filled_buffer()
    agent.fit_normalization({"obs/state": buffer.observations("obs/state")})
    before = agent.policy()(*[torch.as_tensor(buffer.observations(k)[:4]) for k in agent.obs_keys])
    for _ in range(3):
        metrics = agent.update(batch_to_torch(buffer.sample(16), agent.device))
    assert all(np.isfinite(v) for v in metrics.values())
    params = [p for part in ("encoder", agent.POLICY_HEAD) for p in getattr(agent, part).parameters()]
    assert {p.device.type for p in params} == {torch.device(device).type}
    action = agent.act({k: buffer.observations(k)[:2] for k in agent.obs_keys}, deterministic=True)
    assert isinstance(action, np.ndarray) and action.shape == (2, 3) and np.all(np.abs(action) <= 1)
    policy = agent.policy()
    assert {p.device.type for p in policy.parameters()} == {"cpu"}
    after = policy(*[torch.as_tensor(buffer.observations(k)[:4]) for k in agent.obs_keys])
    assert not torch.allclose(before, after)  # the updates changed the policy that export sees


@pytest.mark.parametrize("source, target", [("cpu", "cpu"), pytest.param("cuda", "cpu", marks=CUDA),
                                            pytest.param("cpu", "cuda", marks=CUDA)])
def test_checkpoint_resumes_on_another_device(tmp_path, source, target):
    """A run checkpointed on one device continues on another: same actions, and it keeps learning."""
    agent = make_agent("drq", source)
    buffer = filled_buffer()
    for _ in range(3):
        agent.update(batch_to_torch(buffer.sample(16), agent.device))
    save_checkpoint(tmp_path, {"step": 3, "agent": agent.state_dict()})
    resumed = make_agent("drq", target)
    restore_agent(resumed, load_checkpoint(tmp_path), tmp_path)
    obs = {k: buffer.observations(k)[:4] for k in agent.obs_keys}
    np.testing.assert_allclose(resumed.act(obs, deterministic=True), agent.act(obs, deterministic=True), atol=1e-4)
    assert resumed.num_updates == 3 and resumed.log_alpha.device.type == torch.device(target).type
    metrics = resumed.update(batch_to_torch(buffer.sample(16), resumed.device))  # optimiser moments on its device
    assert resumed.num_updates == 4 and np.isfinite(metrics["losses/critic"])


TINY = ["task=reach", "algo=sac", "train.total_steps=60", "algo.seed_steps=30", "train.num_envs=1",
        "algo.batch_size=16", "train.eval_every=0", "train.eval_episodes=1", "train.video_episodes=0",
        "train.checkpoint_every=0", "train.log_every=30", "logger=csv", "logger.progress_bar=false",
        "algo.agent.hidden_dim=32"]


@pytest.mark.parametrize("device", ["auto", pytest.param("cuda", marks=CUDA)])
def test_train_cli_runs_and_reports_its_device(tmp_path, device):
    run = tmp_path / "run"
    assert main(["train", *TINY, f"device={device}", f"run={run}"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["device"] == str(resolve_device(device)) and f"device: {report['device']}" in \
        (run / "report.md").read_text()
    assert (run / "policy" / "policy.onnx").exists() and (run / "policy" / "policy.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: device=cuda is valid here")
@pytest.mark.parametrize("argv", [["train", "task=reach", "device=cuda"], ["train", "task=reach", "device=cuda:1"],
                                  ["reward", "train", "data=nowhere.zarr", "device=cuda"],
                                  ["reward", "train", "data=nowhere.zarr", "reward.device=cuda"]])
def test_cuda_without_a_gpu_is_one_sentence(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA GPU" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_bad_device_value_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "task=reach", "device=gpu"]) == 2
    assert "device=gpu is not valid" in capsys.readouterr().err


@pytest.fixture(scope="module")
def reach_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_store") / "reach.zarr"
    assert main(["record", "task=reach", "device=scripted", "episodes=2", f"out={out}", "env.cameras=[front]",
                 "env.image_size=32", "seed=5"]) == 0
    return out


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_reward_model_trains_on_the_device_asked_for(tmp_path, reach_store, device):
    out = tmp_path / "vlm"
    assert main(["reward", "train", f"data={reach_store}", f"out={out}", f"device={device}",
                 "reward.model.cameras=[front]", "reward.model.image_size=32", "reward.model.channels=[8,16]",
                 "reward.model.hidden=32", "reward.model.text_queries=0", "reward.train.steps=3",
                 "reward.train.batch_size=8", "reward.train.eval_every=3", "reward.train.val_fraction=0"]) == 0
    header = json.loads((out / "config.json").read_text())
    assert header["train"]["device"] == device
    from reward_models.io import load

    model = load(out, device="cpu")  # trained on the GPU, scored on the CPU (and the other way round)
    progress, success = model.score(np.zeros((2, 32, 32, 3), np.uint8), "reach the red cube")
    assert progress.shape == (2,) and np.all((progress >= 0) & (progress <= 1))
