"""Where and in what precision the upscaler runs: the devices this machine has
(``available_devices``, ``resolve_device``), the precision a device runs (``resolve_precision``)
and how much memory one tile may use there."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from engine.errors import ConfigError
from engine.inference.cpu_caps import auto_cpu_precision, cpu_caps
from engine.model import CMDSR

# --------------------------------------------------------------------------- devices

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# What users may ask for: a concrete type, or ``auto`` (see ``resolve_precision``).
PRECISION_CHOICES = ("auto", *PRECISIONS)
# Working memory auto tiling aims for on the CPU: keeps a 1000x1000 -> 4000x4000 job (with
# its 190 MB output) well under 2.5 GB of RSS on a modest laptop.
CPU_TILE_BUDGET = 1280 * 2**20


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Concrete devices usable here, e.g. ``["cpu", "cuda:0", "mps"]`` (``"auto"`` is always
    accepted by ``resolve_device`` too)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; any other name must be available here."""
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    choices = ", ".join(["auto", *available_devices()])
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; choose one of {choices}") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA GPU is available here; choose one of "
                              f"{choices}")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA "
                              f"GPU(s); choose one of {choices}")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise ConfigError(f"device {name!r}: Apple MPS is not available here; choose one of "
                              f"{choices}")
        return torch.device("mps")
    raise ConfigError(f"unsupported device {name!r}; choose one of {choices}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on a CPU with native bf16 convolutions, else fp32; a concrete name is
    checked against what ``device`` can run."""
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, "
                          f"got {precision!r}")
    if precision == "auto":
        return auto_cpu_precision() if device.type == "cpu" else "fp32"
    if precision == "fp16" and device.type == "cpu" and not cpu_caps().fp16:
        raise ConfigError("precision fp16 needs a GPU or a CPU with native fp16 convolutions "
                          "(AMX-FP16); use bf16 or fp32 on this CPU")
    if precision == "bf16" and device.type == "cpu" and not cpu_caps().bf16:
        log.warning("bf16 on this CPU is emulated and slower than fp32: %s", cpu_caps().reason)
    return precision


def free_memory(device: torch.device) -> int:
    """Bytes we may use for one tile's activations on ``device``."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    if device.type == "mps":
        return 2 * 2**30
    available = _available_ram()
    return int(min(CPU_TILE_BUDGET, available // 4)) if available else CPU_TILE_BUDGET


def _available_ram() -> int | None:
    try:
        with Path("/proc/meminfo").open() as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def body_bytes_per_pixel(model: CMDSR, dtype: torch.dtype) -> float:
    """Peak bytes per input pixel of the body (input conv + residual blocks): the block
    input, the global skip, the residual and the conv output live at once (measured ~4x C)."""
    item = torch.finfo(dtype).bits // 8
    return item * model.config.channels * 4.5


def tail_bytes_per_pixel(model: CMDSR, dtype: torch.dtype) -> float:
    """Peak bytes per input pixel of the upsampling tail: the last stage holds its input, the
    conv output and the pixel-shuffled copy at s x s resolution (measured ~10.5 KB for 64 ch x4)."""
    c, s = model.config.channels, model.config.scale
    item = torch.finfo(dtype).bits // 8
    return item * c * (2.5 * s * s + 6)
