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
