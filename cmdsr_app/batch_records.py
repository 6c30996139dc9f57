"""What each batch output was made with, so a later batch into the same folder skips only the
results of the same model and settings.

The records live in the app's config folder (``batch_outputs.json``), keyed by the output's
path, with the file's size and modification time: a file changed or replaced since (by
another program, or ``cmdsr upscale``) has no record, and is treated as one of unknown origin.
Qt-free.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cmdsr_app.jobs import BatchOutput, RunSettings, SupportChoice
from engine import atomic_write

log = logging.getLogger(__name__)

RECORDS_FILE = "batch_outputs.json"
MAX_RECORDS = 20_000  # the oldest are forgotten beyond this


def batch_recipe(settings: RunSettings, choice: SupportChoice, output: BatchOutput,
                 damage: tuple[float, float] | None = None) -> dict[str, Any]:
    """Everything that decides an output's pixels and file: the model file (path and time, so
    a checkpoint trained further under the same name counts as another model), support,
    adapt, the damage knobs' values (None: read from the photo), the look, size and format."""
    model = settings.model_path
    model_time = 0
    if model is not None:
        try:
            model_time = model.stat().st_mtime_ns
        except OSError:
            model_time = 0
    recipe: dict[str, Any] = {
        "model": str(model.resolve()) if model is not None else "",
        "model_time": model_time,
        "support": choice.mode,
        "regions": [list(r) for r in choice.regions],
        "seed": choice.seed,
        "adapt": settings.adapt,
        "damage": None if damage is None else [round(v, 3) for v in damage],
        "size": output.size.label(),
        "format": output.fmt,
        "quality": output.quality,
        "bit_depth": output.bit_depth or 0,
    }
    if settings.look > 0:  # absent at the faithful look, so records written before it still match
        recipe["look"] = round(settings.look, 3)
    return recipe


def difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs, in words: ``another model (old.pt)`` or ``other settings (size, seed)``."""
    if (old.get("model"), old.get("model_time")) != (new.get("model"), new.get("model_time")):
        name = Path(str(old.get("model", ""))).name or "unknown"
        return f"another model ({name})"
    keys = [k for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
    return f"other settings ({', '.join(keys)})"


class OutputRecords:
    """Recipes of the outputs the app's batches wrote."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / RECORDS_FILE
        self._records: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._records = {k: v for k, v in data.items() if isinstance(v, dict)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("batch records %s unreadable (%s); starting afresh", self.path, exc)

    @staticmethod
    def _stamp(target: Path) -> list[int] | None:
        try:
            st = target.stat()
        except OSError:
            return None
        return [st.st_size, st.st_mtime_ns]

    def recipe_of(self, target: Path) -> dict[str, Any] | None:
        """The recipe ``target`` was written with, or None (no record, or the file changed)."""
        record = self._records.get(str(Path(target).resolve()))
        if record is None or record.get("stamp") != self._stamp(target):
            return None
        recipe = record.get("recipe")
        return recipe if isinstance(recipe, dict) else None

    def remember(self, target: Path, recipe: dict[str, Any]) -> None:
        key = str(Path(target).resolve())
        self._records.pop(key, None)
        self._records[key] = {"stamp": self._stamp(target), "recipe": recipe}
        while len(self._records) > MAX_RECORDS:
            self._records.pop(next(iter(self._records)))

    def save(self) -> None:
        text = json.dumps(self._records)
        try:
            atomic_write(self.path, lambda fh: fh.write(text.encode("utf-8")), overwrite=True)
        except OSError as exc:
            log.warning("cannot save batch records %s (%s)", self.path, exc)
