"""Folded inference path vs the unfolded (training) path vs a bare chain of F.conv2d calls.

For 64x64, 128x128 and 256x256 inputs on the CPU, runs the three interleaved (A, B, C, A, B,
C, ...) so machine noise hits all of them alike, and prints medians, the folded/unfolded
speed-up, and GFLOP/s against the bare conv chain (the practical ceiling). GFLOP/s counts
the network's own convolutions; the folded path does fewer (its upsampler is one composite
conv), so its figure is an effective rate and can exceed the bare chain's.

    python benchmarks/model_speed.py [--repeats 7] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from engine import ModelConfig, build_model


def conv_flops(model_cfg: ModelConfig, h: int, w: int) -> float:
    """Multiply-adds x2 of all convs of the BaseNet for an h x w input."""
    c, s = model_cfg.channels, model_cfg.scale
    flops = 2 * h * w * 9 * (3 * c + 2 * model_cfg.blocks * c * c)
    if s == 3:
        flops += 2 * h * w * 9 * c * 9 * c
        out_hw = h * w * 9
    else:
        area = h * w
        for _ in range(s // 2):
            flops += 2 * area * 9 * c * 4 * c
            area *= 4
        out_hw = area
    flops += 2 * out_hw * 9 * c * 3
    return float(flops)


def bare_chain(model_cfg: ModelConfig, x: torch.Tensor) -> torch.Tensor:
    """The same convolutions with constant weights, channels_last, nothing else."""
    x = x.contiguous(memory_format=torch.channels_last)
    return _bare_weights(model_cfg)(x)


_CACHE: dict[ModelConfig, object] = {}


def _bare_weights(model_cfg: ModelConfig):
    if model_cfg in _CACHE:
        return _CACHE[model_cfg]
    c = model_cfg.channels
    cl = torch.channels_last

    def w(o: int, i: int) -> torch.Tensor:
        return (torch.randn(o, i, 3, 3) * 0.01).contiguous(memory_format=cl)

    w_in, w_out = w(c, 3), w(3, c)
    body = [w(c, c) for _ in range(2 * model_cfg.blocks)]
    ups = [w(4 * c, c) for _ in range(2)]
    b = torch.zeros(4 * c)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, w_in, b[:c], padding=1)
        for k in body:
            x = F.conv2d(x, k, b[:c], padding=1)
        for k in ups:
            x = F.pixel_shuffle(F.conv2d(x, k, b, padding=1), 2).contiguous(memory_format=cl)
        return F.conv2d(x, w_out, b[:3], padding=1)

    _CACHE[model_cfg] = run
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig()
    model = build_model(cfg).eval()
    support = torch.rand(1, cfg.support_size, 3, 32, 32) * 255

    print(f"CMDSR x{cfg.scale}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats, medians")
    print()
    print("| input | unfolded ms | folded ms | bare conv ms | folded speed-up | folded / bare "
          "| folded GFLOP/s | bare GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for size in args.sizes:
            lr = torch.rand(1, 3, size, size) * 255
            runs = {
                "unfolded": lambda lr=lr: model(lr, support),
                # folding is part of the cost a user pays: once per image
                "folded": lambda lr=lr: model.fold(support)(lr),
                "bare": lambda lr=lr: bare_chain(cfg, lr),
            }
            for fn in runs.values():  # warm-up (oneDNN primitive caches)
                fn()
            times: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(args.repeats):
                for name, fn in runs.items():
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            gflop = conv_flops(cfg, size, size) / 1e9
            print(
                f"| {size}x{size} | {med['unfolded'] * 1e3:.1f} | {med['folded'] * 1e3:.1f} "
                f"| {med['bare'] * 1e3:.1f} | {med['unfolded'] / med['folded']:.2f}x "
                f"| {med['folded'] / med['bare']:.2f} | {gflop / med['folded']:.1f} "
                f"| {gflop / med['bare']:.1f} |"
            )
    print()
    print("Targets: folded >= 2x faster than unfolded at 256x256; folded / bare <= 1.3.")


if __name__ == "__main__":
    main()
