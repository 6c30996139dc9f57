"""The damage knobs, Qt-free: the range a model's knobs offer, the values the user set per
photo, and the part of the photo in view a preview covers (the preview job itself is
``cmdsr_app.jobs.preview_damage``).

A model file with a *condition map* (``engine.condition_map``) can be steered by numbers:
blur sigma, noise sigma and (for a map fitted with JPEG) the JPEG quality in, the condition
CMDSR would read for such damage out. The knobs start at the model's own estimate for the
photo; a photo whose knobs the user has not moved is upscaled from its support patches as
before, one whose knobs were moved with those numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine import CMDSR

# (blur sigma in HR pixels, noise sigma in grey levels) and, for a model whose knobs take it,
# the JPEG quality (100: no JPEG)
Damage = tuple[float, ...]
NO_JPEG = 100.0
Box = tuple[int, int, int, int]  # x, y, w, h in photo pixels

PREVIEW_SIDE = 160  # the preview covers at most this many photo pixels each way (x4: 640)
PREVIEW_MARGIN = 8  # photo pixels of context around it, so its edges are as in a full run

NO_MAP = "This model has no damage knobs: its file holds no condition map."


@dataclass(frozen=True)
class KnobRange:
    """What the model's condition map was fitted on; values outside are refused. ``jpeg``:
    the JPEG qualities its map takes (the top, 100, meaning none), None for a map without."""

    blur: tuple[float, float]
    noise: tuple[float, float]
    jpeg: tuple[float, float] | None = None

    def clamp(self, blur: float, noise: float, jpeg: float | None = None) -> Damage:
        """The values held inside this range: (blur, noise) for knobs without JPEG, (blur,
        noise, JPEG) for knobs with it (a missing JPEG quality is none, 100)."""
        kept = (min(max(blur, self.blur[0]), self.blur[1]),
                min(max(noise, self.noise[0]), self.noise[1]))
        if self.jpeg is None:
            return kept
        quality = NO_JPEG if jpeg is None else jpeg
        return (*kept, min(max(quality, self.jpeg[0]), self.jpeg[1]))

    def contains(self, *values: float) -> bool:
        return self.clamp(*values) == tuple(values)

    @property
    def start(self) -> Damage:
        """Where the knobs stand when the model reads no estimate: a mild blur, no noise, no
        JPEG."""
        return self.clamp(1.0, 0.0)


def knob_range_of(model: CMDSR) -> KnobRange | None:
    """The knobs a loaded model offers, or None when its file has no condition map."""
    from engine.condition_map import condition_map_of

    cmap = condition_map_of(model) if model.conditioned else None
    if cmap is None:
        return None
    return KnobRange(cmap.blur_range, cmap.noise_range, cmap.jpeg_range)


class KnobValues:
    """The knob values the user set, per photo. A photo without values is upscaled from its
    support patches (the model reads its damage), as before the knobs existed."""

    def __init__(self) -> None:
        self._values: dict[Path, Damage] = {}

    def get(self, path: Path | None) -> Damage | None:
        return None if path is None else self._values.get(Path(path))

    def set(self, path: Path, *values: float) -> None:
        """(blur, noise) or (blur, noise, JPEG quality) for this photo."""
        self._values[Path(path)] = tuple(float(v) for v in values)

    def set_all(self, paths: Iterable[Path], *values: float) -> None:
        for path in paths:
            self.set(path, *values)

    def items(self) -> list[tuple[Path, Damage]]:
        return list(self._values.items())

    def clear(self, path: Path) -> None:
        self._values.pop(Path(path), None)

    def clamp_all(self, knobs: KnobRange) -> None:
        """Another model's range: values beyond it are held at its ends, never refused later."""
        self._values = {path: knobs.clamp(*value) for path, value in self._values.items()}

    def for_paths(self, paths: Iterable[Path]) -> dict[Path, Damage]:
        """The set values of these photos (those without are left out)."""
        return {Path(p): self._values[Path(p)] for p in paths if Path(p) in self._values}


def visible_box(view: tuple[float, float, float, float], width: int, height: int,
                side: int = PREVIEW_SIDE) -> Box | None:
    """The part of a ``width`` x ``height`` photo to preview for a view rectangle (x0, y0, x1,
    y1 in photo pixels, possibly beyond the photo): the visible part, at most ``side`` pixels
    each way around the view's centre; None when nothing of the photo is in view."""
    x0, y0 = max(0.0, view[0]), max(0.0, view[1])
    x1, y1 = min(float(width), view[2]), min(float(height), view[3])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    w, h = min(side, int(np.ceil(x1 - x0))), min(side, int(np.ceil(y1 - y0)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = int(min(max(0, round(cx - w / 2)), width - w))
    y = int(min(max(0, round(cy - h / 2)), height - h))
    return x, y, w, h


__all__ = ["NO_MAP", "KnobRange", "KnobValues", "knob_range_of", "visible_box"]
