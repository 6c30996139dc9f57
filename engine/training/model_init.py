"""The network a run starts from: fresh (seeded), as nearest-neighbour or bicubic upscaling,
or from another model file (``init_from``), with a damage readout when the run trains one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.checkpoint import read_checkpoint
from engine.damage_head import DamageHead, attach_damage_head
from engine.errors import ConfigError
from engine.model import CMDSR, EqualConv2d, EqualLinear, ResBlock, build_model
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.damage_readout import training_damage_head

log = logging.getLogger(__name__)


def build_training_model(cfg: TrainConfig, device: torch.device, resume_from: str | Path | None = None) -> CMDSR:
    """A freshly initialised network (seeded by ``cfg.seed``), optionally starting from the
    weights of ``cfg.init_from`` (e.g. a briefly trained BaseNet): parameters with matching
    names and shapes are copied, the rest keep their fresh values.

    ``resume_from``: the run checkpoint a resumed run continues from; its damage readout
    decides the readout's shape (a readout that reads JPEG too has a third output), so the
    saved state loads into the network built here."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    if cfg.init == "identity":
        identity_init(model)
    elif cfg.init == "bicubic":
        bicubic_init(model)
    head: DamageHead | None = None
    if cfg.init_from:
        _, state, _ = read_checkpoint(cfg.init_from)
        own = model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(usable, strict=False)
        log.info("initialised %d of %d tensors from %s", len(usable), len(own), cfg.init_from)
        mods = model.sr_net.modulations
        if mods is not None and not any(k.startswith("sr_net.modulations.") for k in usable):
            # a conditioning-off start: every modulation starts as the identity (weight 0,
            # bias 1), so the model upscales as the start does until it learns to adapt
            with torch.no_grad():
                for m in mods.modulations:
                    assert isinstance(m, EqualLinear)
                    m.weight.zero_()
                    m.bias.fill_(1.0)
        if cfg.damage_weight > 0:
            saved = read_damage_head(cfg.init_from)
            if saved is not None and saved.cond_channels == cfg.model.cond_channels:
                head = saved  # the readout the condition stage trained goes on learning
    if cfg.damage_weight > 0 and resume_from is not None:
        saved = read_damage_head(resume_from)
        if saved is not None and saved.cond_channels == cfg.model.cond_channels:
            head = saved
    if cfg.damage_weight > 0:
        attach_damage_head(model, head if head is not None else training_damage_head(cfg))
    return model.to(device).train()


@torch.no_grad()
def identity_init(model: CMDSR) -> None:
    """Start the BaseNet as nearest-neighbour upscaling instead of a random map.

    With the reference init an untrained network outputs noise hundreds of levels off (L1
    around 150-200 on 0..255) and spends its first thousands of steps learning to pass the
    image through; on a CPU budget that is most of the run. Here the RGB input is carried in
    feature channels 0..2, every residual branch starts at zero (second conv zeroed), the
    upsampler convs replicate each channel into its sub-pixels and the output conv reads
    channels 0..2 back. Other weights keep their random values, so gradients reach them
    from the first steps.
    """
    net = model.sr_net
    c = net.input_conv.weight.shape[0]
    if c < 3:
        raise ConfigError("init = identity needs at least 3 channels")

    def set_effective(conv: Any, eff: Tensor) -> None:
        conv.weight.copy_(eff / conv.scale)
        conv.bias.zero_()

    w_in = net.input_conv.effective_weight().clone()
    w_in[:3] = 0
    # The global skip adds residual_lr * input features to the backbone output (itself
    # identity with zero residuals): this gain passes the image through at gain 1.
    for i in range(3):
        w_in[i, i, 1, 1] = 1.0 / (1.0 + net.residual_lr)
    set_effective(net.input_conv, w_in)
    for block in net.backbone:
        assert isinstance(block, ResBlock)
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    for layer in net.upsampler:
        if isinstance(layer, EqualConv2d):
            out_ch, in_ch = layer.weight.shape[:2]
            r2 = out_ch // in_ch  # PixelShuffle: channel k*r2+j is sub-pixel j of channel k
            eff = torch.zeros_like(layer.weight)
            for k in range(in_ch):
                eff[k * r2 : (k + 1) * r2, k, 1, 1] = 1.0
            set_effective(layer, eff)
    eff = torch.zeros_like(net.output_conv.weight)
    for i in range(3):
        eff[i, i, 1, 1] = 1.0
    set_effective(net.output_conv, eff)


