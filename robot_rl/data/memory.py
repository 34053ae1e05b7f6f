"""Keeping freed frame buffers in the process, so that recording does not fault every page in again.

A 640x480 frame, and the compressed chunk zstd makes of it, is about 0.9 MB. glibc's malloc
maps blocks that large with ``mmap`` (until its threshold has adapted) and hands freed memory
at the top of a heap back to the kernel once it exceeds the trim threshold, which a shard of
compressed frames (~100 MB, freed together once written) always does. Each new buffer is then
fresh pages: ~450 page faults per step of two cameras, each zeroing a page in the kernel.
Measured on the sustained write of ``bench/zarr_io.py`` with camera-like frames: 1.9 ms of
kernel time per step with glibc's defaults, 0.5 ms (the page-cache write itself) with the
thresholds below.

So a writer of image keys fixes the mmap threshold at 32 MB (the most glibc's own adaptation
would reach, so large tensors of a trainer in the same process are mapped no more often than
before) and the trim threshold at 256 MB (freed memory up to that much stays in the heap for
the next shard). Nothing happens off glibc, or when the user tuned malloc through the
environment (``GLIBC_TUNABLES`` with ``glibc.malloc``, or ``MALLOC_*`` variables) or preloaded
another allocator, or with ``ROBOT_RL_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>
_done = False


def keep_freed_frames() -> bool:
    """Apply the thresholds once per process; True if they are in effect (now or before)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or _user_tuned(os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl's mallopt does nothing)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return False
    log.debug("malloc: mmap threshold %d MB, trim threshold %d MB", MMAP_THRESHOLD >> 20, TRIM_THRESHOLD >> 20)
    _done = True
    return True


def _user_tuned(environ: os._Environ | dict) -> bool:
    """True when the user chose malloc's behaviour: opted out, tuned glibc's malloc through the
    environment, or preloaded another allocator (jemalloc, tcmalloc, mimalloc)."""
    return (environ.get("ROBOT_RL_MALLOC", "") == "default" or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")
            or any(key.startswith("MALLOC_") for key in environ) or "malloc" in environ.get("LD_PRELOAD", ""))
