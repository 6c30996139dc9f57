"""Local adaptation: each part of a photo conditioned on its own neighbourhood.

Global CMDSR reads one condition from a support set spread over the whole photo and runs one
folded network everywhere. When the damage differs across the photo (a sharp subject on a
soft background, a noisy shadow), one condition fits no part well. Here the photo is cut into
a grid of *cells*; each cell's condition comes from support patches drawn in a window around
it (or, when the user drew support regions, from the region that covers the cell's centre).

The modulations (the per-channel scales the condition sets on each backbone conv) are then
interpolated bilinearly between cell centres to every pixel, so they change smoothly across
the photo and no seam can appear between cells: a modulated conv applies its scales to its
input channels, and scaling them pixel by pixel is the same operation with a spatially
varying scale. The upsampling tail is not modulated and runs as in global inference.

Memory stays bounded as in tiled inference: the body runs on tiles with a margin of at least
the receptive field (the modulation maps are made per tile, from absolute coordinates, so the
stitched result equals the untiled one), the tail on small pieces. Progress counts cell
batches, blocks and tail pieces; a cancel event is checked between them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import CancelledError, ConfigError, SupportRegionError
from engine.inference.damage import DamageEstimate, estimates_from_conditions, require_head
from engine.inference.support import (
    DEFAULT_PATCH_SIZE,
    Box,
    SupportSet,
    select_support,
    validate_regions,
)
from engine.inference.upscaler import TAIL_RADIUS, Upscaler, bicubic, receptive_radius
from engine.io.imageio import Image
from engine.model import CMDSR, EqualConv2d, FoldedSRNet

log = logging.getLogger(__name__)

ADAPT_MODES = ("global", "local")
# Side of a cell in input pixels: small enough to follow damage that changes across a photo,
# large enough that its window holds distinct support patches.
DEFAULT_CELL = 64
MIN_CELL = 16
# Conditions computed per ConditionNet batch (one progress unit each).
CELL_BATCH = 16
# The body here keeps a modulation map beside its feature maps: tiles a little smaller than
# global inference's keep the same memory.
TILE_SHARE = 0.8

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class CellGrid:
    """Cells of a photo: ``rows`` x ``cols`` boxes (row-major) and their centres."""

    boxes: list[Box]
    rows: int
    cols: int
    centres_y: np.ndarray  # [rows] in pixel units (a pixel's centre is y + 0.5)
    centres_x: np.ndarray  # [cols]


def _spans(length: int, tile: int) -> list[tuple[int, int]]:
    n = max(1, math.ceil(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1]) for i in range(n)]


def plan_cells(height: int, width: int, cell: int = DEFAULT_CELL) -> CellGrid:
    """Near-equal cells of at most ``cell`` pixels covering a ``width`` x ``height`` photo."""
    if not isinstance(cell, int) or isinstance(cell, bool) or cell < MIN_CELL:
        raise ConfigError(f"cell must be an integer of at least {MIN_CELL} pixels, got {cell!r}")
    ys, xs = _spans(height, cell), _spans(width, cell)
    boxes = [Box(x0, y0, x1 - x0, y1 - y0) for y0, y1 in ys for x0, x1 in xs]
    return CellGrid(boxes, len(ys), len(xs),
                    np.array([(a + b) / 2 for a, b in ys], dtype=np.float64),
                    np.array([(a + b) / 2 for a, b in xs], dtype=np.float64))


def _window(box: Box, side: int, height: int, width: int) -> Box:
    """A square of ``side`` (at least the cell) centred on ``box``, shifted inside the photo."""
    w, h = min(width, max(side, box.w)), min(height, max(side, box.h))
    x = min(max(0, box.x + box.w // 2 - w // 2), width - w)
    y = min(max(0, box.y + box.h // 2 - h // 2), height - h)
    return Box(x, y, w, h)


def cell_supports(
    pixels: np.ndarray,
    grid: CellGrid,
    count: int,
    *,
    regions: Iterable[Box | Sequence[int]] = (),
    seed: int = 0,
    size: int = DEFAULT_PATCH_SIZE,
) -> list[SupportSet]:
    """One support set per cell: inside the user's region covering the cell's centre (the
    first one listed wins; every cell of a region gets the same patches), else random
    patches in a window of at least two patches' side around the cell."""
    height, width = pixels.shape[:2]
    boxes = [r if isinstance(r, Box) else Box(*(int(v) for v in r)) for r in regions]
    for i, (box, reason) in enumerate(zip(boxes, validate_regions(boxes, (height, width), size),
                                          strict=True)):
        if reason is not None:
            raise SupportRegionError(f"support region {i + 1} (x={box.x}, y={box.y}, w={box.w}, "
                                     f"h={box.h}) {reason}")
    by_region: dict[int, SupportSet] = {}
    out: list[SupportSet] = []
    for index, cell in enumerate(grid.boxes):
        cy, cx = cell.y + cell.h / 2, cell.x + cell.w / 2
        covering = next((i for i, r in enumerate(boxes)
                         if r.x <= cx < r.x + r.w and r.y <= cy < r.y + r.h), None)
        if covering is not None:
            if covering not in by_region:
                by_region[covering] = select_support(pixels, count=count, size=size,
                                                     mode="regions", regions=[boxes[covering]],
                                                     seed=seed)
            out.append(by_region[covering])
            continue
        win = _window(cell, 2 * size, height, width)
        crop = pixels[win.y:win.y + win.h, win.x:win.x + win.w]
        local = select_support(crop, count=count, size=size, mode="random",
                               seed=seed * 1_000_003 + index)
        boxes_abs = [Box(b.x + win.x, b.y + win.y, b.w, b.h) for b in local.boxes]
        out.append(SupportSet(local.patches, boxes_abs, "local"))
    return out


