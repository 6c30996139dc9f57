"""Files whose headers declare enormous images: a 100000x100000 PNG in 300 bytes and the like.

Run as a script (in a fresh process, so peak RSS means something) it opens each file through
``engine.read_image`` and the GUI's thumbnail reader and prints one JSON line per file:
outcome, message, seconds and how far the peak RSS rose.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A valid-looking PNG (correct CRCs) whose IDAT holds a few rows of zeros only."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg(width: int, height: int) -> bytes:
    """A real small JPEG with its SOF0 frame size rewritten."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 60, 30)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header declares ``width`` x ``height`` (max 16384)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, "WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    at = data.find(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature byte
    bits = struct.unpack("<I", data[at:at + 4])[0]
    bits = (bits & ~((1 << 28) - 1)) | ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
    data[at:at + 4] = struct.pack("<I", bits)
    return bytes(data)


def tiff(width: int, height: int) -> bytes:
    """A hand-made baseline RGB TIFF declaring ``width`` x ``height`` with one tiny strip."""
    strip = b"\x80" * 64
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, len(strip)),
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, typ, count) + packed
    out += struct.pack("<I", 0) + strip
    return bytes(out)


def bmp(width: int, height: int) -> bytes:
    """A BMP header declaring a 24-bit ``width`` x ``height`` bitmap, with 64 bytes of data."""
    pixels = b"\x40" * 64
    row = (width * 3 + 3) // 4 * 4
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, row * height & 0xFFFFFFFF,
                       2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + len(pixels), 0, 0, 14 + 40)
    return header + info + pixels


CASES = {
    "png_100000x100000.png": lambda: png(100_000, 100_000),
    "png16_100000x100000.png": lambda: png(100_000, 100_000, 16),
    "png_2147483647x1.png": lambda: png(2**31 - 1, 1),
    "png_9000x9000.png": lambda: png(9000, 9000),  # 81 MP: just over the 80 MP limit
    "jpeg_65000x65000.jpg": lambda: jpeg(65_000, 65_000),
    "webp_16384x16384.webp": lambda: webp(16_384, 16_384),
    "tiff_100000x100000.tif": lambda: tiff(100_000, 100_000),
    "bmp_100000x100000.bmp": lambda: bmp(100_000, 100_000),
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(folder: Path) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from cmdsr_app.imaging import read_thumbnail
    from engine.errors import ImageReadError
    from engine.io.imageio import read_image

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - Qt's image plugins
    folder.mkdir(parents=True, exist_ok=True)
    read_image(_warm(folder))
    for name, make in CASES.items():
        path = folder / name
        path.write_bytes(make())
        before, t0 = _peak_mb(), time.perf_counter()
        try:
            image = read_image(path)
            outcome, message = "decoded", f"{image.width}x{image.height}"
        except ImageReadError as exc:
            outcome, message = "ImageReadError", str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the test as a failure
            outcome, message = type(exc).__name__, str(exc)
        read_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        thumb = read_thumbnail(path)
        thumb_s = time.perf_counter() - t1
        print(json.dumps({
            "file": name, "bytes": path.stat().st_size, "outcome": outcome, "message": message,
            "read_s": round(read_s, 3), "thumbnail_s": round(thumb_s, 3),
            "thumbnail": "null" if thumb.isNull() else f"{thumb.width()}x{thumb.height()}",
            "peak_rise_mb": round(_peak_mb() - before, 1),
        }), flush=True)
    return 0


def _warm(folder: Path) -> Path:
    """A normal small PNG read first, so imports and decoder set-up are not counted."""
    from PIL import Image

    from cmdsr_app.imaging import read_thumbnail

    path = folder / "warm.png"
    Image.new("RGB", (64, 48), (1, 2, 3)).save(path)
    read_thumbnail(path)
    return path


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
