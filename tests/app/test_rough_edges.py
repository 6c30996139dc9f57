"""The smaller rough edges of issue 22, item 10, each as a user meets it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog


def test_about_is_short_rendered_and_links_the_full_card(window) -> None:
    text = window.about_text()
    for markdown in ("`", "**", "](", "# "):
        assert markdown not in text
    assert "<code>" in text or "Model:" in text
    assert 'href="file://' in text and "Full model card" in text and "MIT" in text
    assert len(text) < 1500  # a summary, not the card pasted in
    # Written for users, not the card's notes for whoever trains the next model (issue 31).
    assert "Status" not in text and "condition reads" not in text
    assert "cmdsr_x4.pt, the ×4 model that comes with the app" in text


def test_the_first_open_dialog_starts_in_pictures_or_home(qtbot, window, monkeypatch,
                                                          tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "Pictures").mkdir(parents=True)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    window.settings.last_dir = ""
    seen: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda parent, title, folder, *a: (seen.append(folder), ([], ""))[1]))
    window.open_action.trigger()
    assert seen == [str(home / "Pictures")]
    (home / "Pictures").rmdir()
    window.open_action.trigger()
    assert seen[-1] == str(home)


def test_compare_defaults_to_bicubic_and_remembers_its_sides(qtbot, window) -> None:
    from cmdsr_app.main_window import MainWindow

    assert (window.compare.left_source, window.compare.right_source) == ("bicubic", "cmdsr")
    window.compare.set_sources("baseline", "cmdsr_alt")
    window.close()
    second = MainWindow()
    qtbot.addWidget(second)
    try:
        assert (second.compare.left_source, second.compare.right_source) == (
            "baseline", "cmdsr_alt")
    finally:
        second.close()


def test_scale_shows_the_models_own_while_it_loads(qtbot, tiny_model_path: Path) -> None:
    from cmdsr_app.main_window import MainWindow

    win = MainWindow()  # no engine yet: the model has not been checked
    qtbot.addWidget(win)
    try:
        assert win.models.info is None
        assert win.settings_panel.scale_combo.currentData() == 4  # not "x2"
        assert win.settings_panel.size_box.choice.label() == "x4"
    finally:
        win.close()


def test_cancelling_is_not_left_on_the_status_bar_after_a_cancelled_batch(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([make_photo(f"c{i}.png", 36, 40, seed=i) for i in range(3)])
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(window.jobCancelled, timeout=15000):
        window.batch_panel.start_button.click()
        window.cancel_job()
        assert window.statusBar().currentMessage() == "Cancelling…"
    assert "Cancelling" not in window.statusBar().currentMessage()
    assert "cancelled" in window.statusBar().currentMessage()


def test_queue_rows_show_their_status_when_not_selected(qtbot, window, make_photo) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([make_photo("a.png"), make_photo("b.png", seed=1)])
    texts = [window.queue_panel.list.item(i).text() for i in range(2)]
    assert all("\n" in t and t.split("\n")[1] for t in texts), texts
