"""``cmdsr upscale``: super-resolve photos and folders of photos from the terminal.

One bad image never stops a batch: each failure is remembered, the other images are still
processed, and a summary closes the run. Exit codes: 0 all done, 2 usage or input errors,
1 an internal error on some image.
"""

from __future__ import annotations

import argparse
import copy
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from engine.checkpoint import load_model
from engine.cli.main import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE
from engine.cli.upscale_args import FORMAT_CHOICES as _FORMAT_CHOICES
from engine.cli.upscale_args import add_parser as add_upscale_parser
from engine.errors import CmdsrError, ConfigError
from engine.inference.devices import available_devices, resolve_device
from engine.inference.support import Box, select_support
from engine.inference.upscaler import TileConfig, Upscaler, upscale_image
from engine.io.fileio import remove_stale_temps
from engine.io.imageio import (
    SUPPORTED_READ_SUFFIXES,
    SUPPORTED_WRITE_FORMATS,
    OutputSize,
    format_suffix,
    normalise_format,
    output_bit_depth,
    read_image,
    resize_image,
    write_image,
)
from engine.look import check_look, load_look_model
from engine.resources import default_baseline_path, default_model_path

log = logging.getLogger(__name__)

_WRITE_SUFFIXES = tuple(f".{name}" for name in _FORMAT_CHOICES)


def add_parser(subparsers: Any) -> None:
    """The options live in the light ``engine.cli.upscale_args`` (quick ``--help``)."""
    add_upscale_parser(subparsers)


@dataclass
class Job:
    source: Path
    target: Path


@dataclass(frozen=True)
class RunOptions:
    """What every image of one ``cmdsr upscale`` run shares."""

    args: argparse.Namespace
    mode: str  # support: random, auto or regions
    regions: list[Box]
    max_pixels: int
    debug: bool
    size: OutputSize = OutputSize()


@dataclass
class Failure:
    name: str
    message: str
    internal: bool = False


def parse_support(specs: list[str] | None, inputs: list[Path]) -> tuple[str, list[Box]]:
    """``--support`` values -> (mode, regions). Values that are existing files come from a
    command line like ``--support auto photo.jpg``, where argparse took the photo for a
    support value: they are moved back to ``inputs``."""
    modes: list[str] = []
    regions: list[Box] = []
    for spec in specs or []:
        low = spec.strip().lower()
        if low in ("random", "auto"):
            modes.append(low)
        elif "," in spec:
            regions.append(Box.parse(spec))
        elif Path(spec).exists():
            inputs.append(Path(spec))
        else:
            raise ConfigError(f"--support takes random, auto or X,Y,W,H regions, got {spec!r}")
    if regions:
        if modes:
            raise ConfigError("--support: give either random, auto or regions, not both")
        return "regions", regions
    if len(set(modes)) > 1:
        raise ConfigError("--support: give either random or auto, not both")
    return (modes[0] if modes else "random"), []


def _output_format(source: Path, fmt: str | None) -> str:
    if fmt:
        return normalise_format(fmt)
    suffix = source.suffix.lower().lstrip(".")
    try:
        out = normalise_format(suffix)
    except CmdsrError:
        return "png"  # BMP and friends: a lossless format every viewer reads
    return out if out in SUPPORTED_WRITE_FORMATS else "png"


