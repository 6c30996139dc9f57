"""Train the shipped default models (CMDSR ``cmdsr_x4`` and its conditioning-off baseline
``basenet_x4``) side by side within a fixed wall-clock budget, e.g. one lent GPU session.

    python scripts/train_default_models.py --corpus CORPUS --work /tmp/runs --out OUT --budget 540

Both runs use the same recipe and the same number of steps (the paper's same-budget
comparison):

1. phase 1 at a constant learning rate, both runs side by side until a time limit
   (``cmdsr train --time-limit``); the baseline is faster, so it is cut back to the
   CMDSR run's last checkpoint step;
2. phase 2 fine-tunes both from that common step with the learning rate divided by 10 for
   the same number of steps (sized from the CMDSR run's measured speed).

After each phase both models are exported to OUT (fp16 files as shipped in
resources/models/, fp32 copies as starting points for further training), so a budget that
runs out in phase 2 still leaves phase 1's models. OUT also gets ``summary.json`` (steps,
speeds, validation curve) and ``runs.tar.gz`` (configs, metrics and logs of the four runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The GPU recipe: the paper's batch (8 tasks x S=20, LR patches 48) from the shipped CPU
# checkpoints, lr 2e-4 then 2e-5, HR crops decoded once into a cache shared by all runs.
RECIPE = [
    "tasks_per_batch=8", "lr_patch=48", "sr_patches_per_task=0",
    "keep_checkpoints=100000", "log_every=20",
    "val_every=250", "val_crop=256", "val_images=0",
    "num_workers=6", "cache_crops_per_image=48", "cache_crop_size=384",
]
LR_PHASE1, LR_PHASE2 = 2e-4, 2e-5
MODELS = {"cmdsr": "cmdsr_x4", "basenet": "basenet_x4"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_cmd(run: Path, corpus: Path, init_from: Path, baseline: bool, steps: int,
              lr: float, amp: str, extra: list[str], time_limit: float, every: int) -> list[str]:
    cmd = [sys.executable, "-m", "engine", "train", "--data", str(corpus / "train"),
           "--val", str(corpus / "val"), "--out", str(run), "--steps", str(steps),
           "--no-progress", "--time-limit", f"{max(time_limit, 1.0):.0f}s"]
    if baseline:
        cmd.append("--baseline")
    for item in [*RECIPE, f"lr_base={lr}", f"lr_cond={lr}", f"amp={amp}",
                 f"init_from={init_from}",
                 f"checkpoint_every={every}", *extra]:
        cmd += ["--set", item]
    return cmd


def start(cmd: list[str], run: Path, cache: Path) -> subprocess.Popen[bytes]:
    run.mkdir(parents=True, exist_ok=True)
    link = run / "cache"
    if not link.exists():
        link.symlink_to(cache, target_is_directory=True)  # one crop cache for every run
    with open(run.with_suffix(".log"), "wb") as out:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def wait_all(procs: dict[str, subprocess.Popen[bytes]], deadline: float) -> dict[str, int]:
    """Wait for the runs; past ``deadline`` ask them to pause (SIGINT = checkpoint, then stop)."""
    codes: dict[str, int] = {}
    interrupted = False
    while len(codes) < len(procs):
        for name, p in procs.items():
            if name not in codes and p.poll() is not None:
                codes[name] = p.returncode
        if not interrupted and time.monotonic() > deadline:
            log("deadline: pausing the runs")
            for p in procs.values():
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            interrupted = True
        time.sleep(0.5)
    return codes


def steps_of(run: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))


def records(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def speed(run: Path) -> float:
    """Median steps/s of the run's training records (its later half: past the warm-up)."""
    rates = sorted(r["steps_per_s"] for r in records(run) if r.get("kind") == "train")
    rates = rates[len(rates) // 2:] or rates
    return rates[len(rates) // 2] if rates else 0.0


def export(run: Path, step: int, out: Path, name: str) -> None:
    ckpt = run / "checkpoints" / f"step_{step:07d}.pt"
    # the engine importable also where the project is not pip-installed (a bare GPU machine)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for flag, target in (([], out / f"{name}.pt"), (["--fp32"], out / f"{name}_fp32.pt")):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "export_model.py"), str(run),
                        str(target), "--checkpoint", str(ckpt), *flag], check=True, cwd=ROOT, env=env)


