"""Decide whether a trained CMDSR model may replace the shipped default, and ship it if so.

Both models upscale the same degraded photos (the evaluation rows of photos users bring:
``engine.degrade.user_rows``; same seeds, same LR, same support draws) from one or more
validation folders. For every folder x row x support mode (random, the default of
``cmdsr upscale``, and auto) the candidate, judged as users would get it (its weights rounded to
fp16 as the installer ships them), must score a mean PSNR-Y no worse than the shipped
model's (``--tolerance`` dB, default 0); its blockiness must stay at or under
``--max-blockiness``. The script prints the table (and writes it as Markdown with ``--report``)
and exits 1 when any row is worse, so a candidate that loses on photos users see is never
shipped by accident. ``--ship`` then writes the candidate as the default model
(``cmdsr_x4.pt`` in fp16 and ``cmdsr_x4_fp32.pt``), and ``--ship-baseline FILE`` its
same-budget conditioning-off baseline beside it (``basenet_x4*.pt``).

    python scripts/promote_model.py --candidate runs/long/cmdsr_x4_fp32.pt \\
        --val /work/data/corpus/val --val /work/data/corpus/val_textured --crop 512 \\
        --report /tmp/promote.md [--ship --ship-baseline runs/long/basenet_x4_fp32.pt]
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model, read_checkpoint, save_model  # noqa: E402
from engine.cli.train import _load_photos, eval_methods  # noqa: E402
from engine.degrade import user_rows  # noqa: E402
from engine.errors import CmdsrError  # noqa: E402
from engine.metrics import evaluate  # noqa: E402
from engine.model import CMDSR  # noqa: E402

MODELS = ROOT / "resources" / "models"
MODES = ("random", "auto")


@dataclass
class Verdict:
    folder: str
    setting: str
    mode: str
    bicubic: float
    shipped: float
    candidate: float
    blockiness: float
    ahead_of_bicubic: int
    photos: int

    @property
    def delta(self) -> float:
        return self.candidate - self.shipped


def compare(candidate: CMDSR, shipped: CMDSR, folder: Path, crop: int, max_images: int) -> list[Verdict]:
    """One verdict per row x support mode on the photos of ``folder``."""
    scale = candidate.scale
    photos = _load_photos(folder, crop, max_images, scale)
    # cmdsr eval's own methods (bicubic, CMDSR-random, CMDSR-auto) for each model, renamed
    ours = dict(eval_methods(candidate, None, "cpu"))
    theirs = dict(eval_methods(shipped, None, "cpu"))
    methods: list[tuple[str, Any]] = [("bicubic", ours["bicubic"])]
    for mode in MODES:
        methods.append((f"shipped-{mode}", theirs[f"CMDSR-{mode}"]))
        methods.append((f"candidate-{mode}", ours[f"CMDSR-{mode}"]))
    rows = evaluate(photos, user_rows(), methods, scale, seed=0)
    by = {(r.setting, r.method): r for r in rows}
    out = []
    for label, _ in user_rows():
        bic = by[(label, "bicubic")]
        bic_scores = {name: p for name, p, _ in bic.per_image}
        for mode in MODES:
            cand = by[(label, f"candidate-{mode}")]
            ahead = sum(1 for name, p, _ in cand.per_image if p > bic_scores[name])
            out.append(Verdict(folder.name, label, mode, bic.psnr, by[(label, f"shipped-{mode}")].psnr,
                               cand.psnr, cand.blockiness, ahead, cand.count))
    return out


def as_shipped(model: CMDSR) -> CMDSR:
    """A copy of ``model`` with every floating-point weight rounded to fp16 and back: the
    model users would get (the installer ships fp16 files). Judging the fp32 candidate against
    the fp16 default instead made the gate refuse the default's own fp32 copy on 12 of 28 rows
    (by under 0.005 dB of rounding)."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for t in rounded.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return rounded


