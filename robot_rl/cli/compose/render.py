"""Rendering, composed from the sim verb's config: the env, the scripted expert (or random
actions), and the video and PNG grid written from what the cameras saw."""

from __future__ import annotations

from robot_rl.cli.compose.env import sim_env_kwargs

from pathlib import Path

GRID_TIMES = 4  # frames per camera in the PNG grid, evenly spaced over the episode


def render_one(cfg, task: str, robot: str) -> tuple[Path, Path]:
    """Run the scripted expert (or random actions) and write an mp4 and a PNG grid."""
    import numpy as np

    import sim
    from robot_rl import contracts, media
    from sim.experts import make_expert

    env_kwargs = sim_env_kwargs(cfg)
    env_kwargs.update(image_size=cfg.render.image_size, render_profile=cfg.render.profile)
    env = sim.load(task, robot, cfg.randomize.name, **env_kwargs)
    keys = [contracts.image_key(c) for c in env.config.cameras]
    try:
        obs, info = env.reset(seed=int(cfg.seed))
        expert = make_expert(env) if cfg.render.policy == "expert" else None
        if expert:
            expert.reset()
        steps = [(obs, info)]
        for _ in range(int(cfg.render.steps)):
            obs, _, terminated, truncated, info = env.step(expert.act() if expert else env.action_space.sample())
            steps.append((obs, info))
            if terminated or truncated:
                break
    finally:
        env.close()
    frames = [media.annotate(np.concatenate([o[k] for k in keys], axis=1), _caption(i, info))
              for i, (o, info) in enumerate(steps)]
    out = Path(cfg.out_dir) / "render" / f"{task}_{robot}"
    video = media.write_video(out / "episode.mp4", frames, fps=cfg.env.control_rate_hz)
    picks = np.linspace(0, len(steps) - 1, GRID_TIMES).astype(int)
    grid_png = media.write_png(out / "grid.png", media.grid([[steps[i][0][k] for i in picks] for k in keys]))
    return video, grid_png


def _caption(step: int, info: dict) -> list[str]:
    return [info["instruction"], f"step {step}  progress {info['progress']:.2f}  success {info['success']}"]
