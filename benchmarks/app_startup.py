"""How fast CMDSR Studio's window appears: launches the app several times in fresh processes
and prints, per launch and as the median, the seconds from the process start until

- ``window``: the main window has painted for the first time (what the user sees),
- ``engine``: PyTorch and the engine are loaded and the devices listed (in the background),
- ``model``: the default model is loaded and checked, so Run upscales at once.

Usage: ``QT_QPA_PLATFORM=offscreen python benchmarks/app_startup.py [--runs 5]``. Each launch
uses an empty settings folder, so no earlier session's photos or runs are reopened. Run it on
a quiet machine: the target is a window within 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_WINDOW_S = 1.5

# Runs in the launched process: the app's own start-up, with its event loop replaced by one
# that reports the moments above on stdout and quits once the model is ready.
DRIVER = r"""
import sys
from cmdsr_app import app as app_module

def exec_and_report(app, window):
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        seen = False
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and not self.seen:
                self.seen = True
                print("window", flush=True)
            return False

    painted = FirstPaint(window)
    window.centralWidget().installEventFilter(painted)
    window.engineReady.connect(lambda: print("engine", flush=True))
    window.modelReady.connect(lambda _path: (print("model", flush=True), app.quit()))
    QTimer.singleShot(120_000, app.quit)
    return int(app.exec())

app_module._exec = exec_and_report
sys.exit(app_module.run(["--gui"]))
"""


def launch() -> dict[str, float]:
    """One launch: seconds from process start to each reported moment."""
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "CMDSR_STUDIO_CONFIG_DIR": config}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        times: dict[str, float] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            name = line.strip()
            if name in ("window", "engine", "model") and name not in times:
                times[name] = time.perf_counter() - start
        proc.wait()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="launches to time (default 5)")
    args = parser.parse_args(argv)
    rows = [launch() for _ in range(args.runs)]
    columns = ("window", "engine", "model")
    print(f"{'launch':>6} " + " ".join(f"{c:>8}" for c in columns))
    for i, row in enumerate(rows, 1):
        print(f"{i:>6} " + " ".join(f"{row.get(c, float('nan')):>7.2f}s" for c in columns))
    medians = {c: statistics.median(r[c] for r in rows if c in r) for c in columns
               if any(c in r for r in rows)}
    print(f"{'median':>6} " + " ".join(f"{medians.get(c, float('nan')):>7.2f}s" for c in columns))
    window = medians.get("window")
    verdict = "meets" if window is not None and window < TARGET_WINDOW_S else "misses"
    print(f"window visible: {window:.2f} s median, {verdict} the {TARGET_WINDOW_S} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
