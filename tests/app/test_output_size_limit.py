"""A fit width or height the shown photo cannot reach is said in the Size box as it is typed,
and Save refuses it before the file dialog (issue 31 item 8)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog


def test_a_width_too_large_is_said_as_it_is_typed(qtbot, window, make_photo, monkeypatch) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([make_photo("small.png", 60, 100)])
    box = window.settings_panel.size_box
    box.combo.setCurrentIndex(box.combo.findData("width"))
    box.pixels.setValue(3000)
    assert box.note.isVisibleTo(window)
    assert "Too large for this 100×60 photo: at most 400 px wide" in box.note.text()
    box.pixels.setValue(320)
    assert "Too large" not in box.note.text()
    box.combo.setCurrentIndex(box.combo.findData("height"))
    box.pixels.setValue(241)
    assert "at most 240 px high" in box.note.text()
    # Save says so at once, without a file dialog first.
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (asked.append("dialog"), ("", ""))[1])
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.save_result_dialog()
    assert asked == [] and "at most 240 px high" in blocker.args[0]
    # No photo: nothing to measure against.
    window.remove_entry(0)
    assert "Too large" not in box.note.text()
