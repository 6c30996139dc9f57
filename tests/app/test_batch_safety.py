"""Batches that never touch the originals, keep only results of the same model, tell photos
of one name apart, and disable (or ask for) what they cannot run without (issue 22, items 1,
2, 7, 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_driving import open_queue, run_batch
from PySide6.QtWidgets import QFileDialog

from cmdsr_app.state import EntryStatus


@pytest.mark.parametrize("replace_ticked", [True, False])
def test_a_batch_into_the_photos_own_folder_named_stem_is_refused(
    qtbot, window, make_photo, tmp_path: Path, replace_ticked: bool
) -> None:
    photos = [make_photo("JFK.png", 50, 40), make_photo("other.png", 36, 40, seed=1)]
    before = {p: p.read_bytes() for p in photos}
    open_queue(qtbot, window, photos)
    window.batch_panel.folder_edit.setText(str(tmp_path))  # the photos' own folder
    window.batch_panel.pattern_edit.setText("{stem}")
    window.batch_panel.overwrite_check.setChecked(replace_ticked)
    started: list[object] = []
    window.batch.started.connect(lambda: started.append(True))
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.batch_panel.start_button.click()
    message = blocker.args[0]
    assert "JFK.png" in message and "write over the original photo" in message
    qtbot.wait(100)
    assert started == [] and not window.heavy.busy
    assert {p: p.read_bytes() for p in photos} == before
    assert [window.queue[i].status for i in range(2)] != [EntryStatus.DONE] * 2


def test_save_result_over_the_original_photo_is_refused(qtbot, window, make_photo) -> None:
    photo = make_photo("p.png", 40, 40)
    original = photo.read_bytes()
    open_queue(qtbot, window, [photo])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.save_result(photo)
    assert "p.png" in blocker.args[0] and "original" in blocker.args[0]
    assert photo.read_bytes() == original


@pytest.fixture
def other_model(tmp_path: Path) -> Path:
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(7)
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8)
    return save_model(build_model(cfg), tmp_path / "models" / "other_x4.pt")


@pytest.mark.parametrize("answer", ["Replace them", "Keep them (skip)"])
def test_results_of_another_model_are_not_kept_silently(
    qtbot, window, make_photo, tmp_path: Path, other_model: Path, answer: str
) -> None:
    photos = [make_photo(f"f{i}.png", 36, 40, seed=i) for i in range(3)]
    open_queue(qtbot, window, photos)
    out = tmp_path / "out"
    window.batch_panel.folder_edit.setText(str(out))
    assert all(item.ok and not item.skipped for item in run_batch(qtbot, window).items)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    # The same model and settings again: what is done stays done, without a question.
    assert all(item.skipped for item in run_batch(qtbot, window).items)
    assert window.batch.replace_box is None

    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(other_model))
    qtbot.waitUntil(lambda: window.batch_panel.start_button.isEnabled(), timeout=10000)
    window.batch_panel.start_button.click()
    qtbot.waitUntil(lambda: window.batch.replace_box is not None
                    and window.batch.replace_box.isVisible(), timeout=5000)
    box = window.batch.replace_box
    assert "3 result(s)" in box.text() and "another model" in box.text()
    assert "tiny_x4.pt" in box.text()
    button = next(b for b in box.buttons() if b.text() == answer)
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        button.click()
    report = blocker.args[0]
    now = {p.name: p.read_bytes() for p in out.iterdir()}
    if answer == "Replace them":
        assert not any(item.skipped for item in report.items)
        assert all(now[name] != data for name, data in first.items())
        # ...and they are now known as this model's: a new batch skips them quietly.
        assert all(item.skipped for item in run_batch(qtbot, window).items)
        assert window.batch.replace_box is None
    else:
        assert all(item.skipped for item in report.items)
        assert now == first


def test_two_photos_of_one_name_are_told_apart_and_folder_fixes_the_clash(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    (tmp_path / "kitchen").mkdir()
    (tmp_path / "garden").mkdir()
    a = make_photo("kitchen/coffee.png", 36, 40)
    b = make_photo("garden/coffee.png", 36, 40, seed=1)
    open_queue(qtbot, window, [a, b])
    rows = [window.queue_panel.list.item(i).text().split("\n")[0] for i in range(2)]
    assert rows == ["kitchen/coffee.png", "garden/coffee.png"]
    out = tmp_path / "out"
    window.batch_panel.folder_edit.setText(str(out))
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.batch_panel.start_button.click()
    message = blocker.args[0]
    assert "{folder}" in message and "kitchen/coffee.png" in message
    assert "add {stem}" not in message  # the pattern has {stem} already
    window.batch_panel.pattern_edit.setText("{folder}_{stem}_{size}")
    report = run_batch(qtbot, window)
    assert all(item.ok for item in report.items)
    assert sorted(p.name for p in out.iterdir()) == ["garden_coffee_x4.png", "kitchen_coffee_x4.png"]
    names = [window.batch_panel.table.item(r, 0).text() for r in range(2)]
    assert names == ["kitchen/coffee.png", "garden/coffee.png"]


def test_what_cannot_run_is_disabled_and_a_missing_folder_is_asked_for(
    qtbot, window, make_photo, tmp_path: Path, monkeypatch
) -> None:
    for widget in (window.run_action, window.settings_panel.run_button, window.batch_action,
                   window.batch_panel.start_button):
        assert not widget.isEnabled()
    window.batch_action.trigger()
    window.run_action.trigger()
    qtbot.wait(50)
    assert window.last_error is None and window.error_dialog is None
    open_queue(qtbot, window, [make_photo("p.png", 36, 40)])
    assert window.run_action.isEnabled() and window.batch_panel.start_button.isEnabled()
    # No output folder: the batch asks for one (cancelled: nothing happens, no error dialog)...
    asked: list[str] = []
    answer = [""]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: asked.append("asked") or answer[0]))
    window.batch_panel.folder_edit.setText("")
    window.batch_panel.start_button.click()
    qtbot.wait(50)
    assert asked == ["asked"] and window.last_error is None and not window.heavy.busy
    # ...and, given one, runs into it.
    out = tmp_path / "chosen"
    out.mkdir()
    answer[0] = str(out)
    report = run_batch(qtbot, window)
    assert report.items[0].ok and (out / "p_x4.png").exists()
    assert window.batch_panel.folder == str(out)
