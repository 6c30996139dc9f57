"""Ordinary failures read plainly (issue 31 item 14): a file that is no image says what it is,
a too-large one its size, the limit and the file's size; the log holds no traceback for them,
the dialog no "see the log" line, and the failed photo's canvas gives the reason."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image as PILImage

from cmdsr_app.workers import Worker


def open_failing(qtbot, window, path: Path) -> str:
    with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
        window.open_paths([path])
    return blocker.args[0]


def test_a_text_file_named_png(qtbot, window, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("shopping list: milk, eggs\n")
    message = open_failing(qtbot, window, path)
    assert "notes.png: not an image (it holds text" in message
    assert window.error_dialog.informativeText() == ""
    assert "Traceback" not in window.log_panel.text.toPlainText()
    assert "it holds text" in window.log_panel.text.toPlainText()
    # The canvas says why, not only "Cannot open notes.png."
    qtbot.waitUntil(lambda: "it holds text" in window.canvas._placeholder, timeout=5000)
    assert window.canvas._placeholder.startswith("Cannot open notes.png: ")


def test_a_pdf_and_a_photo_too_large(qtbot, window, tmp_path: Path) -> None:
    pdf = tmp_path / "scan.jpg"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    assert "it is a PDF document" in open_failing(qtbot, window, pdf)
    big = tmp_path / "huge.png"
    PILImage.new("L", (9000, 9000)).save(big)  # 81 megapixels in a small file
    size_kb = round(big.stat().st_size / 1024)
    message = open_failing(qtbot, window, big)
    assert "9000x9000 is 81 megapixels, over the limit of 80 megapixels" in message
    assert f"a {size_kb} KB file" in message
    assert "Traceback" not in window.log_panel.text.toPlainText()


def test_an_unexpected_failure_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    from engine import ImageReadError

    def boom(_progress, _cancel):
        raise RuntimeError("a bug")

    def bad_file(_progress, _cancel):
        raise ImageReadError("x.png: not an image (it holds text)")

    messages: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="cmdsr_app.workers"):
        for fn in (boom, bad_file):
            worker = Worker(fn, fn.__name__)
            worker.failed.connect(messages.append)
            worker.run()
    traced = {r.message.split(" ")[0]: r.exc_info is not None for r in caplog.records}
    assert traced == {"boom": True, "bad_file": False}
    assert "The log panel has the details" in messages[0]
    assert messages[1] == "x.png: not an image (it holds text)"
