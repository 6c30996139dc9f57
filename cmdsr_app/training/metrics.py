"""A training run's curves as the Training tab draws them, Qt-free: ``MetricSeries`` and
``RunMetrics`` (live reports and the run's history), reading the engine's ``metrics.jsonl``
and the tab's own ``app_curves.json``, and smoothing."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# bicubic_psnr: the validation set upscaled with bicubic, the bar a trained model must clear.
METRIC_NAMES = ("l1", "contrastive", "d_inner", "d_cross", "val_psnr", "bicubic_psnr")



class MetricSeries:
    """(step, value) points of one metric, bounded in memory.

    A run of a million steps reports a million losses; when the series reaches ``max_points``
    neighbouring pairs are averaged, so the curve keeps its shape at half the resolution. The
    first point is never averaged: the curve starts at the run's first report.
    """

    def __init__(self, max_points: int = 4000) -> None:
        if max_points < 4:
            raise ValueError("max_points must be at least 4")
        self.max_points = max_points
        self._points: list[tuple[float, float]] = []
        # Points merged into each stored point: the newest may still take partners.
        self._stride = 1
        self._pending: list[tuple[float, float]] = []
        # The step of the newest report (the newest point may be an average of several).
        self.last_step: float | None = None

    def __len__(self) -> int:
        return len(self._points) + (1 if self._pending else 0)

    def points(self) -> list[tuple[float, float]]:
        return self._points + ([_mean(self._pending)] if self._pending else [])

    def last(self) -> tuple[float, float] | None:
        pts = self.points()
        return pts[-1] if pts else None

    def append(self, step: float, value: float) -> None:
        if not (math.isfinite(step) and math.isfinite(value)):
            return
        # A run resumed from an older checkpoint re-reports steps already charted: the
        # curve continues from the checkpoint instead of doubling back.
        self.drop_from(step)
        self._pending.append((float(step), float(value)))
        self.last_step = float(step)
        if len(self._pending) >= self._stride or not self._points:
            self._points.append(_mean(self._pending))
            self._pending = []
        if len(self._points) >= self.max_points:
            head, rest = self._points[0], self._points[1:]
            merged = [head] + [_mean(rest[i : i + 2]) for i in range(0, len(rest) - 1, 2)]
            if len(rest) % 2:
                merged.append(self._points[-1])
            self._points = merged
            self._stride *= 2

    def drop_from(self, step: float) -> None:
        """Forget the points at ``step`` and after."""
        if (self._pending and self._pending[-1][0] >= step) or (
            self._points and self._points[-1][0] >= step
        ):
            self._pending = [p for p in self._pending if p[0] < step]
            while self._points and self._points[-1][0] >= step:
                self._points.pop()
            last = self.last()
            self.last_step = None if last is None else last[0]

    def clear(self) -> None:
        self._points = []
        self._pending = []
        self._stride = 1
        self.last_step = None

    def to_dict(self) -> dict[str, Any]:
        """The series as drawn, with what it needs to go on exactly as it would have."""
        return {"points": self._points, "pending": self._pending, "stride": self._stride,
                "last_step": self.last_step}

    @classmethod
    def from_dict(cls, data: Any, max_points: int = 4000) -> MetricSeries:
        """A series saved by :meth:`to_dict`; ValueError if ``data`` is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("not a saved series")
        out = cls(max_points)
        out._points = _point_list(data.get("points"))
        out._pending = _point_list(data.get("pending"))
        stride, last = data.get("stride"), data.get("last_step")
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError("bad stride")
        if len(out._points) > max_points or len(out._pending) > stride:
            raise ValueError("more points than a series keeps")
        out._stride = stride
        if last is not None and number_or_none(last) is None:
            raise ValueError("bad last step")
        out.last_step = None if last is None else float(last)
        return out


def _point_list(value: Any) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise ValueError("not a list of points")
    out = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2):
            raise ValueError("not a point")
        x, y = number_or_none(item[0]), number_or_none(item[1])
        if x is None or y is None:
            raise ValueError("not a point")
        out.append((x, y))
    return out


