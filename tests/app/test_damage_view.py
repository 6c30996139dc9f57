"""The damage the model sees, in the window: the estimate for the photo and each drawn region
(a tiny model with a damage head), "no readout" for a model without one, the per-tile overlay
on the canvas, and the Adapt option (remembered, locked during a run, and a per-region run
and batch take the local-adaptation path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from cmdsr_app.damage_readout import blur_words, describe, noise_words
from cmdsr_app.settings import AppSettings
from cmdsr_app.state import Region

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def head_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny conditioned x4 model of the other app tests, with a damage head whose output
    moves with the condition (a random MLP on an amplified condition), saved to disk."""
    import torch

    from engine import ModelConfig, build_model, save_model
    from engine.damage_head import DamageHead, attach_damage_head

    torch.manual_seed(3)
    model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8))
    head = DamageHead(8, hidden=8)
    with torch.no_grad():
        head.in_std.fill_(0.02)  # small condition differences -> clearly different readings
        head.out_mean.copy_(torch.tensor([2.0, 12.0]))
        head.out_std.copy_(torch.tensor([0.5, 4.0]))
        head.out_max.copy_(torch.tensor([4.0, 50.0]))
    attach_damage_head(model, head)
    path = tmp_path_factory.mktemp("models") / "tiny_head_x4.pt"
    save_model(model, path)
    return path


