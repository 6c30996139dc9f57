"""Reading and writing photos: 8/16-bit, gray/RGB/RGBA/palette, EXIF orientation, metadata.

Images inside the engine are float32 RGB in 0..255 whatever the file's bit depth, so the
network always sees the range it was trained on; 16-bit files keep their precision in the
float values and are written back as 16-bit where the format allows. An upscaled result bound
for an 8-bit file may instead hold uint8 (same 0..255 meaning, a quarter of the memory).

Reading decodes from bytes (paths with any characters work on every OS) and refuses
decompression bombs before decoding. Writing encodes in memory, then writes a temp file in the
destination folder and renames it: a failed or cancelled job never leaves a partial image.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from engine.errors import ImageReadError, ImageWriteError
from engine.io.fileio import atomic_write

log = logging.getLogger(__name__)

# 80 megapixels of input: x4 makes that 1.3 gigapixels of output, past any sensible job.
DEFAULT_MAX_PIXELS = 80_000_000

SUPPORTED_READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
SUPPORTED_WRITE_FORMATS = ("png", "jpg", "webp", "tif")

# Pillow's names for what we read; MPO is how Pillow labels many camera JPEGs.
_READ_FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "TIFF": "tif",
                 "BMP": "bmp"}
_FORMAT_ALIASES = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "tif": "tif",
                   "tiff": "tif"}
_SUFFIX_OF_FORMAT = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tif": ".tif"}
_SIXTEEN_BIT_FORMATS = ("png", "tif")
_ORIENTATION_TAG = 0x0112
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")
# BT.601 luma, Pillow's own RGB -> L weights: a grayscale result drops the colour cast.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_EXIF_HEADER = b"Exif\x00\x00"


@dataclass
class Image:
    """A decoded photo.

    ``pixels``: [H, W, 3] float32 RGB in 0..255 (16-bit files scaled by 1/257, so they keep
    fractional values); ``alpha``: [H, W] float32 0..255 or None; ``bit_depth``: 8 or 16, the
    depth of the source, used as the default depth when writing; ``exif``/``icc``: raw EXIF
    (with orientation reset to 1, since the pixels are already upright) and ICC profile bytes.
    ``grayscale``: the source had one colour channel; the three channels are then equal, and
    ``write_image`` writes a grayscale file again (an upscaler's faint colour cast dropped).

    ``read_image`` always gives float32. ``pixels`` and ``alpha`` may also be uint8 (0..255,
    the same meaning: value v is the float v), as ``upscale_image(..., out_dtype=np.uint8)``
    produces for 8-bit output; ``write_image`` writes such an image exactly as it would the
    float image with those integer values (16 bits: v * 257), without a float copy.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    exif: bytes | None = None
    icc: bytes | None = None
    source: Path | None = None
    format: str | None = field(default=None)  # "png", "jpg", ... of the source file
    grayscale: bool = False

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def normalise_format(fmt: str) -> str:
    """``"JPEG"``/``".jpg"``/``"jpeg"`` -> ``"jpg"``; ImageWriteError for formats we cannot write."""
    key = fmt.lower().lstrip(".")
    if key not in _FORMAT_ALIASES:
        raise ImageWriteError(
            f"cannot write format {fmt!r}; choose one of {', '.join(SUPPORTED_WRITE_FORMATS)}"
        )
    return _FORMAT_ALIASES[key]


def format_suffix(fmt: str) -> str:
    """The file suffix CMDSR Studio gives a written format (``"jpg"`` -> ``".jpg"``)."""
    return _SUFFIX_OF_FORMAT[normalise_format(fmt)]


def is_supported_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUPPORTED_READ_SUFFIXES


# --------------------------------------------------------------------------- reading


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``arr`` ([H, W] or [H, W, C]) upright for an EXIF orientation value 1..8."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = np.rot90(arr.swapaxes(0, 1), 2)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, length, "IHDR", w, h, bit depth.
    return data[24] if len(data) > 25 else 8


def _is_sixteen_bit(pil: PILImage.Image, fmt: str, data: bytes) -> bool:
    if fmt == "png":
        return _png_bit_depth(data) == 16
    if fmt == "tif":
        bits = getattr(pil, "tag_v2", {}).get(258, 8)
        bits = bits if isinstance(bits, tuple | list) else (bits,)
        return max(int(b) for b in bits) == 16
    return False


def _decode_with_opencv(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit colour PNG/TIFF (Pillow reduces those to 8 bits): float RGB, alpha in 0..255."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"{path}: the file is truncated or corrupt")
    scale = 255.0 / 65535.0 if arr.dtype == np.uint16 else 1.0
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{path}: unsupported sample type {arr.dtype} (use 8 or 16 bits)")
    arr = arr.astype(np.float32) * np.float32(scale)
    alpha = None
    if arr.ndim == 2:
        rgb = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 2:
        rgb, alpha = np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1]
    elif arr.shape[2] == 3:
        rgb = arr[:, :, ::-1]
    elif arr.shape[2] == 4:
        rgb, alpha = arr[:, :, 2::-1], arr[:, :, 3]
    else:
        raise ImageReadError(f"{path}: unsupported number of channels ({arr.shape[2]})")
    return np.ascontiguousarray(rgb), None if alpha is None else np.ascontiguousarray(alpha)


def _decode_with_pillow(
    pil: PILImage.Image, path: Path
) -> tuple[np.ndarray, np.ndarray | None, int, bool]:
    """Returns (RGB float, alpha or None, bit depth, converted-from-CMYK)."""
    mode = pil.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(pil).astype(np.float32)
        if mode == "I" and gray.size and (gray.max() > 65535 or gray.min() < 0):
            raise ImageReadError(f"{path}: 32-bit integer images are not supported")
        gray *= np.float32(255.0 / 65535.0)
        return np.repeat(gray[:, :, None], 3, axis=2), None, 16, False
    if mode == "F":
        raise ImageReadError(f"{path}: floating-point images are not supported (use 8 or 16 bits)")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in pil.info
    )
    target = "RGBA" if has_alpha else "RGB"
    converted = pil.convert(target) if mode != target else pil
    arr = np.asarray(converted, dtype=np.float32)
    if has_alpha:
        return np.ascontiguousarray(arr[:, :, :3]), np.ascontiguousarray(arr[:, :, 3]), 8, mode == "CMYK"
    return arr, None, 8, mode == "CMYK"