def table(verdicts: list[Verdict], tolerance: float, max_block: float) -> str:
    lines = ["| photos | damage | support | bicubic | shipped | candidate | change | vs bicubic | "
             "ahead of bicubic | blockiness | verdict |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for v in verdicts:
        ok = v.delta >= -tolerance and (math.isnan(v.blockiness) or v.blockiness <= max_block)
        lines.append(f"| {v.folder} | {v.setting} | {v.mode} | {v.bicubic:.2f} | {v.shipped:.2f} | "
                     f"{v.candidate:.2f} | {v.delta:+.2f} | {v.candidate - v.bicubic:+.2f} | "
                     f"{v.ahead_of_bicubic}/{v.photos} | {v.blockiness:.2f} | {'ok' if ok else 'WORSE'} |")
    return "\n".join(lines)


def ship(model: CMDSR, source: Path, stem: str) -> None:
    """Write ``model`` as ``resources/models/<stem>.pt`` (fp16, what the installer ships) and
    ``<stem>_fp32.pt`` (the start of later training), keeping the source file's training
    metadata and step."""
    _, _, meta = read_checkpoint(source)
    extra = {k: v for k, v in meta.items() if k not in ("format", "version", "step", "train_state")}
    extra["promoted"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    extra["promoted_from"] = source.name
    step = int(meta.get("step", 0))
    save_model(model, MODELS / f"{stem}.pt", step=step, half=True, extra=extra)
    save_model(model, MODELS / f"{stem}_fp32.pt", step=step, half=False, extra=extra)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--candidate", type=Path, required=True, help="the trained CMDSR model file")
    ap.add_argument("--shipped", type=Path, default=MODELS / "cmdsr_x4.pt",
                    help="the model it would replace (default: the shipped default)")
    ap.add_argument("--val", type=Path, action="append", required=True,
                    help="folder of validation photos (repeatable); never the photos it trained on")
    ap.add_argument("--crop", type=int, default=512, help="central HR crop of each photo (0 = whole)")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--tolerance", type=float, default=0.0, help="dB a row may lose (default 0)")
    ap.add_argument("--max-blockiness", type=float, default=1.4)
    ap.add_argument("--report", type=Path, help="write the table as Markdown here")
    ap.add_argument("--ship", action="store_true", help="write the candidate as the default model if it passes")
    ap.add_argument("--ship-baseline", type=Path, help="its conditioning-off baseline, shipped beside it")
    args = ap.parse_args(argv)
    try:
        candidate, shipped = load_model(args.candidate), load_model(args.shipped)
        if not candidate.conditioned or candidate.scale != shipped.scale:
            raise CmdsrError(f"{args.candidate}: must be a conditioned x{shipped.scale} CMDSR model")
        t0 = time.perf_counter()
        judged = as_shipped(candidate)
        verdicts = [v for folder in args.val
                    for v in compare(judged, shipped, folder, args.crop, args.max_images)]
    except CmdsrError as exc:
        print(f"promote_model: {exc}", file=sys.stderr)
        return 2
    text = table(verdicts, args.tolerance, args.max_blockiness)
    worse = [v for v in verdicts if v.delta < -args.tolerance
             or (not math.isnan(v.blockiness) and v.blockiness > args.max_blockiness)]
    summary = (f"candidate {args.candidate} vs shipped {args.shipped}: "
               f"{len(verdicts) - len(worse)}/{len(verdicts)} rows no worse "
               f"({time.perf_counter() - t0:.0f} s)")
    print(text + "\n\n" + summary)
    if args.report:
        args.report.write_text(f"{text}\n\n{summary}\n", encoding="utf-8")
    if worse:
        print(f"promote_model: refused: worse on {len(worse)} row(s), e.g. "
              f"{worse[0].folder} / {worse[0].setting} / {worse[0].mode} ({worse[0].delta:+.2f} dB)",
              file=sys.stderr)
        return 1
    if args.ship:
        stem = f"cmdsr_x{candidate.scale}"
        ship(candidate, args.candidate, f"cmdsr_x{candidate.scale}")
        if args.ship_baseline:
            base = load_model(args.ship_baseline)
            ship(base, args.ship_baseline, f"basenet_x{base.scale}")
        print(f"shipped: {MODELS / (stem + '.pt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
