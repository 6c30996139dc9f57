"""Qt-free state of the desktop app: support regions, the image queue, ETA and job status.

Widgets observe these objects through :class:`Observable` callbacks and call their methods to
change them; nothing here imports Qt, so the rules (what a valid region is, what a queue entry
goes through) are tested without a window.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cmdsr_app.eta import format_eta

# Reasons a region cannot provide patches, one per region (None: usable). The engine's
# ``validate_regions(regions, image_shape, size)`` has this signature.
RegionValidator = Callable[[Sequence["Region"], tuple[int, int], int], list[str | None]]


class Observable:
    """A list of callbacks: the Qt-free stand-in for a signal."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., None]] = []

    def connect(self, callback: Callable[..., None]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., None]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True)
class Region:
    """A rectangle in input-image pixels (x, y: top-left corner)."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def from_corners(cls, x0: float, y0: float, x1: float, y1: float) -> Region:
        """The rectangle spanned by two corners given in any order, snapped to whole pixels."""
        left, right = sorted((round(x0), round(x1)))
        top, bottom = sorted((round(y0), round(y1)))
        return cls(left, top, right - left, bottom - top)

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.right and self.y <= py <= self.bottom

    def moved(self, dx: int, dy: int) -> Region:
        return replace(self, x=self.x + dx, y=self.y + dy)

    def clamped(self, width: int, height: int) -> Region:
        """Shifted (not shrunk) to lie inside a width x height image when it fits."""
        x = min(max(self.x, 0), max(width - self.w, 0))
        y = min(max(self.y, 0), max(height - self.h, 0))
        return replace(self, x=x, y=y)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def __iter__(self):  # type: ignore[no-untyped-def]
        # x, y, w, h: lets the engine's region functions take a Region like a tuple.
        return iter(self.as_tuple())


def basic_region_problems(
    regions: Sequence[Region], image_shape: tuple[int, int], size: int
) -> list[str | None]:
    """What is wrong with each region for patches of ``size`` pixels in an image of
    ``image_shape`` (H, W); the GUI uses the engine's check when it is available."""
    height, width = image_shape[:2]
    problems: list[str | None] = []
    for r in regions:
        # Phrased like the engine's reasons, to read after "Region N ...".
        if r.w <= 0 or r.h <= 0:
            problems.append(f"has no area ({r.w}x{r.h})")
        elif r.x < 0 or r.y < 0 or r.right > width or r.bottom > height:
            problems.append(f"lies outside the {width}x{height} image")
        elif r.w < size or r.h < size:
            problems.append(f"is {r.w}x{r.h} pixels, smaller than a {size}x{size} patch")
        else:
            problems.append(None)
    return problems


