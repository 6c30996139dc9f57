"""A Run pressed while the model or the photo still loads starts by itself once both are
ready (issue 22, item 5), as docs/app.md promises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


@pytest.fixture
def slow_start(qtbot, tiny_model_path: Path, tiny_baseline_path: Path, monkeypatch):
    """A window whose model check takes a second (PyTorch and a big model on a slow disk)."""
    import cmdsr_app.controllers.models as models
    import engine
    import engine.resources

    for target in (engine, engine.resources):
        monkeypatch.setattr(target, "default_model_path", lambda: tiny_model_path)
        monkeypatch.setattr(target, "default_baseline_path", lambda: tiny_baseline_path)
    real = models.inspect_model

    def slow_inspect(path, cache):
        time.sleep(1.0)
        return real(path, cache)

    monkeypatch.setattr(models, "inspect_model", slow_inspect)
    from cmdsr_app.main_window import MainWindow

    win = MainWindow()
    win.confirm_close = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_run_pressed_while_the_model_and_photo_load_starts_once_ready(
    qtbot, slow_start, make_photo
) -> None:
    window = slow_start
    photo = make_photo("p.png", 40, 48)
    window.open_paths([photo])
    assert window.photos.image is None and not window.models.ready  # both still loading
    assert window.run_action.isEnabled()
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.run_action.trigger()
        assert "the run starts when it is ready" in window.statusBar().currentMessage()
    assert window.upscale.has_result and window.last_error is None