def bicubic_taps(scale: int) -> np.ndarray:
    """OpenCV's bicubic upscaling (``INTER_CUBIC``) as taps: ``K[jy, jx, ty, tx]`` is the
    weight of input pixel ``p + (ty-2, tx-2)`` in output pixel ``(scale*p + jy, scale*p + jx)``
    (float64 [s, s, 5, 5]), measured by upscaling unit impulses."""
    import cv2

    n, c = 13, 6
    taps = np.zeros((scale, scale, 5, 5))
    for ty in range(5):
        for tx in range(5):
            img = np.zeros((n, n), np.float64)
            img[c + ty - 2, c + tx - 2] = 1.0
            up = cv2.resize(img, (n * scale, n * scale), interpolation=cv2.INTER_CUBIC)
            taps[:, :, ty, tx] = up[c * scale : (c + 1) * scale, c * scale : (c + 1) * scale]
    return taps


@torch.no_grad()
def bicubic_init(model: CMDSR) -> None:
    """Start the BaseNet as exact bicubic upscaling (inside the image; the borders see zero
    padding) instead of nearest neighbour, so training starts from what users compare with.

    The input conv carries the RGB of each pixel's 3x3 neighbourhood in feature channels 0..26,
    every residual branch starts at zero, and the upsampler's first conv (reaching one more
    pixel, so +-2 in all) computes bicubic's output sub-pixels directly; the following layers
    only route them (at x4: the first conv's 4 sub-pixels each carry their own 2x2 children,
    12 channels). Other weights keep their random values, so gradients reach them.
    """
    net = model.sr_net
    s = model.scale
    c = net.input_conv.weight.shape[0]
    if c < 27:
        raise ConfigError("init = bicubic needs at least 27 channels")
    taps = bicubic_taps(s)
    gain = 1.0 / (1.0 + net.residual_lr)  # the global skip doubles the identity backbone

    def set_effective(conv: Any, eff: Tensor) -> None:
        conv.weight.copy_(eff / conv.scale)
        conv.bias.zero_()

    def shift(i: int) -> tuple[int, int, int]:
        """Feature channel i = colour i // 9 at offset (dy, dx) = divmod(i % 9, 3) - 1."""
        dy, dx = divmod(i % 9, 3)
        return i // 9, dy - 1, dx - 1

    w_in = net.input_conv.effective_weight().clone()
    w_in[:27] = 0
    for i in range(27):
        col, dy, dx = shift(i)
        w_in[i, col, 1 + dy, 1 + dx] = gain
    set_effective(net.input_conv, w_in)
    for block in net.backbone:
        assert isinstance(block, ResBlock)
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()

    # A tap t in -2..2 is reached as conv offset u plus feature offset d, both in -1..1.
    split = {-2: (-1, -1), -1: (0, -1), 0: (0, 0), 1: (0, 1), 2: (1, 1)}
    convs = [m for m in net.upsampler if isinstance(m, EqualConv2d)]
    first = torch.zeros_like(convs[0].weight)
    r = s if len(convs) == 1 else 2  # sub-pixels of the first conv's PixelShuffle
    for jy in range(s):
        for jx in range(s):
            if len(convs) == 1:  # x2, x3: the first conv's sub-pixels are the output pixels
                k_of = [(col, col * r * r + jy * r + jx) for col in range(3)]
            else:  # x4: sub-pixel (a, b) of the first conv, child (cy, cx) of the second
                a, cy = divmod(jy, 2)
                b, cx = divmod(jx, 2)
                k_of = [(col, (col * 4 + cy * 2 + cx) * 4 + a * 2 + b) for col in range(3)]
            for col, row in k_of:
                for ty in range(5):
                    for tx in range(5):
                        uy, dy = split[ty - 2]
                        ux, dx = split[tx - 2]
                        feat = col * 9 + (dy + 1) * 3 + (dx + 1)
                        first[row, feat, 1 + uy, 1 + ux] += float(taps[jy, jx, ty, tx])
    set_effective(convs[0], first)
    if len(convs) == 2:  # x4: route channel (colour, child) to the child sub-pixel
        second = torch.zeros_like(convs[1].weight)
        for col in range(3):
            for child in range(4):
                second[col * 4 + child, col * 4 + child, 1, 1] = 1.0
        set_effective(convs[1], second)
    out = torch.zeros_like(net.output_conv.weight)
    for col in range(3):
        out[col, col, 1, 1] = 1.0
    set_effective(net.output_conv, out)
