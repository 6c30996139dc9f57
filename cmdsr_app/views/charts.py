"""A small QPainter line chart for live training curves.

QtCharts is not part of PySide6-Essentials, and a training run needs little: a few series
against the step, readable axes, a legend, and cheap repaints while points keep arriving.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# Colours that stay distinguishable for common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


@dataclass
class _Series:
    name: str
    color: QColor
    points: list[tuple[float, float]] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= max(abs(lo), abs(hi)) * 1e-12:
        # Equal, or a float step or two apart (a loss that stopped moving): one tick; finer
        # steps would not advance a float at all.
        return [lo]
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = mag
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * mag
        if step >= raw:
            break
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def format_tick(value: float) -> str:
    """Short label: 1.2k for steps, 3 significant digits for losses."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:g}M"
    if a >= 1e4:
        return f"{value / 1e3:g}k"
    if a == 0 or a >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for evenly spaced ``ticks``: short ones (:func:`format_tick`), or every digit
    the spacing needs where short ones would repeat (999.5, 1000, 1000.5 as "1000" twice)."""
    labels = [format_tick(t) for t in ticks]
    if len(set(labels)) == len(labels):
        return labels
    spacing = abs(ticks[1] - ticks[0])
    if not math.isfinite(spacing) or spacing <= 0:
        return [f"{t:.12g}" for t in ticks]
    k = math.floor(math.log10(spacing))
    halves = not math.isclose(spacing / 10**k, round(spacing / 10**k))  # 2.5 x 10^k
    decimals = max(0, -k + (1 if halves else 0))
    return [f"{t:.{decimals}f}" for t in ticks]


def decimate(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """Keep at most about ``max_points`` points for drawing, keeping each bucket's extremes so
    spikes in a loss curve stay visible."""
    n = len(points)
    if n <= max_points or max_points < 4:
        return list(points)
    buckets = max_points // 2
    out: list[tuple[float, float]] = []
    for b in range(buckets):
        chunk = points[b * n // buckets : (b + 1) * n // buckets]
        if not chunk:
            continue
        lo = min(chunk, key=lambda p: p[1])
        hi = max(chunk, key=lambda p: p[1])
        out.extend((lo, hi) if lo[0] <= hi[0] else (hi, lo))
    return out


class LineChart(QWidget):
    """Several named series of (x, y) points drawn as lines, with axes and a legend.

    Non-finite values (a NaN loss, a PSNR not measured yet) are skipped rather than drawn.
    """

    def __init__(
        self,
        title: str = "",
        parent: QWidget | None = None,
        *,
        x_label: str = "step",
        y_label: str = "",
        empty_text: str = "No data yet",
    ) -> None:
        super().__init__(parent)
        self._title = title
        self._x_label = x_label
        self._y_label = y_label
        self._empty_text = empty_text
        self._series: dict[str, _Series] = {}
        self._x_span: tuple[float | None, float | None] = (None, None)
        self.setMinimumSize(220, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title or "chart")

    # -- data -----------------------------------------------------------------------------
    def title(self) -> str:
        return self._title

    def add_series(self, name: str, color: str | QColor | None = None) -> None:
        """Declare a series (drawn in the legend even before it has points)."""
        if name in self._series:
            return
        qcolor = QColor(color) if color is not None else QColor(
            PALETTE[len(self._series) % len(PALETTE)]
        )
        self._series[name] = _Series(name, qcolor)
        self.update()

    def series_names(self) -> list[str]:
        return list(self._series)

    def append(self, name: str, x: float, y: float) -> None:
        """Add one point to ``name`` (created on first use) and schedule a repaint."""
        self.add_series(name)
        self._series[name].points.append((float(x), float(y)))
        self.update()

    def set_points(self, name: str, points: Iterable[tuple[float, float]]) -> None:
        """Replace the points of ``name``: used to redraw from the run's state in one go."""
        self.add_series(name)
        self._series[name].points = [(float(x), float(y)) for x, y in points]
        self.update()

    def points(self, name: str) -> list[tuple[float, float]]:
        series = self._series.get(name)
        return list(series.points) if series else []

    def point_count(self) -> int:
        return sum(len(s.points) for s in self._series.values())

    def clear(self) -> None:
        """Remove all points but keep the series (and their colours)."""
        for series in self._series.values():
            series.points.clear()
        self.update()

    def empty_text(self) -> str:
        """What the chart shows while it has no points."""
        return self._empty_text

    def set_empty_text(self, text: str) -> None:
        self._empty_text = text
        self.update()

    def set_x_span(self, start: float | None, end: float | None) -> None:
        """Draw the x axis over at least [start, end] (None: where the data starts or ends).
        The charts of one run share its steps: each starts where the run started, however
        late its own first point comes (a validation every 1,000 steps)."""
        if (start, end) != self._x_span:
            self._x_span = (start, end)
            self.update()

    def data_bounds(self) -> tuple[float, float, float, float] | None:
        """(x_min, x_max, y_min, y_max) over finite points, or None when there are none."""
        xs: list[float] = []
        ys: list[float] = []
        for series in self._series.values():
            for x, y in series.points:
                if math.isfinite(x) and math.isfinite(y):
                    xs.append(x)
                    ys.append(y)
        if not xs:
            return None
        return min(xs), max(xs), min(ys), max(ys)

    def axis_range(self) -> tuple[float, float, float, float] | None:
        """(x_min, x_max, y_min, y_max) of the drawn axes: the data (and the x span set) with
        some room above and below; None while there is nothing to draw."""
        bounds = self.data_bounds()
        if bounds is None:
            return None
        x0, x1, y0, y1 = bounds
        start, end = self._x_span
        x0 = x0 if start is None else min(x0, start)
        x1 = x1 if end is None else max(x1, end)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        pad = (abs(y0) * 0.05 or 1.0) if y1 == y0 else (y1 - y0) * 0.05
        return x0, x1, y0 - pad, y1 + pad

    # -- painting -------------------------------------------------------------------------
    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(360, 220)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, p: QPainter) -> None:
        pal = self.palette()
        text_color = pal.color(self.foregroundRole())
        p.fillRect(self.rect(), pal.color(self.backgroundRole()).lighter(103))
        font = QFont(self.font())
        fm = QFontMetrics(font)
        line_h = fm.height()

        title_font = QFont(font)
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(text_color)
        title = f"{self._title} ({self._y_label})" if self._y_label else self._title
        p.drawText(QRectF(8, 2, self.width() - 16, line_h + 2), Qt.AlignmentFlag.AlignLeft, title)
        p.setFont(font)
        legend_left = 8 + QFontMetrics(title_font).horizontalAdvance(title) + 16

        bounds = self.data_bounds()
        left = fm.horizontalAdvance("00.000") + 12
        plot = QRectF(left, line_h + 10, self.width() - left - 16, self.height() - 2 * line_h - 16)
        if plot.width() < 20 or plot.height() < 20:
            return

        grid_pen = QPen(QColor(text_color))
        grid_pen.setColor(QColor(text_color.red(), text_color.green(), text_color.blue(), 40))
        axis_pen = QPen(text_color)

        if bounds is None:
            p.setPen(axis_pen)
            p.drawRect(plot)
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, self._empty_text)
            self._paint_legend(p, legend_left, fm)
            return

        x0, x1, y0, y1 = self.axis_range() or bounds

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                plot.bottom() - (y - y0) / (y1 - y0) * plot.height(),
            )

        # Grid and tick labels.
        y_ticks = nice_ticks(y0, y1, max(2, int(plot.height() // (line_h * 2))))
        for ty, label in zip(y_ticks, tick_labels(y_ticks), strict=True):
            py = to_px(x0, ty).y()
            p.setPen(grid_pen)
            p.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py))
            p.setPen(axis_pen)
            p.drawText(
                QRectF(0, py - line_h / 2, left - 6, line_h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        max_x_ticks = max(2, int(plot.width() // (fm.horizontalAdvance("000.0k") * 1.8)))
        x_ticks = nice_ticks(x0, x1, max_x_ticks)
        for tx, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
            px = to_px(tx, y0).x()
            p.setPen(grid_pen)
            p.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()))
            p.setPen(axis_pen)
            p.drawText(
                QRectF(px - 40, plot.bottom() + 2, 80, line_h),
                Qt.AlignmentFlag.AlignHCenter,
                label,
            )
        p.setPen(axis_pen)
        p.drawRect(plot)
        if self._x_label:
            # Bottom-left corner, under the y tick labels: the one spot no tick label uses.
            p.drawText(
                QRectF(4, plot.bottom() + 2, left - 8, line_h),
                Qt.AlignmentFlag.AlignLeft,
                self._x_label,
            )

        p.save()
        p.setClipRect(plot.adjusted(-1, -1, 1, 1))
        budget = max(4, int(plot.width()) * 2)
        for series in self._series.values():
            pts = [(x, y) for x, y in series.points if math.isfinite(x) and math.isfinite(y)]
            if not pts:
                continue
            pen = QPen(series.color, 1.6)
            p.setPen(pen)
            if len(pts) == 1:
                p.setBrush(series.color)
                p.drawEllipse(to_px(*pts[0]), 2.5, 2.5)
                p.setBrush(Qt.BrushStyle.NoBrush)
                continue
            path = QPainterPath(to_px(*pts[0]))
            for x, y in decimate(pts, budget)[1:]:
                path.lineTo(to_px(x, y))
            p.drawPath(path)
            # Few points (validation PSNR): mark each so single measurements are visible.
            if len(pts) <= 40:
                p.setBrush(series.color)
                for x, y in pts:
                    p.drawEllipse(to_px(x, y), 2.0, 2.0)
                p.setBrush(Qt.BrushStyle.NoBrush)
        p.restore()
        self._paint_legend(p, legend_left, fm)

    def _paint_legend(self, p: QPainter, min_left: float, fm: QFontMetrics) -> None:
        """Series names right-aligned in the title row, so they never hide a curve."""
        if len(self._series) < 2:
            return
        x = self.width() - 10.0
        y = 2.0
        for series in reversed(list(self._series.values())):
            text_w = fm.horizontalAdvance(series.name)
            if x - text_w - 16 < min_left:
                break
            x -= text_w
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(QPointF(x, y + fm.ascent()), series.name)
            x -= 16
            p.setPen(QPen(series.color, 2.5))
            p.drawLine(QPointF(x, y + fm.height() / 2), QPointF(x + 12, y + fm.height() / 2))
            x -= 12
