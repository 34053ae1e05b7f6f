"""Preferences: a reward model labels segment pairs, a new model learns from them by
Bradley–Terry, and the learned reward ranks segments as the labels did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import reward_models
from reward_models import RewardModelError
from reward_models.config import RewardConfig, from_dict
from reward_models.dataset import load_dataset
from reward_models.instructions import InstructionBank
from reward_models.model import RewardNet
from reward_models.preferences import Pair, load_pairs, save_pairs, train_preferences
from reward_models.rl_reward import load_learned_reward
from reward_models.scoring import RewardModel
from robot_rl.cli.main import main
from sim.registry import instruction_tables

TINY = ["reward.model.image_size=32", "reward.model.channels=[8,16,32]", "reward.model.hidden=64",
        "reward.model.text_queries=2", "reward.augment.shift_px=2", "reward.train.batch_size=32"]


def _config(steps: int) -> RewardConfig:
    block = {"model": {"image_size": 32, "channels": [8, 16, 32], "hidden": 64, "text_queries": 2},
             "augment": {"shift_px": 2, "generated": 8},
             "train": {"steps": steps, "batch_size": 32, "eval_every": steps, "lr": 0.002}}
    return from_dict(RewardConfig, block)


def _truth_pairs(data, n: int, segment: int, seed: int = 0) -> list[Pair]:
    """Pairs labelled by sim ground truth: progress at each segment's last step."""
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        a, b = rng.choice(len(data.episodes), 2, replace=False)
        ea, eb = data.episodes[a], data.episodes[b]
        sa, sb = (int(rng.integers(0, e.stop - e.start - segment + 1)) for e in (ea, eb))
        pa, pb = data.progress[ea.start + sa + segment - 1], data.progress[eb.start + sb + segment - 1]
        if abs(pa - pb) > 0.05:
            out.append(Pair((ea.store, ea.index, sa), (eb.store, eb.index, sb), float(pa > pb)))
    return out


def _agreement(model, data, pairs: list[Pair], segment: int) -> float:
    index = {(e.store, e.index): e for e in data.episodes}
    hits = []
    for p in pairs:
        returns = []
        for where in (p.a, p.b):
            ep = index[(where[0], where[1])]
            rows = np.arange(ep.start + where[2], ep.start + where[2] + segment)
            progress, _ = model.score({c: f[rows] for c, f in data.frames.items()}, [ep.instruction] * segment)
            returns.append(float(np.log(progress / (1 - progress + 1e-6) + 1e-6).sum()))
        hits.append((returns[0] > returns[1]) == (p.label > 0.5))
    return float(np.mean(hits))


def test_bradley_terry_learns_to_rank_segments_as_the_labels_do(stores):
    data = load_dataset([stores["train_clean"], stores["train_fail"]], ("front", "wrist"), 32)
    pairs = _truth_pairs(data, 120, segment=6)
    bank = InstructionBank(**instruction_tables())
    trained = train_preferences(data, pairs, 6, bank, _config(250), progress_bar=False)
    torch.manual_seed(0)
    untrained = RewardModel(RewardNet(trained.config), trained.text)
    before, after = _agreement(untrained, data, pairs[:60], 6), _agreement(trained, data, pairs[:60], 6)
    assert after >= 0.9 and after >= before + 0.15, (before, after)  # a random network ranks 0.77 of these
    assert trained.meta["train"]["labels"] == "preferences" and trained.meta["train"]["pairs"] == 120


def test_label_cli_writes_pairs_that_train_cli_reads(trained, stores, tmp_path, capsys):
    prefs = tmp_path / "prefs é.json"
    data = f"data=[{stores['train_clean']},{stores['train_fail']}]"
    assert main(["reward", "label", f"model={trained}", data, f"preferences={prefs}", "pairs=40", "segment=6"]) == 0
    assert "segment pairs of 6 steps" in capsys.readouterr().out
    pairs, segment, stored = load_pairs(prefs)
    assert 0 < len(pairs) <= 40 and segment == 6 and {p.label for p in pairs} <= {0.0, 1.0}
    assert set(stored) <= {str(stores["train_clean"]), str(stores["train_fail"])}
    # the labeller's choices follow sim ground truth more often than not (it is a trained model)
    frames = load_dataset([stores["train_clean"], stores["train_fail"]], ("front", "wrist"), 32)
    index = {(e.store, e.index): e for e in frames.episodes}
    truth = [frames.progress[index[(p.a[0], p.a[1])].start + p.a[2] + 5] > frames.progress[
        index[(p.b[0], p.b[1])].start + p.b[2] + 5] for p in pairs]
    assert np.mean([t == (p.label > 0.5) for t, p in zip(truth, pairs)]) >= 0.7
    out = tmp_path / "pref_model"
    assert main(["reward", "train", data, f"preferences={prefs}", f"out={out}", *TINY, "reward.train.steps=20"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["labels"] == "preferences"
    model = reward_models.load(out, device="cpu")
    assert model.score({c: np.zeros((2, 32, 32, 3), np.uint8) for c in ("front", "wrist")}, "lift the red cube")[0].shape == (2,)
    # such a model has no success output: the RL reward takes it as dense progress only
    with pytest.raises(ValueError, match="learned from preferences"):
        load_learned_reward(str(out), "dense", "cpu", shaping={})
    assert load_learned_reward(str(out), "dense", "cpu", shaping=None) is not None


def test_bad_preference_files_are_one_sentence(tmp_path, stores, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RewardModelError, match="could not be read as a preference file"):
        load_pairs(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(RewardModelError, match="is not a preference file"):
        load_pairs(bad)
    path = save_pairs(tmp_path / "p.json", [Pair((str(stores["train_clean"]), 99, 0), (str(stores["train_clean"]), 0, 0),
                                                1.0)], 4, "m")
    assert main(["reward", "train", f"data={stores['train_clean']}", f"preferences={path}", *TINY,
                 "reward.train.steps=2"]) == 2
    assert "which the data= stores do not hold" in capsys.readouterr().err
    assert main(["reward", "train", f"data={stores['train_clean']}", "reward.train.labels=preferences"]) == 2
    assert "needs preferences=FILE" in capsys.readouterr().err
    assert main(["reward", "train", f"data={stores['train_clean']}", f"preferences={tmp_path / 'none.json'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
