"""Super-resolving whole photos: condition once, fold, then tiled inference.

For CMDSR the support set is turned into a condition once per image and the modulations are
folded into plain conv weights (``CMDSR.fold``); the photo then runs through that fixed
network tile by tile, so memory stays bounded whatever the photo's size. Each tile carries a
margin of context at least the network's receptive field, so the stitched result equals the
untiled one up to float rounding (well under 1/255).

The same ``Upscaler`` also runs the conditioning-off baseline and plain bicubic, so the GUI
compares methods through one interface. Progress is reported per tile and a cancel event is
checked before each tile: Cancel takes effect within one tile.

Precision: ``fp32`` everywhere by default; ``auto`` (the command line's default) picks bf16 on
CPUs with native bf16 convolutions (AMX, AVX-512 BF16; see ``engine.inference.cpu_caps``) and fp32
elsewhere. On the CPU a reduced precision only covers the residual blocks' convolutions, which
are ~90% of the work: the input conv, the residual stream, the global skip and the upsampling
tail stay fp32, so the result is within a grey level or two of fp32's (bf16 rounding of the
first features or of the 0..255 output would cost more). On a GPU the whole folded network runs
in the chosen type.

``out_dtype=np.uint8`` asks for the result as 8-bit integers: each output piece is rounded
(half to even, as ``np.rint``) and clipped to 0..255 as it is produced, so the full-size float
result never exists. An 8-bit file needs nothing more, and it is a quarter of the memory.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import CancelledError, CmdsrError, ConfigError
from engine.inference.devices import (
    PRECISION_CHOICES,
    PRECISIONS,
    body_bytes_per_pixel,
    free_memory,
    resolve_device,
    resolve_precision,
    tail_bytes_per_pixel,
)
from engine.inference.support import DEFAULT_PATCH_SIZE, SupportSet, select_support
from engine.io.imageio import Image
from engine.model import CMDSR, FoldedSRNet, fused_cpu_ops_available

log = logging.getLogger(__name__)

METHODS = ("cmdsr", "baseline", "bicubic")
MIN_TILE = 32
MAX_AUTO_TILE = 2048
MAX_AUTO_TAIL_TILE = 512
# Share of the budget for one piece of the upsampling tail (the body's features stay alive).
TAIL_SHARE = 0.25

ProgressFn = Callable[[int, int], None]
# the damage knobs: (blur sigma, noise sigma) or with the JPEG quality (None or 100: no JPEG)
DamageKnobs = tuple[float, float] | tuple[float, float, float | None]
# Result types ``Upscaler.upscale`` can produce: floats 0..255, or those rounded to 8 bits.
OUT_DTYPES = (np.float32, np.uint8)
# Output samples per band when bicubic is converted to 8 bits (16 MB of floats at a time).
_BAND_SAMPLES = 2**22


@dataclass(frozen=True)
class TileConfig:
    """Tiling of the input, in input (low-resolution) pixels.

    ``tile``: side of the part of the image each tile produces; 0 picks it from free memory.
    ``overlap``: context margin added on every side of a tile. The Upscaler never uses less
    than the model's receptive field (``receptive_radius``), so tiled equals untiled.
    """

    tile: int = 0
    overlap: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.tile, int) or isinstance(self.tile, bool):
            raise ConfigError(f"tile must be an integer, got {self.tile!r}")
        if self.tile != 0 and self.tile < MIN_TILE:
            raise ConfigError(
                f"tile must be 0 (automatic) or at least {MIN_TILE} pixels, got {self.tile}"
            )
        if not isinstance(self.overlap, int) or isinstance(self.overlap, bool) or self.overlap < 0:
            raise ConfigError(f"overlap must be a non-negative integer, got {self.overlap!r}")


def receptive_radius(model: CMDSR) -> int:
    """How far (in input pixels) an output pixel sees: the tile margin needed for exactness.

    Input conv, 2 convs per block and the first upsampler conv work at input resolution
    (1 pixel each); the later upsampler convs and the output conv work at 2x/4x (a fraction).
    """
    cfg = model.config
    radius = 1.0 + 2 * cfg.blocks + 1.0
    if cfg.scale == 4:
        radius += 1 / 2 + 1 / 4
    else:
        radius += 1 / cfg.scale
    return math.ceil(radius)


# --------------------------------------------------------------------------- upscaler


def _is_oom(exc: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    if oom_types and isinstance(exc, oom_types):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def _spans(length: int, tile: int) -> list[tuple[int, int]]:
    """Split 0..length into near-equal spans of at most ``tile``."""
    n = max(1, math.ceil(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


class Upscaler:
    """Super-resolves RGB float images (0..255) with CMDSR, the baseline or bicubic.

    ``method``: ``cmdsr`` (a conditioned model; needs a support set, else one is picked at
    random from the image), ``baseline`` (a conditioning-off model; no support) or
    ``bicubic`` (no model; ``scale`` defaults to the model's or 4).
    """

    def __init__(
        self,
        model: CMDSR | None,
        *,
        method: str = "cmdsr",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        tile: TileConfig | None = None,
        scale: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if precision not in PRECISION_CHOICES:
            raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, "
                              f"got {precision!r}")
        self.method = method
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = PRECISIONS[self.precision]
        # On the CPU only the residual blocks run in a reduced type (see the module docstring).
        cpu_mixed = self.device.type == "cpu" and self.dtype != torch.float32
        self._net_dtype = torch.float32 if cpu_mixed else self.dtype
        self._block_dtype = self.dtype if cpu_mixed else None
        self.tile = tile if tile is not None else TileConfig()
        if not isinstance(self.tile, TileConfig):
            raise ConfigError(f"tile must be a TileConfig, got {type(self.tile).__name__}")
        self.model: CMDSR | None = None
        self.overlap = self.tile.overlap
        if method == "bicubic":
            self._scale = int(scale or (model.scale if model is not None else 4))
            if self._scale < 1:
                raise ConfigError(f"scale must be positive, got {self._scale}")
            return
        if model is None:
            raise ConfigError(f"method {method!r} needs a model")
        if method == "cmdsr" and not model.conditioned:
            raise ConfigError("method 'cmdsr' needs a conditioned CMDSR model; this one has "
                              "conditioning off (use method 'baseline')")
        if method == "baseline" and model.conditioned:
            raise ConfigError("method 'baseline' expects a conditioning-off model; this one is "
                              "conditioned (use method 'cmdsr')")
        if scale is not None and scale != model.scale:
            raise ConfigError(f"the model upscales x{model.scale}, not x{scale}")
        self.model = model.to(self.device).eval()
        self._scale = model.scale
        self.overlap = max(self.tile.overlap, receptive_radius(model))
        if self.overlap > self.tile.overlap:
            log.debug("tile overlap raised from %d to the model's receptive field %d",
                      self.tile.overlap, self.overlap)

    # ----------------------------------------------------------------- properties
    @property
    def scale(self) -> int:
        return self._scale

    @property
    def needs_support(self) -> bool:
        return self.method == "cmdsr"

    @property
    def support_size(self) -> int | None:
        """How many support patches the model takes (None unless method is cmdsr)."""
        return self.model.support_size if self.needs_support and self.model is not None else None

    def choose_tile(self, height: int, width: int) -> int:
        """Tile side for an image: the configured one, or the largest whose body fits the
        free memory (so a photo of a few megapixels usually runs as one tile)."""
        if self.tile.tile:
            return self.tile.tile
        assert self.model is not None
        budget = free_memory(self.device)
        side = int(math.sqrt(budget / body_bytes_per_pixel(self.model, self._net_dtype)))
        tile = (side - 2 * self.overlap) // 16 * 16
        return int(min(MAX_AUTO_TILE, max(MIN_TILE, tile)))

    def choose_tail_tile(self, tile: int) -> int:
        """Side of the pieces the upsampling tail runs on (never more than ``tile``)."""
        assert self.model is not None
        budget = free_memory(self.device) * TAIL_SHARE
        side = int(math.sqrt(budget / tail_bytes_per_pixel(self.model, self._net_dtype)))
        tail = max(MIN_TILE // 2, (side - 2 * TAIL_RADIUS) // 16 * 16)
        return int(min(tile, MAX_AUTO_TAIL_TILE, tail))

    # ----------------------------------------------------------------- running
    def support_tensor(self, support: SupportSet) -> Tensor:
        """[1, S, 3, h, w] on the device from a SupportSet."""
        assert self.model is not None
        if support.count != self.model.support_size:
            raise ConfigError(f"the model takes {self.model.support_size} support patches, "
                              f"got {support.count}")
        patches = torch.from_numpy(np.ascontiguousarray(support.patches, dtype=np.float32))
        return patches.permute(0, 3, 1, 2).unsqueeze(0).to(self.device)

    def damage_condition(self, blur: float, noise: float, jpeg: float | None = None) -> Tensor:
        """The condition [1, cond] the model's condition map gives for this damage (``jpeg``:
        the JPEG quality, 100 or None for none; only for a map with a JPEG input)."""
        from engine.condition_map import condition_map_of

        assert self.model is not None
        cmap = condition_map_of(self.model)
        if cmap is None:
            raise ConfigError("this model has no damage knobs (no condition map in its file)")
        return cmap.condition(blur, noise, jpeg).to(self.device)

    def upscale(
        self,
        pixels: np.ndarray,
        support: SupportSet | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        out_dtype: type[np.generic] | np.dtype = np.float32,
        damage: DamageKnobs | None = None,
    ) -> np.ndarray:
        """[H, W, 3] float 0..255 -> [H*s, W*s, 3] float32 clamped to 0..255.

        ``damage`` (blur sigma, noise sigma[, JPEG quality]): steer CMDSR by these numbers
        through the model's condition map (``engine.condition_map``) instead of reading the
        damage from ``support``; a model without a map, values outside its range, or a JPEG
        quality for a map without a JPEG input raise ``ConfigError``.

        ``out_dtype=np.uint8``: the same result rounded half to even and clipped to 0..255
        (equal to ``np.clip(np.rint(float_result), 0, 255)``), built piece by piece so no
        full-size float array is held. Raises ``CancelledError`` before the next tile once
        ``cancel`` is set.
        """
        dtype = _out_dtype(out_dtype)
        pixels = np.asarray(pixels)
        if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 1:
            raise ConfigError(f"expected [H, W, 3] pixels, got {tuple(pixels.shape)}")
        # contiguous: torch cannot view flipped/rotated numpy arrays (negative strides)
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        _check_cancel(cancel)
        if self.method == "bicubic":
            out = bicubic(pixels, self._scale, out_dtype=dtype)
            if progress:
                progress(1, 1)
            return out
        assert self.model is not None
        with torch.inference_mode():
            if self.method == "cmdsr" and damage is not None:
                net = self.model.fold(condition=self.damage_condition(*damage))
            elif self.method == "cmdsr":
                if support is None:
                    support = select_support(pixels, count=self.model.support_size,
                                             size=DEFAULT_PATCH_SIZE, mode="random", seed=0)
                net = self.model.fold(self.support_tensor(support))
            else:
                net = self.model.fold(None)
            net = net.to(self._net_dtype)
            out = self._run_tiled(net, pixels, progress, cancel, dtype)
        if dtype == np.float32:
            np.clip(out, 0.0, 255.0, out=out)
        return out

    def _run_tiled(
        self,
        net: FoldedSRNet,
        pixels: np.ndarray,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
        dtype: np.dtype,
    ) -> np.ndarray:
        """Body on big tiles with ``overlap`` margins, tail on small pieces of the body's
        features with ``TAIL_RADIUS`` margins; each output pixel is computed once, exactly as
        the untiled network would."""
        height, width = pixels.shape[:2]
        s, pad = self._scale, self.overlap
        stages = _Stages(net, self._block_dtype)
        tile = self.choose_tile(height, width)
        tail_tile = self.choose_tail_tile(tile)
        out = np.empty((height * s, width * s, 3), dtype)
        image = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)  # a view, no copy
        queue = [(y0, y1, x0, x1) for y0, y1 in _spans(height, tile) for x0, x1 in _spans(width, tile)]
        done = 0
        total = sum(stages.units(q, tail_tile) for q in queue)
        log.debug("upscaling %dx%d in %d tile(s) of %d (+%d margin), tail pieces of %d, on %s",
                  width, height, len(queue), tile, pad, tail_tile, self.device)

        def step() -> None:
            nonlocal done
            _check_cancel(cancel)
            done += 1
            if progress:
                progress(done, total)

        if progress:
            progress(0, total)
        while queue:
            _check_cancel(cancel)
            y0, y1, x0, x1 = queue[0]
            done_before = done
            try:
                self._run_tile(stages, image, out, (y0, y1, x0, x1), tail_tile, step)
                failed = False
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                failed = True  # handled below, once the traceback's tensors are released
            if failed:
                _empty_cache(self.device)
                failed_tile = max(y1 - y0, x1 - x0)
                tile = failed_tile // 2
                tail_tile = max(MIN_TILE // 2, min(tile, tail_tile // 2))
                if tile < MIN_TILE // 2:
                    raise CmdsrError(
                        f"out of memory on {self.device} even with {failed_tile}-pixel tiles; "
                        "close other programs or use --device cpu"
                    )
                log.warning("out of memory on %s with %d-pixel tiles: freed the cache, "
                            "retrying with %d-pixel tiles", self.device, failed_tile, tile)
                # Split the failed tile and everything still queued to the new size.
                queue = [(qy0 + a, qy0 + b, qx0 + c, qx0 + d)
                         for (qy0, qy1, qx0, qx1) in queue
                         for a, b in _spans(qy1 - qy0, tile)
                         for c, d in _spans(qx1 - qx0, tile)]
                done = done_before
                total = done + sum(stages.units(q, tail_tile) for q in queue)
                continue
            queue.pop(0)
        return out

    def _run_tile(
        self,
        stages: _Stages,
        image: Tensor,
        out: np.ndarray,
        core: tuple[int, int, int, int],
        tail_tile: int,
        step: Callable[[], None],
    ) -> None:
        height, width = image.shape[-2:]
        s, pad = self._scale, self.overlap
        y0, y1, x0, x1 = core
        py0, py1 = max(0, y0 - pad), min(height, y1 + pad)
        px0, px1 = max(0, x0 - pad), min(width, x1 + pad)
        piece = image[:, :, py0:py1, px0:px1].to(self.device, self._net_dtype)
        features = stages.body(piece, step)
        del piece
        r = TAIL_RADIUS
        for sy0, sy1 in _spans(y1 - y0, tail_tile):
            for sx0, sx1 in _spans(x1 - x0, tail_tile):
                # absolute input coordinates of this output piece, then its feature window
                ay0, ay1, ax0, ax1 = y0 + sy0, y0 + sy1, x0 + sx0, x0 + sx1
                fy0, fy1 = max(py0, ay0 - r), min(py1, ay1 + r)
                fx0, fx1 = max(px0, ax0 - r), min(px1, ax1 + r)
                window = features[:, :, fy0 - py0:fy1 - py0, fx0 - px0:fx1 - px0]
                result = stages.tail(window)
                crop = result[0, :, (ay0 - fy0) * s:(ay1 - fy0) * s, (ax0 - fx0) * s:(ax1 - fx0) * s]
                values = crop.float()
                if out.dtype == np.uint8:
                    # torch.round rounds half to even, like np.rint; 1 byte per sample leaves
                    # the device instead of 4.
                    values = values.round().clamp_(0.0, 255.0).to(torch.uint8)
                out[ay0 * s:ay1 * s, ax0 * s:ax1 * s] = values.permute(1, 2, 0).cpu().numpy()
                del result, crop, window, values
                step()


# Input pixels the upsampling tail looks at around an output pixel: its first conv works at
# input resolution (1), the later ones at 2x/3x/4x (a fraction each).
TAIL_RADIUS = 2


class _Stages:
    """A folded network run as two stages with very different memory needs: the body
    (input conv, residual blocks, global skip) holds about 4 feature maps of C channels at
    input resolution; the tail (upsampler, output conv) holds maps at s x s the resolution,
    ~10x more per input pixel. Running the tail on small pieces of the body's features lets
    the body take large tiles, so little work is repeated in tile margins.

    Runs ``FoldedSRNet.body`` and ``FoldedSRNet.tail`` (the folded network's own fused
    kernels); ``step`` is called after each block, so Cancel stays prompt. With
    ``block_dtype`` (CPU reduced precision) the residual blocks' convolutions run in that type
    on a copy of their weights, everything else in fp32 (``_mixed_body``).
    """

    def __init__(self, net: FoldedSRNet, block_dtype: torch.dtype | None = None) -> None:
        self.net = net
        self.blocks = net.blocks
        self.block_dtype = block_dtype
        self._block_weights: list[tuple[Tensor, Tensor]] = []
        if block_dtype is not None:
            self._block_weights = [
                (_buffer(net, f"w{i}").to(block_dtype), _buffer(net, f"b{i}").to(block_dtype))
                for i in range(1, 2 * net.blocks + 1)
            ]

    def units(self, core: tuple[int, int, int, int], tail_tile: int) -> int:
        """Progress units of one tile: one per block, one per tail piece."""
        y0, y1, x0, x1 = core
        return self.blocks + len(_spans(y1 - y0, tail_tile)) * len(_spans(x1 - x0, tail_tile))

    def body(self, lr: Tensor, step: Callable[[], None]) -> Tensor:
        if self.block_dtype is None:
            return self.net.body(lr, step)
        return self._mixed_body(lr, step)

    def _mixed_body(self, lr: Tensor, step: Callable[[], None]) -> Tensor:
        """``FoldedSRNet.body`` with the block convolutions in ``block_dtype``: each block
        reads the fp32 residual stream rounded to that type and adds its result back in fp32
        (oneDNN accumulates each conv in fp32), so rounding does not pile up over the blocks.
        The input conv stays fp32: its features also feed the global skip, straight to the
        output."""
        net, dtype = self.net, self.block_dtype
        assert dtype is not None
        lr = lr.contiguous(memory_format=torch.channels_last)
        feat = _conv(lr, _buffer(net, "w0"), _buffer(net, "b0"), fused_ops(lr.dtype))
        fused = fused_ops(dtype)
        rl = net.residual_lr
        x = feat
        for block in range(self.blocks):
            (w1, b1), (w2, b2) = self._block_weights[2 * block:2 * block + 2]
            res = _conv(x.to(dtype), w1, b1, fused, relu=True)
            res = _conv(res, w2, b2, fused)
            # the first block must not write into ``feat`` (the global skip)
            x = torch.add(x, res, alpha=rl) if x is feat else x.add_(res, alpha=rl)
            del res
            step()
        return feat + x if rl == 1 else x.add_(feat, alpha=rl)

    def tail(self, features: Tensor) -> Tensor:
        return self.net.tail(features)


def _buffer(net: FoldedSRNet, name: str) -> Tensor:
    value = getattr(net, name)
    assert isinstance(value, Tensor)
    return value


_FUSED_BY_DTYPE: dict[torch.dtype, bool] = {}


def fused_ops(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused conv+ReLU kernel runs on the CPU in ``dtype`` (checked once)."""
    if dtype not in _FUSED_BY_DTYPE:
        ok = False
        if fused_cpu_ops_available():
            try:
                x = torch.ones(1, 2, 4, 4, dtype=dtype).contiguous(memory_format=torch.channels_last)
                w = torch.ones(2, 2, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    y = _conv(x, w, None, True, relu=True)
                ok = bool(torch.equal(y.float(), F.conv2d(x.float(), w.float(), padding=1)))
            except Exception:  # this build has no such kernel: plain convolutions instead
                ok = False
        _FUSED_BY_DTYPE[dtype] = ok
    return _FUSED_BY_DTYPE[dtype]


def _conv(x: Tensor, w: Tensor, b: Tensor | None, fused: bool, relu: bool = False) -> Tensor:
    """3x3 conv (padding 1), optionally with ReLU, channels_last in and out on the CPU."""
    if fused:
        one = [1, 1]
        return torch.ops.mkldnn._convolution_pointwise(
            x, w, b, one, one, one, 1, "relu" if relu else "none", [], "")
    y = F.conv2d(x, w, b, padding=1)
    return F.relu(y, inplace=True) if relu else y


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("upscaling cancelled")


def _out_dtype(out_dtype: type[np.generic] | np.dtype) -> np.dtype:
    try:
        dtype = np.dtype(out_dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype not in [np.dtype(d) for d in OUT_DTYPES]:
        raise ConfigError(f"out_dtype must be float32 or uint8, got {out_dtype!r}")
    return dtype


# Input rows of context each side of a bicubic band: the kernel reaches 2 rows out.
_BICUBIC_MARGIN = 3


def bicubic(
    pixels: np.ndarray, scale: int, *, out_dtype: type[np.generic] | np.dtype = np.float32
) -> np.ndarray:
    """Plain bicubic upscaling ([H, W] or [H, W, C] float), clamped to 0..255.

    ``out_dtype=np.uint8`` rounds half to even and clips, in row bands with a margin of
    context, so only a band of floats is held; the values equal ``np.rint`` of the float
    result exactly (OpenCV resamples a band exactly as it would the whole image).
    """
    dtype = _out_dtype(out_dtype)
    height, width = pixels.shape[:2]
    src = np.ascontiguousarray(pixels, dtype=np.float32)
    if dtype == np.float32:
        out = cv2.resize(src, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)
        return np.clip(out, 0.0, 255.0, out=out)
    out = np.empty((height * scale, width * scale, *src.shape[2:]), np.uint8)
    per_row = width * scale * scale * int(np.prod(src.shape[2:], dtype=np.int64))
    rows = max(1, _BAND_SAMPLES // max(1, per_row))
    m = _BICUBIC_MARGIN
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        a0, a1 = max(0, y0 - m), min(height, y1 + m)
        band = cv2.resize(src[a0:a1], (width * scale, (a1 - a0) * scale),
                          interpolation=cv2.INTER_CUBIC)
        band = band[(y0 - a0) * scale:(y1 - a0) * scale]
        np.rint(band, out=band)
        out[y0 * scale:y1 * scale] = np.clip(band, 0.0, 255.0, out=band)
    return out


def upscale_image(
    image: Image,
    upscaler: Upscaler,
    support: SupportSet | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    out_dtype: type[np.generic] | np.dtype = np.float32,
    damage: DamageKnobs | None = None,
) -> Image:
    """Upscale a decoded photo: pixels by ``upscaler``, alpha bicubically, metadata carried.
    ``damage`` (blur sigma, noise sigma[, JPEG quality]) steers CMDSR by the damage knobs instead of
    ``support`` (see ``Upscaler.upscale``).

    ``out_dtype=np.uint8`` (for an 8-bit file) gives uint8 pixels and a uint8 alpha, both
    rounded half to even and clipped to 0..255, at a quarter of the float result's memory.
    """
    pixels = upscaler.upscale(image.pixels, support, progress=progress, cancel=cancel,
                              out_dtype=out_dtype, damage=damage)
    alpha = None if image.alpha is None else bicubic(image.alpha, upscaler.scale,
                                                      out_dtype=out_dtype)
    return replace(image, pixels=pixels, alpha=alpha)
