"""The Batch tab as a user meets it: a file-name pattern that would make two images write one
file, finishing a cancelled batch, and what the rows say after a cancel."""

from __future__ import annotations

from pathlib import Path

from app_driving import open_queue

from cmdsr_app.state import EntryStatus


def test_a_pattern_that_maps_two_images_to_one_file_is_refused_before_the_batch(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    paths = [make_photo(f"p{i}.png", 36, 40, seed=i) for i in range(5)]
    open_queue(qtbot, window, paths)
    out = tmp_path / "out"
    window.batch_panel.folder_edit.setText(str(out))
    window.batch_panel.pattern_edit.setText("result")
    window.batch_panel.overwrite_check.setChecked(True)
    finished: list[object] = []
    window.batchFinished.connect(finished.append)
    with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
        window.batch_panel.start_button.click()
    message = blocker.args[0]
    assert "result.png" in message and "p0.png" in message and "p1.png" in message
    assert "{stem}" in message
    qtbot.wait(200)
    assert not window.heavy.busy and finished == []
    assert not out.exists()  # nothing was written, nothing replaced
    # With {index} every image has its own file again.
    window.batch_panel.pattern_edit.setText("result_{index}")
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_panel.start_button.click()
    assert all(item.ok for item in blocker.args[0].items)
    assert sorted(p.name for p in out.iterdir()) == [f"result_{i}.png" for i in range(1, 6)]


def test_cancelled_batch_rows_say_cancelled_and_the_rerun_skips_finished_images(
    qtbot, window, make_photo, tmp_path: Path
) -> None:
    paths = [make_photo(f"q{i}.png", 36, 40, seed=i) for i in range(3)]
    open_queue(qtbot, window, paths)
    out = tmp_path / "out"
    out.mkdir()
    window.batch_panel.folder_edit.setText(str(out))
    with qtbot.waitSignal(window.jobCancelled, timeout=15000):
        window.batch_panel.start_button.click()
        window.cancel_job()  # before the first tile: nothing processed
    rows = [window.batch_panel.result_text(r)[0] for r in range(3)]
    assert rows == ["cancelled"] * 3
    assert "waiting" not in rows
    # An interrupted batch left the first image's output behind: the rerun finishes the rest
    # and lists that one as already done, not as a failure.
    (out / "q0_x4.png").write_bytes(b"finished before the cancel")
    qtbot.waitUntil(lambda: window.batch_action.isEnabled(), timeout=10000)
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_panel.start_button.click()
    report = blocker.args[0]
    assert [i.skipped for i in report.items] == [True, False, False]
    assert report.failures == []
    assert [window.batch_panel.result_text(r)[0] for r in range(3)] == ["skipped", "done", "done"]
    assert "already done" in window.batch_panel.result_text(0)[1]
    assert [e.status for e in window.queue] == [EntryStatus.DONE] * 3
    assert window.batch_panel.summary_label.text() == (
        "2 of 3 image(s) upscaled, 1 already done (skipped)")
    assert (out / "q0_x4.png").read_bytes() == b"finished before the cancel"
