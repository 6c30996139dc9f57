"""Wall time and peak memory of upscaling, tiled and untiled, at x4.

Every measurement runs in a fresh subprocess, so peak RSS (``ru_maxrss``, the whole process:
Python, torch, model, input, output) belongs to that one configuration; CUDA's max allocated
memory is reported too when the device is a GPU. Configurations are interleaved (A, B, A, B,
...) so drifting load on a shared machine hits them alike; medians and ratios are reported.

Configurations:
  tiled     engine Upscaler with automatic tiles (the default everyone gets): the body on
            large tiles, the upsampling tail on small pieces of its features
  onestage  the simple alternative: the whole folded network per tile, tiles sized to the
            same memory budget (CPU only; shows what the two-stage split buys)
  untiled   the whole image through the folded network at once
  cli       the whole ``cmdsr upscale`` path: read a PNG, upscale (auto tiles), write a PNG

    python benchmarks/upscale.py                          # 256, 512, 1000; tiled/untiled/cli
    python benchmarks/upscale.py --sizes 1000 --configs tiled cli --reps 3
    python benchmarks/upscale.py --model resources/models/cmdsr_x4.pt --device cuda

Untiled needs about 13 KB per input pixel for the paper-sized model (13 GB at 1000x1000); it
is skipped above ``--max-untiled`` pixels of side unless raised.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds() -> float:
    """User + system CPU time of this process: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    from engine import ModelConfig, build_model, load_model, save_model
    from engine.inference.upscaler import TileConfig, Upscaler

    torch.manual_seed(0)
    model = load_model(args.model) if args.model else build_model(ModelConfig()).eval()
    rng = np.random.default_rng(0)
    # A smooth photo-like image (blurred noise), not white noise: same cost, realistic values.
    import cv2

    small = rng.uniform(0, 255, (args.size // 8 + 2, args.size // 8 + 2, 3)).astype(np.float32)
    pixels = cv2.resize(small, (args.size, args.size), interpolation=cv2.INTER_CUBIC)
    pixels = np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.float32)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu_before = _cpu_seconds()
    result: dict[str, object] = {}
    if args.config == "cli":
        from PIL import Image as PILImage

        from engine.cli import main

        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.png"
            PILImage.fromarray(pixels.astype(np.uint8)).save(src)
            model_path = Path(args.model) if args.model else save_model(model, Path(tmp) / "m.pt")
            del model
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            cpu_before = _cpu_seconds()
            t0 = time.perf_counter()
            code = main(["upscale", str(src), "-o", str(Path(tmp) / "out"), "--model",
                         str(model_path), "--device", args.device, "-q"])
            wall = time.perf_counter() - t0
            if code != 0:
                raise SystemExit(f"cmdsr upscale failed with exit code {code}")
    elif args.config == "untiled":
        # The whole image through the folded network at once: the reference tiling must match.
        from engine.inference.support import select_support

        support = select_support(pixels, count=model.support_size, seed=0)
        sup = torch.from_numpy(support.patches).permute(0, 3, 1, 2)[None]
        lr = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.fold(sup)(lr).clamp_(0, 255)[0].permute(1, 2, 0).numpy()
        wall = time.perf_counter() - t0
        result["tile"] = "none"
    elif args.config == "onestage":
        # The simple alternative: whole network per tile, tile sized to the same memory budget.
        import math

        from engine.inference.devices import CPU_TILE_BUDGET, tail_bytes_per_pixel
        from engine.inference.support import select_support
        from engine.inference.upscaler import _spans, receptive_radius

        pad = receptive_radius(model)
        side = int(math.sqrt(CPU_TILE_BUDGET / tail_bytes_per_pixel(model, torch.float32)))
        tile = (side - 2 * pad) // 16 * 16
        support = select_support(pixels, count=model.support_size, seed=0)
        sup = torch.from_numpy(support.patches).permute(0, 3, 1, 2)[None]
        lr = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        h = w = args.size
        out = np.empty((h * 4, w * 4, 3), np.float32)
        t0 = time.perf_counter()
        with torch.inference_mode():
            net = model.fold(sup)
            for y0, y1 in _spans(h, tile):
                for x0, x1 in _spans(w, tile):
                    py0, px0 = max(0, y0 - pad), max(0, x0 - pad)
                    res = net(lr[:, :, py0:min(h, y1 + pad), px0:min(w, x1 + pad)])
                    out[y0 * 4:y1 * 4, x0 * 4:x1 * 4] = res[
                        0, :, (y0 - py0) * 4:(y1 - py0) * 4, (x0 - px0) * 4:(x1 - px0) * 4
                    ].permute(1, 2, 0).numpy()
        wall = time.perf_counter() - t0
        result["tile"] = f"{tile}+{pad}"
    else:
        up = Upscaler(model, device=args.device, tile=TileConfig())
        tile = up.choose_tile(args.size, args.size)
        result["tile"] = f"{tile}+{up.overlap}, tail {up.choose_tail_tile(tile)}"
        if up.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = up.upscale(pixels)
        if up.device.type == "cuda":
            torch.cuda.synchronize()
            result["cuda_max_mb"] = torch.cuda.max_memory_allocated() / 2**20
        wall = time.perf_counter() - t0
        assert out.shape == (args.size * 4, args.size * 4, 3)
    result.update(wall_s=wall, cpu_s=_cpu_seconds() - cpu_before,
                  rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  rss_before_mb=rss_before)
    print("RESULT " + json.dumps(result))


def run_one(args: argparse.Namespace, size: int, config: str) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", "--size", str(size), "--config", config,
           "--threads", str(args.threads), "--device", args.device]
    if args.model:
        cmd += ["--model", args.model]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1],
            "returncode": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1000])
    parser.add_argument("--configs", nargs="+", default=["tiled", "onestage", "untiled", "cli"],
                        choices=["tiled", "onestage", "untiled", "cli"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="model file (default: random paper-size)")
    parser.add_argument("--max-untiled", type=int, default=512,
                        help="largest side run untiled (bigger needs >10 GB on CPU)")
    parser.add_argument("--json", type=Path, help="also write all runs here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    plan = [(s, c) for s in args.sizes for c in args.configs
            if not (c == "untiled" and s > args.max_untiled)
            and not (c == "onestage" and args.device != "cpu")]
    runs: dict[tuple[int, str], list[dict[str, object]]] = {key: [] for key in plan}
    for rep in range(args.reps):
        for size, config in plan:  # interleaved: A, B, C, A, B, C, ...
            res = run_one(args, size, config)
            runs[(size, config)].append(res)
            print(f"rep {rep + 1} {size}x{size} {config}: {res}", file=sys.stderr, flush=True)
    print("\nMedians over interleaved reps; CPU s = user+system time of the work (steadier than "
          "wall time on a shared machine); peak RSS of the whole process.")
    print(f"x4 on {args.device}, {args.threads} thread(s), {args.reps} interleaved rep(s), "
          f"model: {args.model or 'paper-size (64 ch, 10 blocks), random weights'}\n")
    print("| input | config | tile (+margin) | wall s | CPU s | peak RSS MB | RSS before MB | "
          "CUDA max MB | CPU time / tiled | RSS / tiled |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        base = runs.get((size, "tiled"), [])
        base_ok = [r for r in base if "error" not in r]
        base_cpu = statistics.median(r["cpu_s"] for r in base_ok) if base_ok else None
        base_rss = statistics.median(r["rss_mb"] for r in base_ok) if base_ok else None
        for config in args.configs:
            got = [r for r in runs.get((size, config), []) if "error" not in r]
            if not got:
                errors = [r.get("error") for r in runs.get((size, config), [])]
                print(f"| {size}x{size} | {config} | - | - | - | - | - | - | - | - |"
                      + (f" <!-- {errors[0]} -->" if errors else " (skipped)"))
                continue
            wall = statistics.median(r["wall_s"] for r in got)
            cpu = statistics.median(r["cpu_s"] for r in got)
            rss = statistics.median(r["rss_mb"] for r in got)
            before = statistics.median(r["rss_before_mb"] for r in got)
            cuda = [r["cuda_max_mb"] for r in got if "cuda_max_mb" in r]
            cuda_txt = f"{statistics.median(cuda):.0f}" if cuda else "-"
            ratio_t = f"{cpu / base_cpu:.2f}" if base_cpu else "-"
            ratio_m = f"{rss / base_rss:.2f}" if base_rss else "-"
            print(f"| {size}x{size} | {config} | {got[0].get('tile', 'auto')} | "
                  f"{wall:.1f} | {cpu:.1f} | {rss:.0f} | {before:.0f} | "
                  f"{cuda_txt} | {ratio_t} | {ratio_m} |")
    if args.json:
        args.json.write_text(json.dumps({f"{s}/{c}": v for (s, c), v in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
