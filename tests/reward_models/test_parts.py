"""The pieces on their own: labels, instructions and paraphrases, metrics, augmentation,
pretrained backbone loading and the fusion's dependence on the instruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reward_models import RewardModelError
from reward_models.augment import colour_jitter, random_roll_zoom, random_shift
from reward_models.config import ModelConfig, RewardConfig, from_dict
from reward_models.instructions import InstructionBank, parse
from reward_models.metrics import auroc, calibration_error, spearman
from reward_models.model import Readout, RewardNet
from reward_models.targets import data_targets, resolve_mode, sim_targets
from reward_models.vision import ResNet18Encoder, load_backbone_weights
from robot_rl.config import choices, load_group
from sim.registry import instruction_tables

TABLES = instruction_tables()  # the task files are the one source (tests/sim/test_registry.py)
TEMPLATES = TABLES["templates"]


def test_counterfactuals_are_mismatched_and_never_implied():
    bank = InstructionBank(**TABLES)
    rng = np.random.default_rng(0)
    out = dict(bank.counterfactuals("stack", "stack the red cube on the blue cube", rng=rng))
    assert out["colour"] == "stack the green cube on the blue cube"
    assert out["object"] == "stack the blue cube on the red cube"
    assert "red" in out["task"] and not out["task"].startswith(("reach", "lift", "move the gripper", "touch"))
    for _ in range(30):  # reach is implied by every other task, so it is never their counterfactual
        kinds = dict(bank.counterfactuals("lift", "lift the green cube", rng=rng))
        assert not any(kinds["task"].startswith(t.split("{")[0]) for t in TEMPLATES["reach"])
        assert kinds["colour"] in ("lift the red cube", "lift the blue cube")
    assert parse("stack", "put the blue block on top of the red block").colours == ("blue", "red")
    assert bank.paraphrase("stack", "stack the red cube on the blue cube", 0) == "place the red cube onto the blue cube"


def test_sim_and_data_labels():
    lab = sim_targets(np.array([0.1, 0.5, 1.0, 1.0]), np.array([0, 0, 1, 1], bool))
    assert lab.first_success == 2 and lab.success.tolist() == [0, 0, 1, 1]
    lab = data_targets(10, True, success_tail=0.2)
    assert lab.first_success == 8 and lab.success.sum() == 2
    assert lab.progress[0] == 0 and lab.progress[8] == 1 and np.all(np.diff(lab.progress) >= 0)
    lab = data_targets(5, False, success_tail=0.2)
    assert lab.first_success is None and lab.success.sum() == 0 and lab.progress_weight.sum() == 0
    assert resolve_mode("auto", ["info/progress", "info/success"], "x") == "sim"
    assert resolve_mode("auto", ["obs/images/front"], "x") == "data"
    with pytest.raises(RewardModelError, match="labels=sim cannot be used"):
        resolve_mode("sim", ["obs/images/front"], "store.zarr")


def test_metrics_match_hand_computed_values():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert auroc(np.array([0.1, 0.2]), np.array([1, 1])) is None
    assert spearman(np.arange(5), np.array([1, 2, 3, 5, 4])) == pytest.approx(0.9)
    assert spearman(np.arange(5), np.ones(5)) == 0.0
    assert calibration_error(np.array([0.95, 0.95, 0.05, 0.05]), np.array([1, 1, 0, 0])) == pytest.approx(0.05)


def test_augmentations_shift_and_jitter_but_keep_range_and_hue_order():
    x = torch.zeros(8, 3, 16, 16)
    x[:, 0, 6:10, 6:10] = 1.0  # a red square
    shifted = random_shift(x, 3, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    assert torch.allclose(shifted.sum((1, 2, 3)), x.sum((1, 2, 3)))  # the square moved, whole
    jittered = colour_jitter(x, 0.3, 0.3, 0.3, torch.Generator().manual_seed(0))
    assert jittered.min() >= 0 and jittered.max() <= 1
    square = jittered[:, :, 8, 8]
    assert (square[:, 0] > square[:, 1]).all() and (square[:, 0] > square[:, 2]).all()  # still red


def test_white_balance_tints_each_image_by_a_gain_per_channel_and_keeps_red_red():
    x = torch.full((16, 3, 8, 8), 0.5)
    x[:, :, 2:6, 2:6] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)  # a red square on grey
    assert torch.equal(colour_jitter(x, 0.0, 0.0, 0.0, torch.Generator().manual_seed(0)), x)  # off: untouched
    tinted = colour_jitter(x, 0.0, 0.0, 0.0, torch.Generator().manual_seed(0), white_balance=0.2)
    gains = tinted[:, :, 0, 0] / 0.5  # the grey background shows each image's gains
    assert ((gains > 0.8 - 1e-6) & (gains < 1.2 + 1e-6)).all()
    assert (gains.std(dim=1) > 0.01).sum() >= 12  # the channels get their own gains: a tint
    assert torch.allclose(tinted[:, :, 3, 3], x[:, :, 3, 3] * gains)  # one gain per channel for the whole image
    square = tinted[:, :, 3, 3]
    assert (square[:, 0] > 2 * square[:, 1:].max(dim=1).values).all()  # still red


def test_roll_and_zoom_turn_and_scale_the_image_about_its_centre():
    x = torch.zeros(8, 3, 32, 32)
    x[:, 0, 15:17, 4:28] = 1.0  # a red horizontal bar through the centre
    assert torch.equal(random_roll_zoom(x, 0.0, 0.0), x)
    turned = random_roll_zoom(x, 20.0, 0.2, torch.Generator().manual_seed(0))
    assert turned.shape == x.shape and turned.min() >= 0 and turned.max() <= 1
    assert turned[:, 0, 15:17, 15:17].mean() > 0.5  # the centre stays where it was
    rows = (turned[:, 0] > 0.5).any(dim=2).sum(dim=1)
    assert (rows > 2).sum() >= 6  # most bars are no longer horizontal
    assert turned[:, 1:].abs().max() == 0  # colours are not mixed


def test_pretrained_backbone_loads_from_a_local_torchvision_style_file(tmp_path):
    source = ResNet18Encoder()
    state = {**source.state_dict(), "fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    torch.save(state, tmp_path / "resnet18.pth")
    config = ModelConfig(backbone="resnet18", pretrained_path=str(tmp_path / "resnet18.pth"), freeze_backbone=True,
                         cameras=("front",), image_size=64, text_queries=0)
    net = RewardNet(config)
    loaded = net.cameras["front"].encoder
    assert torch.equal(loaded.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(RewardModelError, match="do not fit"):
        load_backbone_weights(ResNet18Encoder(), tmp_path / "bad.pth")
    with pytest.raises(RewardModelError, match="do not exist"):
        load_backbone_weights(ResNet18Encoder(), tmp_path / "missing.pth")


@pytest.mark.parametrize("fusion", ["film", "xattn", "concat"])
def test_every_fusion_reads_the_instruction(fusion):
    torch.manual_seed(0)
    net = RewardNet(ModelConfig(fusion=fusion, image_size=32, channels=(8, 16), hidden=32, text_queries=2)).eval()
    if fusion == "film":  # FiLM starts as the identity; give it something to say
        for branch in net.cameras.values():
            torch.nn.init.normal_(branch.film.weight, std=0.1)
    images = {c: torch.rand(2, 3, 32, 32) for c in ("front", "wrist")}
    pooled, tokens, mask = torch.randn(2, 384), torch.randn(2, 24, 384), torch.ones(2, 24, dtype=torch.bool)
    a = net(images, pooled, tokens, mask)
    b = net(images, pooled.flip(0), tokens.flip(0), mask)
    assert a.shape == (2, 2) and not torch.allclose(a, b)


@pytest.mark.parametrize("readout", ["pool", "keypoints"])
def test_pose_tolerant_readouts_see_what_a_flattened_map_sees_only_in_place(readout):
    """pool and keypoints read a feature map the same wherever its content sits (pool exactly;
    keypoints' coordinates move with it), where flatten reads other weights for each position."""
    torch.manual_seed(0)
    c, side = 4, 6
    fmap = torch.zeros(1, c, side, side)
    fmap[0, :, 1, 1] = torch.arange(1.0, c + 1)
    moved = torch.roll(fmap, shifts=(3, 2), dims=(2, 3))
    read = Readout(readout, c, side, side)
    a, b = read(fmap), read(moved)
    assert a.shape == (1, read.out_dim) == b.shape
    if readout == "pool":
        assert torch.equal(a, b)
    else:  # the same means, keypoints moved by (+2, +3) cells right and down: 2/(side-1) each in [-1, 1]
        assert torch.allclose(a[:, 2 * c:], b[:, 2 * c:])
        shift = (b[:, :2 * c] - a[:, :2 * c]).view(c, 2)
        assert (shift[:, 0] > 0).all() and (shift[:, 1] > 0).all() and (shift[:, 1] > shift[:, 0]).all()
    flat = Readout("flatten", c, side, side)
    assert not torch.equal(flat(fmap), flat(moved))


def test_the_default_readout_keeps_the_weight_names_models_were_saved_with():
    """Models saved before readouts existed had ``out = Sequential(Flatten, Linear, ReLU)``; the
    flatten readout sits where Flatten was, so their files load unchanged."""
    branch = RewardNet(ModelConfig(image_size=32, channels=(8, 16), hidden=32, text_queries=2)).cameras["front"]
    assert {k for k in branch.state_dict() if k.startswith("out.")} == {"out.1.weight", "out.1.bias"}
    assert branch.out[1].in_features == 16 * 8 * 8


def test_config_refuses_unknown_fields_and_choices():
    with pytest.raises(RewardModelError, match="reward.model has unknown field fusoin"):
        from_dict(RewardConfig, {"model": {"fusoin": "film"}})
    with pytest.raises(RewardModelError, match="model.fusion 'glue' is unknown"):
        ModelConfig(fusion="glue")
    with pytest.raises(RewardModelError, match="reward.model.readout 'avg' is unknown; choose one of flatten, pool"):
        ModelConfig(readout="avg")


def test_rephrasing_uses_training_templates_of_the_same_task_and_colours():
    bank = InstructionBank(**TABLES)
    rng = np.random.default_rng(0)
    seen = {bank.rephrase("stack", "stack the red cube on the blue cube", rng) for _ in range(40)}
    assert seen == {t.format(color="red", base="blue") for t in TEMPLATES["stack"]}
    lift = {t.format(color="green") for t in TEMPLATES["lift"]}
    assert set(bank.all_rephrasings("lift", "lift the green cube")) == lift


@pytest.mark.parametrize("name", choices("reward"))
def test_every_reward_config_in_the_group_parses_and_names_its_builder(name):
    from reward_models.config import ShapingConfig
    from robot_rl.config import locate
    from robot_rl.train.rewards import build_reward

    block = load_group("reward", name)
    assert block["kind"] in ("vlm", "gt") and callable(locate(block["_target_"], "reward._target_"))
    if block["kind"] == "gt":
        reward = build_reward(block, "sparse")
        assert reward.cameras == () and reward.agreement is None
        episode = {"info/progress": np.array([0.2, 0.9]), "info/success": np.array([False, True]), "reward": np.zeros(2)}
        np.testing.assert_array_equal(reward.label_episode(episode, ""), [0.0, 1.0])
    if block["kind"] == "vlm":
        assert from_dict(ShapingConfig, block["shaping"]).gamma < 1.0
        config = from_dict(RewardConfig, {k: block[k] for k in ("model", "augment", "negatives", "train", "shaping")})
        assert config.model.cameras == ("front", "wrist") and config.model.fusion == "film"


def test_the_vlm_builder_scores_with_the_groups_stride_batch_and_shaping(trained):
    from robot_rl.train.rewards import build_reward

    block = {**load_group("reward", "vlm"), "model_path": str(trained), "device": "cpu",
             "score": {"stride": 3, "batch_size": 5}, "shaping": {"gamma": 0.5}}
    reward = build_reward(block, "dense")
    assert (reward.stride, reward.batch_size, reward.reward_fn.gamma) == (3, 5, 0.5)
    assert reward.cameras == ("front", "wrist") and reward.image_size == 32


def test_cli_refuses_training_the_ground_truth_reward(capsys):
    from robot_rl.cli.main import main

    assert main(["reward", "train", "reward=gt", "data=x.zarr"]) == 2
    assert "not a learned model" in capsys.readouterr().err


def test_bfloat16_reward_updates_follow_float32_ones_with_float32_weights():
    """``reward.train.update_dtype=bfloat16`` (the pipeline's ``auto`` on AVX-512 BF16 CPUs): the
    same updates as float32 to bfloat16's resolution, weights and losses still float32."""
    from types import SimpleNamespace

    from reward_models.text import TextEncoder
    from reward_models.train import update

    rng = np.random.default_rng(0)
    data = SimpleNamespace(frames={c: rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for c in ("front", "wrist")})
    batch = SimpleNamespace(rows=np.arange(8), instructions=["lift the red cube"] * 4 + ["lift the blue cube"] * 4,
                            progress=rng.random(8).astype(np.float32), success=(rng.random(8) > 0.5).astype(np.float32),
                            progress_weight=np.ones(8, np.float32))
    text, losses = TextEncoder(), {}
    for dtype in ("float32", "bfloat16"):
        config = from_dict(RewardConfig, {"model": {"image_size": 32, "channels": [8, 16], "hidden": 32},
                                          "train": {"update_dtype": dtype}})
        torch.manual_seed(0)
        net = RewardNet(config.model)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        losses[dtype] = [update(net, opt, batch, data, text, config, torch.Generator().manual_seed(i))["losses/total"]
                         for i in range(3)]
        assert all(p.dtype == torch.float32 for p in net.parameters())
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.03)
    assert losses["bfloat16"] != losses["float32"]  # bfloat16 did run: not bit for bit the same
    assert losses["float32"][-1] < losses["float32"][0]  # the batch is being learned
    with pytest.raises(RewardModelError, match="reward.train.update_dtype=float16 is not valid"):
        from_dict(RewardConfig, {"train": {"update_dtype": "float16"}})
