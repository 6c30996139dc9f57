"""Synthetic degradations: blur, exact-scale bicubic downsampling, noise and JPEG.

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

    PRESETS: ClassVar[tuple[str, ...]] = ("paper", "paper-test", "mild", "real", "studio", "users")

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
        for name in ("aniso_prob", "gray_noise_prob", "jpeg_prob", "clean_prob", "mild_prob"):
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
        clean, blur 0.5-1.6 and no noise, and more JPEG: the photos most users bring)."""
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
    """

    kernel_size: int
    sigma_x: float
    sigma_y: float
    angle: float
    noise_std: float
    gray_noise: bool = False
    jpeg_quality: int | None = None

    @property
    def isotropic(self) -> bool:
        return self.sigma_x == self.sigma_y

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DegradationParams:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def label(self) -> str:
        """Short human-readable description, e.g. ``blur 2.6 (7x7), noise 15``."""
        if self.isotropic:
            blur = f"blur {self.sigma_x:g} ({self.kernel_size}x{self.kernel_size})"
        else:
            blur = (f"blur {self.sigma_x:g}/{self.sigma_y:g}@{math.degrees(self.angle):.0f}deg "
                    f"({self.kernel_size}x{self.kernel_size})")
        parts = [blur, f"{'gray ' if self.gray_noise else ''}noise {self.noise_std:g}"]
        if self.jpeg_quality is not None:
            parts.append(f"jpeg {self.jpeg_quality}")
        return ", ".join(parts)


def _draw_sigma(cfg: DegradationConfig, rng: np.random.Generator) -> float:
    lo, hi = cfg.blur_sigma
    if cfg.sigma_step > 0 and hi > lo:
        k = int(rng.integers(0, int(round((hi - lo) / cfg.sigma_step)) + 1))
        return round(lo + k * cfg.sigma_step, 6)
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


def sample_degradation(cfg: DegradationConfig, rng: np.random.Generator) -> DegradationParams:
    """Draw one degradation from ``cfg``'s distribution."""
    if cfg.mild_prob > 0 and rng.random() < cfg.mild_prob:
        sigma = round(float(rng.uniform(*cfg.mild_blur)), 3)
        quality = None
        if cfg.jpeg_prob > 0 and rng.random() < cfg.jpeg_prob:
            quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        return DegradationParams(cfg.kernel_size, sigma, sigma, 0.0, 0.0, False, quality)
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
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    return DegradationParams(cfg.kernel_size, sigma_x, sigma_y, angle, noise, gray, quality)


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


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG-compress and decode an HxWx3 RGB image at ``quality`` (1..100); returns uint8."""
    u8 = img if img.dtype == np.uint8 else quantize(img)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[..., ::-1])


def degrade(
    hr: np.ndarray,
    params: DegradationParams,
    scale: int,
    rng: np.random.Generator,
    kernel: np.ndarray | None = None,
) -> np.ndarray:
    """HR -> LR: blur, bicubic downsample by ``scale``, noise, clip and quantise, JPEG.

    ``hr``: HxWx3 RGB, float32 or uint8, 0..255 (cropped to a multiple of ``scale``).
    Returns float32 (H//scale)x(W//scale)x3 holding integer values 0..255. ``kernel`` may
    be passed to reuse one precomputed (anisotropic) kernel across the patches of a task.
    """
    lr = bicubic_downsample(blur_params(crop_to_multiple(hr, scale), params, kernel), scale)
    lr = add_noise(lr, params.noise_std, rng, params.gray_noise)
    out = quantize(lr)
    if params.jpeg_quality is not None:
        out = jpeg(out, params.jpeg_quality)
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
    the paper's test setting, blur alone, nearly clean, nearly clean and JPEG-compressed, and
    noise on a nearly clean photo."""
    k = kernel_size
    return [
        ("paper-test (blur 2.6, noise 15)", DegradationParams(7, 2.6, 2.6, 0.0, 15.0)),
        ("blur 2.6", DegradationParams(k, 2.6, 2.6, 0.0, 0.0)),
        ("nearly clean (blur 1.0)", DegradationParams(k, 1.0, 1.0, 0.0, 0.0)),
        ("blur 1.0 + JPEG 60", DegradationParams(k, 1.0, 1.0, 0.0, 0.0, False, 60)),
        ("noise 25 (blur 1.0)", DegradationParams(k, 1.0, 1.0, 0.0, 25.0)),
    ]
