"""A run folder: every file a training run writes and what reads them back.

``config.toml`` (the resolved config), ``run.json`` (data folders), ``metrics.jsonl``,
``plot.png``, ``checkpoints/step_NNNNNNN.pt`` and ``latest.pt`` (the newest checkpoint; it
loads with ``engine.load_model`` and also carries the optimiser/scheduler/RNG state that makes
a resumed run continue exactly as an uninterrupted one would on the CPU).

A run that starts from another model file (``init_from``, e.g. a fine-tune of the shipped
model) carries that model's extra parts (the condition map behind the damage knobs, the
damage head) into each checkpoint for as long as its ConditionNet is bit-identical to the
parent's: both read or make the ConditionNet's conditions, so they fit exactly then and not
after it learns. Each such checkpoint records what it carried or left out (``CARRIED_KEY``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from engine.checkpoint import atomic_torch_save, read_checkpoint, stored_parts
from engine.config import dumps_toml, from_dict, load_toml
from engine.damage_head import HEAD_KEY, damage_head_of
from engine.errors import CheckpointError, ConfigError
from engine.io.fileio import atomic_write
from engine.model import CMDSR
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head

log = logging.getLogger(__name__)

# A checkpoint's record of the parent's parts: {"from": path, "condition_net": "unchanged" or
# "changed", "carried": [part keys], "dropped": [part keys]}.
CARRIED_KEY = "carried_parts"
_CONDITION_NET = "condition_net."


def condition_net_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The ConditionNet's tensors (parameters and standardisation buffers) of a state dict."""
    return {k: v for k, v in state.items() if k.startswith(_CONDITION_NET)}


class ParentParts:
    """The extra parts of the model a run starts from and the ConditionNet they belong to.

    ``carry(checkpoint)`` adds the parts a checkpoint lacks while its ConditionNet equals
    ``condition_net`` exactly, leaves them out once it differs, and records which.
    """

    def __init__(self, source: str, condition_net: dict[str, Tensor], parts: dict[str, Any]) -> None:
        self.source = source
        self.condition_net = {k: v.detach().float().cpu() for k, v in condition_net.items()}
        self.parts = parts
        self._said: str | None = None  # the last state logged, so the log says each change once

    @classmethod
    def of_parent(cls, path: str | Path) -> ParentParts | None:
        """The parts of the model file ``path`` (None when it has none to carry)."""
        parts = stored_parts(path)
        if not parts:
            return None
        _, state, _ = read_checkpoint(path)
        return cls(str(path), condition_net_state(state), parts)

    @classmethod
    def of_run_checkpoint(cls, path: str | Path) -> ParentParts | None:
        """The parent's parts as a run's own checkpoint carries them (for a resumed run whose
        parent file has moved): only when that checkpoint's ConditionNet was the parent's."""
        _, state, meta = read_checkpoint(path)
        record = meta.get(CARRIED_KEY)
        if not isinstance(record, dict) or record.get("condition_net") != "unchanged":
            return None
        parts = {k: v for k, v in stored_parts(path).items() if k in record.get("carried", [])}
        if not parts:
            return None
        return cls(str(record.get("from", path)), condition_net_state(state), parts)

    def unchanged(self, params: dict[str, Tensor]) -> bool:
        mine = condition_net_state(params)
        return bool(mine) and mine.keys() == self.condition_net.keys() and all(
            torch.equal(v.detach().float().cpu(), self.condition_net[k]) for k, v in mine.items())

    def carry(self, checkpoint: dict[str, Any]) -> None:
        """Add the parent's parts to ``checkpoint`` (a ``checkpoint_dict``) if they still fit;
        a part the run trained itself (a damage head learning along) is kept as it is."""
        unchanged = self.unchanged(checkpoint.get("params", {}))
        missing = [key for key in self.parts if key not in checkpoint]
        if unchanged:
            checkpoint.update({key: self.parts[key] for key in missing})
        checkpoint[CARRIED_KEY] = {
            "from": self.source,
            "condition_net": "unchanged" if unchanged else "changed",
            "carried": missing if unchanged else [],
            "dropped": [] if unchanged else missing,
        }
        state = "unchanged" if unchanged else "changed"
        if state != self._said and missing:
            self._said = state
            names = " and ".join(k.replace("_", " ") for k in missing)
            if unchanged:
                log.info("carrying the %s of %s into this run's checkpoints (the ConditionNet "
                         "is unchanged)", names, self.source)
            else:
                log.info("the ConditionNet has learned since %s: leaving its %s out of this "
                         "run's checkpoints: fitted to the old one, they no longer fit (scripts/"
                         "train_condition_map.py fits a new condition map)", self.source, names)


