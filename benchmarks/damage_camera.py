"""Is "camera noise" worth a reading of its own, beside the Gaussian noise the readout reads?
(issue 29, item 2)

On photos the readout never saw, each task is made twice from the same HR crop and blur: once
with a camera's noise (``engine.degrade_real.camera_noise``: shot and read noise on an RGGB
mosaic, demosaicing, white balance, chroma noise reduction; drawn as the ``camera`` preset
draws it) and once with plain Gaussian noise of the same strength (``srgb_noise_std``: the
camera noise's std on a mid grey). It prints:

* how the noise reading does on each: MAE against that std, and the mean paired difference
  (camera minus plain) of the noise and blur readings;
* whether the condition can tell the two apart at all: the held-out accuracy (train on half the
  photos, test on the other half) of a logistic regression and of a small MLP on the condition
  vectors, camera versus plain. About 50% means the condition does not carry the difference,
  so no head could read it without training the ConditionNet on it.

    nice -n 15 python benchmarks/damage_camera.py --photos /work/data/corpus/val \\
        --photos /work/data/corpus/val_textured --model resources/models/cmdsr_x4.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_model  # noqa: E402
from engine.damage_head import damage_head_of, spread  # noqa: E402
from engine.data import downscaled_region, random_support, read_rgb, scan_images  # noqa: E402
from engine.degrade import DegradationParams, degrade  # noqa: E402
from engine.degrade_real import draw_camera_noise, srgb_noise_std  # noqa: E402
from engine.inference.support import DEFAULT_PATCH_SIZE  # noqa: E402


def paired_tasks(model, photos: list[Path], per_photo: int, seed: int):
    """(conditions [2N, C], is_camera [2N], noise std [2N], owner photo [2N])."""
    conds, camera, std, owner = [], [], [], []
    s = model.scale
    for index, path in enumerate(photos):
        rng = np.random.default_rng([seed, index])
        img = read_rgb(path)
        for _ in range(per_photo):
            hr = downscaled_region(img, 256, (0.4, 1.0), rng)
            sigma = round(float(rng.uniform(0.6, 2.0)), 2)
            shot, read, red, blue, chroma = draw_camera_noise(rng)
            level = srgb_noise_std(shot, read)
            made = {
                True: DegradationParams(15, sigma, sigma, 0.0, 0.0, camera_shot=shot,
                                        camera_read=read, camera_red_gain=red,
                                        camera_blue_gain=blue, camera_chroma_blur=chroma),
                False: DegradationParams(15, sigma, sigma, 0.0, level),
            }
            for is_camera, params in made.items():
                lr = degrade(hr, params, s, np.random.default_rng(rng.integers(1 << 31)))
                support = random_support(lr, model.support_size, DEFAULT_PATCH_SIZE, rng)
                with torch.inference_mode():
                    conds.append(model.condition(torch.from_numpy(support)[None]).float()[0])
                camera.append(is_camera)
                std.append(level)
                owner.append(index)
    return (torch.stack(conds), torch.tensor(camera), torch.tensor(std, dtype=torch.float32),
            np.asarray(owner))


def held_out_accuracy(x: torch.Tensor, y: torch.Tensor, train: np.ndarray, hidden: int) -> float:
    """Accuracy on the rows not in ``train`` of a classifier fitted on those in it (full-batch
    Adam, standardised inputs; ``hidden`` 0: logistic regression)."""
    torch.manual_seed(0)
    rows = torch.from_numpy(train)
    mean, std = x[rows].mean(0), spread(x[rows])
    z = (x - mean) / std
    net: nn.Module = (nn.Linear(x.shape[1], 1) if hidden == 0 else
                      nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 1)))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    target = y.float()
    for _ in range(600):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(net(z[rows])[:, 0], target[rows])
        loss.backward()
        opt.step()
    with torch.no_grad():
        guess = net(z[~rows])[:, 0] > 0
    return float((guess == y[~rows]).float().mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=Path, action="append", required=True,
                    help="folder of HR photos (repeatable)")
    ap.add_argument("--per-photo", type=int, default=30, help="task pairs per photo")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    head = damage_head_of(model)
    photos = [p for folder in args.photos for p in scan_images(folder)]
    conds, camera, std, owner = paired_tasks(model, photos, args.per_photo, seed=7)
    print(f"{len(photos)} photos, {int(camera.sum())} task pairs; camera noise std on mid grey "
          f"{float(std.min()):.1f}-{float(std.max()):.1f} levels (median {float(std.median()):.1f})")
    if head is not None:
        with torch.inference_mode():
            read = head(conds).clamp_min(0.0)
        for name, rows in (("camera", camera), ("plain", ~camera)):
            print(f"noise reading on {name} noise: MAE {float((read[rows, 1] - std[rows]).abs().mean()):.2f} "
                  f"levels, mean {float(read[rows, 1].mean()):.2f} (true mean {float(std[rows].mean()):.2f})")
        diff = read[camera] - read[~camera]
        print(f"paired camera - plain: noise reading {float(diff[:, 1].mean()):+.2f} levels "
              f"(|diff| {float(diff[:, 1].abs().mean()):.2f}), blur reading {float(diff[:, 0].mean()):+.2f}")
    half = owner < (owner.max() + 1) / 2
    for train, label in ((half, "first half of the photos"), (~half, "second half")):
        print(f"camera vs plain, trained on the {label}: logistic "
              f"{100 * held_out_accuracy(conds, camera, train, 0):.0f}%, MLP "
              f"{100 * held_out_accuracy(conds, camera, train, 64):.0f}% held out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
