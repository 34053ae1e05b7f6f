"""Writing a reward model's answers into an episode store, for offline RL.

New keys, one value per step: ``info/vlm_progress`` and ``info/vlm_success`` (the model's
probabilities for each row's frame) and ``info/vlm_reward`` (the shaped reward of the
transition from that row to the next; 0 on an episode's last row, which has no next frame: see
:func:`reward_models.shaping.episode_rewards`). Nothing that was
recorded is touched, unless ``replace_reward=True``: then ``reward`` takes ``info/vlm_reward``'s
values so samplers that read ``reward`` use the learned one, and the recorded reward is kept
under ``info/reward_original`` (written once, never overwritten by a later relabel).

Crash safety: the store is held with its writer lock and the keys go in through
:func:`robot_rl.data.columns.add_columns` (each array swapped in atomically, the schema committed
last). Killed at any point, the store reads as before or as after.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from reward_models.config import RewardModelError
from reward_models.dataset import check_rgb
from reward_models.scoring import RewardModel
from reward_models.shaping import RewardShaper, episode_rewards
from robot_rl.contracts import REWARD, image_key
from robot_rl.data.cache import resize_frames
from robot_rl.data.columns import add_columns
from robot_rl.data.episodes import utc_now
from robot_rl.data.format import StoreError
from robot_rl.data.store import EpisodeStore

log = logging.getLogger(__name__)
VLM_PROGRESS, VLM_SUCCESS, VLM_REWARD = "info/vlm_progress", "info/vlm_success", "info/vlm_reward"
REWARD_ORIGINAL = "info/reward_original"


def label_store(path: str | os.PathLike, model: RewardModel, shaper: RewardShaper, stride: int = 1,
                replace_reward: bool = False, model_name: str = "") -> dict:
    """Score every committed episode of the store at ``path`` and write the keys above."""
    try:
        store = EpisodeStore.open(path, mode="a")
    except StoreError as error:
        raise RewardModelError(str(error)) from None
    with store:
        missing = [c for c in model.cameras if image_key(c) not in store.schema]
        if missing:
            raise RewardModelError(f"{store.path} has no {', '.join(image_key(c) for c in missing)} frames, which this "
                                   f"reward model reads (cameras {', '.join(model.cameras)}).")
        check_rgb(store, model.cameras)
        values = _score_store(store, model, shaper, stride)
        finals = values.pop("final_success")
        new = dict(values)
        if replace_reward:
            if REWARD not in store.schema:
                raise RewardModelError(f"{store.path} has no {REWARD} key to replace; label without replace_reward.")
            if store.schema[REWARD].shape != ():
                shape = store.schema[REWARD].shape
                raise RewardModelError(f"{store.path} stores {REWARD} with shape {shape} per step; replace_reward "
                                       "needs a scalar reward, so label without replace_reward.")
            if REWARD_ORIGINAL not in store.schema:  # kept bit for bit, in its recorded dtype
                new[REWARD_ORIGINAL] = store.read_slice(REWARD, 0, store.num_steps)
            new[REWARD] = values[VLM_REWARD]
        provenance = {"model": model_name, "stride": stride, "replaced_reward": replace_reward,
                      "shaping": vars(shaper), "labelled_at": utc_now()}
        extra = {"reward_labels": provenance}
        if REWARD_ORIGINAL in new:
            # The recorded reward must be safe under its own key before ``reward`` is replaced: a kill
            # between the two would otherwise make the next relabel save the learned reward as the original.
            add_columns(store, {REWARD_ORIGINAL: new.pop(REWARD_ORIGINAL)}, extra)
        add_columns(store, {key: array.astype(np.float32) for key, array in new.items()}, extra)
        return {"store": store.path, "episodes": store.num_episodes, "steps": store.num_steps, "keys": sorted(new),
                "mean_final_vlm_success": float(np.mean(finals)) if len(finals) else 0.0}


def _score_store(store: EpisodeStore, model: RewardModel, shaper: RewardShaper, stride: int) -> dict[str, np.ndarray]:
    size = model.config.image_size
    out = {k: np.zeros(store.num_steps, np.float32) for k in (VLM_PROGRESS, VLM_SUCCESS, VLM_REWARD)}
    finals = []
    for i, info in enumerate(store.episode_infos()):
        if not info.instruction.strip():
            raise RewardModelError(f"episode {i} of {store.path} has no instruction for the reward model to read.")
        sl = store.episode_slice(i)
        # verify: frames from a corrupt chunk are refused, never scored into labels
        rows = store.read_episode(i, [image_key(c) for c in model.cameras], verify=True)
        frames = {c: resize_frames(rows[image_key(c)], (size, size)) for c in model.cameras}
        progress, success = model.score_episode(frames, info.instruction, stride)
        out[VLM_PROGRESS][sl], out[VLM_SUCCESS][sl] = progress, success
        out[VLM_REWARD][sl] = episode_rewards(shaper, progress, success)
        finals.append(float(success[-1]))
    return {**out, "final_success": np.array(finals)}
