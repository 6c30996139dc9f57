"""The damage of real photos made with torch ops (engine.training.device_damage) against the
host's OpenCV path (engine.degrade.finish_lr): JPEG decoded pixels, its blocking and chroma
subsampling, the resizes, the camera's demosaic and its noise statistics, and whole ``phones``
batches made on the device without the host."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

import engine.training.device_data as device_data
from engine.data import synthetic_photo
from engine.degrade import DegradationConfig, DegradationParams, finish_lr
from engine.degrade_real import (
    camera_noise,
    demosaic_rggb,
    draw_read_noise,
    jpeg_sampled,
    resize_to,
)
from engine.errors import ConfigError
from engine.training import device_damage as dd
from engine.training.device_data import DevicePhotos, DeviceTaskSampler

CLEAN = DegradationParams(15, 1.0, 1.0, 0.0, 0.0)
SHOT = 4e-3
READ = draw_read_noise(SHOT, np.random.default_rng(0), jitter=False)


def _patches(n: int = 12, size: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 [n, size, size, 3] crops of photo-like images."""
    rng = np.random.default_rng(seed)
    photos = [synthetic_photo(rng, 160, 200) for _ in range(3)]
    out = []
    for i in range(n):
        img = photos[i % 3]
        y, x = int(rng.integers(0, 160 - size)), int(rng.integers(0, 200 - size))
        out.append(img[y:y + size, x:x + size])
    return np.stack(out)


def _torch(p: np.ndarray) -> torch.Tensor:
    """[n, H, W, 3] -> float [1, n, 3, H, W]."""
    return torch.from_numpy(p).permute(0, 3, 1, 2)[None].float()


def _numpy(x: torch.Tensor) -> np.ndarray:
    """[n, 3, H, W] -> [n, H, W, 3]."""
    return x.permute(0, 2, 3, 1).numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def _blockiness(imgs: np.ndarray) -> float:
    """Mean luma step across 8x8 block edges over the mean step elsewhere (1 = no blocks)."""
    y = imgs.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    dx = np.abs(np.diff(y, axis=2))
    dy = np.abs(np.diff(y, axis=1))
    edge = np.zeros(dx.shape[2], bool)
    edge[7::8] = True
    return float((dx[:, :, edge].mean() + dy[:, edge].mean()) / (dx[:, :, ~edge].mean() + dy[:, ~edge].mean()))


def test_quantisation_tables_are_the_ones_opencv_writes() -> None:
    """The DQT segments of OpenCV's own files, zigzag order undone."""
    zigzag = sorted(((i, j) for i in range(8) for j in range(8)),
                    key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0]))
    img = _patches(1)[0]
    for quality in (5, 30, 50, 60, 75, 95, 100):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        data = buf.tobytes()
        tables = {}
        at = data.find(b"\xff\xdb")
        while at >= 0:
            length = int.from_bytes(data[at + 2:at + 4], "big")
            seg = data[at + 4:at + 2 + length]
            while seg:
                tid, values = seg[0] & 15, seg[1:65]
                table = np.zeros((8, 8), np.int64)
                for k, (i, j) in enumerate(zigzag):
                    table[i, j] = values[k]
                tables[tid] = table
                seg = seg[65:]
            at = data.find(b"\xff\xdb", at + 2)
        np.testing.assert_array_equal(dd.quant_tables(quality), np.stack([tables[0], tables[1]]))


@pytest.mark.parametrize("quality", [30, 60, 80, 95])
@pytest.mark.parametrize("sampling", ["420", "444"])
def test_jpeg_decodes_as_opencvs(quality: int, sampling: str) -> None:
    """Decoded pixels within a level or two of OpenCV's (PSNR > 45 dB between the two, far
    above what the compression itself changes: 35-45 dB), at every quality and both
    samplings."""
    p = _patches()
    ours = _numpy(dd.jpeg_batch(_torch(p), [quality], sampling)[0])
    ref = np.stack([jpeg_sampled(x, quality, sampling) for x in p])
    assert ours.shape == ref.shape
    assert ours.min() >= 0 and ours.max() <= 255 and np.array_equal(ours, np.round(ours))
    assert _psnr(ours, ref) > 45
    assert _psnr(ours, ref) > _psnr(ref, p) + 8  # nearer OpenCV's result than to the photo
    # libjpeg's DCTs are integer approximations: at high qualities, where the steps are 1 or
    # 2, their rounding moves a few pixels by more than a level
    assert np.mean(np.abs(ours - ref) > 2) < 0.05


