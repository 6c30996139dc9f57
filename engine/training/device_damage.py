"""The damage of real photos made with torch ops on the training device: JPEG (4:2:0 chroma,
a per-task quality), double JPEG, the resizes around the last save, a camera's mosaic noise
and a second round, batched over tasks x patches.

``engine.degrade.finish_lr`` makes the same damage on the host with OpenCV; a batch made on a
GPU had to travel to the host and back for it, and with the ``phones`` mix that was most of a
step's data time. Here every step is a tensor op, so a batch never waits for the host.

What is reproduced, and how closely (tests compare with the host path):
- JPEG as libjpeg(-turbo) behind OpenCV makes it: its fixed-point RGB <-> YCbCr, its chroma
  averaging (with its alternating rounding bias), edge replication to whole MCUs, the IJG
  tables scaled by quality as ``jpeg_set_quality`` does, an 8x8 DCT as a matmul with
  libjpeg's rounding of the quantised levels, and the decoder's "fancy" (triangular) chroma
  upsampling. The DCT is float, not libjpeg's integer one: decoded pixels agree within a
  level or two, not bit for bit.
- Resizes are OpenCV's own, read off as matrices on unit impulses (exact).
- The camera: the same sRGB -> linear -> RGGB mosaic -> shot + read noise -> OpenCV's
  bilinear demosaic (its integer rounding and copied borders) -> chroma blur -> sRGB; the
  noise is drawn from the device's generator, so it has the host's statistics, not its draws.

Images are float tensors [T, N, 3, H, W] holding integers 0..255 (T tasks, N patches each);
every function returns the same layout, quantised to integers, unless its docstring says so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.degrade import DegradationParams, anisotropic_gaussian_kernel
from engine.degrade_real import INTERPOLATIONS, rescaled_size

log = logging.getLogger(__name__)

# The JPEG standard's example tables (Annex K), which libjpeg scales by quality; natural order.
_LUMA_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64).reshape(8, 8)
_CHROMA_TABLE = np.full((8, 8), 99, np.int64)
_CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

# Chroma subsampling factors (rows, columns) of each sampling OpenCV writes.
SUBSAMPLING = {"420": (2, 2), "422": (1, 2), "444": (1, 1)}

# libjpeg's fixed point: 16 fractional bits, FIX(x) = round(x * 2^16).
_SHIFT = 16
_HALF = 1 << (_SHIFT - 1)


def _fix(x: float) -> int:
    return int(round(x * (1 << _SHIFT)))


@functools.lru_cache(maxsize=128)
def quant_tables(quality: int) -> np.ndarray:
    """The (luma, chroma) quantisation tables libjpeg writes at ``quality`` (1..100, clamped),
    as ``jpeg_set_quality(..., force_baseline=TRUE)`` scales them: int64 [2, 8, 8], 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    tables = np.clip((np.stack([_LUMA_TABLE, _CHROMA_TABLE]) * scale + 50) // 100, 1, 255)
    tables.flags.writeable = False  # shared by the cache
    return tables


@functools.lru_cache(maxsize=8)
def _dct_basis(device: torch.device) -> Tensor:
    """JPEG's 2-D DCT of a flattened 8x8 block as one [64, 64] matrix (the Kronecker square
    of the orthonormal 8-point DCT-II): a batch of blocks is one matmul."""
    n = np.arange(8)
    d = np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return torch.from_numpy(np.kron(d, d).astype(np.float32)).to(device, non_blocking=True)


@contextlib.contextmanager
def exact_matmuls() -> Iterator[None]:
    """float32 matmuls in full precision inside: a GPU's TF32 (which training turns on) keeps
    10 bits of mantissa, enough to move DCT coefficients across a quantisation step and
    resized pixels across a rounding boundary."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def task_index(members: Sequence[int], device: torch.device) -> Tensor:
    """int64 indices on ``device`` copied without waiting: a Python list used as an index
    would be copied with a blocking copy, which waits for every queued kernel of a GPU."""
    return torch.tensor(list(members), dtype=torch.int64).to(device, non_blocking=True)


def _take(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``x`` [T, M, H, W], per task row and column indices [T, H2], [T, W2] -> [T, M, H2, W2]."""
    t, m, _, w = x.shape
    x = torch.gather(x, 2, rows[:, None, :, None].expand(t, m, rows.shape[1], w))
    return torch.gather(x, 3, cols[:, None, None, :].expand(t, m, rows.shape[1], cols.shape[1]))


def _clamped(limits: Sequence[int], length: int, device: torch.device) -> Tensor:
    """int64 [T, length]: 0, 1, ... clamped to each task's last valid index (edge replication)."""
    lim = torch.tensor([int(v) - 1 for v in limits], dtype=torch.int64).to(device, non_blocking=True)
    return torch.minimum(torch.arange(length, device=device)[None, :], lim[:, None])


def _rgb_to_ycc(rgb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """int32 [..., 3, H, W] RGB -> Y, Cb, Cr (int32 0..255), libjpeg's fixed-point rounding."""
    r, g, b = rgb.unbind(-3)
    y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + _HALF) >> _SHIFT
    off = (128 << _SHIFT) + _HALF - 1
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + off) >> _SHIFT
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + off) >> _SHIFT
    return y, cb, cr


