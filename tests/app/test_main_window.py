"""The main window end to end, offscreen, with a tiny model: open, draw regions, upscale and
compare, cancel, a bad model, a batch with a broken file, saving, settings, closing mid-job."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer

from cmdsr_app.state import EntryStatus, Region

LEFT = Qt.MouseButton.LeftButton


def open_image(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([path])


def drag(qtbot, widget, start: tuple[int, int], end: tuple[int, int]) -> None:
    qtbot.mousePress(widget, LEFT, pos=QPoint(*start))
    qtbot.mouseMove(widget, QPoint((start[0] + end[0]) // 2, (start[1] + end[1]) // 2))
    qtbot.mouseMove(widget, QPoint(*end))
    qtbot.mouseRelease(widget, LEFT, pos=QPoint(*end))


def set_tile(window, tile: int) -> None:
    combo = window.settings_panel.tile_combo
    if combo.findData(tile) < 0:
        combo.addItem(f"{tile} px", tile)
    combo.setCurrentIndex(combo.findData(tile))


def test_open_draw_region_run_compare_and_save(qtbot, window, make_photo, tmp_path: Path) -> None:
    from engine.io.imageio import read_image

    path = make_photo("photo.png", 72, 96)
    open_image(qtbot, window, path)
    assert window.canvas.image().width() == 96
    assert window.queue[0].status is EntryStatus.READY
    # Draw a region with the mouse: 2 screen pixels per image pixel.
    window.tabs.setCurrentIndex(0)
    canvas = window.canvas
    canvas.set_view(2.0, QPointF(0, 0))
    drag(qtbot, canvas, (10, 10), (100, 90))
    assert window.regions.regions == [Region(5, 5, 45, 40)]
    assert window.region_panel.list.item(0).text() == "1: x 5, y 5, 45 × 40"
    assert window.settings_panel.support_mode == "regions"  # drawing says "use my regions"
    # Edit it: move right by 10 image pixels.
    drag(qtbot, canvas, (50, 50), (70, 50))
    assert window.regions[0] == Region(15, 5, 45, 40)
    # Run; the result shows in the compare view at 4x.
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_action.trigger()
    result = window.compare.result("cmdsr")
    assert (result.width(), result.height()) == (384, 288)
    assert window.compare.result("bicubic") is None  # only computed when shown
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda method: method == "bicubic"):
        window.compare.set_sources("bicubic", "cmdsr")
    assert window.compare.result("bicubic").width() == 384
    assert window.tabs.currentWidget() is window.compare
    assert window.compare.split_canvas.right_layer.label == "CMDSR"
    assert window.queue[0].status is EntryStatus.DONE
    # The patches came from inside the region, and they are drawn on the input.
    boxes = window.canvas.patch_boxes
    assert len(boxes) == 20
    assert all(15 <= x and x + w <= 60 and 5 <= y and y + h <= 45 for x, y, w, h in boxes)
    # Save the result and a side-by-side comparison.
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result(tmp_path / "out.png")
    assert read_image(tmp_path / "out.png").pixels.shape == (288, 384, 3)
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_comparison(tmp_path / "compare.jpg")
    compare = read_image(tmp_path / "compare.jpg")
    assert compare.pixels.shape == (288, 384 * 2 + 8, 3)
    assert window.last_error is None


def test_saved_result_keeps_the_photo_metadata(qtbot, window, tmp_path: Path) -> None:
    from PIL import Image, ImageCms

    from engine.io.imageio import read_image

    rng = np.random.default_rng(3)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "CMDSR test camera"  # Make
    source = tmp_path / "camera.jpg"
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        source, quality=90, icc_profile=icc, exif=exif.tobytes())
    open_image(qtbot, window, source)
    window.settings_panel.support_combo.setCurrentIndex(window.settings_panel.support_combo.findData("random"))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result(tmp_path / "camera_x4.png")
    saved = read_image(tmp_path / "camera_x4.png")
    assert saved.icc == icc
    assert saved.exif is not None and b"CMDSR test camera" in saved.exif


def test_deleting_the_last_region_goes_back_to_auto(qtbot, window, make_photo) -> None:
    open_image(qtbot, window, make_photo("p.png", 64, 64))
    window.regions.add(Region(0, 0, 40, 40))
    assert window.settings_panel.support_mode == "regions"
    window.region_panel.clear_button.click()
    assert window.settings_panel.support_mode == "auto"


def test_a_remembered_model_that_is_gone_falls_back_to_the_default(
    qtbot, tiny_model_path: Path, monkeypatch, tmp_path: Path
) -> None:
    import engine
    from cmdsr_app.main_window import MainWindow
    from cmdsr_app.settings import AppSettings, SettingsStore

    monkeypatch.setattr(engine, "default_model_path", lambda: tiny_model_path)
    SettingsStore().save(AppSettings(model_path=str(tmp_path / "deleted.pt")))
    win = MainWindow(with_training=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.models.info is not None, timeout=15000)
    assert win.settings.model_path == ""
    assert win.models.info.path == tiny_model_path
    assert win.last_error is None  # no dialog at start-up for this
    win.close()


def test_regions_are_kept_per_image_in_the_session(qtbot, window, make_photo) -> None:
    a, b = make_photo("a.png", 64, 64), make_photo("b.png", 64, 80, seed=1)
    open_image(qtbot, window, a)
    window.regions.add(Region(0, 0, 40, 40))
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([b])
    assert len(window.regions) == 0
    assert window.settings_panel.support_mode == "auto"
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.queue_panel.list.setCurrentRow(0)
    assert window.regions.regions == [Region(0, 0, 40, 40)]
    assert window.settings_panel.support_mode == "regions"


def test_invalid_region_blocks_the_run_with_a_reason(qtbot, window, make_photo) -> None:
    open_image(qtbot, window, make_photo("p.png", 64, 64))
    window.regions.add(Region(0, 0, 10, 10))
    assert "smaller than a 32x32 patch" in window.region_panel.list.item(0).text()
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.run_upscale()
    assert "Region 1" in blocker.args[0] and "smaller" in blocker.args[0]
    assert not window.heavy.busy


def test_auto_and_random_preview_patches(qtbot, window, make_photo) -> None:
    open_image(qtbot, window, make_photo("p.png", 80, 120))
    with qtbot.waitSignal(window.previewReady, timeout=15000):
        window.region_panel.auto_button.click()
    auto = window.canvas.patch_boxes
    assert len(auto) == 20 and all(w == 32 and h == 32 for _, _, w, h in auto)
    with qtbot.waitSignal(window.previewReady, timeout=15000):
        window.region_panel.random_button.click()
    assert window.canvas.patch_boxes != auto


def test_cancel_mid_run_stops_within_a_tile(qtbot, window, make_photo, monkeypatch, slow_tiles) -> None:
    open_image(qtbot, window, make_photo("big.png", 128, 160))
    set_tile(window, 32)  # 4 x 5 = 20 tiles
    import cmdsr_app.controllers.upscale as mw

    real = mw.upscale_with
    seen = slow_tiles(0.05)
    finished: list[str] = []
    window.upscaleFinished.connect(finished.append)
    window.run_upscale()
    qtbot.waitUntil(lambda: window.settings_panel.tile_bar.value() >= 2, timeout=30000)
    start = time.perf_counter()
    with qtbot.waitSignal(window.jobCancelled, timeout=10000):
        window.cancel_action.trigger()
    latency = time.perf_counter() - start
    print(f"cancel took effect after {latency * 1000:.0f} ms")
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)
    assert max(seen) < 20
    assert finished == [] and window.compare.result("cmdsr") is None
    assert window.queue[0].status is EntryStatus.CANCELLED
    assert window.settings_panel.run_button.isEnabled()
    assert latency < 2.0
    # A new run after the cancel works.
    monkeypatch.setattr(mw, "upscale_with", real)
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    assert window.compare.result("cmdsr") is not None


def test_event_loop_stays_responsive_during_a_run(qtbot, window, make_photo) -> None:
    open_image(qtbot, window, make_photo("big.png", 192, 192))
    set_tile(window, 32)  # 36 tiles: a run long enough to watch
    ticks: list[float] = []
    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
    probe.start()
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    probe.stop()
    gaps = np.diff(ticks)
    print(f"run: {ticks[-1] - ticks[0]:.2f} s, {len(ticks)} ticks, largest event-loop gap "
          f"{gaps.max() * 1000:.0f} ms, 99th percentile {np.percentile(gaps, 99) * 1000:.0f} ms")
    assert ticks[-1] - ticks[0] > 0.1
    worst = int(np.argmax(gaps))
    assert gaps.max() < 0.100, (
        f"event loop stalled {gaps.max() * 1000:.0f} ms at {ticks[worst] - ticks[0]:.2f} s "
        f"into a {ticks[-1] - ticks[0]:.2f} s run")


def test_a_bad_model_shows_an_error_and_keeps_the_previous_one(qtbot, window, tmp_path: Path) -> None:
    bad = tmp_path / "CMDSR_model.pth"
    bad.write_text("this is not a network")
    with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
        window.choose_model(str(bad))
    title, message = window.last_error
    assert title == "Cannot use this model"
    assert "CMDSR_model.pth" in blocker.args[0]
    assert "Traceback" not in message
    assert window.error_dialog is not None and window.error_dialog.isVisible()
    assert window.settings_panel.model_path == ""  # still the default
    assert "Could not load CMDSR_model.pth" in window.settings_panel.model_info.text()
    log_text = window.log_panel.plain_text()
    # A bad file is no bug: the log holds its message, not a traceback (issue 31).
    assert "Traceback" not in log_text and "Cannot use this model" in log_text


def test_a_good_checkpoint_and_the_training_tab_feed_the_model_selector(
    qtbot, window, tiny_model_path: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "trained_step100.pt"
    shutil.copy(tiny_model_path, copy)
    if window.training_tab is not None:
        with qtbot.waitSignal(window.modelReady, timeout=15000):
            window.training_tab.modelChosen.emit(str(copy))
    else:
        with qtbot.waitSignal(window.modelReady, timeout=15000):
            window.use_trained_model(str(copy))
    combo = window.settings_panel.model_combo
    assert combo.currentData() == str(copy)
    assert window.settings.recent_models[0] == str(copy)
    assert "x4" in window.settings_panel.model_info.text()


def test_batch_with_a_broken_file_lists_it_and_goes_on(qtbot, window, make_photo, tmp_path: Path) -> None:
    a = make_photo("a.png", 40, 48)
    b = make_photo("b.png", 36, 44, seed=1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([a, broken, b])
    out = tmp_path / "out"
    window.batch_panel.folder_edit.setText(str(out))
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_action.trigger()
    report = blocker.args[0]
    assert [item.ok for item in report.items] == [True, False, True]
    assert "broken.png" in report.items[1].error
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "b_x4.png"]
    assert window.batch_panel.result_text(1)[0] == "failed"
    assert "broken.png" in window.batch_panel.result_text(1)[1]
    assert window.batch_panel.result_text(0) == ("done", str(out / "a_x4.png"))
    assert [e.status for e in window.queue] == [EntryStatus.DONE, EntryStatus.FAILED, EntryStatus.DONE]
    assert "2 of 3" in window.batch_panel.summary_label.text()
    assert window.last_error is None  # per-image failures are listed, not a dialog each


def test_batch_again_lists_existing_outputs_without_redoing_them(qtbot, window, make_photo,
                                                                 tmp_path: Path) -> None:
    a = make_photo("a.png", 40, 48)
    b = make_photo("b.png", 36, 44, seed=1)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([a, b])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_x4.png").write_bytes(b"an earlier result")
    window.batch_panel.folder_edit.setText(str(out))
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_action.trigger()
    report = blocker.args[0]
    # An existing output counts as already done (finishing an interrupted batch), not failed.
    assert [(item.ok, item.skipped) for item in report.items] == [(True, True), (True, False)]
    assert report.items[0].error is None
    assert report.items[0].seconds < report.items[1].seconds  # skipped before the work
    assert (out / "a_x4.png").read_bytes() == b"an earlier result"
    assert window.batch_panel.result_text(0) == ("skipped", f"already done: {out / 'a_x4.png'}")
    assert [e.status for e in window.queue] == [EntryStatus.DONE, EntryStatus.DONE]
    assert window.batch_panel.summary_label.text() == (
        "1 of 2 image(s) upscaled, 1 already done (skipped)")

    window.batch_panel.overwrite_check.setChecked(True)
    qtbot.waitUntil(lambda: window.batch_action.isEnabled(), timeout=10000)  # worker idle again
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_action.trigger()
    assert [item.ok for item in blocker.args[0].items] == [True, True]
    assert (out / "a_x4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_settings_persist_between_windows(qtbot, window, make_photo, isolated_settings: Path) -> None:
    from cmdsr_app.main_window import MainWindow

    path = make_photo("p.png", 48, 48)
    open_image(qtbot, window, path)
    set_tile(window, 256)
    window.settings_panel.format_combo.setCurrentIndex(window.settings_panel.format_combo.findData("jpg"))
    window.regions.add(Region(0, 0, 40, 40))
    window.tabs.setCurrentWidget(window.training_page)  # hides the side panels
    assert window.left_dock.isHidden()
    window.close()
    assert (isolated_settings / "settings.json").exists()
    second = MainWindow()
    qtbot.addWidget(second)
    try:
        second.show()
        assert second.tabs.currentIndex() == 0 and not second.left_dock.isHidden()
        assert second.settings_panel.tile == 256
        assert second.settings_panel.output_format == "jpg"
        assert second.settings.recent_files[0] == str(path)
        with qtbot.waitSignal(second.imageLoaded, timeout=15000):
            second.open_paths([path])
        assert second.regions.regions == [Region(0, 0, 40, 40)]  # remembered for this photo
    finally:
        second.confirm_close = lambda: True
        second.close()


def test_fresh_settings_per_test(window) -> None:
    # Whatever earlier tests chose, this one starts from the defaults.
    assert window.settings_panel.tile == 0
    assert window.settings_panel.output_format == "png"
    assert window.settings.recent_files == []
    # Devices come from what torch reports: always Auto and the CPU, then any GPUs.
    from engine import available_devices

    combo = window.settings_panel.device_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["auto", *available_devices()]


def test_closing_during_a_run_asks_cancels_and_waits(qtbot, window, make_photo, monkeypatch, slow_tiles) -> None:
    open_image(qtbot, window, make_photo("big.png", 128, 160))
    set_tile(window, 32)
    slow_tiles(0.05)
    asked: list[bool] = []
    window.confirm_close = lambda: asked.append(True) or False  # first: the user says no
    window.run_upscale()
    qtbot.waitUntil(lambda: window.settings_panel.tile_bar.value() >= 1, timeout=30000)
    window.close()
    assert asked == [True] and window.isVisible() and window.heavy.busy
    window.confirm_close = lambda: True
    window.close()
    assert not window.isVisible()
    assert not window.heavy.busy or window.heavy.wait(0)


def test_missing_baseline_disables_that_choice(qtbot, tiny_model_path: Path, monkeypatch, tmp_path: Path) -> None:
    import engine

    monkeypatch.setattr(engine, "default_model_path", lambda: tiny_model_path)
    monkeypatch.setattr(engine, "default_baseline_path", lambda: tmp_path / "basenet_x4.pt")
    from cmdsr_app.main_window import MainWindow

    win = MainWindow(with_training=False)
    qtbot.addWidget(win)
    reason = win.compare.source_disabled_reason("baseline")
    assert reason is not None and "basenet_x4.pt" in reason
    index = win.compare.right_combo.findData("baseline")
    assert not win.compare.right_combo.model().item(index).isEnabled()
    win.close()


def test_baseline_and_other_support_are_computed_on_demand(qtbot, window, make_photo) -> None:
    open_image(qtbot, window, make_photo("p.png", 48, 64))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "baseline"):
        window.compare.set_sources("input", "baseline")
    assert window.compare.result("baseline").width() == 256
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "cmdsr_alt"):
        window.compare.set_sources("cmdsr_alt", "baseline")
    assert window.compare.result("cmdsr_alt").height() == 192


def test_paste_an_image_from_the_clipboard(qtbot, window, isolated_settings: Path) -> None:
    from PySide6.QtGui import QGuiApplication

    from cmdsr_app.imaging import to_qimage

    pixels = np.zeros((40, 56, 3), np.float32)
    pixels[:, :, 1] = 200
    QGuiApplication.clipboard().setImage(to_qimage(pixels))
    with qtbot.waitSignal(window.imageLoaded, timeout=15000) as blocker:
        window.paste_action.trigger()
    pasted = Path(blocker.args[0])
    assert pasted.parent == isolated_settings / "pasted" and pasted.suffix == ".png"
    assert window.photos.image.pixels.shape == (40, 56, 3)
    assert window.photos.image.pixels[0, 0, 1] == 200


def test_drop_files_and_folders_onto_the_window(qtbot, window, make_photo, tmp_path: Path) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    first = make_photo("first.png", 40, 40)
    folder = tmp_path / "more"
    folder.mkdir()
    for i in range(2):
        make_photo(f"more/{i}.png", 36, 36, seed=i)
    (folder / "notes.txt").write_text("not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(first)), QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, LEFT,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.dropEvent(event)
    assert [e.name for e in window.queue] == ["first.png", "0.png", "1.png"]
    # Thumbnails are made in the background and land in the queue list.
    qtbot.waitUntil(lambda: not window.thumbs.busy, timeout=15000)
    icon = window.queue_panel.list.item(1).icon().pixmap(56, 56).toImage()
    centre = icon.pixelColor(icon.width() // 2, icon.height() // 2)
    assert (centre.red(), centre.green(), centre.blue()) != (60, 60, 66)  # not the placeholder


@pytest.mark.slow
def test_event_loop_stays_responsive_with_a_full_size_model(qtbot, window, make_photo, tmp_path: Path) -> None:
    """The shipped architecture (64 channels, 10 blocks) on a 240x180 photo, auto tiles.

    A stall caused by the app shows in every run; one caused by other processes on a busy
    2-core CI machine does not, so the worst gap of the better of two runs is what must stay
    under 100 ms (both are printed).
    """
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(0)
    path = tmp_path / "full_x4.pt"
    save_model(build_model(ModelConfig()), path)
    with qtbot.waitSignal(window.modelReady, timeout=30000):
        window.choose_model(str(path))
    open_image(qtbot, window, make_photo("photo.png", 180, 240))
    worst: list[float] = []
    for attempt in range(2):
        ticks: list[float] = []
        probe = QTimer()
        probe.setInterval(10)
        probe.timeout.connect(lambda ticks=ticks: ticks.append(time.perf_counter()))
        probe.start()
        with qtbot.waitSignal(window.upscaleFinished, timeout=300000):
            window.run_upscale()
        probe.stop()
        gaps = np.diff(ticks)
        worst.append(float(gaps.max()))
        print(f"full-size run {attempt + 1}: {ticks[-1] - ticks[0]:.2f} s, largest event-loop gap "
              f"{gaps.max() * 1000:.0f} ms, 99th percentile {np.percentile(gaps, 99) * 1000:.0f} ms")
        if worst[-1] < 0.100:
            break
    assert min(worst) < 0.100


def test_switching_photos_during_a_run_keeps_its_result(qtbot, window, make_photo, monkeypatch, slow_tiles) -> None:
    a, b = make_photo("a.png", 64, 96), make_photo("b.png", 48, 48, seed=2)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([a, b])
    set_tile(window, 32)
    slow_tiles(0.03)
    window.run_upscale()
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.show_entry(1)
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=60000)
    assert window.queue[0].status is EntryStatus.DONE
    assert window.compare.result("cmdsr") is None  # b has not been upscaled
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.show_entry(0)
    assert window.compare.result("cmdsr").width() == 384
    assert len(window.canvas.patch_boxes) == 20


def test_keyboard_shortcuts(window) -> None:
    from PySide6.QtGui import QKeySequence

    def keys(action) -> set[str]:
        return {s.toString(QKeySequence.SequenceFormat.PortableText) for s in action.shortcuts()}

    assert "Ctrl+O" in keys(window.open_action)
    assert keys(window.run_action) == {"Ctrl+R", "F5"}
    assert keys(window.cancel_action) == {"Esc"}
    assert "Ctrl+S" in keys(window.save_action)
    assert "Ctrl+V" in keys(window.paste_action)
    assert "Ctrl+0" in keys(window.fit_action) and "Ctrl+1" in keys(window.actual_action)
    assert keys(window.zoom_in_action) >= {"Ctrl++", "Ctrl+="}
    assert "Ctrl+-" in keys(window.zoom_out_action)


def test_closing_during_training_asks_and_shuts_the_tab_down(qtbot, window, monkeypatch) -> None:
    tab = window.training_tab
    assert tab is not None and window.tabs.indexOf(window.training_page) >= 0
    calls: list[int] = []
    monkeypatch.setattr(type(tab), "is_running", property(lambda self: True))
    monkeypatch.setattr(tab, "shutdown", lambda timeout_ms: calls.append(timeout_ms) or True)
    asked: list[bool] = []
    window.confirm_close = lambda: asked.append(True) or True
    window.close()
    assert asked == [True] and calls and calls[0] > 0
    assert not window.isVisible()
    # The tab's settings are saved with the app's, so an interrupted run can be resumed.
    from cmdsr_app.settings import SettingsStore

    assert SettingsStore().load().training == tab.settings_dict()
