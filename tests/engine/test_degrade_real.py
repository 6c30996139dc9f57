"""The damage real photos carry: a camera's mosaic noise, JPEG chroma subsampling, double
JPEG, resizes, the second round, and that training batches (CPU and device) make them."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from engine.data import synthetic_photo
from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    degrade,
    finish_lr,
    jpeg,
    sample_degradation,
)
from engine.degrade_real import (
    camera_noise,
    demosaic_rggb,
    draw_camera_noise,
    draw_read_noise,
    jpeg_sampled,
    linear_to_srgb,
    mosaic_rggb,
    resized_jpeg,
    srgb_noise_std,
    srgb_to_linear,
)


def _flat(level: float | tuple[float, float, float], size: int = 96) -> np.ndarray:
    return np.full((size, size, 3), level, np.float32)


def _chroma(img: np.ndarray) -> np.ndarray:
    """Cr, Cb planes (float32, 0..255 scale) of an RGB image."""
    ycc = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2YCrCb) * 255.0
    return ycc[..., 1:]


# ----------------------------------------------------------------------------- light


def test_srgb_curve_round_trip_and_ranges():
    x = np.arange(256, dtype=np.float32).reshape(16, 16, 1).repeat(3, axis=2)
    lin = srgb_to_linear(x)
    assert lin.dtype == np.float32 and lin.min() == 0.0 and abs(float(lin.max()) - 1.0) < 1e-6
    assert abs(float(srgb_to_linear(np.array([118.0]))[0]) - 0.181) < 0.002  # mid grey ~18% light
    back = linear_to_srgb(lin)
    assert back.dtype == np.float32 and np.abs(back - x).max() < 0.01


@pytest.mark.parametrize("colour", [(200, 60, 30), (20, 180, 90), (40, 70, 230)])
def test_mosaic_then_demosaic_gives_a_flat_colour_back(colour):
    """RGGB layout and OpenCV's Bayer code agree: red stays red, blue stays blue."""
    lin = srgb_to_linear(_flat(colour, 16))
    raw = mosaic_rggb(lin)
    assert raw.shape == (16, 16)
    assert raw[0, 0] == lin[0, 0, 0] and raw[1, 1] == lin[0, 0, 2] and raw[0, 1] == lin[0, 0, 1]
    rgb = demosaic_rggb(raw)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.float32
    assert np.abs(rgb[2:-2, 2:-2] - lin[2:-2, 2:-2]).max() < 1e-4


# ----------------------------------------------------------------------------- camera noise


