"""Does ``auto`` support selection beat ``random``?

For each HR photo and each test degradation: degrade the whole photo (the support set is
chosen from the whole LR photo, as in the product), super-resolve a central LR crop with the
support chosen by ``auto`` and by ``random`` with several seeds, and compare PSNR-Y (border 4)
against the HR crop. Cases are interleaved (auto, random seed 0, seed 1, ... per case) so
machine load hits them alike; medians, mean differences and auto's win rate are reported.

A model-free diagnostic runs too: the share of support patches each mode spends on
featureless content (sky, walls, clipped highlights), where a patch shows the ConditionNet
noise but no edge to read the blur from.

    python benchmarks/support_choice.py --model resources/models/cmdsr_x4.pt \\
        --images /work/data/corpus/val
    python benchmarks/support_choice.py --diagnostic-only --images /work/data/corpus/val

Needs a trained conditioned model for the PSNR part: with random weights the support set
barely matters and the comparison says nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.degrade import DegradationParams, degrade  # noqa: E402
from engine.inference.support import select_support  # noqa: E402
from engine.inference.upscaler import TileConfig, Upscaler  # noqa: E402
from engine.io.imageio import SUPPORTED_READ_SUFFIXES, read_image  # noqa: E402
from engine.metrics import psnr_y  # noqa: E402
from engine.resources import default_model_path, sample_image_path  # noqa: E402

LOW_TEXTURE_STD = 6.0
# (blur sigma in HR pixels, noise std): mild, the paper's default test case, heavy.
DEGRADATIONS = ((1.2, 5.0), (2.6, 15.0), (3.6, 30.0))


def _images(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in SUPPORTED_READ_SUFFIXES)
        elif p.exists():
            out.append(p)
    return out


def _wasted_share(lr: np.ndarray, hr: np.ndarray, mode: str, count: int, seeds: int) -> float:
    """Share of support patches on featureless content (sky, walls, clipped highlights).

    Judged on the clean HR under each patch, since noise makes every LR patch look busy:
    a patch whose HR luma varies less than ``LOW_TEXTURE_STD`` shows the ConditionNet noise
    but no edge to read the blur from."""
    wasted = total = 0
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    for seed in range(seeds if mode == "random" else 1):
        support = select_support(lr, count=count, mode=mode, seed=seed)
        for box in support.boxes:
            region = hr[box.y * 4:(box.y + box.h) * 4, box.x * 4:(box.x + box.w) * 4]
            wasted += int(float((region @ weights).std()) < LOW_TEXTURE_STD)
            total += 1
    return wasted / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_images = Path("/work/data/corpus/val")
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--images", type=Path, nargs="+",
                        default=[default_images if default_images.exists()
                                 else sample_image_path().with_name("sample_hr_reference.png")])
    parser.add_argument("--crop", type=int, default=96, help="LR crop side that is upscaled")
    parser.add_argument("--seeds", type=int, default=3, help="random-support seeds per case")
    parser.add_argument("--max-images", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--diagnostic-only", action="store_true",
                        help="only the model-free flat/clipped share")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = _images(args.images)[: args.max_images]
    if not images:
        raise SystemExit("no images found")
    rng = np.random.default_rng(0)
    up = None
    if not args.diagnostic_only:
        if not args.model.exists():
            raise SystemExit(f"no model at {args.model}: pass --model (a trained CMDSR) or "
                             "--diagnostic-only")
        from engine import load_model

        up = Upscaler(load_model(args.model), device=args.device, tile=TileConfig())
    count = up.support_size if up else 20
    rows: list[dict[str, float]] = []
    wasted: dict[str, list[float]] = {"auto": [], "random": []}
    t0 = time.perf_counter()
    for path in images:
        hr_full = read_image(path).pixels
        for sigma, noise in DEGRADATIONS:
            params = DegradationParams(15, sigma, sigma, 0.0, noise)
            lr_full = degrade(hr_full, params, 4, rng)
            for mode in wasted:
                wasted[mode].append(_wasted_share(lr_full, hr_full, mode, count, args.seeds))
            if up is None:
                continue
            h, w = lr_full.shape[:2]
            c = min(args.crop, h, w)
            y0, x0 = (h - c) // 2, (w - c) // 2
            lr = lr_full[y0:y0 + c, x0:x0 + c]
            hr = hr_full[y0 * 4:(y0 + c) * 4, x0 * 4:(x0 + c) * 4]
            row = {"sigma": sigma, "noise": noise}
            for name, mode, seed in [("auto", "auto", 0)] + [
                (f"random{s}", "random", s) for s in range(args.seeds)
            ]:
                support = select_support(lr_full, count=count, mode=mode, seed=seed)
                sr = up.upscale(lr, support)
                row[name] = psnr_y(np.rint(sr), hr, border=4)
            rows.append(row)
            print(f"{path.name} blur {sigma} noise {noise}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k not in ("sigma", "noise")),
                  file=sys.stderr, flush=True)
    print(f"\n{len(images)} photo(s), {len(DEGRADATIONS)} degradations, x4, "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(f"Support patches on featureless content (HR luma std < {LOW_TEXTURE_STD:g}; "
          "model-free):\n")
    print("| mode | median share | mean share |")
    print("|---|---|---|")
    for mode, shares in wasted.items():
        print(f"| {mode} | {statistics.median(shares):.1%} | {statistics.fmean(shares):.1%} |")
    if not rows:
        return
    print(f"\nPSNR-Y (dB, border 4) of a {args.crop}x{args.crop} LR crop, model {args.model}:\n")
    print("| blur, noise | auto (median) | random (median of seed means) | auto - random (mean) "
          "| auto wins | spread over random seeds (mean max-min) |")
    print("|---|---|---|---|---|---|")
    for sigma, noise in [*DEGRADATIONS, (None, None)]:
        sel = [r for r in rows if sigma is None or (r["sigma"], r["noise"]) == (sigma, noise)]
        auto = [r["auto"] for r in sel]
        rand = [statistics.fmean(r[f"random{s}"] for s in range(args.seeds)) for r in sel]
        spread = [max(r[f"random{s}"] for s in range(args.seeds))
                  - min(r[f"random{s}"] for s in range(args.seeds)) for r in sel]
        diffs = [a - b for a, b in zip(auto, rand, strict=True)]
        wins = sum(d > 0 for d in diffs)
        label = "all" if sigma is None else f"{sigma}, {noise:g}"
        print(f"| {label} | {statistics.median(auto):.2f} | {statistics.median(rand):.2f} | "
              f"{statistics.fmean(diffs):+.3f} | {wins}/{len(diffs)} | "
              f"{statistics.fmean(spread):.3f} |")


if __name__ == "__main__":
    main()
