"""Speed of the Look: ``cmdsr upscale --look 1`` against ``--look 0`` and against Real-ESRGAN
x4plus (ncnn, tiled) on the same photo and CPU, each timed as a whole process (start, load,
upscale, write), interleaved (A, B, C, A, B, C, ...) so a shared machine's noise hits all alike.

The issue's target: ``--look 1`` at least 10x Real-ESRGAN's speed. A blended look is one
network of the faithful model's size, so ``--look 1`` should run as fast as ``--look 0``; the
only extra cost is reading the second file and blending (milliseconds). Real-ESRGAN needs
``pip install .[bench]``; without it that configuration is left out and the reason printed.

    python benchmarks/look_speed.py [--photo PATH] [--crisp CRISP.pt] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realesrgan_ncnn import model_files  # noqa: E402

# Real-ESRGAN's whole process, as a user's tool runs it: read, tiled upscale, write (no PyTorch
# imported, so its start is not charged the engine's)
_REALESRGAN = """
import sys
sys.path.insert(0, {bench!r})
import cv2
from realesrgan_ncnn import RealESRGAN
pixels = cv2.imread({photo!r}, cv2.IMREAD_COLOR)[..., ::-1]
out = RealESRGAN(threads={threads}).upscale(pixels)
cv2.imwrite({out!r}, out[..., ::-1])
"""


def commands(photo: Path, crisp: Path | None, threads: int, out_dir: Path) -> dict[str, list[str]]:
    """The command line of each configuration (Real-ESRGAN only when its files are there)."""
    base = [sys.executable, "-m", "engine", "upscale", str(photo), "--threads", str(threads),
            "--overwrite", "-q"]
    cmds = {"look 0": [*base, "-o", str(out_dir / "look0.png"), "--look", "0"]}
    look1 = [*base, "-o", str(out_dir / "look1.png"), "--look", "1"]
    cmds["look 1"] = look1 + (["--crisp-model", str(crisp)] if crisp is not None else [])
    files = model_files()
    if isinstance(files, str):
        print(f"Real-ESRGAN left out: {files}")
    else:
        script = _REALESRGAN.format(bench=str(Path(__file__).resolve().parent), photo=str(photo),
                                    threads=threads, out=str(out_dir / "realesrgan.png"))
        cmds["Real-ESRGAN x4plus (ncnn, 64 px tiles)"] = [sys.executable, "-c", script]
    return cmds


def main() -> None:
    from engine.look import crisp_model_path
    from engine.resources import sample_image_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=sample_image_path())
    parser.add_argument("--crisp", type=Path, help="crisp model (default: the shipped one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    crisp = args.crisp or crisp_model_path()
    if not crisp.is_file():
        sys.exit(f"look_speed: no crisp model at {crisp}; pass --crisp")
    from engine import read_image

    image = read_image(args.photo)
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(args.photo, crisp, args.threads, Path(tmp))
        seconds: dict[str, list[float]] = {name: [] for name in cmds}
        for rep in range(args.repeats):
            for name, cmd in cmds.items():
                t0 = time.perf_counter()
                done = subprocess.run(cmd, capture_output=True, text=True)
                seconds[name].append(time.perf_counter() - t0)
                if done.returncode != 0:
                    sys.exit(f"look_speed: {name} failed: {done.stderr.strip().splitlines()[-1:]}")
                print(f"  run {rep + 1} {name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    median = {name: statistics.median(v) for name, v in seconds.items()}
    print(f"# {args.photo.name} ({image.width}x{image.height} -> x4), {args.threads} thread(s), "
          f"{args.repeats} interleaved repeat(s), whole process")
    print("| configuration | median s | LR pixels/s | vs look 1 |")
    print("|---|---:|---:|---:|")
    for name, s in median.items():
        print(f"| {name} | {s:.2f} | {image.width * image.height / s:,.0f} | "
              f"{s / median['look 1']:.2f}x |")


if __name__ == "__main__":
    main()
