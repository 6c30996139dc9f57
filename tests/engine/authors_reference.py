"""An independent re-statement of the authors' CMDSR forward pass, used only by the tests.

Written from the method description (not from the engine), deliberately naive: modulated
weights per sample, one grouped conv with groups=batch, equalized scales applied inline.
It reads a plain state_dict with the authors' parameter names.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _eq(w: torch.Tensor) -> torch.Tensor:
    return w / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3])


def reference_forward(sd: dict[str, torch.Tensor], lr: torch.Tensor, support: torch.Tensor | None) -> torch.Tensor:
    n = lr.shape[0]
    cond = None
    if support is not None and "condition_net.condition.0.weight" in sd:
        s = support.reshape(support.shape[0], -1, *support.shape[-2:])
        for i in (0, 2):
            s = F.relu(F.conv2d(s, sd[f"condition_net.condition.{i}.weight"], sd[f"condition_net.condition.{i}.bias"], padding=1))
        s = F.avg_pool2d(s, 2, 2)
        for i in (5, 7):
            s = F.relu(F.conv2d(s, sd[f"condition_net.condition.{i}.weight"], sd[f"condition_net.condition.{i}.bias"], padding=1))
        cond = s.mean(dim=(2, 3))  # [T, 128]
        cond = cond.repeat_interleave(n // cond.shape[0], dim=0)  # one row per image

    def conv(name: str, x: torch.Tensor, mod: torch.Tensor | None = None) -> torch.Tensor:
        w, b = _eq(sd[f"sr_net.{name}.weight"]), sd[f"sr_net.{name}.bias"]
        if mod is None:
            return F.conv2d(x, w, b, padding=1)
        wb = (w.unsqueeze(0) * mod[:, None, :, None, None]).reshape(-1, *w.shape[1:])
        bsz, c, h, ww = x.shape
        out = F.conv2d(x.reshape(1, bsz * c, h, ww), wb, b.repeat(bsz), padding=1, groups=bsz)
        return out.reshape(bsz, -1, h, ww)

    def modulation(j: int) -> torch.Tensor | None:
        if cond is None:
            return None
        w = sd[f"sr_net.modulations.modulations.{j}.weight"]
        return cond @ (w / math.sqrt(w.shape[1])).t() + sd[f"sr_net.modulations.modulations.{j}.bias"]

    x = conv("input_conv", lr)
    feat = x
    b = 0
    while f"sr_net.backbone.{b}.conv1.weight" in sd:
        r = F.relu(conv(f"backbone.{b}.conv1", x, modulation(2 * b)))
        x = x + conv(f"backbone.{b}.conv2", r, modulation(2 * b + 1))
        b += 1
    x = feat + x
    up = sd["sr_net.upsampler.0.weight"]
    factor = 3 if up.shape[0] == 9 * up.shape[1] else 2
    i = 0
    while f"sr_net.upsampler.{i}.weight" in sd:
        x = F.pixel_shuffle(conv(f"upsampler.{i}", x), factor)
        i += 2
    return conv("output_conv", x)
