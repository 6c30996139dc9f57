"""The one command to run whenever a GPU is lent: train CMDSR and its baseline from the
repo's weights within a budget, evaluate them on the validation photos, bring back weights,
logs and a summary.

It reads the photo corpus from a folder inside the repository tree (``train/`` and ``val/``
subfolders; ``.gpu_data/corpus`` by default, copied there and listed in .git/info/exclude so
it travels only when carried), trains both models on the same device-made batches
(``engine.training.pair``) within ``--budget`` seconds, then runs the ``cmdsr eval`` table on the
validation photos for the starting and the trained weights (PSNR/SSIM-Y against bicubic, and
blockiness). At most 8 files land in ``--out`` (the device tool brings back that many):
``cmdsr_x4.pt``, ``basenet_x4.pt`` (fp16, shipped format), ``cmdsr_x4_fp32.pt``,
``basenet_x4_fp32.pt``, ``summary.json``, ``eval.md``, ``metrics.jsonl`` (both models' training
logs, with a ``model`` key) and ``gpu_train.log``.

Preparing (on the developer machine, once per session)::

    mkdir -p .gpu_data && cp -r /work/data/corpus .gpu_data/corpus
    grep -qx '/.gpu_data/' .git/info/exclude || echo /.gpu_data/ >> .git/info/exclude

The device command (the ``run`` tool; 15 minutes of device time in all: under 7 of training, the
rest start-up, evaluation and transfers)::

    run(command="PYTHONUNBUFFERED=1 python3 scripts/gpu_train.py --corpus .gpu_data/corpus
                 --out $OUT --budget 400 --eval-crop 512",
        carry=[".gpu_data"], timeout_s=590)

On the CPU (a test of the whole chain): ``--device cpu --budget 10 --set ...`` with a tiny
model; see tests/engine/test_train_pair.py.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine import cli  # noqa: E402
from engine.training.condition import train_condition  # noqa: E402
from engine.training.pair import config_from_args, install_stop_signals, train_pair  # noqa: E402
from engine.training.run_folder import read_metrics  # noqa: E402

log = logging.getLogger("gpu_train")

MODELS = ROOT / "resources" / "models"


def default_weights(stem: str) -> Path | None:
    """The repo's fp32 weights of ``stem`` (e.g. cmdsr_x4) if present, else the shipped file."""
    for name in (f"{stem}_fp32.pt", f"{stem}.pt"):
        if (MODELS / name).exists():
            return MODELS / name
    return None


def weights_arg(text: str) -> Path | None:
    """A weights path; ``none`` (or empty) starts from the preset's initialisation."""
    return None if text.strip().lower() in ("", "none") else Path(text)


