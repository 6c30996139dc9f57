"""Damage knobs (issue 24's figures): does steering CMDSR by numbers work as well as letting it
read the photo, do the knobs move the result the way their names say, and how fast does a
preview refresh?

1. Accuracy: validation photos (central crops) degraded at known damage with fixed seeds;
   PSNR-Y of CMDSR with its condition read from a random support set, and with the knobs set
   to the true blur and noise (target: knobs within 0.1 dB of the support, or better, on
   average).
2. Monotone: one photo at blur 1.0; the output's high-frequency energy (mean absolute 3x3
   high-pass of Y) while the noise knob rises (should fall: more smoothing) and while the blur
   knob rises (should rise: more sharpening).
3. Preview: seconds to upscale a 128x128 LR region (a 512x512 visible result) with the knobs,
   condition map and fold included; median of 5 after a warm-up.
4. JPEG (a model whose knobs take it, issue 29): photos saved as JPEG at known quality; PSNR-Y
   with the support-read condition, with the knobs at the true blur, noise and quality, and
   at the true blur and noise with the JPEG knob at none; and the output's high-frequency
   energy as the JPEG knob goes from none to 30 (should fall: more deblocking).

    nice -n 15 python benchmarks/damage_knobs.py --model resources/models/cmdsr_x4.pt \\
        --photos /work/data/corpus/val_textured --crop 384 [--strip docs/screenshots/knobs.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.condition_map import condition_map_of  # noqa: E402
from engine.data import read_rgb, scan_images  # noqa: E402
from engine.degrade import DegradationParams, crop_to_multiple, degrade  # noqa: E402
from engine.inference.support import select_support  # noqa: E402
from engine.inference.upscaler import Upscaler  # noqa: E402
from engine.metrics import psnr_y  # noqa: E402

DAMAGES = ((1.0, 0.0), (2.6, 0.0), (1.0, 15.0), (2.6, 15.0), (1.6, 30.0))
NOISE_STEPS = (0.0, 10.0, 20.0, 30.0, 40.0)
BLUR_STEPS = (0.6, 1.2, 1.8, 2.4, 3.0, 3.6)
JPEG_DAMAGES = ((1.0, 0.0, 60), (1.0, 0.0, 35), (1.6, 5.0, 80))
JPEG_STEPS = (100.0, 90.0, 70.0, 50.0, 30.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def hf_energy(rgb: np.ndarray) -> float:
    y = luma(rgb.astype(np.float32))
    return float(np.abs(y - cv2.blur(y, (3, 3))).mean())


def centre(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    c = min(size, h, w)
    return img[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=Path, required=True)
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--strip", type=Path, help="write the monotone crops as one PNG here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if condition_map_of(model) is None:
        print(f"{args.model}: has no condition map (scripts/train_condition_map.py)", file=sys.stderr)
        return 2
    up = Upscaler(model, method="cmdsr", device="cpu", precision="auto")
    photos = [crop_to_multiple(centre(read_rgb(p), args.crop), 4).astype(np.float32)
              for p in scan_images(args.photos)]

    print("| damage | support (random) | knobs at the true damage | knobs - support |")
    print("|---|---:|---:|---:|")
    diffs = []
    for blur, noise in DAMAGES:
        sup, knob = [], []
        for i, hr in enumerate(photos):
            lr = degrade(hr, DegradationParams(15, blur, blur, 0.0, noise), 4, np.random.default_rng([7, i]))
            s = select_support(lr, count=model.support_size, mode="random", seed=i)
            sup.append(psnr_y(np.rint(up.upscale(lr, s)), hr, 4))
            knob.append(psnr_y(np.rint(up.upscale(lr, damage=(blur, noise))), hr, 4))
        d = float(np.mean(knob) - np.mean(sup))
        diffs.append(d)
        print(f"| blur {blur:g}, noise {noise:g} | {np.mean(sup):.2f} | {np.mean(knob):.2f} | {d:+.2f} |")
    print(f"\nmean knobs - support: {np.mean(diffs):+.3f} dB over {len(photos)} photos x {len(DAMAGES)} damages\n")

    hr = photos[0]
    lr = degrade(hr, DegradationParams(15, 1.0, 1.0, 0.0, 10.0), 4, np.random.default_rng(3))
    rows = []
    print("| noise knob (blur 1.0) | " + " | ".join(f"{n:g}" for n in NOISE_STEPS) + " |")
    print("|---|" + "---:|" * len(NOISE_STEPS))
    outs = [up.upscale(lr, damage=(1.0, n)) for n in NOISE_STEPS]
    rows.append(outs)
    print("| high-frequency energy | " + " | ".join(f"{hf_energy(o):.2f}" for o in outs) + " |")
    print("\n| blur knob (noise 10) | " + " | ".join(f"{b:g}" for b in BLUR_STEPS) + " |")
    print("|---|" + "---:|" * len(BLUR_STEPS))
    outs = [up.upscale(lr, damage=(b, 10.0)) for b in BLUR_STEPS]
    rows.append(outs)
    print("| high-frequency energy | " + " | ".join(f"{hf_energy(o):.2f}" for o in outs) + " |")

    region = np.ascontiguousarray(lr[:128, :128]) if min(lr.shape[:2]) >= 128 else lr
    up.upscale(region, damage=(1.0, 0.0))
    times = []
    for k in range(5):
        t0 = time.perf_counter()
        up.upscale(region, damage=(1.0 + 0.1 * k, 5.0 * k))
        times.append(time.perf_counter() - t0)
    print(f"\npreview of a {region.shape[1] * 4}x{region.shape[0] * 4} result: median "
          f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) on "
          f"{args.threads} threads")

    if condition_map_of(model).has_jpeg:  # type: ignore[union-attr]
        jpeg_rows(up, photos)

    if args.strip:
        crop = 128
        tiles = []
        for outs in rows:
            tiles.append(np.concatenate([np.clip(o[:crop, :crop], 0, 255) for o in outs], axis=1))
        width = max(t.shape[1] for t in tiles)
        strip = np.concatenate([np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0))) for t in tiles])
        cv2.imwrite(str(args.strip), strip.astype(np.uint8)[..., ::-1])
        print(f"written: {args.strip} (row 1: noise knob {NOISE_STEPS}; row 2: blur knob {BLUR_STEPS})")
    return 0


def jpeg_rows(up: Upscaler, photos: list[np.ndarray]) -> None:
    print("\n| damage | support (random) | knobs at the true damage | knobs, JPEG at none | "
          "true - none |")
    print("|---|---:|---:|---:|---:|")
    model = up.model
    assert model is not None
    for blur, noise, quality in JPEG_DAMAGES:
        sup, knob, none = [], [], []
        for i, hr in enumerate(photos):
            params = DegradationParams(15, blur, blur, 0.0, noise, jpeg_quality=quality)
            lr = degrade(hr, params, 4, np.random.default_rng([8, i]))
            s = select_support(lr, count=model.support_size, mode="random", seed=i)
            sup.append(psnr_y(np.rint(up.upscale(lr, s)), hr, 4))
            knob.append(psnr_y(np.rint(up.upscale(lr, damage=(blur, noise, float(quality)))), hr, 4))
            none.append(psnr_y(np.rint(up.upscale(lr, damage=(blur, noise, 100.0))), hr, 4))
        print(f"| blur {blur:g}, noise {noise:g}, JPEG {quality} | {np.mean(sup):.2f} | "
              f"{np.mean(knob):.2f} | {np.mean(none):.2f} | {np.mean(knob) - np.mean(none):+.2f} |")
    hr = photos[0]
    lr = degrade(hr, DegradationParams(15, 1.0, 1.0, 0.0, 0.0, jpeg_quality=50), 4,
                 np.random.default_rng(4))
    outs = [up.upscale(lr, damage=(1.0, 0.0, q)) for q in JPEG_STEPS]
    print("\n| JPEG knob (blur 1.0, noise 0; photo at JPEG 50) | "
          + " | ".join("none" if q >= 100 else f"{q:g}" for q in JPEG_STEPS) + " |")
    print("|---|" + "---:|" * len(JPEG_STEPS))
    print("| high-frequency energy | " + " | ".join(f"{hf_energy(o):.2f}" for o in outs) + " |")


if __name__ == "__main__":
    sys.exit(main())