def _mean(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    return (sum(p[0] for p in points) / n, sum(p[1] for p in points) / n)


def field_of(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass
class RunMetrics:
    """The curves of one run: losses every reported step, PSNR at each validation."""

    series: dict[str, MetricSeries] = field(
        default_factory=lambda: {name: MetricSeries() for name in METRIC_NAMES}
    )

    def add(self, progress: Any) -> list[str]:
        """Record a ``TrainProgress`` (or a metrics-log record); returns the metrics it
        carried, so the view redraws only those charts."""
        step = number_or_none(field_of(progress, "step"))
        if step is None:
            return []
        changed = []
        for name in METRIC_NAMES:
            value = number_or_none(field_of(progress, name))
            if value is not None:
                self.series[name].append(step, value)
                changed.append(name)
        return changed

    def points(self, name: str) -> list[tuple[float, float]]:
        return self.series[name].points()

    def last_step(self) -> float | None:
        """The newest step any metric was reported at (None before the first report)."""
        steps = [s.last_step for s in self.series.values() if s.last_step is not None]
        return max(steps) if steps else None

    def clear(self) -> None:
        for s in self.series.values():
            s.clear()

    def load_log(self, run_dir: str | Path) -> int:
        """Refill the curves from a run's metrics log (JSON lines), so a resumed run shows
        its history. Unreadable lines are skipped; returns the records read."""
        return sum(1 for record in _read_log(run_dir) if self.add(record))

    def load_run(self, run_dir: str | Path) -> int:
        """Refill the curves of a run as the app last drew them: its saved curves
        (:meth:`save_curves`), continued by the metrics log's records past them. The log
        alone holds only a mean every ``log_every`` steps, far coarser than the live curve;
        it is all there is for a run trained elsewhere (``cmdsr train``), or one whose log
        no longer reaches the saved curves (it was started again in that folder). Returns
        the log records read."""
        self.clear()
        records = _read_log(run_dir)
        log_end = max((number_or_none(r.get("step")) or 0.0 for r in records), default=None)
        saved = _read_curves(Path(run_dir) / CURVES_NAME)
        if saved is None or log_end is None:
            return sum(1 for record in records if self.add(record))
        for series in saved.values():
            # Drawn after the log's end (the app was closed between a checkpoint and the
            # next log record): the resumed run takes up from the log, as the engine does.
            series.drop_from(math.nextafter(log_end, math.inf))
        self.series.update(saved)
        count = 0
        for record in records:
            step = number_or_none(record.get("step"))
            if step is None:
                continue
            ends = {name: self.series[name].last_step for name in METRIC_NAMES}
            later = {name: record.get(name) for name, end in ends.items()
                     if end is None or step > end}
            if later and self.add({"step": step, **later}):
                count += 1
        return count

    def save_curves(self, run_dir: str | Path) -> None:
        """Keep the curves as drawn in the run folder, for :meth:`load_run` after a
        restart. A folder that is gone or cannot be written is only logged."""
        from engine.io.fileio import atomic_write

        folder = Path(run_dir)
        if not str(run_dir).strip() or not folder.is_dir():
            return
        data = {"format": CURVES_FORMAT,
                "series": {name: s.to_dict() for name, s in self.series.items()}}
        text = json.dumps(data, separators=(",", ":"))
        try:
            atomic_write(folder / CURVES_NAME, lambda fh: fh.write(text.encode("utf-8")),
                         overwrite=True)
        except OSError as exc:
            log.warning("cannot keep the training curves in %s: %s", folder, exc)


# The curves the app drew for a run, kept in its folder beside the engine's metrics log.
CURVES_NAME = "app_curves.json"
CURVES_FORMAT = "cmdsr-studio-curves-1"


def _read_curves(path: Path) -> dict[str, MetricSeries] | None:
    """The series saved in ``path``; None when there are none or they are unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring the saved training curves %s: %s", path, exc)
        return None
    try:
        if not isinstance(data, Mapping) or data.get("format") != CURVES_FORMAT:
            raise ValueError("not a curves file of this app")
        series = data.get("series")
        if not isinstance(series, Mapping):
            raise ValueError("no series")
        return {name: MetricSeries.from_dict(series[name]) for name in METRIC_NAMES
                if name in series}
    except ValueError as exc:
        log.warning("ignoring the saved training curves %s: %s", path, exc)
        return None


def _read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics log, flattened; unreadable lines are skipped."""
    path = find_metrics_log(run_dir)
    if path is None:
        return []
    out = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, Mapping):
                    out.append(_flatten(record))
    except OSError as exc:
        log.warning("cannot read the metrics log %s: %s", path, exc.strerror)
    return out


_LOG_ALIASES = {"psnr": "val_psnr", "val_psnr_y": "val_psnr", "psnr_y": "val_psnr"}


def _flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``{"step": .., "l1": ..}`` as well as nested ``{"val": {"psnr": ..}}``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            for k, v in value.items():
                out.setdefault(_LOG_ALIASES.get(f"{key}_{k}", f"{key}_{k}"), v)
        else:
            out[_LOG_ALIASES.get(key, key)] = value
    return out


def read_bicubic_psnr(run_dir: str | Path) -> float | None:
    """The bicubic PSNR the engine logged beside its first validation, if any."""
    path = find_metrics_log(run_dir)
    if path is None:
        return None
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if '"bicubic_psnr"' not in line:
                    continue
                try:
                    value = number_or_none(json.loads(line).get("bicubic_psnr"))
                except (ValueError, AttributeError):
                    continue
                if value is not None:
                    return value
    except OSError:
        return None
    return None


def smooth(points: list[tuple[float, float]], window: int = 20) -> list[tuple[float, float]]:
    """Exponential moving average of a noisy curve (each step draws a new degradation, so
    the raw loss jumps around); ``window`` is the average's span in points. The first
    points are bias-corrected so the trend starts at the data, not at zero."""
    if not points:
        return []
    alpha = 2.0 / (max(1, window) + 1)
    out: list[tuple[float, float]] = []
    avg = 0.0
    weight = 0.0
    for x, y in points:
        avg = (1 - alpha) * avg + alpha * y
        weight = (1 - alpha) * weight + alpha
        out.append((x, avg / weight))
    return out


def find_metrics_log(run_dir: str | Path) -> Path | None:
    root = Path(run_dir)
    for name in ("metrics.jsonl", "metrics.json", "log.jsonl"):
        if (root / name).is_file():
            return root / name
    return None


# -- run status ----------------------------------------------------------------------------
