"""Degradations: determinism under a seed, the stated statistics, exact sizes, presets."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    add_noise,
    anisotropic_gaussian_kernel,
    bicubic_downsample,
    blur,
    blur_params,
    crop_to_multiple,
    degradation_grid,
    degrade,
    gaussian_kernel,
    isotropic_gaussian_kernel,
    jpeg,
    quantize,
    sample_degradation,
)
from engine.errors import ConfigError


def _image(rng: np.random.Generator, h: int = 64, w: int = 80) -> np.ndarray:
    from engine.data import synthetic_photo

    return synthetic_photo(rng, h, w)


@pytest.mark.parametrize("size,sigma", [(15, 0.2), (15, 2.6), (7, 2.6), (21, 4.0)])
def test_isotropic_kernel_sums_to_one_and_matches_opencv(rng, size, sigma):
    k = isotropic_gaussian_kernel(size, sigma)
    assert k.shape == (size, size) and k.dtype == np.float32
    assert abs(float(k.sum()) - 1.0) < 1e-5
    img = _image(rng).astype(np.float32)
    ours = blur(img, k)
    ref = cv2.GaussianBlur(img, (size, size), sigma)
    assert np.abs(ours - ref).max() < 1e-2


def test_separable_blur_equals_the_2d_kernel(rng):
    img = _image(rng).astype(np.float32)
    params = DegradationParams(15, 2.2, 2.2, 0.0, 0.0)
    fast = blur_params(img, params)
    assert np.abs(fast - blur(img, isotropic_gaussian_kernel(15, 2.2))).max() < 1e-3
    aniso = DegradationParams(15, 2.2, 0.8, 0.5, 0.0)
    assert np.allclose(blur_params(img, aniso), blur(img, gaussian_kernel(aniso)))


def test_anisotropic_kernel_orientation_and_sum():
    k = anisotropic_gaussian_kernel(21, 4.0, 1.0, 0.0)
    assert abs(float(k.sum()) - 1.0) < 1e-5
    ys, xs = np.mgrid[-10:11, -10:11]
    var_x = float((k * xs**2).sum())
    var_y = float((k * ys**2).sum())
    assert var_x > 8 * var_y  # long axis along x at angle 0
    k90 = anisotropic_gaussian_kernel(21, 4.0, 1.0, np.pi / 2)
    assert np.allclose(k90, k.T, atol=1e-6)  # rotated by 90 degrees
    # equal sigmas: the anisotropic formula gives the isotropic kernel
    assert np.allclose(anisotropic_gaussian_kernel(15, 2.0, 2.0, 0.7), isotropic_gaussian_kernel(15, 2.0), atol=1e-5)


@pytest.mark.parametrize("h,w,scale", [(67, 90, 4), (50, 50, 3), (33, 17, 2)])
def test_output_size_exact_for_non_divisible_inputs(rng, h, w, scale):
    hr = _image(rng, h, w)
    params = DegradationParams(7, 1.0, 1.0, 0.0, 5.0)
    lr = degrade(hr, params, scale, rng)
    assert lr.shape == (h // scale, w // scale, 3)
    assert lr.dtype == np.float32
    assert crop_to_multiple(hr, scale).shape[:2] == (lr.shape[0] * scale, lr.shape[1] * scale)
    assert bicubic_downsample(hr, scale).shape == lr.shape


def test_degrade_is_deterministic_under_a_seed_and_quantised(rng):
    hr = _image(rng)
    cfg = DegradationConfig.preset("real")
    p1 = sample_degradation(cfg, np.random.default_rng(7))
    p2 = sample_degradation(cfg, np.random.default_rng(7))
    assert p1 == p2
    a = degrade(hr, p1, 4, np.random.default_rng(3))
    b = degrade(hr, p1, 4, np.random.default_rng(3))
    c = degrade(hr, p1, 4, np.random.default_rng(4))
    assert np.array_equal(a, b)
    if p1.noise_std > 0:
        assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 255
    assert np.array_equal(a, np.rint(a))  # uint8 grid, like the reference's saved LR


def test_noise_has_the_stated_std_per_channel_and_gray(rng):
    flat = np.full((256, 256, 3), 128.0, np.float32)
    noisy = add_noise(flat, 20.0, rng)
    assert abs(float((noisy - flat).std()) - 20.0) < 0.5
    assert abs(float((noisy - flat).mean())) < 0.3
    # independent per channel
    d = noisy - flat
    assert abs(np.corrcoef(d[..., 0].ravel(), d[..., 1].ravel())[0, 1]) < 0.05
    gray = add_noise(flat, 20.0, rng, gray=True) - flat
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert abs(float(gray.std()) - 20.0) < 0.5
    assert np.array_equal(add_noise(flat, 0.0, rng), flat)


def test_degraded_noise_std_measured_after_quantisation(rng):
    hr = np.full((256, 256, 3), 120, np.uint8)
    lr = degrade(hr, DegradationParams(15, 2.0, 2.0, 0.0, 15.0), 4, rng)
    assert abs(float(lr.std()) - 15.0) < 0.6
    assert abs(float(lr.mean()) - 120.0) < 0.6


def test_blur_reduces_detail_monotonically(rng):
    hr = _image(rng, 96, 96).astype(np.float32)
    energies = []
    for sigma in (0.2, 1.0, 2.6, 4.0):
        out = blur(hr, isotropic_gaussian_kernel(15, sigma))
        energies.append(float(np.abs(np.diff(out, axis=1)).mean()))
    assert energies == sorted(energies, reverse=True)


def test_jpeg_quality_controls_error(rng):
    img = _image(rng, 64, 64)
    e_lo = np.abs(jpeg(img, 10).astype(float) - img).mean()
    e_hi = np.abs(jpeg(img, 95).astype(float) - img).mean()
    assert jpeg(img, 50).dtype == np.uint8 and jpeg(img, 50).shape == img.shape
    assert e_lo > e_hi > 0


def test_quantize_clips_and_rounds():
    out = quantize(np.array([[[-3.0, 12.4, 12.6]], [[254.6, 300.0, 0.5]]], np.float32))
    assert out.dtype == np.uint8
    assert out.tolist() == [[[0, 12, 13]], [[255, 255, 0]]]


def test_paper_preset_distribution(rng):
    cfg = DegradationConfig.preset("paper")
    draws = [sample_degradation(cfg, rng) for _ in range(2000)]
    sigmas = np.array([d.sigma_x for d in draws])
    noises = np.array([d.noise_std for d in draws])
    # sigma = 0.2 + k/10, k uniform in 0..38
    ks = np.rint((sigmas - 0.2) * 10)
    assert np.allclose(sigmas, 0.2 + ks / 10)
    assert ks.min() == 0 and ks.max() == 38 and len(np.unique(ks)) == 39
    assert np.array_equal(noises, np.rint(noises)) and noises.min() == 0 and noises.max() == 75
    assert abs(noises.mean() - 37.5) < 2.0
    assert all(d.kernel_size == 15 and d.isotropic and d.jpeg_quality is None for d in draws)


def test_presets_and_round_trip(rng):
    test = sample_degradation(DegradationConfig.preset("paper-test"), rng)
    assert (test.kernel_size, test.sigma_x, test.noise_std) == (7, 2.6, 15.0)
    real = DegradationConfig.preset("real")
    draws = [sample_degradation(real, rng) for _ in range(300)]
    assert any(not d.isotropic for d in draws)
    assert any(d.jpeg_quality is not None for d in draws)
    assert any(d.gray_noise for d in draws)
    for name in DegradationConfig.PRESETS:
        assert DegradationConfig.preset(name).preset_name() == name
    assert dataclasses.replace(real, noise_std=(1.0, 2.0)).preset_name() == "custom"
    p = draws[0]
    assert DegradationParams.from_dict(json.loads(json.dumps(dataclasses.asdict(p)))) == p
    with pytest.raises(ConfigError, match="unknown degradation preset"):
        DegradationConfig.preset("nope")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kernel_size": 8}, "odd"),
        ({"blur_sigma": (2.0, 1.0)}, "min <= max"),
        ({"noise_std": (0.0, 300.0)}, "noise_std"),
        ({"jpeg_prob": 1.5}, "probability"),
        ({"jpeg_quality": (0, 50)}, "jpeg_quality"),
    ],
)
def test_invalid_config_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DegradationConfig(**kwargs)


def test_custom_continuous_ranges(rng):
    cfg = DegradationConfig(blur_sigma=(1.0, 2.0), sigma_step=0.0, noise_std=(5.0, 10.0), noise_integer=False)
    draws = [sample_degradation(cfg, rng) for _ in range(200)]
    assert all(1.0 <= d.sigma_x <= 2.0 and 5.0 <= d.noise_std <= 10.0 for d in draws)
    assert len({d.sigma_x for d in draws}) > 150


def test_grid_and_labels():
    grid = degradation_grid()
    assert len(grid) == 12
    assert {(g.sigma_x, g.noise_std) for g in grid} == {
        (s, n) for s in (0.6, 1.4, 2.6, 3.6) for n in (0.0, 15.0, 30.0)
    }
    assert grid[0].label() == "blur 0.6 (15x15), noise 0"
    assert gaussian_kernel(grid[0]).shape == (15, 15)


# The presets as they were before the real-photo damage came: saved configs, shipped recipes
# and their data must stay exactly these.
_OLD_PRESETS = {
    "paper": dict(kernel_size=15, blur_sigma=(0.2, 4.0), sigma_step=0.1, aniso_prob=0.0,
                  noise_std=(0.0, 75.0), noise_integer=True, gray_noise_prob=0.0, jpeg_prob=0.0,
                  jpeg_quality=(30, 80), clean_prob=0.0, mild_prob=0.0, mild_blur=(0.5, 1.6)),
    "paper-test": dict(kernel_size=7, blur_sigma=(2.6, 2.6), sigma_step=0.1, aniso_prob=0.0,
                       noise_std=(15.0, 15.0), noise_integer=True, gray_noise_prob=0.0, jpeg_prob=0.0,
                       jpeg_quality=(30, 80), clean_prob=0.0, mild_prob=0.0, mild_blur=(0.5, 1.6)),
    "mild": dict(kernel_size=15, blur_sigma=(0.2, 2.0), sigma_step=0.1, aniso_prob=0.0,
                 noise_std=(0.0, 15.0), noise_integer=True, gray_noise_prob=0.0, jpeg_prob=0.0,
                 jpeg_quality=(30, 80), clean_prob=0.0, mild_prob=0.0, mild_blur=(0.5, 1.6)),
    "real": dict(kernel_size=21, blur_sigma=(0.2, 3.0), sigma_step=0.1, aniso_prob=0.5,
                 noise_std=(0.0, 30.0), noise_integer=True, gray_noise_prob=0.4, jpeg_prob=0.7,
                 jpeg_quality=(30, 95), clean_prob=0.0, mild_prob=0.0, mild_blur=(0.5, 1.6)),
    "studio": dict(kernel_size=15, blur_sigma=(0.2, 4.0), sigma_step=0.1, aniso_prob=0.2,
                   noise_std=(0.0, 50.0), noise_integer=True, gray_noise_prob=0.2, jpeg_prob=0.2,
                   jpeg_quality=(40, 95), clean_prob=0.25, mild_prob=0.0, mild_blur=(0.5, 1.6)),
    "users": dict(kernel_size=15, blur_sigma=(0.2, 4.0), sigma_step=0.1, aniso_prob=0.2,
                  noise_std=(0.0, 50.0), noise_integer=True, gray_noise_prob=0.2, jpeg_prob=0.3,
                  jpeg_quality=(40, 95), clean_prob=0.25, mild_prob=0.4, mild_blur=(0.5, 1.6)),
}
_REAL_PHOTO_OFF = dict(camera_prob=0.0, jpeg_444_prob=0.0, jpeg_double_prob=0.0, resize_prob=0.0,
                       second_prob=0.0)


@pytest.mark.parametrize("name", sorted(_OLD_PRESETS))
def test_old_presets_are_unchanged(name):
    cfg = DegradationConfig.preset(name)
    fields = dataclasses.asdict(cfg)
    assert {k: fields[k] for k in _OLD_PRESETS[name]} == _OLD_PRESETS[name]
    assert {k: fields[k] for k in _REAL_PHOTO_OFF} == _REAL_PHOTO_OFF
    assert cfg == DegradationConfig(**_OLD_PRESETS[name])  # an old saved config loads equal


def test_old_random_streams_and_params_are_unchanged():
    """The users preset draws what it drew before (seed 3), with the real-photo fields off."""
    rng = np.random.default_rng(3)
    draws = [sample_degradation(DegradationConfig.preset("users"), rng) for _ in range(4)]
    assert draws == [
        DegradationParams(15, 0.76, 0.76, 0.0, 0.0, False, None),
        DegradationParams(15, 0.3, 0.3, 0.0, 4.0, True, None),
        DegradationParams(15, 0.93, 0.93, 0.0, 0.0, False, None),
        DegradationParams(15, 2.7, 2.7, 0.0, 29.0, False, None),
    ]
    assert not any(d.real_photo or d.camera for d in draws)
    old = {"kernel_size": 15, "sigma_x": 1.0, "sigma_y": 1.0, "angle": 0.0, "noise_std": 5.0,
           "gray_noise": False, "jpeg_quality": 60}
    p = DegradationParams.from_dict(old)
    assert p == DegradationParams(15, 1.0, 1.0, 0.0, 5.0, False, 60)
    assert p.label() == "blur 1 (15x15), noise 5, jpeg 60"
    assert (p.jpeg_sampling, p.resize, p.second, p.camera_shot) == ("420", 1.0, None, 0.0)


def test_real_photo_params_round_trip_and_labels():
    inner = DegradationParams(7, 0.5, 0.5, 0.0, 3.0)
    p = DegradationParams(15, 1.0, 1.0, 0.0, 0.0, False, 70, camera_shot=4e-3, camera_read=2e-5,
                          camera_red_gain=2.1, camera_blue_gain=1.7, camera_chroma_blur=1.5,
                          jpeg_sampling="444", jpeg_first=90, resize=0.75, resize_interp="area",
                          second=inner)
    assert DegradationParams.from_dict(json.loads(json.dumps(dataclasses.asdict(p)))) == p
    assert p.label() == ("blur 1 (15x15), noise 0, camera noise shot 0.004 read 2e-05 (~8 at grey), "
                         "jpeg 90, resized x0.75 (area, back cubic), jpeg 70 4:4:4; "
                         "then again: blur 0.5 (7x7), noise 3")
    assert 7.0 < p.noise_level() < 10.0 and inner.noise_level() == 3.0
    for bad, match in [({"jpeg_sampling": "411"}, "jpeg_sampling"), ({"resize": 0.1}, "resize"),
                       ({"resize_interp": "nearest"}, "resize_interp"), ({"camera_shot": -1.0}, "camera")]:
        with pytest.raises(ConfigError, match=match):
            dataclasses.replace(p, **bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"camera_prob": 1.2}, "camera_prob"),
        ({"camera_shot": (0.0, 0.01)}, "camera_shot"),
        ({"resize_range": (0.1, 1.0)}, "resize_range"),
        ({"second_blur": (0.0, 1.0)}, "second_blur"),
        ({"jpeg_double_prob": -0.1}, "jpeg_double_prob"),
    ],
)
def test_invalid_real_photo_config_is_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DegradationConfig(**kwargs)


def test_new_presets_are_listed_and_named():
    assert DegradationConfig.PRESETS[-3:] == ("camera", "web", "phones")
    for name in ("camera", "web", "phones"):
        assert DegradationConfig.preset(name).preset_name() == name
    phones = DegradationConfig.preset("phones")
    users = DegradationConfig.preset("users")
    # phones = users' blur and noise, with the real-photo damage added
    for field in ("kernel_size", "blur_sigma", "aniso_prob", "noise_std", "clean_prob", "gray_noise_prob"):
        assert getattr(phones, field) == getattr(users, field)
    assert (phones.mild_prob, phones.camera_prob, phones.jpeg_prob) == (0.33, 0.4, 0.5)


def test_user_rows_keep_the_old_five_first_and_add_camera_and_web(rng):
    from engine.degrade import user_rows

    rows = user_rows()
    assert [label for label, _ in rows] == [
        "paper-test (blur 2.6, noise 15)", "blur 2.6", "nearly clean (blur 1.0)", "blur 1.0 + JPEG 60",
        "noise 25 (blur 1.0)", "camera (mosaic, shot+read noise, demosaic, JPEG 80)",
        "web (JPEG 60 4:2:0, resized)"]
    assert [p for _, p in rows[:5]] == [
        DegradationParams(7, 2.6, 2.6, 0.0, 15.0), DegradationParams(15, 2.6, 2.6, 0.0, 0.0),
        DegradationParams(15, 1.0, 1.0, 0.0, 0.0), DegradationParams(15, 1.0, 1.0, 0.0, 0.0, False, 60),
        DegradationParams(15, 1.0, 1.0, 0.0, 25.0)]
    camera, web = rows[5][1], rows[6][1]
    assert camera.camera and camera.jpeg_quality == 80 and camera.jpeg_sampling == "420"
    assert web.resize != 1.0 and web.jpeg_quality == 60 and web.jpeg_sampling == "420" and not web.camera
    assert user_rows() == rows  # the same parameters at every call
    hr = _image(rng, 96, 128)
    for _, params in rows[5:]:
        a = degrade(hr, params, 4, np.random.default_rng([0, 5, 1]))
        b = degrade(hr, params, 4, np.random.default_rng([0, 5, 1]))
        assert np.array_equal(a, b) and a.shape == (24, 32, 3)
    other = degrade(hr, camera, 4, np.random.default_rng([1, 5, 1]))
    assert not np.array_equal(other, degrade(hr, camera, 4, np.random.default_rng([0, 5, 1])))
