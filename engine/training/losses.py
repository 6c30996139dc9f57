"""The losses of the SR stage: the task contrastive losses on condition vectors (the paper's
and the paired-task one) and the L1, optionally weighted per task by its bicubic L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def derangement(n: int, gen: torch.Generator) -> Tensor:
    """A uniformly random permutation of 0..n-1 with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError("a derangement needs at least 2 elements")
    idx = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=gen)
        if not bool((perm == idx).any()):
            return perm


def task_contrastive_loss(a: Tensor, b: Tensor, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Task contrastive loss of condition vectors ``a``, ``b`` [T, C] (two halves of the same
    T tasks): mean(softplus(d_in^2) + softplus(-d_x^2)) with ``d_in = |a_t - b_t|`` and
    ``d_x = |a_t - b_perm(t)|``. Returns (loss, mean d_in, mean d_x)."""
    return task_contrastive_loss_pairs(a, b, torch.arange(a.shape[0], device=a.device), perm)


def paired_contrastive_loss(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The task contrastive loss over paired tasks (groups of 4: photos A, B x degradations
    d, e, see ``engine.data.paired_assignment``): the positive of task t is the other photo
    with the same degradation (t ^ 1), its negatives the tasks with the other degradation
    (t ^ 2: the same photo, t ^ 3: the other one), each seen through the other half's support
    set. The condition is pulled towards the damage and away from the picture.

    Distances are measured after dividing all vectors by their spread (RMS distance from their
    mean): the paper's loss on raw vectors can be lowered by shrinking every condition towards
    zero whenever pictures still dominate (positives farther apart than negatives), a collapse
    in which the condition carries nothing; on standardised vectors only reorganising them
    helps. Returns (loss, mean d_pos, mean d_neg) in standardised units."""
    both = torch.cat([a, b])
    spread = (both - both.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt() + 1e-6
    a, b = a / spread, b / spread
    idx = torch.arange(a.shape[0], device=a.device)
    d_pos = (a - b[idx ^ 1]).norm(dim=1)
    d_neg = torch.stack([(a - b[idx ^ 2]).norm(dim=1), (a - b[idx ^ 3]).norm(dim=1)])
    loss = (F.softplus(d_pos.pow(2)) + F.softplus(-d_neg.pow(2)).mean(dim=0)).mean()
    return loss, d_pos.detach().mean(), d_neg.detach().mean()


def task_contrastive_loss_pairs(a: Tensor, b: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """mean(softplus(d_pos^2) + softplus(-d_neg^2)) with ``d_pos = |a_t - b_pos(t)|`` and
    ``d_neg = |a_t - b_neg(t)|``; returns (loss, mean d_pos, mean d_neg)."""
    d_in = (a - b[pos]).norm(dim=1)
    d_x = (a - b[neg]).norm(dim=1)
    loss = (F.softplus(d_in.pow(2)) + F.softplus(-d_x.pow(2))).mean()
    return loss, d_in.detach().mean(), d_x.detach().mean()


def sr_loss(sr: Tensor, hr: Tensor, lr: Tensor, tasks: int, weighting: str) -> Tensor:
    """The SR stage's loss: L1 between ``sr`` and ``hr`` [N, 3, H, W] (0..255), or with
    ``weighting = "bicubic"`` each task's L1 divided by the L1 of the bicubic upscale of its
    own ``lr`` [N, 3, h, w] (N = ``tasks`` consecutive groups), averaged over the tasks."""
    if weighting == "none":
        return F.l1_loss(sr.float(), hr)
    per_task = (sr.float() - hr).abs().reshape(tasks, -1).mean(dim=1)
    with torch.no_grad():
        bic = F.interpolate(lr.float(), size=hr.shape[-2:], mode="bicubic", align_corners=False)
        ref = (bic.clamp(0, 255) - hr).abs().reshape(tasks, -1).mean(dim=1).clamp_min(0.5)
    return (per_task / ref).mean()


def fft_amplitude_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """Mean absolute difference of the amplitude spectra of ``sr`` and ``hr`` [N, 3, H, W]
    (0..255, orthonormal 2-D FFT, so the units stay grey levels as in L1). An averaged, soft
    result lacks high-frequency energy wherever the texture's phase was uncertain; this term
    asks for the energy without asking for the exact phase."""
    a = torch.fft.rfft2(sr.float(), norm="ortho").abs()
    b = torch.fft.rfft2(hr.float(), norm="ortho").abs()
    return (a - b).abs().mean()
