"""The patch previews (Auto, Random) are disabled while no photo is shown, instead of
answering with a "No photo" dialog (issue 31 item 9)."""

from __future__ import annotations

from pathlib import Path


def test_previews_need_a_photo(qtbot, window, make_photo, tmp_path: Path) -> None:
    panel = window.region_panel
    assert not panel.auto_button.isEnabled() and not panel.random_button.isEnabled()
    assert "open a photo first" in panel.auto_button.toolTip()
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([make_photo("p.png", 48, 64)])
    assert panel.auto_button.isEnabled() and panel.random_button.isEnabled()
    with qtbot.waitSignal(window.previewReady, timeout=15000):
        panel.auto_button.click()
    # A photo that fails to open: nothing to preview on.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with qtbot.waitSignal(window.errorShown, timeout=15000):
        window.open_paths([broken])
        window.show_entry(1)
    qtbot.waitUntil(lambda: window.queue.current == 1 and window.photos.image is None, timeout=5000)
    assert not panel.auto_button.isEnabled() and not panel.random_button.isEnabled()
    window.show_entry(0)
    qtbot.waitUntil(lambda: panel.auto_button.isEnabled(), timeout=15000)
    window.remove_entry(1)
    window.remove_entry(0)
    assert not panel.auto_button.isEnabled()
    assert window.last_error is not None and window.last_error[0] != "No photo"
