"""Validation during training: PSNR-Y / SSIM-Y of the model on fixed degraded photos, and
the bicubic upscale's on the same photos."""

from __future__ import annotations

import numpy as np
import torch

from engine.data import ValItem
from engine.metrics import bicubic_upscale, psnr_y, ssim_y
from engine.model import CMDSR


@torch.inference_mode()
def super_resolve(model: CMDSR, lr: np.ndarray, support: np.ndarray | None, device: torch.device) -> np.ndarray:
    """SR of one HxWx3 float LR image (0..255) with a support [S, 3, p, p]; returns the
    rounded, clipped HxWx3 float32 result as it would be saved."""
    x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1)))[None].float().to(device)
    sup = None
    if model.condition_net is not None:
        if support is None:
            raise ValueError("this model is conditioned: a support set is required")
        sup = torch.from_numpy(support)[None].float().to(device)
    was_training = model.training
    model.eval()
    try:
        out = model.fold(sup)(x)
    finally:
        model.train(was_training)
    return out[0].clamp(0, 255).round().permute(1, 2, 0).cpu().numpy().astype(np.float32)


def validate(model: CMDSR, items: list[ValItem], device: torch.device) -> tuple[float, float]:
    """Mean PSNR-Y / SSIM-Y of ``model`` over the fixed validation items."""
    scale = model.scale
    ps, ss = [], []
    for it in items:
        sr = super_resolve(model, it.lr, it.support, device)
        ps.append(psnr_y(sr, it.hr, scale))
        ss.append(ssim_y(sr, it.hr, scale))
    return float(np.mean(ps)), float(np.mean(ss))


def bicubic_baseline(items: list[ValItem], scale: int) -> tuple[float, float]:
    ps = [psnr_y(bicubic_upscale(it.lr, scale), it.hr, scale) for it in items]
    ss = [ssim_y(bicubic_upscale(it.lr, scale), it.hr, scale) for it in items]
    return float(np.mean(ps)), float(np.mean(ss))