class RegionList:
    """The support regions a user drew on one image, with a reason for each unusable one.

    ``changed`` fires after every edit; ``selection_changed`` when the selected row moves.
    """

    def __init__(
        self,
        regions: Iterable[Region] = (),
        *,
        image_shape: tuple[int, int] = (0, 0),
        patch_size: int = 32,
        validator: RegionValidator = basic_region_problems,
    ) -> None:
        self._regions: list[Region] = list(regions)
        self._image_shape = image_shape
        self._patch_size = patch_size
        self._validator = validator
        self._problems: list[str | None] = []
        self._selected: int | None = None
        self.changed = Observable()
        self.selection_changed = Observable()
        self._revalidate()

    # -- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._regions)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._regions)

    def __getitem__(self, index: int) -> Region:
        return self._regions[index]

    @property
    def regions(self) -> list[Region]:
        return list(self._regions)

    @property
    def problems(self) -> list[str | None]:
        return list(self._problems)

    def problem(self, index: int) -> str | None:
        return self._problems[index]

    def valid_regions(self) -> list[Region]:
        return [r for r, p in zip(self._regions, self._problems, strict=True) if p is None]

    @property
    def selected(self) -> int | None:
        return self._selected

    @property
    def image_shape(self) -> tuple[int, int]:
        return self._image_shape

    @property
    def patch_size(self) -> int:
        return self._patch_size

    def hit(self, px: float, py: float) -> int | None:
        """Index of the top-most region containing the image point, or None."""
        for index in range(len(self._regions) - 1, -1, -1):
            if self._regions[index].contains(px, py):
                return index
        return None

    # -- editing -------------------------------------------------------------------------
    def add(self, region: Region) -> int:
        self._regions.append(region)
        self._revalidate()
        self.changed.emit()
        self.select(len(self._regions) - 1)
        return len(self._regions) - 1

    def update(self, index: int, region: Region) -> None:
        if self._regions[index] == region:
            return
        self._regions[index] = region
        self._revalidate()
        self.changed.emit()

    def remove(self, index: int) -> None:
        del self._regions[index]
        self._revalidate()
        if self._selected is not None:
            if self._selected == index:
                self._selected = None
            elif self._selected > index:
                self._selected -= 1
        self.changed.emit()
        self.selection_changed.emit(self._selected)

    def set_regions(self, regions: Iterable[Region]) -> None:
        self._regions = list(regions)
        self._selected = None
        self._revalidate()
        self.changed.emit()
        self.selection_changed.emit(None)

    def clear(self) -> None:
        self.set_regions(())

    def select(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self._regions):
            index = None
        if index != self._selected:
            self._selected = index
            self.selection_changed.emit(index)

    def set_context(
        self, image_shape: tuple[int, int], patch_size: int | None = None
    ) -> None:
        """The image and patch size the regions are judged against."""
        self._image_shape = image_shape
        if patch_size is not None:
            self._patch_size = patch_size
        self._revalidate()
        self.changed.emit()

    def _revalidate(self) -> None:
        if not self._regions:
            self._problems = []
            return
        if self._image_shape[0] <= 0 or self._image_shape[1] <= 0:
            self._problems = ["no image loaded"] * len(self._regions)
            return
        try:
            problems = list(self._validator(self._regions, self._image_shape, self._patch_size))
        except Exception as exc:  # a validator bug must not lose the user's regions
            problems = [f"cannot check: {exc}"] * len(self._regions)
        if len(problems) != len(self._regions):
            problems = basic_region_problems(self._regions, self._image_shape, self._patch_size)
        self._problems = problems


class EntryStatus(enum.Enum):
    PENDING = "pending"
    LOADING = "loading"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class QueueEntry:
    """One image in the queue, with what the user did to it in this session."""

    path: Path
    status: EntryStatus = EntryStatus.PENDING
    message: str = ""
    regions: list[Region] = field(default_factory=list)
    # Patch boxes (x, y, w, h) of the last Auto/Random preview or of the last run.
    preview_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    preview_mode: str = ""
    output_path: Path | None = None
    load_error: str = ""  # why the file could not be opened ("" once it opened)

    @property
    def name(self) -> str:
        return self.path.name


class ImageQueue:
    """The images the user opened, in order, and which one is shown.

    ``added(first_index, count)``, ``status_changed(index)``, ``current_changed(index|None)``
    and ``removed(index)`` notify observers.
    """

    def __init__(self) -> None:
        self._entries: list[QueueEntry] = []
        self._current: int | None = None
        self.added = Observable()
        self.removed = Observable()
        self.status_changed = Observable()
        self.current_changed = Observable()

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> QueueEntry:
        return self._entries[index]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._entries)

    @property
    def entries(self) -> list[QueueEntry]:
        return list(self._entries)

    @property
    def current(self) -> int | None:
        return self._current

    @property
    def current_entry(self) -> QueueEntry | None:
        return None if self._current is None else self._entries[self._current]

    def index_of(self, path: Path) -> int | None:
        resolved = Path(path)
        for i, entry in enumerate(self._entries):
            if entry.path == resolved:
                return i
        return None

    def add_paths(self, paths: Iterable[str | Path]) -> list[int]:
        """Add new paths (already queued ones are skipped); returns the indices of the paths
        in the order given, new or old."""
        indices: list[int] = []
        first = len(self._entries)
        for p in paths:
            path = Path(p)
            existing = self.index_of(path)
            if existing is not None:
                indices.append(existing)
                continue
            self._entries.append(QueueEntry(path))
            indices.append(len(self._entries) - 1)
        if len(self._entries) > first:
            self.added.emit(first, len(self._entries) - first)
        return indices

    def remove(self, index: int) -> None:
        del self._entries[index]
        self.removed.emit(index)
        if self._current is not None:
            if self._current == index:
                self._current = None
                self.current_changed.emit(None)
            elif self._current > index:
                self._current -= 1

    def set_current(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self._entries):
            raise IndexError(f"no queue entry {index}")
        if index != self._current:
            self._current = index
            self.current_changed.emit(index)

    def set_status(self, index: int, status: EntryStatus, message: str = "") -> None:
        entry = self._entries[index]
        entry.status = status
        entry.message = message
        self.status_changed.emit(index)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def eta_text(remaining: float | None, elapsed: float) -> str:
    """``ETA 1 min 05 s``; while there is too little progress to say (a big photo's first
    tile), the time so far instead of a lingering "estimating"."""
    if remaining is None:
        return f"{format_duration(elapsed)} so far" if elapsed >= 2 else "ETA estimating…"
    return f"ETA {format_eta(remaining)}"  # rounded so that it does not flicker


