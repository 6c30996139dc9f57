"""The damage real photos carry: a camera's own noise, JPEG as phones and web sites save it,
and the resizes around it.

Phone and camera photos are not "clean picture + Gaussian noise": the sensor's noise is
signal dependent (shot noise grows with the light, read noise is a floor), it is made on a
Bayer mosaic in linear light, and demosaicing spreads it into colour blotches that gamma
then lifts in the shadows. We follow the "unprocessing" idea (Brooks et al., "Unprocessing
Images for Learned Raw Denoising", CVPR 2019): sRGB -> linear -> inverse white balance ->
RGGB mosaic -> shot + read noise -> demosaic (OpenCV) -> white balance -> sRGB -> the
camera's chroma noise reduction (which turns colour speckle into the blotches phone photos
show at 100%) -> 8 bits.
Web copies are then JPEG-saved (4:2:0 chroma subsampling, sometimes twice) and resized.

Every function is pure and takes an explicit ``numpy.random.Generator`` where it draws.
Images are HxWx3 RGB in 0..255 (float32 or uint8); outputs are uint8 unless a docstring
says otherwise. ``engine.degrade`` wires these steps into ``DegradationParams``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Brooks et al.'s log-linear relation between shot and read noise (natural logs, linear
# light on 0..1): log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26).
READ_SLOPE = 2.18
READ_INTERCEPT = 1.20
READ_JITTER = 0.26
# Their shot range: ~1e-4 is a clean base-ISO shot, ~1.2e-2 a phone at high ISO in dim light.
SHOT_RANGE = (1e-4, 1.2e-2)
# White-balance gains of daylight raw files (red, blue; green is 1), as in Brooks et al.
RED_GAIN_RANGE = (1.9, 2.4)
BLUE_GAIN_RANGE = (1.5, 1.9)
# Std (pixels) of the chroma noise reduction's blur: none (a raw-like file) to a phone's.
CHROMA_BLUR_RANGE = (0.0, 2.0)

JPEG_SAMPLINGS = ("420", "422", "444")
_SAMPLING_FLAGS = {
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}
INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
}


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    return img


def _u8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- light


def srgb_to_linear(img: np.ndarray) -> np.ndarray:
    """sRGB 0..255 (any dtype) -> linear light float32 0..1 (the IEC 61966-2-1 curve)."""
    x = np.clip(img.astype(np.float32) / np.float32(255.0), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light float 0..1 (clipped) -> sRGB float32 0..255, unquantised."""
    x = np.clip(lin.astype(np.float32), 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (srgb * 255.0).astype(np.float32)


# ----------------------------------------------------------------------------- camera noise


def draw_read_noise(shot: float, rng: np.random.Generator, jitter: bool = True) -> float:
    """Read-noise variance for a shot-noise level, from Brooks et al.'s log-linear relation
    (with their Gaussian jitter of 0.26 in log space unless ``jitter`` is False)."""
    if shot <= 0:
        return 0.0
    log_read = READ_SLOPE * math.log(shot) + READ_INTERCEPT
    if jitter:
        log_read += float(rng.normal(0.0, READ_JITTER))
    return float(math.exp(log_read))


def draw_camera_noise(
    rng: np.random.Generator, shot_range: tuple[float, float] = SHOT_RANGE
) -> tuple[float, float, float, float, float]:
    """One camera's noise: ``(shot, read, red_gain, blue_gain, chroma_blur)``.

    ``shot`` is log-uniform in ``shot_range`` (default 1e-4..1.2e-2: nearly clean to a phone
    at high ISO), ``read`` follows from it (``draw_read_noise``), the white-balance gains are
    uniform in 1.9..2.4 (red) and 1.5..1.9 (blue), the chroma noise reduction's blur in
    ``CHROMA_BLUR_RANGE`` (0 = a camera without one)."""
    lo, hi = shot_range
    shot = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else float(lo)
    read = draw_read_noise(shot, rng)
    red = float(rng.uniform(*RED_GAIN_RANGE))
    blue = float(rng.uniform(*BLUE_GAIN_RANGE))
    chroma = float(rng.uniform(*CHROMA_BLUR_RANGE))
    return shot, read, red, blue, chroma


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxW Bayer mosaic with the RGGB layout (red at (0, 0), blue at (1, 1)); same
    dtype and scale."""
    rgb = _rgb(rgb)
    raw = rgb[..., 1].copy()
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return raw


def demosaic_rggb(raw: np.ndarray) -> np.ndarray:
    """HxW RGGB mosaic (float, 0..1) -> HxWx3 RGB float32 0..1 by OpenCV's bilinear
    demosaicing on 16 bits, as a raw converter's. (OpenCV names Bayer codes after the second
    row's pair, so RGGB is ``COLOR_BayerBG2RGB``; tests check a flat colour comes back.)"""
    u16 = np.clip(np.rint(raw * 65535.0), 0, 65535).astype(np.uint16)
    rgb = cv2.cvtColor(u16, cv2.COLOR_BayerBG2RGB)
    return rgb.astype(np.float32) / np.float32(65535.0)


def camera_noise(
    img: np.ndarray,
    shot: float,
    read: float,
    rng: np.random.Generator,
    red_gain: float = 1.0,
    blue_gain: float = 1.0,
    chroma_blur: float = 0.0,
) -> np.ndarray:
    """A camera's noise on an sRGB image: unprocess, noise the mosaic, process again.

    ``img``: HxWx3 RGB 0..255 (float32 or uint8; H, W >= 2). ``shot`` (0..~0.02): variance
    of the shot noise per unit of linear signal; ``read`` (0..~1e-3): the read-noise
    variance (both on linear light 0..1, as Brooks et al.: variance = read + shot * signal).
    ``red_gain``/``blue_gain`` (1..~2.5): white-balance gains, undone before the mosaic, so
    the red and blue sites carry less signal and their noise is amplified by the gain, as
    in a real camera. ``chroma_blur`` (0..3 pixels; 0 = none) is the std of a Gaussian
    blur of the chroma (YCrCb's Cr, Cb) after demosaicing: a camera's chroma noise
    reduction, leaving the grain in brightness and the colour noise in low-frequency blotches.
    Returns uint8 HxWx3; a flat mid grey keeps its mean within ~1 level.
    """
    img = _rgb(img)
    lin = srgb_to_linear(img)
    gains = np.array([red_gain, 1.0, blue_gain], np.float32)
    raw = mosaic_rggb(lin / gains)
    var = np.float32(read) + np.float32(shot) * np.clip(raw, 0.0, None)
    noisy = raw + np.sqrt(var) * rng.standard_normal(raw.shape, dtype=np.float32)
    rgb = demosaic_rggb(np.clip(noisy, 0.0, 1.0)) * gains
    srgb = linear_to_srgb(rgb)
    if chroma_blur > 0:
        ycc = cv2.cvtColor(srgb / np.float32(255.0), cv2.COLOR_RGB2YCrCb)
        ycc[..., 1:] = cv2.GaussianBlur(ycc[..., 1:], (0, 0), float(chroma_blur),
                                        borderType=cv2.BORDER_REFLECT_101)
        srgb = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB) * np.float32(255.0)
    return _u8(srgb)


