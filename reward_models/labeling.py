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
                replace_reward: bool = False, model_name: str = "", actors: int = 0, ray_config=None) -> dict:
    """Score every committed episode of the store at ``path`` and write the keys above; with
    ``actors`` the scoring is spread over that many Ray actors (:func:`score_on_ray`)."""
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
        values = _score_store(store, model, shaper, stride, actors, ray_config, model_name)
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


def _score_store(store: EpisodeStore, model: RewardModel, shaper: RewardShaper, stride: int,
                 actors: int = 0, ray_config=None, model_dir: str = "") -> dict[str, np.ndarray]:
    out = {k: np.zeros(store.num_steps, np.float32) for k in (VLM_PROGRESS, VLM_SUCCESS, VLM_REWARD)}
    infos = store.episode_infos()
    for i, info in enumerate(infos):
        if not info.instruction.strip():
            raise RewardModelError(f"episode {i} of {store.path} has no instruction for the reward model to read.")
    episodes = list(range(len(infos)))
    if actors and len(episodes) > 1:
        if not model_dir:
            raise RewardModelError("labelling on Ray needs the model's directory, for each actor to load it from.")
        scores = score_on_ray(store.path, model_dir, model.batch_size, episodes, stride, actors, ray_config)
    else:
        scores = score_episodes(store, model, episodes, stride)
    finals = []
    for i in episodes:
        sl, (progress, success) = store.episode_slice(i), scores[i]
        out[VLM_PROGRESS][sl], out[VLM_SUCCESS][sl] = progress, success
        out[VLM_REWARD][sl] = episode_rewards(shaper, progress, success)
        finals.append(float(success[-1]))
    return {**out, "final_success": np.array(finals)}


def score_episodes(store: EpisodeStore, model: RewardModel, episodes: list[int],
                   stride: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(progress, success) per step of each of ``episodes``."""
    size, infos, scores = model.config.image_size, store.episode_infos(), {}
    for i in episodes:
        # verify: frames from a corrupt chunk are refused, never scored into labels
        rows = store.read_episode(i, [image_key(c) for c in model.cameras], verify=True)
        frames = {c: resize_frames(rows[image_key(c)], (size, size)) for c in model.cameras}
        scores[i] = model.score_episode(frames, infos[i].instruction, stride)
    return scores


class ScoreActor:
    """A Ray actor scoring episodes of one store with its own copy of the model (``score_on_ray``)."""

    def __init__(self, path: str, model_dir: str, device: str, batch_size: int) -> None:
        import torch

        from reward_models.io import load

        torch.set_num_threads(1)
        self.store = EpisodeStore.open(path, mode="r")
        self.model = load(model_dir, device=device)
        self.model.batch_size = batch_size

    def score(self, episodes: list[int], stride: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return score_episodes(self.store, self.model, episodes, stride)


def score_on_ray(path, model_dir: str, batch_size: int, episodes: list[int], stride: int, actors: int,
                 ray_config=None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Score ``episodes`` across ``actors`` Ray actors (one CPU, or ``ray.job_gpus`` of a GPU, each),
    interleaved so long and short episodes spread evenly. Each actor loads the model from its
    directory and reads the store itself; only the scores travel. Nothing is written here: the
    caller writes every label at once, crash-safe, as for a single process."""
    from robot_rl.distributed.session import RayConfig, ray_session

    config = ray_config or RayConfig(actors=actors)
    with ray_session(config) as ray:
        remote = ray.remote(num_cpus=config.actor_cpus, num_gpus=config.job_gpus)(ScoreActor)
        n = min(actors, len(episodes))
        device = "cuda" if config.job_gpus > 0 else "cpu"
        handles = [remote.remote(str(path), str(model_dir), device, batch_size) for _ in range(n)]
        try:
            parts = ray.get([h.score.remote(episodes[k::n], stride) for k, h in enumerate(handles)])
        finally:
            for handle in handles:
                ray.kill(handle)
    return {i: value for part in parts for i, value in part.items()}
