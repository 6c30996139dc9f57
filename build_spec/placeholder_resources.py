"""Stand-in resources for test and dry-run builds when the real default model is not there yet.

The placeholder model is a tiny CMDSR network whose weights are set by hand so that it
upscales by nearest-neighbour repetition: its output is a real picture, so the app's
self-test (which compares against bicubic) passes. It must never be shipped or committed;
the build only uses it when asked (``--placeholder-resources``) and writes it under build/.

Run with the build environment's Python (it needs torch):
``python build_spec/placeholder_resources.py DEST [--from resources]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_placeholder_model(path: Path, scale: int = 4) -> Path:
    """Save a tiny hand-weighted CMDSR x``scale`` model (nearest-neighbour upscaling)."""
    import torch

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from engine import ModelConfig, build_model, save_model

    channels = 4
    cfg = ModelConfig(scale=scale, channels=channels, blocks=1, support_size=4, cond_channels=8)
    torch.manual_seed(0)
    model = build_model(cfg)
    net = model.sr_net

    def set_conv(conv, effective):  # type: ignore[no-untyped-def]
        conv.weight.copy_(effective / conv.scale)
        conv.bias.zero_()

    with torch.no_grad():
        # Input conv copies the RGB channels; the residual blocks add nothing (zero second
        # conv), so the features after the global skip are 2 x RGB.
        w = torch.zeros(channels, 3, 3, 3)
        for c in range(3):
            w[c, c, 1, 1] = 1.0
        set_conv(net.input_conv, w)
        for block in net.backbone:
            set_conv(block.conv1, torch.zeros_like(block.conv1.weight))
            set_conv(block.conv2, torch.zeros_like(block.conv2.weight))
        # Each upsampler conv repeats every channel into all r*r sub-pixel positions.
        for layer in net.upsampler:
            if isinstance(layer, torch.nn.PixelShuffle):
                continue
            out_ch = layer.weight.shape[0]
            r2 = out_ch // channels
            w = torch.zeros(out_ch, channels, 3, 3)
            for c in range(channels):
                for j in range(r2):
                    w[c * r2 + j, c, 1, 1] = 1.0
            set_conv(layer, w)
        w = torch.zeros(3, channels, 3, 3)
        for c in range(3):
            w[c, c, 1, 1] = 0.5  # undo the global skip's doubling
        set_conv(net.output_conv, w)
    return save_model(model, path, extra={"note": "placeholder for test builds; never ship"})


def _png_bytes(width: int, height: int, rows: list[bytes]) -> bytes:
    """A plain 8-bit RGB PNG, written with zlib only (the build script has no imaging library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + row for row in rows)
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def make_placeholder_image(path: Path, width: int = 96, height: int = 72) -> Path:
    """A smooth, non-square test picture (gradients and soft rings)."""
    import math

    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            ring = 0.5 + 0.5 * math.sin(math.hypot(x - width / 2, y - height / 2) / 4.0)
            row += bytes((int(255 * x / (width - 1)), int(255 * y / (height - 1)),
                          int(40 + 170 * ring)))
        rows.append(bytes(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_bytes(width, height, rows))
    return path


def make_placeholder_icon(path: Path, size: int = 256) -> Path:
    """A plain icon (blue tile, lighter square) for builds made before the real one is drawn."""
    rows = []
    for y in range(size):
        inner = size // 4 <= y < 3 * size // 4
        row = bytearray()
        for x in range(size):
            if inner and size // 4 <= x < 3 * size // 4:
                row += bytes((230, 240, 255))
            else:
                row += bytes((40, 90, 170))
        rows.append(bytes(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_bytes(size, size, rows))
    return path


def make_placeholder_resources(dest: Path, source: Path | None = None) -> Path:
    """Copy ``source`` (the checkout's resources/) to ``dest`` and fill in the default model and
    sample photo where they are missing."""
    from engine.resources import DEFAULT_MODEL_NAME, SAMPLE_NAME

    source = ROOT / "resources" if source is None else source
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for sub in ("models", "icons", "samples"):
        if (source / sub).is_dir():
            shutil.copytree(source / sub, dest / sub)
        (dest / sub).mkdir(exist_ok=True)
    if not (dest / "models" / DEFAULT_MODEL_NAME).exists():
        make_placeholder_model(dest / "models" / DEFAULT_MODEL_NAME)
    if not (dest / "samples" / SAMPLE_NAME).exists():
        make_placeholder_image(dest / "samples" / SAMPLE_NAME)
    return dest


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--from", dest="source", type=Path, default=ROOT / "resources")
    args = parser.parse_args(argv)
    make_placeholder_resources(args.dest, args.source)
    print(f"placeholder resources in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