def collect_jobs(
    inputs: list[Path], output: Path, suffix: str, fmt: str | None
) -> tuple[list[Job], list[Failure]]:
    """Expand files and folders into (source, target) jobs; problems become failures, except
    an output that would write over an input photo: that refuses the whole run (ConfigError)
    before anything is written, whatever --overwrite says."""
    jobs: list[Job] = []
    failures: list[Failure] = []
    out_resolved = output.resolve()
    single_file_target = (
        len(inputs) == 1 and inputs[0].is_file()
        and output.suffix.lower() in _WRITE_SUFFIXES and not output.is_dir()
    )
    planned: dict[Path, Path] = {}

    def plan(source: Path, target: Path) -> None:
        key = target.resolve()
        if key in planned:
            failures.append(Failure(str(source), f"has the same output name {target} as "
                                                 f"{planned[key]}"))
        else:
            planned[key] = source
            jobs.append(Job(source, target))

    for item in inputs:
        if item.is_file():
            if single_file_target:
                plan(item, output)
            else:
                ext = format_suffix(_output_format(item, fmt))
                plan(item, output / f"{item.stem}{suffix}{ext}")
        elif item.is_dir():
            if item.resolve() == out_resolved or item.resolve().is_relative_to(out_resolved):
                # Every photo of it would sit in the output folder: results would be written
                # next to (or, without a suffix, over) the originals.
                raise ConfigError(f"{item}: the output folder {output} is this input folder "
                                  "or holds it, so results could write over the photos; "
                                  "choose another -o folder (nothing was written)")
            found = sorted(
                p for p in item.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_READ_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(item).parts)
                and not p.resolve().is_relative_to(out_resolved)  # never re-upscale outputs
            )
            if not found:
                failures.append(Failure(str(item), "folder contains no supported images "
                                                   f"({', '.join(SUPPORTED_READ_SUFFIXES)})"))
            for source in found:
                rel = source.relative_to(item)
                ext = format_suffix(_output_format(source, fmt))
                plan(source, output / rel.parent / f"{source.stem}{suffix}{ext}")
        else:
            failures.append(Failure(str(item), "no such file or folder"))
    refuse_writing_over_inputs(jobs)
    return jobs, failures


def refuse_writing_over_inputs(jobs: list[Job]) -> None:
    """ConfigError naming the photo when a job's output is one of the run's inputs."""
    sources = {job.source.resolve(): job.source for job in jobs}
    for job in jobs:
        original = sources.get(job.target.resolve())
        if original is not None:
            raise ConfigError(f"{original}: the output would write over this input photo; "
                              "choose another -o file or folder, or a --suffix (nothing "
                              "was written)")


def parse_devices(spec: str) -> list[str]:
    """``--devices`` -> device names: ``all`` = every CUDA GPU here, else a comma list whose
    entries are checked like ``--device`` (repeats allowed: two workers share that device)."""
    text = spec.strip().lower()
    if text == "all":
        gpus = [d for d in available_devices() if d.startswith("cuda")]
        if not gpus:
            raise ConfigError("--devices all: no CUDA GPU is available here; use --device cpu")
        return gpus
    names = [part.strip() for part in text.split(",")]
    if not names or any(not n for n in names):
        raise ConfigError(f"--devices takes a comma list such as cuda:0,cuda:1 or 'all', "
                          f"got {spec!r}")
    return [str(resolve_device(n)) for n in names]


def build_upscalers(args: argparse.Namespace) -> list[Upscaler]:
    """One upscaler per ``--devices`` entry (each with its own copy of the model), or the
    single ``--device`` one."""
    devices = parse_devices(args.devices) if getattr(args, "devices", None) else [args.device]
    tile = TileConfig(tile=args.tile, overlap=args.overlap)
    look = check_look(getattr(args, "look", 0.0))
    if look > 0 and args.method != "cmdsr":
        raise ConfigError("--look blends the faithful and the crisp CMDSR model: use it with "
                          "--method cmdsr")
    if args.method == "bicubic":
        model = load_model(args.model) if args.model else None
        return [Upscaler(copy.deepcopy(model), method="bicubic", device=d, tile=tile)
                for d in devices]
    path = args.model
    if path is None:
        path = default_model_path() if args.method == "cmdsr" else default_baseline_path()
        if not path.exists():
            raise CmdsrError(f"no default model shipped at {path}; pass --model")
    crisp = getattr(args, "crisp_model", None)
    model = load_look_model(path, look, crisp) if look > 0 else load_model(path)
    # Upscaler moves its model to its device: each worker needs its own copy
    return [Upscaler(model if len(devices) == 1 else copy.deepcopy(model), method=args.method,
                     device=d, precision=args.precision, tile=tile) for d in devices]


