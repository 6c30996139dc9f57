"""Mutation fuzzer for the photo read path the CLI and the GUI share (``engine.read_image``).

Seeded and reproducible: small PNG/JPEG/WebP/TIFF/BMP seed files are made in memory, then each
case flips bytes or bits, truncates, splices, zeroes a range or plants extreme integers (where
the width and height live), optionally repairing PNG chunk CRCs so the decoders get past the
checksum. Every case must end in a decoded image or ``ImageReadError``; anything else is a
finding. Before a case is decoded its bytes are written to ``WORKDIR/current.<ext>`` and its
description to ``WORKDIR/current.json``, so a native crash or a hang leaves the reproducing file
behind for the parent (tests/reliability/test_hostile_images.py) to report.

    python scripts/fuzz_images.py --cases 3000 --seed 0 --workdir /tmp/fuzz [--thumbnails]
    python scripts/fuzz_images.py --replay /tmp/fuzz/current.png   # decode one saved case

Writes ``WORKDIR/summary.json`` at the end: counts per seed format and outcome, the slowest
cases and every finding (with the case file saved under ``WORKDIR/findings/``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXTREMES = (0, 1, 0xFFFF, 0x7FFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# --------------------------------------------------------------------------- seeds


def _photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx * 9, yy * 11, (xx + yy) * 5], -1) + rng.normal(0, 20, (height, width, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def make_seeds(seed: int = 0) -> dict[str, tuple[str, bytes]]:
    """name -> (suffix, file bytes): the decoders and variants a user's disk holds."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    rgb = _photo(rng, 20, 24)
    pil = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exercises the orientation path
    exif[0x010F] = "fuzz camera"
    seeds: dict[str, tuple[str, bytes]] = {}

    def pil_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    seeds["png_rgb"] = (".png", pil_bytes(pil, "PNG"))
    seeds["png_rgba"] = (".png", pil_bytes(pil.convert("RGBA"), "PNG"))
    seeds["png_palette"] = (".png", pil_bytes(pil.convert("P"), "PNG", transparency=0))
    seeds["png_gray"] = (".png", pil_bytes(pil.convert("L"), "PNG"))
    seeds["png_exif"] = (".png", pil_bytes(pil, "PNG", exif=exif.tobytes()))
    ok, png16 = cv2.imencode(".png", (rgb.astype(np.uint16) * 257)[..., ::-1])
    assert ok
    seeds["png_16bit"] = (".png", png16.tobytes())
    seeds["jpeg"] = (".jpg", pil_bytes(pil, "JPEG", quality=85))
    seeds["jpeg_progressive"] = (".jpg", pil_bytes(pil, "JPEG", quality=70, progressive=True,
                                                   exif=exif.tobytes()))
    seeds["jpeg_gray"] = (".jpg", pil_bytes(pil.convert("L"), "JPEG"))
    seeds["webp_lossy"] = (".webp", pil_bytes(pil, "WEBP", quality=80))
    seeds["webp_lossless"] = (".webp", pil_bytes(pil.convert("RGBA"), "WEBP", lossless=True))
    seeds["tiff_raw"] = (".tif", pil_bytes(pil, "TIFF"))
    seeds["tiff_deflate"] = (".tif", pil_bytes(pil, "TIFF", compression="tiff_deflate",
                                               exif=exif.tobytes()))
    seeds["tiff_lzw"] = (".tif", pil_bytes(pil.convert("RGBA"), "TIFF", compression="tiff_lzw"))
    seeds["tiff_packbits"] = (".tif", pil_bytes(pil.convert("L"), "TIFF", compression="packbits"))
    ok, tif16 = cv2.imencode(".tif", (rgb.astype(np.uint16) * 257)[..., ::-1])
    assert ok
    seeds["tiff_16bit"] = (".tif", tif16.tobytes())
    seeds["bmp"] = (".bmp", pil_bytes(pil, "BMP"))
    return seeds


# --------------------------------------------------------------------------- mutations


