"""The app's long-running work as plain functions ``fn(..., progress, cancel)``: load a model,
preview the support patches, upscale one photo with a method, run a batch.

Qt-free, so they are tested directly and run in a worker thread by
:class:`cmdsr_app.workers.JobRunner`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import engine  # its names load on first use: the window starts without PyTorch
from cmdsr_app.damage_knobs import PREVIEW_MARGIN, Box, Damage, KnobRange, knob_range_of
from cmdsr_app.state import SizeChoice, output_name, short_names

if TYPE_CHECKING:
    from engine import CMDSR, Image, SupportSet, Upscaler

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
BatchProgressFn = Callable[[int, int, int, int], None]  # image index, image count, done, total

PATCH_SIZE = 32


@dataclass(frozen=True)
class ModelInfo:
    """What the settings panel says about a checkpoint."""

    path: Path
    scale: int
    support_size: int
    conditioned: bool
    # It reads blur and noise (a damage readout): its condition tells damage apart, so the
    # damage map and Adapt: Per region mean something with it.
    has_readout: bool = False
    # The range its damage knobs offer (its condition map's), or None: no knobs.
    knobs: KnobRange | None = None

    def describe(self) -> str:
        kind = "CMDSR" if self.conditioned else "conditioning off (baseline)"
        return f"x{self.scale} · {kind} · {self.support_size} support patches"


class ModelCache:
    """Loaded models by (path, device, file time), so repeated runs skip the load; thread-safe."""

    def __init__(self, capacity: int = 3) -> None:
        self._models: OrderedDict[tuple[str, str, float], CMDSR] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def get(self, path: str | Path, device: str = "cpu", look: float = 0.0) -> CMDSR:
        """The model file at ``path``; with ``look`` > 0 its weights blended with the shipped
        crisp model's (``engine.load_look_model``), cached per look."""
        path = Path(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise engine.CheckpointError(f"{path}: model file not found") from None
        problem = not_a_checkpoint(path)
        if problem is not None:
            raise engine.CheckpointError(f"{path}: {problem}")
        key = (str(path.resolve()), str(device), mtime)
        crisp = engine.crisp_model_path()
        if look > 0:  # another look is another network
            key = (f"{key[0]}|look={look:g}|{crisp}", key[1],
                   mtime + (crisp.stat().st_mtime if crisp.exists() else 0.0))
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        model = (engine.load_look_model(path, look, crisp, device=device) if look > 0
                 else engine.load_model(path, device))
        with self._lock:
            self._models[key] = model
            while len(self._models) > self._capacity:
                self._models.popitem(last=False)
        return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


def not_a_checkpoint(path: Path) -> str | None:
    """Why a file cannot be a PyTorch model at all (text, an image...), read from its first
    bytes; None for a zip archive or a pickle, which the engine then checks in full."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return None  # the engine reports unreadable files
    if not head or head.startswith(b"PK") or head[:1] == b"\x80":
        return None
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "not a PyTorch model file (it holds text)"
    return "not a PyTorch model file"


def inspect_model(path: str | Path, cache: ModelCache) -> ModelInfo:
    """Load a checkpoint (CheckpointError with the reason if it is unusable) and describe it."""
    from engine.damage_head import damage_head_of

    model = cache.get(path, "cpu")
    readout = bool(model.conditioned) and damage_head_of(model) is not None
    return ModelInfo(Path(path), int(model.scale), int(model.support_size),
                     bool(model.conditioned), readout, knob_range_of(model))


@dataclass(frozen=True)
class SupportChoice:
    """How the support patches are picked: ``random``, ``auto`` or ``regions``."""

    mode: str = "auto"
    regions: tuple[tuple[int, int, int, int], ...] = ()
    seed: int = 0

    def describe(self) -> str:
        if self.mode == "regions":
            return f"{len(self.regions)} region(s)"
        return self.mode


def choose_support(pixels: np.ndarray, choice: SupportChoice, count: int) -> SupportSet:
    """The engine's SupportSet for a photo; ``regions`` with no regions is a clear error."""
    if choice.mode == "regions" and not choice.regions:
        raise engine.SupportRegionError(
            "Support mode is 'regions' but this image has none: draw at least one rectangle "
            "on the input, or choose Auto or Random."
        )
    return engine.select_support(
        pixels, count=count, size=PATCH_SIZE, mode=choice.mode, regions=choice.regions,
        seed=choice.seed,
    )


def preview_support(
    pixels: np.ndarray, choice: SupportChoice, count: int
) -> list[tuple[int, int, int, int]]:
    """Boxes of the patches the engine would use, for drawing on the input."""
    support = choose_support(pixels, choice, count)
    return [(b.x, b.y, b.w, b.h) for b in support.boxes]


@dataclass(frozen=True)
class RunSettings:
    """What the settings panel chose for a run."""

    model_path: Path | None
    baseline_path: Path | None = None
    device: str = "auto"
    tile: int = 0
    precision: str = "auto"  # bf16 where the CPU runs it natively, else fp32 (as cmdsr upscale)
    threads: int = 0  # CPU threads; 0 = PyTorch's default (one per core)
    adapt: str = "global"  # "local": each part conditioned on its own damage (per region)
    # (blur sigma, noise sigma) set on the damage knobs: CMDSR is steered by these numbers
    # instead of the support patches (whole photo; Adapt does not apply). None: read the photo.
    damage: tuple[float, float] | None = None
    # the Look: 0 = faithful (the shipped model), 1 = its crisp twin, between = the two blended
    look: float = 0.0


@dataclass
class UpscaleOutcome:
    """One method's result for one photo."""

    method: str  # "cmdsr", "bicubic", "baseline" or "cmdsr_alt"
    image: Image  # at output size, metadata carried over
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""
    adapt: str = "global"  # the path that ran: "local" for a per-region CMDSR run
    damage: tuple[float, float] | None = None  # the knob values that steered it, if any


def make_upscaler(method: str, settings: RunSettings, cache: ModelCache) -> Upscaler:
    """An engine Upscaler for a comparison method (``cmdsr_alt`` is CMDSR too)."""
    device = str(engine.resolve_device(settings.device))
    tile = engine.TileConfig(tile=settings.tile)
    if settings.threads > 0:
        import torch  # loaded by now: the engine is

        torch.set_num_threads(settings.threads)
    if method == "bicubic":
        scale = None
        if settings.model_path is not None:
            try:
                scale = int(cache.get(settings.model_path, device).scale)
            except engine.CheckpointError:
                scale = None  # bicubic works without a usable model: use x4
        return engine.Upscaler(None, method="bicubic", device=device, tile=tile, scale=scale or 4)
    if method == "baseline":
        if settings.baseline_path is None:
            raise engine.CheckpointError("No baseline model (conditioning off) is available.")
        model = cache.get(settings.baseline_path, device)
        return engine.Upscaler(model, method="baseline", device=device, precision=settings.precision, tile=tile)
    if settings.model_path is None:
        raise engine.CheckpointError(
            "No model chosen and the shipped default model is missing: choose a checkpoint "
            "in the Model box."
        )
    model = cache.get(settings.model_path, device, settings.look)
    return engine.Upscaler(model, method="cmdsr", device=device, precision=settings.precision, tile=tile)


def upscale_with(
    image: Image,
    method: str,
    settings: RunSettings,
    choice: SupportChoice,
    cache: ModelCache,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> UpscaleOutcome:
    """Upscale ``image`` with one comparison method, reporting per tile."""
    start = time.perf_counter()
    upscaler = make_upscaler(method, settings, cache)
    support = None
    boxes: list[tuple[int, int, int, int]] = []
    damage = settings.damage if upscaler.method == "cmdsr" else None
    adapt = "local" if settings.adapt == "local" and upscaler.method == "cmdsr" else "global"
    if damage is not None:
        adapt = "global"  # one set of numbers for the whole photo
        result = engine.upscale_image(image, upscaler, None, progress=progress, cancel=cancel,
                                      damage=damage)
    elif adapt == "local":
        # each cell draws its own patches (too many to draw as boxes), except inside regions
        result = upscale_local(image, upscaler, choice, progress, cancel)
    else:
        if upscaler.support_size is not None:
            support = choose_support(image.pixels, choice, upscaler.support_size)
            boxes = [(b.x, b.y, b.w, b.h) for b in support.boxes]
        result = engine.upscale_image(image, upscaler, support, progress=progress, cancel=cancel)
    if result.grayscale:
        # Shown and compared as it will be saved: gray, without the network's faint colour cast.
        from engine.io.imageio import as_gray_rgb

        result = replace(result, pixels=as_gray_rgb(result.pixels))
    seconds = time.perf_counter() - start
    log.info("%s: %s x%d%s in %.2f s on %s", getattr(image, "source", None) or "image", method,
             upscaler.scale, " per region" if adapt == "local" else "", seconds, upscaler.device)
    return UpscaleOutcome(method, result, boxes, seconds, str(upscaler.device), adapt, damage)


def upscale_local(
    image: Image,
    upscaler: Upscaler,
    choice: SupportChoice,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    out_dtype: type[np.generic] = np.float32,
) -> Image:
    """``Adapt: per region`` (``cmdsr upscale --adapt local``): every 64-pixel cell is
    conditioned on random patches around it (Auto and Random both mean that here), and the
    cells inside one of the user's regions on that region's patches."""
    regions = choice.regions if choice.mode == "regions" else ()
    return engine.upscale_image_local(image, upscaler, regions=regions, seed=choice.seed,
                                      progress=progress, cancel=cancel, out_dtype=out_dtype)


@dataclass(frozen=True)
class BatchOutput:
    """Where and how a batch writes its results."""

    folder: Path
    pattern: str = "{stem}_{size}"
    fmt: str = "png"
    quality: int = 95
    bit_depth: int | None = None
    overwrite: bool = False
    size: SizeChoice = SizeChoice()


@dataclass
class BatchItem:
    path: Path
    output: Path | None = None
    error: str | None = None
    seconds: float = 0.0
    # Its output was already there (an earlier or interrupted batch) and was left as it is.
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None


@dataclass
class BatchReport:
    items: list[BatchItem] = field(default_factory=list)
    cancelled: bool = False

    @property
    def failures(self) -> list[BatchItem]:
        return [item for item in self.items if not item.ok]

    @property
    def skipped(self) -> list[BatchItem]:
        return [item for item in self.items if item.skipped]

    def summary(self) -> str:
        done = sum(1 for item in self.items if item.ok and not item.skipped)
        text = f"{done} of {len(self.items)} image(s) upscaled"
        if self.skipped:
            text += f", {len(self.skipped)} already done (skipped)"
        if self.failures:
            text += f", {len(self.failures)} failed"
        return text


def batch_targets(paths: Sequence[Path], output: BatchOutput, scale: int) -> list[Path]:
    """The output file of each input, in queue order (``{index}`` is 1-based); ``scale`` is
    the model's."""
    size = output.size
    return [
        output.folder / output_name(output.pattern, Path(path), scale=size.name_scale(scale),
                                    method="cmdsr", ext=engine.format_suffix(output.fmt),
                                    index=index + 1, size=size.label())
        for index, path in enumerate(paths)
    ]


def batch_clash(paths: Sequence[Path], output: BatchOutput, scale: int) -> str | None:
    """Why the batch cannot write these outputs, or None: an output would be one of the
    input photos (refused whatever the options: originals are never touched), or two inputs
    would write the same file (each replacing or refusing the other)."""
    targets = batch_targets(paths, output, scale)
    originals = {Path(p).resolve(): Path(p) for p in paths}
    for target in targets:
        original = originals.get(target.resolve())
        if original is not None:
            return (f"{target} would write over the original photo {original.name}. Choose "
                    "another output folder, or a file name that differs from the photo's "
                    "(such as {stem}_{size}): originals are never replaced.")
    first_source: dict[Path, Path] = {}
    for path, target in zip(paths, targets, strict=True):
        earlier = first_source.setdefault(target, Path(path))
        if earlier == Path(path):
            continue
        here = Path(path)
        first, second = short_names([earlier, here])
        if "{stem}" not in output.pattern:
            advice = "add {stem} or {index} to it"
        elif earlier.parent.name != here.parent.name:
            advice = (f"add {{folder}} (the photo's folder name), as in "
                      f"'{{folder}}_{output.pattern}'")
        else:
            advice = "add {index} (the position in the queue) to it"
        return (f"The file name {output.pattern!r} gives {target.name} for both {first} and "
                f"{second}: {advice}, so each image gets its own file.")
    return None


def choice_for(regions: tuple[tuple[int, int, int, int], ...], default: SupportChoice) -> SupportChoice:
    """An image's own regions, else the default choice (``regions`` without any: ``auto``)."""
    if regions:
        return SupportChoice("regions", regions, default.seed)
    if default.mode == "regions":
        return SupportChoice("auto", (), default.seed)
    return default


def _upscale_one(path: Path, target: Path, upscaler: Upscaler, output: BatchOutput,
                 choice: SupportChoice, progress: ProgressFn,
                 cancel: threading.Event | None, adapt: str = "global",
                 overwrite: bool = False, damage: tuple[float, float] | None = None) -> Path:
    image = engine.read_image(path)
    width, height = output_dimensions(output.size, image.width, image.height, upscaler.scale)
    assert upscaler.support_size is not None  # make_upscaler("cmdsr") needs support
    # an 8-bit file needs no float result: a quarter of the memory for big photos
    depth = engine.output_bit_depth(output.fmt, image.bit_depth, output.bit_depth)
    out_dtype = np.uint8 if depth == 8 else np.float32
    if damage is not None:
        result = engine.upscale_image(image, upscaler, None, progress=progress, cancel=cancel,
                                      out_dtype=out_dtype, damage=damage)
    elif adapt == "local":
        result = upscale_local(image, upscaler, choice, progress, cancel, out_dtype)
    else:
        support = choose_support(image.pixels, choice, upscaler.support_size)
        result = engine.upscale_image(image, upscaler, support, progress=progress,
                                      cancel=cancel, out_dtype=out_dtype)
    result = resize_to(result, width, height)
    return engine.write_image(result, target, fmt=output.fmt, quality=output.quality,
                              bit_depth=output.bit_depth, overwrite=overwrite)


def output_dimensions(size: SizeChoice, width: int, height: int, model_scale: int
                      ) -> tuple[int, int]:
    """The saved size of a ``width`` x ``height`` photo (ValueError if the model cannot give
    it: it is only ever shrunk from the model's scale, never enlarged)."""
    from engine.io.imageio import OutputSize

    kind = {size.kind: size.value}
    return OutputSize(**kind).dimensions(width, height, model_scale)


def resize_to(image: Image, width: int, height: int) -> Image:
    """A result at the model's scale shrunk to the output size by area-averaging."""
    from engine.io.imageio import resize_image

    return resize_image(image, width, height)


def run_batch(
    paths: Sequence[Path],
    settings: RunSettings,
    default_choice: SupportChoice,
    regions_by_path: dict[Path, tuple[tuple[int, int, int, int], ...]],
    output: BatchOutput,
    cache: ModelCache,
    progress: BatchProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_item: Callable[[int, BatchItem], None] | None = None,
    replace_outputs: frozenset[Path] = frozenset(),
    damage_by_path: dict[Path, tuple[float, float]] | None = None,
) -> BatchReport:
    """Upscale every path with the current settings; a failing image is recorded and the batch
    goes on. An image with its own regions uses them; the others use ``default_choice`` (with
    ``regions`` falling back to ``auto``, since they have none). ``settings.adapt`` "local"
    upscales each image per region, as a single run does. An existing output is skipped
    unless ``output.overwrite`` is set or it is in ``replace_outputs`` (made with another
    model or settings, and the user chose to replace it); an output that is an input is
    refused before anything is written. ``damage_by_path``: the photos whose damage knobs
    the user set, steered by those numbers; the others read their own damage."""
    report = BatchReport()
    upscaler = make_upscaler("cmdsr", settings, cache)  # a bad model stops the batch at once
    clash = batch_clash(paths, output, upscaler.scale)
    if clash is not None:
        raise engine.CmdsrError(clash)
    targets = batch_targets(paths, output, upscaler.scale)
    count = len(paths)
    for index, path in enumerate(paths):
        if cancel is not None and cancel.is_set():
            raise engine.CancelledError("batch cancelled")
        item = BatchItem(Path(path))
        start = time.perf_counter()

        def tile_progress(done: int, total: int, _i: int = index) -> None:
            if progress:
                progress(_i, count, done, total)

        target = targets[index]
        overwrite = output.overwrite or target in replace_outputs
        if target.exists() and not overwrite:
            # Finishing an interrupted batch: what is done stays done (as
            # ``cmdsr upscale --skip-existing``), decided before any work.
            item.output, item.skipped = target, True
            log.info("batch: %s skipped: %s already exists", path, target)
        else:
            try:
                item.output = _upscale_one(Path(path), target, upscaler, output,
                                           choice_for(regions_by_path.get(Path(path), ()),
                                                       default_choice),
                                           tile_progress, cancel, settings.adapt, overwrite,
                                           (damage_by_path or {}).get(Path(path)))
            except engine.CancelledError:
                raise
            except (engine.CmdsrError, ValueError, OSError, MemoryError) as exc:
                item.error = str(exc) or type(exc).__name__
                log.warning("batch: %s failed: %s", path, item.error)
        item.seconds = time.perf_counter() - start
        report.items.append(item)
        if on_item is not None:
            on_item(index, item)
        if progress:
            progress(index + 1, count, 0, 0)
    return report


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two same-height [H, W, 3] arrays next to each other with a dark gap between."""
    height = max(left.shape[0], right.shape[0])

    def pad(a: np.ndarray) -> np.ndarray:
        if a.shape[0] == height:
            return a
        out = np.zeros((height, a.shape[1], 3), np.float32)
        out[: a.shape[0]] = a
        return out

    spacer = np.full((height, gap, 3), 24.0, np.float32)
    return np.concatenate([pad(left), spacer, pad(right)], axis=1).astype(np.float32)


def nearest_upscale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Each input pixel repeated ``scale`` x ``scale`` (the "Input (nearest)" source)."""
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def preview_damage(pixels: np.ndarray, box: Box, damage: Damage | None, settings: RunSettings,
                   cache: ModelCache, cancel: threading.Event | None = None) -> np.ndarray:
    """``box`` of the photo upscaled by CMDSR steered by ``damage`` (None: read from the part
    itself, for a model without knobs) at the settings' look: [h*s, w*s, 3] float32.
    A margin of context is upscaled with it and cut off, so the preview matches a full run
    away from the photo's own edges. ``ConfigError`` (with the range) for values the model's
    map was not fitted on."""
    x, y, w, h = box
    m = PREVIEW_MARGIN
    top, left = max(0, y - m), max(0, x - m)
    bottom, right = min(pixels.shape[0], y + h + m), min(pixels.shape[1], x + w + m)
    upscaler = make_upscaler("cmdsr", replace(settings, damage=damage), cache)
    out = upscaler.upscale(pixels[top:bottom, left:right], None, cancel=cancel, damage=damage)
    s = upscaler.scale
    return out[(y - top) * s:(y - top + h) * s, (x - left) * s:(x - left + w) * s]


def engine_region_problems(regions: Any, image_shape: tuple[int, int], size: int) -> list[str | None]:
    from engine.inference.support import validate_regions

    return validate_regions([r.as_tuple() for r in regions], image_shape, size)
