"""The user's settings (last choices, recent files, window geometry), kept as JSON in the user
config folder that appdirs names for this platform.

``CMDSR_STUDIO_CONFIG_DIR`` points the app (and the tests) at another folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import atomic_write

log = logging.getLogger(__name__)

APP_NAME = "CMDSR Studio"
APP_AUTHOR = "CMDSR"
CONFIG_ENV = "CMDSR_STUDIO_CONFIG_DIR"
SETTINGS_FILE = "settings.json"
MAX_RECENT = 10
MAX_REMEMBERED_REGIONS = 200
MAX_REMEMBERED_KNOBS = 200
MIN_TILE = 32  # the engine's smallest fixed tile
MAX_THREADS = 256

OUTPUT_FORMATS = ("png", "jpg", "webp", "tif")
SUPPORT_MODES = ("random", "auto", "regions")
# One condition for the whole photo, or one per part of it (engine.inference.local_adapt).
ADAPT_MODES = ("global", "local")


def config_dir() -> Path:
    """Where settings live: $CMDSR_STUDIO_CONFIG_DIR, else the platform's user config folder."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    import appdirs

    return Path(appdirs.user_config_dir(APP_NAME, APP_AUTHOR))


@dataclass
class AppSettings:
    """Everything the app remembers between runs. Unknown keys in the file are ignored and bad
    values fall back to the defaults, so an old or hand-edited file never stops the app."""

    model_path: str = ""  # "" = the shipped default model
    recent_models: list[str] = field(default_factory=list)
    scale: int = 0  # the last checked model's scale, shown while the model loads (0: x4)
    output_size: str = ""  # x2, x3, x4, w<PX>, h<PX>; "": the model's own scale
    device: str = "auto"
    tile: int = 0  # 0 = automatic
    threads: int = 0  # CPU threads for upscaling; 0 = automatic (one per core)
    output_format: str = "png"
    quality: int = 95
    bit_depth: int = 0  # 0 = as the input
    support_mode: str = "auto"
    alt_support_mode: str = "random"
    compare_left: str = "bicubic"  # Compare's sides
    compare_right: str = "cmdsr"
    adapt: str = "global"  # "local": per region (cmdsr upscale --adapt local)
    seed: int = 0
    batch_output_dir: str = ""
    batch_pattern: str = "{stem}_{size}"
    recent_files: list[str] = field(default_factory=list)
    last_dir: str = ""  # where the last photo was opened from
    last_save_dir: str = ""  # where the last result or comparison was saved
    window_geometry: str = ""  # hex of QWidget.saveGeometry()
    window_state: str = ""  # hex of QMainWindow.saveState()
    # Support regions per image path, so reopening a photo brings its regions back.
    regions: dict[str, list[list[int]]] = field(default_factory=dict)
    # Damage knob values the user set, per image path: {"model": the model file they were set
    # under, "values": [blur, noise] or [blur, noise, jpeg]} (cmdsr_app.controllers.knobs).
    knobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The Training tab's own settings (it keeps them up to date in place).
    training: dict[str, Any] = field(default_factory=dict)

    def add_recent_file(self, path: str | Path) -> None:
        text = str(path)
        self.recent_files = [text, *(p for p in self.recent_files if p != text)][:MAX_RECENT]

    def add_recent_model(self, path: str | Path) -> None:
        text = str(path)
        self.recent_models = [text, *(p for p in self.recent_models if p != text)][:MAX_RECENT]

    def remember_regions(self, path: str | Path, regions: list[tuple[int, int, int, int]]) -> None:
        key = str(path)
        self.regions.pop(key, None)
        if regions:
            self.regions[key] = [list(r) for r in regions]
        while len(self.regions) > MAX_REMEMBERED_REGIONS:
            self.regions.pop(next(iter(self.regions)))

    def regions_for(self, path: str | Path) -> list[tuple[int, int, int, int]]:
        out = []
        for r in self.regions.get(str(path), []):
            if isinstance(r, list) and len(r) == 4 and all(isinstance(v, int) for v in r):
                out.append((r[0], r[1], r[2], r[3]))
        return out

    def remember_knobs(self, path: str | Path, model: str | Path,
                       values: tuple[float, ...] | None) -> None:
        """The knob values set for a photo under a model (None: forget them)."""
        key = str(path)
        self.knobs.pop(key, None)
        if values is not None:
            self.knobs[key] = {"model": str(model), "values": [round(float(v), 3) for v in values]}
        while len(self.knobs) > MAX_REMEMBERED_KNOBS:
            self.knobs.pop(next(iter(self.knobs)))

    def knobs_for(self, path: str | Path, model: str | Path) -> tuple[float, ...] | None:
        """The knob values kept for a photo if they were set under this model, else None (a
        hand-edited or damaged entry counts as none)."""
        entry = self.knobs.get(str(path))
        if not isinstance(entry, dict) or entry.get("model") != str(model):
            return None
        values = entry.get("values")
        if (not isinstance(values, list) or len(values) not in (2, 3)
                or not all(isinstance(v, int | float) and not isinstance(v, bool)
                           and abs(v) < 1e6 for v in values)):
            return None
        return tuple(float(v) for v in values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        defaults = cls()
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(defaults, f.name)
            if isinstance(default, bool) or type(value) is not type(default):
                log.warning("settings: ignoring %s=%r (expected %s)", f.name, value, type(default).__name__)
                continue
            values[f.name] = value
        settings = cls(**values)
        if settings.output_format not in OUTPUT_FORMATS:
            settings.output_format = defaults.output_format
        if settings.support_mode not in SUPPORT_MODES:
            settings.support_mode = defaults.support_mode
        if settings.alt_support_mode not in SUPPORT_MODES:
            settings.alt_support_mode = defaults.alt_support_mode
        if settings.adapt not in ADAPT_MODES:
            settings.adapt = defaults.adapt
        settings.quality = min(100, max(1, settings.quality))
        settings.threads = min(max(settings.threads, 0), MAX_THREADS)
        if settings.tile < MIN_TILE:  # 0 = automatic; tiny tiles are refused by the engine
            settings.tile = 0
        settings.recent_files = [p for p in settings.recent_files if isinstance(p, str)][:MAX_RECENT]
        settings.recent_models = [p for p in settings.recent_models if isinstance(p, str)][:MAX_RECENT]
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class SettingsStore:
    """Loads and saves :class:`AppSettings` in ``folder/settings.json`` (atomic writes)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else config_dir()

    @property
    def path(self) -> Path:
        return self.folder / SETTINGS_FILE

    def load(self) -> AppSettings:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return AppSettings()
        except OSError as exc:
            log.warning("cannot read settings %s (%s); using defaults", self.path, exc)
            return AppSettings()
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            log.warning("settings file %s is damaged (%s); using defaults", self.path, exc)
            return AppSettings()
        return AppSettings.from_dict(data)

    def save(self, settings: AppSettings) -> None:
        try:
            text = json.dumps(settings.to_dict(), indent=1)
            atomic_write(self.path, lambda fh: fh.write(text.encode("utf-8")), overwrite=True)
        except OSError as exc:
            # Losing remembered choices is an annoyance, not a reason to stop the user.
            log.warning("cannot save settings to %s: %s", self.path, exc)