def _fix_png_crcs(data: bytearray) -> bytearray:
    """Recompute each chunk's CRC so a mutated chunk reaches the decoder instead of the
    checksum test (stops at the first chunk whose length runs past the end)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        end = pos + 8 + length
        if end + 4 > len(data):
            break
        crc = zlib.crc32(bytes(data[pos + 4:end])) & 0xFFFFFFFF
        data[end:end + 4] = struct.pack(">I", crc)
        pos = end + 4
    return data


def mutate(data: bytes, rng: np.random.Generator, donors: list[bytes]) -> tuple[bytes, str]:
    """One to three random mutations of ``data``; returns (bytes, description)."""
    out = bytearray(data)
    steps: list[str] = []
    for _ in range(int(rng.integers(1, 4))):
        n = len(out)
        if n < 2:
            break
        kind = int(rng.integers(0, 8))
        # Half of the position draws fall into the first 64 bytes, where headers live.
        head = int(rng.integers(0, min(n, 64)))
        anywhere = int(rng.integers(0, n))
        pos = head if rng.random() < 0.5 else anywhere
        if kind == 0:
            count = int(rng.integers(1, 9))
            for _ in range(count):
                out[int(rng.integers(0, n))] = int(rng.integers(0, 256))
            steps.append(f"flip{count}")
        elif kind == 1:
            bit = int(rng.integers(0, 8))
            out[pos] ^= 1 << bit
            steps.append(f"bit@{pos}")
        elif kind == 2:
            cut = int(rng.integers(1, n))
            del out[cut:]
            steps.append(f"truncate@{cut}")
        elif kind == 3:
            donor = donors[int(rng.integers(0, len(donors)))]
            a = int(rng.integers(0, len(donor)))
            b = min(len(donor), a + int(rng.integers(1, 256)))
            out[pos:pos] = donor[a:b]
            steps.append(f"splice{b - a}@{pos}")
        elif kind == 4:
            a = int(rng.integers(0, n))
            b = min(n, a + int(rng.integers(1, 128)))
            out[pos:pos] = out[a:b]  # duplicate a run of its own bytes
            steps.append(f"dup{b - a}@{pos}")
        elif kind == 5:
            length = int(rng.integers(1, 64))
            out[pos:pos + length] = bytes(min(length, n - pos))
            steps.append(f"zero{length}@{pos}")
        elif kind == 6 and n >= pos + 4:
            value = EXTREMES[int(rng.integers(0, len(EXTREMES)))]
            fmt = ">I" if rng.random() < 0.5 else "<I"
            out[pos:pos + 4] = struct.pack(fmt, value)
            steps.append(f"int{value:#x}{fmt[0]}@{pos}")
        else:
            a = int(rng.integers(0, n))
            b = min(n, a + int(rng.integers(1, 512)))
            del out[a:b]
            steps.append(f"delete{b - a}@{a}")
    if out.startswith(b"\x89PNG") and rng.random() < 0.5:
        out = _fix_png_crcs(out)
        steps.append("crc")
    return bytes(out), "+".join(steps)


# --------------------------------------------------------------------------- running


def _decode(path: Path, thumbnails: bool) -> str:
    """Through the app's read path; returns the outcome ("ok" or "ImageReadError")."""
    from engine.errors import ImageReadError
    from engine.io.imageio import read_image

    try:
        image = read_image(path)
    except ImageReadError:
        outcome = "ImageReadError"
    else:
        px = image.pixels
        if px.ndim != 3 or px.shape[2] != 3 or px.dtype != np.float32:
            raise AssertionError(f"decoded pixels have shape {px.shape} and type {px.dtype}")
        if not np.isfinite(px).all() or px.min() < 0 or px.max() > 255:
            raise AssertionError("decoded pixels outside 0..255")
        if image.alpha is not None and image.alpha.shape != px.shape[:2]:
            raise AssertionError(f"alpha {image.alpha.shape} does not match pixels {px.shape}")
        outcome = "ok"
    if thumbnails:
        from cmdsr_app.imaging import read_thumbnail

        read_thumbnail(path)  # the queue's preview: Qt's own decoders
    return outcome


