"""The Training tab's four charts: L1 loss with its trend, contrastive loss, condition
distances and validation PSNR against bicubic."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from cmdsr_app.training.metrics import RunMetrics, smooth
from cmdsr_app.views.charts import LineChart

# metric series -> (chart, line) it is drawn as
LINES = {
    "contrastive": ("contrastive", "contrastive"),
    "d_inner": ("distances", "d_inner"),
    "d_cross": ("distances", "d_cross"),
    "val_psnr": ("val_psnr", "PSNR"),
    "bicubic_psnr": ("val_psnr", "bicubic"),
}


class TrainingCharts(QWidget):
    """The charts in a 2 x 2 grid; ``charts`` maps "l1", "contrastive", "distances" and
    "val_psnr" to their LineChart."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        first = "Starts with the first step"
        self.charts: dict[str, LineChart] = {
            "l1": LineChart("L1 loss", empty_text=first),
            "contrastive": LineChart("Contrastive loss", empty_text=first),
            "distances": LineChart("Condition distances", empty_text=first),
            "val_psnr": LineChart(
                "Validation PSNR", y_label="dB", empty_text="Choose a validation folder to see it"
            ),
        }
        self.charts["l1"].add_series("L1", "#9DC3E6")
        self.charts["l1"].add_series("trend", "#0072B2")
        self.charts["contrastive"].add_series("contrastive", "#D55E00")
        self.charts["distances"].add_series("d_inner", "#009E73")
        self.charts["distances"].add_series("d_cross", "#CC79A7")
        self.charts["val_psnr"].add_series("PSNR", "#0072B2")
        self.charts["val_psnr"].add_series("bicubic", "#999999")
        self.charts["distances"].setToolTip(
            "d_inner: distance between condition vectors of the same photo and degradation "
            "(should shrink). d_cross: between different ones (should stay large)."
        )
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for (row, col), key in zip(((0, 0), (0, 1), (1, 0), (1, 1)), self.charts, strict=True):
            grid.addWidget(self.charts[key], row, col)

    def show_metrics(self, metrics: RunMetrics, dirty: set[str]) -> None:
        """Redraw the series in ``dirty`` from ``metrics``; every chart's step axis runs from
        the run's start (step 0) to its newest report."""
        last = metrics.last_step()
        for each in self.charts.values():
            each.set_x_span(0 if last is not None else None, last)
        if "l1" in dirty:
            l1 = metrics.points("l1")
            self.charts["l1"].set_points("L1", l1)
            self.charts["l1"].set_points("trend", smooth(l1))
        for series, (chart, line) in LINES.items():
            if series in dirty:
                self.charts[chart].set_points(line, metrics.points(series))

    def set_validation_hint(self, text: str) -> None:
        self.charts["val_psnr"].set_empty_text(text)

    def set_condition_hint(self, text: str) -> None:
        """What the empty Contrastive loss and Condition distances charts say (why they are
        empty in a run holding the ConditionNet fixed)."""
        for key in ("contrastive", "distances"):
            self.charts[key].set_empty_text(text)
