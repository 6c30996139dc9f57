"""Application start-up (placeholder until the desktop application lands)."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    if os.environ.get("QT_QPA_PLATFORM", "") == "offscreen":
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(argv: list[str]) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(["CMDSR Studio", *argv])
    label = QLabel("CMDSR Studio")
    label.setWindowTitle("CMDSR Studio")
    label.resize(640, 480)
    label.show()
    return int(app.exec())
