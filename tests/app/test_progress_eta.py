"""The ETA lines of a run and of a batch, fed made-up progress under a fake clock: a slow
set-up (model load, support adaptation) stays out of the pace, and the estimate does not
overshoot (issue 31 item 13: "2 min 25 s" for an 83 s run, "ETA 2 s" with 5 s left)."""

from __future__ import annotations

import pytest


def fake_eta(estimator, now: list[float]):
    """The same class the controller uses, on a clock the test moves."""
    fake = type(estimator)(clock=lambda: now[0])
    fake.total = getattr(estimator, "total", None)
    return fake


def test_the_run_eta_leaves_the_set_up_out(window, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    upscale = window.upscale
    upscale._eta = fake_eta(upscale._eta, now)
    monkeypatch.setattr(type(window.heavy), "current_name", property(lambda _self: "upscale"))
    label = window.settings_panel.eta_label
    # 30 s of set-up, then a tile every 2.4 s: 22 tiles, 83 s in all.
    texts = []
    for tile in range(1, 23):
        now[0] = 30.0 + 2.4 * (tile - 1)
        upscale.on_tile_progress(tile, 22)
        texts.append(label.text())
    assert texts[2] == "ETA 46 s"  # 19 tiles left at 2.4 s (the old estimate: 3 min 40 s)
    assert texts[6] == "ETA 36 s"  # at 7 of 22
    assert texts[-2] == "ETA 2 s"


def test_the_batch_eta_leaves_the_set_up_out(window) -> None:
    now = [0.0]
    batch = window.batch
    batch._eta = fake_eta(batch._eta, now)
    batch._eta.total = 4  # as a batch of 4 photos sets it
    label = window.settings_panel.eta_label
    # 4 photos of 10 tiles; 20 s before the first tile (the model loads), then 1 s a tile.
    t = 20.0
    for image in range(4):
        for tile in range(1, 11):
            now[0] = t
            batch._on_progress(image, 4, tile, 10)
            t += 1.0
            if (image, tile) == (1, 5):
                # 25 tiles left at 1 s (the old one, from the elapsed time: 57 s)
                assert label.text() == "Image 2 of 4 · ETA 25 s"