def cell_conditions(
    model: CMDSR,
    supports: Sequence[SupportSet],
    step: Callable[[], None] | None = None,
) -> Tensor:
    """Condition vectors [cells, cond] of the cells' support sets, in batches."""
    if not model.conditioned:
        raise ConfigError("local adaptation needs a conditioned CMDSR model")
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for start in range(0, len(supports), CELL_BATCH):
            part = supports[start:start + CELL_BATCH]
            batch = np.stack([s.patches for s in part]).astype(np.float32)
            tensor = torch.from_numpy(batch).permute(0, 1, 4, 2, 3).to(device)
            out.append(model.condition(tensor).float())
            if step is not None:
                step()
    return torch.cat(out)


def _interp_weights(positions: np.ndarray, centres: np.ndarray) -> Tensor:
    """[len(positions), len(centres)] bilinear (tent) weights of pixel centres between cell
    centres, held constant beyond the first and last centre; each row sums to 1."""
    n = len(centres)
    weights = np.zeros((len(positions), n), dtype=np.float32)
    if n == 1:
        weights[:, 0] = 1
        return torch.from_numpy(weights)
    t = np.interp(positions, centres, np.arange(n, dtype=np.float64))
    lo = np.minimum(np.floor(t).astype(np.int64), n - 2)
    frac = (t - lo).astype(np.float32)
    rows = np.arange(len(positions))
    weights[rows, lo] = 1 - frac
    weights[rows, lo + 1] += frac
    return torch.from_numpy(weights)


@dataclass
class DamageMap:
    """Per-cell damage estimates of a photo (for an overlay): ``estimates[i]`` belongs to
    ``boxes[i]``, row-major over ``rows`` x ``cols`` cells."""

    boxes: list[Box]
    estimates: list[DamageEstimate]
    rows: int
    cols: int


