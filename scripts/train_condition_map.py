"""Give a model file damage knobs: fit the condition map that turns (blur sigma, noise sigma,
JPEG quality) into the condition the model's ConditionNet makes for such damage, on synthetic
tasks from a folder of photos (``engine.condition_map``).

    nice -n 15 python scripts/train_condition_map.py --model resources/models/cmdsr_x4.pt \\
        --data /work/data/corpus/train --out resources/models/cmdsr_x4.pt --overwrite

The model stays frozen; the output file is the input file (same parameters, precision and
metadata) plus the map and its measured error on held-out photos. Only a model whose
condition encodes the damage (the high-pass ConditionNet) gives knobs worth having.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.condition_map import FIT_BLUR, FIT_NOISE  # noqa: E402
from engine.damage_head import TRAIN_JPEG_SHARE  # noqa: E402
from engine.errors import CmdsrError  # noqa: E402
from engine.training.damage_fit import (  # noqa: E402
    logged_progress,
    save_condition_map,
    train_condition_map,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model file to read from")
    parser.add_argument("--data", type=Path, required=True, help="folder of training photos")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--tasks", type=int, default=4000, help="synthetic tasks (default 4000)")
    parser.add_argument("--jpeg-share", type=float, default=TRAIN_JPEG_SHARE,
                        help="share of tasks JPEG-compressed at quality 30-95 (default "
                             "%(default)g; 0: knobs for blur and noise only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    log = logging.getLogger("train_condition_map")
    if args.out.exists() and not args.overwrite:
        print(f"train_condition_map: {args.out} exists (use --overwrite)", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    try:
        model = load_model(args.model)
        progress = logged_progress(log)

        cmap, report = train_condition_map(model, args.data, tasks=args.tasks, seed=args.seed,
                                           jpeg_share=args.jpeg_share, progress=progress)
        info = {"tasks": report.train_tasks, "held_out": report.val_tasks,
                "relative_error": round(report.relative_error, 4),
                "blur_range": list(FIT_BLUR), "noise_range": list(FIT_NOISE)}
        if cmap.jpeg_range is not None:
            info["jpeg_range"] = list(cmap.jpeg_range)
        save_condition_map(args.model, cmap, args.out, info=info)
    except CmdsrError as exc:
        print(f"train_condition_map: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(args.out), **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