def probe_amp(corpus: Path, work: Path, init: Path) -> str:
    """bf16 autocast on a CUDA GPU if three tiny steps run with it, else fp32 (TF32)."""
    import torch

    if not torch.cuda.is_available():
        return "off"
    run = work / "probe"
    cmd = [sys.executable, "-m", "engine", "train", "--data", str(corpus / "train"), "--out",
           str(run), "--steps", "3", "--no-progress", "--set", "amp=bf16", "--set",
           "tasks_per_batch=2", "--set", "lr_patch=24", "--set", "num_workers=0",
           "--set", f"init_from={init}"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        log(f"bf16 probe failed, training in fp32/TF32:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        return "off"
    return "bf16"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="folder with train/ and val/")
    ap.add_argument("--work", type=Path, required=True, help="folder for the runs (new)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the exported models")
    ap.add_argument("--budget", type=float, required=True, help="wall-clock seconds in all")
    ap.add_argument("--phase2-share", type=float, default=0.2,
                    help="share of the training time spent at the lower learning rate")
    ap.add_argument("--init-cmdsr", type=Path, default=ROOT / "resources/models/cmdsr_x4.pt")
    ap.add_argument("--init-basenet", type=Path, default=ROOT / "resources/models/basenet_x4.pt")
    ap.add_argument("--checkpoint-every", type=int, default=100,
                    help="steps between checkpoints (the granularity of the common step)")
    ap.add_argument("--reserve", type=float, default=45.0,
                    help="seconds kept back twice (phase 2's start-up, the exports)")
    ap.add_argument("--amp", choices=("auto", "off", "bf16"), default="auto")
    ap.add_argument("--set", dest="extra", action="append", default=[],
                    help="extra training setting for every run (e.g. to test on a CPU)")
    args = ap.parse_args()
    # the runs and exports work in ROOT, so relative paths must not be read from there
    for name in ("corpus", "work", "out", "init_cmdsr", "init_basenet"):
        setattr(args, name, getattr(args, name).resolve())
    t0 = time.monotonic()
    deadline = t0 + args.budget
    reserve = args.reserve
    every = args.checkpoint_every
    args.work.mkdir(parents=True, exist_ok=False)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.work / "cache"
    cache.mkdir()
    inits = {"cmdsr": args.init_cmdsr, "basenet": args.init_basenet}
    amp = probe_amp(args.corpus, args.work, args.init_basenet) if args.amp == "auto" else args.amp
    log(f"amp={amp}; {deadline - time.monotonic():.0f} s left")
    summary: dict[str, Any] = {"amp": amp, "budget_s": args.budget, "recipe": RECIPE, "phases": []}
    try:
        import torch

        summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception as exc:  # noqa: BLE001 - informational only
        summary["device"] = f"unknown ({exc})"

    # ---- phase 1: constant learning rate until the time limit
    left = deadline - time.monotonic() - 2 * reserve
    t1 = left * (1 - args.phase2_share)
    runs1 = {k: args.work / f"{k}_p1" for k in MODELS}
    procs = {k: start(train_cmd(runs1[k], args.corpus, inits[k], k == "basenet", 1_000_000,
                                LR_PHASE1, amp, args.extra, t1, every), runs1[k], cache)
             for k in MODELS}
    codes = wait_all(procs, t0 + args.budget - 2 * reserve)
    log(f"phase 1 exit codes {codes}")
    common = [s for s in steps_of(runs1["cmdsr"]) if s in set(steps_of(runs1["basenet"]))]
    if not common:
        log("phase 1 left no common checkpoint")
        return 1
    n1 = common[-1]
    v1 = speed(runs1["cmdsr"])
    summary["phases"].append({"steps": n1, "lr": LR_PHASE1, "exit_codes": codes,
                              "steps_per_s": {k: speed(r) for k, r in runs1.items()}})
    for k, name in MODELS.items():
        export(runs1[k], n1, args.out, name)
    log(f"phase 1: common step {n1}, CMDSR {v1:.2f} steps/s; exported")

    # ---- phase 2: lr / 10 for the same number of steps in both runs
    left = deadline - time.monotonic() - reserve
    n2 = int(v1 * (left - 25)) // every * every  # 25 s: start-up of the runs
    if n2 >= every:
        runs2 = {k: args.work / f"{k}_p2" for k in MODELS}
        ck = {k: runs1[k] / "checkpoints" / f"step_{n1:07d}.pt" for k in MODELS}
        procs = {k: start(train_cmd(runs2[k], args.corpus, ck[k], k == "basenet", n2, LR_PHASE2,
                                    amp, args.extra, left, every), runs2[k], cache)
                 for k in MODELS}
        codes = wait_all(procs, deadline - reserve / 2)
        done = [s for s in steps_of(runs2["cmdsr"]) if s in set(steps_of(runs2["basenet"]))]
        log(f"phase 2 exit codes {codes}, common steps up to {done[-1] if done else None} of {n2}")
        if done:
            summary["phases"].append({"steps": done[-1], "planned": n2, "lr": LR_PHASE2,
                                      "exit_codes": codes,
                                      "steps_per_s": {k: speed(r) for k, r in runs2.items()}})
            for k, name in MODELS.items():
                export(runs2[k], done[-1], args.out, name)
    else:
        log("no time left for phase 2")
    summary["total_steps_from_init"] = sum(p["steps"] for p in summary["phases"])
    summary["val"] = {
        p.name: [(r["step"], round(r["val_psnr"], 3)) for r in records(p) if r.get("kind") == "val"]
        for p in sorted(args.work.glob("*_p[12]"))
    }
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    with tarfile.open(args.out / "runs.tar.gz", "w:gz") as tar:
        for run in sorted(args.work.glob("*_p[12]")):
            for f in ("config.toml", "run.json", "metrics.jsonl", "training.png"):
                if (run / f).exists():
                    tar.add(run / f, arcname=f"{run.name}/{f}")
            tar.add(run.with_suffix(".log"), arcname=f"{run.name}.log")
    log(f"done in {summary['wall_s']} s: {json.dumps(summary['phases'])}")
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
