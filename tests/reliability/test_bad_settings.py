"""Bad settings: support regions outside the photo or without area, tile sizes 0/1/huge,
unknown devices, a scale the model does not have. Each gives a clear error (CLI: one line or
a per-image line, exit 2, no traceback; GUI: a dialog naming the problem) and nothing else
breaks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import (
    ConfigError,
    SupportRegionError,
    TileConfig,
    Upscaler,
    load_model,
    resolve_device,
    select_support,
    validate_regions,
)
from engine.cli import main
from tests.reliability.conftest import save_tiny, write_photo

# ----------------------------------------------------------------------------- engine


@pytest.mark.parametrize("region,reason", [
    ((1000, 1000, 40, 40), "lies outside the 64x48 image"),
    ((-200, 0, 100, 48), "lies outside"),
    ((0, 0, 0, 0), "has no area (0x0)"),
    ((0, 0, -40, 40), "has no area (-40x40)"),
    ((10, 10, 40, -1), "has no area"),
    ((50, 30, 40, 40), "is 14x18 pixels inside the image, smaller than a 32x32 patch"),
])
def test_engine_regions(region, reason: str) -> None:
    pixels = np.zeros((48, 64, 3), np.float32)
    assert reason in validate_regions([region], pixels.shape)[0]
    with pytest.raises(SupportRegionError, match="support region 1"):
        select_support(pixels, count=20, mode="regions", regions=[region])


def test_engine_region_sticking_out_is_clipped_not_refused() -> None:
    pixels = np.random.default_rng(0).uniform(0, 255, (48, 64, 3)).astype(np.float32)
    support = select_support(pixels, count=20, mode="regions", regions=[(-10, -10, 60, 60)])
    assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= 50 and b.y + b.h <= 50 for b in support.boxes)


@pytest.mark.parametrize("kw", [dict(count=0), dict(count=-3), dict(size=0), dict(size=1),
                                dict(mode="everywhere")])
def test_engine_support_counts_and_sizes(kw) -> None:
    args = dict(count=20, size=32, mode="random") | kw
    with pytest.raises(ConfigError):
        select_support(np.zeros((48, 64, 3), np.float32), **args)


@pytest.mark.parametrize("tile,ok", [(0, True), (1, False), (-1, False), (31, False), (32, True),
                                     (10**6, True), (2.5, False), (True, False)])
def test_engine_tile_sizes(tile, ok: bool) -> None:
    if ok:
        TileConfig(tile=tile)
    else:
        with pytest.raises(ConfigError, match="tile must be"):
            TileConfig(tile=tile)


def test_engine_huge_tile_runs_as_one_tile(tiny_model: Path) -> None:
    up = Upscaler(load_model(tiny_model), device="cpu", tile=TileConfig(tile=10**6))
    out = up.upscale(np.full((20, 24, 3), 100, np.float32))
    assert out.shape == (80, 96, 3)


@pytest.mark.parametrize("name", ["quantum", "gpu", "cuda:7", "mps", "meta", "cuda:-1", "xla"])
def test_engine_unknown_or_absent_devices(name: str) -> None:
    import torch

    if torch.cuda.is_available() and name.startswith("cuda:") and name != "cuda:-1":
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="choose one of auto, cpu"):
        resolve_device(name)


def test_engine_scale_the_model_lacks(tiny_model: Path) -> None:
    model = load_model(tiny_model)
    for scale in (2, 3, 8):
        with pytest.raises(ConfigError, match="the model upscales x4, not x"):
            Upscaler(model, device="cpu", scale=scale)
    with pytest.raises(ConfigError, match="scale must be positive"):
        Upscaler(None, method="bicubic", device="cpu", scale=-2)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "p.png", 48, 64)


def _upscale(capsys, photo: Path, model: Path, *extra: str) -> tuple[int, list[str], Path]:
    out = photo.parent / "out"
    code = main(["upscale", str(photo), "-o", str(out), "--model", str(model), "--quiet", *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, [line for line in err.splitlines() if line.strip()], out


@pytest.mark.parametrize("extra,message", [
    (["--tile", "1"], "tile must be 0 (automatic) or at least 32 pixels, got 1"),
    (["--tile", "-5"], "tile must be 0 (automatic) or at least 32 pixels, got -5"),
    (["--overlap", "-1"], "overlap must be a non-negative integer"),
    (["--device", "quantum"], "unknown device 'quantum'"),
    (["--device", "cuda:7"], "device 'cuda:7'"),
    (["--device", "meta"], "unsupported device 'meta'"),
    (["--support", "1,2,3"], "must be X,Y,W,H (four integers)"),
    (["--support", "0,0,40,40", "auto"], "not both"),
    (["--quality", "0"], "--quality must be 1..100"),
    (["--max-megapixels", "0"], "--max-megapixels must be positive"),
])
def test_cli_refuses_bad_settings_in_one_line(capsys, photo: Path, tiny_model: Path, extra, message) -> None:
    import torch

    if "cuda:7" in extra and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, lines, out = _upscale(capsys, photo, tiny_model, *extra)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("cmdsr: error: ") and message in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("spec,message", [
    ("1000,1000,40,40", "lies outside the 64x48 image"),
    ("0,0,0,0", "has no area (0x0)"),
    ("0,0,-40,40", "has no area (-40x40)"),
    ("50,30,40,40", "smaller than a 32x32 patch"),
])
def test_cli_reports_an_unusable_region_for_the_photo(capsys, photo: Path, tiny_model: Path, spec, message) -> None:
    code, lines, out = _upscale(capsys, photo, tiny_model, f"--support={spec}")
    assert code == 2
    assert lines[0] == "cmdsr: 1 problem(s):"
    assert "p.png" in lines[1] and "support region 1" in lines[1] and message in lines[1], lines
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("extra", [["--tile", "0"], ["--tile", "100000"], ["--tile", "32"],
                                   ["--support=-10,-10,60,60"], ["--device", ""]])
def test_cli_accepts_the_edge_values(capsys, photo: Path, tiny_model: Path, extra) -> None:
    code, lines, out = _upscale(capsys, photo, tiny_model, *extra)
    assert code == 0, lines
    assert (out / "p_x4.png").exists()


def test_cli_train_refuses_bad_settings(capsys, tmp_path: Path) -> None:
    from engine.data import write_synthetic_photos

    write_synthetic_photos(tmp_path / "hr", 2, (72, 88), seed=4)
    base = ["train", "--data", str(tmp_path / "hr"), "--out", str(tmp_path / "run"), "--steps", "1",
            "--no-progress"]
    cases = [
        (["--device", "quantum"], "device must be auto, cpu, cuda[:N] or mps"),
        (["--device", "cudax"], "unknown device 'cudax'"),
        (["--set", "model.scale=5"], "scale must be one of (2, 3, 4), got 5"),
        (["--set", "model.support_size=0"], "support_size must be a positive integer"),
        (["--set", "lr_patch=-8"], "lr_patch must be a positive integer"),
        (["--set", "model.channels=0"], "channels must be a positive integer"),
    ]
    for extra, message in cases:
        code = main([*base, *extra])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (extra, err)
        assert len(lines) == 1 and message in lines[0], (extra, err)
        assert not (tmp_path / "run" / "latest.pt").exists()


# ----------------------------------------------------------------------------- GUI


def _open(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([path])


def test_gui_regions_outside_or_empty_block_the_run_with_a_reason(qtbot, app_window, tmp_path: Path) -> None:
    from cmdsr_app.state import Region

    window = app_window
    _open(qtbot, window, write_photo(tmp_path / "p.png", 64, 64))
    window.settings_panel.set_support_mode("regions")
    for region, reason in ((Region(500, 500, 40, 40), "outside"), (Region(10, 10, 0, 20), "area"),
                           (Region(40, 40, 40, 40), "smaller than a 32x32 patch")):
        window.regions.set_regions([region])
        with qtbot.waitSignal(window.errorShown, timeout=5000) as blocker:
            window.run_upscale()
        assert "Region 1" in blocker.args[0] and reason in blocker.args[0], blocker.args[0]
        assert not window.heavy.busy
    # Fixing the region makes the run go through.
    window.regions.set_regions([Region(0, 0, 48, 48)])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000, check_params_cb=lambda m: m == "cmdsr"):
        window.run_upscale()


def test_gui_batch_lists_a_photo_whose_regions_lie_outside_it(qtbot, app_window, tmp_path: Path) -> None:
    from cmdsr_app.state import Region

    window = app_window
    big = write_photo(tmp_path / "big.png", 80, 96)
    small = write_photo(tmp_path / "small.png", 40, 40, seed=1)
    _open(qtbot, window, big)
    window.regions.set_regions([Region(50, 40, 40, 40)])  # fine here, outside "small"
    window.open_paths([small])
    qtbot.waitUntil(lambda: len(window.queue) == 2)
    window.queue[1].regions = [Region(50, 40, 40, 40)]
    window.batch_panel.folder_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.start_batch()
    report = blocker.args[0]
    assert [item.ok for item in report.items] == [True, False]
    assert "outside the 40x40 image" in report.items[1].error


def test_gui_odd_saved_settings_fall_back_or_fail_clearly(qtbot, tiny_model: Path, tiny_baseline: Path,
                                                         isolated_settings: Path, monkeypatch,
                                                         tmp_path: Path) -> None:
    """A hand-edited settings file with an unknown device, a 1-pixel tile and nonsense values:
    the window opens, the device falls back to Auto and the tile error is a clear dialog."""
    import engine

    monkeypatch.setattr(engine, "default_model_path", lambda: tiny_model)
    monkeypatch.setattr(engine, "default_baseline_path", lambda: tiny_baseline)
    (isolated_settings / "settings.json").write_text(json.dumps({
        "device": "quantum:3", "tile": 1, "scale": 7, "quality": 500, "support_mode": "psychic",
        "seed": -5, "output_format": "gif",
    }))
    from cmdsr_app.main_window import MainWindow

    window = MainWindow(with_training=False)
    window.confirm_close = lambda: True
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.models.info is not None, timeout=15000)
        panel = window.settings_panel
        assert panel.device == "auto"
        assert panel.output_format == "png" and panel.support_mode in ("auto", "random")
        assert 1 <= panel.quality <= 100
        _open(qtbot, window, write_photo(tmp_path / "p.png", 40, 48))
        if panel.tile == 1:  # kept as typed: the run must say why it cannot use it
            with qtbot.waitSignal(window.errorShown, timeout=60000) as blocker:
                window.run_upscale()
            assert "tile must be 0 (automatic) or at least 32 pixels" in blocker.args[0]
            print(f"saved tile 1 -> dialog: {blocker.args[0]}")
            panel.tile_combo.setCurrentIndex(panel.tile_combo.findData(0))
        with qtbot.waitSignal(window.upscaleFinished, timeout=60000, check_params_cb=lambda m: m == "cmdsr"):
            window.run_upscale()
    finally:
        window.close()


def test_gui_offers_only_the_models_scale(qtbot, app_window, tmp_path: Path) -> None:
    window = app_window
    combo = window.settings_panel.scale_combo
    model = combo.model()
    enabled = {combo.itemData(i): model.item(i).isEnabled() for i in range(combo.count())}
    assert enabled == {2: False, 3: False, 4: True}
    why = combo.itemData(combo.findData(2), 3)  # Qt.ToolTipRole
    assert "x4" in why.replace("×", "x")
    # A x2 checkpoint switches the scale, and the result is x2.
    x2 = save_tiny(tmp_path / "tiny_x2.pt", scale=2)
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(x2))
    assert combo.currentData() == 2 and model.item(combo.findData(4)).isEnabled() is False
    _open(qtbot, window, write_photo(tmp_path / "p.png", 30, 40))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000, check_params_cb=lambda m: m == "cmdsr"):
        window.run_upscale()
    assert window.compare.result("cmdsr").width() == 80
