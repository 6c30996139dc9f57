"""Start-up: no display -> the headless sample run; --selftest; otherwise the main window."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def headless_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from cmdsr_app import headless

    calls: list[str] = []
    monkeypatch.setattr(headless, "run_sample", lambda *a, **k: calls.append("run_sample") or 0)
    monkeypatch.setattr(headless, "selftest", lambda *a, **k: calls.append("selftest") or 3)
    return calls


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="Linux display rules")
def test_display_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    from cmdsr_app.app import has_display

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert not has_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not has_display()
    assert has_display(force_gui=True)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="Linux display rules")
def test_no_display_runs_the_sample(monkeypatch: pytest.MonkeyPatch, headless_calls: list[str]) -> None:
    from cmdsr_app.app import run

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert run([]) == 0
    assert headless_calls == ["run_sample"]


def test_selftest_flag(headless_calls: list[str]) -> None:
    from cmdsr_app.app import run

    assert run(["--selftest"]) == 3
    assert headless_calls == ["selftest"]


def test_gui_flag_opens_the_main_window(qtbot, monkeypatch: pytest.MonkeyPatch, make_photo,
                                        headless_calls: list[str]) -> None:
    import cmdsr_app.app as app_module

    photo = make_photo("p.png", 40, 40)
    seen = []

    def fake_exec(app, window) -> int:
        # Instead of a nested app.exec() (which leaves pytest-qt's loop unusable afterwards),
        # let the window work until the photo is shown, then close it as a user would.
        seen.append(window)
        qtbot.addWidget(window)
        with qtbot.waitSignal(window.imageLoaded, timeout=15000):
            pass
        window.confirm_close = lambda: True
        window.close()
        return 0

    monkeypatch.setattr(app_module, "_exec", fake_exec)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert app_module.run(["--gui", str(photo)]) == 0
    assert headless_calls == []
    assert seen and seen[0].queue[0].path == photo
    assert seen[0].windowTitle().startswith("p.png")
    assert not seen[0].windowIcon().isNull()


def test_the_window_shows_before_the_engine_loads(tmp_path) -> None:
    """In a fresh process, with the engine's start-up held back: the window is up and says
    the model is loading, and PyTorch has not been imported on the way."""
    import os
    import subprocess
    from pathlib import Path

    code = (
        "import sys, threading\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "import cmdsr_app.main_window as mw\n"
        "gate = threading.Event()\n"
        "mw.probe_engine = lambda _p, _c: (gate.wait(60), ['cpu'])[1]\n"
        "window = mw.MainWindow()\n"
        "window.show()\n"
        "for _ in range(20):\n"
        "    app.processEvents()\n"
        "print('torch' in sys.modules, window.isVisible(), window.engine_ready,\n"
        "      window.settings_panel.model_info.text())\n"
        "gate.set()\n"
        "window.confirm_close = lambda: True\n"
        "window.close()\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CMDSR_STUDIO_CONFIG_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False True False Loading the model…"


def test_run_pressed_while_the_model_loads_starts_when_it_is_ready(
    qtbot, tiny_model_path, tiny_baseline_path, make_photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import engine
    import engine.resources

    for module in (engine, engine.resources):
        monkeypatch.setattr(module, "default_model_path", lambda: tiny_model_path)
        monkeypatch.setattr(module, "default_baseline_path", lambda: tiny_baseline_path)
    import cmdsr_app.main_window as mw

    gate = threading.Event()
    real_probe = mw.probe_engine
    monkeypatch.setattr(mw, "probe_engine", lambda p, c: (gate.wait(60), real_probe(p, c))[1])
    window = mw.MainWindow(with_training=False)
    window.confirm_close = lambda: True
    qtbot.addWidget(window)
    window.show()
    assert window.settings_panel.model_info.text() == "Loading the model…"
    window.open_paths([make_photo("p.png", 40, 48)])
    with qtbot.waitSignal(window.imageLoaded, timeout=30000):
        gate.set()
    assert not window.models.ready  # the photo was read before the model was checked
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_action.trigger()
    assert window.models.info is not None and window.compare.result("cmdsr").width() == 192
    window.close()
