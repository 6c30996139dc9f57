"""Saving over the original photo is refused in one step: the file dialog does not first ask
"Replace it?" (issue 31 item 11); another existing file is asked about once."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog


def test_the_original_is_refused_in_one_step(qtbot, window, make_photo, monkeypatch,
                                             tmp_path: Path) -> None:
    photo = make_photo("p.png", 40, 48)
    original = photo.read_bytes()
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([photo])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    chosen = [str(photo)]
    options: list[object] = []

    def dialog(*args, **kwargs):
        # The dialog itself asks before replacing unless told not to: that was the first step.
        options.append(kwargs.get("options", args[5] if len(args) > 5 else None))
        return chosen[0], ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    asked: list[Path] = []
    window.saving.confirm_replace = lambda path: asked.append(path) or True
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.save_result_dialog()
    assert "original photo" in blocker.args[0]
    assert options and options[0] is not None
    assert options[0] & QFileDialog.Option.DontConfirmOverwrite
    assert asked == [] and photo.read_bytes() == original
    # Another existing file: asked once, by the app, then written.
    other = tmp_path / "other.png"
    other.write_bytes(b"old")
    chosen[0] = str(other)
    with qtbot.waitSignal(window.saved, timeout=15000):
        window.save_result_dialog()
    assert asked == [other] and other.read_bytes() != b"old"
    # The same for a comparison.
    chosen[0] = str(photo)
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.save_comparison_dialog()
    assert "original photo" in blocker.args[0] and photo.read_bytes() == original
