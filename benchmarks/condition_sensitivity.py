"""Does the condition see the damage? How far CMDSR's condition vector moves when the damage
changes, relative to how far it moves when only the support patches move.

For each photo: degrade it with a reference damage (blur sigma 1.0, no noise), with more blur
(sigma 3.0) and with noise (15 grey levels), all with the same seed. Support positions are drawn
once and cut from each degraded photo at the same places, so only the damage differs; the
position movement is the distance between the reference condition from those positions and
from other random positions in the same photo. A condition that encodes the degradation moves
far more for blur and noise than for positions (target: both ratios >= 5); one that encodes the
picture moves most for positions.

    python benchmarks/condition_sensitivity.py --images /work/data/corpus/val \\
        --model resources/models/cmdsr_x4.pt [--model other.pt ...]

Prints one table row per model: mean condition movement for each change and the two ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.data import read_rgb, scan_images  # noqa: E402
from engine.degrade import DegradationParams, crop_to_multiple, degrade  # noqa: E402
from engine.model import CMDSR  # noqa: E402

REFERENCE = (1.0, 0.0)
MORE_BLUR = (3.0, 0.0)
NOISE = (1.0, 15.0)


@dataclass
class Movement:
    blur: float
    noise: float
    position: float

    @property
    def blur_ratio(self) -> float:
        return self.blur / max(self.position, 1e-12)

    @property
    def noise_ratio(self) -> float:
        return self.noise / max(self.position, 1e-12)


def _positions(h: int, w: int, count: int, size: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    return [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))) for _ in range(count)]


def _support(lr: np.ndarray, pos: list[tuple[int, int]], size: int) -> torch.Tensor:
    patches = np.stack([lr[y : y + size, x : x + size].transpose(2, 0, 1) for y, x in pos])
    return torch.from_numpy(patches.astype(np.float32))[None]


@torch.inference_mode()
def condition_movement(model: CMDSR, photos: list[np.ndarray], *, size: int = 32, draws: int = 3,
                       kernel_size: int = 15, seed: int = 0) -> Movement:
    """Mean L2 movement of the condition for more blur, for noise and for other support
    positions, over ``photos`` (HR, HxWx3 0..255) and ``draws`` position draws each."""
    scale, count = model.scale, model.support_size
    blur, noise, position = [], [], []
    for i, hr in enumerate(photos):
        hr = crop_to_multiple(hr, scale)
        lrs = {}
        for sig, nz in (REFERENCE, MORE_BLUR, NOISE):
            params = DegradationParams(kernel_size, sig, sig, 0.0, nz)
            lrs[(sig, nz)] = degrade(hr, params, scale, np.random.default_rng([seed, i]))
        h, w = lrs[REFERENCE].shape[:2]
        p = min(size, h, w)
        for d in range(draws):
            rng = np.random.default_rng([seed, i, d])
            pos, other = _positions(h, w, count, p, rng), _positions(h, w, count, p, rng)
            ref = model.condition(_support(lrs[REFERENCE], pos, p))
            blur.append(float((model.condition(_support(lrs[MORE_BLUR], pos, p)) - ref).norm()))
            noise.append(float((model.condition(_support(lrs[NOISE], pos, p)) - ref).norm()))
            position.append(float((model.condition(_support(lrs[REFERENCE], other, p)) - ref).norm()))
    return Movement(statistics.fmean(blur), statistics.fmean(noise), statistics.fmean(position))


def load_photos(folder: Path, crop: int, limit: int) -> list[np.ndarray]:
    photos = []
    for path in scan_images(folder)[: limit or None]:
        img = read_rgb(path)
        h, w = img.shape[:2]
        c = min(crop, h, w)
        photos.append(img[(h - c) // 2 : (h - c) // 2 + c, (w - c) // 2 : (w - c) // 2 + c])
    return photos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, action="append", required=True, help="model file (repeatable)")
    ap.add_argument("--images", type=Path, required=True, help="folder of HR photos")
    ap.add_argument("--crop", type=int, default=512, help="central HR crop per photo (default 512)")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--draws", type=int, default=3, help="support position draws per photo")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photos = load_photos(args.images, args.crop, args.max_images)
    print(f"condition movement (L2), {len(photos)} photos from {args.images}, {args.draws} draws each;"
          f" reference blur {REFERENCE[0]} / noise {REFERENCE[1]:g}")
    print()
    print("| model | blur 1.0 -> 3.0 | noise 0 -> 15 | other positions | blur / positions | noise / positions |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in args.model:
        model = load_model(path).eval()
        if not model.conditioned:
            print(f"| {path.name} | conditioning off | | | | |")
            continue
        m = condition_movement(model, photos, draws=args.draws)
        print(f"| {path.name} | {m.blur:.4f} | {m.noise:.4f} | {m.position:.4f} | "
              f"{m.blur_ratio:.2f} | {m.noise_ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
