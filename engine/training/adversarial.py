"""The adversarial finish of the Crisp look: a discriminator that learns to tell the network's
outputs from real photo patches, and the losses that make the generator fool it.

A network trained on L1 alone averages every plausible texture into a soft result; a critic
that has seen real textures pushes the generator towards one of them, which is what users call
crisp. The critic here is a U-Net (encoder of three stride-2 steps, decoder with skip
connections, one realness score per output pixel), with spectral normalisation on every inner
convolution so its judgement changes smoothly and the generator gets usable gradients: the
shape Real-ESRGAN found to work for photos, written anew for this product.

``Adversary`` holds the critic, its optimiser and where its real examples come from (the step's
own HR patches, or patches of a folder of images such as a teacher's outputs); the training
step (``engine.training.step``) asks it for the generator's loss and then lets it take its own
step, as BasicSR's GAN models alternate the two.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from engine.errors import ConfigError
from engine.training.config import GAN_LOSSES

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


class UNetDiscriminator(nn.Module):
    """Per-pixel realness of RGB patches [N, 3, H, W] in 0..255 (H, W multiples of 8) ->
    logits [N, 1, H, W]. ``channels``: width of the first level (doubled at each of the three
    lower levels)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.stem = nn.Conv2d(3, c, 3, padding=1)  # plain: it sees raw pixels
        # encoder: each level halves the size and doubles the width
        self.down = nn.ModuleList([
            spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False)),
            spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1, bias=False)),
            spectral_norm(nn.Conv2d(4 * c, 8 * c, 4, stride=2, padding=1, bias=False)),
        ])
        # decoder: upsample, convolve, add the encoder's map of the same size
        self.up = nn.ModuleList([
            spectral_norm(nn.Conv2d(8 * c, 4 * c, 3, padding=1, bias=False)),
            spectral_norm(nn.Conv2d(4 * c, 2 * c, 3, padding=1, bias=False)),
            spectral_norm(nn.Conv2d(2 * c, c, 3, padding=1, bias=False)),
        ])
        self.head = nn.Sequential(
            spectral_norm(nn.Conv2d(c, c, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            spectral_norm(nn.Conv2d(c, c, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 1, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] % 8 or x.shape[3] % 8:
            raise ValueError(f"the discriminator takes [N, 3, H, W] with H, W multiples of 8, "
                             f"got {list(x.shape)}")
        act = nn.functional.leaky_relu
        feats = [act(self.stem(x / 255.0), 0.2)]
        for conv in self.down:
            feats.append(act(conv(feats[-1]), 0.2))
        y = feats.pop()
        for conv in self.up:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = act(conv(y), 0.2) + feats.pop()
        return self.head(y)


def discriminator_loss(real: Tensor, fake: Tensor, kind: str) -> Tensor:
    """The critic's loss on logits of real and generated patches: ``nonsat`` (the logistic
    loss, softplus(-real) + softplus(fake)) or ``hinge`` (relu(1 - real) + relu(1 + fake))."""
    if kind == "nonsat":
        return F.softplus(-real.float()).mean() + F.softplus(fake.float()).mean()
    if kind == "hinge":
        return F.relu(1.0 - real.float()).mean() + F.relu(1.0 + fake.float()).mean()
    raise ConfigError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {kind!r}")


def generator_loss(fake: Tensor, kind: str) -> Tensor:
    """The generator's loss on the critic's logits of its outputs: ``nonsat``
    softplus(-fake) (strong gradients while the critic still wins), ``hinge`` -fake."""
    if kind == "nonsat":
        return F.softplus(-fake.float()).mean()
    if kind == "hinge":
        return -fake.float().mean()
    raise ConfigError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {kind!r}")


class RealPatches:
    """Random patches of a folder of images (e.g. a teacher's outputs), the critic's real
    examples when they should not be the batch's own HR patches. All images are held in memory
    as uint8; the patches of step ``n`` are drawn from a generator seeded by (seed, n), so a
    resumed run draws the same ones."""

    def __init__(self, folder: str | Path, patch: int, seed: int) -> None:
        from engine.io.imageio import read_image

        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"gan_real_dir {folder}: not a folder")
        self.images: list[np.ndarray] = []
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            pixels = read_image(path).pixels[..., :3]
            if min(pixels.shape[:2]) >= patch:
                self.images.append(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        if not self.images:
            raise ConfigError(f"gan_real_dir {folder}: no image of at least {patch} px")
        self.patch = patch
        self.seed = seed
        log.info("critic's real examples: %d images from %s", len(self.images), folder)

    def draw(self, count: int, step: int) -> Tensor:
        """[count, 3, patch, patch] float 0..255, with random flips."""
        rng = np.random.default_rng((self.seed, step))
        out = np.empty((count, self.patch, self.patch, 3), np.uint8)
        p = self.patch
        for i in range(count):
            img = self.images[int(rng.integers(len(self.images)))]
            y = int(rng.integers(img.shape[0] - p + 1))
            x = int(rng.integers(img.shape[1] - p + 1))
            crop = img[y:y + p, x:x + p]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            out[i] = crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).float()


class Adversary:
    """The critic, its Adam optimiser and its real examples, for one training run."""

    def __init__(self, channels: int, lr: float, kind: str, device: torch.device,
                 real: RealPatches | None = None) -> None:
        if kind not in GAN_LOSSES:
            raise ConfigError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {kind!r}")
        self.net = UNetDiscriminator(channels).to(device)
        # the betas of GAN practice: a short memory of the gradient's direction
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.9, 0.99))
        self.kind = kind
        self.real = real
        self.device = device

    def generator_loss(self, sr: Tensor) -> Tensor:
        """The adversarial term of the generator's objective on ``sr``; the critic's own
        weights get no gradient from it."""
        for p in self.net.parameters():
            p.requires_grad_(False)
        try:
            return generator_loss(self.net(sr), self.kind)
        finally:
            for p in self.net.parameters():
                p.requires_grad_(True)

    def step(self, hr: Tensor, sr: Tensor, step: int,
             autocast: Any = None) -> tuple[float, float, float]:
        """One critic step: real = ``hr`` (or this run's real images), fake = ``sr``
        (detached). Returns (loss, mean real logit, mean fake logit)."""
        real = hr if self.real is None else self.real.draw(hr.shape[0], step).to(self.device)
        ctx = autocast if autocast is not None else torch.autocast(self.device.type, enabled=False)
        with ctx:
            r = self.net(real)
            f = self.net(sr.detach())
            loss = discriminator_loss(r, f, self.kind)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach()), float(r.detach().float().mean()), float(f.detach().float().mean())

    def state_dict(self) -> dict[str, Any]:
        return {"params": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                "optimiser": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.net.load_state_dict(state["params"])
            self.opt.load_state_dict(state["optimiser"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"the checkpoint's discriminator does not fit this run's "
                              f"({type(exc).__name__}); was disc_channels changed?") from None