def run(cases: int, seed: int, workdir: Path, thumbnails: bool, budget_s: float,
        slow_s: float = 2.0) -> dict[str, object]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "findings").mkdir(exist_ok=True)
    if thumbnails:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QGuiApplication

        _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - plugins need it
    import logging

    logging.disable(logging.CRITICAL)  # "the file is really X" notes would flood stderr
    seeds = make_seeds(seed)
    names = sorted(seeds)
    donors = [seeds[n][1] for n in names]
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {n: {} for n in names}
    findings: list[dict[str, object]] = []
    slowest: list[tuple[float, str]] = []
    slow_cases: list[dict[str, object]] = []
    start = time.perf_counter()
    done = 0
    for index in range(cases):
        if time.perf_counter() - start > budget_s:
            break
        name = names[index % len(names)]
        suffix, data = seeds[name]
        if index < len(names):
            case, how = data, "unmodified"  # the seeds themselves must decode
        else:
            case, how = mutate(data, rng, donors)
        if rng.random() < 0.1:  # a file whose suffix lies about its content
            suffix = (".png", ".jpg", ".webp", ".tif", ".bmp")[int(rng.integers(0, 5))]
        path = workdir / f"current{suffix}"
        info = {"index": index, "seed": seed, "source": name, "mutation": how, "file": path.name}
        path.write_bytes(case)
        (workdir / "current.json").write_text(json.dumps(info), encoding="utf-8")
        t0 = time.perf_counter()
        try:
            outcome = _decode(path, thumbnails)
        except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
            outcome = f"{type(exc).__name__}"
            kept = workdir / "findings" / f"case_{index}{suffix}"
            kept.write_bytes(case)
            findings.append({**info, "file": str(kept), "error": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc(limit=6)})
        elapsed = time.perf_counter() - t0
        if elapsed > slow_s and index >= len(names):  # the first cases include start-up
            kept = workdir / "findings" / f"slow_{index}{suffix}"
            kept.write_bytes(case)
            slow_cases.append({**info, "file": str(kept), "seconds": round(elapsed, 3)})
        if index < len(names) and outcome != "ok":
            findings.append({**info, "error": f"the unmodified {name} seed did not decode"})
        slowest = sorted([*slowest, (elapsed, f"{index}:{name}:{how}")], reverse=True)[:5]
        counts[name][outcome] = counts[name].get(outcome, 0) + 1
        done += 1
    (workdir / "current.json").unlink(missing_ok=True)
    summary = {
        "cases": done,
        "seconds": round(time.perf_counter() - start, 2),
        "thumbnails": thumbnails,
        "counts": counts,
        "slowest": [{"seconds": round(s, 4), "case": c} for s, c in slowest],
        "slow_cases": slow_cases,
        "findings": findings,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("fuzz_images"))
    parser.add_argument("--thumbnails", action="store_true",
                        help="also decode each case with the GUI's thumbnail reader (Qt)")
    parser.add_argument("--budget", type=float, default=float("inf"),
                        help="stop after this many seconds (the cases done so far count)")
    parser.add_argument("--replay", type=Path, help="decode one saved case and print the outcome")
    args = parser.parse_args(argv)
    if args.replay is not None:
        print(_decode(args.replay, args.thumbnails))
        return 0
    summary = run(args.cases, args.seed, args.workdir, args.thumbnails, args.budget)
    totals: dict[str, int] = {}
    for per_seed in summary["counts"].values():  # type: ignore[union-attr]
        for outcome, n in per_seed.items():
            totals[outcome] = totals.get(outcome, 0) + n
    print(f"{summary['cases']} cases in {summary['seconds']} s: {totals}; "
          f"{len(summary['findings'])} finding(s)")  # type: ignore[arg-type]
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
