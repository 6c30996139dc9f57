"""Output size (issue 22, item 9): ×2, ×3, ×4 or a width or height in pixels, for batches and
saved results; the model runs at its own ×4, then the result is area-averaged, and the panel
says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from app_driving import open_queue

from cmdsr_app.state import SizeChoice


def pick(window, data: str, pixels: int | None = None) -> None:
    box = window.settings_panel.size_box
    if pixels is not None:
        box.pixels.setValue(pixels)
    box.combo.setCurrentIndex(box.combo.findData(data))


def test_size_choices_and_the_note_that_says_how(window) -> None:
    box = window.settings_panel.size_box
    assert [box.combo.itemText(i) for i in range(box.combo.count())] == [
        "×2", "×3", "×4", "Fit width", "Fit height"]
    assert box.choice == SizeChoice("scale", 4) and box.note.text() == "" and box.note.isHidden()
    assert box.pixels.isHidden()
    pick(window, "x2")
    assert "model upscales ×4" in box.note.text() and "area-averaging" in box.note.text()
    pick(window, "width", 300)
    assert box.choice == SizeChoice("width", 300) and not box.pixels.isHidden()
    assert "300 px wide" in box.note.text()


def test_batch_writes_the_chosen_size(qtbot, window, make_photo, tmp_path: Path) -> None:
    import cv2

    from engine import read_image

    photo = make_photo("p.png", 36, 40)
    open_queue(qtbot, window, [photo])
    out = tmp_path / "out"
    window.batch_panel.folder_edit.setText(str(out))
    sizes = {"x4": None, "x2": None, "x3": None, "width": 100, "height": 60}
    for data, pixels in sizes.items():
        pick(window, data, pixels)
        qtbot.waitUntil(lambda: window.batch_panel.start_button.isEnabled(), timeout=10000)
        with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
            window.batch_panel.start_button.click()
        assert blocker.args[0].items[0].ok, blocker.args[0].items[0].error
    shapes = {p.name: read_image(p).pixels.shape[:2] for p in out.iterdir()}
    assert shapes == {"p_x4.png": (144, 160), "p_x2.png": (72, 80), "p_x3.png": (108, 120),
                      "p_w100.png": (90, 100), "p_h60.png": (60, 67)}
    # The x2 file is the x4 result area-averaged (same support seed: the same x4 pixels).
    x4 = read_image(out / "p_x4.png").pixels
    expected = cv2.resize(x4, (80, 72), interpolation=cv2.INTER_AREA)
    assert np.abs(read_image(out / "p_x2.png").pixels - expected).max() <= 1.0


def test_a_size_beyond_the_model_is_a_per_image_failure(qtbot, window, make_photo,
                                                        tmp_path: Path) -> None:
    open_queue(qtbot, window, [make_photo("small.png", 36, 40)])
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    pick(window, "width", 1000)
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_panel.start_button.click()
    item = blocker.args[0].items[0]
    assert not item.ok and "more than the model's x4" in item.error


def test_saved_result_has_the_chosen_size_and_the_size_is_remembered(
    qtbot, window, make_photo, tmp_path: Path, isolated_settings: Path
) -> None:
    from cmdsr_app.main_window import MainWindow
    from engine import read_image

    open_queue(qtbot, window, [make_photo("p.png", 36, 40)])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    assert window.compare.result("cmdsr").width() == 160  # compare shows the model's x4
    pick(window, "x2")
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result(tmp_path / "saved.png")
    assert read_image(tmp_path / "saved.png").pixels.shape[:2] == (72, 80)
    pick(window, "height", 50)
    window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    try:
        assert second.settings_panel.output_size == SizeChoice("height", 50)
    finally:
        second.close()
