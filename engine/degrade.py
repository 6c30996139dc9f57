"""Synthetic degradations: blur, exact-scale bicubic downsampling, noise and JPEG, and the
damage real photos carry (a camera's own noise, double JPEG, resizes: ``engine.degrade_real``).

These make the (LR, HR) training pairs and the fixed test sets. Every function is pure and
takes an explicit ``numpy.random.Generator``, so a seed reproduces a data set exactly.
Images are HxWx3 RGB arrays in 0..255 (float32 or uint8); degraded images are float32 holding
uint8-quantised values, as the reference code saves its LR images as 8-bit files.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from engine.degrade_real import (
    INTERPOLATIONS,
    JPEG_SAMPLINGS,
    SHOT_RANGE,
    camera_noise,
    draw_camera_noise,
    draw_read_noise,
    jpeg_sampled,
    resized_jpeg,
    srgb_noise_std,
)
from engine.errors import ConfigError

Range = tuple[float, float]


def _check_range(name: str, r: tuple[float, float], lo: float, hi: float | None = None) -> None:
    if len(r) != 2 or r[0] > r[1]:
        raise ConfigError(f"{name} must be a [min, max] pair with min <= max, got {list(r)}")
    if r[0] < lo or (hi is not None and r[1] > hi):
        bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{name} must lie in {bound}, got {list(r)}")


@dataclass(frozen=True)
class DegradationConfig:
    """The distribution a task's degradation is drawn from.

    Blur sigmas are in HR pixels; noise std is on the 0..255 scale. With ``sigma_step`` > 0
    sigmas are drawn from the grid min, min+step, ..., max (the paper: 0.2 + k/10, k in 0..38);
    with ``noise_integer`` the std is an integer drawn uniformly (the paper: 0..75).
    ``clean_prob`` is the share of tasks drawn with no noise at all: with the paper's uniform
    0..75 only 1 task in 76 is noise-free, so a model trained on it smooths clean photos.
    ``mild_prob`` is the share of tasks drawn *nearly clean*, as most users' photos are: an
    isotropic blur sigma from ``mild_blur``, no noise, JPEG as for any task.

    The damage of real photos (all off by default, so older configs draw exactly as before):
    ``camera_prob`` is the share of the other (not nearly clean) tasks whose noise is a
    camera's instead of Gaussian: shot noise log-uniform in ``camera_shot`` (variance per unit
    of linear light; 1e-4 nearly clean .. 1.2e-2 a phone at high ISO), read noise from it
    (Brooks et al.), white-balance gains 1.9-2.4 / 1.5-1.9, chroma noise reduction 0-2 px. Of those tasks' JPEG saves,
    ``jpeg_444_prob`` keep full chroma (the rest 4:2:0, as phones and sites save),
    ``jpeg_double_prob`` were saved once before (quality from ``jpeg_quality`` too) and
    ``resize_prob`` were resized by a factor in ``resize_range`` around the last save (a
    random interpolation, then back to the LR size). ``second_prob`` applies the whole damage
    a second time to the LR (Real-ESRGAN's high-order idea), its blur sigma from
    ``second_blur`` in LR pixels.
    """

    kernel_size: int = 15
    blur_sigma: tuple[float, float] = (0.2, 4.0)
    sigma_step: float = 0.1
    aniso_prob: float = 0.0
    noise_std: tuple[float, float] = (0.0, 75.0)
    noise_integer: bool = True
    gray_noise_prob: float = 0.0
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 80)
    clean_prob: float = 0.0
    mild_prob: float = 0.0
    mild_blur: tuple[float, float] = (0.5, 1.6)
    camera_prob: float = 0.0
    camera_shot: tuple[float, float] = SHOT_RANGE
    jpeg_444_prob: float = 0.0
    jpeg_double_prob: float = 0.0
    resize_prob: float = 0.0
    resize_range: tuple[float, float] = (0.5, 1.5)
    second_prob: float = 0.0
    second_blur: tuple[float, float] = (0.2, 1.2)

    PRESETS: ClassVar[tuple[str, ...]] = (
        "paper", "paper-test", "mild", "real", "studio", "users", "camera", "web", "phones")

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be a positive odd number, got {self.kernel_size}")
        _check_range("blur_sigma", self.blur_sigma, 0.0)
        if self.blur_sigma[0] <= 0:
            raise ConfigError(f"blur_sigma must be positive, got {list(self.blur_sigma)}")
        if self.sigma_step < 0:
            raise ConfigError(f"sigma_step must be >= 0, got {self.sigma_step}")
        _check_range("noise_std", self.noise_std, 0.0, 255.0)
        _check_range("jpeg_quality", (float(self.jpeg_quality[0]), float(self.jpeg_quality[1])), 1, 100)
        _check_range("mild_blur", self.mild_blur, 0.0)
        if self.mild_blur[0] <= 0:
            raise ConfigError(f"mild_blur must be positive, got {list(self.mild_blur)}")
        _check_range("camera_shot", self.camera_shot, 1e-6, 0.1)
        _check_range("resize_range", self.resize_range, 0.25, 4.0)
        _check_range("second_blur", self.second_blur, 0.0)
        if self.second_blur[0] <= 0:
            raise ConfigError(f"second_blur must be positive, got {list(self.second_blur)}")
        for name in ("aniso_prob", "gray_noise_prob", "jpeg_prob", "clean_prob", "mild_prob",
                     "camera_prob", "jpeg_444_prob", "jpeg_double_prob", "resize_prob", "second_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be a probability in 0..1, got {p}")

    @classmethod
    def preset(cls, name: str) -> DegradationConfig:
        """``paper`` (the reference training distribution), ``paper-test`` (x4 test setting:
        7x7, sigma 2.6, noise 15), ``mild`` (light blur and noise), ``real`` (adds
        anisotropic blur, gray noise and JPEG) or ``studio`` (the shipped models' training
        distribution: the paper's blur range, noise up to 50 with a quarter of the tasks
        noise-free, some anisotropic blur, sensor-like gray noise and JPEG, as users' photos
        have them; see docs/training.md) or ``users`` (``studio`` with 40% of the tasks nearly
        clean, blur 0.5-1.6 and no noise, and more JPEG: the photos most users bring), or the
        damage of real photos: ``camera`` (mild blur 0.4-1.6, a camera's mosaic noise from
        nearly clean to high ISO on every task, JPEG 70-95), ``web`` (mild blur, JPEG 30-95
        on every task, 4:2:0 but 15% 4:4:4, 30% saved twice, half resized x0.6-1.4 around the
        save) or ``phones`` (a training mix: ``users``' blur and noise with 33% of the tasks
        nearly clean; of the other 67%, 40% carry camera noise instead of Gaussian, so 27%
        camera, 40% Gaussian (a quarter of it none); JPEG 30-95 on half of all tasks, of the
        not-nearly-clean ones 30% saved twice and 40% resized x0.6-1.4; see
        docs/training.md)."""
        presets = {
            "paper": cls(),
            "paper-test": cls(kernel_size=7, blur_sigma=(2.6, 2.6), noise_std=(15.0, 15.0)),
            "mild": cls(blur_sigma=(0.2, 2.0), noise_std=(0.0, 15.0)),
            "real": cls(
                kernel_size=21,
                blur_sigma=(0.2, 3.0),
                aniso_prob=0.5,
                noise_std=(0.0, 30.0),
                gray_noise_prob=0.4,
                jpeg_prob=0.7,
                jpeg_quality=(30, 95),
            ),
            "studio": cls(
                blur_sigma=(0.2, 4.0),
                aniso_prob=0.2,
                noise_std=(0.0, 50.0),
                clean_prob=0.25,
                gray_noise_prob=0.2,
                jpeg_prob=0.2,
                jpeg_quality=(40, 95),
            ),
            "users": cls(
                blur_sigma=(0.2, 4.0),
                aniso_prob=0.2,
                noise_std=(0.0, 50.0),
                clean_prob=0.25,
                gray_noise_prob=0.2,
                jpeg_prob=0.3,
                jpeg_quality=(40, 95),
                mild_prob=0.4,
            ),
            "camera": cls(
                blur_sigma=(0.4, 1.6),
                noise_std=(0.0, 0.0),
                camera_prob=1.0,
                jpeg_prob=1.0,
                jpeg_quality=(70, 95),
            ),
            "web": cls(
                blur_sigma=(0.4, 1.6),
                noise_std=(0.0, 0.0),
                jpeg_prob=1.0,
                jpeg_quality=(30, 95),
                jpeg_444_prob=0.15,
                jpeg_double_prob=0.3,
                resize_prob=0.5,
                resize_range=(0.6, 1.4),
            ),
            "phones": cls(
                blur_sigma=(0.2, 4.0),
                aniso_prob=0.2,
                noise_std=(0.0, 50.0),
                clean_prob=0.25,
                gray_noise_prob=0.2,
                jpeg_prob=0.5,
                jpeg_quality=(30, 95),
                mild_prob=0.33,
                camera_prob=0.4,
                jpeg_444_prob=0.15,
                jpeg_double_prob=0.3,
                resize_prob=0.4,
                resize_range=(0.6, 1.4),
            ),
        }
        if name not in presets:
            raise ConfigError(
                f"unknown degradation preset {name!r}; choose one of {', '.join(cls.PRESETS)}"
            )
        return presets[name]

    def preset_name(self) -> str:
        """The preset this config equals, or ``"custom"``."""
        for name in self.PRESETS:
            if self == DegradationConfig.preset(name):
                return name
        return "custom"


@dataclass(frozen=True)
class DegradationParams:
    """One drawn degradation: the same for every patch of a task.

    ``sigma_y``/``angle`` describe an anisotropic kernel (equal sigmas = isotropic);
    ``jpeg_quality`` is None when no JPEG step is applied.

    The damage of real photos, off at the defaults (see ``engine.degrade_real``):
    ``camera_shot`` (0..~0.02) and ``camera_read`` (0..~1e-3) are a camera's shot- and
    read-noise variances on linear light 0..1 (both 0: no camera noise), made on an RGGB
    mosaic after undoing the white-balance gains ``camera_red_gain``/``camera_blue_gain``
    (1..~2.5), its colour noise smoothed into blotches by ``camera_chroma_blur`` (0..3
    pixels, the camera's chroma noise reduction); ``jpeg_sampling`` is the chroma subsampling of the JPEG saves ("420", "422",
    "444"); ``jpeg_first`` the quality of an earlier save (double JPEG); ``resize`` a factor
    (0.25..4, 1 = none) the LR is resized by with ``resize_interp`` ("area", "linear",
    "cubic") before the last save and brought back with ``resize_back_interp``; ``second``
    the damage applied once more to the LR (its blur in LR pixels, no downscale).
    """

    kernel_size: int
    sigma_x: float
    sigma_y: float
    angle: float
    noise_std: float
    gray_noise: bool = False
    jpeg_quality: int | None = None
    camera_shot: float = 0.0
    camera_read: float = 0.0
    camera_red_gain: float = 1.0
    camera_blue_gain: float = 1.0
    camera_chroma_blur: float = 0.0
    jpeg_sampling: str = "420"
    jpeg_first: int | None = None
    resize: float = 1.0
    resize_interp: str = "cubic"
    resize_back_interp: str = "cubic"
    second: DegradationParams | None = None

    def __post_init__(self) -> None:
        if self.jpeg_sampling not in JPEG_SAMPLINGS:
            raise ConfigError(f"jpeg_sampling must be one of {', '.join(JPEG_SAMPLINGS)}, "
                              f"got {self.jpeg_sampling!r}")
        for name in ("resize_interp", "resize_back_interp"):
            if getattr(self, name) not in INTERPOLATIONS:
                raise ConfigError(f"{name} must be one of {', '.join(INTERPOLATIONS)}, "
                                  f"got {getattr(self, name)!r}")
        if not 0.25 <= self.resize <= 4.0:
            raise ConfigError(f"resize must lie in 0.25..4, got {self.resize}")
        if self.camera_shot < 0 or self.camera_read < 0:
            raise ConfigError("camera_shot and camera_read must be >= 0")

    @property
    def isotropic(self) -> bool:
        return self.sigma_x == self.sigma_y

    @property
    def camera(self) -> bool:
        """Whether a camera's mosaic noise is made."""
        return self.camera_shot > 0 or self.camera_read > 0

    @property
    def real_photo(self) -> bool:
        """Whether any step beyond blur, Gaussian noise and one 4:2:0 JPEG save is asked."""
        return (self.camera or self.jpeg_sampling != "420" or self.jpeg_first is not None
                or self.resize != 1.0 or self.second is not None)

    def noise_level(self) -> float:
        """The Gaussian std (0..255) this damage's noise is near on a mid grey: ``noise_std``
        with a camera's noise added in quadrature (see ``degrade_real.srgb_noise_std``)."""
        cam = srgb_noise_std(self.camera_shot, self.camera_read) if self.camera else 0.0
        return math.hypot(self.noise_std, cam)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationParams:
        """From ``dataclasses.asdict`` (or JSON of it; older dicts without the real-photo
        fields keep their defaults, unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if isinstance(kw.get("second"), dict):
            kw["second"] = cls.from_dict(kw["second"])
        return cls(**kw)

    def label(self) -> str:
        """Short human-readable description, e.g. ``blur 2.6 (7x7), noise 15``."""
        if self.isotropic:
            blur = f"blur {self.sigma_x:g} ({self.kernel_size}x{self.kernel_size})"
        else:
            blur = (f"blur {self.sigma_x:g}/{self.sigma_y:g}@{math.degrees(self.angle):.0f}deg "
                    f"({self.kernel_size}x{self.kernel_size})")
        parts = [blur, f"{'gray ' if self.gray_noise else ''}noise {self.noise_std:g}"]
        if self.camera:
            parts.append(f"camera noise shot {self.camera_shot:.2g} read {self.camera_read:.2g} "
                         f"(~{srgb_noise_std(self.camera_shot, self.camera_read):.0f} at grey)")
        if self.jpeg_first is not None:
            parts.append(f"jpeg {self.jpeg_first}")
        if self.resize != 1.0:
            parts.append(f"resized x{self.resize:.2g} ({self.resize_interp}, back {self.resize_back_interp})")
        if self.jpeg_quality is not None:
            sampling = "" if self.jpeg_sampling == "420" else f" {self.jpeg_sampling[0]}:{self.jpeg_sampling[1]}:{self.jpeg_sampling[2]}"
            parts.append(f"jpeg {self.jpeg_quality}{sampling}")
        text = ", ".join(parts)
        if self.second is not None:
            text += f"; then again: {self.second.label()}"
        return text


def _draw_sigma(cfg: DegradationConfig, rng: np.random.Generator) -> float:
    lo, hi = cfg.blur_sigma
    if cfg.sigma_step > 0 and hi > lo:
        k = int(rng.integers(0, int(round((hi - lo) / cfg.sigma_step)) + 1))
        return round(lo + k * cfg.sigma_step, 6)
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def _draw_quality(cfg: DegradationConfig, rng: np.random.Generator) -> int:
    return int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))


def _draw_real_photo(cfg: DegradationConfig, rng: np.random.Generator, base: DegradationParams,
                     mild: bool) -> DegradationParams:
    """``base`` with the real-photo damage ``cfg`` asks for. Each draw happens only when its
    share is > 0, so configs without them keep their random streams (and data) unchanged.
    Nearly clean tasks get no camera noise, no second save, no resize."""
    changes: dict[str, Any] = {}
    if not mild and cfg.camera_prob > 0 and rng.random() < cfg.camera_prob:
        shot, read, red, blue, chroma = draw_camera_noise(rng, cfg.camera_shot)
        changes.update(noise_std=0.0, gray_noise=False, camera_shot=float(f"{shot:.4g}"),
                       camera_read=float(f"{read:.4g}"), camera_red_gain=round(red, 3),
                       camera_blue_gain=round(blue, 3), camera_chroma_blur=round(chroma, 2))
    if base.jpeg_quality is not None:
        if cfg.jpeg_444_prob > 0 and rng.random() < cfg.jpeg_444_prob:
            changes["jpeg_sampling"] = "444"
        if not mild and cfg.jpeg_double_prob > 0 and rng.random() < cfg.jpeg_double_prob:
            changes["jpeg_first"] = _draw_quality(cfg, rng)
        if not mild and cfg.resize_prob > 0 and rng.random() < cfg.resize_prob:
            names = sorted(INTERPOLATIONS)
            changes.update(resize=round(float(rng.uniform(*cfg.resize_range)), 3),
                           resize_interp=names[int(rng.integers(0, len(names)))],
                           resize_back_interp=names[int(rng.integers(0, len(names)))])
    if not mild and cfg.second_prob > 0 and rng.random() < cfg.second_prob:
        once = dataclasses.replace(cfg, blur_sigma=cfg.second_blur, sigma_step=0.0, kernel_size=7,
                                   mild_prob=0.0, second_prob=0.0)
        changes["second"] = sample_degradation(once, rng)
    return dataclasses.replace(base, **changes) if changes else base


def sample_degradation(cfg: DegradationConfig, rng: np.random.Generator) -> DegradationParams:
    """Draw one degradation from ``cfg``'s distribution."""
    if cfg.mild_prob > 0 and rng.random() < cfg.mild_prob:
        sigma = round(float(rng.uniform(*cfg.mild_blur)), 3)
        quality = None
        if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
            quality = _draw_quality(cfg, rng)
        mild = DegradationParams(cfg.kernel_size, sigma, sigma, 0.0, 0.0, False, quality)
        return _draw_real_photo(cfg, rng, mild, mild=True)
    sigma_x = _draw_sigma(cfg, rng)
    sigma_y, angle = sigma_x, 0.0
    if cfg.aniso_prob > 0 and rng.random() < cfg.aniso_prob:
        sigma_y = _draw_sigma(cfg, rng)
        angle = float(rng.uniform(0.0, math.pi))
    lo, hi = cfg.noise_std
    if cfg.clean_prob > 0 and rng.random() < cfg.clean_prob:
        noise = 0.0
    elif cfg.noise_integer:
        noise = float(rng.integers(int(math.ceil(lo)), int(math.floor(hi)) + 1))
    else:
        noise = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    gray = bool(cfg.gray_noise_prob > 0 and rng.random() < cfg.gray_noise_prob)
    quality = None
    if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
        quality = _draw_quality(cfg, rng)
    base = DegradationParams(cfg.kernel_size, sigma_x, sigma_y, angle, noise, gray, quality)
    return _draw_real_photo(cfg, rng, base, mild=False)


# ----------------------------------------------------------------------------- kernels


def isotropic_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """``size x size`` float32 Gaussian kernel summing to 1 (identical to OpenCV's
    ``GaussianBlur`` kernel for the same size and sigma)."""
    k1 = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    k = k1 @ k1.T
    return (k / k.sum()).astype(np.float32)


def anisotropic_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """``size x size`` float32 Gaussian kernel with std ``sigma_x`` along the direction
    ``angle`` (radians from the x axis) and ``sigma_y`` across it; sums to 1."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    half = size // 2
    ax = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    c, s = math.cos(angle), math.sin(angle)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).astype(np.float32)


def gaussian_kernel(params: DegradationParams) -> np.ndarray:
    """The blur kernel of ``params`` (isotropic when both sigmas are equal)."""
    if params.isotropic:
        return isotropic_gaussian_kernel(params.kernel_size, params.sigma_x)
    return anisotropic_gaussian_kernel(params.kernel_size, params.sigma_x, params.sigma_y, params.angle)


# ----------------------------------------------------------------------------- steps


def _as_float(img: np.ndarray) -> np.ndarray:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    return img.astype(np.float32, copy=False)


def blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve HxWx3 (0..255) with ``kernel`` (reflect-101 border, like ``cv2.GaussianBlur``
    in the reference); returns float32 HxWx3, unquantised."""
    return cv2.filter2D(_as_float(img), cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)


def blur_separable(img: np.ndarray, kernel_1d: np.ndarray) -> np.ndarray:
    """``blur`` with the outer product of a 1-D kernel, done as two 1-D passes (several
    times faster for the 15x15 isotropic kernels of training); float32 HxWx3."""
    k = np.asarray(kernel_1d, np.float32).reshape(-1, 1)
    return cv2.sepFilter2D(_as_float(img), cv2.CV_32F, k, k, borderType=cv2.BORDER_REFLECT_101)


def _isotropic_1d(size: int, sigma: float) -> np.ndarray:
    k = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    return (k / k.sum()).astype(np.float32)


def blur_params(img: np.ndarray, params: DegradationParams, kernel: np.ndarray | None = None) -> np.ndarray:
    """Blur HxWx3 with ``params``' kernel (separable passes when isotropic); float32."""
    if params.isotropic and kernel is None:
        return blur_separable(img, _isotropic_1d(params.kernel_size, params.sigma_x))
    return blur(img, gaussian_kernel(params) if kernel is None else kernel)


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of ``scale`` (the HR that matches an
    exact-scale LR)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downsample(img: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic resize of HxWx3 to exactly (H//scale)x(W//scale) (the HR is cropped to a
    multiple of ``scale`` first); float32, unquantised, may over/undershoot 0..255."""
    img = crop_to_multiple(_as_float(img), scale)
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"image of {w}x{h} is smaller than the scale x{scale}")
    return cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)


def add_noise(img: np.ndarray, std: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``std`` (0..255 scale), independent per channel or,
    with ``gray``, the same value on the three channels; float32, unclipped."""
    img = _as_float(img)
    if std <= 0:
        return img.copy()
    if gray:
        noise = rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None] * np.float32(std)
    else:
        noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(std)
    return img + noise


def quantize(img: np.ndarray) -> np.ndarray:
    """Clip to 0..255 and round to the uint8 grid; returns uint8."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int, sampling: str = "420") -> np.ndarray:
    """JPEG-compress and decode an HxWx3 RGB image at ``quality`` (1..100) with chroma
    ``sampling`` ("420" = OpenCV's default, "422", "444"); returns uint8."""
    return jpeg_sampled(img, quality, sampling)


def finish_lr(lr: np.ndarray, params: DegradationParams, rng: np.random.Generator) -> np.ndarray:
    """The steps after noise and quantisation: a camera's noise, JPEG save(s) with the
    resizes around them, then the ``second`` round. ``lr``: uint8 HxWx3; returns uint8 of
    the same size (the same array when ``params`` asks for none of them)."""
    out = lr
    if params.camera:
        out = camera_noise(out, params.camera_shot, params.camera_read, rng,
                           params.camera_red_gain, params.camera_blue_gain, params.camera_chroma_blur)
    if params.resize != 1.0 or params.jpeg_first is not None:
        out = resized_jpeg(out, params.jpeg_quality, params.resize, params.resize_interp,
                           params.resize_back_interp, params.jpeg_sampling, params.jpeg_first)
    elif params.jpeg_quality is not None:
        out = jpeg(out, params.jpeg_quality, params.jpeg_sampling)
    if params.second is not None:
        out = degrade(out, params.second, 1, rng).astype(np.uint8)
    return out


def degrade(
    hr: np.ndarray,
    params: DegradationParams,
    scale: int,
    rng: np.random.Generator,
    kernel: np.ndarray | None = None,
) -> np.ndarray:
    """HR -> LR: blur, bicubic downsample by ``scale``, noise, clip and quantise, then
    (``finish_lr``) a camera's noise, JPEG save(s) and resizes, and a second round of damage
    where ``params`` asks for them.

    ``hr``: HxWx3 RGB, float32 or uint8, 0..255 (cropped to a multiple of ``scale``).
    Returns float32 (H//scale)x(W//scale)x3 holding integer values 0..255. ``kernel`` may
    be passed to reuse one precomputed (anisotropic) kernel across the patches of a task.
    """
    lr = bicubic_downsample(blur_params(crop_to_multiple(hr, scale), params, kernel), scale)
    lr = add_noise(lr, params.noise_std, rng, params.gray_noise)
    out = finish_lr(quantize(lr), params, rng)
    return out.astype(np.float32)


def degradation_grid(
    sigmas: tuple[float, ...] = (0.6, 1.4, 2.6, 3.6),
    noises: tuple[float, ...] = (0.0, 15.0, 30.0),
    kernel_size: int = 15,
) -> list[DegradationParams]:
    """The evaluation grid: isotropic blur sigma x noise std (defaults: ``cmdsr eval --grid``)."""
    return [
        DegradationParams(kernel_size, float(s), float(s), 0.0, float(n))
        for s in sigmas
        for n in noises
    ]


def user_rows(kernel_size: int = 15) -> list[tuple[str, DegradationParams]]:
    """The evaluation rows of photos users bring (``cmdsr eval --rows users``, the model card):
    the paper's test setting, blur alone, nearly clean, nearly clean and JPEG-compressed,
    noise on a nearly clean photo, then the damage of real photos: a camera's mosaic noise
    at a mid-range ISO (shot 4e-3, read from Brooks et al.'s relation, daylight white
    balance, chroma noise reduction 1.5 px) saved at JPEG 80, and a web copy (resized x0.75 by area, JPEG 60 with 4:2:0
    chroma, back to size by bicubic). The first five rows keep their order."""
    k = kernel_size
    clean = DegradationParams(k, 1.0, 1.0, 0.0, 0.0)
    shot = 4e-3
    read = float(f"{draw_read_noise(shot, np.random.default_rng(0), jitter=False):.4g}")
    return [
        ("paper-test (blur 2.6, noise 15)", DegradationParams(7, 2.6, 2.6, 0.0, 15.0)),
        ("blur 2.6", DegradationParams(k, 2.6, 2.6, 0.0, 0.0)),
        ("nearly clean (blur 1.0)", clean),
        ("blur 1.0 + JPEG 60", DegradationParams(k, 1.0, 1.0, 0.0, 0.0, False, 60)),
        ("noise 25 (blur 1.0)", DegradationParams(k, 1.0, 1.0, 0.0, 25.0)),
        ("camera (mosaic, shot+read noise, demosaic, JPEG 80)", dataclasses.replace(
            clean, jpeg_quality=80, camera_shot=shot, camera_read=read,
            camera_red_gain=2.1, camera_blue_gain=1.7, camera_chroma_blur=1.5)),
        ("web (JPEG 60 4:2:0, resized)", dataclasses.replace(
            clean, jpeg_quality=60, resize=0.75, resize_interp="area", resize_back_interp="cubic")),
    ]
