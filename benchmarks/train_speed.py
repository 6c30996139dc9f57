"""Training speed: steps/s and the share of time spent waiting for data.

``--mode pipelines`` (default) compares, interleaved round by round on the same model and
config, the loader pipeline (``TaskBatches`` + DataLoader workers + ``train_step``) with the
device pipeline (``engine.training.device_data`` batches + the sync-free step of ``engine.training.pair``),
and the device pipeline stepping CMDSR and its baseline on each batch (what
``engine.training.pair`` runs); it prints medians over the rounds and the CPU seconds per step
of all processes (loader workers included). ``--mode data`` times making a batch alone: the
loader's, and the device's with JPEG and camera damage finished on the host or made on the
device. ``--mode modconv`` times a
training step with the dense modulated conv against the former grouped one. ``--mode loop``
runs the real ``engine.training.loop.train`` loop per preset and times batch building (crop cache on
vs. off). Photos: ``--data`` or generated synthetic ones.

    python benchmarks/train_speed.py --preset studio-cpu --set threads=1 --rounds 3 --steps 3
    python benchmarks/train_speed.py --preset studio --device cuda --steps 50 --rounds 5
    python benchmarks/train_speed.py --mode data --set threads=1 --data /work/data/corpus/train
    python benchmarks/train_speed.py --mode data --preset users --degradation phones --device cuda
    python benchmarks/train_speed.py --mode modconv --set threads=1
    python benchmarks/train_speed.py --mode loop --presets cpu reference --steps 30 3
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

from engine.data import write_synthetic_photos  # noqa: E402
from engine.degrade import DegradationConfig  # noqa: E402
from engine.model import EqualConv2d, _grouped_modulated_conv  # noqa: E402
from engine.training.batches import TaskBatches, make_loader, open_training_source  # noqa: E402
from engine.training.config import TrainConfig  # noqa: E402
from engine.training.device_data import DevicePhotos, DeviceTaskSampler  # noqa: E402
from engine.training.loop import train  # noqa: E402
from engine.training.model_init import build_training_model  # noqa: E402
from engine.training.optimisers import build_optimisers  # noqa: E402
from engine.training.pair import Member, baseline_config, device_step  # noqa: E402
from engine.training.run_folder import RunWriter, read_metrics  # noqa: E402
from engine.training.step import resolve_device, train_step  # noqa: E402


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _members(cfg: TrainConfig, device: torch.device, pair: bool) -> list[Member]:
    out = []
    for mcfg in ([cfg, baseline_config(cfg)] if pair else [cfg]):
        model = build_training_model(mcfg, device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        out.append(Member("m", mcfg, model, build_optimisers(model, mcfg),
                          RunWriter("unused", enabled=False)))
    return out


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the loader workers): on a
    shared machine a fairer measure of cost than wall time."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def round_loader(cfg: TrainConfig, members: list[Member], source: object, start: int, steps: int,
                 device: torch.device) -> tuple[float, float]:
    """(seconds, seconds waiting for batches) of ``steps`` loader-pipeline steps."""
    ds = TaskBatches(source, cfg.degradation, cfg.model.scale, cfg.lr_patch,  # type: ignore[arg-type]
                     cfg.model.support_size, cfg.tasks_per_batch, cfg.seed, start + steps,
                     paired=cfg.task_pairing)
    loader = make_loader(ds, start, start + steps, cfg.num_workers, pin_memory=device.type == "cuda")
    it = iter(loader)
    gen = torch.Generator().manual_seed(0)
    wait = 0.0
    _sync(device)
    t0 = time.perf_counter()
    for step in range(start, start + steps):
        tw = time.perf_counter()
        batch = next(it)
        wait += time.perf_counter() - tw
        for m in members:
            train_step(m.model, m.opt, batch, step, m.cfg, gen, device)
    _sync(device)
    total = time.perf_counter() - t0
    del it, loader
    return total, wait


def round_device(members: list[Member], sampler: DeviceTaskSampler, start: int, steps: int,
                 device: torch.device) -> tuple[float, float]:
    """(seconds, seconds making batches) of ``steps`` device-pipeline steps; on CUDA the
    batch time is measured with events (the host does not wait for it)."""
    gen = torch.Generator().manual_seed(0)
    data = 0.0
    events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
    _sync(device)
    t0 = time.perf_counter()
    for step in range(start, start + steps):
        if device.type == "cuda":
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            batch = sampler.batch(step)
            e1.record()
            events.append((e0, e1))
        else:
            td = time.perf_counter()
            batch = sampler.batch(step)
            data += time.perf_counter() - td
        for m in members:
            device_step(m, batch, step, gen, device)
    for m in members:
        m.take_means()  # what logging would read
    _sync(device)
    total = time.perf_counter() - t0
    data += sum(a.elapsed_time(b) for a, b in events) / 1000
    return total, data


def compare_pipelines(cfg: TrainConfig, data: Path, work: Path, device: torch.device,
                      steps: int, rounds: int, warmup: int) -> list[dict[str, object]]:
    """Interleaved rounds of each pipeline; per pipeline the median steps/s and data share."""
    source = open_training_source(data, cfg.hr_patch, work / "cache", cfg.cache_crops_per_image,
                                  cfg.cache_crop_size, cfg.seed, cfg.hr_downscale, cfg.texture_pick)
    photos = DevicePhotos.from_folder(data, device, cfg.hr_patch, cfg.hr_downscale)
    sampler = DeviceTaskSampler.from_config(photos, cfg)
    runs = {
        "loader (TaskBatches + DataLoader), CMDSR": ("loader", _members(cfg, device, False)),
        "device data, CMDSR": ("device", _members(cfg, device, False)),
        "device data, CMDSR + baseline": ("device", _members(cfg, device, True)),
    }
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in runs}
    step = 0
    for r in range(warmup + rounds):
        for name, (kind, members) in runs.items():
            c0 = _cpu_s()
            if kind == "loader":
                total, wait = round_loader(cfg, members, source, step, steps, device)
            else:
                total, wait = round_device(members, sampler, step, steps, device)
            cpu = (_cpu_s() - c0) / steps
            if r >= warmup:
                results[name].append((steps / total, wait / total, cpu))
            print(json.dumps({"round": r, "pipeline": name, "steps_per_s": steps / total,
                              "data_share": wait / total, "cpu_s_per_step": cpu,
                              "warmup": r < warmup}), flush=True)
        step += steps
    return [{"pipeline": k, "steps_per_s": float(np.median([v[0] for v in vals])),
             "data_share": float(np.median([v[1] for v in vals])),
             "cpu_s_per_step": float(np.median([v[2] for v in vals])), "rounds": len(vals)}
            for k, vals in results.items()]


def compare_data(cfg: TrainConfig, data: Path, work: Path, device: torch.device, batches: int,
                 rounds: int) -> list[dict[str, object]]:
    """Making one step's batch in one process, no model: the loader's ``TaskBatches`` (crop
    cache as the config says) against ``DeviceTaskSampler`` with JPEG and the camera's damage
    finished on the host (OpenCV) and on the device (torch); interleaved rounds, medians of
    wall and CPU milliseconds per batch (CPU time is what a loaded machine cannot distort)
    and each maker's wall time over the host-finished device batches'."""
    source = open_training_source(data, cfg.hr_patch, work / "cache", cfg.cache_crops_per_image,
                                  cfg.cache_crop_size, cfg.seed, cfg.hr_downscale, cfg.texture_pick)
    ds = TaskBatches(source, cfg.degradation, cfg.model.scale, cfg.lr_patch, cfg.model.support_size,
                     cfg.tasks_per_batch, cfg.seed, 10**9, paired=cfg.task_pairing)
    photos = DevicePhotos.from_folder(data, device, cfg.hr_patch, cfg.hr_downscale)
    host = DeviceTaskSampler.from_config(photos, cfg)
    host.damage_on_device = False
    on_device = DeviceTaskSampler.from_config(photos, cfg)
    on_device.damage_on_device = True
    makers = {"loader's TaskBatches (one process)": ds.__getitem__,
              "device data, damage finished on the host": host.batch,
              "device data, damage made on the device": on_device.batch}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in makers}
    step = 0
    for r in range(rounds + 1):
        for name, make in makers.items():
            _sync(device)
            w0, c0 = time.perf_counter(), time.process_time()
            for i in range(batches):
                make(step + i)
            _sync(device)
            if r:
                times[name].append(((time.perf_counter() - w0) / batches,
                                    (time.process_time() - c0) / batches))
        step += batches
    base = float(np.median([v[0] for v in times["device data, damage finished on the host"]]))
    return [{"batch maker": k, "wall_ms": 1000 * float(np.median([v[0] for v in vals])),
             "cpu_ms": 1000 * float(np.median([v[1] for v in vals])),
             "vs_host_finished": float(np.median([v[0] for v in vals])) / base}
            for k, vals in times.items()]


def compare_modconv(cfg: TrainConfig, device: torch.device, rounds: int, steps: int) -> list[dict[str, object]]:
    """Forward + backward of the conditioned network on a random batch of ``cfg``'s shape,
    with the dense and the grouped modulated conv, interleaved; median ms per step."""
    torch.manual_seed(0)
    model = build_training_model(cfg, device)
    t, q, p = cfg.tasks_per_batch, cfg.sr_patches, cfg.lr_patch
    x = torch.rand(t * q, 3, p, p, device=device) * 255
    sup = torch.rand(t, cfg.model.support_size, 3, p, p, device=device) * 255
    dense = EqualConv2d.forward

    def grouped(self: EqualConv2d, x: torch.Tensor, mod: torch.Tensor | None = None) -> torch.Tensor:
        return dense(self, x) if mod is None else _grouped_modulated_conv(self, x, mod)

    times: dict[str, list[float]] = {"dense": [], "grouped": []}
    try:
        for r in range(rounds + 1):
            for name, fn in (("dense", dense), ("grouped", grouped)):
                EqualConv2d.forward = fn  # type: ignore[method-assign,assignment]
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(steps):
                    model(x, sup).mean().backward()
                _sync(device)
                if r:
                    times[name].append((time.perf_counter() - t0) / steps)
    finally:
        EqualConv2d.forward = dense  # type: ignore[method-assign]
    return [{"modulated conv": k, "ms_per_step": 1000 * float(np.median(v))} for k, v in times.items()]


def _machine() -> str:
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores{gpu}, "
            f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("pipelines", "data", "modconv", "loop"), default="pipelines")
    ap.add_argument("--data", type=Path, help="folder of HR photos (default: generated)")
    ap.add_argument("--preset", default="studio-cpu", choices=TrainConfig.PRESETS,
                    help="config of --mode pipelines/modconv")
    ap.add_argument("--presets", nargs="+", default=["cpu"], choices=TrainConfig.PRESETS,
                    help="configs of --mode loop")
    ap.add_argument("--steps", nargs="+", type=int, default=None,
                    help="steps per round (pipelines, modconv) or per preset (loop)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds (loop: steps)")
    ap.add_argument("--device", default=None, help="auto, cpu, cuda (default: the preset's)")
    ap.add_argument("--threads", nargs="+", type=int, default=[torch.get_num_threads()])
    ap.add_argument("--workers", type=int, default=None, help="override num_workers")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--degradation", choices=DegradationConfig.PRESETS,
                    help="degradation preset instead of the training preset's (e.g. phones)")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    if args.mode == "loop":
        return main_loop(args)

    from engine.config import apply_overrides

    cfg = apply_overrides(TrainConfig.preset(args.preset), args.overrides)
    if args.workers is not None:
        cfg = dataclasses.replace(cfg, num_workers=args.workers)
    if args.degradation:
        cfg = dataclasses.replace(cfg, degradation=DegradationConfig.preset(args.degradation))
    if args.device:
        cfg = dataclasses.replace(cfg, device=args.device)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    steps = (args.steps or [3])[0]
    print(_machine())
    print(f"config: preset {args.preset} {' '.join(args.overrides)}, degradations "
          f"{cfg.degradation.preset_name()}; {cfg.tasks_per_batch} tasks x "
          f"{cfg.sr_patches} BaseNet patches of {cfg.lr_patch} px, device {device}, "
          f"{cfg.num_workers} loader workers, {steps} steps x {args.rounds} rounds")
    if args.mode == "modconv":
        rows = compare_modconv(cfg, device, args.rounds, steps)
        print()
        print("| modulated conv | ms per forward+backward |")
        print("|---|---:|")
        for row in rows:
            print(f"| {row['modulated conv']} | {row['ms_per_step']:.0f} |")
    elif args.mode == "data":
        with tempfile.TemporaryDirectory(prefix="cmdsr_bench_") as tmp:
            work = Path(tmp)
            data = args.data
            if data is None:
                data = work / "photos"
                write_synthetic_photos(data, 8, (400, 520), seed=0)
            rows = compare_data(cfg, data, work, device, steps, args.rounds)
        print()
        print("| batch maker | wall ms per batch | CPU ms per batch | wall time / host-finished |")
        print("|---|---:|---:|---:|")
        for row in rows:
            print(f"| {row['batch maker']} | {row['wall_ms']:.1f} | {row['cpu_ms']:.1f} | "
                  f"{row['vs_host_finished']:.2f} |")
    else:
        with tempfile.TemporaryDirectory(prefix="cmdsr_bench_") as tmp:
            work = Path(tmp)
            data = args.data
            if data is None:
                data = work / "photos"
                write_synthetic_photos(data, 8, (400, 520), seed=0)
            warmup = 1 if args.warmup is None else args.warmup
            rows = compare_pipelines(cfg, data, work, device, steps, args.rounds, warmup)
        print()
        print("| pipeline | steps/s (median) | data share | CPU s per step (all processes) |")
        print("|---|---:|---:|---:|")
        for row in rows:
            print(f"| {row['pipeline']} | {row['steps_per_s']:.3f} | {row['data_share']:.1%} | "
                  f"{row['cpu_s_per_step']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def main_loop(args: argparse.Namespace) -> int:
    """The real training loop per preset (``--mode loop``)."""
    from engine.config import apply_overrides

    steps = args.steps or [30]
    steps = steps * len(args.presets) if len(steps) == 1 else steps
    warmup = 3 if args.warmup is None else args.warmup
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
                tr = time_training(cfg, data, work, n, warmup)
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
        cached_cell = "-" if r["batch_ms_cached"] is None else f"{r['batch_ms_cached']:.0f} ms"
        print(f"| {r['preset']} | {r['threads']} | {r['num_workers']} | {r['steps_per_s']:.3f} | "
              f"{r['sr_patches_per_s']:.1f} | {r['data_wait_share']:.1%} | {cached_cell} | "
              f"{r['batch_ms_decoding']:.0f} ms |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
