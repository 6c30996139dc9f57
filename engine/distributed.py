"""Multi-process training with PyTorch's own distributed stack (torchrun + DDP).

``torchrun`` starts one process per GPU (or per CPU share) and tells each its place through
environment variables: ``RANK`` (0..WORLD_SIZE-1 over all machines), ``WORLD_SIZE``,
``LOCAL_RANK`` (0.. on this machine, picks the GPU), ``LOCAL_WORLD_SIZE`` and the rendezvous
address ``MASTER_ADDR``/``MASTER_PORT``. ``init_distributed`` reads them and joins the
process group: ``nccl`` when the processes train on CUDA GPUs (each on ``cuda:LOCAL_RANK``),
``gloo`` on the CPU. Without those variables (or with ``WORLD_SIZE=1``) everything here is a
no-op, so the same training code runs as a single process, in the GUI, or under torchrun.

The batch of a training step is split, not multiplied: ``tasks_per_batch`` stays the number of
tasks per step over all processes (the effective batch), and process ``r`` makes tasks
``shard_range(T, r, W)`` of it. Since every task is drawn from its own seed ``(seed, step,
task)``, a run does the same arithmetic (up to float rounding) on any number of processes,
which is what lets a checkpoint written by 8 GPUs resume on 1 (or the other way round).

Only tested here on the CPU with ``gloo``; the CUDA/``nccl`` paths follow PyTorch's documented
recipe (``torch.cuda.set_device(LOCAL_RANK)`` before ``init_process_group``) but have not been
run on GPUs in this project's CI.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from engine.errors import ConfigError

log = logging.getLogger(__name__)

# Rank 0 validates and writes checkpoints while the others wait at the next collective:
# generous, so a long validation on a big set does not trip the watchdog.
DEFAULT_TIMEOUT_S = 3600


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""

    @property
    def enabled(self) -> bool:
        """True when gradients must be synchronised with other processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The one process that writes files, logs metrics and validates."""
        return self.rank == 0


SINGLE = DistContext()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def env_context() -> DistContext:
    """The place torchrun (or SLURM via torchrun) gave this process, from the environment."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} / WORLD_SIZE={world} from the environment do not fit")
    return DistContext(rank, world, local_rank, local_world)


def is_distributed_env() -> bool:
    """True when this process was started as one of several (torchrun with N > 1)."""
    return env_context().world_size > 1


def current_context() -> DistContext:
    """The context of the joined process group (``SINGLE`` when none has been joined)."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    env = env_context()
    return DistContext(dist.get_rank(), dist.get_world_size(), env.local_rank,
                       env.local_world_size, str(dist.get_backend()))


def is_main_process() -> bool:
    return current_context().is_main


def device_for(ctx: DistContext, requested: str) -> torch.device:
    """The device process ``ctx`` trains on: ``cuda:LOCAL_RANK`` when CUDA is asked for (or
    ``auto`` finds it), otherwise the CPU. A fixed ``cuda:N`` is overridden, since under
    torchrun each process must own its own GPU."""
    name = requested.strip().lower()
    want_cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if name.startswith("mps"):
        raise ConfigError("multi-process training supports CUDA GPUs or the CPU, not mps")
    if not want_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but no CUDA GPU is available")
    count = torch.cuda.device_count()
    if ctx.local_rank >= count:
        raise ConfigError(
            f"process with LOCAL_RANK {ctx.local_rank} has no GPU of its own: this machine has "
            f"{count}; start at most {count} processes per machine (--nproc_per_node)"
        )
    if name not in ("auto", "cuda", f"cuda:{ctx.local_rank}"):
        log.warning("device %s ignored: process %d uses cuda:%d (its LOCAL_RANK)",
                    requested, ctx.rank, ctx.local_rank)
    return torch.device("cuda", ctx.local_rank)


def init_distributed(requested_device: str = "auto",
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[DistContext, torch.device, bool]:
    """Join the process group torchrun describes in the environment.

    Returns (context, device, owned): ``owned`` is True when this call created the group (the
    caller then calls ``cleanup``). A single process (no torchrun, or ``--nproc_per_node 1``)
    gets ``SINGLE`` and no group. A group created beforehand (e.g. by a test or a launcher
    that called ``init_process_group`` itself) is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        ctx = current_context()
        device = device_for(ctx, requested_device) if ctx.enabled else torch.device("cpu")
        if ctx.enabled and device.type == "cuda":
            torch.cuda.set_device(device)
        return ctx, device, False
    env = env_context()
    if not env.enabled:
        return SINGLE, torch.device("cpu"), False
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed support")
    device = device_for(env, requested_device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before init: nccl binds each process to its GPU
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"{name} is not set: start multi-process training with torchrun")
    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(seconds=timeout_s))
    ctx = current_context()
    log.info("process %d of %d joined (%s, %s)", ctx.rank, ctx.world_size, backend, device)
    return ctx, device, True


def barrier() -> None:
    """Wait until every process gets here (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def cleanup() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_range(total: int, rank: int, world_size: int) -> range:
    """The contiguous share ``rank`` takes of ``total`` items (tasks of one step), like
    ``DistributedSampler`` but without padding or shuffling: shares are equal, so averaging
    gradients over processes averages the loss over all tasks exactly."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} does not fit world size {world_size}")
    if total % world_size:
        lower = max(world_size, total // world_size * world_size)
        raise ConfigError(
            f"tasks_per_batch ({total}) must split evenly over {world_size} processes; "
            f"use {lower} or {lower + world_size} (it is the batch over all processes)"
        )
    per = total // world_size
    return range(rank * per, (rank + 1) * per)


def gather_rows(x: Tensor, ctx: DistContext) -> Tensor:
    """All processes' ``x`` [n, ...] stacked in rank order [W*n, ...]; the own rows keep their
    gradient, the others' are constants. A loss of the result, backpropagated on every rank
    and averaged by DDP, therefore has 1/W of the gradient of the full loss: scale it by W."""
    if not ctx.enabled:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[ctx.rank] = x
    return torch.cat(parts)


def sync_step(l1: float, stop: bool, ctx: DistContext, device: torch.device) -> tuple[float, bool]:
    """Mean L1 over the processes and whether any of them wants to stop (Ctrl+C, Cancel, a
    diverged loss), in one small all-reduce, so every process leaves the loop at the same
    step and none waits forever on a collective the others have left."""
    if not ctx.enabled:
        return l1, stop
    t = torch.tensor([l1, 1.0 if stop else 0.0], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]) / ctx.world_size, bool(t[1] > 0)


__all__ = [
    "DistContext",
    "SINGLE",
    "barrier",
    "cleanup",
    "current_context",
    "device_for",
    "env_context",
    "gather_rows",
    "init_distributed",
    "is_distributed_env",
    "is_main_process",
    "shard_range",
    "sync_step",
]
