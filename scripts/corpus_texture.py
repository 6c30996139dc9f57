"""How much texture a photo corpus holds: per source and split, the share of 48 px patches
whose mean luminance gradient magnitude exceeds a threshold.

    nice -n 15 .venv/bin/python scripts/corpus_texture.py /work/data/corpus [--markdown]

Each DIR is a folder of photos, or a corpus folder whose subfolders (train, val,
val_textured) hold them; the split is the name of the folder that holds a photo and the
source is the file name's prefix before the first "_" (the package's short name given by
scripts/make_photo_corpus.sh). Patches are cut on a grid (non-overlapping, from the top
left) from the photo as stored and from a copy at 0.5 scale (INTER_AREA, as the trainer's
downscaled copies): texture per pixel rises as a photo shrinks. Gradients are forward
differences of BT.601 luma in grey levels (0..255); a patch counts as textured when the mean
of sqrt(dx^2 + dy^2) over it exceeds --threshold. scikit-image's bundled photos, when
scikit-image is installed, are measured beside the corpus as a textured reference (never
used for training); otherwise the table says that no reference was measured.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from engine.data import read_rgb
from engine.errors import ImageReadError

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_PATCH = 48
DEFAULT_THRESHOLD = 8.0
SCALES = (1.0, 0.5)
# scikit-image's photographs (not its drawings, masks or microscopy), measured only as a
# reference for what a textured natural photo scores.
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel",
                  "moon", "rocket")


@dataclass
class SourceStats:
    """Patch counts of one (source, split) group, per scale."""

    photos: int = 0
    patches: dict[float, int] = field(default_factory=dict)
    textured: dict[float, int] = field(default_factory=dict)

    def add(self, scale: float, n_patches: int, n_textured: int) -> None:
        self.patches[scale] = self.patches.get(scale, 0) + n_patches
        self.textured[scale] = self.textured.get(scale, 0) + n_textured

    def share(self, scale: float) -> float:
        n = self.patches.get(scale, 0)
        return self.textured.get(scale, 0) / n if n else float("nan")


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma (HxW float32, 0..255, rounded to whole grey levels as an 8-bit gray
    conversion does) of an HxWx3 uint8 RGB image."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


def patch_gradients(img: np.ndarray, patch: int = DEFAULT_PATCH) -> np.ndarray:
    """Mean luminance gradient magnitude (grey levels per pixel) of every ``patch`` x
    ``patch`` cell of a non-overlapping grid over an HxWx3 uint8 image, as a 1-D array in
    row-major cell order (empty when the image is smaller than one patch). Forward
    differences; a cell's last row/column differs with the next pixel when there is one."""
    h, w = img.shape[:2]
    rows, cols = h // patch, w // patch
    if rows == 0 or cols == 0:
        return np.zeros(0, np.float32)
    y = luma(img[: rows * patch + 1, : cols * patch + 1])
    dx = np.diff(y, axis=1)[:-1, :] if y.shape[0] > 1 else np.diff(y, axis=1)
    dy = np.diff(y, axis=0)[:, :-1] if y.shape[1] > 1 else np.diff(y, axis=0)
    n_r, n_c = min(dx.shape[0], dy.shape[0]), min(dx.shape[1], dy.shape[1])
    mag = cv2.magnitude(np.ascontiguousarray(dx[:n_r, :n_c]), np.ascontiguousarray(dy[:n_r, :n_c]))
    # At the photo's bottom/right edge there is no next pixel: repeat the last gradients.
    mag = np.pad(mag, ((0, rows * patch - n_r), (0, cols * patch - n_c)), mode="edge")
    cells = mag[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch)
    return cells.mean(axis=(1, 3), dtype=np.float64).astype(np.float32).reshape(-1)


