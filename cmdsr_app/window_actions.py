"""The main window's actions and menus (File, Run, View, Help) with their shortcuts: the
window's verbs as its menus offer them. Built once by :class:`MainWindow`."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QKeySequence

from cmdsr_app.controllers.job_buttons import JobButtons


def build_actions(window: Any) -> None:
    """Create ``window``'s actions (``open_action``, ``run_action``, ...) and menus; ``window``
    is the MainWindow (typed loosely: this module must not import the window that uses it)."""
    Key = QKeySequence.StandardKey
    w = window

    def a(text: str, slot: Any, shortcut: QKeySequence | str | None = None,
          tip: str = "") -> QAction:
        action = QAction(text, w)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        w.addAction(action)
        return action

    w.open_action = a("&Open images…", w.photos.open_dialog, Key.Open)
    w.open_folder_action = a("Open &folder…", w.photos.open_folder_dialog, "Ctrl+Shift+O")
    w.paste_action = a("&Paste image", w.photos.paste, Key.Paste)
    w.save_action = a("&Save result…", w.saving.result_dialog, Key.Save)
    w.save_compare_action = a("Save &comparison…", w.saving.comparison_dialog, "Ctrl+Shift+S")
    w.quit_action = a("&Quit", w.close, Key.Quit)
    w.run_action = a("&Run", w.upscale.run, "Ctrl+R", "Upscale the current image")
    w.run_action.setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("F5")])
    w.cancel_action = a("&Cancel", w.upscale.cancel, "Esc", "Stop the running job")
    w.batch_action = a("Run &batch", w.batch.start, "Ctrl+B")
    w.job_buttons = JobButtons(
        queue=w.queue, heavy=w.heavy, settings_panel=w.settings_panel, parent=w,
        start=(w.run_action, w.batch_action, w.settings_panel.run_button,
               w.batch_panel.start_button), cancel=(w.cancel_action,))
    w.zoom_in_action = a("Zoom &in", lambda: w._active_view().zoom_in(), Key.ZoomIn)
    w.zoom_in_action.setShortcuts([QKeySequence("Ctrl++"), QKeySequence("Ctrl+=")])
    w.zoom_out_action = a("Zoom &out", lambda: w._active_view().zoom_out(), Key.ZoomOut)
    w.fit_action = a("&Fit", lambda: w._active_view().fit(), "Ctrl+0")
    w.actual_action = a("&100%", lambda: w._active_view().actual_size(), "Ctrl+1")
    w.about_action = QAction("&About CMDSR Studio", w)
    w.about_action.triggered.connect(w.show_about)

    bar = w.menuBar()
    menu = bar.addMenu("&File")
    for action in (w.open_action, w.open_folder_action, w.paste_action):
        menu.addAction(action)
    w.recent_menu = menu.addMenu("Open &recent")
    menu.addSeparator()
    menu.addActions([w.save_action, w.save_compare_action])
    menu.addSeparator()
    menu.addAction(w.quit_action)
    bar.addMenu("&Run").addActions([w.run_action, w.cancel_action, w.batch_action])
    view = bar.addMenu("&View")
    view.addActions([w.zoom_in_action, w.zoom_out_action, w.fit_action, w.actual_action])
    view.addSeparator()
    view.addActions([w.damage.overlay_action, w.log_dock.toggleViewAction()])
    bar.addMenu("&Help").addAction(w.about_action)
