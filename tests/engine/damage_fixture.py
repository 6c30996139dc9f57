"""Regenerates ``tests/engine/data/damage_tiny.pt``: a tiny CMDSR whose condition encodes the
degradation, with a damage readout, for the damage and local-adaptation tests.

    nice -n 15 .venv/bin/python -m tests.engine.damage_fixture

The ConditionNet is set by hand to measure each support patch's fine detail (mean absolute
Laplacian and horizontal difference of the patches, which grow with noise and shrink with
blur), so a few minutes of training are enough for the BaseNet to learn to use it; it is then
kept frozen (a negligible ConditionNet learning rate) while ``engine.train`` trains the BaseNet
on synthetic photos, and ``engine.training.damage_fit.train_damage_head`` adds the readout. A few minutes
on one CPU core.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent / "data" / "damage_tiny.pt"
TINY = {"channels": 32, "blocks": 3, "support_size": 4, "cond_channels": 32}


@torch.no_grad()
def detail_condition_model() -> Path:
    """A bicubic-initialised tiny model whose ConditionNet measures fine detail."""
    from engine.model import ModelConfig, build_model
    from engine.training.model_init import bicubic_init

    model = build_model(ModelConfig(**TINY))
    bicubic_init(model)
    layers = [m for m in model.condition_net.condition if isinstance(m, torch.nn.Conv2d)]
    s, half = TINY["support_size"], TINY["cond_channels"] // 2
    lap = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])
    dx = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    for layer in layers:
        layer.weight.zero_()
        layer.bias.zero_()
    # first conv: +/- Laplacian and +/- difference of each patch's grey level (/3 per channel)
    for k in range(s):
        for j, (kernel, sign) in enumerate(((lap, 1), (lap, -1), (dx, 1), (dx, -1))):
            out = (4 * k + j) % half
            for c in range(3):
                layers[0].weight[out, 3 * k + c] += sign * kernel / 3 / 20
    for i in range(half):  # then pass the rectified maps through unchanged
        layers[1].weight[i, i, 1, 1] = 1
        layers[2].weight[i, i, 1, 1] = 1
        layers[2].weight[half + i, i, 1, 1] = 0.5
    for i in range(2 * half):
        layers[3].weight[i, i, 1, 1] = 1
    path = Path(tempfile.mkdtemp()) / "init.pt"
    from engine.checkpoint import save_model

    save_model(model, path)
    return path


def train_sr(work: Path, seconds: float) -> Path:
    from engine.data import write_synthetic_photos
    from engine.degrade import DegradationConfig
    from engine.model import ModelConfig
    from engine.training.config import TrainConfig
    from engine.training.loop import train

    photos = work / "photos"
    write_synthetic_photos(photos, 24, size=(256, 320), seed=7)
    cfg = TrainConfig(
        model=ModelConfig(**TINY),
        degradation=DegradationConfig(blur_sigma=(0.6, 3.6), noise_std=(0.0, 30.0),
                                      clean_prob=0.3),
        init="bicubic", init_from=str(detail_condition_model()), lr_per_layer=True, lr_schedule="cosine", warmup_steps=50,
        steps=100_000, time_budget_s=seconds, lr_base=1e-3, lr_cond=1e-9, cond_every=1,
        task_pairing=True, tasks_per_batch=8, lr_patch=24, checkpoint_every=100_000,
        log_every=50, val_every=100_000, num_workers=0, threads=1, device="cpu", seed=3,
    )
    return train(cfg, work / "run", data_dir=photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=360.0, help="SR training time")
    parser.add_argument("--sr", type=Path, help="reuse this trained SR checkpoint")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sr = args.sr or train_sr(work, args.seconds)
        from engine.checkpoint import load_model, save_model
        from engine.damage_head import attach_damage_head
        from engine.data import write_synthetic_photos
        from engine.training.damage_fit import train_damage_head

        model = load_model(sr)
        photos = work / "head_photos"
        write_synthetic_photos(photos, 24, size=(256, 320), seed=11)
        head, report = train_damage_head(model, photos, tasks=1500, seed=0)
        logging.info("%s", report)
        attach_damage_head(model, head)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, args.out, half=True)  # a smaller file; loads as float32


if __name__ == "__main__":
    main()
