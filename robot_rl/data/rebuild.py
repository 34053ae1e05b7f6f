"""``robot-rl data repair``: rebuild the commit marker from the episode records, keep every intact episode.

Each committed episode is known twice: by its end in ``meta/episode_ends`` and by the
``start``/``end`` its own record in ``meta/episode_info`` repeats. Repair walks both, takes
whichever is consistent with its neighbours, then decodes every row of every episode and
checks it against the checksums recorded at commit. It drops only episodes whose rows are
missing or corrupt, and says which and why.

Crash safety: nothing is deleted before the new commit marker is in place. When only a suffix
of episodes is lost, records are rewritten first, then ``episode_ends``, then the tail is cut;
a kill anywhere leaves a store that the next repair rebuilds the same way. When an episode in
the middle is lost, the intact ones are copied into a hidden sibling store that replaces the
original in one atomic exchange.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_rl.contracts import DATA_GROUP, EPISODE_ENDS, EPISODE_INFO, INFO_SUCCESS
from robot_rl.data import checks
from robot_rl.data.episodes import EpisodeInfo, append_rows
from robot_rl.data.format import StoreError
from robot_rl.data.integrity import array_problems, checks_chunk_files, missing_files, overclaimed, stored_unit
from robot_rl.data.store import EpisodeStore


@dataclass
class Chain:
    """Episodes located from ends and records: ``ends[i]``, ``infos[i]`` (None: rebuild it)."""

    ends: list[int] = field(default_factory=list)
    infos: list[EpisodeInfo | None] = field(default_factory=list)
    unlocated: int = 0  # committed episodes after the last located one
    merged: dict[int, tuple[int, int]] = field(default_factory=dict)  # chain index -> (first, last) original
    origin: list[int] = field(default_factory=list)  # original index of each chain entry


def repair_store(store: EpisodeStore) -> list[str]:
    """Repair ``store`` (open in ``"a"`` mode without checks); one sentence per action taken."""
    shrunk = _correct_overclaimed_shapes(store)
    _refuse_unrepairable(store)
    raw_ends = _read_ends(store)
    texts = _read_records(store)
    limit = max(store.array(key).shape[0] for key in store.schema)
    if raw_ends is None and limit and not any(_parse(t) for t in texts):
        # Without ends and records no boundary is known: cutting the rows as a "tail" would lose them all.
        raise StoreError(f"{store.path} has lost both {EPISODE_ENDS} and every record in {EPISODE_INFO}, so none "
                         f"of its {limit} steps can be placed in an episode; restore meta/ from a backup "
                         "(nothing was changed).")
    chain = locate(raw_ends, [_parse(t) for t in texts], limit)
    if chain.unlocated and not _rows_after(store, chain.ends[-1] if chain.ends else 0):
        chain.unlocated = 0  # invalid entries with no rows behind them: nothing to locate
    store.episode_ends = np.asarray(chain.ends, np.int64)
    bad = _damaged_episodes(store, chain)
    if chain.ends and len(bad) == len(chain.ends):
        # Every episode failing at once is damage to an array's metadata (its chunking, codec or
        # dtype), not to the episodes: dropping them all would destroy rows a person can still recover.
        raise StoreError(f"{store.path}: repair would drop all {len(bad)} episodes (episode 0: {bad[0]}), which "
                         "points at damaged array metadata rather than damaged episodes; restore the store's "
                         "zarr.json files from a backup (nothing was changed).")
    actions = shrunk + _remove_partials(store)
    keep = [i for i in range(len(chain.ends)) if i not in bad]
    infos = [info or _rebuilt_info(store, chain, i, texts) for i, info in enumerate(chain.infos)]
    actions += _describe_plan(chain, raw_ends, texts, bad)
    if keep == list(range(len(keep))):
        actions += _fix_in_place(store, chain.ends[: len(keep)], infos[: len(keep)], texts,
                                 leave_tail=chain.unlocated > 0)
    else:
        from robot_rl.data.tools import replace_in_place

        replace_in_place(store, keep, infos)
        actions.append(f"rewrote the store with the {len(keep)} intact episodes (swapped in atomically).")
    if chain.unlocated:
        actions.append(f"{chain.unlocated} committed episodes after episode {len(chain.ends) - 1} could not be "
                       "located (both their ends and their records are damaged); their rows were left in place "
                       "past the commit marker.")
    return actions


def _rows_after(store: EpisodeStore, end: int) -> bool:
    return any(store.array(key).shape[0] > end for key in store.schema)


def _remove_partials(store: EpisodeStore) -> list[str]:
    temps = checks.partial_files(store.path)
    for temp in temps:
        temp.unlink(missing_ok=True)
    return [f"removed {len(temps)} temporary *.partial files."] if temps else []


def _correct_overclaimed_shapes(store: EpisodeStore) -> list[str]:
    """Shrink arrays whose shape claims far more rows than their files hold (metadata only).

    The rows past the last file do not exist, so nothing is lost; zarr's own resize would visit
    every claimed chunk to delete it, which for a garbage shape never ends.
    """
    from zarr.core.sync import sync

    actions = []
    for name in (EPISODE_ENDS, EPISODE_INFO, *[f"{DATA_GROUP}/{key}" for key in store.schema]):
        try:
            array = store.root[name]
            rows = overclaimed(store.path, name, array)
        except Exception:  # noqa: BLE001 - missing or garbage arrays are handled below
            continue
        if rows is not None:
            claimed = array.shape[0]
            sync(array.async_array.resize((rows, *array.shape[1:]), delete_outside_chunks=False))
            actions.append(f"corrected the shape of {name}, which claimed {claimed} rows but its chunk files hold "
                           f"at most {rows}.")
    store.refresh()
    return actions


def _refuse_unrepairable(store: EpisodeStore) -> None:
    """A missing or mistyped array would cost every episode: leave that to a person."""
    for key, problem in array_problems(store, rows=0).items():
        raise StoreError(f"{problem.rstrip('.')}, which repair cannot rebuild without dropping every episode; "
                         f"restore {DATA_GROUP}/{key} from a backup (nothing was changed).")


def _read_ends(store: EpisodeStore) -> np.ndarray | None:
    try:
        array = store.root[EPISODE_ENDS]
        ends = np.asarray(array[:], np.int64)
    except Exception:  # noqa: BLE001 - no marker: the records alone say what was committed
        return None
    gone = missing_files(store.path, EPISODE_ENDS, array, len(ends))
    for t in gone:  # lost chunks read as 0, which locate() already treats as invalid
        ends[t * array.chunks[0]: (t + 1) * array.chunks[0]] = 0
    return ends


def _read_records(store: EpisodeStore) -> list[str | None]:
    try:
        array = store.root[EPISODE_INFO]
        texts: list[str | None] = [str(t) for t in array[:]]
    except Exception:  # noqa: BLE001 - every record is rebuilt from the ends
        return []
    size = array.chunks[0]
    for t in missing_files(store.path, EPISODE_INFO, array, len(texts)):
        lo, hi = t * size, min((t + 1) * size, len(texts))
        texts[lo:hi] = [None] * (hi - lo)  # lost chunks read as "", never as records
    return texts


def _parse_any(text: str | None) -> EpisodeInfo | None:
    if not text:
        return None
    try:
        return EpisodeInfo.from_json(text)
    except (ValueError, TypeError, StoreError):
        return None


def _parse(text: str | None) -> EpisodeInfo | None:
    """A record with a usable step range, else None."""
    info = _parse_any(text)
    if info is None:
        return None
    ok = isinstance(info.start, int) and isinstance(info.end, int) and 0 <= info.start < info.end
    return info if ok else None


def locate(raw_ends: np.ndarray | None, records: list[EpisodeInfo | None], limit: int) -> Chain:
    """Each committed episode's end, from ``episode_ends`` and the records' own ranges.

    An end is trusted when it continues the previous episode, lies within the ``limit`` rows
    on disk and agrees with the record; on disagreement the next record's start decides.
    Without an ends array the records alone commit. One record past the marker's length is
    the uncommitted tail a kill leaves between the two commit writes; more than one means
    the marker lost entries, and the records locate them. When a boundary is lost from both, the episodes around it are
    kept as one, marked in its record, rather than lost.
    """
    chain, prev, i = Chain(), 0, 0
    count = len(raw_ends) if raw_ends is not None else len(records)
    if len(records) - count > 1:
        count = len(records)

    def end_of(k: int) -> int | None:
        known = raw_ends is not None and k < len(raw_ends)
        return int(raw_ends[k]) if known and prev < raw_ends[k] <= limit else None

    def start_of(k: int) -> int | None:
        rec = records[k] if k < len(records) else None
        return rec.start if rec is not None and prev < rec.start <= limit else None

    while i < count:
        rec = records[i] if i < len(records) else None
        r = rec.end if rec is not None and rec.start == prev and rec.end <= limit else None
        end = _choose(end_of(i), r, start_of(i + 1))
        if end is not None:
            chain.ends.append(end)
            chain.infos.append(rec if r == end else None)
            chain.origin.append(i)
            prev, i = end, i + 1
            continue
        merged = _merge_span(i, count, end_of, start_of)
        if merged is None:
            chain.unlocated = count - i
            break
        last, end = merged
        chain.merged[len(chain.ends)] = (i, last)
        chain.ends.append(end)
        chain.infos.append(None)
        chain.origin.append(i)
        prev, i = end, last + 1
    return chain


def _merge_span(i: int, count: int, end_of, start_of) -> tuple[int, int] | None:
    """``(last episode, end)`` of the shortest run from ``i`` whose far boundary is known."""
    for k in range(i + 1, count):
        start = start_of(k)
        if start is not None:
            return k - 1, start
        end = end_of(k)
        if end is not None:
            return k, end
    return None


def _choose(e: int | None, r: int | None, n: int | None) -> int | None:
    if r is not None and (e is None or e == r):
        return r
    if r is not None and e is not None:  # they disagree: the next record's start breaks the tie
        return e if n == e else r
    return e if e is not None else n


def _damaged_episodes(store: EpisodeStore, chain: Chain) -> dict[int, str]:
    """Episodes whose rows are missing, undecodable or differ from their checksum."""
    bad: dict[int, str] = {}
    ends = np.asarray(chain.ends, np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    for key in store.schema:
        array, name = store.array(key), f"{DATA_GROUP}/{key}"
        for i in np.flatnonzero(ends > array.shape[0]):
            bad.setdefault(int(i), f"{name} has only {array.shape[0]} steps")
        if checks_chunk_files(store):
            unit = stored_unit(array)
            for t in missing_files(store.path, name, array, min(int(ends[-1]) if len(ends) else 0,
                                                                array.shape[0])):
                for i in np.flatnonzero((starts < (t + 1) * unit) & (ends > t * unit)):
                    bad.setdefault(int(i), f"{name} lost the chunk file of steps {t * unit}..{(t + 1) * unit}")
    good = [i for i in range(len(ends)) if i not in bad]
    limit = len(good) and max(good) + 1
    store.episode_ends = ends[:limit]
    scanned = checks.scan_episodes(store, infos=chain.infos[:limit])
    for i, reason in scanned.items():
        if i not in bad:
            bad[i] = reason.rstrip(".")
    store.episode_ends = ends
    return bad


def _rebuilt_info(store: EpisodeStore, chain: Chain, i: int, texts: list[str | None]) -> EpisodeInfo:
    """A record for an episode whose own record is unreadable or wrong; the data decides success."""
    start, end = (chain.ends[i - 1] if i else 0), chain.ends[i]
    sources = Counter(info.source for info in chain.infos if info is not None)
    success = False
    if INFO_SUCCESS in store.schema:
        try:
            success = bool(store.read_slice(INFO_SUCCESS, end - 1, end)[-1])
        except (StoreError, IndexError):
            pass
    k = chain.origin[i]
    if i in chain.merged:
        first, last = chain.merged[i]
        note = (f"episodes {first}..{last} as recorded, kept as one because the boundaries between them were "
                "lost; drop it with `robot-rl data drop` if it should not be trained on")
    else:
        old = _parse_any(texts[k] if k < len(texts) else None)
        if old is not None:  # readable but with a wrong range: keep everything else it says
            old.start, old.end = start, end
            return old
        note = "the original metadata record was missing or unreadable"
    original = (texts[k] or "")[:500] if k < len(texts) else ""
    return EpisodeInfo(source=sources.most_common(1)[0][0] if sources else "teleop", success=success,
                       start=start, end=end, extra={"repaired": note, "original_record": original})


def _describe_plan(chain: Chain, raw_ends: np.ndarray | None, texts: list[str | None],
                   bad: dict[int, str]) -> list[str]:
    actions = []
    old = [] if raw_ends is None else [int(x) for x in raw_ends]
    if old[: len(chain.ends)] != chain.ends or (raw_ends is None and chain.ends):
        actions.append(f"rebuilt {EPISODE_ENDS} for {len(chain.ends)} episodes from the episode records.")
    elif len(old) > len(chain.ends) and not chain.unlocated:
        actions.append(f"removed {len(old) - len(chain.ends)} invalid entries past the last episode from "
                       f"{EPISODE_ENDS}.")
    for i, (first, last) in chain.merged.items():
        actions.append(f"kept episodes {first}..{last} as one episode {i}: the boundaries between them are lost "
                       "from both the ends and the records (marked in its metadata).")
    rebuilt = [i for i, info in enumerate(chain.infos) if info is None and i not in bad and i not in chain.merged]
    if rebuilt:
        shown = ", ".join(map(str, rebuilt[:5])) + (" ..." if len(rebuilt) > 5 else "")
        actions.append(f"rebuilt the metadata records of episodes {shown} from {EPISODE_ENDS}.")
    for i, reason in sorted(bad.items()):
        actions.append(f"dropped episode {i}: {reason}.")
    return actions


def _fix_in_place(store: EpisodeStore, ends: list[int], infos: list[EpisodeInfo], texts: list[str | None],
                  leave_tail: bool) -> list[str]:
    """Records first, then the ends (the commit marker), then the tail."""
    wanted = [info.to_json() for info in infos]
    if texts[: len(wanted)] != wanted:
        _write_records(store, wanted, texts)
    _write_ends(store, ends)
    store.refresh()
    tail = None if leave_tail else checks.tail_steps(store)
    if tail is None:
        return []
    checks.truncate_tail(store)
    return [f"truncated an uncommitted tail of {tail[0]} steps and {tail[1]} episode records."]


def _write_records(store: EpisodeStore, wanted: list[str], texts: list[str | None]) -> None:
    root = store.root
    try:
        array = root[EPISODE_INFO]
    except Exception:  # noqa: BLE001 - missing or garbage: make a fresh one
        _remove(store, EPISODE_INFO)
        array = root.create_array(EPISODE_INFO, shape=(0,), dtype=str, chunks=(1024,))
        texts = []
    common = min(len(texts), len(wanted))
    if common:
        array[:common] = np.array(wanted[:common], dtype=object)
    if len(wanted) > len(texts):
        append_rows(array, np.array(wanted[len(texts):], dtype=object))


def _write_ends(store: EpisodeStore, ends: list[int]) -> None:
    root = store.root
    try:
        array = root[EPISODE_ENDS]
        old = np.asarray(array[:], np.int64)
    except Exception:  # noqa: BLE001 - missing or garbage: make a fresh one (the records are already written)
        _remove(store, EPISODE_ENDS)
        array = root.create_array(EPISODE_ENDS, shape=(0,), dtype="int64", chunks=(4096,), fill_value=0)
        old = np.zeros(0, np.int64)
    new = np.asarray(ends, np.int64)
    common = min(len(old), len(new))
    if common and not np.array_equal(old[:common], new[:common]):
        array[:common] = new[:common]
    if len(new) > len(old):
        append_rows(array, new[len(old):])
    elif len(new) < len(old):
        array.resize((len(new),))


def _remove(store: EpisodeStore, name: str) -> None:
    """Delete a broken meta array (zarr cannot, when its zarr.json is garbage)."""
    shutil.rmtree(Path(store.path) / name, ignore_errors=True)
