"""What this computer's CPU can do fast: the facts behind ``--precision auto``.

bf16 convolutions are only worth it where oneDNN has native instructions for them (AMX tiles or
AVX-512 BF16 dot products); elsewhere it emulates them and they run slower than fp32. The
answer comes from the CPU's feature flags as PyTorch reads them (cpuinfo), from oneDNN being
present, and from any ``ONEDNN_MAX_CPU_ISA`` cap the user set, never from the CPU's name.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

# oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``) that still allow native bf16.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
              "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL")
_FP16_ISAS = ("AVX512_CORE_FP16", "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX_FP16",
              "ALL")


@dataclass(frozen=True)
class CpuCaps:
    """Reduced-precision abilities of the CPU and of the oneDNN build that drives it.

    ``bf16``/``fp16``: native convolutions in that type (worth using); ``reason`` says in
    words why bf16 is or is not used, for logs and skipped tests.
    """

    vector: str  # PyTorch's kernel level, e.g. AVX2, AVX512
    avx512_bf16: bool
    amx: bool
    amx_fp16: bool
    onednn: bool
    isa_cap: str | None
    bf16: bool
    fp16: bool
    reason: str


def _flag(name: str) -> bool:
    fn = getattr(torch.cpu, name, None)  # private helpers in torch >= 2.1
    if fn is None:
        return False
    try:
        return bool(fn())
    except Exception:  # an unusual build: treat the feature as absent
        return False


def _isa_cap() -> str | None:
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = os.environ.get(var, "").strip().upper()
        if value:
            return value
    return None


def _onednn_supports(kind: str) -> bool:
    try:
        probe = getattr(torch.ops.mkldnn, f"_is_mkldnn_{kind}_supported")
        return bool(probe())
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def cpu_caps() -> CpuCaps:
    """The CPU's abilities, read once per process."""
    vector = torch.backends.cpu.get_cpu_capability()
    avx512_bf16 = _flag("_is_avx512_bf16_supported")
    amx = _flag("_is_amx_tile_supported")
    amx_fp16 = _flag("_is_amx_fp16_supported")
    onednn = bool(torch.backends.mkldnn.is_available())
    cap = _isa_cap()
    native_bf16 = avx512_bf16 or amx
    if not onednn:
        bf16, reason = False, "this PyTorch build has no oneDNN"
    elif not native_bf16:
        bf16, reason = False, f"the CPU has no AMX or AVX-512 BF16 instructions ({vector})"
    elif cap is not None and cap not in _BF16_ISAS:
        bf16, reason = False, f"oneDNN is capped at {cap} (ONEDNN_MAX_CPU_ISA)"
    elif not _onednn_supports("bf16"):
        bf16, reason = False, "oneDNN reports no bf16 support"
    else:
        bf16 = True
        reason = "the CPU has native bf16 instructions (" + ("AMX" if amx else "AVX-512 BF16") + ")"
    # fp16 convs only pay off with AMX-FP16 (or AVX-512 FP16), which few CPUs have
    fp16 = (onednn and amx_fp16 and (cap is None or cap in _FP16_ISAS)
            and _onednn_supports("fp16"))
    return CpuCaps(vector, avx512_bf16, amx, amx_fp16, onednn, cap, bf16, fp16, reason)


def auto_cpu_precision() -> str:
    """``bf16`` where the CPU runs bf16 convolutions natively, else ``fp32``."""
    caps = cpu_caps()
    choice = "bf16" if caps.bf16 else "fp32"
    log.debug("precision auto on the CPU: %s (%s)", choice, caps.reason)
    return choice
