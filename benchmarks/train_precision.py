"""Training precision on this CPU: fp32 against bf16 autocast, interleaved, for the step the long
CPU run takes (CMDSR and its baseline on one device-made batch, ``engine.training.pair``).

CPUs differ between the project's machines and users' (AVX2 only: bf16 is emulated and much
slower; AVX-512 BF16 or AMX: native bf16), so ``amp = "auto"`` reads the CPU's capabilities; this
benchmark measures whether the choice pays on the machine it runs on. It prints the CPU's
capabilities, a table of the median seconds per pair step for each precision over the rounds
(each round times both precisions back to back, so a busy shared machine slows both alike), and
the ratio.

    python benchmarks/train_precision.py --data /work/data/corpus/train --rounds 5 --steps 4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import apply_overrides  # noqa: E402
from engine.data import write_synthetic_photos  # noqa: E402
from engine.inference.cpu_caps import cpu_caps  # noqa: E402
from engine.training.config import TrainConfig  # noqa: E402
from engine.training.device_data import DevicePhotos, DeviceTaskSampler  # noqa: E402
from engine.training.model_init import build_training_model  # noqa: E402
from engine.training.optimisers import build_optimisers  # noqa: E402
from engine.training.pair import Member, baseline_config, device_step, set_memory_format  # noqa: E402
from engine.training.run_folder import RunWriter  # noqa: E402


def members_for(cfg: TrainConfig, out: Path) -> list[Member]:
    out_members = []
    for name in ("cmdsr", "baseline"):
        mcfg = cfg if name == "cmdsr" else baseline_config(cfg)
        model = build_training_model(mcfg, torch.device("cpu"))
        set_memory_format(model, torch.channels_last)
        out_members.append(Member(name, mcfg, model, build_optimisers(model, mcfg),
                                  RunWriter(out / f"{name}-{cfg.amp}", keep=1)))
    return out_members


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, help="folder of HR photos (default: generated)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="timed pair steps per precision per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override on the users-cpu preset as the long run uses it")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    caps = cpu_caps()
    base = apply_overrides(TrainConfig.preset("users-cpu"),
                           ["device=cpu", "sr_patches_per_task=8", "cond_freeze_steps=1000000000",
                            "warmup_steps=0", *args.overrides])
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "photos"
            write_synthetic_photos(data, 4, (512, 512), seed=0)
        photos = DevicePhotos.from_folder(data, "cpu", base.hr_patch, base.hr_downscale)
        sampler = DeviceTaskSampler.from_config(photos, base)
        batches = [sampler.batch(i) for i in range(args.steps)]
        precisions = ("off", "bf16")
        runs = {amp: members_for(dataclasses.replace(base, amp=amp), Path(tmp)) for amp in precisions}
        gen = torch.Generator().manual_seed(0)
        times: dict[str, list[float]] = {amp: [] for amp in precisions}
        for r in range(args.rounds + 1):  # round 0 warms up (oneDNN picks its kernels)
            for amp in precisions:
                t0 = time.perf_counter()
                for i, batch in enumerate(batches):
                    for m in runs[amp]:
                        device_step(m, batch, i, gen, torch.device("cpu"))
                dt = (time.perf_counter() - t0) / len(batches)
                if r:
                    times[amp].append(dt)
    print(f"CPU: {caps.vector}, AVX-512 BF16 {caps.avx512_bf16}, AMX {caps.amx}; "
          f"amp=auto picks {'bf16' if caps.bf16 else 'fp32'} ({caps.reason}); {args.threads} threads")
    print(f"pair step: {base.tasks_per_batch} tasks x {base.sr_patches} patches of {base.lr_patch} px, "
          f"{args.rounds} rounds x {args.steps} steps")
    print("| precision | median s / pair step | min | max |")
    print("|---|---:|---:|---:|")
    for amp in precisions:
        t = times[amp]
        print(f"| {'fp32' if amp == 'off' else amp} | {statistics.median(t):.3f} | {min(t):.3f} | {max(t):.3f} |")
    ratio = statistics.median(times["off"]) / statistics.median(times["bf16"])
    print(f"bf16 speed-up over fp32 (median): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
