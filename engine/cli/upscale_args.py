"""The ``cmdsr upscale`` command line: its options only, no engine.

Building the parser imports nothing heavy (no PyTorch, OpenCV or NumPy), so ``cmdsr --help``,
``cmdsr upscale --help`` and argument errors answer at once; the work itself is in
``engine.cli.upscale``, imported when the command runs. The defaults below repeat the engine's
(a test keeps them equal).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.cli.main import common_options, lazy_command

# engine.inference.upscaler.METHODS, engine.inference.upscaler.PRECISION_CHOICES, TileConfig().overlap and
# engine.io.imageio.DEFAULT_MAX_PIXELS / 1e6
METHODS = ("cmdsr", "baseline", "bicubic")
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")
DEFAULT_OVERLAP = 16
DEFAULT_MAX_MEGAPIXELS = 80.0
FORMAT_CHOICES = ("png", "jpg", "jpeg", "webp", "tif", "tiff")
_FORMAT_CHOICES = FORMAT_CHOICES


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "upscale",
        parents=[common_options()],
        help="super-resolve images or folders of images",
        description=(
            "Super-resolve photos with CMDSR, which reads each photo's own blur and noise from "
            "a support set of patches cut from it. INPUT may be files or folders (searched "
            "recursively; the subfolder structure is kept under OUT)."
        ),
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", type=Path,
                        help="image files or folders")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", type=Path,
                        help="output folder (or, for a single input file, an output file name)")
    parser.add_argument("--model", type=Path, metavar="PATH",
                        help="model file (default: the shipped model)")
    parser.add_argument("--method", choices=METHODS, default="cmdsr",
                        help="cmdsr (default), baseline (conditioning-off model) or bicubic")
    parser.add_argument("--support", nargs="+", action="extend", metavar="SPEC",
                        help="how support patches are chosen: random (default), auto, or one or "
                             "more X,Y,W,H regions in input pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed for random support (default 0)")
    parser.add_argument("--adapt", choices=("global", "local"), default="global",
                        help="global (default): one condition for the whole photo; local: each "
                             "part conditioned on its own neighbourhood (or the --support region "
                             "covering it), blended smoothly, for photos whose damage varies")
    parser.add_argument("--blur", type=float, metavar="SIGMA",
                        help="damage knob: steer CMDSR as if the photo had this blur sigma (HR "
                        "pixels, as `cmdsr inspect` reads it) instead of reading it from the "
                        "support; without --noise the noise is read from the photo")
    parser.add_argument("--noise", type=float, metavar="SIGMA",
                        help="damage knob: noise sigma in grey levels 0..255 (see --blur)")
    parser.add_argument("--jpeg", type=float, metavar="Q",
                        help="damage knob: the JPEG quality to steer by (30 heavy blocks .. 95 "
                             "light; 100: no JPEG), for a model whose knobs take it; without it "
                             "the quality is read from the photo (see --blur)")
    parser.add_argument("--look", type=float, default=0.0, metavar="T",
                        help="0 (default): faithful, restores only what the photo supports; 1: "
                             "crisp, the perceptual model's look; between: the two models' "
                             "weights blended (needs the crisp model, see --crisp-model)")
    parser.add_argument("--crisp-model", type=Path, metavar="PATH",
                        help="the crisp model --look blends with (default: the shipped "
                             "cmdsr_x4_crisp.pt)")
    parser.add_argument("--tile", type=int, default=0, metavar="N",
                        help="tile side in input pixels (default 0: from free memory)")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, metavar="N",
                        help="minimum tile margin (raised to the model's receptive field)")
    parser.add_argument("--device", default="auto",
                        help="auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--devices", metavar="LIST",
                        help="spread the images over several devices, one worker each: a comma "
                             "list such as cuda:0,cuda:1, or 'all' for every CUDA GPU (overrides "
                             "--device; a device may repeat to run two workers on it)")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help="auto (default): bf16 on CPUs with native bf16 (AMX, AVX-512 BF16), "
                             "else fp32; fp16/bf16 also run faster on a GPU")
    parser.add_argument("--format", choices=_FORMAT_CHOICES, dest="fmt",
                        help="output format (default: the input's; BMP becomes PNG)")
    parser.add_argument("--quality", type=int, default=95, metavar="Q",
                        help="JPEG/WebP quality 1..100 (default 95; WebP 100 is lossless)")
    parser.add_argument("--suffix", default=None,
                        help="added to output file names (default _x<scale>, e.g. _x4; "
                             "_w<PX> / _h<PX> with --width / --height)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--scale", type=int, choices=(2, 3, 4), metavar="N",
                      help="output size: N times the input (2, 3 or 4; default: the model's "
                           "scale). The model runs at its own scale, then the result is "
                           "shrunk by area-averaging (anti-aliased)")
    size.add_argument("--width", type=int, metavar="PX",
                      help="output width in pixels (the height follows the aspect ratio); "
                           "the model's result is shrunk to it by area-averaging")
    size.add_argument("--height", type=int, metavar="PX",
                      help="output height in pixels (the width follows the aspect ratio)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave inputs whose output already exists (e.g. to finish an "
                               "interrupted batch)")
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS,
                        metavar="MP", help="refuse larger inputs (default %(default)g)")
    # A region such as "-10,0,50,50" (clipped to the photo) is a value, not an option: argparse
    # only lets plain negative numbers through, and Python 3.13 widens that the same way.
    parser._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+(,-?\d+)+$")
    # by name: the options never import the code that runs them (engine.cli.upscale)
    parser.set_defaults(func=lazy_command("engine.cli.upscale", "run_upscale"))
