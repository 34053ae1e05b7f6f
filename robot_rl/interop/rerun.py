"""Episodes as a Rerun recording (``.rrd``): cameras, state, actions, rewards and the
instruction on each episode's own timeline, and ``robot-rl data view`` to open one.

Layout of the file (checked with rerun-sdk 0.41):

- **one recording per episode**, all in one ``.rrd`` under the application id ``robot_rl``, named
  ``<store> episode <i>``: the viewer lists them in its recording panel and each starts at step
  0 on its own time axis (the way LeRobot's ``visualize_dataset`` shows one episode at a time);
  one recording with every episode under an entity prefix would overlay all of them on one
  time axis and fill the screen with a view per episode and camera;
- two timelines on every row: ``step`` (sequence, 0 .. length-1) and ``time`` (seconds,
  ``step / control_rate_hz``; the time panel starts on it, so playback runs at recorded speed);
- the entity path of each value is its store key: ``obs/images/<camera>`` an ``Image`` (raw
  uint8 RGB, or L/RGBA for 1/4 channels, not JPEG: exact and fast, and rerun compresses its
  chunks (LZ4), so at the sizes we record, 84 to 224 px, the file stays near the store's size);
  ``obs/state``, ``obs/object``, ``action``, ``reward`` and every ``info/<name>`` (success,
  progress, the reward models' ``info/vlm_*`` scores) ``Scalars``, one series per dimension,
  named ``<key leaf>[i]`` or by ``extra.names[<key>]`` when the store attributes carry a list
  of the right length; booleans as 0/1;
- static: ``instruction`` (a ``TextDocument``) and ``episode`` (a Markdown ``TextDocument`` with
  task, source, success, seed and length), and the recording properties ``store`` (path,
  robot, control rate, action space) and ``episode``;
- a default blueprint: cameras in one column, a text view and one plot per key in the other.

Each episode is built as whole-episode chunks (``rerun.chunk``, so memory holds one episode)
and written to a hidden file beside ``out``; the ``rerun`` executable of the rerun-sdk wheel
joins them with the blueprint (``rerun rrd route``: copies the messages without decoding them
and writes the footer index). One writer makes one recording per file, and two such files
simply concatenated do not read back. ``out`` appears whole or not at all
(:func:`common.publishing`).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, is_image_key
from robot_rl.data.store import EpisodeStore
from robot_rl.interop import common

EXPORT_OPTIONS = ()  # episodes= is shared by every export
APPLICATION_ID = "robot_rl"
STEP, TIME = "step", "time"
INSTRUCTION, EPISODE = "instruction", "episode"
_COLOR_MODELS = {1: "L", 3: "RGB", 4: "RGBA"}
_JOIN_TIMEOUT_S = 3600


def export_store(store: EpisodeStore, out: str, opts: Any) -> str:
    """Write the chosen episodes (``opts.episodes``, default all) of ``store`` to the ``.rrd`` ``out``."""
    episodes = common.episode_list(store, getattr(opts, "episodes", None))
    path = write_rrd(store, episodes, out)
    size = path.stat().st_size / 2**20
    steps = sum(store.episode_slice(e).stop - store.episode_slice(e).start for e in episodes)
    return (f"wrote {path}: {len(episodes)} episode{'s' if len(episodes) != 1 else ''} ({steps} steps), one Rerun "
            f"recording per episode, {size:.1f} MiB; open it with `rerun {path}`.")


def write_rrd(store: EpisodeStore, episodes: Sequence[int], out: str | os.PathLike) -> Path:
    """Write ``episodes`` of ``store`` as one recording each into the new file ``out``."""
    rr = common.need("rerun", "rerun-sdk", "exporting to Rerun")
    try:
        importlib.import_module("rerun.chunk")  # the chunk API this writer uses
    except ImportError:
        raise StoreError(f"exporting to Rerun needs rerun-sdk 0.41 or newer, but {rr.__version__} is installed; "
                         "upgrade it with `pip install -U rerun-sdk`.") from None
    target = Path(out)
    if target.suffix != ".rrd":
        raise StoreError(f"{target} must end in .rrd (the Rerun viewer recognises recordings by it).")
    if not episodes:
        raise StoreError(f"{store.path} has no episode to export.")
    exe = rerun_executable()
    if exe is None:
        raise StoreError("exporting to Rerun needs the `rerun` executable of rerun-sdk, which was not found; "
                         "reinstall it with `pip install rerun-sdk`.")
    with common.publishing(target) as tmp:
        # beside tmp and named like it, so publishing()'s sweep removes it after a hard kill
        parts = tmp.with_name(f".{target.name}.partial-parts-{os.getpid()}")
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()
        try:
            files = [parts / "blueprint.rbl"]
            _blueprint(store).save(APPLICATION_ID, str(files[0]))
            for index in episodes:
                files.append(parts / f"episode_{index:06d}.rrd")
                _record(rr, store, index, files[-1])
            _route(exe, files, tmp)
        finally:
            shutil.rmtree(parts, ignore_errors=True)
    return target


def _record(rr: Any, store: EpisodeStore, index: int, path: Path) -> None:
    """One episode as one recording, written to ``path`` as whole-episode chunks.

    The chunk API (not a RecordingStream: each of those keeps about 1.5 MB of native memory
    per 100 steps of two 84 px cameras after it is closed, in rerun-sdk 0.41) keeps memory at
    one episode.
    """
    from rerun.chunk import Chunk, LazyChunkStream

    rows = store.read_episode(index, verify=True)
    info = store.episode_info(index)
    attrs = store.store_attrs
    length = info.length
    name = Path(str(store.path).rstrip("/")).name
    where = str(store.path) if "://" in str(store.path) else os.path.abspath(store.path)

    def static(entity: str, columns: Any) -> Chunk:
        return Chunk.from_columns(entity, [], columns)

    chunks = [
        static("/__properties", rr.archetypes.RecordingInfo.columns(name=[f"{name} episode {index}"])),
        Chunk.from_property("store", rr.AnyValues(path=where, robot=attrs.robot,
                                                  control_rate_hz=float(attrs.control_rate_hz),
                                                  action_space=attrs.action_space)),
        Chunk.from_property(EPISODE, rr.AnyValues(index=index, length=length, source=info.source, task=info.task,
                                                  success=bool(info.success), instruction=info.instruction,
                                                  seed=-1 if info.seed is None else int(info.seed))),
        static(INSTRUCTION, rr.TextDocument.columns(text=[info.instruction or "(no instruction)"])),
        static(EPISODE, rr.TextDocument.columns(text=[_summary(store, index, info)], media_type=["text/markdown"])),
    ]
    steps = np.arange(length, dtype=np.int64)
    indexes = [rr.TimeColumn(STEP, sequence=steps), rr.TimeColumn(TIME, duration=steps / float(attrs.control_rate_hz))]
    names = _names(attrs.extra)
    for key, spec in store.schema.items():
        values = rows[key]
        if is_image_key(key):
            h, w, c = spec.shape
            image_format = rr.components.ImageFormat(width=w, height=h, color_model=_COLOR_MODELS[c],
                                                     channel_datatype="U8")
            chunks.append(static(key, rr.Image.columns(format=[image_format])))
            chunks.append(Chunk.from_columns(key, indexes, rr.Image.columns(
                buffer=np.ascontiguousarray(values).reshape(length, -1))))
        else:
            flat = np.asarray(values, dtype=np.float64).reshape(length, -1)
            width = flat.shape[1]
            series = _series_names(key, width, names.get(key))
            chunks.append(static(key, rr.SeriesLines.columns(names=series).partition([width])))
            chunks.append(Chunk.from_columns(key, indexes, rr.Scalars.columns(
                scalars=flat.reshape(-1)).partition([width] * length)))
    recording_id = f"episode_{index:06d}-{uuid.uuid4().hex[:12]}"  # fresh: re-exports never merge in a viewer
    LazyChunkStream.from_iter(chunks).write_rrd(path, application_id=APPLICATION_ID, recording_id=recording_id)


def _names(extra: Mapping[str, Any]) -> dict[str, list[str]]:
    """``extra.names`` as ``{key: [dimension names]}`` when the store attributes carry it."""
    names = extra.get("names") if isinstance(extra, Mapping) else None
    if not isinstance(names, Mapping):
        return {}
    return {str(k): [str(n) for n in v] for k, v in names.items() if isinstance(v, (list, tuple))}


def _series_names(key: str, width: int, given: list[str] | None) -> list[str]:
    if given is not None and len(given) == width:
        return given
    leaf = key.rsplit("/", 1)[-1]
    return [leaf] if width == 1 else [f"{leaf}[{i}]" for i in range(width)]


def _summary(store: EpisodeStore, index: int, info: EpisodeInfo) -> str:
    attrs = store.store_attrs
    lines = [f"# Episode {index}", "", f"**{info.instruction or '(no instruction)'}**", "",
             f"- task: {info.task or '-'}", f"- source: {info.source}",
             f"- success: {'yes' if info.success else 'no'}", f"- steps: {info.length}",
             f"- seed: {'-' if info.seed is None else info.seed}",
             f"- robot: {info.robot or attrs.robot}, {attrs.action_space} actions at {attrs.control_rate_hz:g} Hz"]
    if info.extra:
        lines += [f"- {k}: {v}" for k, v in sorted(info.extra.items())]
    return "\n".join(lines)


def _blueprint(store: EpisodeStore) -> Any:
    import rerun.blueprint as rrb

    cameras = [rrb.Spatial2DView(origin=key, name=key.rsplit("/", 1)[-1]) for key in store.schema if is_image_key(key)]
    plots = [rrb.TimeSeriesView(origin=key, name=key) for key in store.schema if not is_image_key(key)]
    texts = rrb.Horizontal(rrb.TextDocumentView(origin=INSTRUCTION, name=INSTRUCTION),
                           rrb.TextDocumentView(origin=EPISODE, name=EPISODE))
    right = rrb.Vertical(texts, *plots, row_shares=[1] + [2] * len(plots))
    layout = rrb.Horizontal(rrb.Vertical(*cameras), right) if cameras else right
    return rrb.Blueprint(layout, rrb.TimePanel(timeline=TIME), collapse_panels=False)


def rerun_executable() -> str | None:
    """The ``rerun`` viewer/CLI binary shipped in the rerun-sdk wheel (or on PATH)."""
    try:
        import rerun_cli

        bundled = Path(rerun_cli.__file__).with_name("rerun.exe" if sys.platform.startswith("win") else "rerun")
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("rerun")


def _route(exe: str, files: Sequence[Path], out: Path) -> None:
    """Join the blueprint and the recordings into ``out`` with ``rerun rrd route``: it copies the
    messages without decoding them (fast, little memory) and writes the footer index."""
    try:
        done = subprocess.run([exe, "rrd", "route", *map(str, files), "-o", str(out)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=_JOIN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise StoreError(f"`rerun rrd route` did not finish within {_JOIN_TIMEOUT_S} s.") from None
    if done.returncode != 0 or not out.exists():
        reason = _last_line(done.stderr or "") or f"exit {done.returncode}"
        raise StoreError(f"`rerun rrd route` failed ({reason}).")


def _last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a tool's output, without colour codes or a source location."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    if not lines:
        return ""
    line = re.sub(r" at \S+\.rs:\d+:?", "", lines[-1]).removeprefix("Error: ")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def has_display() -> bool:
    """True when a graphical session is there to show a window."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def view(store: str, episode: int, out: str | None = None) -> int:
    """``robot-rl data view STORE episode=N [out=X.rrd]``: write that episode as an ``.rrd`` and open
    it in the Rerun viewer when there is a display; otherwise say how to open it. Returns 0."""
    with EpisodeStore.open(store) as opened:
        episodes = common.episode_list(opened, [episode])
        folder = None
        if out is None:
            folder = Path(tempfile.mkdtemp(prefix="robot_rl_view_"))
            stem = Path(str(opened.path).rstrip("/")).name.removesuffix(".zarr") or "store"
            out = str(folder / f"{stem}_episode_{episode}.rrd")
        try:
            path = write_rrd(opened, episodes, out)
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
    print(f"wrote episode {episode} of {store} to {path}.")
    if not has_display():
        print(f"no display here (DISPLAY and WAYLAND_DISPLAY are unset); open it where one is with `rerun {path}`.")
        return 0
    exe = rerun_executable() or "rerun"  # write_rrd has found it
    # its messages go to a file, not a pipe: the viewer outlives this process
    log = Path(tempfile.gettempdir()) / f"robot_rl_rerun_viewer_{os.getpid()}.log"
    try:
        with open(log, "wb") as sink:
            proc = subprocess.Popen([exe, str(path)], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                    start_new_session=True)
    except OSError as exc:
        print(f"the Rerun viewer could not be started ({exc.strerror or exc}); open it with `rerun {path}`.")
        return 0
    try:  # a viewer that cannot open a window exits at once; one that runs is left running
        code = proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        print(f"opened it in the Rerun viewer (process {proc.pid}; its messages go to {log}).")
        return 0
    reason = _last_line(log.read_text(errors="replace")) or f"exit {code}"
    log.unlink(missing_ok=True)
    print(f"the Rerun viewer closed at once ({reason}); open the file with `rerun {path}`.")
    return 0
