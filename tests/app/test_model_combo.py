"""The Model box shows a long checkpoint name without cutting off its end (issue 31 item 14):
its middle gives way, the tooltip holds the whole path, the open list is wide enough."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication


def test_a_long_checkpoint_name_keeps_both_ends(window, tmp_path) -> None:
    window.resize(1280, 720)
    path = tmp_path / "runs" / "run_2026-12-07_185012_faces" / "checkpoints" / "step_0000016.pt"
    sp = window.settings_panel
    sp.show_model(str(path))
    QApplication.processEvents()
    combo = sp.model_combo
    full = combo.currentText()
    assert full == "step_0000016.pt (run_2026-12-07_185012_faces)"
    shown = combo.displayed_text()
    metrics = combo.fontMetrics()
    assert metrics.horizontalAdvance(full) > combo.width() - 30  # too long for the box
    assert shown != full and "…" in shown
    assert shown.startswith("step_00") and shown.endswith("faces)")
    assert metrics.horizontalAdvance(shown) <= combo.width() - 20
    assert str(path) in combo.toolTip()
    combo.showPopup()
    assert combo.view().width() >= metrics.horizontalAdvance(full)
    combo.hidePopup()
