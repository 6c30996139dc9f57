"""Blind A/B sheets: which of two upscalers' results do people prefer, without knowing which is
which?

``make`` cuts crops from low-resolution photos and from two folders of their x4 results (one
per method, matched by file stem) and writes one PNG per crop: the input (nearest-neighbour
x4, so no method is favoured), then the two results in a random order labelled A and B. Which
method is A on each sheet goes to a key file that must live apart from the sheets (the judges
see only the sheets folder). ``tally`` reads the judges' answers (one line per sheet: ``A``,
``B`` or ``=``, in the sheets' name order, or ``NAME A`` lines) with the key and prints how
often each method was preferred.

    python benchmarks/ab_sheets.py make --inputs LR/ --results crisp=OUT1/ realesrgan=OUT2/ \\
        --sheets SHEETS/ --key KEY/key.json [--crops-per-photo 2] [--crop 64] [--seed 0]
    python benchmarks/ab_sheets.py tally --key KEY/key.json --answers judge1.txt judge2.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

SCALE = 4
GAP = 8  # px between panels
LABEL_H = 28  # px of the label strip above each panel
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
ANSWERS = ("A", "B", "=")


class SheetError(Exception):
    """A problem with the inputs, results, key or answers, in one line naming the file."""


@dataclass(frozen=True)
class Crop:
    """A crop in input pixels: left, top, side."""

    x: int
    y: int
    size: int


def _read_rgb(path: Path) -> np.ndarray:
    """uint8 RGB [H, W, 3] (8-bit view of any photo the engine reads)."""
    from engine import read_image
    from engine.errors import CmdsrError

    try:
        pixels = read_image(path).pixels
    except CmdsrError as exc:
        raise SheetError(str(exc)) from None
    return np.clip(np.rint(pixels[..., :3]), 0, 255).astype(np.uint8)


def _photos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SheetError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if not found:
        raise SheetError(f"{folder}: holds no photos ({', '.join(SUFFIXES)})")
    return found


def _result_of(folder: Path, stem: str) -> Path:
    """The result whose name starts with ``stem`` (``photo.png``, ``photo_x4.png``)."""
    matches = sorted(p for p in folder.iterdir()
                     if p.suffix.lower() in SUFFIXES and (p.stem == stem or p.stem.startswith(stem + "_")))
    if not matches:
        raise SheetError(f"{folder}: no result for {stem} (expected {stem}.png or {stem}_x4.png)")
    return matches[0]


def pick_crops(pixels: np.ndarray, count: int, size: int, rng: np.random.Generator) -> list[Crop]:
    """``count`` non-overlapping square crops of ``size`` input pixels, preferring textured
    places (where looks differ most), drawn at random among the more textured half of a grid.
    ``pixels``: uint8 RGB [H, W, 3]."""
    h, w = pixels.shape[:2]
    if h < size or w < size:
        raise SheetError(f"photo of {w}x{h} px is smaller than a {size} px crop")
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    step = max(size // 2, 1)
    cells = [(x, y, float(detail[y:y + size, x:x + size].mean()))
             for y in range(0, h - size + 1, step) for x in range(0, w - size + 1, step)]
    cells.sort(key=lambda c: -c[2])
    pool = cells[: max(count, (len(cells) + 1) // 2)]
    order = rng.permutation(len(pool))
    chosen: list[Crop] = []
    for i in order:
        x, y, _ = pool[int(i)]
        if all(abs(x - c.x) >= size or abs(y - c.y) >= size for c in chosen):
            chosen.append(Crop(x, y, size))
        if len(chosen) == count:
            break
    return chosen


def _panel(image: np.ndarray, label: str) -> np.ndarray:
    strip = np.full((LABEL_H, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, label, (6, LABEL_H - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2,
                cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def compose_sheet(inp: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """input (nearest x4) | A | B, side by side with labels above; all uint8 RGB, same size."""
    gap = np.full((inp.shape[0] + LABEL_H, GAP, 3), 255, np.uint8)
    return np.concatenate([_panel(inp, "input"), gap, _panel(a, "A"), gap, _panel(b, "B")], axis=1)


def make_sheets(inputs: Path, results: dict[str, Path], sheets: Path, key: Path,
                crops_per_photo: int = 2, crop: int = 64, seed: int = 0) -> int:
    """Write the sheets and the key; returns the number of sheets."""
    if len(results) != 2:
        raise SheetError(f"give exactly two methods' results, got {len(results)}")
    if key.resolve().parent == sheets.resolve() or key.resolve().is_relative_to(sheets.resolve()):
        raise SheetError(f"{key}: the key must live outside the sheets folder {sheets}, "
                         "where judges would see it")
    rng = np.random.default_rng(seed)
    sheets.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    names = list(results)
    entries: dict[str, dict[str, object]] = {}
    n = 0
    for photo in _photos(inputs):
        lr = _read_rgb(photo)
        outs = {}
        for name in names:
            path = _result_of(results[name], photo.stem)
            out = _read_rgb(path)
            want = (lr.shape[0] * SCALE, lr.shape[1] * SCALE)
            if out.shape[:2] != want:
                raise SheetError(f"{path}: is {out.shape[1]}x{out.shape[0]} px, expected the x4 "
                                 f"result of {photo.name} ({want[1]}x{want[0]} px)")
            outs[name] = out
        for c in pick_crops(lr, crops_per_photo, crop, rng):
            n += 1
            sheet_name = f"sheet_{n:03d}.png"
            inp = np.repeat(np.repeat(lr[c.y:c.y + c.size, c.x:c.x + c.size], SCALE, 0), SCALE, 1)
            hr = slice(c.y * SCALE, (c.y + c.size) * SCALE), slice(c.x * SCALE, (c.x + c.size) * SCALE)
            first, second = (names[0], names[1]) if rng.random() < 0.5 else (names[1], names[0])
            sheet = compose_sheet(inp, outs[first][hr], outs[second][hr])
            cv2.imwrite(str(sheets / sheet_name), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
            entries[sheet_name] = {"A": first, "B": second, "photo": photo.name,
                                   "crop": [c.x, c.y, c.size, c.size]}
    key.write_text(json.dumps({"methods": names, "scale": SCALE, "sheets": entries}, indent=1))
    log.info("%d sheets in %s, key in %s", n, sheets, key)
    return n


def read_answers(path: Path, sheet_names: list[str]) -> dict[str, str]:
    """One answer per sheet: lines ``A``/``B``/``=`` in the sheets' name order, or
    ``NAME ANSWER`` lines in any order (blank lines and ``#`` comments are skipped)."""
    try:
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    except OSError as exc:
        raise SheetError(f"{path}: cannot read the answers ({exc.strerror})") from None
    lines = [ln for ln in lines if ln]
    answers: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        parts = line.replace(",", " ").replace(":", " ").split()
        if len(parts) == 1:
            if number > len(sheet_names):
                raise SheetError(f"{path}: {len(lines)} answers for {len(sheet_names)} sheets")
            name, answer = sheet_names[number - 1], parts[0]
        elif len(parts) == 2:
            name, answer = parts
            if name not in sheet_names:
                raise SheetError(f"{path}, line {number}: no sheet named {name} in the key")
        else:
            raise SheetError(f"{path}, line {number}: expected A, B or = (or NAME ANSWER), got {line!r}")
        answer = answer.upper()
        if answer not in ANSWERS:
            raise SheetError(f"{path}, line {number}: answer must be A, B or =, got {answer!r}")
        if name in answers:
            raise SheetError(f"{path}, line {number}: a second answer for {name}")
        answers[name] = answer
    missing = [s for s in sheet_names if s not in answers]
    if missing:
        raise SheetError(f"{path}: no answer for {len(missing)} sheet(s), e.g. {missing[0]}")
    return answers


def tally(key: Path, answers: list[Path]) -> tuple[Counter[str], int]:
    """(times each method was preferred, judgements in all); a tie counts for neither."""
    try:
        data = json.loads(key.read_text())
        entries = data["sheets"]
        methods = list(data["methods"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SheetError(f"{key}: not a key written by ab_sheets.py make ({type(exc).__name__})") from None
    names = sorted(entries)
    wins: Counter[str] = Counter({m: 0 for m in methods})
    total = 0
    for path in answers:
        for name, answer in read_answers(path, names).items():
            total += 1
            if answer == "=":
                wins["="] += 1
            else:
                wins[str(entries[name][answer])] += 1
    return wins, total


def _cmd_make(args: argparse.Namespace) -> None:
    results: dict[str, Path] = {}
    for spec in args.results:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise SheetError(f"--results takes NAME=FOLDER, got {spec!r}")
        results[name] = Path(folder)
    n = make_sheets(args.inputs, results, args.sheets, args.key, args.crops_per_photo,
                    args.crop, args.seed)
    print(f"{n} sheets in {args.sheets}; key in {args.key} (keep it away from the judges)")


def _cmd_tally(args: argparse.Namespace) -> None:
    wins, total = tally(args.key, args.answers)
    print(f"{total} judgement(s) from {len(args.answers)} answer file(s)")
    for name, count in wins.most_common():
        label = "no preference (=)" if name == "=" else f"{name} preferred"
        print(f"  {label}: {count} ({100.0 * count / max(total, 1):.0f}%)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write the sheets and the key")
    make.add_argument("--inputs", type=Path, required=True, help="folder of low-resolution photos")
    make.add_argument("--results", nargs=2, required=True, metavar="NAME=FOLDER",
                      help="each method's folder of x4 results (photo.png or photo_x4.png)")
    make.add_argument("--sheets", type=Path, required=True, help="folder the judges get")
    make.add_argument("--key", type=Path, required=True, help="key file, outside --sheets")
    make.add_argument("--crops-per-photo", type=int, default=2)
    make.add_argument("--crop", type=int, default=64, help="crop side in input pixels")
    make.add_argument("--seed", type=int, default=0)
    tal = sub.add_parser("tally", help="count the answers with the key")
    tal.add_argument("--key", type=Path, required=True)
    tal.add_argument("--answers", type=Path, nargs="+", required=True,
                     help="one file per judge: a line per sheet, A, B or =")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        (_cmd_make if args.command == "make" else _cmd_tally)(args)
    except SheetError as exc:
        print(f"ab_sheets: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
