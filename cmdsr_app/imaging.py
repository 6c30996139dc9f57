"""Conversions between the engine's float pixel arrays and Qt images (safe off the GUI thread:
QImage, unlike QPixmap, may be built in a worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from engine.imageio import DEFAULT_MAX_PIXELS

THUMBNAIL_SIZE = 96


def to_qimage(pixels: np.ndarray) -> QImage:
    """[H, W, 3] float 0..255 (or uint8) RGB -> an RGB888 QImage that owns its data."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] pixels, got {pixels.shape}")
    if pixels.dtype != np.uint8:
        # Row blocks of ~16 MB: a 24000x16000 result must not need a float copy of itself.
        out = np.empty(pixels.shape, np.uint8)
        rows = max(1, (1 << 24) // max(1, pixels.shape[1] * 3))
        for start in range(0, pixels.shape[0], rows):
            block = np.rint(pixels[start:start + rows])
            out[start:start + rows] = np.clip(block, 0, 255, out=block)
        pixels = out
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    image = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()  # detach from the numpy buffer


def from_qimage(image: QImage) -> np.ndarray:
    """A QImage -> [H, W, 3] float32 RGB 0..255 (alpha dropped)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    width, height = rgb.width(), rgb.height()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.bytesPerLine() * height)
    rows = buffer.reshape(height, rgb.bytesPerLine())[:, : 3 * width]
    return rows.reshape(height, width, 3).astype(np.float32)


def read_thumbnail(path: str | Path, size: int = THUMBNAIL_SIZE) -> QImage:
    """A small, upright preview of an image file (null QImage if Qt cannot read it)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # EXIF orientation, as the engine applies it
    original = reader.size()
    if original.isValid() and original.width() * original.height() > DEFAULT_MAX_PIXELS:
        # A 600-byte JPEG may declare 65000x65000: Qt would decode it at 1/8 (250 MB, seconds)
        # just for a thumbnail the engine will refuse to open anyway.
        return QImage()
    if original.isValid() and original.width() > 0 and original.height() > 0:
        reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return QImage()
    if image.width() > size or image.height() > size:
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image
