"""Atomic file writes: a temp file in the destination folder, then a rename.

A cancelled job, a crash or a full disk never leaves a half-written file under the final
name, and an existing file is replaced only when the caller asks for it.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _default_mode() -> int:
    # mkstemp creates 0600 files; saved photos and models should get the user's usual
    # permissions (0644 with the common umask 022), like any other program's output.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temp file to ``path``; without ``overwrite`` never replace a file,
    even one that appeared while we were writing (raises FileExistsError)."""
    if overwrite:
        os.replace(tmp, path)
        return
    if os.name == "nt":
        os.rename(tmp, path)  # refuses an existing destination on Windows
        return
    try:
        os.link(tmp, path)  # atomic "create if absent"
    except FileExistsError:
        raise
    except OSError:
        # File systems without hard links (FAT, some network shares): check, then rename.
        if path.exists():
            raise FileExistsError(path) from None
        os.rename(tmp, path)
        return
    tmp.unlink()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, overwrite: bool) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it and move it into place.

    Raises FileExistsError when ``path`` exists and ``overwrite`` is False, OSError on
    failure; in every failure case the temp file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        _commit(tmp, path, overwrite)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            # A failed write into the handle (a full disk) names no file: name the one the
            # user knows, not the temp file, so "cmdsr: error: ..." says what was lost.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


# A temp file is created right before its bytes are written, so one this old beside its
# target belongs to a writer that was killed (power cut, kill -9), not to a running one.
STALE_TEMP_S = 600.0


def remove_stale_temps(path: str | Path, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Delete the hidden temp files that ``atomic_write`` of ``path`` left behind when its
    process was killed (``.<name>.<random>.tmp`` older than ``older_than_s``); returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    cutoff = time.time() - older_than_s
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone already, or not ours to remove: leave it
    return removed
