"""Runs ``cmdsr ARGS`` with its file writes slowed down and announced, so a test can kill -9
the process while a checkpoint or an output image is being written.

    python tests/reliability/crash_harness.py SIGNAL_DIR DELAY_S cmdsr-args...

Each ``torch.save`` into a file (checkpoints) writes ``SIGNAL_DIR/save_N.start`` first, then
the bytes in 8 slices with ``DELAY_S / 8`` between them, then ``save_N.done``. Each
``os.fsync`` (the last step of an image write before its rename) writes ``fsync_N.start``,
waits ``DELAY_S`` and writes ``fsync_N.done``. A test that sees ``*.start`` without
``*.done`` knows the kill landed mid-write.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install(signal_dir: Path, delay: float) -> None:
    import torch

    real_save, real_fsync = torch.save, os.fsync
    counters = {"save": 0, "fsync": 0}

    def mark(kind: str, what: str) -> None:
        (signal_dir / f"{kind}_{counters[kind]}.{what}").write_text(str(time.time()))

    def slow_save(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(f, (str, os.PathLike)):
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()
        counters["save"] += 1
        mark("save", "start")
        step = max(1, len(data) // 8)
        for i in range(0, len(data), step):
            f.write(data[i:i + step])
            f.flush()
            time.sleep(delay / 8)
        mark("save", "done")
        return None

    def slow_fsync(fd: int) -> None:
        counters["fsync"] += 1
        mark("fsync", "start")
        real_fsync(fd)
        time.sleep(delay)
        mark("fsync", "done")

    torch.save = slow_save
    os.fsync = slow_fsync


def main() -> int:
    signal_dir, delay = Path(sys.argv[1]), float(sys.argv[2])
    signal_dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    install(signal_dir, delay)
    from engine.cli import main as cmdsr

    (signal_dir / "ready").write_text(str(os.getpid()))
    return cmdsr(sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
