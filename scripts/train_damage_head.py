"""Give a model file a damage readout: train the small head that reads blur sigma, noise sigma
and the JPEG quality from the model's condition vector, on synthetic tasks from a folder of
photos.

    nice -n 15 python scripts/train_damage_head.py --model resources/models/cmdsr_x4.pt \
        --data /work/data/corpus/train --out cmdsr_x4_with_head.pt

The model stays frozen; the output file is the input file (same parameters, precision and
metadata) plus the head and its measured errors on held-out photos. A model whose readout
reads blur and noise only keeps those readings and gains the JPEG one (``--refit``: fit all
three afresh). About 4 minutes on one CPU core for the default 4000 tasks with the full-size
model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from engine.checkpoint import load_model
from engine.damage_head import TRAIN_JPEG_SHARE, attach_damage_head
from engine.errors import CmdsrError
from engine.training.damage_fit import (
    evaluate_jpeg_readout,
    evaluate_readout,
    logged_progress,
    save_damage_head,
    train_damage_head,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model file to read from")
    parser.add_argument("--data", type=Path, required=True, help="folder of training photos")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--tasks", type=int, default=4000, help="synthetic tasks (default 4000)")
    parser.add_argument("--epochs", type=int, default=400, help="head fitting epochs")
    parser.add_argument("--val", type=Path,
                        help="folder of validation photos: also report the readout's errors there")
    parser.add_argument("--jpeg-share", type=float, default=TRAIN_JPEG_SHARE,
                        help="share of tasks JPEG-compressed at quality 30-95 (default "
                             "%(default)g; 0: a readout of blur and noise only)")
    parser.add_argument("--refit", action="store_true",
                        help="fit blur and noise afresh too, instead of keeping the model's own")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    log = logging.getLogger("train_damage_head")
    if args.out.exists() and not args.overwrite and args.out.resolve() != args.model.resolve():
        print(f"train_damage_head: {args.out} exists (use --overwrite)", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    try:
        model = load_model(args.model)
        progress = logged_progress(log)

        head, report = train_damage_head(model, args.data, tasks=args.tasks, epochs=args.epochs,
                                         seed=args.seed, jpeg_share=args.jpeg_share,
                                         keep_blur_noise=not args.refit, progress=progress)
        info: dict[str, float | int] = dict(report.as_dict())
        if args.val:
            attach_damage_head(model, head)
            blur_mae, noise_mae = evaluate_readout(model, args.val)
            info.update(val_blur_mae=round(blur_mae, 4), val_noise_mae=round(noise_mae, 4))
            log.info("validation photos: blur MAE %.3f (sigma 0.6-3.6, noise <= 15), noise MAE "
                     "%.2f levels (noise 0-50)", blur_mae, noise_mae)
            if head.reads_jpeg:
                jpeg_mae, compressed_mae = evaluate_jpeg_readout(model, args.val)
                info.update(val_jpeg_mae=round(jpeg_mae, 3),
                            val_jpeg_mae_compressed=round(compressed_mae, 3))
                log.info("validation photos: JPEG quality MAE %.1f (%.1f on the compressed "
                         "ones)", jpeg_mae, compressed_mae)
        save_damage_head(args.model, head, args.out, info=info)
    except CmdsrError as exc:
        print(f"train_damage_head: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(args.out), **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