def damage_map(
    pixels: np.ndarray,
    model: CMDSR,
    *,
    cell: int = DEFAULT_CELL,
    regions: Iterable[Box | Sequence[int]] = (),
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> DamageMap:
    """What the model reads in each cell of the photo (the conditions local adaptation uses).
    ``NoDamageReadoutError`` if the model has no damage head. Progress counts condition
    batches of ``CELL_BATCH`` cells; ``CancelledError`` between them once ``cancel`` is set
    (a big photo has thousands of cells: an overlay in a GUI must be able to stop)."""
    head = require_head(model)
    arr = np.ascontiguousarray(np.asarray(pixels), dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(f"expected [H, W, 3] pixels, got {tuple(arr.shape)}")
    grid = plan_cells(arr.shape[0], arr.shape[1], cell)
    supports = cell_supports(arr, grid, model.support_size, regions=regions, seed=seed)
    total, done = math.ceil(len(supports) / CELL_BATCH), 0

    def step() -> None:
        nonlocal done
        if cancel is not None and cancel.is_set():
            raise CancelledError("damage map cancelled")
        done += 1
        if progress:
            progress(done, total)

    if cancel is not None and cancel.is_set():
        raise CancelledError("damage map cancelled")
    conds = cell_conditions(model, supports, step)
    return DamageMap(grid.boxes, estimates_from_conditions(head, conds), grid.rows, grid.cols)


class _LocalBody:
    """The BaseNet's body with per-pixel modulations interpolated from a cell grid."""

    def __init__(self, model: CMDSR, conditions: Tensor, grid: CellGrid, dtype: torch.dtype) -> None:
        net = model.sr_net
        assert net.modulations is not None
        device = next(model.parameters()).device
        with torch.inference_mode():
            mods = net.modulations(conditions.to(device))  # [n, cells, C]
        n, _cells, c = mods.shape
        # [n, C, rows, cols]: one small map per modulated conv
        self.mods = mods.permute(0, 2, 1).reshape(n, c, grid.rows, grid.cols).to(dtype)
        self.grid = grid
        self.net = net
        self.dtype = dtype
        self.residual_lr = net.residual_lr
        self.blocks = len(net.backbone)

    def _map(self, j: int, wy: Tensor, wx: Tensor) -> Tensor:
        return torch.einsum("ya,cab,xb->cyx", wy, self.mods[j], wx).unsqueeze(0)

    def __call__(self, piece: Tensor, origin: tuple[int, int], step: Callable[[], None]) -> Tensor:
        y0, x0 = origin
        h, w = piece.shape[-2:]
        dev = piece.device
        wy = _interp_weights(np.arange(y0, y0 + h) + 0.5, self.grid.centres_y).to(dev, self.dtype)
        wx = _interp_weights(np.arange(x0, x0 + w) + 0.5, self.grid.centres_x).to(dev, self.dtype)
        net = self.net
        x = F.conv2d(piece, net.input_conv.effective_weight().to(self.dtype),
                     net.input_conv.bias.to(self.dtype), padding=1)
        feat = x
        for i, block in enumerate(net.backbone):
            c1, c2 = cast(EqualConv2d, block.conv1), cast(EqualConv2d, block.conv2)
            res = F.conv2d(x * self._map(2 * i, wy, wx), c1.effective_weight().to(self.dtype),
                           c1.bias.to(self.dtype), padding=1)
            res = F.relu(res, inplace=True)
            res = F.conv2d(res * self._map(2 * i + 1, wy, wx),
                           c2.effective_weight().to(self.dtype), c2.bias.to(self.dtype), padding=1)
            x = x + res * self.residual_lr
            del res
            step()
        return feat * self.residual_lr + x


def upscale_local(
    upscaler: Upscaler,
    pixels: np.ndarray,
    *,
    regions: Iterable[Box | Sequence[int]] = (),
    cell: int = DEFAULT_CELL,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    out_dtype: type[np.generic] | np.dtype = np.float32,
) -> np.ndarray:
    """[H, W, 3] float 0..255 -> [H*s, W*s, 3] with each cell conditioned on its own
    neighbourhood (or the user's region covering it). ``upscaler`` must run ``cmdsr``; its
    device, precision and tiling are used. ``out_dtype=np.uint8`` rounds half to even and
    clips piece by piece, as ``Upscaler.upscale`` does. Raises ``CancelledError`` between
    steps once ``cancel`` is set."""
    if upscaler.method != "cmdsr" or upscaler.model is None:
        raise ConfigError("local adaptation needs method 'cmdsr' (a conditioned model)")
    dtype = np.dtype(out_dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.uint8)):
        raise ConfigError(f"out_dtype must be float32 or uint8, got {out_dtype!r}")
    arr = np.asarray(pixels)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ConfigError(f"expected [H, W, 3] pixels, got {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    model = upscaler.model
    height, width = arr.shape[:2]
    s = upscaler.scale
    pad = max(upscaler.overlap, receptive_radius(model))
    grid = plan_cells(height, width, cell)
    supports = cell_supports(arr, grid, model.support_size, regions=regions, seed=seed)
    tile = upscaler.tile.tile or max(32, int(upscaler.choose_tile(height, width) * TILE_SHARE))
    tail_tile = upscaler.choose_tail_tile(tile)
    tiles = [(y0, y1, x0, x1) for y0, y1 in _spans(height, tile) for x0, x1 in _spans(width, tile)]
    blocks = model.config.blocks
    total = math.ceil(len(supports) / CELL_BATCH) + sum(
        blocks + len(_spans(y1 - y0, tail_tile)) * len(_spans(x1 - x0, tail_tile))
        for y0, y1, x0, x1 in tiles)
    done = 0

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("upscaling cancelled")

    def step() -> None:
        nonlocal done
        check()
        done += 1
        if progress:
            progress(done, total)

    check()
    if progress:
        progress(0, total)
    log.debug("local adaptation: %d x %d cells of <= %d px, %d tile(s) of %d", grid.rows,
              grid.cols, cell, len(tiles), tile)
    out = np.empty((height * s, width * s, 3), dtype)
    image = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
    # Reduced precision pays on GPUs; on a CPU this path runs plain fp32 convolutions.
    work = torch.float32 if upscaler.device.type == "cpu" else upscaler.dtype
    with torch.inference_mode():
        conditions = cell_conditions(model, supports, step)
        body = _LocalBody(model, conditions, grid, work)
        # the tail is not modulated: any cell's folded network has the same one
        tail: FoldedSRNet = model.fold(torch.from_numpy(supports[0].patches).permute(0, 3, 1, 2)
                                       .unsqueeze(0).to(upscaler.device)).to(work)
        r = TAIL_RADIUS
        for y0, y1, x0, x1 in tiles:
            check()
            py0, py1 = max(0, y0 - pad), min(height, y1 + pad)
            px0, px1 = max(0, x0 - pad), min(width, x1 + pad)
            piece = image[:, :, py0:py1, px0:px1].to(upscaler.device, work)
            features = body(piece, (py0, px0), step)
            del piece
            for sy0, sy1 in _spans(y1 - y0, tail_tile):
                for sx0, sx1 in _spans(x1 - x0, tail_tile):
                    ay0, ay1, ax0, ax1 = y0 + sy0, y0 + sy1, x0 + sx0, x0 + sx1
                    fy0, fy1 = max(py0, ay0 - r), min(py1, ay1 + r)
                    fx0, fx1 = max(px0, ax0 - r), min(px1, ax1 + r)
                    result = tail.tail(features[:, :, fy0 - py0:fy1 - py0, fx0 - px0:fx1 - px0])
                    values = result[0, :, (ay0 - fy0) * s:(ay1 - fy0) * s,
                                    (ax0 - fx0) * s:(ax1 - fx0) * s].float()
                    if dtype == np.uint8:
                        values = values.round().clamp_(0.0, 255.0).to(torch.uint8)
                    out[ay0 * s:ay1 * s, ax0 * s:ax1 * s] = values.permute(1, 2, 0).cpu().numpy()
                    del result, values
                    step()
            del features
    if dtype == np.float32:
        np.clip(out, 0.0, 255.0, out=out)
    return out


def upscale_image_local(
    image: Image,
    upscaler: Upscaler,
    *,
    regions: Iterable[Box | Sequence[int]] = (),
    cell: int = DEFAULT_CELL,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    out_dtype: type[np.generic] | np.dtype = np.float32,
) -> Image:
    """``upscale_local`` for a decoded photo: alpha bicubically, metadata carried."""
    pixels = upscale_local(upscaler, image.pixels, regions=regions, cell=cell, seed=seed,
                           progress=progress, cancel=cancel, out_dtype=out_dtype)
    alpha = None if image.alpha is None else bicubic(image.alpha, upscaler.scale,
                                                      out_dtype=out_dtype)
    return replace(image, pixels=pixels, alpha=alpha)
