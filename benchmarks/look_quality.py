"""The Look's quality: PSNR-Y and detail of the faithful model, the crisp model (and looks
between) and Real-ESRGAN x4plus on the rows of photos users bring.

Every photo of ``--hr`` (central ``--crop`` px, as the model card's ``cmdsr eval --rows users
--crop 512``) is damaged with each row of ``engine.degrade.user_rows()`` with the same seeds as
``cmdsr eval``, so the faithful column repeats the card's CMDSR-random figures. Detail is the
mean absolute Laplacian of Y of the result over the true photo's (1 = as much fine contrast as
the photo; an over-smoothed result is well below 1, invented texture can go above it). The
issue's targets: the crisp model's PSNR-Y not below Real-ESRGAN's on any row, its detail at
least 1.15x the faithful output's. Real-ESRGAN's results are cached in ``--out`` (they never
change), and 100% crops of every method are written there to look at.

The inputs and whole results of the nearly clean and camera rows go to ``--out``/ab/ (one
folder per method) for ``benchmarks/ab_sheets.py make --inputs OUT/ab/input --results
crisp=OUT/ab/crisp Real-ESRGAN=OUT/ab/Real-ESRGAN ...``.

    python benchmarks/look_quality.py --crisp CRISP.pt [--looks 0.5] [--hr FOLDER] [--crop 512]
        [--out /tmp/look_quality] [--threads 1] [--no-realesrgan]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realesrgan_ncnn import RealESRGAN, model_files  # noqa: E402

SCALE = 4
VIEW = 96  # side of the 100% crops written to look at (HR px)
AB_ROWS = (2, 5)  # nearly clean and camera: inputs and results kept for blind sheets


def _write(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.clip(np.rint(rgb), 0, 255).astype(np.uint8)[..., ::-1])


def detail(img: np.ndarray, border: int = SCALE) -> float:
    """Mean |Laplacian| of Y (BT.601, as PSNR-Y) of an HxWx3 0..255 image, borders cropped."""
    from engine.metrics import rgb_to_y

    y = rgb_to_y(np.asarray(img, np.float32))
    if border:
        y = y[border:-border, border:-border]
    return float(np.abs(cv2.Laplacian(y.astype(np.float32), cv2.CV_32F)).mean())


def _photos(folder: Path, crop: int) -> list[tuple[str, np.ndarray]]:
    from engine.data import read_rgb, scan_images

    out = []
    for path in scan_images(folder):
        img = read_rgb(path)
        h, w = img.shape[:2]
        c = min(crop, h, w)
        out.append((path.stem, img[(h - c) // 2:(h - c) // 2 + c, (w - c) // 2:(w - c) // 2 + c]))
    return out


def _cmdsr(model_path: Path, look: float, crisp: Path | None):
    from engine.inference.support import select_support
    from engine.inference.upscaler import Upscaler
    from engine.look import load_look_model

    model = load_look_model(model_path, look, crisp)
    up = Upscaler(model, method="cmdsr", device="cpu")

    def run(lr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # the support drawn as cmdsr eval's CMDSR-random draws it
        support = select_support(lr, count=model.support_size, mode="random",
                                 seed=int(rng.integers(0, 2**31)))
        return np.rint(up.upscale(lr, support)).astype(np.float32)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faithful", type=Path, help="default: the shipped cmdsr_x4.pt")
    parser.add_argument("--crisp", type=Path, help="the crisp candidate (default: the shipped one)")
    parser.add_argument("--looks", type=float, nargs="*", default=[], help="looks between 0 and 1")
    parser.add_argument("--hr", type=Path, default=Path("/work/data/corpus/val_textured"))
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/look_quality"))
    parser.add_argument("--no-realesrgan", action="store_true")
    args = parser.parse_args()

    import torch

    from engine.degrade import crop_to_multiple, degrade, user_rows
    from engine.look import crisp_model_path
    from engine.metrics import bicubic_upscale, psnr_y
    from engine.resources import default_model_path

    torch.set_num_threads(args.threads)
    faithful = args.faithful or default_model_path()
    crisp = args.crisp or crisp_model_path()
    methods = {"bicubic": lambda lr, rng: bicubic_upscale(lr, SCALE),
               "faithful": _cmdsr(faithful, 0.0, None)}
    for look in args.looks:
        methods[f"look {look:g}"] = _cmdsr(faithful, look, crisp)
    if crisp.is_file():
        methods["crisp"] = _cmdsr(faithful, 1.0, crisp)
    esr = None
    if not args.no_realesrgan:
        files = model_files()
        if isinstance(files, str):
            print(f"Real-ESRGAN left out: {files}")
        else:
            esr = RealESRGAN(threads=args.threads)
            methods["Real-ESRGAN"] = None  # cached below
    cache = args.out / "realesrgan_cache"
    views = args.out / "crops"
    cache.mkdir(parents=True, exist_ok=True)
    views.mkdir(parents=True, exist_ok=True)
    photos = _photos(args.hr, args.crop)
    psnr: dict[tuple[str, str], list[float]] = defaultdict(list)
    det: dict[tuple[str, str], list[float]] = defaultdict(list)
    rows = user_rows()
    for si, (label, params) in enumerate(rows):
        for ii, (name, hr) in enumerate(photos):
            hr_c = crop_to_multiple(hr, SCALE).astype(np.float32)
            lr = degrade(hr_c, params, SCALE, np.random.default_rng([args.seed, si, ii]))
            true_detail = detail(hr_c)
            if si in AB_ROWS:
                (args.out / "ab" / "input").mkdir(parents=True, exist_ok=True)
                _write(args.out / "ab" / "input" / f"r{si}_{name}.png", lr)
            for method, fn in methods.items():
                if method == "Real-ESRGAN":
                    cached = cache / f"{si}_{ii}_{args.crop}_{args.seed}.npy"
                    if cached.exists():
                        sr = np.load(cached).astype(np.float32)
                    else:
                        assert esr is not None
                        sr = esr.upscale(lr).astype(np.float32)
                        np.save(cached, sr.astype(np.uint8))
                else:
                    sr = fn(lr, np.random.default_rng([args.seed, si, ii, 1]))
                psnr[(label, method)].append(psnr_y(sr, hr_c, SCALE))
                det[(label, method)].append(detail(sr) / true_detail)
                if si in AB_ROWS:  # whole results for benchmarks/ab_sheets.py
                    folder = args.out / "ab" / method.replace(" ", "_")
                    folder.mkdir(parents=True, exist_ok=True)
                    _write(folder / f"r{si}_{name}.png", sr)
                if ii == 0 or si in AB_ROWS:  # a few 100% crops of every method to look at
                    h, w = hr_c.shape[:2]
                    y0, x0 = (h - VIEW) // 2, (w - VIEW) // 2
                    view = np.clip(np.rint(sr[y0:y0 + VIEW, x0:x0 + VIEW]), 0, 255).astype(np.uint8)
                    tag = method.replace(" ", "_")
                    cv2.imwrite(str(views / f"r{si}_{name}_{tag}.png"), view[..., ::-1])
            print(f"  {label}: {name} done", file=sys.stderr, flush=True)
    names = list(methods)
    print(f"\nPSNR-Y (dB) and detail (|Laplacian| of Y over the photo's), {len(photos)} photos "
          f"from {args.hr}, central {args.crop} px; faithful {faithful.name}, crisp {crisp}")
    print("| row | " + " | ".join(f"{m} PSNR-Y" for m in names) + " | "
          + " | ".join(f"{m} detail" for m in names) + " |")
    print("|---|" + "---:|" * (2 * len(names)))
    for label, _ in rows:
        cells = [f"{np.mean(psnr[(label, m)]):.2f}" for m in names]
        cells += [f"{np.mean(det[(label, m)]):.2f}" for m in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{np.mean([np.mean(psnr[(r, m)]) for r, _ in rows]):.2f}" for m in names]
    cells += [f"{np.mean([np.mean(det[(r, m)]) for r, _ in rows]):.2f}" for m in names]
    print("| mean | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