def _what_it_is(data: bytes) -> str:
    """What a file that is no image holds, from its first bytes (for the error message)."""
    head = data[:16].lstrip().lower()
    for magic, name in ((b"%pdf", "a PDF document"), (b"pk\x03\x04", "a zip archive"),
                        (b"<!doctype html", "a web page"), (b"<html", "a web page")):
        if head.startswith(magic):
            return f"it is {name}"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "it is a HEIC photo: convert it to JPEG or PNG"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "it holds text"
    return "its contents match no image format"


def _too_large(path: Path, data: bytes, max_pixels: int, pixels: str = "") -> str:
    """``pixels``: the photo's size in words (default: over Pillow's own limit)."""
    n, most = len(data), 2 * (PILImage.MAX_IMAGE_PIXELS or 0) / 1e6
    size = f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"
    return (f"{path}: {pixels or f'the image is over {most:.0f} megapixels'}, over the limit of "
            f"{max_pixels / 1e6:.0f} megapixels (a {size} file; refused to protect memory)")


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Decode the photo at ``path`` (PNG, JPEG, WebP, TIFF or BMP) into an upright RGB ``Image``.

    Raises ``ImageReadError`` naming the file when it is missing, empty, truncated, not an
    image (whatever its suffix says), of an unsupported kind, or larger than ``max_pixels``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(f"{path}: the file is empty")
    with warnings.catch_warnings():
        # We apply our own pixel limit below; Pillow's bomb warning would only add noise.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            pil = PILImage.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageReadError(
                f"{path}: not an image ({_what_it_is(data)}; supported: "
                f"{', '.join(SUPPORTED_READ_SUFFIXES)})"
            ) from None
        except PILImage.DecompressionBombError:
            raise ImageReadError(_too_large(path, data, max_pixels)) from None
        except Exception as exc:
            raise ImageReadError(f"{path}: the file is corrupt ({exc})") from None
        fmt = _READ_FORMATS.get(pil.format or "")
        if fmt is None:
            raise ImageReadError(
                f"{path}: {pil.format} images are not supported "
                f"(supported: {', '.join(SUPPORTED_READ_SUFFIXES)})"
            )
        suffix_fmt = _FORMAT_ALIASES.get(path.suffix.lower().lstrip("."), path.suffix.lower())
        if path.suffix and suffix_fmt != fmt:
            log.info("%s: the file is really %s; reading it as such", path, pil.format)
        width, height = pil.size
        if width <= 0 or height <= 0:
            raise ImageReadError(f"{path}: the image has no pixels")
        if width * height > max_pixels:
            raise ImageReadError(_too_large(
                path, data, max_pixels, f"{width}x{height} is {width * height / 1e6:.0f} megapixels"))
        try:
            exif = pil.getexif()
        except Exception:  # broken EXIF should not make a good photo unreadable
            exif = PILImage.Exif()
        icc = pil.info.get("icc_profile") or None
        grayscale = pil.mode in _GRAY_MODES
        try:
            if _is_sixteen_bit(pil, fmt, data):
                pixels, alpha = _decode_with_opencv(data, path)
                bit_depth, was_cmyk = 16, False
            else:
                pil.load()
                pixels, alpha, bit_depth, was_cmyk = _decode_with_pillow(pil, path)
        except ImageReadError:
            raise
        except PILImage.DecompressionBombError:
            raise ImageReadError(_too_large(path, data, max_pixels)) from None
        except (OSError, SyntaxError, ValueError, struct.error, cv2.error) as exc:
            detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise ImageReadError(f"{path}: the file is truncated or corrupt ({detail})") from None
    orientation = int(exif.get(_ORIENTATION_TAG, 1) or 1)
    if orientation not in range(1, 9):
        orientation = 1
    if orientation != 1:
        pixels = _apply_orientation(pixels, orientation)
        alpha = None if alpha is None else _apply_orientation(alpha, orientation)
        exif[_ORIENTATION_TAG] = 1  # the pixels are upright now; viewers must not turn them again
    exif_bytes = exif.tobytes() if len(exif) else None
    if was_cmyk:
        icc = None  # a CMYK profile does not describe the RGB pixels we hand out
    return Image(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        alpha=alpha,
        bit_depth=bit_depth,
        exif=exif_bytes,
        icc=icc,
        source=path,
        format=fmt,
        grayscale=grayscale,
    )


