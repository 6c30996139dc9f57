"""What a new user hit beyond the main flow: removing the photo being upscaled, a failed
photo's canvas and Run, where save dialogs open, Open recent, what is enabled when, the Model
list's names, the ETA of a one-tile photo and Help → About."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cmdsr_app.state import EntryStatus


def open_image(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([path])


def set_tile(window, tile: int) -> None:
    combo = window.settings_panel.tile_combo
    if combo.findData(tile) < 0:
        combo.addItem(f"{tile} px", tile)
    combo.setCurrentIndex(combo.findData(tile))


def test_removing_the_photo_being_upscaled_cancels_its_job(qtbot, window, make_photo,
                                                           monkeypatch, slow_tiles) -> None:
    a = make_photo("a.png", 128, 160)
    b = make_photo("b.png", 40, 48, seed=1)
    open_image(qtbot, window, a)
    window.open_paths([b])
    window.show_entry(0)
    qtbot.waitUntil(lambda: window.canvas.image().width() == 160, timeout=15000)
    set_tile(window, 32)  # 20 tiles
    seen = slow_tiles(0.2)
    window.run_upscale()
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=30000)
    start = time.perf_counter()
    with qtbot.waitSignal(window.jobCancelled, timeout=5000):
        window.queue_panel.list.setCurrentRow(0)
        window.queue_panel.remove_button.click()
    assert time.perf_counter() - start < 2.0
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)
    assert max(seen) < 20
    # The next photo is shown, not a stale "Loading a.png…".
    assert [e.name for e in window.queue] == ["b.png"]
    qtbot.waitUntil(lambda: window.canvas.image().width() == 48, timeout=15000)
    assert window.queue.current == 0


def test_removing_the_last_or_a_failed_photo_clears_the_canvas(qtbot, window, make_photo,
                                                               tmp_path: Path) -> None:
    from cmdsr_app.views.canvas import EMPTY_PLACEHOLDER

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    with qtbot.waitSignal(window.errorShown, timeout=15000):
        window.open_paths([broken])
    assert window.canvas.placeholder().startswith("Cannot open broken.png")
    window.remove_entry(0)
    assert window.canvas.image().isNull()
    assert window.canvas.placeholder() == EMPTY_PLACEHOLDER
    open_image(qtbot, window, make_photo("p.png", 40, 48))
    window.remove_entry(0)
    assert window.canvas.image().isNull() and window.canvas.placeholder() == EMPTY_PLACEHOLDER
    assert window.windowTitle() == "CMDSR Studio"


def test_a_failed_photo_is_not_reported_again_and_run_says_why(qtbot, window, make_photo,
                                                               tmp_path: Path) -> None:
    good = make_photo("good.png", 40, 48)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    open_image(qtbot, window, good)
    errors: list[str] = []
    window.errorShown.connect(errors.append)
    window.open_paths([broken])
    qtbot.waitUntil(lambda: window.queue[1].status is EntryStatus.FAILED, timeout=15000)
    assert len(errors) == 1
    window.show_entry(0)
    qtbot.waitUntil(lambda: window.canvas.image().width() == 48, timeout=15000)
    window.show_entry(1)  # selecting it again shows the reason, no second dialog
    qtbot.wait(300)
    assert len(errors) == 1
    assert "Cannot open broken.png" in window.canvas.placeholder()
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.run_action.trigger()
    assert "broken.png could not be opened" in blocker.args[0]
    assert "Open a photo first" not in blocker.args[0]


def test_save_dialogs_open_in_the_last_save_folder_never_the_config_folder(
    qtbot, window, isolated_settings: Path, tmp_path: Path, monkeypatch
) -> None:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QFileDialog

    from cmdsr_app.imaging import to_qimage

    starts: list[str] = []
    target = tmp_path / "saved" / "result.png"
    target.parent.mkdir()

    def fake_dialog(_parent, _title, start, _filter, **_options):
        starts.append(start)
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    window.saving.confirm_replace = lambda _path: True  # the second save replaces the first
    pixels = np.zeros((40, 56, 3), np.float32)
    pixels[:, :, 2] = 180
    QGuiApplication.clipboard().setImage(to_qimage(pixels))
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.paste_action.trigger()
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result_dialog()
    assert not Path(starts[0]).is_relative_to(isolated_settings)
    assert target.is_file()
    # The next dialog opens where the last save went, also after a restart.
    window.save_comparison_dialog()
    assert Path(starts[1]).parent == target.parent
    window.save_settings()
    assert window.store.load().last_save_dir == str(target.parent)
    # Pasted files are not "recent" and do not become the folder Open starts in.
    assert window.settings.recent_files == []
    assert not Path(window.settings.last_dir or "/nowhere").is_relative_to(isolated_settings)


def test_open_recent_lists_opened_files_and_folders_only(qtbot, window, make_photo,
                                                         tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.png").write_bytes(make_photo(f"f{i}.png", 32, 32, seed=i).read_bytes())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with qtbot.waitSignal(window.errorShown, timeout=15000):
        window.open_paths([broken])
    assert window.settings.recent_files == []  # a file that failed to open
    open_image(qtbot, window, folder)
    assert window.settings.recent_files == [str(folder)]  # the folder, not its files
    good = make_photo("good.png", 32, 40)
    open_image(qtbot, window, good)
    assert window.settings.recent_files == [str(good), str(folder)]
    assert [a.text() for a in window.recent_menu.actions()] == [str(good), str(folder)]


def test_save_needs_a_result_and_scale_is_locked_during_a_run(qtbot, window, make_photo,
                                                              monkeypatch, slow_tiles) -> None:
    assert not window.save_action.isEnabled() and not window.save_compare_action.isEnabled()
    open_image(qtbot, window, make_photo("p.png", 64, 64))
    assert not window.save_action.isEnabled()
    set_tile(window, 32)
    seen = slow_tiles(0.1)
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
        qtbot.waitUntil(lambda: len(seen) >= 1, timeout=30000)
        assert not window.settings_panel.scale_combo.isEnabled()
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=30000)  # Compare's bicubic side too
    assert window.settings_panel.scale_combo.isEnabled()
    assert window.save_action.isEnabled() and window.save_compare_action.isEnabled()
    window.open_paths([make_photo("q.png", 40, 40, seed=2)])  # another photo: no result yet
    assert not window.save_action.isEnabled()


def test_model_list_tells_checkpoints_of_different_runs_apart(qtbot, window, tiny_model_path,
                                                              tmp_path: Path) -> None:
    import shutil

    paths = []
    for run in ("run-1", "run-2"):
        target = tmp_path / run / "checkpoints" / "step_000100.pt"
        target.parent.mkdir(parents=True)
        shutil.copy(tiny_model_path, target)
        paths.append(target)
        with qtbot.waitSignal(window.modelReady, timeout=15000):
            window.use_trained_model(str(target))
    combo = window.settings_panel.model_combo
    labels = {combo.itemText(combo.findData(str(p))) for p in paths}
    assert labels == {"step_000100.pt (run-1)", "step_000100.pt (run-2)"}


def test_a_text_file_named_pt_is_described_as_text(qtbot, window, tmp_path: Path) -> None:
    fake = tmp_path / "model.pt"
    fake.write_text("this is not a model\n")
    with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
        window.choose_model(str(fake))
    assert "not a PyTorch model file (it holds text)" in blocker.args[0]
    assert "code or objects" not in blocker.args[0]


def test_eta_of_a_one_tile_photo_shows_the_time_so_far() -> None:
    from cmdsr_app.state import eta_text

    assert eta_text(None, 0.5) == "ETA estimating…"
    assert eta_text(None, 75.0) == "1 min 15 s so far"
    assert eta_text(30.0, 10.0) == "ETA 30 s"


def test_help_about_names_version_model_card_and_licence(window) -> None:
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert window.about_action in help_menu.actions()
    text = window.about_text()
    assert "CMDSR Studio" in text and "MIT" in text
    assert "Full model card" in text and ".md" in text
    window.about_action.trigger()
    assert window.about_box.isVisible()
    window.about_box.close()


def test_canvas_hint_fits_the_default_window(window) -> None:
    window.resize(1200, 800)
    window.tabs.setCurrentIndex(0)
    hint = window.hint_label
    assert hint.fontMetrics().horizontalAdvance(hint.text()) <= hint.width()


@pytest.mark.parametrize("opens", [False])
def test_open_run_folder_without_a_file_manager_says_where_it_is(qtbot, make_photo, tmp_path,
                                                                 monkeypatch, opens) -> None:
    from PySide6.QtGui import QDesktopServices

    from cmdsr_app.training.tab import TrainingTab

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: opens)
    tab = TrainingTab(settings={"run_dir": str(run)}, runs_root=tmp_path / "runs")
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.problemOccurred, timeout=1000) as blocker:
        tab.open_folder_button.click()
    assert str(run) in blocker.args[1] and "file manager" in blocker.args[1]


def test_a_gray_photo_is_shown_and_saved_gray(qtbot, window, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:48]
    gray = np.clip(60 + 3 * xx + 2 * yy + rng.normal(0, 10, (40, 48)), 0, 255).astype(np.uint8)
    source = tmp_path / "gray.png"
    Image.fromarray(gray, "L").save(source)
    open_image(qtbot, window, source)
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    result = window.compare.result("cmdsr").convertToFormat(window.compare.result("cmdsr").Format.Format_RGB888)
    shown = np.frombuffer(result.constBits(), np.uint8).reshape(result.height(),
                                                                result.bytesPerLine())
    shown = shown[:, : result.width() * 3].reshape(result.height(), result.width(), 3)
    assert np.array_equal(shown[..., 0], shown[..., 1]) and np.array_equal(shown[..., 1], shown[..., 2])
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result(tmp_path / "gray_x4.png")
    with Image.open(tmp_path / "gray_x4.png") as written:
        assert written.mode == "L" and written.size == (192, 160)


def test_threads_setting_reaches_the_engine_and_is_remembered(qtbot, window, make_photo,
                                                              monkeypatch) -> None:
    import torch

    import cmdsr_app.controllers.upscale as mw

    real = mw.upscale_with
    seen: list[int] = []  # PyTorch's thread count in the worker, as each tile is reported

    def watched(image, method, settings, choice, cache, progress=None, cancel=None):
        def report(done: int, total: int) -> None:
            seen.append(torch.get_num_threads())
            if progress:
                progress(done, total)

        return real(image, method, settings, choice, cache, report, cancel)

    monkeypatch.setattr(mw, "upscale_with", watched)
    panel = window.settings_panel
    assert panel.threads_spin.value() == 0 and panel.threads_spin.text() == "Auto"
    panel.threads_spin.setValue(3)  # neither PyTorch's default here nor the tests' 1
    assert window.settings.threads == 3  # remembered with the other settings
    open_image(qtbot, window, make_photo("t.png", 48, 48))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
        assert not panel.threads_spin.isEnabled()  # locked during a run
    assert seen and set(seen) == {3}
    qtbot.waitUntil(panel.threads_spin.isEnabled, timeout=10000)
