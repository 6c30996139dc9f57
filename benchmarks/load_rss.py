"""Memory under load: resident memory (RSS) after each image of a 200-image ``cmdsr upscale``
batch, and the peak for one 6000x4000 photo, with a tiny model (8 channels, 2 blocks) so the
numbers show what the program keeps, not what a big network needs.

    python benchmarks/load_rss.py                 # both parts, prints tables
    python benchmarks/load_rss.py --count 50 --skip-big --json rss.json
    python benchmarks/load_rss.py --out-dtype --reps 3   # only: float32 vs uint8 output

``--out-dtype`` compares the peak of one 2000x1500 -> x4 job (upscale_image, then write_image
to an 8-bit JPEG) with the float32 result (the old way) and with ``out_dtype=np.uint8`` (what
the CLI now asks for when the file is 8-bit), for bicubic and a tiny random-weight CMDSR; each
run is a fresh process, the configurations interleaved, medians reported.

The batch runs through ``engine.cli.main`` (the real command line): RSS is sampled right
after each output file is written. The big photo runs in a fresh process, so its peak
(``ru_maxrss``) belongs to that job alone. Linux only (reads /proc/self/statm).
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 2**20


def rss_mb() -> float:
    """Resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tiny_model(path: Path, scale: int = 4) -> Path:
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(0)
    save_model(build_model(ModelConfig(scale=scale, channels=8, blocks=2, support_size=20,
                                       cond_channels=8)), path)
    return path