# --------------------------------------------------------------------------- writing


def output_bit_depth(fmt: str, source_bit_depth: int, bit_depth: int | None = None) -> int:
    """Bits per channel ``write_image`` uses: ``bit_depth`` if given, else the source's where
    the format can hold 16 bits (PNG/TIFF), else 8. Lets callers ask for 8-bit results early."""
    if bit_depth is not None:
        return bit_depth
    return int(source_bit_depth) if normalise_format(fmt) in _SIXTEEN_BIT_FORMATS else 8


def _band_rows(arr: np.ndarray) -> int:
    return max(1, 2**22 // max(1, int(np.prod(arr.shape[1:]))))


def _quantise_band(band: np.ndarray, bit_depth: int, out: np.ndarray) -> None:
    """One band of 0..255 samples (float, or uint8) into ``out`` (uint8 or uint16, may be a
    strided view): rounded half to even and clipped; uint8 goes straight across (x257)."""
    if band.dtype == np.uint8:
        # np.rint on uint8 would return float16; integers need no rounding at all.
        out[...] = band
        if bit_depth == 16:
            out *= np.uint16(257)  # 255 * 257 = 65535, exactly what rint(v * 65535 / 255) gives
        return
    maximum = 65535 if bit_depth == 16 else 255
    tmp = np.rint(band * np.float32(65535.0 / 255.0) if bit_depth == 16 else band)
    out[...] = np.clip(tmp, 0, maximum, out=tmp)


def _quantise(arr: np.ndarray, bit_depth: int, out: np.ndarray | None = None) -> np.ndarray:
    # In row bands: a 12000x8000 result is 1.1 GB of floats, and whole-image rint/clip
    # temporaries held two more such copies just to make the integer one (peak 3.9 GB).
    if out is None:
        out = np.empty(arr.shape, np.uint16 if bit_depth == 16 else np.uint8)
    rows = _band_rows(arr)
    for y in range(0, arr.shape[0], rows):
        _quantise_band(arr[y:y + rows], bit_depth, out[y:y + rows])
    return out


def _flattened_on_white(pixels: np.ndarray, alpha: np.ndarray, bit_depth: int,
                        out: np.ndarray) -> None:
    """Composite onto white into ``out``, in row bands (float math as for float pixels)."""
    rows = _band_rows(pixels)
    for y in range(0, pixels.shape[0], rows):
        band = pixels[y:y + rows]
        if band.dtype == np.uint8:
            band = band.astype(np.float32)  # same values, so the same result as float pixels
        a = (alpha[y:y + rows] / 255.0)[:, :, None]
        _quantise_band(band * a + 255.0 * (1.0 - a), bit_depth, out[y:y + rows])


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _add_png_metadata(png: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """Insert iCCP/eXIf chunks after IHDR (OpenCV writes 16-bit PNGs without metadata)."""
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        raw = exif[len(_EXIF_HEADER):] if exif.startswith(_EXIF_HEADER) else exif
        extra += _png_chunk(b"eXIf", raw)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _integer_samples(image: Image, fmt: str, bit_depth: int) -> np.ndarray:
    """The image as the uint8/uint16 array the encoder takes: RGB(A) for Pillow, BGR(A) for
    OpenCV at 16 bits. Pixels and alpha go straight into one buffer, band by band, so neither
    a stacked float copy nor a channel-reordered copy is made."""
    pixels, alpha = image.pixels, image.alpha
    flatten = alpha is not None and fmt == "jpg"
    if flatten:
        # JPEG has no transparency: flatten onto white, as image viewers show it.
        log.warning("%s: JPEG cannot store transparency; flattening onto white",
                    image.source or "image")
    keep_alpha = alpha is not None and not flatten
    if bit_depth == 8 and alpha is None and pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)  # already what the encoder takes: no copy
    out = np.empty((*pixels.shape[:2], 4 if keep_alpha else 3),
                   np.uint16 if bit_depth == 16 else np.uint8)
    colour = out[:, :, 2::-1] if bit_depth == 16 else out[:, :, :3]
    if flatten:
        assert alpha is not None
        _flattened_on_white(pixels, alpha, bit_depth, colour)
    else:
        _quantise(pixels, bit_depth, colour)
    if keep_alpha:
        assert alpha is not None
        _quantise(alpha, bit_depth, out[:, :, 3])
    return out


def gray_levels(pixels: np.ndarray) -> np.ndarray:
    """[H, W] float32 luma (0..255) of [H, W, 3] RGB pixels (float or uint8), in row bands."""
    out = np.empty(pixels.shape[:2], np.float32)
    rows = _band_rows(pixels)
    for y in range(0, pixels.shape[0], rows):
        np.dot(pixels[y:y + rows].astype(np.float32, copy=False), _LUMA, out=out[y:y + rows])
    return out


def as_gray_rgb(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 3] float32 pixels whose three channels are the luma of ``pixels``."""
    return np.repeat(gray_levels(pixels)[:, :, None], 3, axis=2)


def _encode_gray(image: Image, fmt: str, quality: int, bit_depth: int) -> bytes:
    """A one-channel file (8 or 16 bits) from a grayscale source's result."""
    gray = _quantise(gray_levels(image.pixels), bit_depth)
    if bit_depth == 16:
        ok, encoded = cv2.imencode(".png" if fmt == "png" else ".tif", gray)
        if not ok:
            raise ImageWriteError(f"OpenCV could not encode a 16-bit {fmt.upper()}")
        data = encoded.tobytes()
        return _add_png_metadata(data, image.exif, image.icc) if fmt == "png" else data
    return _encode_pil(PILImage.fromarray(gray, "L"), image, fmt, quality)


def _encode(image: Image, fmt: str, quality: int, bit_depth: int) -> bytes:
    if image.grayscale and image.alpha is None:
        return _encode_gray(image, fmt, quality, bit_depth)
    if image.grayscale:  # gray with transparency: RGBA with three equal channels
        image = replace(image, pixels=as_gray_rgb(image.pixels))
    if bit_depth == 16:
        bgr = _integer_samples(image, fmt, 16)
        ext = ".png" if fmt == "png" else ".tif"
        ok, encoded = cv2.imencode(ext, bgr)
        if not ok:
            raise ImageWriteError(f"OpenCV could not encode a 16-bit {fmt.upper()}")
        data = encoded.tobytes()
        if fmt == "png":
            return _add_png_metadata(data, image.exif, image.icc)
        if image.exif or image.icc:
            log.warning("16-bit TIFF is written without EXIF/ICC metadata; "
                        "use PNG to keep them at 16 bits")
        return data
    arr = _integer_samples(image, fmt, 8)
    return _encode_pil(PILImage.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB"), image,
                       fmt, quality)


def _encode_pil(pil: PILImage.Image, image: Image, fmt: str, quality: int) -> bytes:
    kwargs: dict[str, object] = {}
    if image.exif:
        kwargs["exif"] = image.exif
    if image.icc:
        kwargs["icc_profile"] = image.icc
    if fmt == "jpg":
        kwargs.update(quality=int(quality), subsampling=0 if quality >= 90 else 2)
    elif fmt == "webp":
        kwargs.update(quality=int(quality), lossless=quality >= 100, method=4)
    elif fmt == "tif":
        kwargs.update(compression="tiff_deflate")
    buf = io.BytesIO()
    pil.save(buf, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "tif": "TIFF"}[fmt],
             **kwargs)
    return buf.getvalue()


