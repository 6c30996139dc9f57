"""Training speed: steps/s, patches/s and the share of time spent waiting for data.

Runs the real ``engine.train.train`` loop for a few steps per preset on a photo folder
(``--data``; by default synthetic photos are generated, since real photos may not be at hand)
and, separately, times how long one process needs to build a batch (crop cache on vs. off).

    python benchmarks/train_speed.py                       # cpu preset, 30 steps
    python benchmarks/train_speed.py --presets cpu reference --steps 30 3
    python benchmarks/train_speed.py --data /work/data/corpus/train --threads 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.data import TaskBatches, open_training_source, write_synthetic_photos  # noqa: E402
from engine.train import TrainConfig, read_metrics, train  # noqa: E402


def time_data(cfg: TrainConfig, data: Path, cache_dir: Path, cached: bool, batches: int) -> dict[str, float]:
    """Seconds to open the source and ms per batch for one process (no model)."""
    t0 = time.perf_counter()
    src = open_training_source(data, cfg.hr_patch, cache_dir,
                               cfg.cache_crops_per_image if cached else 0,
                               cfg.cache_crop_size, cfg.seed, cfg.hr_downscale)
    setup = time.perf_counter() - t0
    ds = TaskBatches(src, cfg.degradation, cfg.model.scale, cfg.lr_patch, cfg.model.support_size,
                     cfg.tasks_per_batch, cfg.seed, batches)
    t0 = time.perf_counter()
    for i in range(batches):
        ds[i]
    return {"setup_s": setup, "ms_per_batch": 1000 * (time.perf_counter() - t0) / batches}


def time_training(cfg: TrainConfig, data: Path, workdir: Path, steps: int, warmup: int) -> dict[str, float]:
    cfg = dataclasses.replace(cfg, steps=warmup + steps, log_every=1, checkpoint_every=10**9,
                              val_every=10**9)
    run = workdir / f"run_{time.monotonic_ns()}"
    t0 = time.perf_counter()
    train(cfg, run, data, cache_dir=workdir / "cache")
    wall = time.perf_counter() - t0
    recs = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"][warmup:]
    times = np.array([1.0 / r["steps_per_s"] for r in recs])
    waits = np.array([r["data_wait_share"] for r in recs]) * times
    total = float(times.sum())
    per_step_patches = cfg.tasks_per_batch * cfg.sr_patches
    return {
        "steps": len(recs),
        "steps_per_s": len(recs) / total,
        "sr_patches_per_s": len(recs) * per_step_patches / total,
        "lr_pixels_per_s": len(recs) * per_step_patches * cfg.lr_patch**2 / total,
        "data_wait_share": float(waits.sum()) / total,
        "wall_s": wall,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="folder of HR photos (default: generated)")
    ap.add_argument("--presets", nargs="+", default=["cpu"], choices=TrainConfig.PRESETS)
    ap.add_argument("--steps", nargs="+", type=int, default=[30],
                    help="timed steps per preset (one value, or one per preset)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", nargs="+", type=int, default=[torch.get_num_threads()])
    ap.add_argument("--workers", type=int, default=None, help="override num_workers")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    from engine.config import apply_overrides

    steps = args.steps * len(args.presets) if len(args.steps) == 1 else args.steps
    results = []
    with tempfile.TemporaryDirectory(prefix="cmdsr_bench_") as tmp:
        work = Path(tmp)
        data = args.data
        if data is None:
            data = work / "photos"
            write_synthetic_photos(data, 16, (600, 800), seed=0)
        for preset, n in zip(args.presets, steps, strict=True):
            cfg = apply_overrides(TrainConfig.preset(preset), args.overrides)
            if args.workers is not None:
                cfg = dataclasses.replace(cfg, num_workers=args.workers)
            for threads in args.threads:
                torch.set_num_threads(threads)
                cached = time_data(cfg, data, work / "cache_probe", True, 5) if cfg.cache_crops_per_image else None
                disk = time_data(cfg, data, work / "cache_probe", False, 3)
                tr = time_training(cfg, data, work, n, args.warmup)
                row = {"preset": preset, "threads": threads, "num_workers": cfg.num_workers,
                       "tasks": cfg.tasks_per_batch, "sr_patches_per_task": cfg.sr_patches,
                       "lr_patch": cfg.lr_patch, **tr,
                       "batch_ms_cached": None if cached is None else cached["ms_per_batch"],
                       "cache_build_s": None if cached is None else cached["setup_s"],
                       "batch_ms_decoding": disk["ms_per_batch"]}
                results.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    print("| preset | threads | workers | steps/s | BaseNet patches/s | data wait | "
          "batch build, cached | batch build, decoding |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cached = "-" if r["batch_ms_cached"] is None else f"{r['batch_ms_cached']:.0f} ms"
        print(f"| {r['preset']} | {r['threads']} | {r['num_workers']} | {r['steps_per_s']:.3f} | "
              f"{r['sr_patches_per_s']:.1f} | {r['data_wait_share']:.1%} | {cached} | "
              f"{r['batch_ms_decoding']:.0f} ms |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