class RunWriter:
    """Every file a run writes goes through here (only one process writes in a
    multi-process run: the others get ``enabled=False``).

    ``write_config`` also reads the run's parent model (``cfg.init_from``): its extra parts
    go into the checkpoints while they fit (:class:`ParentParts`).
    """

    CONFIG = "config.toml"
    RUN_INFO = "run.json"
    METRICS = "metrics.jsonl"
    PLOT = "plot.png"
    LATEST = "latest.pt"
    CHECKPOINTS = "checkpoints"

    def __init__(self, run_dir: str | Path, enabled: bool = True, keep: int = 3) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.keep = keep
        self.parent: ParentParts | None = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def latest_path(self) -> Path:
        return self.run_dir / self.LATEST

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / self.METRICS

    def write_config(self, cfg: TrainConfig, info: dict[str, Any], note: str = "") -> None:
        if not self.enabled:
            return
        header = "# Resolved training config of this run (cmdsr train --resume reads it).\n"
        if note:
            header += f"# {note}\n"
        _atomic_text(self.run_dir / self.CONFIG, header + dumps_toml(cfg))
        _atomic_text(self.run_dir / self.RUN_INFO, json.dumps(info, indent=2) + "\n")
        self.parent = self._read_parent(cfg.init_from) if cfg.init_from else None

    def _read_parent(self, init_from: str) -> ParentParts | None:
        """The parent's parts: for a resumed run, as its newest checkpoint carries them (the
        parent file may have been replaced since, by a newer shipped model), else from the
        parent file. Unreadable: nothing is carried, and the log says why."""
        try:
            if self.latest_path.exists():
                carried = ParentParts.of_run_checkpoint(self.latest_path)
                if carried is not None:
                    return carried
            return ParentParts.of_parent(init_from)
        except CheckpointError as exc:
            log.warning("this run's checkpoints carry no condition map or damage head from "
                        "its parent model: %s", exc)
            return None

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def truncate_metrics(self, after_step: int) -> None:
        """Drop log lines past the resumed step (written after the last checkpoint)."""
        if not self.enabled or not self.metrics_path.exists():
            return
        keep = [r for r in read_metrics(self.metrics_path) if r.get("step", 0) <= after_step]
        _atomic_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    def save_checkpoint(self, obj: dict[str, Any], step: int) -> Path:
        path = self.run_dir / self.CHECKPOINTS / f"step_{step:07d}.pt"
        if not self.enabled:
            return path
        if self.parent is not None:
            self.parent.carry(obj)
        atomic_torch_save(obj, path)
        _atomic_link(path, self.latest_path)
        old = sorted((self.run_dir / self.CHECKPOINTS).glob("step_*.pt"))[: -self.keep]
        for p in old:
            p.unlink(missing_ok=True)
        return path

    def write_plot(self) -> None:
        if not self.enabled or not self.metrics_path.exists():
            return
        try:
            draw_plot(read_metrics(self.metrics_path), self.run_dir / self.PLOT)
        except Exception as exc:  # a plot must never stop a training run
            log.warning("could not draw %s: %s", self.PLOT, exc)


def _atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), overwrite=True)


def _atomic_link(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link; a copy where links are refused)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line is ignored)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def draw_plot(records: list[dict[str, Any]], path: Path, width: int = 900, height: int = 560) -> None:
    """Training L1 (log scale) and validation PSNR-Y against step, drawn with Pillow."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    train = [(r["step"], r["l1"]) for r in records if r.get("kind") == "train" and r.get("l1", 0) > 0]
    val = [(r["step"], r["val_psnr"]) for r in records if r.get("kind") == "val"]
    bic = [r["bicubic_psnr"] for r in records if r.get("kind") == "val" and "bicubic_psnr" in r]
    max_step = max([s for s, _ in train + val] + [1])
    panels = [
        ("training L1 (log)", [(s, math.log10(v)) for s, v in train], None, (30, 90, 200)),
        ("validation PSNR-Y (dB)", val, bic[-1] if bic else None, (200, 60, 30)),
    ]
    ph = (height - 20) // 2
    for i, (title, pts, ref, color) in enumerate(panels):
        top = 10 + i * ph
        x0, y0, x1, y1 = 70, top + 22, width - 20, top + ph - 28
        d.rectangle([x0, y0, x1, y1], outline=(150, 150, 150))
        d.text((x0, top + 4), title, fill=(0, 0, 0))
        if not pts:
            d.text((x0 + 10, y0 + 10), "no data yet", fill=(120, 120, 120))
            continue
        vals = [v for _, v in pts] + ([ref] if ref is not None else [])
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5

        def xy(s: float, v: float, lo: float = lo, hi: float = hi,
               x0: int = x0, x1: int = x1, y0: int = y0, y1: int = y1) -> tuple[float, float]:
            return x0 + (x1 - x0) * s / max_step, y1 - (y1 - y0) * (v - lo) / (hi - lo)

        for frac in (0.0, 0.5, 1.0):
            v = lo + (hi - lo) * frac
            label = f"{10 ** v:.3g}" if i == 0 else f"{v:.2f}"
            d.text((4, xy(0, v)[1] - 6), label, fill=(80, 80, 80))
        d.text((x1 - 80, y1 + 6), f"step {max_step}", fill=(80, 80, 80))
        if ref is not None:
            yy = xy(0, ref)[1]
            d.line([x0, yy, x1, yy], fill=(160, 160, 160), width=1)
            d.text((x0 + 4, yy - 12), f"bicubic {ref:.2f}", fill=(120, 120, 120))
        line = [xy(s, v) for s, v in pts]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        for p in line[-1:] if len(line) > 1 else line:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=color)
    atomic_write(path, lambda fh: img.save(fh, format="PNG"), overwrite=True)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    path = Path(run_dir) / RunWriter.CONFIG
    if not path.exists():
        raise ConfigError(f"{run_dir}: not a training run folder (no {RunWriter.CONFIG})")
    return from_dict(TrainConfig, load_toml(path))


def load_run_info(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RunWriter.RUN_INFO
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable run information ({exc})") from None
    return info if isinstance(info, dict) else {}


def load_training_state(model: CMDSR, path: Path, state: dict[str, Tensor]) -> None:
    """Load a run checkpoint's parameters (``state`` as read from ``path``) into ``model``,
    with the damage readout the run trains, if any (stored apart in the file)."""
    head = damage_head_of(model)
    if head is not None:
        saved_head = read_damage_head(path)
        if saved_head is None:
            raise CheckpointError(f"{path}: the run trains a damage readout but the checkpoint has none")
        state = {**state, **{f"{HEAD_KEY}.{k}": v for k, v in saved_head.state_dict().items()}}
    model.load_state_dict(state, strict=True)
