"""Local vs global adaptation on photos with mixed damage (validation photos, fixed seeds).

Each photo's central HR crop is degraded twice, blur 3.0 without noise and blur 0.8 with
noise 25; the LR's left half comes from the first and its right half from the second. Both
modes upscale it (random support, seed 0) and PSNR-Y against the HR crop is reported.

    nice -n 15 python benchmarks/local_adapt.py --model resources/models/cmdsr_x4.pt \
        --photos /work/data/corpus/val --count 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from engine import Upscaler, load_model, psnr_y, select_support
from engine.data import read_rgb, scan_images
from engine.degrade import DegradationParams, crop_to_multiple, degrade
from engine.inference.local_adapt import DEFAULT_CELL, upscale_local


def mixed(hr: np.ndarray, scale: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    soft = degrade(hr, DegradationParams(15, 3.0, 3.0, 0.0, 0.0), scale, rng)
    noisy = degrade(hr, DegradationParams(15, 0.8, 0.8, 0.0, 25.0), scale, rng)
    half = soft.shape[1] // 2
    return np.concatenate([soft[:, :half], noisy[:, half:]], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=(512, 768), metavar=("H", "W"))
    parser.add_argument("--cell", type=int, default=DEFAULT_CELL)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    up = Upscaler(model, device="cpu")
    rows = []
    for i, path in enumerate(scan_images(args.photos)[: args.count]):
        img = read_rgb(path)
        h, w = min(args.crop[0], img.shape[0]), min(args.crop[1], img.shape[1])
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        hr = crop_to_multiple(img[y:y + h, x:x + w], model.scale)
        lr = mixed(hr, model.scale, seed=i)
        glob = up.upscale(lr, select_support(lr, count=model.support_size, seed=0))
        local = upscale_local(up, lr, cell=args.cell, seed=0)
        g, loc = psnr_y(glob, hr, border=model.scale), psnr_y(local, hr, border=model.scale)
        rows.append({"photo": path.name, "global": round(g, 3), "local": round(loc, 3),
                     "gain": round(loc - g, 3)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"mean_gain_db": round(float(np.mean([r["gain"] for r in rows])), 3),
                      "photos": len(rows), "cell": args.cell}))


if __name__ == "__main__":
    main()