def srgb_noise_std(shot: float, read: float, level: float = 118.0) -> float:
    """Approximate std (0..255) of the camera noise on a flat grey of sRGB ``level`` (green
    sites, before demosaicing): what a Gaussian-noise reading of that photo would be near."""
    lin = float(srgb_to_linear(np.array([level], np.float32))[0])
    std_lin = math.sqrt(read + shot * lin)
    eps = 1e-3
    lo, hi = max(lin - eps, 0.0), min(lin + eps, 1.0)
    slope = (float(linear_to_srgb(np.array([hi]))[0]) - float(linear_to_srgb(np.array([lo]))[0])) / (hi - lo)
    return slope * std_lin


# ----------------------------------------------------------------------------- JPEG, resizes


def jpeg_sampled(img: np.ndarray, quality: int, sampling: str = "420") -> np.ndarray:
    """JPEG-compress and decode HxWx3 RGB (0..255) at ``quality`` (1..100) with chroma
    ``sampling`` "420" (what phones and web sites use; OpenCV's default), "422" or "444";
    returns uint8 HxWx3."""
    if sampling not in _SAMPLING_FLAGS:
        raise ValueError(f"JPEG sampling must be one of {', '.join(JPEG_SAMPLINGS)}, got {sampling!r}")
    u8 = _u8(_rgb(img))
    flags = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _SAMPLING_FLAGS[sampling]]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8[..., ::-1]), flags)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG decoding failed")
    return np.ascontiguousarray(decoded[..., ::-1])


def resize_to(img: np.ndarray, width: int, height: int, interp: str) -> np.ndarray:
    """Resize HxWx3 (0..255) to ``width`` x ``height`` with ``interp`` ("area", "linear",
    "cubic"); returns uint8 (a resized copy is saved as 8 bits)."""
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interp!r}")
    out = cv2.resize(_rgb(img).astype(np.float32), (int(width), int(height)),
                     interpolation=INTERPOLATIONS[interp])
    return _u8(out)


def rescaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(height, width) of an image rescaled by ``factor``, each side at least 2 pixels."""
    return max(2, int(round(height * factor))), max(2, int(round(width * factor)))


def resized_jpeg(
    img: np.ndarray,
    quality: int | None,
    factor: float,
    interp: str = "cubic",
    back_interp: str = "cubic",
    sampling: str = "420",
    first_quality: int | None = None,
) -> np.ndarray:
    """A photo as a web site passes it on: saved by the camera at ``first_quality`` (double
    JPEG; None = not), resized by ``factor`` (0.5..1.5 typical; 1 = no resize) with
    ``interp``, saved at ``quality`` (None = not) with chroma ``sampling``, then brought back
    to its own size with ``back_interp`` (the size the model is given). ``img``: HxWx3
    0..255; returns uint8 of the same HxW."""
    h, w = _rgb(img).shape[:2]
    out = _u8(img)
    if first_quality is not None:
        out = jpeg_sampled(out, first_quality, sampling)
    if factor != 1.0:
        sh, sw = rescaled_size(h, w, factor)
        out = resize_to(out, sw, sh, interp)
    if quality is not None:
        out = jpeg_sampled(out, quality, sampling)
    if out.shape[:2] != (h, w):
        out = resize_to(out, w, h, back_interp)
    return out