def small_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx * 3, yy * 4, (xx + yy) * 2], -1) + rng.normal(0, 15, (height, width, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def big_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured photo built row band by row band (the generator itself stays small)."""
    rng = np.random.default_rng(seed)
    out = np.empty((height, width, 3), np.uint8)
    xx = np.arange(width, dtype=np.float32)
    for y0 in range(0, height, 500):
        y1 = min(height, y0 + 500)
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        band = np.stack([xx[None, :] * 0 + yy * (200 / height), xx[None, :] * (200 / width) + 0 * yy,
                         40 * np.sin(xx[None, :] / 7 + yy / 11) + 120], -1)
        band += rng.integers(-12, 13, band.shape).astype(np.float32)
        out[y0:y1] = np.clip(band, 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- the batch


def batch_rss(workdir: Path, count: int = 200, size: tuple[int, int] = (64, 80)) -> list[float]:
    """RSS (MB) after each of ``count`` images of one ``cmdsr upscale`` batch."""
    import torch
    from PIL import Image

    import engine.cli.upscale as cli_upscale
    from engine.cli import main

    torch.set_num_threads(1)
    model = tiny_model(workdir / "tiny_x4.pt")
    folder = workdir / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(small_photo(rng, *size)).save(folder / f"img_{i:03d}.png")
    samples: list[float] = []
    real_write = cli_upscale.write_image

    def write_and_sample(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_write(*args, **kwargs)
        samples.append(rss_mb())
        return out

    cli_upscale.write_image = write_and_sample  # type: ignore[assignment]
    try:
        code = main(["upscale", str(folder), "-o", str(workdir / "out"), "--model", str(model),
                     "--quiet"])
    finally:
        cli_upscale.write_image = real_write  # type: ignore[assignment]
    if code != 0 or len(samples) != count:
        raise RuntimeError(f"batch failed: exit {code}, {len(samples)} of {count} written")
    return samples


# --------------------------------------------------------------------------- the big photo


def big_photo_child(photo: Path, model: Path, out: Path) -> dict[str, float]:
    """Runs in a fresh process: upscale one photo through the CLI, report memory and time."""
    import torch

    from engine.cli import main

    torch.set_num_threads(int(os.environ.get("CMDSR_BENCH_THREADS", "1")))
    before = rss_mb()
    t0 = time.perf_counter()
    code = main(["upscale", str(photo), "-o", str(out), "--model", str(model), "--quiet"])
    elapsed = time.perf_counter() - t0
    return {"exit": code, "seconds": round(elapsed, 1), "rss_before_mb": round(before),
            "peak_mb": round(peak_mb()), "rss_after_mb": round(rss_mb())}


def big_photo_rss(workdir: Path, height: int = 4000, width: int = 6000, scale: int = 2) -> dict:
    from PIL import Image

    photo = workdir / f"photo_{width}x{height}.jpg"
    Image.fromarray(big_photo(height, width)).save(photo, quality=90)
    model = tiny_model(workdir / f"tiny_x{scale}.pt", scale)
    out = workdir / f"photo_x{scale}.jpg"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("CMDSR_BENCH_THREADS", "1"))
    proc = subprocess.run([sys.executable, __file__, "--big-child", str(photo), str(model), str(out)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"big photo child failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    import warnings

    from PIL import Image as PILImage

    with warnings.catch_warnings():  # 96 MP is over Pillow's bomb warning; it is our own file
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        im = PILImage.open(out)
    with im:
        result["output"] = f"{im.width}x{im.height}"
    result.update(input=f"{width}x{height}", scale=scale,
                  float_output_mb=round(height * scale * width * scale * 3 * 4 / MB))
    return result


# --------------------------------------------------------------------------- float32 vs uint8


def out_dtype_child(method: str, dtype: str, height: int, width: int, out: Path) -> dict:
    """Runs in a fresh process: one photo upscaled x4 and written as an 8-bit JPEG."""
    import torch

    from engine.inference.upscaler import Upscaler, upscale_image
    from engine.io.imageio import Image, write_image

    torch.set_num_threads(int(os.environ.get("CMDSR_BENCH_THREADS", "1")))
    model = None
    if method == "cmdsr":
        from engine import ModelConfig, build_model

        torch.manual_seed(0)
        model = build_model(ModelConfig(scale=4, channels=8, blocks=2, support_size=20,
                                        cond_channels=8)).eval()
    upscaler = Upscaler(model, method=method, device="cpu", scale=4)
    image = Image(pixels=big_photo(height, width).astype(np.float32))
    before = rss_mb()
    t0 = time.perf_counter()
    result = upscale_image(image, upscaler, out_dtype=np.dtype(dtype))
    after_upscale = rss_mb()
    write_image(result, out, quality=90, overwrite=True)
    return {"method": method, "dtype": dtype, "seconds": round(time.perf_counter() - t0, 1),
            "rss_before_mb": round(before), "rss_after_upscale_mb": round(after_upscale),
            "peak_mb": round(peak_mb())}


def out_dtype_rss(workdir: Path, reps: int, height: int = 1500, width: int = 2000) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("CMDSR_BENCH_THREADS", "1"))
    runs: list[dict] = []
    for _rep in range(reps):
        for method in ("bicubic", "cmdsr"):
            for dtype in ("float32", "uint8"):  # interleaved, so drifting load hits both alike
                proc = subprocess.run(
                    [sys.executable, __file__, "--dtype-child", method, dtype, str(height),
                     str(width), str(workdir / f"{method}_{dtype}.jpg")],
                    capture_output=True, text=True, env=env, timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"{method}/{dtype} child failed: {proc.stderr[-2000:]}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    rows = []
    for method in ("bicubic", "cmdsr"):
        for dtype in ("float32", "uint8"):
            mine = [r for r in runs if r["method"] == method and r["dtype"] == dtype]
            rows.append({"method": method, "dtype": dtype, "runs": len(mine),
                         **{k: statistics.median(r[k] for r in mine)
                            for k in ("rss_before_mb", "rss_after_upscale_mb", "peak_mb",
                                      "seconds")}})
    return rows


def out_dtype_table(rows: list[dict], height: int = 1500, width: int = 2000) -> str:
    result_mb = height * 4 * width * 4 * 3 / MB
    lines = [f"{width}x{height} -> x4 ({width * 4}x{height * 4}), written as an 8-bit JPEG, "
             "fresh process per run, medians:",
             "| method | result | held result (MB) | RSS before (MB) | RSS after upscale (MB) "
             "| peak RSS (MB) | peak above start (MB) | seconds |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        held = result_mb * (4 if r["dtype"] == "float32" else 1)
        lines.append(f"| {r['method']} | {r['dtype']} | {held:.0f} | {r['rss_before_mb']:.0f} "
                     f"| {r['rss_after_upscale_mb']:.0f} | {r['peak_mb']:.0f} "
                     f"| {r['peak_mb'] - r['rss_before_mb']:.0f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- report


def table(samples: list[float]) -> str:
    marks = [i for i in (1, 2, 5, 10, 20, 50, 100, 150, 200, len(samples)) if i <= len(samples)]
    rows = ["| after image | RSS (MB) | vs. image 20 |", "|---:|---:|---:|"]
    ref = samples[min(20, len(samples)) - 1]
    for i in sorted(set(marks)):
        rows.append(f"| {i} | {samples[i - 1]:.1f} | {samples[i - 1] - ref:+.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--scale", type=int, default=2, help="scale of the big-photo model")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--out-dtype", action="store_true",
                        help="only compare peak RSS of float32 vs uint8 upscaling output")
    parser.add_argument("--reps", type=int, default=3, help="runs per --out-dtype configuration")
    parser.add_argument("--big-child", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dtype-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.big_child:
        print(json.dumps(big_photo_child(*args.big_child)))
        return 0
    if args.dtype_child:
        method, dtype, height, width, out = args.dtype_child
        print(json.dumps(out_dtype_child(method, dtype, int(height), int(width), Path(out))))
        return 0
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="cmdsr_load_") as tmp:
        work = Path(tmp)
        if args.out_dtype:
            rows = out_dtype_rss(work, args.reps)
            report["out_dtype"] = rows
            print(out_dtype_table(rows))
            if args.json:
                args.json.write_text(json.dumps(report, indent=1))
            return 0
        t0 = time.perf_counter()
        samples = batch_rss(work, args.count)
        report["batch"] = {"count": args.count, "seconds": round(time.perf_counter() - t0, 1),
                           "rss_mb": [round(s, 2) for s in samples]}
        print(f"{args.count} images of 80x64 -> 320x256, tiny x4 model, one CLI batch "
              f"({report['batch']['seconds']} s):")  # type: ignore[index]
        print(table(samples))
        if not args.skip_big:
            big = big_photo_rss(work, scale=args.scale)
            report["big"] = big
            print(f"\n6000x4000 JPEG, tiny x{args.scale} model, one CLI run in a fresh process:")
            print("| input | output | seconds | RSS before (MB) | peak RSS (MB) | RSS after (MB) "
                  "| float32 output (MB) |")
            print("|---|---|---:|---:|---:|---:|---:|")
            print(f"| {big['input']} | {big['output']} | {big['seconds']} | {big['rss_before_mb']} "
                  f"| {big['peak_mb']} | {big['rss_after_mb']} | {big['float_output_mb']} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
