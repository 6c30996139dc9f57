"""``cmdsr train``, ``cmdsr eval`` and ``cmdsr degrade``: training, evaluation tables and
synthetic LR test sets from the command line."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used, so `cmdsr --help` stays quick
    import numpy as np

from engine.errors import ConfigError, ImageWriteError

EXIT_OK, EXIT_INTERRUPTED = 0, 130


def add_parser(subparsers: Any) -> None:
    from engine.cli.main import common_options

    parent = common_options()
    p = subparsers.add_parser(
        "train", parents=[parent], help="train a CMDSR model (or resume a run)",
        description="Train CMDSR on a folder of HR photos with the paper's procedure. "
        "Ctrl+C pauses: a checkpoint is written and --resume RUN_DIR continues exactly. "
        "For several GPUs or machines run it under torchrun, e.g. torchrun --standalone "
        "--nproc_per_node 4 -m engine train ... (docs/training_at_scale.md).",
    )
    p.add_argument("--data", type=Path, help="folder of HR training photos (searched recursively)")
    p.add_argument("--out", type=Path, help="run folder to create (config, metrics, checkpoints)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--preset", default="reference",
                   choices=("reference", "cpu", "studio", "studio-cpu", "users", "users-cpu"),
                   help="starting config (default: reference, the paper's setup)")
    p.add_argument("--config", type=Path, help="TOML file with settings over the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set tasks_per_batch=4 --set model.channels=32")
    p.add_argument("--steps", type=int, help="total number of steps (also extends a resumed run)")
    p.add_argument("--val", type=Path, help="folder of HR validation photos")
    p.add_argument("--baseline", action="store_true",
                   help="train the conditioning-off BaseNet (same budget) instead of CMDSR")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (default from the config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.add_argument("--time-limit", type=parse_duration, metavar="DURATION",
                   help="pause (with a checkpoint) this long after the command starts, e.g. 90m, "
                   "8h, 300s; --resume continues the run later")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval", parents=[parent], help="PSNR/SSIM-Y table: bicubic, baseline and CMDSR",
        description="Degrade each HR photo with fixed seeds, super-resolve it with each method "
        "and print (and write as Markdown + CSV) mean PSNR/SSIM on Y per degradation setting.",
    )
    e.add_argument("--hr", type=Path, required=True, help="folder of HR test photos")
    e.add_argument("--model", type=Path, help="CMDSR model (default: the shipped one)")
    e.add_argument("--baseline", type=Path, help="conditioning-off model to compare with")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--preset", default=None,
                       help="degradation preset: paper-test (default), paper, mild, real")
    which.add_argument("--grid", action="store_true",
                       help="blur sigma {0.6, 1.4, 2.6, 3.6} x noise {0, 15, 30}")
    which.add_argument("--rows", choices=("users",),
                       help="users: paper-test, blur 2.6, nearly clean (blur 1.0), blur 1.0 + "
                       "JPEG 60, noise 25, a camera's noise (mosaic, shot + read noise, "
                       "demosaic, JPEG 80) and a web copy (resized, JPEG 60 4:2:0): the "
                       "photos users bring")
    e.add_argument("--seed", type=int, default=0, help="seed of the degradations and supports")
    e.add_argument("--crop", type=int, default=0,
                   help="evaluate a central crop of this HR size (0 = whole photos)")
    e.add_argument("--max-images", type=int, default=0, help="use only the first N photos")
    e.add_argument("--out", type=Path, default=Path("cmdsr_eval"),
                   help="folder for eval.md and eval.csv (default: ./cmdsr_eval)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    e.set_defaults(func=run_eval)

    d = subparsers.add_parser(
        "degrade", parents=[parent], help="make a synthetic LR test set from HR photos",
        description="Write OUT_DIR/LR (degraded), OUT_DIR/HR (cropped to a multiple of the "
        "scale) and a manifest (JSON + CSV) of the degradation used for each photo.",
    )
    d.add_argument("hr_dir", type=Path, metavar="HR_DIR")
    d.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    d.add_argument("--preset", default="paper-test", help="degradation preset (default paper-test)")
    d.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--overwrite", action="store_true", help="replace an existing set in OUT_DIR")
    d.set_defaults(func=run_degrade)


# ----------------------------------------------------------------------------- train


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def parse_duration(text: str) -> float:
    """``90``/``90s`` seconds, ``45m`` minutes, ``8h`` hours (decimals allowed) -> seconds."""
    t = text.strip().lower()
    unit = {"s": 1, "m": 60, "h": 3600}.get(t[-1:], 0)
    number = t[:-1] if unit else t
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 300s, 90m or 8h, got {text!r}")
    return seconds


def resolve_train_config(args: argparse.Namespace) -> Any:
    """The TrainConfig a ``cmdsr train`` command line asks for."""
    from engine.config import apply_overrides
    from engine.training.config import TrainConfig
    from engine.training.run_folder import load_run_config

    if args.resume is not None:
        if args.config is not None or args.baseline:
            raise ConfigError("--config and --baseline cannot change a run being resumed")
        cfg = load_run_config(args.resume)
    else:
        cfg = TrainConfig.preset(args.preset)
        if args.config is not None:
            cfg = TrainConfig.from_toml(args.config, base=cfg)
        if args.baseline:
            cfg = cfg.baseline()
    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"steps={args.steps}")
    if args.device:
        overrides.append(f"device={args.device}")
    if args.resume is not None and any(o.strip().startswith("model") for o in overrides):
        raise ConfigError("model settings cannot change when resuming a run")
    return apply_overrides(cfg, overrides)


def run_train(args: argparse.Namespace) -> int:
    from engine.distributed import env_context
    from engine.training.config import TrainProgress
    from engine.training.loop import train

    # Under torchrun every process runs this command; only rank 0 talks to the terminal
    # (the others would repeat its warnings word for word).
    main_process = env_context().is_main
    if not main_process:
        logging.getLogger("engine").setLevel(logging.ERROR)
    if args.resume is None and (args.data is None or args.out is None):
        raise ConfigError("give --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
    if args.resume is not None and args.out is not None and args.out != args.resume:
        raise ConfigError("--out and --resume name different folders")
    cfg = resolve_train_config(args)
    run_dir = args.resume if args.resume is not None else args.out
    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        if main_process:
            print("\ncmdsr: pausing after this step (Ctrl+C again to abort without a checkpoint)",
                  file=sys.stderr)

    bar: Any = None
    if not args.no_progress and not getattr(args, "quiet", False) and main_process:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, file=sys.stderr)
    last_log = [0.0]

    def progress(p: TrainProgress) -> None:
        if not main_process:
            return
        info = f"L1 {p.l1:.2f}"
        if math.isfinite(p.contrastive):
            info += f" con {p.contrastive:.3f} d {p.d_inner:.3f}/{p.d_cross:.3f}"
        if p.val_psnr is not None:
            info += f" val {p.val_psnr:.2f}dB"
        if bar is not None:
            if bar.n == 0 and p.step > 1:
                bar.n = p.step - 1
            bar.update(p.step - bar.n)
            bar.set_postfix_str(f"{info} data {p.data_wait_share:.0%}", refresh=False)
        elif time.monotonic() - last_log[0] > 30 or p.step == p.total_steps or p.val_psnr is not None:
            last_log[0] = time.monotonic()
            print(f"step {p.step}/{p.total_steps} {info} {p.steps_per_s:.2f} step/s "
                  f"ETA {_format_eta(p.eta_s)}", file=sys.stderr)

    timed_out = threading.Event()

    def on_time_limit() -> None:
        if not cancel.is_set():  # a Ctrl+C that came first stays a user's pause
            timed_out.set()
            cancel.set()

    timer = threading.Timer(args.time_limit, on_time_limit) if args.time_limit else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        ckpt = train(cfg, run_dir, data_dir=args.data, val_dir=args.val,
                     resume=args.resume is not None, progress=progress, cancel=cancel)
    finally:
        if timer is not None:
            timer.cancel()
        if in_main:
            signal.signal(signal.SIGINT, old)
        if bar is not None:
            bar.close()
    paused_by_user = cancel.is_set() and not timed_out.is_set()
    if not main_process:
        return EXIT_INTERRUPTED if paused_by_user else EXIT_OK
    if timed_out.is_set():
        print(f"time limit reached; checkpoint {ckpt}\ncontinue with: cmdsr train --resume {run_dir}")
        return EXIT_OK
    if cancel.is_set():
        print(f"paused; checkpoint {ckpt}\ncontinue with: cmdsr train --resume {run_dir}")
        return EXIT_INTERRUPTED
    print(f"done: {ckpt}\nmodel for upscaling: {Path(run_dir) / 'latest.pt'}")
    return EXIT_OK


# ----------------------------------------------------------------------------- eval


def _load_photos(folder: Path, crop: int, max_images: int, scale: int) -> list[tuple[str, np.ndarray]]:
    from engine.data import read_rgb, scan_images
    from engine.errors import ImageReadError

    photos: list[tuple[str, np.ndarray]] = []
    for path in scan_images(folder):
        if max_images and len(photos) >= max_images:
            break
        try:
            img = read_rgb(path)
        except ImageReadError as exc:
            print(f"cmdsr: skipping {exc}", file=sys.stderr)
            continue
        if crop > 0:
            h, w = img.shape[:2]
            c = min(crop, h, w)
            img = img[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c]
        if min(img.shape[:2]) < 12 * scale:
            print(f"cmdsr: skipping {path}: too small to evaluate", file=sys.stderr)
            continue
        photos.append((str(path.relative_to(folder)), img))
    if not photos:
        raise ConfigError(f"{folder}: no usable test photos")
    return photos


def eval_methods(model: Any, baseline: Any, device: str) -> list[tuple[str, Callable[..., np.ndarray]]]:
    """bicubic, baseline (if given), CMDSR with a random and an automatic support set."""
    import numpy as np

    from engine.inference.support import select_support
    from engine.inference.upscaler import Upscaler
    from engine.metrics import bicubic_upscale

    scale = model.scale
    methods: list[tuple[str, Callable[..., np.ndarray]]] = [
        ("bicubic", lambda lr, rng: bicubic_upscale(lr, scale))
    ]

    def runner(up: Any, mode: str | None) -> Callable[..., np.ndarray]:
        def fn(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            support = None
            if mode is not None:
                seed = int(rng.integers(0, 2**31))
                support = select_support(lr, count=model.support_size, mode=mode, seed=seed)
            return np.rint(up.upscale(lr, support)).astype(np.float32)
        return fn

    if baseline is not None:
        if baseline.conditioned:
            raise ConfigError("--baseline must be a conditioning-off model")
        if baseline.scale != scale:
            raise ConfigError(f"--baseline upscales x{baseline.scale}, the model x{scale}")
        methods.append(("baseline", runner(Upscaler(baseline, method="baseline", device=device), None)))
    if model.conditioned:
        up = Upscaler(model, method="cmdsr", device=device)
        methods.append(("CMDSR-random", runner(up, "random")))
        methods.append(("CMDSR-auto", runner(up, "auto")))
    else:
        methods.append(("model", runner(Upscaler(model, method="baseline", device=device), None)))
    return methods


def run_eval(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_model
    from engine.degrade import DegradationConfig, degradation_grid, user_rows
    from engine.metrics import evaluate, format_markdown, write_csv
    from engine.resources import default_model_path

    model_path = args.model or default_model_path()
    model = load_model(model_path)
    baseline = load_model(args.baseline) if args.baseline else None
    scale = model.scale
    photos = _load_photos(args.hr, args.crop, args.max_images, scale)
    settings: list[tuple[str, Any]]
    if args.grid:
        settings = [(p.label(), p) for p in degradation_grid()]
    elif args.rows == "users":
        settings = list(user_rows())
    else:
        name = args.preset or "paper-test"
        settings = [(name, DegradationConfig.preset(name))]
    methods = eval_methods(model, baseline, args.device)

    tty = sys.stderr.isatty() and not getattr(args, "quiet", False)

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\r{done}/{total} photo x setting", end="", file=sys.stderr, flush=True)

    rows = evaluate(photos, settings, methods, scale, seed=args.seed, progress=progress)
    if tty:
        print(file=sys.stderr)
    title = (f"x{scale}, {len(photos)} photos from {args.hr}, model {Path(model_path).name}"
             + (f", baseline {args.baseline.name}" if args.baseline else "")
             + f", seed {args.seed}")
    table = format_markdown(rows, title)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.md").write_text(table, encoding="utf-8")
    write_csv(rows, args.out / "eval.csv")
    print(f"written: {args.out / 'eval.md'}, {args.out / 'eval.csv'}")
    return EXIT_OK


# ----------------------------------------------------------------------------- degrade


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1]))
    if not ok:
        raise ImageWriteError(f"{path}: PNG encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_bytes(buf.tobytes())
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from None


def run_degrade(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.data import read_rgb, scan_images
    from engine.degrade import DegradationConfig, crop_to_multiple, degrade, sample_degradation
    from engine.errors import ImageReadError

    cfg = DegradationConfig.preset(args.preset)
    out: Path = args.out_dir
    manifest = out / "manifest.json"
    if manifest.exists() and not args.overwrite:
        raise ConfigError(f"{out} already holds a test set; pass --overwrite to replace it")
    paths = scan_images(args.hr_dir)
    if not paths:
        raise ConfigError(f"{args.hr_dir}: no images found")
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        try:
            hr = read_rgb(path)
        except ImageReadError as exc:
            print(f"cmdsr: skipping {exc}", file=sys.stderr)
            continue
        hr = crop_to_multiple(hr, args.scale)
        if min(hr.shape[:2]) < args.scale:
            print(f"cmdsr: skipping {path}: smaller than the scale", file=sys.stderr)
            continue
        rng = np.random.default_rng([args.seed, i])
        params = sample_degradation(cfg, rng)
        lr = degrade(hr, params, args.scale, rng)
        rel = path.relative_to(args.hr_dir).with_suffix(".png")
        _write_png(out / "LR" / rel, lr)
        _write_png(out / "HR" / rel, hr)
        rows.append({"image": rel.as_posix(), "hr_size": [hr.shape[1], hr.shape[0]],
                     "lr_size": [lr.shape[1], lr.shape[0]], **dataclasses.asdict(params)})
    if not rows:
        raise ConfigError(f"{args.hr_dir}: no readable images")
    meta = {"preset": args.preset, "scale": args.scale, "seed": args.seed,
            "config": dataclasses.asdict(cfg), "images": rows}
    out.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        keys = ["image", "kernel_size", "sigma_x", "sigma_y", "angle", "noise_std", "gray_noise", "jpeg_quality"]
        w.writerow(keys)
        for r in rows:
            w.writerow(["" if r[k] is None else r[k] for k in keys])
    print(f"{len(rows)} LR/HR pairs (x{args.scale}, {args.preset}) written to {out}")
    return EXIT_OK