def build_upscaler(args: argparse.Namespace) -> Upscaler:
    return build_upscalers(args)[0]


def output_size(args: argparse.Namespace) -> OutputSize:
    """``--scale`` / ``--width`` / ``--height`` as an OutputSize (ConfigError if unusable)."""
    try:
        return OutputSize(scale=getattr(args, "scale", None), width=getattr(args, "width", None),
                          height=getattr(args, "height", None))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run_upscale(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    quiet = bool(getattr(args, "quiet", False))
    inputs: list[Path] = list(args.inputs)
    mode, regions = parse_support(args.support, inputs)
    if not inputs:
        raise ConfigError("no input images given")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be 1..100, got {args.quality}")
    if args.max_megapixels <= 0:
        raise ConfigError("--max-megapixels must be positive")
    if getattr(args, "adapt", "global") == "local" and (args.method != "cmdsr" or mode == "auto"):
        raise ConfigError("--adapt local needs --method cmdsr and random support or regions "
                          "(each part draws its own patches)")
    size = output_size(args)
    upscalers = build_upscalers(args)
    upscaler = upscalers[0]
    check_damage_knobs(args, upscaler)
    try:
        size.check_model(upscaler.scale)
    except ValueError as exc:
        raise ConfigError(f"--scale: {exc}") from None
    suffix = args.suffix if args.suffix is not None else size.suffix(upscaler.scale)
    jobs, failures = collect_jobs(inputs, args.output, suffix, args.fmt)
    skipped = 0
    if getattr(args, "skip_existing", False):
        todo = [job for job in jobs if not job.target.exists()]
        skipped = len(jobs) - len(todo)
        jobs = todo
    opts = RunOptions(args, mode, regions, int(args.max_megapixels * 1e6), debug, size)
    done = 0
    start = time.perf_counter()
    bars_off = True if quiet else None  # None: tqdm hides bars when stderr is not a terminal
    with logging_redirect_tqdm(), tqdm(total=len(jobs), unit="image", disable=bars_off,
                                       dynamic_ncols=True) as images_bar:
        if len(upscalers) > 1:
            done, job_failures = _run_on_devices(jobs, upscalers, opts, images_bar)
            failures += job_failures
        for job in jobs if len(upscalers) == 1 else []:
            images_bar.set_postfix_str(job.source.name)
            failure = _try_one(job, upscaler, opts, bars_off)
            if failure is None:
                done += 1
            else:
                failures.append(failure)
            images_bar.update(1)
    elapsed = time.perf_counter() - start
    if not quiet:
        note = f" ({skipped} skipped: output exists)" if skipped else ""
        print(f"cmdsr: upscaled {done} of {len(jobs)} image(s) into {args.output} "
              f"in {elapsed:.1f} s{note}", file=sys.stderr)
    if failures:
        print(f"cmdsr: {len(failures)} problem(s):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure.name}: {failure.message}", file=sys.stderr)
        if any(f.internal for f in failures):
            print("cmdsr: run with --debug for details", file=sys.stderr)
            return EXIT_INTERNAL
        return EXIT_USAGE
    return EXIT_OK


def _try_one(
    job: Job,
    upscaler: Upscaler,
    opts: RunOptions,
    bars_off: bool | None,
    cancel: threading.Event | None = None,
) -> Failure | None:
    """Upscale one job; its problem (if any) as a Failure, so the batch goes on."""
    debug = opts.debug
    try:
        _upscale_one(job, upscaler, opts, bars_off, cancel)
        return None
    except CmdsrError as exc:
        if debug:
            log.exception("%s failed", job.source)
        return Failure(str(job.source), _strip_name(str(exc), job))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # report, then go on with the other images
        if debug:
            log.exception("%s failed", job.source)
        return Failure(str(job.source), f"internal error: {type(exc).__name__}: {exc}",
                       internal=True)


def _run_on_devices(
    jobs: list[Job],
    upscalers: list[Upscaler],
    opts: RunOptions,
    images_bar: Any,
) -> tuple[int, list[Failure]]:
    """One worker thread per upscaler (device) takes the next image from a shared queue, so
    a fast GPU does more of them. Each image is computed exactly as on a single device
    (same support seed, same tiling rules), so the outputs do not depend on the split.
    Returns (images done, failures in input order)."""
    todo: queue.SimpleQueue[tuple[int, Job]] = queue.SimpleQueue()
    for item in enumerate(jobs):
        todo.put(item)
    lock = threading.Lock()
    stop = threading.Event()
    results: dict[int, Failure | None] = {}

    def work(upscaler: Upscaler) -> None:
        if upscaler.device.type == "cuda":
            import torch

            torch.cuda.set_device(upscaler.device)  # per thread: memory queries, caches
        while not stop.is_set():
            try:
                index, job = todo.get_nowait()
            except queue.Empty:
                return
            # a Ctrl+C in the main thread sets ``stop``: the image fails as cancelled
            failure = _try_one(job, upscaler, opts, True, cancel=stop)
            with lock:
                results[index] = failure
                images_bar.set_postfix_str(job.source.name)
                images_bar.update(1)

    threads = [threading.Thread(target=work, args=(u,), name=f"upscale-{u.device}", daemon=True)
               for u in upscalers]
    log.info("spreading %d image(s) over %s", len(jobs), ", ".join(str(u.device) for u in upscalers))
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # short waits keep Ctrl+C responsive in the main thread
    except KeyboardInterrupt:
        stop.set()  # workers stop between tiles; then the interrupt goes on as usual
        for t in threads:
            t.join()
        raise
    failures = [f for _, f in sorted(results.items()) if f is not None]
    return sum(1 for f in results.values() if f is None), failures


def _strip_name(message: str, job: Job) -> str:
    """Errors name their file; the summary already does, so drop a leading repeat."""
    prefix = f"{job.source}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def check_damage_knobs(args: argparse.Namespace, upscaler: Upscaler) -> None:
    """Refuse --blur/--noise/--jpeg before any photo is read: they need CMDSR with a condition
    map (with a JPEG input for --jpeg, and a damage readout for the one not given), values
    inside the map's range, and the whole-photo adaptation."""
    blur, noise = getattr(args, "blur", None), getattr(args, "noise", None)
    jpeg = getattr(args, "jpeg", None)
    if blur is None and noise is None and jpeg is None:
        return
    from engine.condition_map import condition_map_of
    from engine.damage_head import damage_head_of

    if args.method != "cmdsr" or upscaler.model is None:
        raise ConfigError("--blur/--noise/--jpeg steer CMDSR: use them with --method cmdsr")
    if getattr(args, "adapt", "global") == "local":
        raise ConfigError("--blur/--noise/--jpeg set one damage for the whole photo: drop "
                          "--adapt local")
    cmap = condition_map_of(upscaler.model)
    if cmap is None:
        raise ConfigError(f"{args.model or 'the model'}: has no damage knobs (no condition map); "
                          "use --support instead")
    if jpeg is not None and not cmap.has_jpeg:
        raise ConfigError(f"{args.model or 'the model'}: its damage knobs have no JPEG quality "
                          "(its condition map was fitted without JPEG); drop --jpeg")
    if (blur is None or noise is None) and damage_head_of(upscaler.model) is None:
        raise ConfigError("give both --blur and --noise: this model cannot read the other one "
                          "from the photo (no damage readout)")
    cmap.check_damage(blur if blur is not None else cmap.blur_range[0],
                      noise if noise is not None else cmap.noise_range[0], jpeg)


def _knob_damage(args: argparse.Namespace, upscaler: Upscaler, pixels: np.ndarray,
                 support: Any) -> tuple[float, float, float | None] | None:
    """(blur, noise, JPEG quality) for this photo from the knobs, the missing ones read from
    the photo (the JPEG quality only when the model reads it and its knobs take it; None:
    no JPEG)."""
    from engine.condition_map import condition_map_of
    from engine.damage_head import damage_head_of

    blur, noise = getattr(args, "blur", None), getattr(args, "noise", None)
    jpeg = getattr(args, "jpeg", None)
    if blur is None and noise is None and jpeg is None:
        return None
    assert upscaler.model is not None
    cmap = condition_map_of(upscaler.model)
    head = damage_head_of(upscaler.model)
    assert cmap is not None
    read_jpeg = jpeg is None and cmap.jpeg_range is not None and head is not None and head.reads_jpeg
    if blur is None or noise is None or read_jpeg:
        from engine.inference.damage import estimate_damage

        est = estimate_damage(pixels, support, upscaler.model)
        lo_b, hi_b = cmap.blur_range
        lo_n, hi_n = cmap.noise_range
        blur = blur if blur is not None else min(max(est.blur_sigma, lo_b), hi_b)
        noise = noise if noise is not None else min(max(est.noise_sigma, lo_n), hi_n)
        if read_jpeg and est.jpeg_quality is not None and cmap.jpeg_range is not None:
            jpeg = min(max(est.jpeg_quality, cmap.jpeg_range[0]), cmap.jpeg_range[1])
        log.info("damage knobs: blur %.2f, noise %.1f, JPEG %s (the missing ones read from the "
                 "photo)", blur, noise, "none" if jpeg is None else f"{jpeg:.0f}")
    return float(blur), float(noise), None if jpeg is None else float(jpeg)


def _upscale_one(
    job: Job,
    upscaler: Upscaler,
    opts: RunOptions,
    bars_off: bool | None,
    cancel: threading.Event | None = None,
) -> None:
    args = opts.args
    if job.target.exists() and not args.overwrite:
        raise CmdsrError(f"{job.target}: already exists (use --overwrite to replace it, or "
                         "--skip-existing to leave it)")
    for stale in remove_stale_temps(job.target):
        log.info("removed %s, left by an interrupted earlier run", stale)
    t0 = time.perf_counter()
    image = read_image(job.source, max_pixels=opts.max_pixels)
    try:
        out_w, out_h = opts.size.dimensions(image.width, image.height, upscaler.scale)
    except ValueError as exc:
        raise ConfigError(f"{job.source}: {exc}") from None
    support = None
    if upscaler.support_size is not None:
        support = select_support(image.pixels, count=upscaler.support_size, mode=opts.mode,
                                 regions=opts.regions, seed=args.seed)
    with tqdm(total=1, unit="step", leave=False, disable=bars_off, dynamic_ncols=True,
              desc=job.source.name) as tiles_bar:

        def progress(done: int, total: int) -> None:
            tiles_bar.total = total
            tiles_bar.n = done
            tiles_bar.refresh()

        # An 8-bit file needs only 8-bit results: a quarter of the memory of the float ones,
        # which for a large photo is gigabytes.
        fmt = _output_format(job.target, args.fmt)
        out_dtype = np.uint8 if output_bit_depth(fmt, image.bit_depth) == 8 else np.float32
        if getattr(args, "adapt", "global") == "local":
            from engine.inference.local_adapt import upscale_image_local

            result = upscale_image_local(image, upscaler, regions=opts.regions, seed=args.seed,
                                         progress=progress, cancel=cancel, out_dtype=out_dtype)
        else:
            result = upscale_image(image, upscaler, support, progress=progress,
                                   cancel=cancel if cancel is not None else threading.Event(),
                                   out_dtype=out_dtype,
                                   damage=_knob_damage(args, upscaler, image.pixels, support))
    result = resize_image(result, out_w, out_h)  # area-averaged from the model's scale
    write_image(result, job.target, fmt=fmt, quality=args.quality, overwrite=args.overwrite)
    log.info("%s -> %s (%dx%d -> %dx%d, look %g, %.1f s)", job.source, job.target, image.width,
             image.height, result.width, result.height, getattr(args, "look", 0.0),
             time.perf_counter() - t0)
