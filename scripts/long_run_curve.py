"""The long CPU run with its learning curve: train CMDSR and its baseline side by side in
stretches (``engine.training.pair``, resumed each time), and after every stretch evaluate the
exported weights (the moving average when ``ema_decay`` is set) on the evaluation rows of photos
users bring, on held-out photos, with fixed seeds (the same LR and support draws every time, so
two points of the curve differ only by the weights).

Each point is appended to ``OUT/curve.jsonl`` (step, CPU seconds, PSNR-Y per folder x row for
bicubic, the baseline and CMDSR), each stretch's exports are kept under ``OUT/points/step_N/``,
and ``OUT/best.json`` names the point with the best mean CMDSR PSNR-Y over all rows: the one to
put through ``scripts/promote_model.py``, never simply the newest.

    python scripts/long_run_curve.py --data /work/data/corpus/train --out /work/runs/curve \\
        --val /work/data/corpus/val --val /work/data/corpus/val_textured \\
        --init-cmdsr resources/models/cmdsr_x4_fp32.pt --init-baseline resources/models/basenet_x4_fp32.pt \\
        --stretch 1200 --total 7200 --set ema_decay=0.999
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.cli.train import _load_photos, eval_methods  # noqa: E402
from engine.config import apply_overrides  # noqa: E402
from engine.degrade import user_rows  # noqa: E402
from engine.metrics import evaluate  # noqa: E402
from engine.training.config import TrainConfig  # noqa: E402
from engine.training.pair import install_stop_signals, train_pair  # noqa: E402

log = logging.getLogger("long_run_curve")

# the recipe of the long CPU run: the users mix at CPU batch size, the ConditionNet held (it
# moved under an SR net tuned to it in the first CPU stretch), a short warm-up for the fresh
# optimiser, a constant small rate, and the moving average as the result
RECIPE = ["tasks_per_batch=4", "sr_patches_per_task=8", "cond_freeze_steps=1000000000",
          "lr_base=3e-5", "lr_schedule=multistep", "warmup_steps=100", "milestones=[100000000]",
          "threads=2", "log_every=20", "checkpoint_every=100", "ema_decay=0.999", "device=cpu"]


def evaluate_point(cmdsr_file: Path, baseline_file: Path, folders: list[Path], crop: int,
                   max_images: int) -> dict[str, Any]:
    """PSNR-Y per folder x row: bicubic, baseline, CMDSR with random support (as users run it)."""
    model, baseline = load_model(cmdsr_file), load_model(baseline_file)
    methods = [(n, f) for n, f in eval_methods(model, baseline, "cpu") if n != "CMDSR-auto"]
    out: dict[str, Any] = {}
    for folder in folders:
        photos = _load_photos(folder, crop, max_images, model.scale)
        rows = evaluate(photos, user_rows(), methods, model.scale, seed=0)
        out[folder.name] = {f"{r.setting} | {r.method}": round(r.psnr, 4) for r in rows}
    return out


def mean_of(point: dict[str, Any], method: str) -> float:
    vals = [v for scores in point["psnr"].values() for k, v in scores.items() if k.endswith(f"| {method}")]
    return sum(vals) / len(vals)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--val", type=Path, action="append", required=True)
    ap.add_argument("--init-cmdsr", type=Path)
    ap.add_argument("--init-baseline", type=Path)
    ap.add_argument("--preset", default="users", choices=TrainConfig.PRESETS)
    ap.add_argument("--stretch", type=float, default=1200, help="seconds of training between points")
    ap.add_argument("--total", type=float, default=7200, help="seconds of training in all (this call)")
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = apply_overrides(TrainConfig.preset(args.preset), [*RECIPE, *args.overrides])
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    curve = out / "curve.jsonl"
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        if not curve.exists() and args.init_cmdsr and args.init_baseline:
            t0 = time.perf_counter()
            point = {"step": 0, "train_s": 0.0, "time": time.time(),
                     "psnr": evaluate_point(args.init_cmdsr, args.init_baseline, args.val, args.crop,
                                            args.max_images)}
            log.info("start: CMDSR %.3f dB, baseline %.3f dB (eval %.0f s)", mean_of(point, "CMDSR-random"),
                     mean_of(point, "baseline"), time.perf_counter() - t0)
            with curve.open("a", encoding="utf-8") as f:
                f.write(json.dumps(point) + "\n")
        spent = 0.0
        # a leftover of under a minute is not worth a point (each costs minutes of evaluation)
        while args.total - spent >= min(60.0, args.stretch) and not stop.is_set():
            resume = (out / "cmdsr" / "latest.pt").exists()
            init = None if resume else {"cmdsr": args.init_cmdsr, "baseline": args.init_baseline}
            summary = train_pair(cfg, args.data, out, min(args.stretch, args.total - spent), init,
                                 resume=resume, stop=stop)
            spent += summary["total_s"]
            step = summary["last_step"]
            keep = out / "points" / f"step_{step:06d}"
            keep.mkdir(parents=True, exist_ok=True)
            for name in ("cmdsr_x4_fp32.pt", "basenet_x4_fp32.pt"):
                shutil.copyfile(out / name, keep / name)
            prev = [json.loads(line) for line in curve.read_text().splitlines()] if curve.exists() else []
            train_s = (prev[-1]["train_s"] if prev else 0.0) + summary["train_s"]
            point = {"step": step, "train_s": round(train_s, 1), "time": time.time(),
                     "pair_steps_per_s": summary["pair_steps_per_s"],
                     "psnr": evaluate_point(keep / "cmdsr_x4_fp32.pt", keep / "basenet_x4_fp32.pt",
                                            args.val, args.crop, args.max_images)}
            with curve.open("a", encoding="utf-8") as f:
                f.write(json.dumps(point) + "\n")
            points = [*prev, point]
            best = max(points, key=lambda p: mean_of(p, "CMDSR-random"))
            (out / "best.json").write_text(json.dumps({"step": best["step"],
                                                       "mean_cmdsr": mean_of(best, "CMDSR-random")}) + "\n")
            log.info("step %d: CMDSR %.3f dB, baseline %.3f dB; best so far step %d", step,
                     mean_of(point, "CMDSR-random"), mean_of(point, "baseline"), best["step"])
    finally:
        restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