def run_eval(model: Path, baseline: Path | None, val: Path, out: Path, device: str,
             crop: int, max_images: int) -> list[dict[str, Any]]:
    """``cmdsr eval`` on ``val`` (paper-test degradation); returns the rows of its eval.csv."""
    argv = ["eval", "--hr", str(val), "--model", str(model), "--out", str(out),
            "--device", device, "--crop", str(crop), "--max-images", str(max_images)]
    if baseline is not None:
        argv += ["--baseline", str(baseline)]
    code = cli.main(argv)
    if code != 0:
        raise RuntimeError(f"cmdsr eval failed (exit {code})")
    with (out / "eval.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures a report needs: speed, the share of the script's time spent training, and
    the mean PSNR-Y of every method before and after."""
    train = summary.get("train") or {}
    out: dict[str, Any] = {
        "pair_steps_per_s": train.get("pair_steps_per_s"),
        "steps": train.get("steps"),
        "training_share_of_wall": (train.get("train_s", 0.0) / summary["wall_s"]
                                   if summary.get("wall_s") else None),
    }
    for key in ("eval_start", "eval"):
        rows = summary.get(key) or []
        out[f"{key}_psnr_y"] = {r["method"]: float(r["psnr_y"]) for r in rows}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--corpus", type=Path, default=ROOT / ".gpu_data" / "corpus",
                    help="folder with train/ and val/ photo folders")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    ap.add_argument("--budget", type=float, default=400.0,
                    help="seconds of training incl. final checkpoints and exports")
    ap.add_argument("--preset", default="studio")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--init-cmdsr", type=weights_arg, default=default_weights("cmdsr_x4"),
                    help="starting weights (default: the repo's fp32 or shipped file; none = fresh)")
    ap.add_argument("--init-baseline", type=weights_arg, default=default_weights("basenet_x4"))
    ap.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    ap.add_argument("--eval-crop", type=int, default=0, help="central crop of the val photos (0 = whole)")
    ap.add_argument("--eval-max-images", type=int, default=0)
    ap.add_argument("--no-eval-start", action="store_true", help="skip evaluating the starting weights")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--work", type=Path, help="folder for the runs' checkpoints (default: a temp folder)")
    ap.add_argument("--condition-budget", type=float, default=0.0, metavar="SECONDS",
                    help="condition-first: train the ConditionNet and its damage readout alone this "
                    "long (engine.training.condition), then start CMDSR's SR stage from it (the SR "
                    "network from --init-baseline, modulations at the identity)")
    ap.add_argument("--no-eval", action="store_true", help="evaluate nothing (bring back weights and logs)")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "gpu_train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.addHandler(logging.StreamHandler(sys.stderr))
    root.setLevel(logging.INFO)

    t_start = time.perf_counter()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.device = device
    train_dir, val_dir = args.corpus / "train", args.corpus / "val"
    if not train_dir.is_dir():
        train_dir, val_dir = args.corpus, None  # a plain folder of photos: no evaluation
    if val_dir is not None and not val_dir.is_dir():
        val_dir = None
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "init_cmdsr": str(args.init_cmdsr), "init_baseline": str(args.init_baseline),
        "corpus": str(args.corpus),
    }
    log.info("environment: %s", env)
    summary: dict[str, Any] = {"environment": env, "argv": sys.argv[1:] if argv is None else argv}

    work_ctx = tempfile.TemporaryDirectory(prefix="cmdsr_gpu_") if args.work is None else None
    work = Path(work_ctx.name) if work_ctx is not None else args.work
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        if args.no_eval:
            val_dir = None
        if val_dir is not None and not args.no_eval_start and args.init_cmdsr is not None:
            t0 = time.perf_counter()
            summary["eval_start"] = run_eval(args.init_cmdsr, args.init_baseline, val_dir,
                                             work / "eval_start", device, args.eval_crop,
                                             args.eval_max_images)
            summary["eval_start_s"] = time.perf_counter() - t0
        # The studio recipe trains in fp32 with TF32 matmuls on CUDA: bf16 autocast rounds away
        # the sub-grey-level residuals and the small modulation differences that carry the
        # condition. `--set amp=bf16` trades that for speed.
        cfg = config_from_args(args)
        summary["config_overrides"] = args.overrides
        init_cmdsr = args.init_cmdsr
        if args.condition_budget > 0:
            t0 = time.perf_counter()
            stage_cfg = dataclasses.replace(cfg, init_from=str(args.init_baseline or ""))
            init_cmdsr = train_condition(stage_cfg, train_dir, work / "condition", steps=10**9,
                                         budget_s=args.condition_budget, stop=stop)
            summary["condition_stage"] = {"seconds": time.perf_counter() - t0,
                                          "records": read_metrics(work / "condition" / "metrics.jsonl")[-3:]}
        summary["train"] = train_pair(cfg, train_dir, work / "runs", args.budget,
                                      {"cmdsr": init_cmdsr, "baseline": args.init_baseline},
                                      stop=stop, max_steps=args.max_steps)
        runs = work / "runs"
        for name in ("cmdsr_x4", "cmdsr_x4_fp32", "basenet_x4", "basenet_x4_fp32"):
            stem = name.replace("_x4", f"_x{cfg.model.scale}")
            if (runs / f"{stem}.pt").exists():
                shutil.copyfile(runs / f"{stem}.pt", out / f"{stem}.pt")
        with (out / "metrics.jsonl").open("w", encoding="utf-8") as fh:
            stage_log = work / "condition" / "metrics.jsonl"
            for rec in read_metrics(stage_log) if stage_log.exists() else []:
                fh.write(json.dumps({"model": "condition", **rec}) + "\n")
            for model in ("cmdsr", "baseline"):
                for rec in read_metrics(runs / model / "metrics.jsonl"):
                    fh.write(json.dumps({"model": model, **rec}) + "\n")
        train = summary["train"]
        train["exports"] = {k: {kk: Path(vv).name for kk, vv in v.items()}
                            for k, v in train["exports"].items()}
        tables = []
        if val_dir is not None and not stop.is_set():
            t0 = time.perf_counter()
            scale = cfg.model.scale
            summary["eval"] = run_eval(out / f"cmdsr_x{scale}.pt", out / f"basenet_x{scale}.pt",
                                       val_dir, work / "eval", device, args.eval_crop,
                                       args.eval_max_images)
            summary["eval_s"] = time.perf_counter() - t0
            if (work / "eval_start" / "eval.md").exists():
                tables.append("## Starting weights\n\n" + (work / "eval_start" / "eval.md").read_text())
            tables.append("## Trained weights\n\n" + (work / "eval" / "eval.md").read_text())
            (out / "eval.md").write_text("\n".join(tables), encoding="utf-8")
    finally:
        restore()
        summary["wall_s"] = time.perf_counter() - t_start
        summary["headline"] = headline(summary)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if work_ctx is not None:
            work_ctx.cleanup()
    log.info("done in %.0f s; results in %s", summary["wall_s"], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
