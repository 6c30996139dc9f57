"""Local adaptation (``cmdsr upscale --adapt local``): exactness against global inference and
across tiles, progress and cancel, no seams, the damage map, and the gain on a photo whose
damage differs from left to right (``tests/engine/data/damage_tiny.pt``, a tiny model whose
condition encodes the degradation)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine import (
    CancelledError,
    ConfigError,
    ModelConfig,
    TileConfig,
    Upscaler,
    build_model,
    load_model,
    psnr_y,
    save_model,
    select_support,
)
from engine.cli import main
from engine.data import synthetic_photo
from engine.degrade import DegradationParams, degrade
from engine.inference.local_adapt import (
    _interp_weights,
    cell_supports,
    damage_map,
    plan_cells,
    upscale_local,
)
from engine.io.imageio import read_image
from engine.metrics import rgb_to_y

FIXTURE = Path(__file__).resolve().parent / "data" / "damage_tiny.pt"


@pytest.fixture
def varied_model(seeded) -> torch.nn.Module:
    """A tiny model whose modulations differ clearly between support sets."""
    model = build_model(ModelConfig(channels=8, blocks=2, support_size=4, cond_channels=16))
    with torch.no_grad():
        for mod in model.sr_net.modulations.modulations:
            mod.weight.mul_(0.5)
        for p in model.condition_net.parameters():
            p.mul_(3)
    return model.eval()


@pytest.fixture
def photo() -> np.ndarray:
    return synthetic_photo(np.random.default_rng(5), 90, 130).astype(np.float32)  # non-square


def mixed_damage(seed: int = 0, size: tuple[int, int] = (256, 512)) -> tuple[np.ndarray, np.ndarray]:
    """(HR, LR) where the LR's left half is blurred (sigma 3.0, no noise) and its right half
    is sharper but noisy (sigma 0.8, noise 25)."""
    rng = np.random.default_rng(seed)
    hr = synthetic_photo(rng, *size)
    soft = degrade(hr, DegradationParams(15, 3.0, 3.0, 0.0, 0.0), 4, rng)
    noisy = degrade(hr, DegradationParams(15, 0.8, 0.8, 0.0, 25.0), 4, rng)
    half = soft.shape[1] // 2
    return hr, np.concatenate([soft[:, :half], noisy[:, half:]], axis=1)


def test_one_region_over_the_photo_equals_global(varied_model, photo):
    up = Upscaler(varied_model, device="cpu")
    region = (0, 0, 130, 90)
    chosen = select_support(photo, count=4, mode="regions", regions=[region], seed=3)
    glob = up.upscale(photo, chosen)
    local = upscale_local(up, photo, regions=[region], seed=3, cell=32)
    assert local.shape == glob.shape == (360, 520, 3)
    assert np.abs(local - glob).max() < 0.01
    # and with the photo's own neighbourhoods the result does differ
    assert np.abs(upscale_local(up, photo, cell=32) - glob).mean() > 0.5


def test_tiled_equals_untiled_and_uint8_is_rounded(varied_model, photo):
    whole = upscale_local(Upscaler(varied_model, device="cpu", tile=TileConfig(tile=2048)),
                          photo, cell=32)
    tiled_up = Upscaler(varied_model, device="cpu", tile=TileConfig(tile=32))
    tiled = upscale_local(tiled_up, photo, cell=32)
    assert np.abs(tiled - whole).max() < 0.01
    as_uint8 = upscale_local(tiled_up, photo, cell=32, out_dtype=np.uint8)
    assert as_uint8.dtype == np.uint8
    assert np.abs(as_uint8.astype(np.float32) - np.rint(tiled)).max() <= 1


def test_progress_and_cancel(varied_model, photo):
    up = Upscaler(varied_model, device="cpu", tile=TileConfig(tile=32))
    seen: list[tuple[int, int]] = []
    upscale_local(up, photo, cell=32, progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] > 10
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    cancel = threading.Event()
    calls: list[int] = []

    def stop_early(done: int, total: int) -> None:
        calls.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(CancelledError):
        upscale_local(up, photo, cell=32, progress=stop_early, cancel=cancel)
    assert max(calls) == 3  # stopped at the next step
    cancel.set()
    with pytest.raises(CancelledError):
        upscale_local(up, photo, cell=32, cancel=cancel)


def test_interpolation_is_a_partition_of_unity():
    centres = np.array([16.0, 48.0, 80.0])
    w = _interp_weights(np.arange(96) + 0.5, centres).numpy()
    assert np.allclose(w.sum(1), 1)
    assert np.allclose(w[:16], [1, 0, 0]) and np.allclose(w[80:], [0, 0, 1])
    assert np.allclose(w[32], [0.5 - 1 / 64, 0.5 + 1 / 64, 0])  # pixel 32 sits at 32.5
    assert np.all(np.abs(np.diff(w, axis=0)) <= 1 / 32 + 1e-6)  # no jump anywhere


def test_cells_and_supports(photo):
    grid = plan_cells(90, 130, 32)
    assert (grid.rows, grid.cols) == (3, 5)
    assert sum(b.w * b.h for b in grid.boxes) == 90 * 130
    supports = cell_supports(photo, grid, 4, regions=[(0, 0, 60, 90)], seed=1)
    # cells whose centre lies in the region share its patches; the others stay near their cell
    assert supports[0] is supports[1] and supports[0].mode == "regions"
    last = supports[-1]
    assert last.mode == "local" and all(b.x >= 130 - 64 for b in last.boxes)
    with pytest.raises(ConfigError):
        plan_cells(90, 130, 8)


def test_needs_a_conditioned_model(seeded, photo):
    up = Upscaler(None, method="bicubic")
    with pytest.raises(ConfigError, match="cmdsr"):
        upscale_local(up, photo)


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    return load_model(FIXTURE)


def test_local_beats_global_on_mixed_damage(trained):
    gains = []
    for seed in (0, 1):
        hr, lr = mixed_damage(seed)
        up = Upscaler(trained, device="cpu")
        glob = up.upscale(lr, select_support(lr, count=trained.support_size, seed=0))
        local = upscale_local(up, lr, cell=32, seed=0)
        gains.append(psnr_y(local, hr, border=4) - psnr_y(glob, hr, border=4))
    assert np.mean(gains) >= 0.3, gains


def test_no_seam_in_the_blend_zone(trained):
    """Where the modulations blend from the soft half's condition to the noisy half's, the
    change from column to column, relative to the seamless global result's, is no higher
    than elsewhere (a seam would be a spike of extra change there)."""
    _, lr = mixed_damage(2)
    up = Upscaler(trained, device="cpu", tile=TileConfig(tile=48))
    local = rgb_to_y(upscale_local(up, lr, cell=32, seed=0))
    glob = rgb_to_y(up.upscale(lr, select_support(lr, count=trained.support_size, seed=0)))

    def column_change(y: np.ndarray) -> np.ndarray:
        return np.abs(np.diff(y, axis=1)).mean(axis=0)

    excess = column_change(local) / (column_change(glob) + 1e-3)
    width = local.shape[1]
    # the cells on either side of the middle: their centres are 16 LR pixels from it
    zone = slice(width // 2 - 4 * 32, width // 2 + 4 * 32)
    inside = excess[zone]
    outside = np.concatenate([excess[4:zone.start], excess[zone.stop:-4]])
    # a seam would be a spike well above everything else; 1% absorbs float-level ties
    assert inside.max() <= 1.01 * outside.max()
    assert inside.mean() <= np.percentile(outside, 90)


def test_damage_map_follows_the_damage(trained):
    _, lr = mixed_damage(3)
    result = damage_map(lr, trained, cell=32)
    assert len(result.estimates) == result.rows * result.cols == len(result.boxes)
    grid = np.array([e.noise_sigma for e in result.estimates]).reshape(result.rows, result.cols)
    assert grid[:, -2:].mean() > grid[:, :2].mean() + 10  # the right half is the noisy one


def test_damage_map_reports_progress_and_cancels(trained, photo):
    seen: list[tuple[int, int]] = []
    result = damage_map(photo, trained, cell=16, progress=lambda d, t: seen.append((d, t)))
    batches = -(-result.rows * result.cols // 16)  # ceil: one report per condition batch
    assert batches > 1 and seen == [(i + 1, batches) for i in range(batches)]
    cancel = threading.Event()

    def stop_after_first(done: int, _total: int) -> None:
        cancel.set()

    with pytest.raises(CancelledError):
        damage_map(photo, trained, cell=16, progress=stop_after_first, cancel=cancel)
    with pytest.raises(CancelledError):  # set before it starts: no work at all
        damage_map(photo, trained, cancel=cancel)


def test_cli_adapt_local(tmp_path, varied_model, rng, capsys):
    model_path = save_model(varied_model, tmp_path / "m.pt")
    src = tmp_path / "in.png"
    PILImage.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out.png"
    code = main(["upscale", str(src), "-o", str(out), "--model", str(model_path),
                 "--adapt", "local", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert read_image(out).pixels.shape == (160, 280, 3)
    code = main(["upscale", str(src), "-o", str(tmp_path / "b.png"), "--method", "bicubic",
                 "--adapt", "local"])
    assert code == 2 and "--adapt local" in capsys.readouterr().err
