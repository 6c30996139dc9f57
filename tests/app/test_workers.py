"""The job runner: one outcome per job, cancel is real and never followed by finished."""

from __future__ import annotations

import threading

import pytest

from cmdsr_app.workers import JobRunner, user_message


def test_finished_carries_the_result_and_progress(qtbot) -> None:
    runner = JobRunner()
    seen: list[tuple[int, int]] = []

    def job(progress, cancel):
        for i in range(3):
            progress(i + 1, 3)
        return threading.current_thread() is not threading.main_thread()

    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.submit("job", job, on_progress=lambda d, t: seen.append((d, t)))
    assert blocker.args == ["job", True]  # ran off the GUI thread
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_domain_failure_becomes_a_message_without_a_traceback(qtbot, caplog: pytest.LogCaptureFixture) -> None:
    from engine import CheckpointError

    runner = JobRunner()
    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.submit("load", lambda p, c: (_ for _ in ()).throw(CheckpointError("bad.pt: not a model")))
    assert blocker.args == ["load", "bad.pt: not a model"]
    # A bad file is no bug: its message is all the log needs (tests/app/test_error_messages.py
    # checks that a real bug keeps its traceback).
    assert not any(r.exc_info for r in caplog.records if r.name == "cmdsr_app.workers")
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)


def test_cancel_emits_cancelled_never_finished(qtbot) -> None:
    from engine import CancelledError

    runner = JobRunner()
    started = threading.Event()
    finished: list[object] = []
    runner.finished.connect(lambda name, result: finished.append(result))

    def job(progress, cancel):
        started.set()
        while not cancel.wait(0.005):
            progress(0, 1)
        raise CancelledError("stopped")

    runner.submit("long", job)
    assert started.wait(5)
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert finished == []


def test_a_job_that_ignores_cancel_still_does_not_report_finished(qtbot) -> None:
    runner = JobRunner()
    gate = threading.Event()
    finished: list[object] = []
    runner.finished.connect(lambda name, result: finished.append(result))
    runner.submit("stubborn", lambda p, c: gate.wait(5) and "result")
    runner.cancel()
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert finished == []


def test_jobs_run_in_order_and_cancel_drops_the_queue(qtbot) -> None:
    runner = JobRunner()
    order: list[str] = []
    gate = threading.Event()
    runner.submit("a", lambda p, c: gate.wait(5), on_finished=lambda r: order.append("a"))
    runner.submit("b", lambda p, c: None, on_finished=lambda r: order.append("b"),
                  on_cancelled=lambda: order.append("b cancelled"))
    runner.submit("c", lambda p, c: None, on_finished=lambda r: order.append("c"))
    assert runner.busy
    gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert order == ["a", "b", "c"]
    gate.clear()
    runner.submit("d", lambda p, c: gate.wait(5), on_cancelled=lambda: order.append("d cancelled"))
    runner.submit("e", lambda p, c: None, on_cancelled=lambda: order.append("e cancelled"))
    runner.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert order[3:] == ["e cancelled", "d cancelled"]
    assert runner.wait(1000)


def test_user_messages() -> None:
    from engine import ImageReadError

    assert user_message(ImageReadError("x.png: file is empty")) == "x.png: file is empty"
    assert "smaller tile" in user_message(MemoryError())
    assert "log panel" in user_message(KeyError("k"))
    assert "(/nope)" in user_message(FileNotFoundError(2, "No such file", "/nope"))
