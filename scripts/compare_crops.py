"""100% crops of real photos, side by side: HR, bicubic and each model's result, for a user's
eye rather than a PSNR table (block grids, colour casts and leftover noise show here).

    python scripts/compare_crops.py --images /work/data/corpus/val_textured \\
        --model old=OLD.pt --model new=resources/models/cmdsr_x4.pt --out crops.png

Each photo is degraded with each setting (paper-test: blur 2.6 in a 7x7 kernel + noise 15;
clean: blur 1.4, no noise), upscaled x4, and the most textured 96x96 HR window of its centre
region is cut from every result. One row per photo and setting, labelled, into one PNG.
Evaluation only: nothing here trains or tunes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.data import read_rgb, scan_images  # noqa: E402
from engine.degrade import DegradationParams, crop_to_multiple, degrade  # noqa: E402
from engine.inference.support import select_support  # noqa: E402
from engine.inference.upscaler import Upscaler  # noqa: E402
from engine.metrics import bicubic_upscale, psnr_y  # noqa: E402

SETTINGS = {
    "paper-test": DegradationParams(7, 2.6, 2.6, 0.0, 15.0),
    "clean blur 1.4": DegradationParams(15, 1.4, 1.4, 0.0, 0.0),
}


def textured_window(hr: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of the ``size`` window with the most gradient energy on a coarse grid."""
    y = cv2.cvtColor(hr, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1]
    best, pos = -1.0, (0, 0)
    for yy in range(0, g.shape[0] - size, size // 2):
        for xx in range(0, g.shape[1] - size, size // 2):
            e = float(g[yy : yy + size, xx : xx + size].mean())
            if e > best:
                best, pos = e, (yy, xx)
    return pos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--region", type=int, default=384, help="central HR region per photo")
    ap.add_argument("--crop", type=int, default=96, help="HR crop shown (100%%, then x2 for viewing)")
    ap.add_argument("--max-images", type=int, default=5)
    args = ap.parse_args(argv)
    models = []
    for item in args.model:
        name, _, path = item.partition("=")
        model = load_model(path)
        method = "cmdsr" if model.conditioned else "baseline"
        models.append((name, Upscaler(model, method=method, device="cpu", precision="fp32")))
    rows, labels = [], []
    for i, path in enumerate(scan_images(args.images)[: args.max_images]):
        img = read_rgb(path)
        h, w = img.shape[:2]
        c = min(args.region, h, w)
        hr = crop_to_multiple(img[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c], 4)
        y0, x0 = textured_window(hr, args.crop)
        for sname, params in SETTINGS.items():
            lr = degrade(hr, params, 4, np.random.default_rng([i, 7]))
            support = select_support(lr, count=20, mode="random", seed=i)
            outs = [("HR", hr.astype(np.float32)), ("bicubic", bicubic_upscale(lr, 4))]
            for name, up in models:
                sr = up.upscale(lr, support if up.method == "cmdsr" else None)
                outs.append((name, np.clip(np.rint(sr), 0, 255)))
            tiles = []
            for name, out in outs:
                tile = out[y0 : y0 + args.crop, x0 : x0 + args.crop].astype(np.uint8)
                tiles.append(np.repeat(np.repeat(tile, 2, 0), 2, 1))  # nearest x2 for viewing
                if name != "HR":
                    name = f"{name} {psnr_y(out, hr.astype(np.float32), 4):.2f} dB"
                labels.append(name)
            rows.append((f"{path.name[:28]} / {sname}", tiles))
    n = len(rows[0][1])
    t = rows[0][1][0].shape[0]
    canvas = Image.new("RGB", (n * (t + 4), len(rows) * (t + 34)), "white")
    draw = ImageDraw.Draw(canvas)
    k = 0
    for r, (title, tiles) in enumerate(rows):
        top = r * (t + 34)
        draw.text((4, top + 2), title, fill=(0, 0, 0))
        for j, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile), (j * (t + 4), top + 28))
            draw.text((j * (t + 4) + 2, top + 15), labels[k], fill=(60, 60, 60))
            k += 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
