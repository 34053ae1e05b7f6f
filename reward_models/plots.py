"""The report card's picture: for a few held-out episodes, frames along the episode beside
the predicted progress and success curves against ground truth. Drawn with OpenCV only."""

from __future__ import annotations

import numpy as np

from reward_models.dataset import RewardDataset

THUMB_PX, PLOT_W, THUMBS = 96, 360, 5
GT, PRED, SUCC, THRESH = (150, 150, 150), (40, 90, 220), (235, 140, 30), (200, 200, 200)


def pick_episodes(data: RewardDataset, per_task: int = 1) -> list[int]:
    """One successful and one failed episode per task (when there are such)."""
    chosen = []
    for task in data.tasks:
        ids = [i for i, e in enumerate(data.episodes) if e.task == task]
        chosen += [i for i in ids if data.episodes[i].success][:per_task]
        chosen += [i for i in ids if not data.episodes[i].success][:1]
    return chosen


def report_image(data: RewardDataset, progress: np.ndarray, success: np.ndarray, instructions: list[str],
                 episodes: list[int], camera: str | None = None) -> np.ndarray:
    """Rows of ``THUMBS`` frames plus a curve panel, one row per episode (uint8 RGB)."""
    camera = camera or next(iter(data.frames))
    rows = [_row(data, e, progress, success, instructions[e], camera) for e in episodes]
    legend = _legend(rows[0].shape[1] if rows else 600)
    return np.concatenate([legend, *rows], axis=0)


def _row(data: RewardDataset, e: int, progress: np.ndarray, success: np.ndarray, text: str, camera: str) -> np.ndarray:
    import cv2

    ep = data.episodes[e]
    picks = np.linspace(ep.start, ep.stop - 1, THUMBS).astype(int)
    thumbs = []
    for r in picks:
        im = cv2.resize(data.frames[camera][r], (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_NEAREST).copy()
        cv2.putText(im, f"t={data.time[r]}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(im, f"p={progress[r]:.2f}", (3, THUMB_PX - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1,
                    cv2.LINE_AA)
        thumbs.append(im)
    sl = slice(ep.start, ep.stop)
    plot = _plot(data.time[sl], data.progress[sl], progress[sl], success[sl], data.success[sl])
    body = np.concatenate([*thumbs, plot], axis=1)
    title = np.full((18, body.shape[1], 3), 255, np.uint8)
    outcome = "success" if ep.success else "failure"
    cv2.putText(title, f"{ep.task} ({outcome}): \"{text}\"", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.pad(np.concatenate([title, body], axis=0), ((0, 6), (0, 0), (0, 0)), constant_values=255)


def _plot(t: np.ndarray, gt: np.ndarray, pred: np.ndarray, succ: np.ndarray, gt_succ: np.ndarray) -> np.ndarray:
    import cv2

    h, w, m = THUMB_PX, PLOT_W, 8
    im = np.full((h, w, 3), 255, np.uint8)
    x = m + (t - t.min()) / max(t.max() - t.min(), 1) * (w - 2 * m)

    def pts(v: np.ndarray) -> np.ndarray:
        return np.stack([x, m + (1 - np.clip(v, 0, 1)) * (h - 2 * m)], 1).astype(np.int32)

    cv2.rectangle(im, (m, m), (w - m, h - m), (220, 220, 220), 1)
    cv2.line(im, (m, h // 2), (w - m, h // 2), THRESH, 1)
    for xi in x[gt_succ > 0.5].astype(int):
        cv2.line(im, (xi, h - m), (xi, h - m + 4), (60, 170, 60), 1)
    cv2.polylines(im, [pts(gt)], False, GT, 2, cv2.LINE_AA)
    cv2.polylines(im, [pts(succ)], False, SUCC, 1, cv2.LINE_AA)
    cv2.polylines(im, [pts(pred)], False, PRED, 2, cv2.LINE_AA)
    return im


def _legend(width: int) -> np.ndarray:
    import cv2

    im = np.full((22, width, 3), 255, np.uint8)
    items = [("ground-truth progress", GT), ("predicted progress", PRED), ("predicted success", SUCC),
             ("true success (ticks)", (60, 170, 60))]
    x = 6
    for label, colour in items:
        cv2.line(im, (x, 11), (x + 18, 11), colour, 3)
        cv2.putText(im, label, (x + 22, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 30 + 8 * len(label)
    return im
