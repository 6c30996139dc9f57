"""Conversions between the engine's float pixel arrays and Qt images (safe off the GUI thread:
QImage, unlike QPixmap, may be built in a worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from engine.io.imageio import DEFAULT_MAX_PIXELS

THUMBNAIL_SIZE = 96


def to_qimage(pixels: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """[H, W, 3] float 0..255 (or uint8) RGB, with an optional [H, W] alpha of the same kind,
    -> a QImage that owns its data: RGB888, or premultiplied RGBA (what QPainter draws
    fastest) when the alpha has a pixel that is not opaque."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] pixels, got {pixels.shape}")
    if alpha is not None and alpha.shape != pixels.shape[:2]:
        raise ValueError(f"expected a [H, W] alpha for {pixels.shape} pixels, got {alpha.shape}")
    height, width = pixels.shape[:2]
    if alpha is None or alpha.size == 0 or float(alpha.min()) >= 254.5:
        rgb = np.ascontiguousarray(_as_uint8(pixels))
        image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        return image.copy()  # detach from the numpy buffer
    rgba = np.empty((height, width, 4), np.uint8)
    _as_uint8(pixels, rgba[:, :, :3])
    _as_uint8(alpha, rgba[:, :, 3])
    image = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
    # The conversion makes a copy, detached from the numpy buffer.
    return image.convertToFormat(QImage.Format.Format_RGBA8888_Premultiplied)


def _as_uint8(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Float 0..255 values rounded and clipped into uint8 (into ``out`` when given)."""
    if out is None:
        if values.dtype == np.uint8:
            return values
        out = np.empty(values.shape, np.uint8)
    if values.dtype == np.uint8:
        out[...] = values
        return out
    # Row blocks of ~16 MB: a 24000x16000 result must not need a float copy of itself.
    row_size = max(1, values[0].size) if len(values) else 1
    rows = max(1, (1 << 24) // row_size)
    for start in range(0, values.shape[0], rows):
        block = np.rint(values[start:start + rows])
        out[start:start + rows] = np.clip(block, 0, 255, out=block)
    return out


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