def output_name(pattern: str, source: Path, *, scale: int, method: str, ext: str, index: int,
                size: str = "") -> str:
    """File name for a batch output from a user pattern like ``{stem}_{size}``.

    Fields: ``{stem}`` (input name without extension), ``{folder}`` (the name of the input's
    folder: tells apart two ``coffee.png`` from different folders), ``{size}`` (``x4``,
    ``x2``, ``w1920``, ``h1080``), ``{scale}`` (the number of ``x4``; the model's scale for a
    width or height), ``{method}``, ``{index}`` (1-based position in the queue). The extension
    is added from the chosen format.
    """
    try:
        stem = pattern.format(stem=source.stem, folder=source.parent.name or "root",
                              size=size or f"x{scale}", scale=scale, method=method, index=index)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"file-name pattern {pattern!r} is invalid ({exc}); use fields "
            "{stem}, {folder}, {size}, {scale}, {method}, {index}"
        ) from None
    stem = stem.strip()
    if not stem or "/" in stem or "\\" in stem or stem in (".", ".."):
        raise ValueError(f"file-name pattern {pattern!r} gives an unusable name {stem!r}")
    return f"{stem}.{ext.lstrip('.')}"


def short_names(paths: Sequence[Path]) -> list[str]:
    """Each path's file name, with as many parent folders as it takes to tell it apart from
    the others of the same name (``a/coffee.png``, ``b/coffee.png``)."""
    names: list[str] = []
    for path in paths:
        path = Path(path)
        others = [Path(p) for p in paths if Path(p) != path and Path(p).name == path.name]
        depth = 1
        while depth < len(path.parts) and any(o.parts[-depth:] == path.parts[-depth:]
                                              for o in others):
            depth += 1
        names.append("/".join(path.parts[-depth:]))
    return names


@dataclass(frozen=True)
class SizeChoice:
    """The output size the user picked: ``kind`` ``scale`` (``value`` 2, 3 or 4 times the
    input), ``width`` or ``height`` (``value`` pixels, the other side follows). The engine's
    counterpart is ``engine.io.imageio.OutputSize``; this one needs no engine."""

    kind: str = "scale"
    value: int = 4

    def __post_init__(self) -> None:
        if self.kind not in ("scale", "width", "height"):
            raise ValueError(f"output size kind must be scale, width or height, got {self.kind!r}")

    @classmethod
    def parse(cls, text: str, default_scale: int = 4) -> SizeChoice:
        """From the settings' form: ``x2``, ``w1920``, ``h1080`` ("" or junk: x<default>)."""
        kinds = {"x": "scale", "w": "width", "h": "height"}
        if len(text) > 1 and text[0] in kinds and text[1:].isdigit() and int(text[1:]) > 0:
            return cls(kinds[text[0]], int(text[1:]))
        return cls("scale", default_scale)

    def label(self) -> str:
        """``x4``, ``w1920``, ``h1080``: the settings' form and the ``{size}`` file-name field."""
        return {"scale": "x", "width": "w", "height": "h"}[self.kind] + str(self.value)

    def describe(self) -> str:
        if self.kind == "scale":
            return f"×{self.value}"
        return f"{self.value} px {'wide' if self.kind == 'width' else 'high'}"

    def is_model_scale(self, model_scale: int) -> bool:
        return self.kind == "scale" and self.value == model_scale

    def name_scale(self, model_scale: int) -> int:
        """The number the ``{scale}`` file-name field gives."""
        return self.value if self.kind == "scale" else model_scale