def test_camera_noise_dtype_shape_and_determinism(rng):
    img = synthetic_photo(rng, 33, 47)  # odd sizes: the mosaic still covers every pixel
    a = camera_noise(img, 4e-3, 2e-5, np.random.default_rng(7), 2.1, 1.7, 1.0)
    b = camera_noise(img, 4e-3, 2e-5, np.random.default_rng(7), 2.1, 1.7, 1.0)
    c = camera_noise(img, 4e-3, 2e-5, np.random.default_rng(8), 2.1, 1.7, 1.0)
    assert a.dtype == np.uint8 and a.shape == (33, 47, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_camera_noise_is_signal_dependent_in_linear_light(rng):
    """Shot noise: the variance in linear light grows with the light (bright > dark)."""
    shot, read = 8e-3, draw_read_noise(8e-3, rng, jitter=False)
    variances = []
    for level in (50.0, 120.0, 220.0):
        out = camera_noise(_flat(level), shot, read, np.random.default_rng(1))
        variances.append(float(srgb_to_linear(out)[8:-8, 8:-8, 1].var()))
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 2.5 * variances[0]


def test_camera_noise_has_colour_noise_and_keeps_a_grey_mean():
    grey = _flat(118.0)
    out = camera_noise(grey, 8e-3, 1e-4, np.random.default_rng(2), 2.1, 1.7)
    assert abs(float(out.mean()) - 118.0) < 1.0
    # Demosaicing a noisy mosaic colours the noise: chroma varies on a grey wall ...
    assert float(_chroma(out).std()) > 2.0
    # ... unlike Gaussian noise made the same on the three channels (sensor-like gray noise)
    gray = np.clip(grey + np.random.default_rng(2).normal(0, 8, grey.shape[:2])[..., None], 0, 255)
    assert float(_chroma(gray).std()) < 0.6


def test_chroma_noise_reduction_makes_blotches_not_speckle():
    """The chroma blur leaves less chroma noise but of lower frequency (neighbours 3 px apart
    correlate), as a phone's colour blotches."""
    grey = _flat(118.0, 128)
    speckle = _chroma(camera_noise(grey, 1e-2, 2e-4, np.random.default_rng(3), 2.1, 1.7, 0.0))
    blotch = _chroma(camera_noise(grey, 1e-2, 2e-4, np.random.default_rng(3), 2.1, 1.7, 2.0))

    def corr(c: np.ndarray, lag: int) -> float:
        a = c[8:-8, 8:-8 - lag, 0] - c[8:-8, 8:-8, 0].mean()
        b = c[8:-8, 8 + lag:-8, 0] - c[8:-8, 8:-8, 0].mean()
        return float((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean()))

    assert blotch.std() < speckle.std()
    assert corr(blotch, 3) > 0.5 > corr(speckle, 3)


def test_camera_noise_range_runs_from_nearly_clean_to_high_iso():
    low = srgb_noise_std(1e-4, draw_read_noise(1e-4, np.random.default_rng(0), jitter=False))
    high = srgb_noise_std(1.2e-2, draw_read_noise(1.2e-2, np.random.default_rng(0), jitter=False))
    assert low < 2.0 and 10.0 < high < 25.0
    grey = _flat(118.0)
    clean = camera_noise(grey, 1e-4, 1e-8, np.random.default_rng(0))
    assert float(np.abs(clean.astype(np.float32) - grey).mean()) < 2.0
    draws = [draw_camera_noise(np.random.default_rng(i)) for i in range(200)]
    shots = np.array([d[0] for d in draws])
    assert shots.min() >= 1e-4 and shots.max() <= 1.2e-2
    assert (shots < 1e-3).mean() > 0.3 and (shots > 4e-3).mean() > 0.15  # log-uniform
    assert all(1.9 <= d[2] <= 2.4 and 1.5 <= d[3] <= 1.9 and 0.0 <= d[4] <= 2.0 for d in draws)


# ----------------------------------------------------------------------------- JPEG, resizes


def _chroma_stripes() -> np.ndarray:
    """Same brightness, colour alternating every pixel: detail only in chroma."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 0::2] = (200, 60, 60)
    img[:, 1::2] = (60, 110, 200)
    return img


def test_jpeg_420_subsamples_chroma_and_444_keeps_it():
    img = _chroma_stripes()
    err420 = np.abs(_chroma(jpeg_sampled(img, 90, "420")) - _chroma(img)).mean()
    err444 = np.abs(_chroma(jpeg_sampled(img, 90, "444")) - _chroma(img)).mean()
    assert err444 < 5.0 and err420 > 5 * err444
    with pytest.raises(ValueError, match="sampling"):
        jpeg_sampled(img, 90, "411")


@pytest.mark.parametrize("quality", [30, 60, 95])
def test_default_jpeg_is_opencvs_4_2_0_as_before(rng, quality):
    """The explicit 4:2:0 is OpenCV's default: older JPEG rows and data are unchanged."""
    img = synthetic_photo(rng, 48, 40)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    assert np.array_equal(jpeg(img, quality), cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def test_double_jpeg_differs_from_single(rng):
    img = synthetic_photo(rng, 64, 64)
    single = resized_jpeg(img, 60, 1.0)
    double = resized_jpeg(img, 60, 1.0, first_quality=85)
    assert np.array_equal(single, jpeg(img, 60))
    assert not np.array_equal(single, double)
    assert np.abs(double.astype(float) - img).mean() > np.abs(single.astype(float) - img).mean()


@pytest.mark.parametrize("factor,interp,back", [(0.6, "area", "cubic"), (1.4, "linear", "area"),
                                                (0.75, "cubic", "linear")])
def test_resize_around_jpeg_keeps_the_size(rng, factor, interp, back):
    img = synthetic_photo(rng, 37, 50)
    out = resized_jpeg(img, 70, factor, interp, back)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, jpeg(img, 70))
    with pytest.raises(ValueError, match="interpolation"):
        resized_jpeg(img, 70, factor, "lanczos")


# ----------------------------------------------------------------------------- through degrade()


def test_degrade_applies_camera_noise_web_steps_and_keeps_the_lr_size(rng):
    hr = synthetic_photo(rng, 96, 120)
    base = DegradationParams(15, 1.0, 1.0, 0.0, 0.0)
    clean = degrade(hr, base, 4, np.random.default_rng(0))
    for params in (
        dataclasses.replace(base, camera_shot=8e-3, camera_read=1e-4, camera_red_gain=2.0,
                            camera_blue_gain=1.7),
        dataclasses.replace(base, jpeg_quality=50, jpeg_first=90, resize=0.7, resize_interp="area"),
        dataclasses.replace(base, jpeg_quality=50, jpeg_sampling="444"),
    ):
        lr = degrade(hr, params, 4, np.random.default_rng(0))
        assert lr.shape == (24, 30, 3) and lr.dtype == np.float32
        assert np.array_equal(lr, np.rint(lr)) and lr.min() >= 0 and lr.max() <= 255
        assert np.array_equal(lr, degrade(hr, params, 4, np.random.default_rng(0)))
        assert not np.array_equal(lr, clean)
        assert params.real_photo and not base.real_photo


def test_second_round_applies_the_damage_twice(rng):
    hr = synthetic_photo(rng, 96, 96)
    first = DegradationParams(15, 1.2, 1.2, 0.0, 0.0, False, 70)
    again = DegradationParams(7, 0.8, 0.8, 0.0, 0.0, False, 50)
    twice = dataclasses.replace(first, second=again)
    once = degrade(hr, first, 4, np.random.default_rng(0))
    lr = degrade(hr, twice, 4, np.random.default_rng(0))
    # the second round is degrade() at scale 1 on the first round's LR
    assert np.array_equal(lr, degrade(once.astype(np.uint8), again, 1, np.random.default_rng(0)))
    assert lr.shape == once.shape and not np.array_equal(lr, once)
    assert "then again: blur 0.8 (7x7), noise 0, jpeg 50" in twice.label()


def test_finish_lr_returns_the_input_when_nothing_is_asked(rng):
    lr = synthetic_photo(rng, 16, 16)
    assert finish_lr(lr, DegradationParams(15, 1.0, 1.0, 0.0, 5.0), rng) is lr


def test_camera_and_web_presets_draw_their_damage(rng):
    camera = [sample_degradation(DegradationConfig.preset("camera"), rng) for _ in range(200)]
    assert all(d.camera and d.noise_std == 0 and 70 <= (d.jpeg_quality or 0) <= 95 for d in camera)
    assert all(0.4 <= d.sigma_x <= 1.6 and d.jpeg_first is None and d.resize == 1.0 for d in camera)
    web = [sample_degradation(DegradationConfig.preset("web"), rng) for _ in range(400)]
    assert all(not d.camera and 30 <= (d.jpeg_quality or 0) <= 95 for d in web)
    assert 0.2 < np.mean([d.jpeg_first is not None for d in web]) < 0.4
    assert 0.4 < np.mean([d.resize != 1.0 for d in web]) < 0.6
    assert 0.08 < np.mean([d.jpeg_sampling == "444" for d in web]) < 0.22
    assert all(0.6 <= d.resize <= 1.4 for d in web)
    assert {d.resize_interp for d in web if d.resize != 1.0} == {"area", "linear", "cubic"}


def test_phones_mix_shares(rng):
    """About a third nearly clean, a quarter camera noise, JPEG on half of the tasks."""
    draws = [sample_degradation(DegradationConfig.preset("phones"), rng) for _ in range(2000)]
    mild = np.array([d.noise_std == 0 and not d.camera and d.isotropic and d.sigma_x != round(d.sigma_x, 1)
                     for d in draws])
    camera = np.mean([d.camera for d in draws])
    gaussian = np.mean([d.noise_std > 0 for d in draws])
    jpeg_share = np.mean([d.jpeg_quality is not None for d in draws])
    assert 0.27 < mild.mean() < 0.38
    assert 0.22 < camera < 0.32 and 0.25 < gaussian < 0.37
    assert 0.45 < jpeg_share < 0.55
    assert any(d.jpeg_first is not None for d in draws) and any(d.resize != 1.0 for d in draws)


def test_second_prob_draws_a_second_round(rng):
    cfg = dataclasses.replace(DegradationConfig.preset("web"), second_prob=0.5)
    draws = [sample_degradation(cfg, rng) for _ in range(200)]
    seconds = [d.second for d in draws if d.second is not None]
    assert 0.35 < len(seconds) / len(draws) < 0.65
    assert all(s.kernel_size == 7 and 0.2 <= s.sigma_x <= 1.2 and s.second is None for s in seconds)


# ----------------------------------------------------------------------------- training batches


def test_cpu_task_batches_carry_camera_noise(rng):
    from engine.training.batches import make_task

    photo = synthetic_photo(rng, 160, 160)

    class OnePhoto:  # the two things make_task asks of a photo source
        num_images = 1

        def patches(self, image: int, size: int, count: int, r: np.random.Generator) -> list[np.ndarray]:
            return [photo[:size, :size].copy() for _ in range(count)]

    source = OnePhoto()
    cfg = DegradationConfig.preset("camera")
    params = dataclasses.replace(sample_degradation(cfg, rng), camera_shot=1e-2, camera_read=2e-4)
    task = make_task(source, cfg, 4, 16, 4, rng, image=0, params=params)
    assert task.lr.shape == (4, 16, 16, 3) and task.lr.dtype == np.uint8
    clean = make_task(source, cfg, 4, 16, 4, np.random.default_rng(1), image=0,
                      params=dataclasses.replace(params, camera_shot=0.0, camera_read=0.0))
    assert float(_chroma(task.lr[0]).std()) > float(_chroma(clean.lr[0]).std())


def test_device_batches_make_the_real_photo_damage_on_the_host():
    import torch

    from engine.training.device_data import DevicePhotos, DeviceTaskSampler

    photos = [synthetic_photo(np.random.default_rng(i), 120, 150) for i in range(3)]
    sampler = DeviceTaskSampler(DevicePhotos(photos, "cpu", min_size=48), DegradationConfig.preset("phones"),
                                scale=4, lr_patch=12, support_size=3, tasks_per_batch=8, seed=5)
    step = next(s for s in range(50) if any(p.real_photo for p in sampler.task_plan(s)[1]))
    batch = sampler.batch(step)
    again = sampler.batch(step)
    assert batch["lr"].shape == (8, 6, 3, 12, 12) and batch["lr"].dtype == torch.uint8
    assert torch.equal(batch["lr"], again["lr"])
    _, params = sampler.task_plan(step)
    t = next(i for i, p in enumerate(params) if p.real_photo)
    plain = sampler.degrade(batch["hr"][t:t + 1], [dataclasses.replace(
        params[t], camera_shot=0.0, camera_read=0.0, jpeg_quality=None, jpeg_first=None, resize=1.0,
        jpeg_sampling="420")], step=step)
    assert not torch.equal(plain[0], batch["lr"][t])