def _ycc_to_rgb(y: Tensor, cb: Tensor, cr: Tensor) -> Tensor:
    """int32 Y, Cb, Cr -> RGB int32 [..., 3, H, W] clipped to 0..255 (libjpeg's tables)."""
    cb, cr = cb - 128, cr - 128
    r = y + ((_fix(1.402) * cr + _HALF) >> _SHIFT)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _HALF) >> _SHIFT)
    b = y + ((_fix(1.772) * cb + _HALF) >> _SHIFT)
    return torch.stack([r, g, b], dim=-3).clamp_(0, 255)


def _downsample(c: Tensor, fy: int, fx: int) -> Tensor:
    """Chroma int32 [..., H, W] averaged over fy x fx, with libjpeg's alternating bias
    (1, 2 for 2x2; 0, 1 for 2x1) so halves do not always round the same way."""
    if fx == 1:
        return c
    cols = torch.arange(c.shape[-1] // 2, device=c.device, dtype=c.dtype) % 2
    if fy == 1:
        return (c[..., 0::2] + c[..., 1::2] + cols) >> 1
    s = c[..., 0::2, 0::2] + c[..., 0::2, 1::2] + c[..., 1::2, 0::2] + c[..., 1::2, 1::2]
    return (s + cols + 1) >> 2


def _neighbours(c: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """(previous, next) along ``dim`` with the edges replicated."""
    n = c.shape[dim]
    ar = torch.arange(n, device=c.device)
    return c.index_select(dim, (ar - 1).clamp_min(0)), c.index_select(dim, (ar + 1).clamp_max(n - 1))


def _upsample(c: Tensor, fy: int, fx: int) -> Tensor:
    """The decoder's "fancy" upsampling (libjpeg's default): each output pixel is 3/4 its own
    chroma sample and 1/4 the nearer neighbour per axis, in integers with libjpeg's biases."""
    if fx == 1:
        return c
    if fy == 2:
        up, down = _neighbours(c, -2)
        c = torch.stack([3 * c + up, 3 * c + down], dim=-2).flatten(-3, -2)
        shift, even, odd = 4, 8, 7
    else:
        shift, even, odd = 2, 1, 2
    left, right = _neighbours(c, -1)
    out = torch.stack([(3 * c + left + even) >> shift, (3 * c + right + odd) >> shift], dim=-1)
    return out.flatten(-2, -1)


def _code_blocks(planes: Tensor, tables: Tensor) -> Tensor:
    """Compress and decode int32 planes [T, M, H, W] (H, W multiples of 8) with per-task
    tables [T, 8, 8]: level shift, DCT, quantise (libjpeg rounds half away from zero),
    dequantise, inverse DCT, round and clip; int32 of the same shape."""
    t, m, h, w = planes.shape
    d = _dct_basis(planes.device)
    blocks = (planes.float() - 128).reshape(t, m, h // 8, 8, w // 8, 8).transpose(3, 4)
    coef = blocks.reshape(-1, 64) @ d.T
    q = tables.reshape(t, 1, 64).expand(t, m * (h // 8) * (w // 8), 64).reshape(-1, 64)
    levels = torch.sign(coef) * torch.floor(coef.abs() / q + 0.5)
    rec = ((levels * q) @ d).add_(128).round_().clamp_(0, 255)
    return rec.view(t, m, h // 8, w // 8, 8, 8).transpose(3, 4).reshape(t, m, h, w).to(torch.int32)


def jpeg_batch(x: Tensor, quality: Sequence[int], sampling: str = "420",
               sizes: Sequence[tuple[int, int]] | None = None) -> Tensor:
    """JPEG-compress and decode, as ``engine.degrade_real.jpeg_sampled`` (OpenCV) does.

    ``x``: [T, N, 3, H, W] holding integers 0..255 (any dtype); ``quality``: T qualities
    1..100; ``sampling``: "420", "422" or "444"; ``sizes``: each task's (height, width) in the
    top-left of its patches (default all of H x W; the rest is ignored, as libjpeg pads an
    image by repeating its edge). Returns float32 [T, N, 3, H, W] (outside ``sizes``: the
    decoded padding)."""
    if sampling not in SUBSAMPLING:
        raise ValueError(f"JPEG sampling must be one of {', '.join(SUBSAMPLING)}, got {sampling!r}")
    t, n, _, h, w = x.shape
    if len(quality) != t:
        raise ValueError(f"{len(quality)} qualities for {t} tasks")
    dev = x.device
    sizes = list(sizes) if sizes is not None else [(h, w)] * t
    fy, fx = SUBSAMPLING[sampling]
    hc, wc = -(-h // (8 * fy)) * 8 * fy, -(-w // (8 * fx)) * 8 * fx
    rgb = _take(x.reshape(t, n * 3, h, w).to(torch.int32),
                _clamped([s[0] for s in sizes], hc, dev), _clamped([s[1] for s in sizes], wc, dev))
    y, cb, cr = _rgb_to_ycc(rgb.view(t, n, 3, hc, wc))
    chroma = _downsample(torch.cat([cb, cr], dim=1), fy, fx)  # [T, 2N, hc/fy, wc/fx]
    ch = [-(-s[0] // fy) for s in sizes]
    cw = [-(-s[1] // fx) for s in sizes]
    if fy == 2:  # libjpeg pads the subsampled chroma's last rows by repeating its last row
        full = torch.arange(chroma.shape[-1], device=dev).expand(t, -1)
        chroma = _take(chroma, _clamped(ch, chroma.shape[-2], dev), full)
    tables = torch.from_numpy(np.stack([quant_tables(q) for q in quality])).float().to(dev, non_blocking=True)
    y = _code_blocks(y, tables[:, 0])
    chroma = _code_blocks(chroma, tables[:, 1])
    # the decoder upsamples the chroma of the image alone, its edge repeated
    chroma = _upsample(_take(chroma, _clamped(ch, chroma.shape[-2], dev), _clamped(cw, chroma.shape[-1], dev)),
                       fy, fx)
    cb, cr = chroma[:, :n], chroma[:, n:]
    return _ycc_to_rgb(y, cb, cr)[..., :h, :w].float()


# ----------------------------------------------------------------------------- resizes


@functools.lru_cache(maxsize=512)
def resize_matrix_np(src: int, dst: int, interp: str) -> np.ndarray:
    """OpenCV's resize of a length-``src`` line to ``dst`` with ``interp`` ("area",
    "linear", "cubic") as a matrix (float32 [dst, src]), read off on unit impulses: exact,
    borders too (the 2-D resize is separable, so a patch's is ``Mv X Mh^T``)."""
    if interp not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interp!r}")
    eye = np.eye(src, dtype=np.float32)
    return np.ascontiguousarray(cv2.resize(eye, (dst, src), interpolation=INTERPOLATIONS[interp]).T)


def _padded(m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``m`` with its last row repeated down to ``rows`` and zero columns out to ``cols``."""
    out = np.zeros((rows, cols), np.float32)
    out[:m.shape[0], :m.shape[1]] = m
    out[m.shape[0]:, :m.shape[1]] = m[-1]
    return out


def _apply(x: Tensor, mv: Tensor, mh: Tensor) -> Tensor:
    """``x`` [T, N, C, H, W], per task ``mv`` [T, H2, H], ``mh`` [T, W2, W] -> [T, N, C, H2, W2]:
    two batched matmuls over tasks, each with all of a task's rows at once."""
    t, n, c, h, w = x.shape
    h2, w2 = mv.shape[1], mh.shape[1]
    rows = torch.bmm(x.reshape(t, n * c * h, w), mh.transpose(1, 2))  # [T, NCH, W2]
    cols = rows.view(t, n * c, h, w2).transpose(1, 2).reshape(t, h, n * c * w2)
    out = torch.bmm(mv, cols)  # [T, H2, NC W2]
    return out.view(t, h2, n * c, w2).transpose(1, 2).reshape(t, n, c, h2, w2)


# ----------------------------------------------------------------------------- camera


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB 0..255 -> linear light 0..1 (float32), as ``engine.degrade_real.srgb_to_linear``."""
    x = (x.float() / 255.0).clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: Tensor) -> Tensor:
    """Linear light (clipped to 0..1) -> sRGB float32 0..255, unquantised."""
    x = lin.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055) * 255.0


@functools.lru_cache(maxsize=32)
def _bayer_sites(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boolean [h, w] masks of the RGGB sites: red, green in red rows, green in blue rows, blue."""
    ry = (torch.arange(h, device=device) % 2 == 0)[:, None]
    cx = (torch.arange(w, device=device) % 2 == 0)[None, :]
    return ry & cx, ry & ~cx, ~ry & cx, ~ry & ~cx


def mosaic_rggb(rgb: Tensor) -> Tensor:
    """[..., 3, H, W] -> [..., 1, H, W] RGGB mosaic (red at (0, 0), blue at (1, 1))."""
    red, g_r, g_b, blue = _bayer_sites(rgb.shape[-2], rgb.shape[-1], rgb.device)
    out = torch.where(red, rgb[..., 0, :, :], torch.where(blue, rgb[..., 2, :, :], rgb[..., 1, :, :]))
    return out.unsqueeze(-3)


def demosaic_rggb(raw: Tensor) -> Tensor:
    """RGGB mosaic [B, 1, H, W] of integers 0..65535 (float) -> RGB [B, 3, H, W] by OpenCV's
    bilinear demosaicing (``COLOR_BayerBG2RGB`` on 16 bits): averages of 4 or 2 neighbours
    rounded as its integers are, border pixels copied from their inner neighbours."""
    _, _, h, w = raw.shape
    # sums of shifted views (exact in float32, unlike a convolution a GPU may run in TF32)
    at = {(dy, dx): raw[:, 0, 1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    horiz = torch.floor((at[0, -1] + at[0, 1] + 1) / 2)
    vert = torch.floor((at[-1, 0] + at[1, 0] + 1) / 2)
    cross = torch.floor((at[0, -1] + at[0, 1] + at[-1, 0] + at[1, 0] + 2) / 4)
    diag = torch.floor((at[-1, -1] + at[-1, 1] + at[1, -1] + at[1, 1] + 2) / 4)
    v = raw[:, 0, 1:-1, 1:-1]
    red, g_r, g_b, blue = (m[1:-1, 1:-1] for m in _bayer_sites(h, w, raw.device))
    r = torch.where(red, v, torch.where(g_r, horiz, torch.where(g_b, vert, diag)))
    g = torch.where(red | blue, cross, v)
    bl = torch.where(blue, v, torch.where(g_r, vert, torch.where(g_b, horiz, diag)))
    return F.pad(torch.stack([r, g, bl], dim=1), (1, 1, 1, 1), mode="replicate")


@functools.lru_cache(maxsize=1024)
def _reflect_blur_np(size: int, kernel: tuple[float, ...]) -> np.ndarray:
    """A 1-D blur of a length-``size`` line with OpenCV's reflect-101 border as a matrix
    (float32 [size, size])."""
    k = np.asarray(kernel, np.float64)
    r = len(k) // 2
    src = np.arange(size)[:, None] + np.arange(len(k))[None, :] - r
    if size > 1:
        period = 2 * (size - 1)
        src = np.mod(src, period)
        src = np.where(src < size, src, period - src)
    else:
        src = np.zeros_like(src)
    m = np.zeros((size, size), np.float64)
    np.add.at(m, (np.repeat(np.arange(size), len(k)), src.reshape(-1)), np.tile(k, size))
    return m.astype(np.float32)


@functools.lru_cache(maxsize=1024)
def _chroma_blur_matrix(size: int, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(..., (0, 0), sigma)`` of a float image along one axis (identity for
    sigma 0): OpenCV's kernel size for float images, round(8 sigma + 1) made odd."""
    if sigma <= 0:
        return np.eye(size, dtype=np.float32)
    ksize = int(round(sigma * 8 + 1)) | 1
    k = cv2.getGaussianKernel(ksize, float(sigma), cv2.CV_32F).reshape(-1)
    return _reflect_blur_np(size, tuple(float(v) for v in k))


def camera_noise_batch(x: Tensor, params: Sequence[DegradationParams], gen: torch.Generator) -> Tensor:
    """A camera's noise on [T, N, 3, H, W] sRGB patches (0..255), each task with its
    ``params``' shot/read variances, white-balance gains and chroma blur, as
    ``engine.degrade_real.camera_noise``: unprocess, noise the RGGB mosaic (draws from
    ``gen``), OpenCV's bilinear demosaic, gains, sRGB, the chroma noise reduction (YCrCb's
    Cr and Cb blurred), quantised. float32 of the same shape."""
    t, n, _, h, w = x.shape
    dev = x.device

    def per_task(values: list[float]) -> Tensor:
        return torch.tensor(values, dtype=torch.float32).to(dev, non_blocking=True).view(t, 1, 1, 1, 1)

    gains = torch.tensor([[p.camera_red_gain, 1.0, p.camera_blue_gain] for p in params],
                         dtype=torch.float32).to(dev, non_blocking=True).view(t, 1, 3, 1, 1)
    raw = mosaic_rggb(srgb_to_linear(x) / gains)  # [T, N, 1, H, W]
    var = per_task([p.camera_read for p in params]) + per_task([p.camera_shot for p in params]) * raw.clamp_min(0)
    noisy = raw + var.sqrt() * torch.randn(raw.shape, generator=gen, device=dev)
    u16 = (noisy.clamp(0.0, 1.0) * 65535.0).round_()
    rgb = demosaic_rggb(u16.view(t * n, 1, h, w)).view(t, n, 3, h, w) / 65535.0 * gains
    srgb = linear_to_srgb(rgb)
    sigmas = [p.camera_chroma_blur for p in params]
    if any(s > 0 for s in sigmas):
        f = srgb / 255.0
        r, g, b = f.unbind(2)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cc = torch.stack([(r - y) * 0.713, (b - y) * 0.564], dim=2)  # Cr, Cb less OpenCV's 0.5
        mv = torch.from_numpy(np.stack([_chroma_blur_matrix(h, s) for s in sigmas])).to(dev, non_blocking=True)
        mh = torch.from_numpy(np.stack([_chroma_blur_matrix(w, s) for s in sigmas])).to(dev, non_blocking=True)
        cr, cb = _apply(cc, mv, mh).unbind(2)
        srgb = torch.stack([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], dim=2) * 255.0
    return srgb.round_().clamp_(0, 255)


# ----------------------------------------------------------------------------- finishing


def _groups(params: Sequence[DegradationParams], members: Sequence[int],
                 key: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i in members:
        groups.setdefault(str(getattr(params[i], key)), []).append(i)
    return groups


def _blur_terms(params: DegradationParams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertical, horizontal) reflect-101 blur matrices [R, size, size] of ``params``' kernel
    (R = 1 when isotropic, the kernel's rank otherwise), as ``engine.degrade.blur_params``."""
    if params.isotropic:
        k = cv2.getGaussianKernel(params.kernel_size, params.sigma_x, cv2.CV_64F).reshape(-1)
        m = _reflect_blur_np(size, tuple(float(v) for v in (k / k.sum()).astype(np.float32)))[None]
        return m, m
    k2 = anisotropic_gaussian_kernel(params.kernel_size, params.sigma_x, params.sigma_y,
                                     params.angle).astype(np.float64)
    u, s, vt = np.linalg.svd(k2)
    rank = max(1, int((s > s[0] * 1e-7).sum()))
    # filter2D correlates: row taps are the kernel's rows (vertical), columns horizontal
    mv = np.stack([_reflect_blur_np(size, tuple(u[:, r] * s[r])) for r in range(rank)])
    mh = np.stack([_reflect_blur_np(size, tuple(vt[r])) for r in range(rank)])
    return mv, mh


def finish_batch(x: Tensor, params: Sequence[DegradationParams], gen: torch.Generator) -> Tensor:
    """``engine.degrade.finish_lr`` for a batch, on ``x``'s device: a camera's noise, JPEG
    saves with the resizes around them, then the ``second`` round, each where a task's
    ``params`` ask for it. ``x``: [T, N, 3, H, W] integers 0..255 (uint8 or float); returns
    uint8 of the same shape. Draws come from ``gen`` (same seed, same batch)."""
    if len(params) != x.shape[0]:
        raise ValueError(f"{len(params)} degradations for {x.shape[0]} tasks")
    with exact_matmuls():
        return _finish(x.float().clone(), params, gen)


def _finish(out: Tensor, params: Sequence[DegradationParams], gen: torch.Generator) -> Tensor:
    dev = out.device

    def rows(members: list[int]) -> tuple[Tensor, Tensor]:
        index = task_index(members, dev)
        return index, out.index_select(0, index)

    cam = [i for i, p in enumerate(params) if p.camera]
    if cam:
        index, part = rows(cam)
        out.index_copy_(0, index, camera_noise_batch(part, [params[i] for i in cam], gen))
    twice = [i for i, p in enumerate(params) if p.jpeg_first is not None]
    for sampling, members in _groups(params, twice, "jpeg_sampling").items():
        index, part = rows(members)
        out.index_copy_(0, index, jpeg_batch(part, [params[i].jpeg_first or 0 for i in members], sampling))
    web = [i for i, p in enumerate(params) if p.resize != 1.0 or p.jpeg_quality is not None]
    if web:
        index, part = rows(web)
        out.index_copy_(0, index, _resized_jpeg(part, [params[i] for i in web]))
    again = [i for i, p in enumerate(params) if p.second is not None]
    if again:
        index, part = rows(again)
        seconds = [params[i].second for i in again]
        out.index_copy_(0, index, _second_round(part, [s for s in seconds if s is not None], gen).float())
    return out.to(torch.uint8)


def _resized_jpeg(x: Tensor, params: Sequence[DegradationParams]) -> Tensor:
    """The last save of ``engine.degrade_real.resized_jpeg`` for [T, N, 3, H, W]: resize by
    each task's factor (1 = none), JPEG at its quality (None = none), resize back; every
    task in one canvas as large as the largest resized size (smaller ones edge-padded)."""
    t, _, _, h, w = x.shape
    dev = x.device
    sizes = [rescaled_size(h, w, p.resize) if p.resize != 1.0 else (h, w) for p in params]
    ch, cw = max(s[0] for s in sizes), max(s[1] for s in sizes)

    def there(src: int, dst: int, p: DegradationParams, rows: int) -> np.ndarray:
        m = resize_matrix_np(src, dst, p.resize_interp) if p.resize != 1.0 else np.eye(src, dtype=np.float32)
        return _padded(m, rows, src)

    def back(src: int, dst: int, p: DegradationParams, cols: int) -> np.ndarray:
        m = resize_matrix_np(src, dst, p.resize_back_interp) if src != dst else np.eye(dst, dtype=np.float32)
        return _padded(m, dst, cols)

    def stacked(mats: list[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack(mats)).to(dev, non_blocking=True)

    mv = stacked([there(h, s[0], p, ch) for s, p in zip(sizes, params, strict=True)])
    mh = stacked([there(w, s[1], p, cw) for s, p in zip(sizes, params, strict=True)])
    canvas = _apply(x, mv, mh).round_().clamp_(0, 255)  # a resized copy is saved as 8 bits
    saved = [i for i, p in enumerate(params) if p.jpeg_quality is not None]
    for sampling, members in _groups(params, saved, "jpeg_sampling").items():
        index = task_index(members, dev)
        canvas.index_copy_(0, index, jpeg_batch(
            canvas.index_select(0, index), [params[i].jpeg_quality or 0 for i in members], sampling,
            [sizes[i] for i in members]))
    bv = stacked([back(s[0], h, p, ch) for s, p in zip(sizes, params, strict=True)])
    bh = stacked([back(s[1], w, p, cw) for s, p in zip(sizes, params, strict=True)])
    return _apply(canvas, bv, bh).round_().clamp_(0, 255)


def _second_round(x: Tensor, params: Sequence[DegradationParams], gen: torch.Generator) -> Tensor:
    """``engine.degrade.degrade(lr, second, 1, rng)``: blur in LR pixels (no downscale),
    Gaussian noise, quantise, then the rest of ``finish_batch``; uint8."""
    t, n, _, h, w = x.shape
    dev = x.device
    blurred = torch.empty_like(x)
    by_rank: dict[int, list[int]] = {}
    terms = [_blur_terms(p, h) if h == w else (_blur_terms(p, h)[0], _blur_terms(p, w)[1]) for p in params]
    for i, (mv, _) in enumerate(terms):
        by_rank.setdefault(mv.shape[0], []).append(i)
    for members in by_rank.values():
        mv_t = torch.from_numpy(np.stack([terms[i][0] for i in members])).to(dev, non_blocking=True)
        mh_t = torch.from_numpy(np.stack([terms[i][1] for i in members])).to(dev, non_blocking=True)
        index = task_index(members, dev)
        part = x.index_select(0, index)
        acc = _apply(part, mv_t[:, 0], mh_t[:, 0])
        for r in range(1, mv_t.shape[1]):
            acc = acc + _apply(part, mv_t[:, r], mh_t[:, r])
        blurred.index_copy_(0, index, acc)
    std = torch.tensor([p.noise_std for p in params], dtype=torch.float32).to(dev, non_blocking=True)
    noise = torch.randn(x.shape, generator=gen, device=dev)
    if any(p.gray_noise for p in params):
        gray = torch.tensor([p.gray_noise for p in params]).to(dev, non_blocking=True)
        mono = torch.randn((t, n, 1, h, w), generator=gen, device=dev)
        noise = torch.where(gray.view(t, 1, 1, 1, 1), mono.expand_as(noise), noise)
    lr = (blurred + noise * std.view(t, 1, 1, 1, 1)).round_().clamp_(0, 255)
    return finish_batch(lr, params, gen)
