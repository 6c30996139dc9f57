"""Learning curves of the paper's learning dynamics against the studio recipe's, on the CPU.

Same photos, same data stream (the paper's degradations, uniform patches, unpaired tasks),
same steps and batch; only the learning dynamics differ:

* ``paper``: raw N(0,1) equalised weights stepped at the base rate (a 64-channel 3x3 conv's
  effective weight moves 24x slower than the rate says), nearest-neighbour start, constant rate;
* ``studio``: per-layer step sizes that undo the equalisation, exact bicubic start, warm-up
  and cosine decay over the same steps.

Validation PSNR-Y (and bicubic's, for reference) is printed at fixed steps.

    python benchmarks/learning_curve.py --data /work/data/corpus/train \\
        --val /work/data/corpus/val --steps 300 --every 75
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.training.config import TrainConfig  # noqa: E402
from engine.training.loop import train  # noqa: E402
from engine.training.run_folder import read_metrics  # noqa: E402


def arms(steps: int, every: int, args: argparse.Namespace) -> dict[str, TrainConfig]:
    common = dict(
        steps=steps, val_every=every, checkpoint_every=steps, log_every=every,
        tasks_per_batch=4, lr_patch=args.lr_patch, sr_patches_per_task=args.sr_patches,
        val_crop=args.val_crop, val_images=args.val_images, threads=args.threads,
        num_workers=0, cache_crops_per_image=16, cache_crop_size=192, lr_base=args.lr,
        lr_cond=args.lr, seed=args.seed,
    )
    paper = dataclasses.replace(TrainConfig.preset("cpu"), **common,
                                milestones=(10 * steps,), init="identity")
    studio = dataclasses.replace(paper, init="bicubic", lr_per_layer=True, lr_schedule="cosine",
                                 warmup_steps=max(1, steps // 10))
    return {"paper": paper, "studio": studio}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=75)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lr-patch", type=int, default=24)
    ap.add_argument("--sr-patches", type=int, default=4)
    ap.add_argument("--val-crop", type=int, default=192)
    ap.add_argument("--val-images", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    curves: dict[str, dict[int, float]] = {}
    bicubic = float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in arms(args.steps, args.every, args).items():
            t0 = time.perf_counter()
            run = Path(tmp) / name
            train(cfg, run, args.data, args.val, cache_dir=Path(tmp) / "cache")
            recs = [r for r in read_metrics(run / "metrics.jsonl") if r.get("kind") == "val"]
            curves[name] = {r["step"]: r["val_psnr"] for r in recs}
            bicubic = recs[-1].get("bicubic_psnr", bicubic)
            print(f"{name}: {args.steps} steps in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    steps = sorted(set().union(*[c.keys() for c in curves.values()]))
    print(f"validation PSNR-Y (dB) at fixed steps; {args.val_images} photos from {args.val}, "
          f"central {args.val_crop} px, paper-test damage; bicubic {bicubic:.2f} dB")
    print()
    print("| step | " + " | ".join(curves) + " | studio - paper |")
    print("|---:|" + "---:|" * (len(curves) + 1))
    for s in steps:
        vals = [curves[n].get(s, float("nan")) for n in curves]
        print(f"| {s} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {vals[-1] - vals[0]:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