def test_jpeg_blocks_show_at_8x8_edges_as_in_opencvs() -> None:
    p = _patches(seed=3)
    assert _blockiness(p) < 1.1
    for quality in (20, 40):
        ours = _numpy(dd.jpeg_batch(_torch(p), [quality], "420")[0])
        ref = np.stack([jpeg_sampled(x, quality, "420") for x in p])
        b_ours, b_ref = _blockiness(ours), _blockiness(ref)
        assert b_ref > 1.3
        assert b_ours == pytest.approx(b_ref, rel=0.05)


def test_chroma_subsampling_is_visible() -> None:
    """One-pixel red/blue stripes: 4:2:0 averages their colour away (as OpenCV's does), 4:4:4
    keeps it."""
    stripes = np.zeros((4, 32, 32, 3), np.uint8)
    stripes[:, :, 0::2] = (200, 40, 60)
    stripes[:, :, 1::2] = (40, 60, 200)

    def colour_swing(imgs: np.ndarray) -> float:
        f = imgs.astype(np.float64)
        return float(np.abs(np.diff(f[..., 0] - f[..., 2], axis=2)).mean())

    swing = {}
    for sampling in ("420", "444"):
        ours = _numpy(dd.jpeg_batch(_torch(stripes), [90], sampling)[0])
        ref = np.stack([jpeg_sampled(x, 90, sampling) for x in stripes])
        assert colour_swing(ours) == pytest.approx(colour_swing(ref), rel=0.1, abs=3)
        swing[sampling] = colour_swing(ours)
    assert swing["444"] > 200 and swing["420"] < 0.25 * swing["444"]


@pytest.mark.parametrize("hw", [(19, 23), (33, 40), (45, 45)])
def test_jpeg_of_a_smaller_image_in_a_larger_canvas(hw: tuple[int, int]) -> None:
    """Sizes off the 16-pixel MCU grid (what the resizes make): libjpeg's edge padding; the
    canvas beyond the image does not leak in."""
    h, w = hw
    p = _patches(6)[:, :h, :w]
    canvas = torch.full((1, 6, 3, 48, 48), 255.0)
    canvas[..., :h, :w] = _torch(p)
    ours = _numpy(dd.jpeg_batch(canvas, [50], "420", [hw])[0])[:, :h, :w]
    ref = np.stack([jpeg_sampled(x, 50, "420") for x in p])
    assert _psnr(ours, ref) > 45


@pytest.mark.parametrize("interp", ["area", "linear", "cubic"])
def test_resize_matrices_are_opencvs(interp: str) -> None:
    p = _patches(4, 32)
    for size in (19, 27, 32, 45):
        m = torch.from_numpy(dd.resize_matrix_np(32, size, interp))
        ours = _numpy((m @ _torch(p)[0] @ m.T).round().clamp(0, 255))
        ref = np.stack([resize_to(x, size, size, interp) for x in p])
        assert np.abs(ours - ref).max() <= 1
        assert np.mean(ours != ref) < 0.01


