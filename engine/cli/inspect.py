"""``cmdsr inspect``: show the damage (blur, noise, JPEG) the model reads from photos.

The numbers come from the model's damage readout (see ``engine.inference.damage``): blur sigma in
high-resolution pixels before the downscale, noise sigma in grey levels 0..255, and the JPEG
quality ("no JPEG seen" when it reads none; absent for a readout that does not read JPEG;
``jpeg_quality`` 100 in JSON for none). Output is one
line per photo, or with ``--json`` one JSON object for a single image file and a JSON list of
objects (each with ``path``) for folders or several inputs. Exit codes as ``cmdsr upscale``:
0 all done, 2 usage or input errors (one bad image does not stop the others), 1 an internal
error on some image.

Only light modules are imported at start-up, so ``cmdsr --help`` stays quick; the engine is
loaded when the command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from engine.cli.main import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, common_options

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect",
        parents=[common_options()],
        help="show the blur, noise and JPEG quality the model reads from photos",
        description=(
            "Read each photo's damage as the model sees it from its support set: blur sigma "
            "(Gaussian, in high-resolution pixels before the x4 downscale; about 0.2 sharp to "
            "4 very soft), noise sigma (grey levels 0..255 on the photo) and the JPEG quality "
            "(30 heavy .. 95 light, or no JPEG seen) when the model reads it. Needs a model "
            "file with a damage readout."
        ),
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", type=Path,
                        help="image files or folders (searched recursively)")
    parser.add_argument("--model", type=Path, metavar="PATH",
                        help="model file (default: the shipped model)")
    parser.add_argument("--support", nargs="+", action="extend", metavar="SPEC",
                        help="how support patches are chosen: random (default), auto, or one or "
                             "more X,Y,W,H regions in input pixels (as for upscale)")
    parser.add_argument("--seed", type=int, default=0, help="seed for random support (default 0)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: one object for one image file, else a list of "
                             "objects with path")
    parser.add_argument("--max-megapixels", type=float, default=80.0, metavar="MP",
                        help="refuse larger inputs (default %(default)g)")
    parser.set_defaults(func=run_inspect)


def _collect(inputs: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    from engine.io.imageio import SUPPORTED_READ_SUFFIXES

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        if item.is_file():
            files.append(item)
        elif item.is_dir():
            found = sorted(
                p for p in item.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_READ_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(item).parts)
            )
            if not found:
                problems.append((str(item), "folder contains no supported images "
                                            f"({', '.join(SUPPORTED_READ_SUFFIXES)})"))
            files.extend(found)
        else:
            problems.append((str(item), "no such file or folder"))
    return files, problems


def run_inspect(args: argparse.Namespace) -> int:
    # Heavy imports here, not at module level: `cmdsr --help` must not load torch.
    from engine.checkpoint import load_model
    from engine.cli.upscale import parse_support
    from engine.errors import CmdsrError, ConfigError
    from engine.inference.damage import estimate_damage, require_head
    from engine.inference.support import select_support
    from engine.io.imageio import read_image
    from engine.resources import default_model_path

    debug = bool(getattr(args, "debug", False))
    inputs: list[Path] = list(args.inputs)
    mode, regions = parse_support(args.support, inputs)
    if not inputs:
        raise ConfigError("no input images given")
    if args.max_megapixels <= 0:
        raise ConfigError("--max-megapixels must be positive")
    path = args.model or default_model_path()
    if args.model is None and not path.exists():
        raise CmdsrError(f"no default model shipped at {path}; pass --model")
    model = load_model(path)
    require_head(model)  # a model without a readout fails once, before any image
    single = len(inputs) == 1 and inputs[0].is_file()
    files, problems = _collect(inputs)
    rows: list[dict[str, Any]] = []
    internal = False
    for file in files:
        try:
            image = read_image(file, max_pixels=int(args.max_megapixels * 1e6))
            support = select_support(image.pixels, count=model.support_size, mode=mode,
                                     regions=regions, seed=args.seed)
            estimate = estimate_damage(image.pixels, support, model)
        except CmdsrError as exc:
            if debug:
                log.exception("%s failed", file)
            message = str(exc)
            prefix = f"{file}: "
            problems.append((str(file), message[len(prefix):] if message.startswith(prefix)
                             else message))
            continue
        except Exception as exc:  # report, then go on with the other images
            if debug:
                log.exception("%s failed", file)
            problems.append((str(file), f"internal error: {type(exc).__name__}: {exc}"))
            internal = True
            continue
        rows.append({"path": str(file), **estimate.as_dict()})
        if not args.json:
            jpeg = f", {estimate.jpeg_words()}" if estimate.jpeg_quality is not None else ""
            print(f"{file}: blur sigma {estimate.blur_sigma:.2f} (HR pixels, before the "
                  f"x{model.scale} downscale), noise sigma {estimate.noise_sigma:.1f} "
                  f"(grey levels 0..255){jpeg}")
    if args.json:
        if single:
            if rows:
                print(json.dumps({k: v for k, v in rows[0].items() if k != "path"}))
        else:
            print(json.dumps(rows, indent=None))
    if problems:
        if len(problems) == 1 and single:
            print(f"cmdsr: error: {problems[0][0]}: {problems[0][1]}", file=sys.stderr)
        else:
            print(f"cmdsr: {len(problems)} problem(s):", file=sys.stderr)
            for name, message in problems:
                print(f"  {name}: {message}", file=sys.stderr)
        return EXIT_INTERNAL if internal else EXIT_USAGE
    return EXIT_OK
