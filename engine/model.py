"""The CMDSR network: ConditionNet, modulations and the modulated SRResNet-10 BaseNet.

Faithful to the authors' reference code (parameter names, equalized convs, 0..255 ranges),
with two forward paths that give the same result:

* the *training path* (``CMDSR.forward``): each sample's input channels are scaled by its
  task's modulation before one plain convolution over the whole batch, so every task in a
  batch gets its own BaseNet;
* the *inference path* (``CMDSR.fold``): the condition of one support set is computed once,
  the 20 modulations are multiplied into plain conv weights, and the image runs through
  ordinary convolutions (channels_last on CPU), as fast as a fixed SRResNet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import ConfigError

SUPPORTED_SCALES = (2, 3, 4)
# What the ConditionNet looks at: ``raw`` support pixels (the authors' network) or their
# ``highpass`` view (each patch minus its own 3x3 box blur). Raw pixels mostly describe the
# picture; the high-pass view holds the noise, the lost edges and the JPEG blocks, which is
# what a condition must tell apart.
CONDITION_INPUTS = ("raw", "highpass")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a CMDSR network.

    ``support_size`` is fixed by the weights: the ConditionNet sees the S support patches
    concatenated along channels (3*S input channels).
    """

    scale: int = 4
    channels: int = 64
    blocks: int = 10
    support_size: int = 20
    cond_channels: int = 128
    conditioning: bool = True
    residual_lr: float = 1.0
    # Multiplies the raw weights of each block's second conv at creation. 1.0 reproduces the
    # reference (N(0,1) raw weights); our own training uses a smaller value for a calmer start.
    res_init_scale: float = 1.0
    condition_input: str = "raw"

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ConfigError(f"scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        for name in ("channels", "blocks", "support_size", "cond_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.cond_channels % 2:
            raise ConfigError(f"cond_channels must be even, got {self.cond_channels}")
        if not self.residual_lr > 0:
            raise ConfigError(f"residual_lr must be positive, got {self.residual_lr}")
        if not self.res_init_scale > 0:
            raise ConfigError(f"res_init_scale must be positive, got {self.res_init_scale}")
        if self.condition_input not in CONDITION_INPUTS:
            raise ConfigError(f"condition_input must be one of {', '.join(CONDITION_INPUTS)}, "
                              f"got {self.condition_input!r}")

    @property
    def n_modulations(self) -> int:
        return 2 * self.blocks


class EqualConv2d(nn.Module):
    """Conv whose raw weight is N(0,1) and is scaled by 1/sqrt(fan_in) in the forward pass."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def effective_weight(self) -> Tensor:
        return self.weight * self.scale

    def forward(self, x: Tensor, modulation: Tensor | None = None) -> Tensor:
        """``x``: [B, in, H, W]; ``modulation``: optional [G, in] input-channel scales, one row
        per group of B/G consecutive samples (one task each)."""
        if modulation is None:
            return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)
        # Scaling the weight's input channels per task equals scaling the input's channels
        # per sample: one elementwise multiply, then one plain (dense) conv for all tasks,
        # which runs the fast library kernels instead of a grouped conv with two transposes.
        groups, c = modulation.shape
        b = x.shape[0]
        per_sample = modulation[:, None, :].expand(groups, b // groups, c).reshape(b, c, 1, 1)
        return F.conv2d(x * per_sample.to(x.dtype), self.effective_weight(), self.bias,
                        padding=self.padding)


def _grouped_modulated_conv(conv: EqualConv2d, x: Tensor, modulation: Tensor) -> Tensor:
    """The modulated conv as a grouped conv with per-task weights (the former training
    path): the reference the dense path is tested and benchmarked against."""
    groups = modulation.shape[0]
    b, c, h, w = x.shape
    per_group = b // groups
    # [G, out, in, k, k]: scales the input-channel axis, one vector per task.
    weight = conv.effective_weight().unsqueeze(0) * modulation[:, None, :, None, None]
    out_ch = weight.shape[1]
    weight = weight.reshape(groups * out_ch, c, *weight.shape[-2:])
    # Tasks side by side along channels: [B/G, G*in, H, W], one conv group per task.
    xg = x.reshape(groups, per_group, c, h, w).transpose(0, 1).reshape(per_group, groups * c, h, w)
    out = F.conv2d(xg, weight, conv.bias.repeat(groups), padding=conv.padding, groups=groups)
    out = out.reshape(per_group, groups, out_ch, h, w).transpose(0, 1)
    return out.reshape(b, out_ch, h, w)


class EqualLinear(nn.Module):
    """Linear layer with N(0,1) raw weight used as weight/sqrt(in_dim)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = 1.0 / math.sqrt(in_dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class Modulations(nn.Module):
    """Maps the condition vector to one input-channel scale vector per backbone conv."""

    def __init__(self, n: int, cond_channels: int, channels: int) -> None:
        super().__init__()
        # bias 1: an untrained modulation is close to identity.
        self.modulations = nn.ModuleList(
            EqualLinear(cond_channels, channels, bias_init=1.0) for _ in range(n)
        )

    def forward(self, condition: Tensor) -> Tensor:
        """``condition``: [T, cond] -> [n, T, channels] (index j = 2*block + conv)."""
        return torch.stack([m(condition) for m in self.modulations])


class ResBlock(nn.Module):
    def __init__(self, channels: int, residual_lr: float, res_init_scale: float) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(channels, channels)
        self.conv2 = EqualConv2d(channels, channels)
        with torch.no_grad():
            self.conv2.weight.mul_(res_init_scale)
        self.residual_lr = residual_lr

    def forward(self, x: Tensor, m1: Tensor | None = None, m2: Tensor | None = None) -> Tensor:
        res = F.relu(self.conv1(x, m1))
        res = self.conv2(res, m2)
        return x + res * self.residual_lr


def _make_upsampler(scale: int, channels: int) -> nn.Sequential:
    if scale == 3:
        return nn.Sequential(EqualConv2d(channels, 9 * channels), nn.PixelShuffle(3))
    layers: list[nn.Module] = []
    for _ in range(int(math.log2(scale))):
        layers += [EqualConv2d(channels, 4 * channels), nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class SRNet(nn.Module):
    """The BaseNet: SRResNet-10 with optionally modulated backbone convs."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.input_conv = EqualConv2d(3, c)
        self.backbone = nn.ModuleList(
            ResBlock(c, cfg.residual_lr, cfg.res_init_scale) for _ in range(cfg.blocks)
        )
        self.upsampler = _make_upsampler(cfg.scale, c)
        self.output_conv = EqualConv2d(c, 3)
        self.modulations = (
            Modulations(cfg.n_modulations, cfg.cond_channels, c) if cfg.conditioning else None
        )
        self.residual_lr = cfg.residual_lr

    def forward(self, lr: Tensor, condition: Tensor | None = None) -> Tensor:
        """``lr``: [B, 3, H, W] in 0..255; ``condition``: [T, cond] with B divisible by T
        (the B images are T consecutive groups, one per task)."""
        mods = None
        if self.modulations is not None:
            if condition is None:
                raise ValueError("this model is conditioned: a support set is required")
            if lr.shape[0] % condition.shape[0]:
                raise ValueError(
                    f"batch of {lr.shape[0]} images does not split into {condition.shape[0]} tasks"
                )
            mods = self.modulations(condition)
        x = self.input_conv(lr)
        feat = x
        for i, block in enumerate(self.backbone):
            if mods is None:
                x = block(x)
            else:
                x = block(x, mods[2 * i], mods[2 * i + 1])
        x = feat * self.residual_lr + x
        for layer in self.upsampler:
            x = layer(x)
        return self.output_conv(x)


def highpass_view(x: Tensor) -> Tensor:
    """Each patch minus its own 3x3 box blur (reflect padding), per channel, in the input's
    units: [..., h, w] -> same shape. Flat areas become 0; noise, edges and JPEG blocks stay."""
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-2], shape[-1])
    blurred = F.avg_pool2d(F.pad(flat, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    return (flat - blurred).reshape(shape)


class ConditionNet(nn.Module):
    """First VGG-19 stages over the channel-concatenated support set, globally pooled.

    With ``view = "highpass"`` the support patches are seen through ``highpass_view`` and the
    pooled vector is standardised by ``cond_shift``/``cond_scale`` (set from the conditions of
    training tasks once the ConditionNet has learnt, see ``set_standardisation``), so the
    modulations read numbers of about unit spread. The ``raw`` view is the authors' network,
    parameter for parameter."""

    cond_shift: Tensor
    cond_scale: Tensor

    def __init__(self, support_size: int, cond_channels: int, view: str = "raw") -> None:
        super().__init__()
        if view not in CONDITION_INPUTS:
            raise ConfigError(f"condition_input must be one of {', '.join(CONDITION_INPUTS)}, got {view!r}")
        self.view = view
        half = cond_channels // 2
        self.condition = nn.Sequential(
            nn.Conv2d(3 * support_size, half, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(2, 2),
            nn.Conv2d(half, cond_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(cond_channels, cond_channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        for m in self.condition:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                if view == "raw":  # the authors' damping for 0..255 inputs; the high-pass
                    with torch.no_grad():  # view is centred and a few tens of levels wide
                        m.weight.mul_(0.1)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if view == "highpass":
            self.register_buffer("cond_shift", torch.zeros(cond_channels))
            self.register_buffer("cond_scale", torch.ones(cond_channels))

    def features(self, support: Tensor) -> Tensor:
        """The pooled vector before standardisation: [T, S, 3, h, w] (0..255) -> [T, cond]."""
        if self.view == "highpass":
            support = highpass_view(support)
        if support.dim() == 5:
            support = support.flatten(1, 2)  # patch i -> channels 3i..3i+2
        return self.condition(support).mean(dim=(2, 3))

    def forward(self, support: Tensor) -> Tensor:
        """``support``: [T, S, 3, h, w] (or already [T, 3S, h, w]) in 0..255 -> [T, cond]."""
        out = self.features(support)
        if self.view == "highpass":
            out = (out - self.cond_shift) / self.cond_scale
        return out

    @torch.no_grad()
    def set_standardisation(self, shift: Tensor, scale: Tensor) -> None:
        """Make the condition ``(features - shift) / scale`` (high-pass view only)."""
        if self.view != "highpass":
            raise ValueError("only a high-pass ConditionNet standardises its condition")
        self.cond_shift.copy_(shift)
        self.cond_scale.copy_(scale.clamp_min(1e-6))


def _fused_cpu_ops_available() -> bool:
    """oneDNN's fused conv+ReLU / conv+add kernels (the ones torch.compile uses on CPU)."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        if not torch.backends.mkldnn.is_available():
            return False
        x = torch.ones(1, 2, 4, 4).contiguous(memory_format=torch.channels_last)
        w = torch.ones(2, 2, 3, 3).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            y = op(x, w, None, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
            z = op.binary(x, y, w, None, [1, 1], [1, 1], [1, 1], 1, "add", None, None, [], None)
        return bool(torch.allclose(z, F.conv2d(x, w, padding=1) * 2))
    except Exception:  # older builds or other CPUs: plain convolutions are used instead
        return False


_FUSED_CPU: bool | None = None

# Reach of the tail (upsampler + output conv) in input pixels: 1 + 1/2 + 1/4 at x4, less at
# x2/x3, so a 5x5 composite kernel holds all of it.
_COMPOSITE_RADIUS = 2
# Input pixels along each edge whose outputs see the tail's inner zero padding (< 1 pixel),
# and the strip width that recomputes them with enough context on the inner side.
_EDGE = 2
_EDGE_CONTEXT = _EDGE + _COMPOSITE_RADIUS + 1


def fused_cpu_ops_available() -> bool:
    global _FUSED_CPU
    if _FUSED_CPU is None:
        _FUSED_CPU = _fused_cpu_ops_available()
    return _FUSED_CPU


class FoldedSRNet(nn.Module):
    """The BaseNet with one support set's modulations multiplied into plain conv weights.

    Holds plain tensors (no parameters): built by ``CMDSR.fold`` for inference only. On the
    CPU it runs channels_last with oneDNN's fused conv+ReLU and conv+residual-add kernels,
    which saves a memory pass per activation and per residual.
    """

    _ONE = [1, 1]

    def __init__(
        self,
        convs: list[tuple[Tensor, Tensor]],
        scale: int,
        blocks: int,
        residual_lr: float,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.blocks = blocks
        self.residual_lr = residual_lr
        for i, (w, b) in enumerate(convs):
            self.register_buffer(f"w{i}", w)
            self.register_buffer(f"b{i}", b)
        self.n_convs = len(convs)
        self.use_fused = True
        # the upsampler as one measured conv (see ``tail``); False runs it layer by layer
        self.composite_tail = True

    def _fused(self, x: Tensor) -> bool:
        return (
            self.use_fused
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and not torch.is_grad_enabled()
            and fused_cpu_ops_available()
        )

    def _conv(
        self, i: int, x: Tensor, fused: bool, relu: bool = False, add: Tensor | None = None
    ) -> Tensor:
        w, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
        if fused:
            op = torch.ops.mkldnn._convolution_pointwise
            one = self._ONE
            if add is not None:
                return op.binary(x, add, w, b, one, one, one, 1, "add", None, None, [], None)
            return op(x, w, b, one, one, one, 1, "relu" if relu else "none", [], "")
        y = F.conv2d(x, w, b, padding=1)
        if relu:
            y = F.relu(y, inplace=True)
        if add is not None:
            y = y + add
        return y

    @staticmethod
    def _layout(x: Tensor) -> Tensor:
        # channels_last is what oneDNN's fast CPU convolutions want
        return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x

    def body(self, lr: Tensor, on_block: Callable[[], None] | None = None) -> Tensor:
        """Input conv, residual blocks and global skip: features at input resolution.
        ``on_block`` is called after each block (progress, prompt cancel)."""
        lr = self._layout(lr)
        fused = self._fused(lr)
        plain_residual = self.residual_lr == 1
        x = self._conv(0, lr, fused)
        feat = x
        i = 1
        for _ in range(self.blocks):
            res = self._conv(i, x, fused, relu=True)
            if plain_residual:
                x = self._conv(i + 1, res, fused, add=x)
            else:
                x = x + self._conv(i + 1, res, fused) * self.residual_lr
            del res
            i += 2
            if on_block is not None:
                on_block()
        return feat + x if plain_residual else feat * self.residual_lr + x

    def _tail_staged(self, features: Tensor, bias: bool = True) -> Tensor:
        """Upsampler and output conv as the network defines them (conv, PixelShuffle, ...)."""
        x = self._layout(features)
        fused = bias and self._fused(x)
        factor = 3 if self.scale == 3 else 2
        i = 2 * self.blocks + 1
        while True:
            if bias:
                x = self._conv(i, x, fused)
            else:
                x = F.conv2d(x, getattr(self, f"w{i}"), None, padding=1)
            if i == self.n_convs - 1:
                return x.contiguous()
            x = self._layout(F.pixel_shuffle(x, factor))
            i += 1

    @torch.no_grad()
    def _build_composite_tail(self) -> None:
        """The tail has no activation, so it is one linear map: from the features around an
        input pixel to that pixel's s x s output block. Measure that map once by pushing unit
        impulses through the tail and keep it as a single 5x5 conv with 3*s*s outputs
        (then PixelShuffle(s)): about 10x fewer operations than the staged tail at x4."""
        w_first = cast(Tensor, getattr(self, f"w{2 * self.blocks + 1}"))
        s, c = self.scale, int(w_first.shape[1])
        g, mid = 2 * _COMPOSITE_RADIUS + 5, _COMPOSITE_RADIUS + 2
        impulses = torch.zeros(c, c, g, g, dtype=w_first.dtype, device=w_first.device)
        impulses[torch.arange(c), torch.arange(c), mid, mid] = 1
        resp = self._tail_staged(impulses, bias=False).float()  # [c, 3, g*s, g*s]
        resp = resp.reshape(c, 3, g, s, g, s).permute(1, 3, 5, 0, 2, 4)  # k, i, j, c, y, x
        lo, hi = mid - _COMPOSITE_RADIUS, mid + _COMPOSITE_RADIUS + 1
        # out[y] = sum_t W[t] f[y + t - R]: the tap for input y' = mid seen from output y is
        # t = mid - y + R, i.e. the response read backwards.
        kernel = resp[..., lo:hi, lo:hi].flip(-1).flip(-2).reshape(3 * s * s, c, hi - lo, hi - lo)
        base = self._tail_staged(torch.zeros_like(impulses[:1]), bias=True).float()
        bias = base.reshape(3, g, s, g, s)[:, mid, :, mid, :].reshape(3 * s * s)
        memory_format = torch.channels_last if kernel.device.type == "cpu" else torch.contiguous_format
        self.register_buffer("w_tail", kernel.to(w_first.dtype).contiguous(memory_format=memory_format))
        self.register_buffer("b_tail", bias.to(w_first.dtype))

    def tail(self, features: Tensor) -> Tensor:
        """Upsampler and output conv: features [N, C, h, w] -> SR image [N, 3, h*s, w*s].

        The interior uses the composite conv; a ring of ``_EDGE`` input pixels along each
        edge is recomputed with the staged tail, because there the network zero-pads its
        intermediate (2x, 4x) maps, which no conv on the input grid can reproduce.
        """
        h, w = features.shape[-2:]
        if not self.composite_tail or min(h, w) < 2 * _EDGE_CONTEXT:
            return self._tail_staged(features)
        if not hasattr(self, "w_tail"):
            self._build_composite_tail()
        x = self._layout(features)
        r = _COMPOSITE_RADIUS
        w_tail, b_tail = cast(Tensor, self.w_tail), cast(Tensor, self.b_tail)
        if self._fused(x):
            op = torch.ops.mkldnn._convolution_pointwise
            y = op(x, w_tail, b_tail, [r, r], [1, 1], [1, 1], 1, "none", [], "")
        else:
            y = F.conv2d(x, w_tail, b_tail, padding=r)
        out = F.pixel_shuffle(y, self.scale).contiguous()
        e, k, s = _EDGE, _EDGE_CONTEXT, self.scale
        out[..., : e * s, :] = self._tail_staged(features[..., :k, :])[..., : e * s, :]
        out[..., -e * s :, :] = self._tail_staged(features[..., -k:, :])[..., -e * s :, :]
        out[..., :, : e * s] = self._tail_staged(features[..., :, :k])[..., :, : e * s]
        out[..., :, -e * s :] = self._tail_staged(features[..., :, -k:])[..., :, -e * s :]
        return out

    def forward(self, lr: Tensor) -> Tensor:
        return self.tail(self.body(lr))


class CMDSR(nn.Module):
    """ConditionNet + modulated BaseNet. ``model(lr, support)`` -> SR in 0..255 (unclamped)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.sr_net = SRNet(cfg)
        self.condition_net = (
            ConditionNet(cfg.support_size, cfg.cond_channels, cfg.condition_input)
            if cfg.conditioning
            else None
        )

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def support_size(self) -> int:
        return self.config.support_size

    @property
    def conditioned(self) -> bool:
        return self.config.conditioning

    def condition(self, support: Tensor | None) -> Tensor:
        """Condition vectors [T, cond] of T support sets [T, S, 3, h, w] (0..255)."""
        if self.condition_net is None:
            raise ValueError("this model has conditioning switched off")
        if support is None:
            raise ValueError("this model is conditioned: a support set is required")
        if support.dim() != 5 or support.shape[1:3] != (self.support_size, 3):
            raise ValueError(
                f"support must be [T, {self.support_size}, 3, h, w], got {list(support.shape)}"
            )
        return self.condition_net(support)

    def forward(self, lr: Tensor, support: Tensor | None = None) -> Tensor:
        """``lr``: [N, 3, H, W]; ``support``: [T, S, 3, h, w] with N divisible by T
        (T = N: one support set per image). Returns [N, 3, H*s, W*s]."""
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"lr must be [N, 3, H, W], got {list(lr.shape)}")
        cond = self.condition(support) if self.condition_net is not None else None
        return self.sr_net(lr, cond)

    @torch.no_grad()
    def fold(self, support: Tensor | None = None, condition: Tensor | None = None) -> FoldedSRNet:
        """Inference path for one support set [1, S, 3, h, w] (or [S, 3, h, w]), or for a
        given ``condition`` [1, cond] (e.g. from the damage knobs) instead of a support set.

        The returned module runs plain convolutions; for a model with conditioning off the
        support is ignored.
        """
        net = self.sr_net
        mods = None
        if self.condition_net is not None and condition is not None:
            assert net.modulations is not None
            if condition.dim() != 2 or condition.shape != (1, self.config.cond_channels):
                raise ValueError(f"condition must be [1, {self.config.cond_channels}], "
                                 f"got {list(condition.shape)}")
            mods = net.modulations(condition)[:, 0]
        elif self.condition_net is not None:
            if support is None:
                raise ValueError("this model is conditioned: a support set is required")
            if support.dim() == 4:
                support = support.unsqueeze(0)
            if support.shape[0] != 1:
                raise ValueError("fold() takes one support set")
            assert net.modulations is not None
            mods = net.modulations(self.condition(support))[:, 0]  # [20, C]
        convs: list[tuple[Tensor, Tensor]] = []

        def add(conv: EqualConv2d, mod: Tensor | None = None) -> None:
            w = conv.effective_weight()
            if mod is not None:
                w = w * mod[None, :, None, None]
            memory_format = torch.channels_last if w.device.type == "cpu" else torch.contiguous_format
            convs.append((w.detach().contiguous(memory_format=memory_format), conv.bias.detach().clone()))

        add(net.input_conv)
        for i, block in enumerate(net.backbone):
            assert isinstance(block, ResBlock)
            add(block.conv1, None if mods is None else mods[2 * i])
            add(block.conv2, None if mods is None else mods[2 * i + 1])
        for layer in net.upsampler:
            if isinstance(layer, EqualConv2d):
                add(layer)
        add(net.output_conv)
        return FoldedSRNet(convs, self.scale, len(net.backbone), net.residual_lr).eval()


def build_model(cfg: ModelConfig) -> CMDSR:
    """A freshly initialised CMDSR network for ``cfg``."""
    return CMDSR(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