def rescaled(img: np.ndarray, scale: float) -> np.ndarray:
    """``img`` resized by ``scale`` with INTER_AREA (``img`` itself at scale 1)."""
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def photo_files(dirs: Sequence[Path]) -> list[tuple[str, Path]]:
    """(split, path) of every photo directly in each of ``dirs`` or in their immediate
    subfolders; the split is the name of the folder holding the photo."""
    found: list[tuple[str, Path]] = []
    for d in dirs:
        if not d.is_dir():
            raise SystemExit(f"corpus_texture: not a folder: {d}")
        for folder in [d, *sorted(p for p in d.iterdir() if p.is_dir())]:
            for p in sorted(folder.iterdir()):
                if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES:
                    found.append((folder.name, p))
    return found


def source_of(path: Path) -> str:
    """The package short name a corpus file name starts with ("plasma_Path.jpg" -> "plasma")."""
    stem = path.stem
    return stem.split("_", 1)[0] if "_" in stem else stem


def measure(images: Iterable[tuple[str, str, np.ndarray]], patch: int, threshold: float
            ) -> dict[tuple[str, str], SourceStats]:
    """Per (source, split): photos, patches and textured patches at each of ``SCALES``."""
    stats: dict[tuple[str, str], SourceStats] = {}
    for source, split, img in images:
        s = stats.setdefault((source, split), SourceStats())
        s.photos += 1
        for scale in SCALES:
            g = patch_gradients(rescaled(img, scale), patch)
            s.add(scale, int(g.size), int((g > threshold).sum()))
    return stats


def corpus_images(dirs: Sequence[Path]) -> Iterable[tuple[str, str, np.ndarray]]:
    for split, path in photo_files(dirs):
        try:
            img = read_rgb(path)
        except ImageReadError as exc:
            print(f"corpus_texture: skipped {exc}", file=sys.stderr)
            continue
        yield source_of(path), split, img


def skimage_images() -> list[tuple[str, str, np.ndarray]] | None:
    """scikit-image's bundled photos as (source, split, RGB uint8), or None when scikit-image
    is not installed."""
    try:
        from skimage import data  # type: ignore[import-not-found]
    except ImportError:
        return None
    out = []
    for name in SKIMAGE_PHOTOS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            img = np.asarray(loader())
        except Exception:  # noqa: BLE001 - a photo missing from this scikit-image version
            continue
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out.append(("skimage", "reference", np.ascontiguousarray(img[:, :, :3].astype(np.uint8))))
    return out


def table_rows(stats: dict[tuple[str, str], SourceStats]) -> list[list[str]]:
    rows = []
    for (source, split), s in sorted(stats.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append([source, split, str(s.photos),
                     *[f"{s.patches.get(sc, 0)}" for sc in SCALES],
                     *[f"{100 * s.share(sc):.0f}%" for sc in SCALES]])
    return rows


def format_table(rows: list[list[str]], markdown: bool) -> str:
    header = ["source", "split", "photos", "patches @1", "patches @0.5",
              "textured @1", "textured @0.5"]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", type=Path, nargs="+", metavar="DIR",
                        help="folder of photos, or corpus folder with train/val/... subfolders")
    parser.add_argument("--patch", type=int, default=DEFAULT_PATCH,
                        help=f"patch side in pixels (default {DEFAULT_PATCH})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="mean gradient magnitude (grey levels per pixel) above which a "
                             f"patch counts as textured (default {DEFAULT_THRESHOLD:g})")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not measure scikit-image's photos even if it is installed")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if args.patch < 2:
        parser.error("--patch must be at least 2")
    if not args.threshold >= 0:
        parser.error("--threshold must be >= 0")

    stats = measure(corpus_images(args.dirs), args.patch, args.threshold)
    if not stats:
        print("corpus_texture: no photos found", file=sys.stderr)
        return 1
    reference = None if args.no_reference else skimage_images()
    rows = table_rows(stats)
    if reference:
        rows += table_rows(measure(reference, args.patch, args.threshold))
    print(format_table(rows, args.markdown))
    note = ("reference: scikit-image's bundled photos (measurement only, never training)"
            if reference else "reference: none (scikit-image is not installed)")
    print(f"\n{args.patch} px patches on a grid; textured = mean luma gradient magnitude > "
          f"{args.threshold:g} grey levels/px; @0.5 = photo downscaled by 2 (INTER_AREA); {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