def test_demosaic_is_opencvs_exactly() -> None:
    raw = np.random.default_rng(0).integers(0, 65536, (30, 34)).astype(np.float32)
    ours = dd.demosaic_rggb(torch.from_numpy(raw)[None, None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ours, np.rint(demosaic_rggb(raw / 65535) * 65535))


@pytest.mark.parametrize("chroma_blur", [0.0, 1.5])
def test_camera_pipeline_without_noise_is_the_hosts(chroma_blur: float) -> None:
    """Shot and read noise 0: unprocessing, mosaic, demosaic, gains, gamma and the chroma
    blur alone, which must give the host's pixels (within one level)."""
    p = _patches(6, 32)
    params = dataclasses.replace(CLEAN, camera_shot=0.0, camera_read=0.0, camera_red_gain=2.2,
                                 camera_blue_gain=1.6, camera_chroma_blur=chroma_blur)
    ours = _numpy(dd.camera_noise_batch(_torch(p), [params], torch.Generator().manual_seed(0))[0])
    ref = np.stack([camera_noise(x, 0.0, 0.0, np.random.default_rng(0), 2.2, 1.6, chroma_blur) for x in p])
    assert np.abs(ours - ref).max() <= 1
    assert not np.array_equal(ref, p)  # the round trip does change a photo


def _noise_stats(imgs: np.ndarray, level: int) -> tuple[float, float]:
    """(luma std, chroma std) of noisy flat patches, on OpenCV's YCrCb of 0..255."""
    ycc = np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb) for x in imgs]).astype(np.float64)
    return float(ycc[..., 0].std()), float(ycc[..., 1:].std(axis=(0, 1, 2)).mean())


@pytest.mark.parametrize("chroma_blur", [0.0, 1.5])
def test_camera_noise_statistics_are_the_hosts(chroma_blur: float) -> None:
    """Same camera, flat greys from shadow to highlight: the luma and chroma noise of the
    torch path within 10% of the host's at every level (their draws differ), rising with
    the light, and the chroma blur turning colour speckle into less chroma noise in both."""
    params = dataclasses.replace(CLEAN, camera_shot=SHOT, camera_read=READ, camera_red_gain=2.1,
                                 camera_blue_gain=1.7, camera_chroma_blur=chroma_blur)
    gen = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(1)
    lumas, host_lumas = [], []
    for level in (30, 80, 140, 200):
        flat = np.full((24, 32, 32, 3), level, np.uint8)
        ours = _numpy(dd.camera_noise_batch(_torch(flat), [params], gen)[0]).astype(np.uint8)
        ref = np.stack([camera_noise(x, SHOT, READ, rng, 2.1, 1.7, chroma_blur) for x in flat])
        (y_ours, c_ours), (y_ref, c_ref) = _noise_stats(ours, level), _noise_stats(ref, level)
        assert y_ours == pytest.approx(y_ref, rel=0.1)
        assert c_ours == pytest.approx(c_ref, rel=0.1)
        assert abs(ours.astype(np.float64).mean() - ref.astype(np.float64).mean()) < 1.0
        lumas.append(y_ours)
        host_lumas.append(y_ref)
    # signal dependent, unlike Gaussian noise: shot noise grows with the light, gamma lifts
    # the shadows' noise; the same shape in both
    assert max(lumas) > 1.3 * min(lumas)
    assert np.argsort(lumas).tolist() == np.argsort(host_lumas).tolist()
    if chroma_blur:
        flat = np.full((24, 32, 32, 3), 120, np.uint8)
        sharp = dataclasses.replace(params, camera_chroma_blur=0.0)
        raw_chroma = _noise_stats(_numpy(dd.camera_noise_batch(_torch(flat), [sharp], gen)[0]).astype(np.uint8), 120)[1]
        blurred = _noise_stats(_numpy(dd.camera_noise_batch(_torch(flat), [params], gen)[0]).astype(np.uint8), 120)[1]
        assert blurred < 0.6 * raw_chroma


def test_finish_batch_matches_finish_lr_where_nothing_is_drawn() -> None:
    """JPEG, double JPEG, 4:4:4, resizes both ways and a second round without noise: each task
    of one batch within a level or two of the host's finish_lr (PSNR > 42 dB)."""
    p = _patches(6, 32)
    tasks = [
        dataclasses.replace(CLEAN, jpeg_quality=60),
        dataclasses.replace(CLEAN, jpeg_quality=60, resize=0.75, resize_interp="area"),
        dataclasses.replace(CLEAN, jpeg_quality=45, jpeg_first=80, resize=1.3, resize_interp="linear",
                            resize_back_interp="area"),
        dataclasses.replace(CLEAN, jpeg_quality=90, jpeg_sampling="444", jpeg_first=50),
        dataclasses.replace(CLEAN, jpeg_quality=70, second=DegradationParams(7, 0.8, 1.1, 0.5, 0.0, False, 50)),
        dataclasses.replace(CLEAN, resize=0.6, resize_interp="cubic"),
    ]
    out = dd.finish_batch(_torch(p).expand(len(tasks), -1, -1, -1, -1), tasks, torch.Generator())
    assert out.dtype == torch.uint8 and out.shape == (6, 6, 3, 32, 32)
    for t, params in enumerate(tasks):
        ref = np.stack([finish_lr(x, params, np.random.default_rng(0)) for x in p])
        assert _psnr(_numpy(out[t]), ref) > 42, params.label()


