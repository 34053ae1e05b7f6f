"""Headless rendering with a fast profile for learning and a pretty one for videos.

One renderer kind per process: everything here goes through ``mujoco.Renderer`` (never
dm_control's ``physics.render``), because mixing the two on one thread silently returned
wrong images on this machine.
"""

from __future__ import annotations

import atexit
import os
import queue
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

PROFILES = ("fast", "pretty")

_live_renderers: "weakref.WeakSet[FrameRenderer]" = weakref.WeakSet()


@dataclass(frozen=True)
class RenderConfig:
    """Image size and visual profile. ``fast`` turns off shadows, reflections, skybox and MSAA."""

    height: int = 84
    width: int = 84
    profile: str = "fast"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"render profile {self.profile!r} is unknown; expected one of {PROFILES}.")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"render size {self.height}x{self.width} must be positive.")


def prepare_model(model: mujoco.MjModel, config: RenderConfig) -> None:
    """Size the offscreen buffer for ``config`` and set multisampling for its profile."""
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), config.width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), config.height)
    model.vis.quality.offsamples = 0 if config.profile == "fast" else 4
    if config.profile == "fast":
        # On a software rasteriser small frames cost per triangle, not per pixel: coarser
        # capsules and cylinders made 84 px front frames 1.4-3.4x faster for ~0.6% changed pixels.
        model.vis.quality.numslices = 12
        model.vis.quality.numstacks = 8


def render_on_calling_thread() -> None:
    """Ask Mesa's software rasteriser (llvmpipe, what EGL is without a GPU) to draw on the
    calling thread, unless the user set ``LP_NUM_THREADS``; no effect on a GPU. Call before the
    first renderer of the process. Training renders small frames while a learner (and the
    learned reward's scorer) want the cores: two lift steps with front and wrist cameras took
    2.07 ms at 64 px and 2.31 ms at 84 px on the calling thread against 2.57 / 2.45 ms with a
    worker thread per core (2 cores), and its threads then compete with the learner. Large
    frames draw faster with the workers (480 px: 8.7 ms wall, 12.3 ms CPU, against 11.5 ms on
    one thread), so recording keeps the default."""
    os.environ.setdefault("LP_NUM_THREADS", "0")


class FrameRenderer:
    """Renders named cameras of one model to uint8 HWC arrays."""

    def __init__(self, model: mujoco.MjModel, config: RenderConfig) -> None:
        prepare_model(model, config)
        self.config = config
        self._renderer = mujoco.Renderer(model, config.height, config.width)
        _register_exit_hook()
        fast = config.profile == "fast"
        flags = self._renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = not fast
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = not fast
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = not fast
        _live_renderers.add(self)

    def render(self, data: mujoco.MjData, camera: str | int) -> np.ndarray:
        """One frame from ``camera`` (name or id) as a fresh uint8 array of shape (H, W, 3)."""
        self._renderer.update_scene(data, camera=camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        """Free the GL context now rather than at interpreter exit (EGL dislikes late frees)."""
        if self._renderer is not None:
            renderer, self._renderer = self._renderer, None
            renderer.close()

    def upload_textures(self, model: mujoco.MjModel) -> None:
        """Send changed texture data (domain randomisation) to the GL context."""
        if self._renderer is None:
            return
        self._renderer._gl_context.make_current()  # noqa: SLF001 - mujoco exposes no public hook
        for texture_id in range(model.ntex):
            mujoco.mjr_uploadTexture(model, self._renderer._mjr_context, texture_id)  # noqa: SLF001

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - GL teardown during interpreter exit
            pass


_exit_hook_registered = False


def _register_exit_hook() -> None:
    """Close live renderers at exit *before* mujoco's EGL hook terminates the display.

    atexit runs hooks last-in first-out and mujoco registers its hook when the first context
    is made, so ours must be registered after that, not at import time.
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_close_all)
        _exit_hook_registered = True


def _close_all() -> None:
    for renderer in list(_live_renderers):
        renderer.close()


class FrameWorker:
    """Renders cameras on a thread of its own, from copies of the physics state.

    MuJoCo releases the GIL while it draws and reads pixels, so frames drawn here cost the
    calling thread only a copy of ``MjData`` (~10 us): a learner on the same thread goes on
    while llvmpipe draws on the other core. ``submit`` returns a future of ``{camera: frame}``,
    each frame what :class:`FrameRenderer` draws from the same state (same model, same
    config, its own GL context, made and used only on the worker thread). The worker reads
    the model while it draws: the owner calls :meth:`drain` before changing the model and
    :meth:`upload_textures` after changing textures. At most ``slots`` states wait to be drawn;
    ``submit`` waits for a free one (the caller cannot run ahead without bound)."""

    def __init__(self, model: mujoco.MjModel, config: RenderConfig, cameras: dict[str, int], slots: int = 8) -> None:
        prepare_model(model, config)  # every model write on the calling thread
        self.model, self.config, self.cameras = model, config, dict(cameras)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="frames")
        self._renderer: FrameRenderer | None = None  # made on the worker thread, used only there
        self._free: queue.SimpleQueue[mujoco.MjData] = queue.SimpleQueue()
        for _ in range(max(1, int(slots))):
            self._free.put(mujoco.MjData(model))
        _live_workers.add(self)
        _register_worker_exit_hook()

    def submit(self, data: mujoco.MjData):
        """A future of this state's frames (``data`` may change as soon as this returns)."""
        state = self._free.get()
        mujoco.mj_copyData(state, self.model, data)
        return self._pool.submit(self._render, state)

    def drain(self) -> None:
        """Wait until every submitted state is drawn."""
        self._pool.submit(int).result()

    def upload_textures(self) -> None:
        """Send the model's (randomised) textures to the worker's GL context, before later frames."""
        self._pool.submit(lambda: self._renderer and self._renderer.upload_textures(self.model)).result()

    def close(self) -> None:
        """Free the GL context on the thread that owns it, then stop the thread."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            pool.submit(self._close_renderer).result()
        finally:
            pool.shutdown(wait=True)

    def _render(self, state: mujoco.MjData) -> dict[str, np.ndarray]:
        try:
            if self._renderer is None:
                self._renderer = FrameRenderer(self.model, self.config)
                _live_renderers.discard(self._renderer)  # closed here, never from the main thread
            return {camera: self._renderer.render(state, camera_id) for camera, camera_id in self.cameras.items()}
        finally:
            self._free.put(state)

    def _close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter exit
            pass


_live_workers: "weakref.WeakSet[FrameWorker]" = weakref.WeakSet()
_worker_hook_registered = False


def _register_worker_exit_hook() -> None:
    """Close live workers at exit while their threads still take work: ``threading``'s exit
    hooks run before ``concurrent.futures`` stops its pools (``atexit`` hooks run after)."""
    global _worker_hook_registered
    if not _worker_hook_registered:
        import threading

        register = getattr(threading, "_register_atexit", None)  # CPython >= 3.9
        (register or atexit.register)(_close_workers)
        _worker_hook_registered = True


def _close_workers() -> None:
    for worker in list(_live_workers):
        try:
            worker.close()
        except Exception:  # noqa: BLE001 - nothing useful to do at interpreter exit
            pass
