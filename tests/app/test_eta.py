"""The smoothed ETA (cmdsr_app/eta.py) on made-up progress reports with a fake clock."""

from __future__ import annotations

import pytest

from cmdsr_app.eta import EtaEstimator, format_duration, format_eta


def _run(eta: EtaEstimator, times: list[float]) -> list[float | None]:
    """Report units 1, 2, ... at the given times."""
    return [eta.update(i + 1, t) for i, t in enumerate(times)]


def test_a_slow_start_is_left_out_of_the_rate() -> None:
    # 22 tiles: 30 s of set-up before the first tile, then 2.4 s a tile (83 s in all). The old
    # estimate (elapsed / fraction) said over 2 minutes early on.
    eta = EtaEstimator(22, clock=lambda: 0.0)
    eta.restart(now=0.0)
    times = [30.0 + 2.4 * i for i in range(22)]
    got = _run(eta, times)
    assert got[0] is None and got[1] is None  # the warm-up report and one measured step
    for i in range(2, 21):
        left = 2.4 * (21 - i)
        assert got[i] == pytest.approx(left, rel=0.02)
    assert got[-1] == 0.0


def test_an_uneven_tile_does_not_make_it_jump() -> None:
    eta = EtaEstimator(22, clock=lambda: 0.0)
    eta.restart(now=0.0)
    times, t = [], 5.0
    for i in range(22):
        t += 6.0 if i == 8 else 1.0  # one tile six times slower
        times.append(t)
    got = _run(eta, times)
    before, after = got[7], got[8]
    assert before is not None and after is not None
    # 1 s a tile with 14 left: the slow tile moves the estimate by a few seconds, not to the
    # 84 s its own pace would give.
    assert abs(after - before) < 6.0
    # At 7 of 22 tiles with about 15 s left, it says about 15 s (not 2 s).
    assert got[6] == pytest.approx(15.0, abs=1.5)


def test_a_changed_pace_is_followed() -> None:
    eta = EtaEstimator(100, clock=lambda: 0.0)
    eta.restart(now=0.0)
    t, last = 0.0, None
    for i in range(100):
        t += 1.0 if i < 40 else 0.25  # four times faster from the 40th step on
        last = eta.update(i + 1, t) if i < 80 else last
    # 20 steps left at 0.25 s: 5 s; the old pace would say 20 s. The smoothing lags a little.
    assert last is not None and 4.0 < last < 8.0


def test_the_estimate_counts_down_between_reports() -> None:
    now = [0.0]
    eta = EtaEstimator(10, clock=lambda: now[0])
    for i, t in enumerate([2.0, 3.0, 4.0, 5.0]):
        now[0] = t
        eta.update(i + 1)
    assert eta.remaining() == pytest.approx(6.0)
    now[0] = 7.5
    assert eta.remaining() == pytest.approx(3.5)
    now[0] = 60.0
    assert eta.remaining() == 0.0
    assert eta.elapsed() == pytest.approx(60.0)


def test_restart_forgets_the_previous_job() -> None:
    eta = EtaEstimator(4, clock=lambda: 0.0)
    _run(eta, [1.0, 2.0, 3.0])
    eta.restart(8, now=10.0)
    assert eta.total == 8 and eta.remaining(10.0) is None and eta.rate is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        EtaEstimator(10, gain=0.0)


def test_formats_do_not_flicker() -> None:
    assert format_duration(42.4) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(127) == "2 min 05 s"  # to 5 s under ten minutes
    assert format_duration(250) == "4 min 10 s"
    assert format_duration(25 * 60 + 20) == "25 min"
    assert format_duration(3725) == "1 h 02 min"
    assert format_duration(86_400 + 3 * 3600) == "1 d 3 h"
    assert format_eta(None) == "--" and format_eta(float("inf")) == "--"
    assert format_eta(None, "estimating…") == "estimating…"
    assert format_eta(12.0) == "12 s"