def _sampler(damage: str, seed: int = 5) -> DeviceTaskSampler:
    rng = np.random.default_rng(0)
    photos = DevicePhotos([synthetic_photo(rng, 120, 150) for _ in range(3)], "cpu", min_size=64)
    return DeviceTaskSampler(photos, DegradationConfig.preset("phones"), scale=2, lr_patch=32,
                             support_size=3, tasks_per_batch=16, seed=seed, device_damage=damage)


def test_phones_batch_on_the_device_never_calls_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def host(*_: object) -> None:
        raise AssertionError("finish_lr called: the batch went through the host")

    monkeypatch.setattr(device_data, "finish_lr", host)
    s = _sampler("device")
    _, params = s.task_plan(4)
    assert sum(p.jpeg_quality is not None or p.real_photo for p in params) >= 6
    batch = s.batch(4)  # would raise through the host
    assert batch["lr"].dtype == torch.uint8
    with pytest.raises(AssertionError, match="finish_lr called"):
        _sampler("host").batch(4)


def test_device_and_host_batches_agree() -> None:
    """Same shapes, dtypes and ranges; the same HR patches and the same LR where no damage
    of real photos is asked; near-identical LR where it is and nothing is drawn (JPEG and
    resizes alone); reproducible for a seed and step."""
    dev, host = _sampler("device"), _sampler("host")
    for step in (0, 3):
        a, b = dev.batch(step), host.batch(step)
        _, params = dev.task_plan(step)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype
        assert torch.equal(a["hr"], b["hr"])
        assert int(a["lr"].min()) >= 0 and int(a["lr"].max()) <= 255
        for t, p in enumerate(params):
            la, lb = _numpy(a["lr"][t]), _numpy(b["lr"][t])
            if p.jpeg_quality is None and not p.real_photo:
                assert np.array_equal(la, lb)
            elif not p.camera and p.second is None:  # a double save compounds rounding
                assert _psnr(la, lb) > (37 if p.jpeg_first else 42), p.label()
        again = _sampler("device").batch(step)
        for k in a:
            assert torch.equal(a[k], again[k])
    assert not torch.equal(dev.batch(1)["lr"], dev.batch(2)["lr"])


def test_damage_path_choice() -> None:
    assert not _sampler("auto").damage_on_device  # the CPU keeps OpenCV
    assert _sampler("device").damage_on_device
    with pytest.raises(ConfigError, match="device_damage"):
        _sampler("gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_never_waits_for_the_device() -> None:
    """On a GPU a ``phones`` batch is queued without one synchronisation with the host."""
    rng = np.random.default_rng(0)
    photos = DevicePhotos([synthetic_photo(rng, 200, 240) for _ in range(4)], "cuda", min_size=128)
    s = DeviceTaskSampler(photos, DegradationConfig.preset("phones"), scale=4, lr_patch=32,
                          support_size=10, tasks_per_batch=16, seed=0)
    assert s.damage_on_device
    s.batch(0)  # warm caches (matrices, tables)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 4):
            s.batch(step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def test_damage_matmuls_run_in_full_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training turns TF32 on for a GPU; the DCT and the resizes must not use it (a TF32
    coefficient can cross a quantisation step), and the caller's setting comes back."""
    seen = []
    real = dd._code_blocks

    def spy(planes: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_float32_matmul_precision())
        return real(planes, tables)

    monkeypatch.setattr(dd, "_code_blocks", spy)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        dd.finish_batch(_torch(_patches(2, 16)), [dataclasses.replace(CLEAN, jpeg_quality=50)], torch.Generator())
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)
    assert seen and set(seen) == {"highest"}