def write_image(
    image: Image,
    path: str | Path,
    *,
    fmt: str | None = None,
    quality: int = 95,
    bit_depth: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` atomically to ``path`` and return the path.

    ``fmt`` (png, jpg, webp, tif) defaults to the path's suffix; ``bit_depth`` defaults to the
    image's own where the format can hold it (16-bit PNG/TIFF), else 8. EXIF and ICC are kept
    where the format allows. Raises ``ImageWriteError`` if the file exists and ``overwrite``
    is False, or on any failure; nothing partial is left behind.
    """
    path = Path(path)
    fmt = normalise_format(fmt or path.suffix or "?")
    if not 1 <= int(quality) <= 100:
        raise ImageWriteError(f"quality must be 1..100, got {quality}")
    bit_depth = output_bit_depth(fmt, image.bit_depth, bit_depth)
    if bit_depth not in (8, 16):
        raise ImageWriteError(f"bit depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS:
        raise ImageWriteError(f"{path}: {fmt.upper()} cannot store 16 bits per channel; "
                              "use png or tif")
    if image.pixels.ndim != 3 or image.pixels.shape[2] != 3:
        raise ImageWriteError(f"{path}: expected [H, W, 3] pixels, got {image.pixels.shape}")
    if path.exists() and not overwrite:
        raise ImageWriteError(f"{path}: already exists (use overwrite to replace it)")
    try:
        data = _encode(image, fmt, int(quality), bit_depth)
    except ImageWriteError:
        raise
    except Exception as exc:
        raise ImageWriteError(f"{path}: could not encode {fmt.upper()} ({exc})") from None
    try:
        atomic_write(path, lambda fh: fh.write(data), overwrite=overwrite)
    except FileExistsError:
        raise ImageWriteError(f"{path}: already exists (use overwrite to replace it)") from None
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
    log.debug("wrote %s (%s, %d-bit, %d bytes)", path, fmt, bit_depth, len(data))
    return path


# --------------------------------------------------------------------------- output size


@dataclass(frozen=True)
class OutputSize:
    """How big an upscaled photo is written: ``scale`` times the input (at most the model's
    own), or ``width`` / ``height`` in pixels (the other side follows the aspect ratio); all
    None: the model's own scale.

    The network always runs at its own scale (x4 for the shipped model); a smaller size is then
    reached by area-averaging (OpenCV ``INTER_AREA``), which anti-aliases: every output pixel
    is the mean of the x4 pixels it covers, so no moiré or jagged edges appear.
    """

    scale: int | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.scale, self.width, self.height) if v is not None]
        if len(given) > 1:
            raise ValueError("give one of scale, width or height for the output size")
        if self.scale is not None and not 1 <= self.scale <= 8:
            raise ValueError(f"output scale must be 1..8, got {self.scale}")
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not 1 <= value <= 100_000:
                raise ValueError(f"output {name} must be 1..100000 pixels, got {value}")

    @property
    def is_native(self) -> bool:
        return self.scale is None and self.width is None and self.height is None

    def describe(self, model_scale: int) -> str:
        """``x2``, ``1920 px wide``, ``1080 px high``."""
        if self.width is not None:
            return f"{self.width} px wide"
        if self.height is not None:
            return f"{self.height} px high"
        return f"x{self.scale or model_scale}"

    def suffix(self, model_scale: int) -> str:
        """The default file-name suffix: ``_x4``, ``_x2``, ``_w1920``, ``_h1080``."""
        if self.width is not None:
            return f"_w{self.width}"
        if self.height is not None:
            return f"_h{self.height}"
        return f"_x{self.scale or model_scale}"

    def check_model(self, model_scale: int) -> None:
        """ValueError when the model cannot reach the scale (it is only ever downscaled)."""
        if self.scale is not None and self.scale > model_scale:
            raise ValueError(f"output scale x{self.scale} is larger than the model's "
                             f"x{model_scale}; choose x{model_scale} or less")

    def dimensions(self, width: int, height: int, model_scale: int) -> tuple[int, int]:
        """Output (width, height) for an input of ``width`` x ``height``; ValueError when it
        would need more than the model's scale."""
        self.check_model(model_scale)
        if self.width is not None:
            out_w, out_h = self.width, max(1, round(height * self.width / width))
        elif self.height is not None:
            out_w, out_h = max(1, round(width * self.height / height)), self.height
        else:
            scale = self.scale or model_scale
            return width * scale, height * scale
        if out_w > width * model_scale or out_h > height * model_scale:
            raise ValueError(
                f"{self.describe(model_scale)} needs more than the model's x{model_scale} for "
                f"this {width}x{height} photo (at most {width * model_scale}x"
                f"{height * model_scale}); choose a smaller size")
        return out_w, out_h


def resize_image(image: Image, width: int, height: int) -> Image:
    """``image`` shrunk to ``width`` x ``height`` by area-averaging (OpenCV ``INTER_AREA``,
    anti-aliased), alpha too; metadata kept. Unchanged when it already has that size."""
    if (image.width, image.height) == (width, height):
        return image
    pixels = cv2.resize(image.pixels, (width, height), interpolation=cv2.INTER_AREA)
    alpha = None
    if image.alpha is not None:
        alpha = cv2.resize(image.alpha, (width, height), interpolation=cv2.INTER_AREA)
    return replace(image, pixels=pixels, alpha=alpha)


def to_output_size(image: Image, size: OutputSize, input_width: int, input_height: int,
                   model_scale: int) -> Image:
    """An upscaled ``image`` (of an ``input_width`` x ``input_height`` photo at the model's
    scale) brought to ``size``."""
    width, height = size.dimensions(input_width, input_height, model_scale)
    return resize_image(image, width, height)
