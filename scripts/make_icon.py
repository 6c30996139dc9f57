"""Draw CMDSR Studio's application icon with QPainter and write it as PNG, .ico and .icns.

The picture echoes what the app does: a photo disc whose left half is coarse pixels and whose
right half is smooth, split by the compare slider's line and handle.

    python scripts/make_icon.py [--out resources/icons]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QIODevice, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import (  # noqa: E402
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
    QRadialGradient,
)

NAME = "cmdsr_studio"
MASTER = 1024
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def scene_color(x: float, y: float) -> QColor:
    """The 'photo' inside the disc: warm sunset sky over a teal hill (x, y in 0..1)."""
    hill = 0.62 + 0.10 * ((x - 0.5) ** 2) * 4 - 0.06 * x
    if y > hill:
        t = min(1.0, (y - hill) / (1 - hill))
        return QColor.fromRgbF(0.10 + 0.05 * t, 0.45 - 0.15 * t, 0.42 - 0.10 * t)
    sun = ((x - 0.5) ** 2 + (y - 0.36) ** 2) ** 0.5
    if sun < 0.17:
        return QColor.fromRgbF(1.0, 0.93, 0.62)
    t = y / hill
    return QColor.fromRgbF(0.98 - 0.10 * t, 0.55 + 0.20 * t, 0.30 + 0.35 * t)


def draw(size: int = MASTER) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    s = size / 1024

    # Rounded-square tile with a deep blue gradient and a soft top light.
    tile = QRectF(48 * s, 48 * s, 928 * s, 928 * s)
    gradient = QLinearGradient(tile.topLeft(), tile.bottomRight())
    gradient.setColorAt(0, QColor(34, 56, 110))
    gradient.setColorAt(1, QColor(18, 28, 58))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(gradient))
    p.drawRoundedRect(tile, 200 * s, 200 * s)
    light = QRadialGradient(QPointF(380 * s, 230 * s), 620 * s)
    light.setColorAt(0, QColor(255, 255, 255, 46))
    light.setColorAt(1, QColor(255, 255, 255, 0))
    p.setBrush(QBrush(light))
    p.drawRoundedRect(tile, 200 * s, 200 * s)

    # The photo disc.
    centre, radius = QPointF(512 * s, 512 * s), 330 * s
    disc = QPainterPath()
    disc.addEllipse(centre, radius, radius)
    left = QRectF(centre.x() - radius, centre.y() - radius, radius, 2 * radius)
    right = QRectF(centre.x(), centre.y() - radius, radius, 2 * radius)
    p.save()
    p.setClipPath(disc)
    # Left half: coarse blocks, the low-resolution input.
    block = 2 * radius / 9
    y = centre.y() - radius
    while y < centre.y() + radius:
        x = centre.x() - radius
        while x < centre.x():
            u = (x + block / 2 - (centre.x() - radius)) / (2 * radius)
            v = (y + block / 2 - (centre.y() - radius)) / (2 * radius)
            p.fillRect(QRectF(x, y, block + 1, block + 1).intersected(left), scene_color(u, v))
            x += block
        y += block
    # Right half: the smooth result, drawn finely.
    step = max(1.0, size / 256)
    y = centre.y() - radius
    while y < centre.y() + radius:
        x = centre.x()
        while x < centre.x() + radius:
            u = (x - (centre.x() - radius)) / (2 * radius)
            v = (y - (centre.y() - radius)) / (2 * radius)
            p.fillRect(QRectF(x, y, step + 0.5, step + 0.5).intersected(right), scene_color(u, v))
            x += step
        y += step
    p.restore()
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(QColor(255, 255, 255, 230), 22 * s))
    p.drawEllipse(centre, radius, radius)

    # The compare slider: a vertical line and a round handle with two arrows.
    p.setPen(QPen(QColor(255, 255, 255), 24 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.drawLine(QPointF(centre.x(), 150 * s), QPointF(centre.x(), 874 * s))
    p.setBrush(QColor(255, 255, 255))
    p.setPen(QPen(QColor(18, 28, 58), 10 * s))
    p.drawEllipse(centre, 78 * s, 78 * s)
    p.setPen(QPen(QColor(18, 28, 58), 20 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                  Qt.PenJoinStyle.RoundJoin))
    for direction in (-1, 1):
        tip = QPointF(centre.x() + direction * 44 * s, centre.y())
        p.drawPolyline([QPointF(tip.x() - direction * 24 * s, tip.y() - 26 * s), tip,
                        QPointF(tip.x() - direction * 24 * s, tip.y() + 26 * s)])
    p.end()
    return image


def png_bytes(image: QImage) -> bytes:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data().data())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "resources" / "icons")
    args = parser.parse_args(argv)
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    args.out.mkdir(parents=True, exist_ok=True)
    master = draw(MASTER)
    smooth = Qt.TransformationMode.SmoothTransformation
    for side in (256, 512):
        scaled = master.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, smooth)
        name = f"{NAME}.png" if side == 256 else f"{NAME}_{side}.png"
        scaled.save(str(args.out / name), "PNG")
        print(f"wrote {args.out / name}")

    from PIL import Image

    big = Image.open(io.BytesIO(png_bytes(master))).convert("RGBA")
    big.save(args.out / f"{NAME}.ico", sizes=[(n, n) for n in ICO_SIZES])
    print(f"wrote {args.out / f'{NAME}.ico'}")
    try:
        big.save(args.out / f"{NAME}.icns")
        print(f"wrote {args.out / f'{NAME}.icns'}")
    except (OSError, ValueError, KeyError) as exc:  # older Pillow without an ICNS writer
        print(f"skipped .icns: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
