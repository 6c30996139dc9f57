"""The training charts: tick maths, decimation and painting with real and awkward data."""

from __future__ import annotations

import math

import pytest
from PySide6.QtGui import QColor, QImage

from cmdsr_app.views.charts import LineChart, decimate, format_tick, nice_ticks, tick_labels


def test_nice_ticks_cover_range_with_round_steps() -> None:
    ticks = nice_ticks(0.13, 0.97, 5)
    assert ticks[0] >= 0.13 and ticks[-1] <= 0.97
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.25)
    assert nice_ticks(5.0, 5.0) == [5.0]
    assert nice_ticks(0.0, math.nan) == []
    assert nice_ticks(0, 1000, 5) == [0, 250, 500, 750, 1000]


def test_format_tick_is_short() -> None:
    assert format_tick(25000) == "25k"
    assert format_tick(2_500_000) == "2.5M"
    assert format_tick(0.000123) == "0.000123"
    assert format_tick(31.25) == "31.25"


@pytest.mark.parametrize("lo, hi", [(999, 1001), (25.001, 25.004), (99_990, 100_010), (0, 1500)])
def test_tick_labels_never_repeat(lo, hi) -> None:
    ticks = nice_ticks(lo, hi, 5)
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels) == len(ticks)
    if hi < 1e4:  # above, steps read "100k"
        assert [float(label) for label in labels] == pytest.approx(ticks)
    assert tick_labels([0, 500, 1000]) == ["0", "500", "1000"]  # short where short is enough


def test_x_span_widens_the_axis_but_never_cuts_data(qtbot) -> None:
    chart = LineChart("Validation PSNR")
    qtbot.addWidget(chart)
    chart.set_x_span(0, 1500)
    assert chart.axis_range() is None  # no data: the empty text, no axes
    chart.append("PSNR", 1000, 25.0)
    assert chart.axis_range()[:2] == (0, 1500)
    chart.append("PSNR", 2000, 26.0)
    assert chart.axis_range()[:2] == (0, 2000)
    chart.set_x_span(None, None)
    assert chart.axis_range()[:2] == (1000, 2000)
    _render(chart)


def test_decimate_keeps_spikes_and_bounds_size() -> None:
    pts = [(float(i), 1.0) for i in range(10_000)]
    pts[5_000] = (5_000.0, 50.0)
    out = decimate(pts, 200)
    assert len(out) <= 200
    assert max(y for _, y in out) == 50.0
    assert [x for x, _ in out] == sorted(x for x, _ in out)
    assert decimate(pts[:10], 200) == pts[:10]


def _render(chart: LineChart) -> QImage:
    chart.resize(320, 200)
    image = QImage(chart.size(), QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    chart.render(image)
    return image


def _count_color(image: QImage, color: str, tol: int = 40) -> int:
    target = QColor(color)
    hits = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if (
                abs(c.red() - target.red()) < tol
                and abs(c.green() - target.green()) < tol
                and abs(c.blue() - target.blue()) < tol
            ):
                hits += 1
    return hits


def test_series_points_are_stored_and_drawn(qtbot) -> None:
    chart = LineChart("d_inner / d_cross")
    qtbot.addWidget(chart)
    chart.add_series("d_inner", "#ff0000")
    chart.add_series("d_cross", "#0000ff")
    assert _count_color(_render(chart), "#ff0000") < 30  # legend swatch only
    for step in range(1, 51):
        chart.append("d_inner", step, 1.0 / step)
        chart.append("d_cross", step, 2.0 + math.sin(step))
    assert chart.points("d_inner")[0] == (1.0, 1.0)
    assert chart.point_count() == 100
    assert chart.data_bounds() == pytest.approx((1, 50, 0.02, 2.0 + max(math.sin(s) for s in range(1, 51))))
    image = _render(chart)
    assert _count_color(image, "#ff0000") > 30
    assert _count_color(image, "#0000ff") > 30
    chart.clear()
    assert chart.point_count() == 0 and chart.series_names() == ["d_inner", "d_cross"]


def test_awkward_values_do_not_break_painting(qtbot) -> None:
    chart = LineChart("PSNR", y_label="dB")
    qtbot.addWidget(chart)
    chart.append("psnr", 10, math.nan)
    assert chart.data_bounds() is None
    _render(chart)
    chart.append("psnr", 10, 25.0)  # one point, zero range on both axes
    assert chart.data_bounds() == (10, 10, 25.0, 25.0)
    _render(chart)
    chart.set_points("psnr", [(0, math.inf), (1, -3e6), (2, 1e-9)])
    _render(chart)
    chart.resize(10, 10)
    chart.render(QImage(chart.size(), QImage.Format.Format_ARGB32))


def test_many_repaint_requests_keep_python_alive(qtbot) -> None:
    """PySide6 6.12.0 dropped a reference to None on every void call (the app aborted after a
    few thousand chart updates); a live training chart makes that many calls in minutes."""
    import sys

    chart = LineChart("L1 loss")
    qtbot.addWidget(chart)
    before = sys.getrefcount(None)
    for step in range(3000):
        chart.append("L1", step, 1.0)
    assert sys.getrefcount(None) >= before - 100
    assert chart.point_count() == 3000


def test_values_one_float_step_apart_are_charted(qtbot) -> None:
    """Issue 22, item 4: a loss that stopped moving (two values one float step apart) raised
    ``math domain error`` in the tick labels, in the paint event."""
    value = 0.0123
    close = math.nextafter(value, 1.0)
    assert tick_labels(nice_ticks(value, close)) == [format_tick(value)]
    chart = LineChart("L1 loss")
    qtbot.addWidget(chart)
    chart.append("loss", 1, value)
    chart.append("loss", 2, close)
    chart.append("loss", 3, value)
    with qtbot.capture_exceptions() as raised:
        _render(chart)
        chart.show()
        chart.repaint()
    assert raised == []


def test_an_exception_in_a_slot_reaches_the_log_panel(qtbot, window) -> None:
    """Issue 22, item 4: a bug in a slot is shown in the Log panel with its traceback, not only
    in the terminal."""
    from PySide6.QtCore import QTimer

    from cmdsr_app.crash_log import install_exception_logging

    def broken_slot() -> None:
        raise ValueError("math domain error (a test's deliberate bug)")

    with qtbot.capture_exceptions() as raised:
        install_exception_logging()
        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: "deliberate bug" in window.log_panel.plain_text(), timeout=5000)
    text = window.log_panel.plain_text()
    assert "unexpected error" in text and "Traceback" in text and "broken_slot" in text
    assert len(raised) == 1  # handed on to the previous hook too