def open_image(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([path])


def use_model(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(path))


def drag(qtbot, widget, start: tuple[int, int], end: tuple[int, int]) -> None:
    qtbot.mousePress(widget, LEFT, pos=QPoint(*start))
    qtbot.mouseMove(widget, QPoint((start[0] + end[0]) // 2, (start[1] + end[1]) // 2))
    qtbot.mouseMove(widget, QPoint(*end))
    qtbot.mouseRelease(widget, LEFT, pos=QPoint(*end))


def engine_reading(model_path: Path, photo: Path, region: tuple[int, int, int, int] | None = None):
    """What the engine itself says: the whole photo from Auto patches, or one region."""
    from engine import estimate_damage, load_model, read_image, select_support

    model, pixels = load_model(model_path), read_image(photo).pixels
    if region is not None:
        return estimate_damage(pixels, [region], model)
    return estimate_damage(pixels, select_support(pixels, count=20, size=32, mode="auto"), model)


def test_words_follow_the_degradation_scale() -> None:
    assert [blur_words(s) for s in (0.6, 1.5, 2.6, 3.6)] == [
        "nearly sharp", "slightly soft", "soft", "very soft"]
    assert [noise_words(s) for s in (0, 5, 15, 30)] == ["clean", "faint", "visible", "heavy"]


def test_a_reading_reuses_the_numbers_it_already_has(head_model_path: Path, make_photo) -> None:
    from cmdsr_app.damage_readout import DamageReading, RegionReading, read_damage
    from cmdsr_app.jobs import ModelCache
    from engine import DamageEstimate, read_image

    pixels = read_image(make_photo("photo.png", 72, 96)).pixels
    old = DamageReading(DamageEstimate(9.0, 9.0), "auto", [RegionReading((0, 0, 40, 40),
                                                                         DamageEstimate(7.0, 7.0))])
    new = read_damage(pixels, [(0, 0, 40, 40), (40, 30, 50, 40)], head_model_path, ModelCache(),
                      known=old)
    assert new.photo == DamageEstimate(9.0, 9.0)  # not read again
    assert new.regions[0].estimate == DamageEstimate(7.0, 7.0)
    fresh = engine_reading(head_model_path, make_photo("photo.png", 72, 96), (40, 30, 50, 40))
    assert new.regions[1].estimate.noise_sigma == pytest.approx(fresh.noise_sigma, abs=1e-5)


def test_estimate_for_the_photo_and_a_drawn_region(qtbot, window, make_photo,
                                                   head_model_path: Path) -> None:
    photo = make_photo("photo.png", 72, 96)
    use_model(qtbot, window, head_model_path)
    with qtbot.waitSignal(window.damage.readingShown, timeout=30000) as blocker:
        open_image(qtbot, window, photo)
    reading = blocker.args[0]
    expected = engine_reading(head_model_path, photo)
    assert reading.no_readout == "" and reading.regions == []
    assert reading.photo.blur_sigma == pytest.approx(expected.blur_sigma, abs=1e-5)
    assert reading.photo.noise_sigma == pytest.approx(expected.noise_sigma, abs=1e-5)
    rows = window.damage_panel.rows()
    assert rows == [f"Whole photo (Auto patches)\n{describe(expected)}"]
    assert "blur σ" in rows[0] and " px (" in rows[0] and "levels (" in rows[0]
    assert "before the ×4 downscale" in window.damage_panel.list.toolTip()

    # Draw a region with the mouse (2 screen pixels per photo pixel): it gets its own line.
    window.canvas.set_view(2.0, QPointF(0, 0))
    with qtbot.waitSignal(window.damage.readingShown, timeout=30000,
                          check_params_cb=lambda r: len(r.regions) == 1) as blocker:
        drag(qtbot, window.canvas, (10, 10), (100, 90))
    assert window.regions.regions == [Region(5, 5, 45, 40)]
    region = blocker.args[0].regions[0]
    expected_region = engine_reading(head_model_path, photo, (5, 5, 45, 40))
    assert region.estimate.blur_sigma == pytest.approx(expected_region.blur_sigma, abs=1e-5)
    assert region.estimate.noise_sigma == pytest.approx(expected_region.noise_sigma, abs=1e-5)
    # its own patches, not the photo's: the numbers differ
    assert abs(region.estimate.noise_sigma - expected.noise_sigma) > 1e-3
    assert window.damage_panel.rows()[1] == f"Region 1\n{describe(expected_region)}"

    # A region too small for a patch says why instead of a number.
    with qtbot.waitSignal(window.damage.readingShown, timeout=30000,
                          check_params_cb=lambda r: len(r.regions) == 2):
        window.regions.add(Region(60, 40, 10, 10))
    assert window.damage_panel.rows()[2].startswith("Region 2\nno estimate: it is 10x10 pixels")


def test_a_model_without_a_damage_head_says_so(qtbot, window, make_photo) -> None:
    """Issue 22, item 6: said once, in plain words (no "damage head", no script); Ctrl+D
    answers; Adapt: Per region says it gains nothing with this model."""
    with qtbot.waitSignal(window.damage.readingShown, timeout=30000) as blocker:
        open_image(qtbot, window, make_photo("photo.png", 72, 96))
    assert "no damage readout" in blocker.args[0].no_readout
    message = window.damage_panel.message.text()
    assert "cannot tell how blurred or noisy" in message and "upscales all the same" in message
    for jargon in ("head", "script", "readout", ".py"):
        assert jargon not in message and jargon not in window.damage_panel.message.toolTip()
    assert window.damage_panel.rows() == []
    # Ctrl+D: the map cannot be shown, and the status bar says why instead of nothing
    action = window.damage.overlay_action
    assert action.isEnabled() and not action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert not action.isChecked()
    assert "No damage map" in window.statusBar().currentMessage()
    assert "cannot tell how blurred" in window.statusBar().currentMessage()
    assert "head" not in action.toolTip()
    combo = window.settings_panel.adapt_combo
    local = combo.findData("local")
    assert combo.itemText(local) == "Per region (no gain with this model)"
    assert "twice as long" in combo.itemData(local, Qt.ItemDataRole.ToolTipRole)
    assert window.last_error is None  # not an error: upscaling works the same


def test_a_model_with_a_readout_offers_per_region_plainly(qtbot, window,
                                                          head_model_path: Path) -> None:
    use_model(qtbot, window, head_model_path)
    combo = window.settings_panel.adapt_combo
    assert combo.itemText(combo.findData("local")) == "Per region"


def test_a_photo_that_failed_to_open_shows_no_loading_line(qtbot, window, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    with qtbot.waitSignal(window.errorShown, timeout=15000):
        window.open_paths([broken])
    qtbot.wait(50)
    message = window.damage_panel.message.text()
    assert "Loading" not in message and "broken.png could not be opened" in message
    # shown again later: still no spinner
    window.photos.show_entry(0)
    assert "Loading" not in window.damage_panel.message.text()


def test_overlay_toggles_paints_tiles_and_goes_with_the_photo(qtbot, window, make_photo,
                                                              head_model_path: Path) -> None:
    use_model(qtbot, window, head_model_path)
    action = window.damage.overlay_action
    assert not action.isChecked()  # off by default
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert action in view.actions()
    with qtbot.waitSignal(window.damage.readingShown, timeout=30000):
        open_image(qtbot, window, make_photo("photo.png", 72, 96))
    canvas = window.canvas
    canvas.set_view(2.0, QPointF(0, 0))
    before = canvas.grab().toImage()
    with qtbot.waitSignal(window.damage.mapShown, timeout=30000) as blocker:
        window.damage_panel.overlay_button.click()
    assert action.isChecked() and blocker.args == [4]  # 72x96 in 64 px cells: 2 x 2
    tiles = canvas.damage_tiles
    assert sorted((t.x, t.y, t.w, t.h) for t in tiles) == [
        (0, 0, 48, 36), (0, 36, 48, 36), (48, 0, 48, 36), (48, 36, 48, 36)]
    assert all(0 <= t.blur_sigma <= 4 and 0 <= t.noise_sigma <= 50 for t in tiles)
    shown = canvas.grab().toImage()
    assert shown != before
    # the tile at the top left is tinted: its colour moved from the photo's own
    assert shown.pixelColor(20, 20) != before.pixelColor(20, 20)
    with qtbot.waitSignal(window.damage.mapShown, timeout=5000) as blocker:
        action.trigger()
    assert blocker.args == [0] and canvas.damage_tiles == []
    assert canvas.grab().toImage() == before
    # On again, then another photo: the old map goes at once, the new one follows.
    with qtbot.waitSignal(window.damage.mapShown, timeout=30000):
        action.trigger()
    with qtbot.waitSignal(window.damage.mapShown, timeout=30000,
                          check_params_cb=lambda n: n == 2):  # 40x100: 1 x 2 cells
        window.open_paths([make_photo("other.png", 40, 100, seed=2)])
        assert canvas.damage_tiles == []
    assert {(t.w, t.h) for t in canvas.damage_tiles} == {(50, 40)}


def test_adapt_is_remembered_and_a_bad_value_falls_back(qtbot, window, isolated_settings: Path) -> None:
    from cmdsr_app.main_window import MainWindow

    panel = window.settings_panel
    assert panel.adapt == "global"  # the default
    panel.adapt_combo.setCurrentIndex(panel.adapt_combo.findData("local"))
    window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    try:
        assert second.settings_panel.adapt == "local"
        assert second.models.run_settings().adapt == "local"
    finally:
        second.close()
    assert AppSettings.from_dict({"adapt": "sideways"}).adapt == "global"


def test_per_region_run_takes_the_local_path_and_locks_adapt(qtbot, window, make_photo,
                                                             slow_tiles) -> None:
    open_image(qtbot, window, make_photo("photo.png", 72, 96))
    panel = window.settings_panel
    combo = panel.tile_combo
    combo.addItem("32 px", 32)
    combo.setCurrentIndex(combo.findData(32))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    whole = window.upscale.outcomes["cmdsr"]
    assert whole.adapt == "global"
    # Compare's Bicubic side is computed after the run, in the background: let it end
    qtbot.waitUntil(lambda: not window.heavy.busy and not window.upscale.optional.busy,
                    timeout=10000)
    panel.adapt_combo.setCurrentIndex(panel.adapt_combo.findData("local"))
    seen = slow_tiles(0.03)
    finished: list[str] = []
    window.upscaleFinished.connect(finished.append)
    window.run_upscale()
    assert not panel.adapt_combo.isEnabled()  # locked like Scale and Threads
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=30000)
    assert finished or not panel.adapt_combo.isEnabled()
    qtbot.waitUntil(lambda: finished == ["cmdsr"] and not window.heavy.busy, timeout=60000)
    assert panel.adapt_combo.isEnabled()
    local = window.upscale.outcomes["cmdsr"]
    assert local.adapt == "local"
    # cell batches, then 2 blocks and the tail of each of the 3 x 3 tiles
    assert max(seen) == 1 + 9 * 3
    assert local.image.pixels.shape == whole.image.pixels.shape == (288, 384, 3)
    assert not np.array_equal(local.image.pixels, whole.image.pixels)
    assert "per region" in window.queue[0].message


def test_per_region_cancel(qtbot, window, make_photo, slow_tiles) -> None:
    open_image(qtbot, window, make_photo("photo.png", 72, 96))
    panel = window.settings_panel
    panel.adapt_combo.setCurrentIndex(panel.adapt_combo.findData("local"))
    panel.tile_combo.addItem("32 px", 32)
    panel.tile_combo.setCurrentIndex(panel.tile_combo.findData(32))
    seen = slow_tiles(0.05)
    window.run_upscale()
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=30000)
    with qtbot.waitSignal(window.jobCancelled, timeout=10000):
        panel.cancel_button.click()
    assert max(seen) < 28 and window.compare.result("cmdsr") is None


def test_batch_uses_the_adapt_setting(qtbot, window, make_photo, tmp_path: Path, monkeypatch) -> None:
    import cmdsr_app.jobs as jobs

    calls: list[tuple[str, tuple]] = []
    real = jobs.upscale_local

    def spy(image, upscaler, choice, *args, **kwargs):
        calls.append((Path(image.source).name if image.source else "", choice.regions))
        return real(image, upscaler, choice, *args, **kwargs)

    monkeypatch.setattr(jobs, "upscale_local", spy)
    a, b = make_photo("a.png", 40, 48), make_photo("b.png", 36, 44, seed=1)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([a, b])
    window.regions.add(Region(0, 0, 40, 40))  # a's own region
    panel = window.settings_panel
    panel.adapt_combo.setCurrentIndex(panel.adapt_combo.findData("local"))
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_action.trigger()
    assert [item.ok for item in blocker.args[0].items] == [True, True]
    assert calls == [("a.png", ((0, 0, 40, 40),)), ("b.png", ())]
