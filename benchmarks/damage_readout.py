"""How well does a model file's damage readout read blur, noise and JPEG? (issues 17 and 29)

On photos the readout never saw, each photo degraded at known blur and noise with fixed seeds
(``engine.training.damage_fit.evaluate_readout``): the mean absolute error of the blur sigma over blur
0.6-3.6 at noise <= 15, and of the noise sigma over noise 0-50, plus the errors per band so a
good mean cannot hide a band the readout cannot tell apart. For a readout that reads JPEG, a
second table: tasks with JPEG 30-95 on 60% of them and none on the rest (none is quality
100), the JPEG quality MAE over all of them (noise 0-50, and noise <= 15), per quality band,
how often a photo without JPEG reads as "no JPEG seen", and the blur and noise MAE on that mix.

    nice -n 15 python benchmarks/damage_readout.py --photos /work/data/corpus/val \\
        --model resources/models/cmdsr_x4.pt [--model other.pt ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.damage_head import NO_JPEG, TRAIN_JPEG_SHARE, damage_head_of  # noqa: E402
from engine.inference.damage import JPEG_SEEN_BELOW  # noqa: E402
from engine.training.damage_fit import synthetic_tasks  # noqa: E402

BLUR_BANDS = ((0.6, 1.5), (1.5, 2.5), (2.5, 3.6))
NOISE_BANDS = ((0, 5), (5, 20), (20, 35), (35, 50))
JPEG_BANDS = ((30, 60), (60, 95), (100, 100))


def band_mae(pred: torch.Tensor, truth: torch.Tensor, lo: float, hi: float) -> str:
    rows = (truth >= lo - 1e-6) & (truth <= hi + 1e-6)
    return f"{float((pred[rows] - truth[rows]).abs().mean()):.2f}" if rows.any() else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="model file (repeatable)")
    ap.add_argument("--photos", type=Path, required=True, help="folder of HR photos")
    ap.add_argument("--tasks", type=int, default=600, help="synthetic tasks per figure (default 600)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    head_row = ["model", "blur MAE", *(f"blur {lo}-{hi}" for lo, hi in BLUR_BANDS),
                "noise MAE", *(f"noise {lo}-{hi}" for lo, hi in NOISE_BANDS)]
    print("| " + " | ".join(head_row) + " |")
    print("|---" + "|---:" * (len(head_row) - 1) + "|")
    jpeg_rows: list[list[str]] = []
    for path in args.model:
        model = load_model(path)
        head = damage_head_of(model)
        if head is None:
            print(f"| {path.name} | no damage readout |" + " |" * (len(head_row) - 2))
            continue
        conds, truth, _ = synthetic_tasks(model, args.photos, args.tasks, seed=1, blur=(0.6, 3.6),
                                          noise=(0.0, 15.0))
        with torch.inference_mode():
            blur = head(conds)[:, 0].clamp_min(0.0)
        conds, truth_n, _ = synthetic_tasks(model, args.photos, args.tasks, seed=2, noise=(0.0, 50.0))
        with torch.inference_mode():
            noise = head(conds)[:, 1].clamp_min(0.0)
        cells = [path.name, f"{float((blur - truth[:, 0]).abs().mean()):.2f}",
                 *(band_mae(blur, truth[:, 0], lo, hi) for lo, hi in BLUR_BANDS),
                 f"{float((noise - truth_n[:, 1]).abs().mean()):.2f}",
                 *(band_mae(noise, truth_n[:, 1], lo, hi) for lo, hi in NOISE_BANDS)]
        print("| " + " | ".join(cells) + " |", flush=True)
        if head.reads_jpeg:
            jpeg_rows.append(jpeg_row(model, head, path, args.photos, args.tasks))
    if jpeg_rows:
        names = ["model", "JPEG MAE", "noise <= 15", *(f"JPEG {lo}-{hi}" if hi < 100 else "none"
                                                      for lo, hi in JPEG_BANDS),
                 "none read as none", "blur MAE (mix)", "noise MAE (mix)"]
        print()
        print("| " + " | ".join(names) + " |")
        print("|---" + "|---:" * (len(names) - 1) + "|")
        for row in jpeg_rows:
            print("| " + " | ".join(row) + " |")
    return 0


def jpeg_row(model, head, path: Path, photos: Path, tasks: int) -> list[str]:
    """The JPEG table's cells for one model: tasks with blur 0.6-3.6 and the training's JPEG
    share (fixed seeds), noise 0-50 and again noise <= 15."""
    conds, truth, _ = synthetic_tasks(model, photos, tasks, seed=3, blur=(0.6, 3.6),
                                      noise=(0.0, 50.0), jpeg_share=TRAIN_JPEG_SHARE)
    with torch.inference_mode():
        pred = head(conds).clamp_min(0.0)
    quality = pred[:, 2].clamp(1.0, NO_JPEG)
    none = truth[:, 2] >= NO_JPEG
    told = float((quality[none] >= JPEG_SEEN_BELOW).float().mean()) if none.any() else float("nan")
    blur_rows = truth[:, 1] <= 15
    conds15, truth15, _ = synthetic_tasks(model, photos, tasks, seed=4, blur=(0.6, 3.6),
                                          noise=(0.0, 15.0), jpeg_share=TRAIN_JPEG_SHARE)
    with torch.inference_mode():
        quality15 = head(conds15)[:, 2].clamp(1.0, NO_JPEG)
    return [path.name, f"{float((quality - truth[:, 2]).abs().mean()):.1f}",
            f"{float((quality15 - truth15[:, 2]).abs().mean()):.1f}",
            *(band_mae(quality, truth[:, 2], lo, hi) for lo, hi in JPEG_BANDS),
            f"{100 * told:.0f}%",
            f"{float((pred[blur_rows, 0] - truth[blur_rows, 0]).abs().mean()):.2f}",
            f"{float((pred[:, 1] - truth[:, 1]).abs().mean()):.2f}"]


if __name__ == "__main__":
    sys.exit(main())
