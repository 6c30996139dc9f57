"""A remaining-time estimate that users can trust: smoothed, not thrown off by a slow start,
and not jumping from one report to the next.

Qt-free; the upscale, batch and training progress lines all use it::

    eta = EtaEstimator(total=22)
    seconds = eta.update(done, time.monotonic())   # None until it can tell
    label.setText(f"ETA {format_eta(seconds)}")
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class EtaEstimator:
    """Seconds left of a job that reports ``done`` out of ``total`` units now and then.

    - The time up to the first report is left out of the rate: it holds the set-up (a model
      loading, the support patches adapting, the first GPU kernels), not the pace of the work.
    - The rate is an exponentially weighted ratio of recent work to recent time, with a
      half-life of ``half_life`` of the job (in units done), so a few uneven tiles or steps do
      not swing it, yet a pace that really changes is followed.
    - The shown estimate counts down with the clock between reports and moves only part of
      the way (``gain``) toward each new reading, so it does not jump.
    """

    def __init__(self, total: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 half_life: float = 0.15, gain: float = 0.35, min_reports: int = 2) -> None:
        if not 0 < half_life <= 1 or not 0 < gain <= 1 or min_reports < 1:
            raise ValueError("half_life and gain must be in (0, 1], min_reports at least 1")
        self._clock = clock
        self.half_life, self.gain, self.min_reports = half_life, gain, min_reports
        self.restart(total)

    def restart(self, total: float | None = None, now: float | None = None) -> None:
        """Start timing a new job (of ``total`` units, or as many as the last one)."""
        if total is not None:
            self.total = float(total)
        self._start = self._clock() if now is None else now
        self._last: tuple[float, float] | None = None  # (done, time) of the latest report
        self._work = self._time = 0.0  # decayed sums of units done and seconds spent
        self._reports = 0  # reports that measured the rate (after the warm-up one)
        self._shown: tuple[float, float] | None = None  # (estimate, when it was made)

    def elapsed(self, now: float | None = None) -> float:
        return (self._clock() if now is None else now) - self._start

    @property
    def rate(self) -> float | None:
        """Units per second lately, or None before the rate has been measured."""
        if self._reports < self.min_reports or self._time <= 0 or self._work <= 0:
            return None
        return self._work / self._time

    def update(self, done: float, now: float | None = None) -> float | None:
        """Take a report of ``done`` units (of ``total``) at ``now``; returns the seconds
        left, or None while the pace cannot be told yet."""
        now = self._clock() if now is None else now
        if self.total <= 0:
            return None
        if done >= self.total:
            self._shown = (0.0, now)
            return 0.0
        if self._last is None or done < self._last[0]:
            self._last = (done, now)  # the warm-up report (or a job that went back): anchor only
            return self.remaining(now)
        step, seconds = done - self._last[0], now - self._last[1]
        if step <= 0 or seconds <= 0:
            return self.remaining(now)
        decay = 0.5 ** (step / (self.half_life * self.total))
        self._work = self._work * decay + step
        self._time = self._time * decay + seconds
        self._reports += 1
        self._last = (done, now)
        rate = self.rate
        if rate is None:
            return None
        reading = (self.total - done) / rate
        shown = self.remaining(now)
        estimate = reading if shown is None else shown + self.gain * (reading - shown)
        self._shown = (max(0.0, estimate), now)
        return self._shown[0]

    def remaining(self, now: float | None = None) -> float | None:
        """The last estimate counted down to ``now`` (never below zero), or None."""
        if self._shown is None:
            return None
        now = self._clock() if now is None else now
        estimate, made = self._shown
        return max(0.0, estimate - max(0.0, now - made))


def format_duration(seconds: float) -> str:
    """A duration at a precision that does not flicker: ``"12 s"``, ``"4 min 10 s"`` (to 5 s
    under ten minutes), ``"25 min"``, ``"2 h 05 min"``, ``"1 d 3 h"``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 600:
        s = int(round(s / 5) * 5)
        return f"{s // 60} min {s % 60:02d} s"
    if s < 3600:
        return f"{int(round(s / 60))} min" if s < 3570 else "1 h 00 min"
    if s < 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86_400} d {s % 86_400 // 3600} h"


def format_eta(seconds: float | None, unknown: str = "--") -> str:
    """:func:`format_duration` of an estimate; ``unknown`` while there is none."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return unknown
    return format_duration(seconds)
