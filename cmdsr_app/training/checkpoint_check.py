"""Before a trained checkpoint replaces the model that upscales: is it early, and does it score
below the shipped model on its run's own validation photos? Qt-free; runs in a worker thread.

A 15-step checkpoint turns photos into colour noise, and one that trails the shipped model
makes every result worse: the user is told so, in numbers, before it is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Below this many steps a checkpoint is called early (the shipped model trained thousands).
EARLY_STEPS = 1_000
# A checkpoint this much below the shipped model on the same photos counts as worse (dB).
PSNR_MARGIN = 0.05


@dataclass(frozen=True)
class CheckpointVerdict:
    path: Path
    step: int | None = None
    psnr: float | None = None  # PSNR-Y on the run's validation photos
    shipped_psnr: float | None = None  # the shipped model on the same photos
    # What became of the damage knobs of the model the run started from: one sentence, ""
    # for a file that records nothing about them (not a fine-tune of a model with knobs).
    knobs: str = ""
    knobs_lost: bool = False  # its parent had knobs and this checkpoint has none

    def warnings(self) -> list[str]:
        out = []
        if self.step is not None and self.step < EARLY_STEPS:
            out.append(f"It has trained only {self.step:,} steps: an early checkpoint usually "
                       "upscales far worse than the shipped model (it may give colour noise).")
        if (self.psnr is not None and self.shipped_psnr is not None
                and self.psnr < self.shipped_psnr - PSNR_MARGIN):
            out.append(f"On the run's validation photos it scores {self.psnr:.2f} dB, below the "
                       f"shipped model's {self.shipped_psnr:.2f} dB.")
        return out


def knobs_note(meta: dict[str, Any], shipped: Path | None) -> tuple[str, bool]:
    """What a fine-tuned checkpoint's record of its parent's parts (``carried_parts``, written
    by the engine) means for the user: (sentence, knobs lost)."""
    from engine.training.run_folder import CARRIED_KEY

    record = meta.get(CARRIED_KEY)
    if not isinstance(record, dict):
        return "", False
    source = Path(str(record.get("from", "")))
    same = shipped is not None and (source == shipped or (
        source.exists() and shipped.exists() and source.samefile(shipped)))
    parent = "the shipped model" if same else source.name or "the model it started from"
    carried, dropped = record.get("carried") or [], record.get("dropped") or []
    if "condition_map" in carried:
        return (f"Damage knobs: kept from {parent}. Its ConditionNet was held fixed during "
                "training, so the knobs set the damage exactly as they do there.", False)
    if "condition_map" in dropped:
        # without knobs the model still reads each photo's damage from the photo; only the
        # readout's numbers go too when the run did not train its own
        reading = (" It still reads each photo's damage from the photo itself." if
                   "damage_head" not in dropped else
                   " It still reads each photo's damage from the photo itself, but shows no "
                   "numbers for it (the damage readout fitted the old ConditionNet too).")
        return (f"No damage knobs: its ConditionNet learned during training, so the knobs of "
                f"{parent} no longer fit it (they would set the wrong damage) and were left "
                f"out. scripts/train_condition_map.py fits new ones.{reading}", True)
    return "", False


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder of a checkpoint (``run/checkpoints/step_000500.pt`` or ``run/final.pt``)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def judge_checkpoint(path: str | Path, shipped: Path | None, cache: Any) -> CheckpointVerdict:
    """Its step (from the file), and, when its run has validation photos and the shipped model
    has the same scale, both models' PSNR-Y on those photos degraded as the run validates."""
    from engine import read_checkpoint

    path = Path(path)
    _, _, meta = read_checkpoint(path)
    step = meta.get("step") if isinstance(meta, dict) else None
    # 0 is what a file saved outside a training run records (an export, a converted file):
    # not known to be early
    step = int(step) if isinstance(step, int) and not isinstance(step, bool) and step > 0 else None
    knobs, lost = knobs_note(meta if isinstance(meta, dict) else {}, shipped)
    if shipped is None or not shipped.exists() or shipped.resolve() == path.resolve():
        return CheckpointVerdict(path, step, knobs=knobs, knobs_lost=lost)
    try:
        psnr, shipped_psnr = _validation_scores(path, shipped, cache)
    except Exception as exc:  # the warning is advice: a run folder it cannot read gives none
        log.info("no validation comparison for %s: %s", path, exc)
        psnr = shipped_psnr = None
    return CheckpointVerdict(path, step, psnr, shipped_psnr, knobs, lost)


def _validation_scores(path: Path, shipped: Path, cache: Any) -> tuple[float | None, float | None]:
    import torch

    from engine.data import load_validation
    from engine.training.run_folder import load_run_config, load_run_info
    from engine.training.validation import validate

    run_dir = run_dir_of(path)
    if not (run_dir / "config.toml").is_file():
        return None, None
    cfg, info = load_run_config(run_dir), load_run_info(run_dir)
    val_dir = info.get("val_dir")
    if not isinstance(val_dir, str) or not Path(val_dir).is_dir():
        return None, None
    mine, theirs = cache.get(path, "cpu"), cache.get(shipped, "cpu")
    if (mine.scale, mine.support_size) != (theirs.scale, theirs.support_size):
        return None, None
    items = load_validation(val_dir, cfg.val_degradation, mine.scale, mine.support_size,
                            cfg.val_support_patch, cfg.val_crop, cfg.val_images, cfg.seed)
    if not items:
        return None, None
    cpu = torch.device("cpu")
    return float(validate(mine, items, cpu)[0]), float(validate(theirs, items, cpu)[0])
