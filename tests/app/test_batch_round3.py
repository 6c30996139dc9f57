"""Batches as a user follows them (issue 31 item 10): the row being upscaled says so, a new
batch clears an old error from the status bar, the question about earlier results names what
differs, and photos a batch finished can be seen in Compare."""

from __future__ import annotations

from pathlib import Path

from app_driving import open_queue, run_batch
from PySide6.QtWidgets import QMessageBox

from cmdsr_app.state import EntryStatus


def test_the_row_being_upscaled_says_so_and_an_old_error_goes(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    photos = [make_photo(f"r{i}.png", 64, 64, seed=i) for i in range(2)]
    open_queue(qtbot, window, photos)
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    window.show_error("Cannot open image", "broken.png is not an image")
    window.error_dialog.close()
    assert "broken.png" in window.statusBar().currentMessage()
    seen: list[tuple[int, str, str, str]] = []

    def record(image: int, _count: int, _done: int, _total: int) -> None:
        table = window.batch_panel
        seen.append((image, table.result_text(0)[0], table.result_text(1)[0],
                     window.statusBar().currentMessage()))

    window.batch._bridge.progress.connect(record)  # after the controller's own handler
    report = run_batch(qtbot, window)
    assert all(item.ok for item in report.items)
    first = [s for s in seen if s[0] == 0]
    assert first and all(row0 == "upscaling…" and row1 == "waiting" for _, row0, row1, _ in first)
    second = [s for s in seen if s[0] == 1]
    assert second and all(row0 == "done" and row1 == "upscaling…" for _, row0, row1, _ in second)
    assert all("broken.png" not in status for *_, status in seen)
    assert [window.batch_panel.result_text(r)[0] for r in range(2)] == ["done", "done"]


def test_only_support_changed_is_not_called_another_model(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    photos = [make_photo(f"s{i}.png", 36, 40, seed=i) for i in range(2)]
    open_queue(qtbot, window, photos)
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    run_batch(qtbot, window)
    combo = window.settings_panel.support_combo
    combo.setCurrentIndex(combo.findData("random"))
    # the finished batch's worker lets go of the job a moment after it reports
    qtbot.waitUntil(lambda: not window.batch.heavy.busy, timeout=10000)
    window.batch_panel.start_button.click()
    qtbot.waitUntil(lambda: window.batch.replace_box is not None
                    and window.batch.replace_box.isVisible(), timeout=5000)
    box: QMessageBox = window.batch.replace_box
    assert "model" not in box.windowTitle().lower()
    assert box.windowTitle() == "Replace results made with other settings?"
    assert "other settings (support)" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()


def test_a_photo_the_batch_finished_shows_its_result_in_compare(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    photos = [make_photo(f"c{i}.png", 36, 40, seed=i) for i in range(2)]
    open_queue(qtbot, window, photos)
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    assert window.photos.image_path == photos[0]
    report = run_batch(qtbot, window)
    assert all(item.ok for item in report.items)
    assert window.queue[1].status is EntryStatus.DONE
    # The photo shown during the batch gets its result too.
    qtbot.waitUntil(lambda: window.compare.result("cmdsr") is not None, timeout=10000)
    with qtbot.waitSignal(window.upscaleFinished, timeout=15000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.show_entry(1)
    result = window.compare.result("cmdsr")
    assert result is not None and (result.width(), result.height()) == (160, 144)
    assert window.compare.split_canvas.right_layer is not None
    assert "c1_x4.png" in window.statusBar().currentMessage()
